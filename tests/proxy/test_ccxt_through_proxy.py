"""ccxt 4.5.78 (Python), unchanged but for its URLs, through the proxy to the simulator: every
step of the health probe (instrument read, post-only order, cancel by client id), the order
lifecycle, positions and trades, and the websocket book, for the bitmex and binanceusdm classes;
and what ccxt sees under every fault kind, the same posted to the proxy as to the simulator.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import pytest
from proxy_client_outcomes import CCXT_REST, CCXT_STREAMS, REST_KINDS, WS_KINDS, lost

from venueguard.proxy.testing import Proxied
from venueguard.sim.binance.testing import point_ccxt

pytestmark = pytest.mark.system

BITMEX = "BTC/USD:BTC"
BINANCE = "BTC/USDT:USDT"


def _bitmex_at(exchange: ccxt_async.bitmex, base_url: str) -> None:
    ws = base_url.replace("http://", "ws://", 1) + "/realtime"
    exchange.urls["api"] = {**exchange.urls["api"], "public": base_url, "private": base_url,
                            "ws": ws}


async def test_bitmex_probe_steps_and_order_lifecycle(proxied: Proxied) -> None:
    sim, proxy = await proxied()
    exchange = ccxt_async.bitmex({"apiKey": sim.api_key, "secret": sim.api_secret})
    _bitmex_at(exchange, proxy.base_url)
    try:
        ticker = await exchange.fetch_ticker(BITMEX)  # GET /instrument: the probe's read
        assert ticker["symbol"] == BITMEX and ticker["last"] > 0
        book = await exchange.fetch_order_book(BITMEX)
        low = book["bids"][0][0] - 500
        probe = await exchange.create_order(BITMEX, "limit", "buy", 100, low,
                                            {"clOrdID": "probe-1", "execInst":
                                             "ParticipateDoNotInitiate"})
        assert probe["status"] == "open" and probe["clientOrderId"] == "probe-1"
        canceled = await exchange.cancel_order(None, BITMEX, {"clOrdID": "probe-1"})
        assert canceled["status"] == "canceled"
        edited_from = await exchange.create_order(BITMEX, "limit", "buy", 100, low)
        edited = await exchange.edit_order(edited_from["id"], BITMEX, "limit", "buy", 200,
                                           low - 0.5)
        assert edited["price"] == low - 0.5
        await exchange.cancel_order(edited_from["id"], BITMEX)
        filled = await exchange.create_order(BITMEX, "market", "buy", 100)
        assert filled["status"] == "closed"
        trades = await exchange.fetch_my_trades(BITMEX)
        assert [t["order"] for t in trades] == [filled["id"]]
        positions = await exchange.fetch_positions([BITMEX])
        assert positions[0]["contracts"] == 100
    finally:
        await exchange.close()
    truth = await sim.truth()
    # each intent reached the venue exactly once, signatures intact through the proxy
    assert truth["clOrdID_attempts"]["probe-1"] == 1
    assert {o["clOrdID"] for o in truth["orders"]} >= {"probe-1"}


async def test_bitmex_websocket_book_through_proxy(proxied: Proxied) -> None:
    sim, proxy = await proxied(rate=500)
    exchange = ccxt_pro.bitmex({"apiKey": sim.api_key, "secret": sim.api_secret})
    _bitmex_at(exchange, proxy.base_url)
    try:
        for _ in range(5):
            book = await exchange.watch_order_book(BITMEX)
        assert book["bids"] and book["asks"] and book["bids"][0][0] < book["asks"][0][0]
        trades = await exchange.watch_trades(BITMEX)
        assert trades and all(t["symbol"] == BITMEX for t in trades)
    finally:
        await exchange.close()
    assert proxy.server.ws_opened_total >= 1


async def test_binanceusdm_probe_steps_and_order_lifecycle(proxied: Proxied) -> None:
    sim, proxy = await proxied(dialect="binance-usdm", rate=200)
    exchange = ccxt_async.binanceusdm({"apiKey": sim.api_key, "secret": sim.api_secret})
    point_ccxt(exchange, proxy.base_url)
    try:
        markets = await exchange.load_markets()
        assert markets[BINANCE]["id"] == "BTCUSDT"
        ticker = await exchange.fetch_ticker(BINANCE)
        assert ticker["last"] > 0
        book = await exchange.fetch_order_book(BINANCE, 5)
        low = book["bids"][0][0] - 500
        probe = await exchange.create_order(BINANCE, "limit", "buy", 0.01, low,
                                            {"timeInForce": "GTX",
                                             "newClientOrderId": "probe-1"})
        assert probe["status"] == "open"
        canceled = await exchange.cancel_order(None, BINANCE,
                                               {"origClientOrderId": "probe-1"})
        assert canceled["status"] == "canceled"
        edited_from = await exchange.create_order(BINANCE, "limit", "buy", 0.01, low)
        edited = await exchange.edit_order(edited_from["id"], BINANCE, "limit", "buy", 0.02,
                                           low - 1)
        assert edited["amount"] == 0.02
        await exchange.cancel_order(edited_from["id"], BINANCE)
        filled = await exchange.create_order(BINANCE, "market", "buy", 0.01)
        assert filled["status"] == "closed"
        positions = await exchange.fetch_positions([BINANCE])
        assert positions[0]["contracts"] == pytest.approx(0.01)
    finally:
        await exchange.close()
    truth = await sim.truth()
    assert truth["clOrdID_attempts"]["probe-1"] == 1


async def test_binanceusdm_websocket_book_through_proxy(proxied: Proxied) -> None:
    sim, proxy = await proxied(dialect="binance-usdm", rate=200)
    exchange = ccxt_pro.binanceusdm({"apiKey": sim.api_key, "secret": sim.api_secret})
    point_ccxt(exchange, proxy.base_url)
    try:
        for _ in range(5):
            book = await exchange.watch_order_book(BINANCE)
        assert book["bids"] and book["asks"] and book["bids"][0][0] < book["asks"][0][0]
    finally:
        await exchange.close()
    assert proxy.server.ws_opened_total >= 1



@pytest.mark.parametrize("exchange_id", ["bitmex", "binanceusdm"])
async def test_each_rest_fault_reaches_ccxt_as_the_same_exception(proxied: Proxied,
                                                                  exchange_id: str) -> None:
    """ccxt's view of every REST fault: the exception it raises on create_order (or none) is
    the same posted to the simulator as posted to the proxy."""
    dialect = "bitmex" if exchange_id == "bitmex" else "binance-usdm"
    direct, _ = await proxied(dialect=dialect, rate=50.0)
    upstream, proxy = await proxied(dialect=dialect, rate=50.0)
    outcomes: dict[str, list[str]] = {}
    for sim, base, control in ((direct, direct.base_url, direct),
                               (upstream, proxy.base_url, proxy)):
        cls = ccxt_async.bitmex if exchange_id == "bitmex" else ccxt_async.binanceusdm
        exchange = cls({"apiKey": sim.api_key, "secret": sim.api_secret, "timeout": 5000})
        if exchange_id == "bitmex":
            _bitmex_at(exchange, base)
            symbol, amount, price = BITMEX, 100, 1000.0
        else:
            point_ccxt(exchange, base)
            symbol, amount, price = BINANCE, 0.01, 45000.0
        try:
            await exchange.load_markets()
            for kind, params in REST_KINDS:
                await control.add_fault(kind, duration_s=30, **params)
                try:
                    await exchange.create_order(symbol, "limit", "buy", amount, price)
                    seen = "ok"
                except ccxt_async.BaseError as exc:
                    seen = type(exc).__name__
                outcomes.setdefault(kind, []).append(seen)
                await control.clear_faults()
        finally:
            await exchange.close()
    for kind, (on_sim, on_proxy) in outcomes.items():
        assert on_sim == on_proxy, f"{kind}: simulator {on_sim}, proxy {on_proxy}"
    assert {kind: both[0] for kind, both in outcomes.items()} == CCXT_REST[exchange_id]



async def _book_under_fault(exchange: Any, symbol: str, control: Any, kind: str,
                            params: dict[str, Any], window_s: float = 1.5) -> str:
    """What ``watch_order_book`` gives for ``window_s`` after ``kind`` hits the stream:
    ccxt's error class, "silent" (no update), or "updates" with the book's time (fresh,
    stale: over 20 s old, future: over 20 s ahead), "after reconnecting" when ccxt opened a
    new connection meanwhile (see ``lost``)."""
    for _ in range(3):
        await exchange.watch_order_book(symbol)
    connections = set(map(id, exchange.clients.values()))
    await control.add_fault(kind, **params)
    updates, age_s = 0, 0.0
    end = time.monotonic() + window_s
    try:
        while (left := end - time.monotonic()) > 0:
            book = await asyncio.wait_for(exchange.watch_order_book(symbol), left)
            updates += 1
            age_s = time.time() - book["timestamp"] / 1000
    except TimeoutError:
        pass
    except ccxt_async.BaseError as exc:
        return type(exc).__name__
    finally:
        await control.clear_faults()
    seen = "silent" if updates == 0 else (
        "updates " + ("stale" if age_s > 20 else "future" if age_s < -20 else "fresh"))
    if set(map(id, exchange.clients.values())) - connections:
        seen += " after reconnecting"
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("exchange_id", ["bitmex", "binanceusdm"])
async def test_each_stream_fault_reaches_ccxt_pro_as_on_the_simulator(proxied: Proxied,
                                                                     exchange_id: str) -> None:
    """ccxt pro's view of every websocket fault on watch_order_book (its error, silence, or
    updates and how old their time is) is the same posted to the simulator as to the proxy."""
    dialect = "bitmex" if exchange_id == "bitmex" else "binance-usdm"
    direct, _ = await proxied(dialect=dialect, rate=200.0)
    upstream, proxy = await proxied(dialect=dialect, rate=200.0)
    symbol = BITMEX if exchange_id == "bitmex" else BINANCE
    outcomes: dict[str, list[str]] = {}
    for sim, base, control in ((direct, direct.base_url, direct),
                               (upstream, proxy.base_url, proxy)):
        for kind, params in WS_KINDS:  # a fresh client each time: a hit stream stays broken
            cls = ccxt_pro.bitmex if exchange_id == "bitmex" else ccxt_pro.binanceusdm
            exchange = cls({"apiKey": sim.api_key, "secret": sim.api_secret})
            if exchange_id == "bitmex":
                _bitmex_at(exchange, base)
            else:
                point_ccxt(exchange, base)
            try:
                seen = await _book_under_fault(exchange, symbol, control, kind, params)
            finally:
                await exchange.close()
            outcomes.setdefault(kind, []).append(seen)
    settled = {kind: [lost(seen) for seen in both] for kind, both in outcomes.items()}
    for kind, (on_sim, on_proxy) in settled.items():
        assert on_sim == on_proxy, f"{kind}: simulator, proxy: {outcomes[kind]}"
    assert {kind: both[0] for kind, both in settled.items()} == CCXT_STREAMS[exchange_id]
