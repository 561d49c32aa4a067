"""Fixtures for the ccxt bridge: a programmable fake venue and the simulator in-process.

``fake_venue`` is an HTTP server on 127.0.0.1 that answers every request with the next queued
``(status, body)`` (the last one repeats) and records what it received; ``point_at(exchange,
origin)`` rewrites every URL of a ccxt exchange object to it. ``sim_server`` is the
simulator factory of ``tests/sim/conftest.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from ccxt_testkit import FakeVenue


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
