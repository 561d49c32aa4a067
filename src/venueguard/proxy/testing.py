"""Running the proxy in-process, for tests and rehearsals.

    async with running_proxy(sim.base_url, dialect="bitmex") as proxy:
        proxy.base_url     # http://127.0.0.1:PORT: point the client's REST here
        proxy.ws_base      # ws://127.0.0.1:PORT: and its websocket
        await proxy.add_fault("ws_stall")
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from venueguard.proxy.server import ProxyConfig, ProxyServer
from venueguard.telemetry.events import EventLog

__all__ = ["Proxied", "ProxyHandle", "running_proxy"]


class ProxyHandle:
    """URLs and control helpers of one running proxy."""

    def __init__(self, server: ProxyServer, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.session = session
        self.base_url = server.base_url
        self.ws_base = server.base_url.replace("http://", "ws://", 1)

    async def add_fault(self, kind: str, **params: Any) -> str:
        """POST /_sim/faults; returns the fault id (raises AssertionError on a 400)."""
        async with self.session.post(f"{self.base_url}/_sim/faults",
                                     json={"kind": kind, **params}) as resp:
            body = await resp.json()
            if resp.status != 200:
                raise AssertionError(f"fault {kind} refused: {body}")
            return str(body["id"])

    async def clear_faults(self) -> int:
        async with self.session.delete(f"{self.base_url}/_sim/faults") as resp:
            return int((await resp.json())["cleared"])


#: A test factory: ``sim, proxy = await proxied(dialect=..., **proxy_config)``.
Proxied = Callable[..., Awaitable[tuple[Any, "ProxyHandle"]]]


@asynccontextmanager
async def running_proxy(upstream: str, *, events: EventLog | None = None,
                        **overrides: Any) -> AsyncIterator[ProxyHandle]:
    """A proxy on 127.0.0.1 (any free port) in front of ``upstream``; ``overrides`` are
    :class:`ProxyConfig` fields."""
    server = ProxyServer(ProxyConfig(upstream=upstream, **overrides), events=events)
    await server.start()
    session = aiohttp.ClientSession()
    try:
        yield ProxyHandle(server, session)
    finally:
        await session.close()
        await server.stop()
