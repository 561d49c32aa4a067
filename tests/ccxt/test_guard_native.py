"""Guarded streams served natively: on bitmex and binanceusdm, ``watch_order_book``,
``watch_trades`` and ``watch_ticker`` come from venueguard's own sessions in ccxt's shapes, and
ccxt's reader is never started; other venues and ``native_streams=False`` keep ccxt's."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from dataclasses import replace
from typing import Any

import ccxt
import ccxt.pro as ccxt_pro
import pytest

from venueguard.ccxt import GuardedExchange, StreamConfig, guard
from venueguard.core.freshness import FreshnessConfig
from venueguard.core.liveness import Liveness
from venueguard.sim.binance.testing import point_ccxt, running_binance_sim
from venueguard.telemetry.events import EventLog
from venueguard.telemetry.metrics import Metrics

from ccxt_testkit import SYMBOL, SimFactory, bitmex, close, quick_config

pytestmark = pytest.mark.system


def assert_book_shape(book: dict[str, object], symbol: str) -> None:
    assert {"bids", "asks", "timestamp", "datetime", "nonce", "symbol"} <= set(book)
    assert book["symbol"] == symbol and isinstance(book["timestamp"], int)
    bids, asks = book["bids"], book["asks"]
    assert isinstance(bids, list) and isinstance(asks, list) and bids and asks
    assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)
    assert [p for p, _ in asks] == sorted(p for p, _ in asks)
    assert bids[0][0] < asks[0][0] and all(s > 0 for _, s in bids + asks)


async def test_bitmex_streams_come_from_the_native_session(sim_server: SimFactory) -> None:
    sim = await sim_server(rate=200.0)
    exchange = bitmex(sim, events=EventLog())
    try:
        assert exchange.native is not None
        first = await asyncio.wait_for(exchange.watch_order_book(SYMBOL), 10.0)
        assert_book_shape(first, SYMBOL)
        book = await asyncio.wait_for(exchange.watch_order_book(SYMBOL), 5.0)
        assert book["nonce"] > first["nonce"]  # a later call returns newer data
        top = await asyncio.wait_for(exchange.watch_order_book(SYMBOL, 3), 5.0)
        assert len(top["bids"]) == 3 and len(top["asks"]) == 3
        feed = exchange.native._feeds[SYMBOL]
        view = feed.session.book(feed.market_id)
        bids, asks = view.book.depth(3)
        assert top["bids"] == [[p, s] for p, s in bids] and top["asks"] == [[p, s] for p, s in asks]
        trades = await asyncio.wait_for(exchange.watch_trades(SYMBOL), 10.0)
        assert trades and {"id", "symbol", "timestamp", "side", "price", "amount"} <= set(trades[0])
        assert trades[0]["symbol"] == SYMBOL and trades[0]["side"] in ("buy", "sell")
        ticker = await asyncio.wait_for(exchange.watch_ticker(SYMBOL), 5.0)
        assert ticker["bid"] < ticker["ask"] and ticker["symbol"] == SYMBOL
        assert exchange.is_fresh("orderbook", SYMBOL)
        assert not exchange.raw.clients  # ccxt's reader was never started
    finally:
        await close(exchange)


async def test_an_unknown_symbol_raises_as_ccxt_does(sim_server: SimFactory) -> None:
    sim = await sim_server(rate=50.0)
    exchange = bitmex(sim)
    try:
        with pytest.raises(ccxt.BadSymbol):
            await asyncio.wait_for(exchange.watch_order_book("NOPE/USD:BTC"), 10.0)
    finally:
        await close(exchange)


async def test_opting_out_keeps_ccxts_reader(sim_server: SimFactory) -> None:
    sim = await sim_server(rate=50.0)
    exchange = bitmex(sim, config=replace(quick_config(), native_streams=False))
    try:
        assert exchange.native is None
        book = await asyncio.wait_for(exchange.watch_order_book(SYMBOL), 10.0)
        assert book["bids"] and exchange.raw.clients
    finally:
        await close(exchange)


async def test_binanceusdm_streams_come_from_the_native_session() -> None:
    async with running_binance_sim(rate_msgs_s=200.0) as sim:
        raw = ccxt_pro.binanceusdm()
        point_ccxt(raw, sim.base_url)
        async with guard(raw) as exchange:
            symbol = "BTC/USDT:USDT"
            book = await asyncio.wait_for(exchange.watch_order_book(symbol), 10.0)
            assert_book_shape(book, symbol)
            feed = exchange.native._feeds[symbol]
            assert book["nonce"] == feed.session.binance.depth.syncs["BTCUSDT"].last_id
            trades = await asyncio.wait_for(exchange.watch_trades(symbol), 10.0)
            assert trades and trades[0]["symbol"] == symbol
            assert isinstance(trades[0]["timestamp"], int)
            ticker = await asyncio.wait_for(exchange.watch_ticker(symbol), 5.0)
            assert ticker["bid"] < ticker["ask"]
            assert not raw.clients


@pytest.mark.parametrize("native", [True, False], ids=["native", "ccxt-reader"])
async def test_the_guards_freshness_config_decides_each_stream(sim_server: SimFactory,
                                                               native: bool) -> None:
    """``StreamConfig.freshness`` reaches the stream whoever reads it (a native session, or
    ccxt's reader under the guard's checks): learned, a stall is declared at the channel's
    learned threshold with its suspicion; static, at the kind's bound. A short warm-up (20 gaps
    over 2 s) stands in for the default 30 s; bounds are generous for a loaded machine."""
    sim = await sim_server(rate=100.0)
    streams = StreamConfig(max_age_s={"orderbook": 5.0, "ticker": 15.0, "trades": 60.0},
                           first_data_s=5.0, max_ts_age_ms=2_000)
    modes = {"learned": FreshnessConfig(warmup=20, warmup_s=2.0),
             "static": FreshnessConfig(enabled=False)}
    logs = {name: EventLog() for name in modes}
    metrics = Metrics()
    exchanges = {name: bitmex(sim, events=logs[name], config=replace(
        quick_config(), native_streams=native, streams=replace(streams, freshness=fresh)),
        metrics=metrics if name == "learned" else None)
        for name, fresh in modes.items()}

    def liveness(name: str) -> tuple[Liveness, str]:
        exchange = exchanges[name]
        if native:
            assert exchange.native is not None and not exchange.raw.clients
            feed = exchange.native._feeds[SYMBOL]
            return feed.session.state.liveness, f"orderBookL2:{feed.market_id}"
        return exchange.streams.liveness, f"orderbook:{SYMBOL}"

    async def read(exchange: GuardedExchange) -> None:
        while True:
            await exchange.watch_order_book(SYMBOL)

    readers = [asyncio.create_task(read(exchange)) for exchange in exchanges.values()]
    try:
        deadline = time.monotonic() + 30.0
        while True:
            await asyncio.sleep(0.1)
            with contextlib.suppress(KeyError):
                live, channel = liveness("learned")
                detector = live.detector(channel)
                if detector is not None and detector.learned:
                    break
            assert time.monotonic() < deadline, "the learned model did not warm up"
        learned_limit = live.limit_s(channel)
        assert learned_limit is not None and learned_limit < 5.0

        def exported(name: str) -> Any:
            values = metrics.snapshot()[name]
            return values.get(f"channel={channel}") if isinstance(values, dict) else None

        while (exported("ws_freshness_threshold_seconds") or 99.0) >= 5.0:  # next flush
            assert time.monotonic() < deadline, "the learned threshold was not exported"
            await asyncio.sleep(0.1)
        suspicion = exported("ws_freshness_suspicion")
        assert isinstance(suspicion, float) and math.isfinite(suspicion)  # NaN while static
        static, static_channel = liveness("static")
        assert static.detector(static_channel) is None
        await sim.add_fault("ws_stall")
        deadline = time.monotonic() + 20.0
        while not all(log.recent(event="ws.stale") for log in logs.values()):
            assert time.monotonic() < deadline, "no ws.stale"
            await asyncio.sleep(0.1)
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await sim.clear_faults()
        for exchange in exchanges.values():
            await close(exchange)
    stale = logs["learned"].recent(event="ws.stale")[0]
    assert stale["reason"] == "data_age" and stale["threshold_s"] < 5.0
    assert isinstance(stale["suspicion"], float) and stale["suspicion"] > 0
    stale = logs["static"].recent(event="ws.stale")[0]
    assert stale["reason"] == "data_age" and stale["threshold_s"] == 5.0
    assert "suspicion" not in stale
