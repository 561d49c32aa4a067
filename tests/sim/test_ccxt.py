"""A real third-party BitMEX client (ccxt 4.5.78) against the simulator, only its URLs changed.

ccxt's websocket client stops reading after a few thousand messages with aiohttp 3.14
(see docs/peers.md), so the streams here stay short.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import pytest

from venueguard.sim.testing import SimHandle

pytestmark = pytest.mark.system


def _point_at(exchange: ccxt_async.bitmex, sim: SimHandle) -> None:
    exchange.urls["api"] = {**exchange.urls["api"], "public": sim.base_url,
                            "private": sim.base_url, "ws": sim.ws_url}


@pytest.fixture
async def rest(sim: SimHandle) -> AsyncIterator[ccxt_async.bitmex]:
    exchange = ccxt_async.bitmex({"apiKey": sim.api_key, "secret": sim.api_secret})
    _point_at(exchange, sim)
    try:
        yield exchange
    finally:
        await exchange.close()


async def test_rest_order_lifecycle_positions_and_trades(rest: ccxt_async.bitmex,
                                                         sim: SimHandle) -> None:
    book = await rest.fetch_order_book("BTC/USD:BTC")
    assert book["bids"] and book["asks"] and book["bids"][0][0] < book["asks"][0][0]
    low = book["bids"][0][0] - 500
    order = await rest.create_order("BTC/USD:BTC", "limit", "buy", 100, low,
                                    {"clOrdID": "ccxt-1"})
    assert order["id"] and order["status"] == "open" and order["clientOrderId"] == "ccxt-1"
    edited = await rest.edit_order(order["id"], "BTC/USD:BTC", "limit", "buy", 200, low - 0.5)
    # ccxt reports an inverse contract's orderQty as the order's cost
    assert edited["price"] == low - 0.5 and edited["cost"] == 200
    fetched = await rest.fetch_order(order["id"], "BTC/USD:BTC")
    assert fetched["id"] == order["id"] and fetched["status"] == "open"
    open_orders = await rest.fetch_open_orders("BTC/USD:BTC")
    assert [o["id"] for o in open_orders] == [order["id"]]
    canceled = await rest.cancel_order(order["id"], "BTC/USD:BTC")
    assert canceled["status"] == "canceled"
    # a market order fills against the simulator's liquidity
    filled = await rest.create_order("BTC/USD:BTC", "market", "buy", 100)
    assert filled["status"] == "closed" and filled["info"]["cumQty"] == 100
    trades = await rest.fetch_my_trades("BTC/USD:BTC")
    assert [t["order"] for t in trades] == [filled["id"]]
    positions = await rest.fetch_positions(["BTC/USD:BTC"])
    assert positions and positions[0]["contracts"] == 100 and positions[0]["side"] == "long"
    truth = await sim.truth()
    assert {o["clOrdID"] for o in truth["orders"]} >= {"ccxt-1"}


async def test_websocket_order_book_and_trades(sim_server) -> None:  # type: ignore[no-untyped-def]
    sim: SimHandle = await sim_server(rate=2000)
    exchange = ccxt_pro.bitmex({"apiKey": sim.api_key, "secret": sim.api_secret})
    _point_at(exchange, sim)
    try:
        book = await exchange.watch_order_book("BTC/USD:BTC")
        assert book["bids"] and book["asks"]
        for _ in range(5):
            book = await exchange.watch_order_book("BTC/USD:BTC")
        assert book["bids"][0][0] < book["asks"][0][0]
        trades = await exchange.watch_trades("BTC/USD:BTC")
        assert trades and all(t["symbol"] == "BTC/USD:BTC" for t in trades)
    finally:
        await exchange.close()


async def test_my_trades_and_orders_since_a_time_skip_the_pages_before_it(
        rest: ccxt_async.bitmex, sim: SimHandle) -> None:
    # ccxt pages by time (startTime) and drops rows older than ``since`` itself: a venue that
    # answered from the start of the account's history would fill the page with old rows,
    # ccxt would drop them all, and the trades after ``since`` would never be seen
    for _ in range(3):
        await rest.create_order("BTC/USD:BTC", "market", "buy", 100)
    await asyncio.sleep(0.01)
    mark = int(time.time() * 1000)
    await asyncio.sleep(0.01)
    late = await rest.create_order("BTC/USD:BTC", "market", "sell", 100)
    trades = await rest.fetch_my_trades("BTC/USD:BTC", mark, 2)
    assert [t["order"] for t in trades] == [late["id"]]
    assert len(await rest.fetch_my_trades("BTC/USD:BTC", None, 2)) == 2   # the first page
    orders = await rest.fetch_orders("BTC/USD:BTC", mark, 2)
    assert [o["id"] for o in orders] == [late["id"]]
    _, _, rows = await sim.request("GET", "/execution/tradeHistory", query={
        "symbol": "XBTUSD", "endTime": rest.iso8601(mark), "count": "10"})
    assert len(rows) == 3 and late["id"] not in {r["orderID"] for r in rows}
    status, _, body = await sim.request("GET", "/order", query={"startTime": "yesterday"})
    assert status == 400 and "Invalid startTime" in str(body)
