"""Helpers for the ccxt bridge tests: a programmable fake venue (``FakeVenue``, ``point_at``)
and ccxt 4.5.78's bitmex class, guarded, pointed at a simulator (``bitmex``)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import ccxt.pro as ccxt_pro
import orjson
from aiohttp import web

from venueguard.ccxt import GuardConfig, GuardedExchange, OrdersConfig, StreamConfig, guard
from venueguard.ccxt.errors import OrderUnknown
from venueguard.io.http_session import Timeouts
from venueguard.sim.resolver import SimResolver
from venueguard.sim.testing import SimHandle
from venueguard.telemetry.events import EventLog
from venueguard.telemetry.metrics import Metrics

SYMBOL = "BTC/USD:BTC"
SimFactory = Callable[..., Awaitable[SimHandle]]
_ORIGIN_RE = re.compile(r"^https?://[^/]+")


@dataclass
class Seen:
    method: str
    path: str
    body: bytes


@dataclass
class FakeVenue:
    origin: str = ""
    answers: list[tuple[int, Any]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)

    def respond(self, *answers: tuple[int, Any]) -> None:
        self.answers = list(answers)
        self.seen.clear()

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(Seen(request.method, request.path_qs, await request.read()))
        status, body = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        text = body if isinstance(body, str) else orjson.dumps(body).decode()
        kind = "text/html" if isinstance(body, str) else "application/json"
        return web.Response(status=status, text=text, content_type=kind)


def point_at(exchange: Any, origin: str) -> None:
    """Every REST URL of ``exchange`` now goes to ``origin`` (paths kept)."""

    def swap(value: Any) -> Any:
        if isinstance(value, str):
            return _ORIGIN_RE.sub(origin, value.replace("{hostname}", "venue.test"))
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        return value

    exchange.urls = {**exchange.urls, "api": swap(exchange.urls["api"])}




def point_at_sim(exchange: Any, sim: SimHandle, base_url: str | None = None) -> None:
    base = base_url or sim.base_url
    exchange.urls["api"] = {**exchange.urls["api"], "public": base, "private": base,
                            "ws": sim.ws_url}


def quick_config(**orders: Any) -> GuardConfig:
    """Short bounds so a fault plays out in a few seconds."""
    return GuardConfig(
        timeouts=Timeouts(total_s=8.0),
        streams=StreamConfig(max_age_s={"orderbook": 1.0, "ticker": 5.0, "trades": 10.0},
                             first_data_s=3.0, max_ts_age_ms=2_000),
        orders=OrdersConfig(settle_s=8.0, lookup_interval_s=0.3, grace_s=4.0,
                            reconcile_interval_s=1.0, **orders))


def bitmex(sim: SimHandle, *, events: EventLog | None = None, config: GuardConfig | None = None,
           resolver: SimResolver | None = None, timeout_ms: int = 1500,
           metrics: Metrics | None = None) -> GuardedExchange:
    settings: dict[str, Any] = {"apiKey": sim.api_key, "secret": sim.api_secret,
                                "timeout": timeout_ms}
    base_url = None
    session = None
    if resolver is not None:  # every request resolves the name afresh through the simulator
        connector = aiohttp.TCPConnector(resolver=resolver, force_close=True,
                                         use_dns_cache=False)
        session = settings["session"] = aiohttp.ClientSession(connector=connector)
        port = sim.base_url.split(":")[2].split("/")[0]
        base_url = sim.base_url.replace(f"127.0.0.1:{port}", f"sim.venueguard.test:{port}")
    raw = ccxt_pro.bitmex(settings)
    point_at_sim(raw, sim, base_url)
    guarded = guard(raw, config or quick_config(), events=events or EventLog(), metrics=metrics)
    if session is not None:
        SESSIONS[id(guarded)] = session
    return guarded


SESSIONS: dict[int, aiohttp.ClientSession] = {}


async def close(exchange: GuardedExchange) -> None:
    """Close the guarded exchange and any session the test gave it."""
    await exchange.close()
    session = SESSIONS.pop(id(exchange), None)
    if session is not None:
        await session.close()


def seen(result: Any = None, error: BaseException | None = None) -> str:
    """What the bot saw: ``return``, ``UNKNOWN`` or the ccxt exception's class name."""
    if error is None:
        return "return"
    if isinstance(error, OrderUnknown):
        return "UNKNOWN"
    return type(error).__name__
