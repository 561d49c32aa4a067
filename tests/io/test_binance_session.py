"""The native Binance USDⓈ-M session against the simulator's Binance dialect, over loopback:
it syncs every depth book by Binance's procedure and keeps it equal to the venue's, and a
stall, a half-open connection, a gap and a reorder are each detected within the threshold
(+ 0.1 s) and resynced. Simulator, session and the independent client share one virtual-time
loop (docs/virtual-time.md): the thresholds pass in no real time, and a loaded machine cannot
make a timer late."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest

from venueguard.core.liveness import LivenessConfig
from venueguard.io import md_events as ev
from venueguard.io.binance_session import BinanceMarketDataSession, binance_config
from venueguard.io.clock import monotonic
from venueguard.io.ws_transport import connect_aiohttp
from venueguard.sim.binance.testing import BinanceHandle, running_binance_sim
from venueguard.telemetry.metrics import Metrics

pytestmark = [pytest.mark.system, pytest.mark.virtual_time]

STALE_S = 1.0  # data age threshold of these tests
PONG_S = 0.5


@pytest.fixture
async def sim() -> AsyncIterator[BinanceHandle]:
    async with running_binance_sim(rate_msgs_s=400.0, symbols=("BTCUSDT", "ETHUSDT")) as h:
        yield h


def session_for(sim: BinanceHandle, metrics: Metrics | None = None, *,
                depth_only: bool = False) -> BinanceMarketDataSession:
    live = LivenessConfig(ping_after_s=0.5, pong_timeout_s=PONG_S, max_data_age_s=STALE_S,
                          quiet_channels=frozenset({"aggTrade", "bookTicker"}))
    symbols = ["BTCUSDT"] if depth_only else ["BTCUSDT", "ETHUSDT"]
    config = binance_config(sim.ws_base, sim.base_url, symbols, liveness=live,
                            ticker=not depth_only, trades=not depth_only)
    return BinanceMarketDataSession(config, metrics=metrics, connector=connect_aiohttp)


async def wait_for(stream: AsyncIterator[ev.MdEvent], kind: type, timeout_s: float
                   ) -> ev.MdEvent:
    async with asyncio.timeout(timeout_s):
        async for event in stream:
            if isinstance(event, kind):
                return event
    raise AssertionError("the session ended")


async def independent_books(sim: BinanceHandle, symbol: str, seconds: float
                            ) -> dict[int, tuple[list[tuple[float, float]], ...]]:
    """A raw client on the same stream, synced by Binance's procedure written out here:
    the book after each diff, by the diff's ``u``."""
    out: dict[int, tuple[list[tuple[float, float]], ...]] = {}
    url = f"{sim.ws_base}/stream?streams={symbol.lower()}@depth@100ms"
    async with sim.session.ws_connect(url) as ws:
        _, _, snap = await sim.call("GET", "/fapi/v1/depth", {"symbol": symbol, "limit": 1000},
                                    signed=False)
        sides = {"b": dict(snap["bids"]), "a": dict(snap["asks"])}
        last, prev = snap["lastUpdateId"], None
        deadline = monotonic() + seconds
        while monotonic() < deadline:
            data = orjson.loads((await ws.receive(timeout=2.0)).data)["data"]
            if data["u"] < last:
                continue
            assert (data["U"] <= last <= data["u"]) if prev is None else data["pu"] == prev
            for key in ("b", "a"):
                for price, qty in data[key]:
                    if float(qty) == 0:
                        sides[key].pop(price, None)
                    else:
                        sides[key][price] = qty
            prev = data["u"]
            out[prev] = (sorted(((float(p), float(q)) for p, q in sides["b"].items()),
                                reverse=True),
                         sorted((float(p), float(q)) for p, q in sides["a"].items()))
    return out


async def test_books_sync_and_match_an_independent_client(sim: BinanceHandle) -> None:
    session = session_for(sim)
    async with session:
        await session.wait_synced(10.0)
        assert session.synced and session.book("BTCUSDT").is_fresh
        book = session.book("BTCUSDT").book
        assert book.config.whole_sizes is False and book._tick is not None  # from exchangeInfo
        seen: dict[int, tuple[list[tuple[float, float]], ...]] = {}
        sync = session.binance.depth.syncs["BTCUSDT"]

        async def sample() -> None:
            while True:
                if sync.last_id is not None and book.valid:
                    seen[sync.last_id] = book.depth()  # read in one go: consistent
                await asyncio.sleep(0.01)

        sampler = asyncio.get_running_loop().create_task(sample())
        try:
            expected = await independent_books(sim, "BTCUSDT", 2.0)
        finally:
            sampler.cancel()
        common = set(seen) & set(expected)
        assert len(common) >= 5
        for update_id in common:
            assert seen[update_id] == expected[update_id]
        assert session.trades("BTCUSDT") is not None
        assert session.quote("BTCUSDT") is not None
        assert session.binance.counters.rejected == 0


@pytest.mark.parametrize(("kind", "reason", "threshold_s"), [
    ("ws_stall", "data_age", STALE_S),
    ("ws_half_open", None, STALE_S),  # data and pongs stop: whichever deadline comes first
])
async def test_a_silent_connection_is_detected_within_the_threshold_and_resynced(
        sim: BinanceHandle, kind: str, reason: str | None, threshold_s: float) -> None:
    session = session_for(sim)
    async with session:
        events = session.events()
        await session.wait_synced(10.0)
        started = monotonic()
        await sim.add_fault(kind)
        stale = await wait_for(events, ev.Stale, 10.0)
        took = monotonic() - started
        assert isinstance(stale, ev.Stale) and (reason is None or stale.reason == reason)
        assert stale.age_s <= threshold_s + 0.1  # flagged once the threshold passed, not later
        assert took <= threshold_s + 1.0  # virtual time from the fault
        await sim.clear_faults()
        await wait_for(events, ev.BookResynced, 10.0)
        await session.wait_synced(10.0)


@pytest.mark.parametrize("kind", ["ws_gap", "ws_reorder"])
async def test_a_gap_or_reorder_is_a_resync(sim: BinanceHandle, kind: str) -> None:
    """One depth stream only, so every event the fault swaps or drops is a depth diff."""
    session = session_for(sim, depth_only=True)
    async with session:
        events = session.events()
        await session.wait_synced(10.0)
        started = monotonic()
        await sim.add_fault(kind, count=3) if kind == "ws_gap" else await sim.add_fault(kind)
        gap = await wait_for(events, ev.BookGap, 5.0)
        assert isinstance(gap, ev.BookGap) and gap.table == "depth"
        assert monotonic() - started <= 0.1 + 0.5  # the next diffs (every 100 ms) show it
        await sim.clear_faults()
        await wait_for(events, ev.BookResynced, 10.0)
        await session.wait_synced(10.0)
        assert session.book("BTCUSDT").is_fresh


async def test_a_reordered_ticker_is_refused_and_counted_without_a_resync(
        sim: BinanceHandle) -> None:
    metrics = Metrics()
    session = session_for(sim, metrics)
    async with session:
        events = session.events()
        await session.wait_synced(10.0)
        await sim.add_fault("ws_reorder", probability=1.0)
        async with asyncio.timeout(5.0):
            async for event in events:
                if isinstance(event, ev.DataRejected) and event.table == "bookTicker":
                    assert event.reason in ("reorder", "stale")
                    break
        assert "venueguard_data_rejected_total" in metrics.render().decode()


async def test_the_connection_is_renewed_before_the_venue_limit(sim: BinanceHandle) -> None:
    """Binance closes a connection after 24 h; the session reconnects first (here after 1 s)."""
    config = binance_config(sim.ws_base, sim.base_url, ["BTCUSDT"], max_connection_age_s=1.0)
    assert binance_config(sim.ws_base, sim.base_url, ["BTCUSDT"]).max_connection_age_s == \
        24 * 3600 - 600
    session = BinanceMarketDataSession(config, connector=connect_aiohttp)
    async with session:
        events = session.events()
        await session.wait_synced(10.0)
        ended = await wait_for(events, ev.Disconnected, 5.0)
        assert isinstance(ended, ev.Disconnected) and ended.reason == "connection age limit"
        await wait_for(events, ev.BookResynced, 10.0)
        assert session.attempt >= 1
