"""A client-side resolver that delivers the simulator's ``dns_failure`` fault.

Plug it into the client's aiohttp connector and address the simulator by any host name:

    resolver = SimResolver("http://127.0.0.1:PORT")
    connector = aiohttp.TCPConnector(resolver=resolver)
    async with aiohttp.ClientSession(connector=connector) as session:
        await session.get("http://sim.venueguard.test:PORT/api/v1/instrument")

Every lookup asks the simulator (``GET /_sim/resolve?host=NAME``, over a direct connection to
its address). While ``dns_failure`` is active the lookup raises ``OSError(EAI_NONAME)``, which
aiohttp reports as ``ClientConnectorDNSError``, the same error a real failed lookup gives.
"""

from __future__ import annotations

import socket
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult


class SimResolver(AbstractResolver):
    """Resolves every name to the simulator's address, unless its dns_failure fault is active."""

    def __init__(self, sim_base_url: str, *, timeout_s: float = 5.0) -> None:
        self._base = sim_base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self.lookups = 0

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        self.lookups += 1
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        async with self._session.get(f"{self._base}/_sim/resolve", params={"host": host}) as resp:
            answer: dict[str, Any] = await resp.json()
        if "error" in answer:
            raise OSError(socket.EAI_NONAME, f"Name or service not known: {host}")
        return [{"hostname": host, "host": str(address), "port": port or int(answer["port"]),
                 "family": socket.AF_INET, "proto": 0, "flags": socket.AI_NUMERICHOST}
                for address in answer["addresses"]]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
