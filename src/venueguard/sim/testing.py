"""Running the simulator in-process, for tests and rehearsals against your own bot.

    async with running_sim(scenario="calm", seed=3) as sim:
        sim.api_url        # http://127.0.0.1:PORT/api/v1
        sim.ws_url         # ws://127.0.0.1:PORT/realtime
        await sim.add_fault("overload_503", probability=1.0, duration_s=5)
        status, headers, body = await sim.request("POST", "/order", {"symbol": "XBTUSD", ...})
        truth = await sim.truth()

:class:`SimHandle` talks to the simulator only over HTTP (its own aiohttp session), as an external
client would; ``handle.server`` gives direct access to the :class:`SimServer` when a test needs it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
from yarl import URL

from venueguard.io.clock import wall_s
from venueguard.sim.server import SimConfig, SimServer
from venueguard.venues.bitmex import signing


class SimHandle:
    """URLs, credentials and control helpers of one running simulator."""

    def __init__(self, server: SimServer, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.session = session
        self.base_url = server.base_url
        self.api_url = server.base_url + "/api/v1"
        self.ws_url = server.ws_url
        self.control_url = server.base_url + "/_sim"
        self.api_key = server.config.api_key
        self.api_secret = server.config.api_secret

    # -- control API ---------------------------------------------------------------------------
    async def add_fault(self, kind: str, **params: Any) -> str:
        """POST /_sim/faults; returns the fault id (raises AssertionError on a 400)."""
        async with self.session.post(f"{self.control_url}/faults",
                                     json={"kind": kind, **params}) as resp:
            body = await resp.json()
            if resp.status != 200:
                raise AssertionError(f"fault {kind} refused: {body}")
            return str(body["id"])

    async def clear_faults(self) -> int:
        async with self.session.delete(f"{self.control_url}/faults") as resp:
            return int((await resp.json())["cleared"])

    async def faults(self) -> list[dict[str, Any]]:
        async with self.session.get(f"{self.control_url}/faults") as resp:
            return list((await resp.json())["faults"])

    async def truth(self) -> dict[str, Any]:
        async with self.session.get(f"{self.control_url}/truth") as resp:
            result: dict[str, Any] = await resp.json()
            return result

    # -- signed REST ---------------------------------------------------------------------------
    def signed_headers(self, verb: str, path_qs: str, body: bytes = b"",
                       expires: int | None = None) -> dict[str, str]:
        """BitMEX auth headers; ``path_qs`` is the full path with ``/api/v1`` and query."""
        exp = int(wall_s()) + 30 if expires is None else expires
        return signing.auth_headers(self.api_key, self.api_secret, verb, path_qs, exp, body)

    async def request(self, verb: str, path: str, payload: Mapping[str, Any] | None = None, *,
                      signed: bool = True, query: Mapping[str, Any] | str | None = None,
                      headers: Mapping[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        """One REST call to ``/api/v1{path}``; JSON body for writes, ``query`` for GET.

        ``query`` is a mapping (values that are not strings are JSON-encoded, as BitMEX expects
        for ``filter``) or an already encoded string; it is signed exactly as sent.
        Returns (status, lower-cased headers, decoded JSON or text when the body is not JSON).
        """
        if isinstance(query, Mapping):
            query = urlencode({k: v if isinstance(v, str) else orjson.dumps(v).decode()
                               for k, v in query.items()})
        path_qs = "/api/v1" + path + (f"?{query}" if query else "")
        body = orjson.dumps(payload) if payload is not None else b""
        hdrs = {"content-type": "application/json"} if body else {}
        if signed:
            hdrs.update(self.signed_headers(verb, path_qs, body))
        hdrs.update(headers or {})
        url = URL(self.base_url + path_qs, encoded=True)
        async with self.session.request(verb, url, data=body or None, headers=hdrs) as resp:
            raw = await resp.read()
            try:
                data: Any = orjson.loads(raw)
            except orjson.JSONDecodeError:
                data = raw.decode("utf-8", "replace")
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, data

    def ws_auth_query(self, expires: int | None = None) -> str:
        exp = int(wall_s()) + 30 if expires is None else expires
        sig = signing.sign_ws(self.api_secret, exp)
        return f"api-expires={exp}&api-signature={sig}&api-key={self.api_key}"

    def ws_auth_op(self, expires: int | None = None) -> dict[str, Any]:
        exp = int(wall_s()) + 30 if expires is None else expires
        return {"op": "authKeyExpires",
                "args": [self.api_key, exp, signing.sign_ws(self.api_secret, exp)]}


@asynccontextmanager
async def running_sim(config: SimConfig | None = None,
                      **overrides: Any) -> AsyncIterator[SimHandle]:
    """Start a simulator on 127.0.0.1 (port 0 unless given) and stop it on exit.

    ``overrides`` are :class:`SimConfig` fields (``scenario``, ``seed``, ``rate_msgs_s``,
    ``book_format``, ``symbols``, limits...).
    """
    cfg = replace(config or SimConfig(scenario=None), **overrides)
    server = SimServer(cfg)
    await server.start()
    session = aiohttp.ClientSession()
    try:
        yield SimHandle(server, session)
    finally:
        await session.close()
        await server.stop()
