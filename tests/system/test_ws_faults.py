"""The market-data session against the simulator, one test per websocket fault.

The tests run in virtual time over the loop's in-memory network (they only need time to pass);
the busy-loop test needs a venue in another process and runs on loopback and the real clock.
Thresholds are short (freshness 1 s, heartbeat 0.3 s + 0.5 s) and the bounds generous.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest

from venueguard.core.backoff import BackoffConfig
from venueguard.core.kinds import Kind
from venueguard.core.liveness import DEFAULT_QUIET_CHANNELS, LivenessConfig
from venueguard.io import md_events as ev
from venueguard.io.clock import monotonic
from venueguard.io.errors import StreamError
from venueguard.io.ws_session import MarketDataSession, MdConfig
from venueguard.io.ws_transport import WsConnector, connect_aiohttp, connect_picows
from venueguard.sim.testing import SimHandle, running_sim
from venueguard.telemetry.events import EventLog
from venueguard.telemetry.metrics import Metrics

pytestmark = [pytest.mark.system, pytest.mark.virtual_time]

BOOK = "orderBookL2:XBTUSD"
TOPICS = (BOOK, "trade:XBTUSD", "quote:XBTUSD")
FRESH_S = 1.0

Factory = Callable[..., Awaitable[SimHandle]]


@pytest.fixture
async def sim_server() -> AsyncIterator[Factory]:
    async with AsyncExitStack() as stack:
        async def start(rate: float = 50.0, book_format: str = "modern",
                        **overrides: Any) -> SimHandle:
            return await stack.enter_async_context(running_sim(
                scenario="calm", seed=7, rate_msgs_s=rate, book_format=book_format,
                symbols=("XBTUSD",), **overrides))

        yield start


def liveness(**over: Any) -> LivenessConfig:
    base: dict[str, Any] = {
        "ping_after_s": 0.3, "pong_timeout_s": 0.5, "max_data_age_s": FRESH_S,
        "quiet_channels": DEFAULT_QUIET_CHANNELS | {"trade", "quote"},
        "max_ts_age_ms": 2_000, "future_tolerance_ms": 2_000, "reorder_window_ms": 0,
    }
    base.update(over)
    return LivenessConfig(**base)


def session_for(sim: SimHandle, log: EventLog, *, topics: tuple[str, ...] = TOPICS,
                metrics: Metrics | None = None, connector: WsConnector = connect_aiohttp,
                **config: Any) -> MarketDataSession:
    live = config.pop("liveness", liveness())
    return MarketDataSession(
        MdConfig(url=sim.ws_url, topics=topics, liveness=live,
                 backoff=BackoffConfig(base_s=0.05, cap_s=0.5), **config),
        events=log, metrics=metrics, connector=connector)


async def wait_event(log: EventLog, name: str, timeout_s: float = 5.0, *, after: int = 0,
                     **fields: object) -> dict[str, object]:
    """The first ``name`` record (past the first ``after`` ones) whose fields match."""
    deadline = monotonic() + timeout_s
    while monotonic() < deadline:
        found = [r for r in log.recent(event=name)
                 if all(r.get(k) == v for k, v in fields.items())]
        if len(found) > after:
            return found[after]
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {name} {fields} within {timeout_s} s: "
                         f"{[r['event'] for r in log.recent(40)]}")


async def assert_book_matches_sim(session: MarketDataSession, sim: SimHandle,
                                  timeout_s: float = 5.0) -> None:
    """The local book equals the simulator's (GET /orderBook/L2?depth=0) at some instant."""
    deadline = monotonic() + timeout_s
    local: dict[str, dict[float, float]] = {}
    venue: dict[str, dict[float, float]] = {}
    while monotonic() < deadline:
        status, _, rows = await sim.request("GET", "/orderBook/L2", signed=False,
                                            query={"symbol": "XBTUSD", "depth": 0})
        assert status == 200
        venue = {"Buy": {}, "Sell": {}}
        for row in rows:
            venue[row["side"]][float(row["price"])] = float(row["size"])
        local = session.book("XBTUSD").sides()
        if local == venue and session.book("XBTUSD").is_fresh:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"book differs: local {len(local.get('Buy', {}))}/"
                         f"{len(local.get('Sell', {}))} levels, venue "
                         f"{len(venue.get('Buy', {}))}/{len(venue.get('Sell', {}))}")


async def test_connects_subscribes_and_keeps_a_fresh_book(sim_server: Factory) -> None:
    sim = await sim_server()
    log, metrics = EventLog(), Metrics()
    async with session_for(sim, log, metrics=metrics) as session:
        await session.wait_synced(5)
        subscribed = {r["topic"] for r in log.recent(event="ws.subscribed")}
        assert subscribed == set(TOPICS)
        await assert_book_matches_sim(session, sim)
        await asyncio.sleep(1.2)  # one metrics tick
        text = metrics.render().decode()
        assert 'venueguard_best_bid{symbol="XBTUSD"}' in text
        assert 'venueguard_ws_last_data_age_seconds{channel="orderBookL2:XBTUSD"}' in text
        assert 'venueguard_ws_last_data_timestamp_seconds{channel="orderBookL2:XBTUSD"}' in text


@pytest.mark.parametrize("connector", [connect_aiohttp, connect_picows])
async def test_ws_stall_is_detected_within_threshold_and_resynced(sim_server: Factory,
                                                                  connector: WsConnector) -> None:
    sim = await sim_server()
    log = EventLog()
    async with session_for(sim, log, connector=connector) as session:
        await session.wait_synced(5)
        events = session.events()
        started = monotonic()
        await sim.add_fault("ws_stall")
        stale = await wait_event(log, "ws.stale", 5)
        detected_after_s = monotonic() - started
        assert stale["reason"] == "data_age"  # pongs were still answered
        assert detected_after_s <= FRESH_S + 1.0
        await wait_event(log, "ws.reconnecting")
        await wait_event(log, "book.resynced", 5, symbol="XBTUSD")
        await assert_book_matches_sim(session, sim)
        # the consumer saw the stale state before any new data
        seen: list[ev.MdEvent] = []
        async for event in events:
            seen.append(event)
            if isinstance(event, ev.BookResynced):
                break
        kinds = [type(e) for e in seen]
        assert kinds.index(ev.Stale) < kinds.index(ev.Reconnecting) < kinds.index(ev.BookResynced)


async def test_stale_book_is_never_presented_as_fresh(sim_server: Factory) -> None:
    sim = await sim_server()
    log = EventLog()
    async with session_for(sim, log) as session:
        await session.wait_synced(5)
        book = session.book("XBTUSD")
        assert book.is_fresh
        await sim.add_fault("ws_stall", new_connections=True)
        await wait_event(log, "ws.stale", 5)
        deadline = monotonic() + 2.0
        while monotonic() < deadline:  # reconnects keep stalling: never fresh again
            assert not book.is_fresh
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("connector", [connect_aiohttp, connect_picows])
async def test_ws_half_open_is_detected_by_pong_timeout(sim_server: Factory,
                                                        connector: WsConnector) -> None:
    sim = await sim_server()
    log = EventLog()
    slow_data = liveness(max_data_age_s=10.0)
    async with session_for(sim, log, liveness=slow_data, connector=connector) as session:
        await session.wait_synced(5)
        started = monotonic()
        await sim.add_fault("ws_half_open")
        stale = await wait_event(log, "ws.stale", 5)
        assert stale["reason"] == "pong_timeout"
        assert monotonic() - started <= 0.3 + 0.5 + 1.0
        await wait_event(log, "book.resynced", 5)
        await assert_book_matches_sim(session, sim)


async def test_ws_drop_reconnects_and_resubscribes_every_topic(sim_server: Factory) -> None:
    sim = await sim_server()
    log = EventLog()
    async with session_for(sim, log) as session:
        await session.wait_synced(5)
        await sim.add_fault("ws_drop")
        await wait_event(log, "ws.disconnected")
        reconnecting = await wait_event(log, "ws.reconnecting")
        assert reconnecting["attempt"] == 1 and 0 <= float(reconnecting["delay_s"]) <= 0.5
        await wait_event(log, "ws.connected", after=1)
        await wait_event(log, "book.resynced", 5)
        again = [r["topic"] for r in log.recent(event="ws.subscribed")][len(TOPICS):]
        assert sorted(again) == sorted(TOPICS)
        await assert_book_matches_sim(session, sim)


async def test_ws_reorder_is_rejected_and_the_book_resynced(sim_server: Factory) -> None:
    sim = await sim_server(rate=100.0)
    log, metrics = EventLog(), Metrics()
    async with session_for(sim, log, metrics=metrics) as session:
        await session.wait_synced(5)
        await sim.add_fault("ws_reorder", probability=0.5)
        rejected = await wait_event(log, "data.rejected", 5, reason="reorder")
        assert rejected["table"] in ("orderBookL2", "trade", "quote")
        await sim.clear_faults()
        await wait_event(log, "book.resynced", 5)
        await assert_book_matches_sim(session, sim)
        reorder = metrics.snapshot()["data_rejected_total"]
        assert isinstance(reorder, dict) and reorder["reason=reorder"] > 0


async def test_ws_duplicate_is_rejected_and_the_book_stays_right(sim_server: Factory) -> None:
    sim = await sim_server(rate=100.0)
    log = EventLog()
    async with session_for(sim, log) as session:
        await session.wait_synced(5)
        await sim.add_fault("ws_duplicate", probability=0.5)
        await wait_event(log, "data.rejected", 5, reason="duplicate")
        assert not log.recent(event="book.gap")  # a duplicate is dropped, never re-applied
        await assert_book_matches_sim(session, sim)


async def test_ws_stale_timestamps_are_rejected_not_fresh(sim_server: Factory) -> None:
    sim = await sim_server()
    log = EventLog()
    async with session_for(sim, log) as session:
        await session.wait_synced(5)
        await sim.add_fault("ws_stale_timestamps", delay_s=5.0, new_connections=True)
        await wait_event(log, "data.rejected", 5, reason="stale")
        deadline = monotonic() + 1.5
        while monotonic() < deadline:  # reconnects get stale data too: never fresh
            assert not session.book("XBTUSD").is_fresh
            await asyncio.sleep(0.01)
        assert session.state.counters.rejected >= 2


async def test_ws_future_timestamps_are_rejected(sim_server: Factory) -> None:
    sim = await sim_server()
    log = EventLog()
    async with session_for(sim, log) as session:
        await session.wait_synced(5)
        await sim.add_fault("ws_future_timestamps", ahead_s=10.0)
        await wait_event(log, "data.rejected", 5, reason="future")
        await wait_event(log, "book.resynced", 5)  # a new connection is healthy
        await assert_book_matches_sim(session, sim)


async def test_ws_gap_triggers_a_resync(sim_server: Factory) -> None:
    sim = await sim_server(rate=200.0)
    log = EventLog()
    async with session_for(sim, log) as session:
        await session.wait_synced(5)
        await sim.add_fault("ws_gap", count=60)
        gap = await wait_event(log, "book.gap", 15)
        assert gap["symbol"] == "XBTUSD"
        await wait_event(log, "book.resynced", 5)
        await assert_book_matches_sim(session, sim)


async def test_authenticated_session_gets_private_topics(sim_server: Factory) -> None:
    sim = await sim_server()
    log = EventLog()
    topics = (BOOK, "order", "execution", "position")
    async with session_for(sim, log, topics=topics, api_key=sim.api_key,
                           api_secret=sim.api_secret) as session:
        await session.wait_synced(5)
        assert {r["topic"] for r in log.recent(event="ws.subscribed")} == set(topics)
        assert sim.api_secret not in str(log.recent())


async def test_invalid_key_stops_without_retry_and_alerts(sim_server: Factory) -> None:
    sim = await sim_server()
    log = EventLog()
    session = session_for(sim, log, topics=(BOOK, "order"), api_key=sim.api_key,
                          api_secret="not-the-secret-" + "x" * 20)
    with pytest.raises(StreamError) as failed:
        await asyncio.wait_for(session.run(), 5)
    assert failed.value.kind is Kind.INVALID_CREDENTIALS
    assert not log.recent(event="ws.reconnecting")
    alerts = log.recent(event="alert")
    assert alerts and alerts[-1]["tier"] == "critical"


@pytest.mark.real_time
async def test_busy_event_loop_is_not_mistaken_for_a_dead_venue() -> None:
    """Regression guard: a loop blocked past the freshness threshold drains before deciding.

    The simulator runs in its own process here, so the venue keeps sending while this process is
    blocked, as a real venue would.
    """
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "venueguard", "sim", "--port", "0", "--rate", "100",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().strip()
        ws_url = line.removeprefix("listening on ").replace("http://", "ws://") + "/realtime"
        log = EventLog()
        config = MdConfig(url=ws_url, topics=(BOOK,), liveness=liveness(max_data_age_s=0.5),
                          backoff=BackoffConfig(base_s=0.05, cap_s=0.5))
        async with MarketDataSession(config, events=log) as session:
            await session.wait_synced(10)
            await asyncio.sleep(0.3)
            time.sleep(1.5)  # noqa: ASYNC251 - a handler hogging the loop, on purpose
            await asyncio.sleep(0.5)
            assert not log.recent(event="ws.stale")
            assert session.lag.max_s >= 1.0  # the block was seen as lag, not as silence
            assert session.book("XBTUSD").is_fresh
    finally:
        proc.terminate()
        await proc.wait()


@pytest.mark.parametrize("book_format", ["modern", "legacy"])
async def test_both_book_formats_and_the_top_25_table_match_the_simulator(
        sim_server: Factory, book_format: str) -> None:
    sim = await sim_server(book_format=book_format)
    log = EventLog()
    topics = (BOOK, "orderBookL2_25:XBTUSD")
    async with session_for(sim, log, topics=topics) as session:
        await session.wait_synced(5)
        await assert_book_matches_sim(session, sim)
        deadline = monotonic() + 5.0
        while True:
            status, _, rows = await sim.request("GET", "/orderBook/L2", signed=False,
                                                query={"symbol": "XBTUSD", "depth": 25})
            assert status == 200
            venue: dict[str, dict[float, float]] = {"Buy": {}, "Sell": {}}
            for row in rows:
                venue[row["side"]][float(row["price"])] = float(row["size"])
            if session.book("XBTUSD", "orderBookL2_25").sides() == venue:
                break
            assert monotonic() < deadline, "orderBookL2_25 never matched the top 25"
            await asyncio.sleep(0.02)
        assert not log.recent(event="book.gap")
