"""ccxt 4.5.78's ``binanceusdm`` (REST and ccxt.pro) against the Binance dialect, only its URLs
changed (and the two spot-only lookups ccxt makes at load time switched off), and the ccxt
adapter paging through its fills.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import pytest

from venueguard.sim.binance.limits import Limits
from venueguard.sim.binance.testing import BinanceHandle, point_ccxt, running_binance_sim
from venueguard.venues.ccxt.adapter import CcxtAdapter
from venueguard.venues.ccxt.classify import venue_facts

pytestmark = pytest.mark.system

SYMBOL = "BTC/USDT:USDT"


@pytest.fixture
async def sim() -> AsyncIterator[BinanceHandle]:
    async with running_binance_sim(rate_msgs_s=200.0) as handle:
        yield handle


async def test_rest_markets_book_orders_trades_positions(sim: BinanceHandle) -> None:
    exchange = ccxt_async.binanceusdm({"apiKey": sim.api_key, "secret": sim.api_secret})
    point_ccxt(exchange, sim.base_url)
    try:
        markets = await exchange.load_markets()
        market = markets[SYMBOL]
        assert market["id"] == "BTCUSDT" and market["linear"] and market["swap"]
        assert market["precision"]["amount"] == 0.001 and market["limits"]["cost"]["min"] == 100
        book = await exchange.fetch_order_book(SYMBOL, 5)
        assert len(book["bids"]) == 5 and book["bids"][0][0] < book["asks"][0][0]
        assert book["nonce"] > 0
        low = book["bids"][0][0] - 500
        order = await exchange.create_order(SYMBOL, "limit", "buy", 0.01, low)
        assert order["status"] == "open" and order["amount"] == 0.01 and order["price"] == low
        assert order["clientOrderId"].startswith("x-")
        fetched = await exchange.fetch_order(order["id"], SYMBOL)
        assert fetched["id"] == order["id"] and fetched["status"] == "open"
        edited = await exchange.edit_order(order["id"], SYMBOL, "limit", "buy", 0.02, low - 1)
        assert edited["id"] == order["id"] and (edited["amount"], edited["price"]) == (
            0.02, low - 1)
        assert (await exchange.fetch_open_order(order["id"], SYMBOL))["amount"] == 0.02
        assert [o["id"] for o in await exchange.fetch_open_orders(SYMBOL)] == [order["id"]]
        canceled = await exchange.cancel_order(order["id"], SYMBOL)
        assert canceled["status"] == "canceled"
        assert await exchange.fetch_open_orders(SYMBOL) == []
        filled = await exchange.create_order(SYMBOL, "market", "buy", 0.01)
        assert filled["status"] == "closed" and filled["filled"] == 0.01
        trades = await exchange.fetch_my_trades(SYMBOL)
        assert trades and {t["order"] for t in trades} == {filled["id"]}
        assert sum(t["amount"] for t in trades) == pytest.approx(0.01)
        positions = await exchange.fetch_positions([SYMBOL])
        assert len(positions) == 1 and positions[0]["side"] == "long"
        assert positions[0]["contracts"] == pytest.approx(0.01)
        balance = await exchange.fetch_balance()
        assert balance["USDT"]["total"] > 0 and balance["USDT"]["used"] > 0
        truth = await sim.truth()
        assert {o["clOrdID"] for o in truth["orders"]} == {order["clientOrderId"],
                                                           filled["clientOrderId"]}
    finally:
        await exchange.close()


async def test_rest_errors_reach_ccxt_as_its_exceptions(sim: BinanceHandle) -> None:
    exchange = ccxt_async.binanceusdm({"apiKey": sim.api_key, "secret": sim.api_secret})
    point_ccxt(exchange, sim.base_url)
    try:
        await exchange.load_markets()
        with pytest.raises(ccxt_async.OrderNotFound):
            await exchange.fetch_order("123", SYMBOL)
        with pytest.raises(ccxt_async.OrderNotFound):
            await exchange.cancel_order("123", SYMBOL)
        wrong = ccxt_async.binanceusdm({"apiKey": sim.api_key, "secret": "not-the-secret"})
        point_ccxt(wrong, sim.base_url)
        wrong.markets, wrong.markets_by_id = exchange.markets, exchange.markets_by_id
        try:
            with pytest.raises(ccxt_async.AuthenticationError):
                await wrong.fetch_open_orders(SYMBOL)
        finally:
            await wrong.close()
    finally:
        await exchange.close()


async def test_pro_order_book_trades_and_orders(sim: BinanceHandle) -> None:
    exchange = ccxt_pro.binanceusdm({"apiKey": sim.api_key, "secret": sim.api_secret})
    point_ccxt(exchange, sim.base_url)
    try:
        book = await exchange.watch_order_book(SYMBOL)
        first_nonce = book["nonce"]
        for _ in range(5):
            book = await exchange.watch_order_book(SYMBOL)
        assert book["bids"] and book["asks"] and book["bids"][0][0] < book["asks"][0][0]
        # ccxt checks U <= nonce / pu == nonce on every delta and raises on a break
        assert book["nonce"] > first_nonce
        server_book = await exchange.fetch_order_book(SYMBOL, 1000)
        trades = await exchange.watch_trades(SYMBOL)
        assert trades and all(t["symbol"] == SYMBOL for t in trades)
        task = asyncio.ensure_future(exchange.watch_orders(SYMBOL))
        await asyncio.sleep(0.3)
        low = server_book["bids"][0][0] - 500
        placed = await exchange.create_order(SYMBOL, "limit", "buy", 0.01, low)
        seen = await asyncio.wait_for(task, 10)
        assert [o["id"] for o in seen] == [placed["id"]] and seen[0]["status"] == "open"
    finally:
        await exchange.close()


class _Direct:
    """The adapter's request pipeline reduced to the call itself."""

    async def call(self, endpoint: str, fn: Callable[[], Awaitable[Any]], *, idempotent: bool,
                   cl_ord_id: str | None = None) -> Any:
        return await fn()


async def test_fills_since_pages_through_more_than_a_page_each_fill_once(
        sim: BinanceHandle) -> None:
    # fetch_my_trades sends startTime=since; the adapter asks again from the newest time of
    # each full page (of 500), so it sees every fill only if the venue answers from startTime
    sim.venue.configure(limits=Limits(weight_per_min=10**9, orders_per_10s=10**9,
                                      orders_per_min=10**9))
    exchange = ccxt_async.binanceusdm({"apiKey": sim.api_key, "secret": sim.api_secret,
                                       "enableRateLimit": False})
    point_ccxt(exchange, sim.base_url)
    adapter = CcxtAdapter(exchange, _Direct(), venue_facts("binanceusdm"), symbols=[SYMBOL])

    async def fill(n: int) -> int:
        cid = f"page-{n}"
        status, _, placed = await sim.call("POST", "/fapi/v1/order", {
            "symbol": "BTCUSDT", "side": "BUY" if n % 2 else "SELL", "type": "MARKET",
            "quantity": "0.003", "newClientOrderId": cid})
        assert status == 200 and placed["status"] == "FILLED", placed
        adapter.rows[cid] = {"id": str(placed["orderId"]), "clientOrderId": cid}
        return int(placed["updateTime"])

    try:
        before = [await fill(n) for n in range(3)]
        await asyncio.sleep(0.005)
        since = max(before) + 1
        assert min([await fill(n) for n in range(3, 523)]) >= since
        status, _, every = await sim.call("GET", "/fapi/v1/userTrades",
                                          {"symbol": "BTCUSDT", "limit": 1000})
        assert status == 200 and len(every) < 1000
        expected = {f"{t['id']}:{t['orderId']}" for t in every if t["time"] >= since}
        assert 520 <= len(expected) < len(every)
        fills, unreadable = await adapter.fills_since(since)
        assert unreadable == []
        assert sorted(f.exec_id for f in fills) == sorted(expected)   # each exactly once
        assert all(f.client_id is not None and f.client_id.startswith("page-") and
                   int(f.client_id[5:]) >= 3 for f in fills)
    finally:
        await exchange.close()
