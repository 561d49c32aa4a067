"""ccxt 4.5.78 (Python), unchanged but for its URLs, through the proxy to the simulator: every
step of the health probe (instrument read, post-only order, cancel by client id), the order
lifecycle, positions and trades, and the websocket book, for the bitmex and binanceusdm classes.
"""

from __future__ import annotations

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import pytest

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
