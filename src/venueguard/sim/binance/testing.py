"""Running the Binance dialect in-process and talking to it as a raw client.

    async with running_binance_sim(seed=3) as sim:
        status, headers, body = await sim.call("POST", "/fapi/v1/order", {...})
        sim.fapi_url   # http://127.0.0.1:PORT/fapi
        sim.ws_base    # ws://127.0.0.1:PORT
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

from venueguard.io.clock import wall_ns
from venueguard.sim.binance import signing
from venueguard.sim.binance.venue import BinanceVenue
from venueguard.sim.clock import SimClock
from venueguard.sim.server import SimConfig, SimServer
from venueguard.sim.testing import SimHandle

__all__ = ["BinanceHandle", "running_binance_sim"]


class BinanceHandle(SimHandle):
    """A :class:`SimHandle` with the Binance dialect's URLs and a signed raw client."""

    @property
    def venue(self) -> BinanceVenue:
        venue = self.server.binance
        assert venue is not None
        return venue

    @property
    def fapi_url(self) -> str:
        return self.base_url + "/fapi"

    @property
    def ws_base(self) -> str:
        return self.base_url.replace("http://", "ws://", 1)

    def signed_query(self, params: Mapping[str, Any], *, timestamp_ms: int | None = None,
                     secret: str | None = None) -> str:
        stamp = wall_ns() // 1_000_000 if timestamp_ms is None else timestamp_ms
        query = urlencode({**params, "timestamp": stamp})
        return query + "&signature=" + signing.sign(secret or self.api_secret, query)

    async def call(self, verb: str, path: str, params: Mapping[str, Any] | None = None, *,
                   signed: bool = True, key: str | None = None, raw: str | None = None,
                   timestamp_ms: int | None = None) -> tuple[int, dict[str, str], Any]:
        """One request: the query string for GET/DELETE, a form body for POST/PUT.

        ``raw`` sends that exact query/body instead. Returns (status, lower-cased headers,
        decoded JSON or the text when the body is not JSON).
        """
        if raw is not None:
            encoded = raw
        elif signed:
            encoded = self.signed_query(params or {}, timestamp_ms=timestamp_ms)
        else:
            encoded = urlencode(params or {})
        headers = {"X-MBX-APIKEY": key if key is not None else self.api_key}
        body: bytes | None = None
        url = self.base_url + path
        if verb in ("GET", "DELETE"):
            url += f"?{encoded}" if encoded else ""
        else:
            body = encoded.encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        async with self.session.request(verb, URL(url, encoded=True), data=body,
                                        headers=headers) as resp:
            data = await resp.read()
            try:
                decoded: Any = orjson.loads(data)
            except orjson.JSONDecodeError:
                decoded = data.decode("utf-8", "replace")
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, decoded


@asynccontextmanager
async def running_binance_sim(clock: SimClock | None = None,
                              **overrides: Any) -> AsyncIterator[BinanceHandle]:
    """A simulator speaking both dialects, BTCUSDT by default, with the Binance test key.

    ``overrides`` are :class:`SimConfig` fields; ``clock`` drives time by hand.
    """
    cfg = replace(SimConfig(dialect="binance-usdm", symbols=("BTCUSDT",),
                            api_key=signing.TEST_API_KEY, api_secret=signing.TEST_API_SECRET,
                            scenario=None), **overrides)
    server = SimServer(cfg, clock=clock)
    await server.start()
    session = aiohttp.ClientSession()
    try:
        yield BinanceHandle(server, session)
    finally:
        await session.close()
        await server.stop()


def point_ccxt(exchange: Any, base_url: str) -> None:
    """Point a ccxt ``binanceusdm`` (REST or pro) at a simulator at ``base_url``
    (``http://HOST:PORT``): its ``fapi`` URLs and futures websocket, nothing else. Also turns
    off the two spot lookups ccxt makes while loading markets (``fetchCurrencies``,
    ``fetchMargins``), which the simulator does not serve."""
    api = dict(exchange.urls["api"])
    for version in ("v1", "v2", "v3"):
        suffix = "" if version == "v1" else version.upper()
        api[f"fapiPublic{suffix}"] = f"{base_url}/fapi/{version}"
        api[f"fapiPrivate{suffix}"] = f"{base_url}/fapi/{version}"
    if "ws" in api:
        api["ws"] = {**api["ws"], "future": base_url.replace("http://", "ws://", 1) + "/ws"}
    exchange.urls["api"] = api
    exchange.options["fetchCurrencies"] = False
    exchange.options["fetchMargins"] = False
