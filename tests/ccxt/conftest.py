"""Fixtures for the ccxt bridge: a programmable fake venue and the simulator in-process.

``fake_venue`` is an HTTP server on 127.0.0.1 that answers every request with the next queued
``(status, body)`` (the last one repeats) and records what it received; ``point_at(exchange,
origin)`` rewrites every URL of a ccxt exchange object to it. ``sim_server`` is the
simulator factory of ``tests/sim/conftest.py``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web

from venueguard.sim.testing import SimHandle, running_sim

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


@pytest.fixture
async def fake_venue() -> AsyncIterator[FakeVenue]:
    venue = FakeVenue()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", venue.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    venue.origin = f"http://127.0.0.1:{port}"
    try:
        yield venue
    finally:
        await runner.cleanup()


@pytest.fixture
async def sim_server() -> AsyncIterator[SimFactory]:
    async with AsyncExitStack() as stack:
        async def start(scenario: str | None = "calm", seed: int = 1, rate: float = 50.0,
                        book_format: str = "modern", symbols: Sequence[str] = ("XBTUSD",),
                        **overrides: Any) -> SimHandle:
            return await stack.enter_async_context(running_sim(
                scenario=scenario, seed=seed, rate_msgs_s=rate, book_format=book_format,
                symbols=tuple(symbols), **overrides))

        yield start
