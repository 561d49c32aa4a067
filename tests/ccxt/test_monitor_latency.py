"""The ccxt monitor's REST latency is the venue's round trip, not ccxt's own rate-limit wait.

ccxt (``enableRateLimit``, its default) makes every call wait for a token of its throttler: one
``rateLimit`` interval on an idle exchange, a second or more after a costly call such as the
order-book snapshot of ``watch_order_book``. Timed around the whole call, that wait showed on
the dashboard as venue latency (p95 955 ms against 2-3 ms on the native path; docs/ccxt.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace

import ccxt.pro as ccxt_pro
import pytest

from venueguard.app.ccxt_feeds import CcxtVenue, point_at
from venueguard.ccxt import guard
from venueguard.io.clock import SYSTEM_CLOCK
from venueguard.sim.binance.testing import BinanceHandle, running_binance_sim

pytestmark = pytest.mark.system
SYMBOL = "BTC/USDT:USDT"
RATE_LIMIT_MS = 400  # ccxt's spacing between calls, made large so its wait is unmistakable


@pytest.fixture
async def sim() -> AsyncIterator[BinanceHandle]:
    async with running_binance_sim() as handle:
        yield handle


async def test_the_probe_reports_the_round_trip_not_ccxts_wait(sim: BinanceHandle) -> None:
    raw = ccxt_pro.binanceusdm({"rateLimit": RATE_LIMIT_MS})
    point_at(raw, sim.base_url, sim.ws_base)
    raw.options = {**raw.options, "fetchCurrencies": False, "fetchMargins": False}
    seen: list[tuple[str, int | None, float | None]] = []
    three = asyncio.Event()

    def on_request(endpoint: str, status: int | None, latency_s: float | None,
                   wall_s: float) -> None:
        seen.append((endpoint, status, latency_s))
        if len(seen) >= 3:
            three.set()

    async with guard(raw) as exchange:
        await exchange.load_markets()
        ctx = SimpleNamespace(
            clock=SYSTEM_CLOCK, config=SimpleNamespace(probe_interval_s=0.0),
            on_request=on_request)
        probe = CcxtVenue(exchange, SYMBOL, ctx)  # type: ignore[arg-type]
        started = time.monotonic()
        task = asyncio.create_task(probe.run())
        try:
            await asyncio.wait_for(three.wait(), 30)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        wall_s = time.monotonic() - started
    assert wall_s >= 2 * RATE_LIMIT_MS / 1000 * 0.9  # ccxt did make the calls wait
    for endpoint, status, latency_s in seen[:3]:
        assert endpoint == "fetch_ticker" and status == 200
        assert latency_s is not None and latency_s < RATE_LIMIT_MS / 1000 / 2, seen
