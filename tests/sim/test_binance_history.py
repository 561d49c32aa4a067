"""``GET /fapi/v1/userTrades`` and ``GET /fapi/v1/allOrders`` read their history parameters as
the venue does (docs/binance-dialect.md): a window by ``startTime``/``endTime`` of 7 days at
most, an id to page from, ``limit``; bad combinations get the venue's codes.

The simulator's clocks are driven by hand and its market stands still, so every fill happens
at a known time and against a known book.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from venueguard.sim.binance.history import WEEK_MS, Window, page, window
from venueguard.sim.binance.testing import BinanceHandle, running_binance_sim
from venueguard.sim.clock import SimClock

pytestmark = pytest.mark.system

START_S = 1_800_000_000.0
T0 = int(START_S * 1000)
STEP_MS = 60_000
TRADES = "/fapi/v1/userTrades"
ORDERS = "/fapi/v1/allOrders"


class Venue:
    """The simulator and its hand-driven clock (wall and monotonic move together)."""

    def __init__(self, sim: BinanceHandle, now: list[float]) -> None:
        self.sim = sim
        self.now = now

    def later(self, ms: int) -> None:
        self.now[0] += ms / 1000

    async def get(self, path: str, **params: Any) -> tuple[int, Any]:
        status, _, body = await self.sim.call("GET", path, {"symbol": "BTCUSDT", **params},
                                              timestamp_ms=round(self.now[0] * 1000))
        return status, body

    async def rows(self, path: str, **params: Any) -> list[dict[str, Any]]:
        status, body = await self.get(path, **params)
        assert status == 200, body
        assert isinstance(body, list)
        return body

    async def order(self, side: str, quantity: str, **extra: str) -> dict[str, Any]:
        status, _, body = await self.sim.call(
            "POST", "/fapi/v1/order", {"symbol": "BTCUSDT", "side": side, "type": "MARKET",
                                       "quantity": quantity, **extra},
            timestamp_ms=round(self.now[0] * 1000))
        assert status == 200, body
        return dict(body)


@pytest.fixture
async def venue() -> AsyncIterator[Venue]:
    now = [START_S]
    clock = SimClock(monotonic=lambda: now[0], wall=lambda: now[0])
    # a market of one event in ~12 days: the engine reaches the clock in one step, the book
    # stays as it started
    async with running_binance_sim(clock=clock, rate_msgs_s=1e-6,
                                   max_step_ms=3_600_000) as sim:
        yield Venue(sim, now)


async def _place(venue: Venue) -> None:
    """Five market orders a minute apart from T0, the fourth large enough to take several
    levels of the book."""
    for n, (side, qty) in enumerate([("BUY", "0.003"), ("SELL", "0.003"), ("BUY", "0.003"),
                                     ("SELL", "0.500"), ("BUY", "0.003")]):
        if n:
            venue.later(STEP_MS)
        await venue.order(side, qty)


async def _fills(venue: Venue) -> list[dict[str, Any]]:
    """:func:`_place`; returns every trade, as ``userTrades`` shows them with no parameter."""
    await _place(venue)
    trades = await venue.rows(TRADES)
    assert len(trades) >= 6
    return trades


def _at(trades: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    return [t for t in trades if t["time"] == T0 + n * STEP_MS]


async def test_user_trades_window_answers_from_its_start_oldest_first(venue: Venue) -> None:
    await _place(venue)
    # the first question names a window: ids are still in the order the trades happened
    later = await venue.rows(TRADES, startTime=T0 + STEP_MS, limit=1)
    trades = await venue.rows(TRADES)
    assert later == _at(trades, 1)
    assert [t["id"] for t in trades] == sorted(t["id"] for t in trades)
    assert [t["time"] for t in trades] == sorted(t["time"] for t in trades)
    big = _at(trades, 3)
    assert len(big) >= 2 and len({t["orderId"] for t in big}) == 1
    # startTime: the first `limit` trades from it, not the newest
    assert await venue.rows(TRADES, startTime=T0 + STEP_MS, limit=3) == (
        _at(trades, 1) + _at(trades, 2) + big[:1])
    assert await venue.rows(TRADES, startTime=T0 + STEP_MS, endTime=T0 + 2 * STEP_MS) == (
        _at(trades, 1) + _at(trades, 2))
    # endTime alone: the newest `limit` up to it (inclusive)
    assert await venue.rows(TRADES, endTime=T0 + 2 * STEP_MS, limit=2) == (
        _at(trades, 1) + _at(trades, 2))
    # startTime alone covers 7 days from it; endTime alone the 7 days before it
    assert await venue.rows(TRADES, startTime=T0 - WEEK_MS - 1) == []
    assert await venue.rows(TRADES, startTime=T0 - WEEK_MS) == _at(trades, 0)
    assert await venue.rows(TRADES, endTime=T0 + 4 * STEP_MS + WEEK_MS + 1) == []
    # exactly 7 days is allowed
    assert await venue.rows(TRADES, startTime=T0, endTime=T0 + WEEK_MS) == trades


async def test_user_trades_from_id_and_of_one_order(venue: Venue) -> None:
    trades = await _fills(venue)
    ids = [t["id"] for t in trades]
    assert await venue.rows(TRADES, fromId=ids[2], limit=2) == trades[2:4]
    assert await venue.rows(TRADES, fromId=ids[-1]) == trades[-1:]
    assert await venue.rows(TRADES, fromId=ids[-1] + 1) == []
    big = _at(trades, 3)
    assert await venue.rows(TRADES, orderId=big[0]["orderId"]) == big
    assert await venue.rows(TRADES, orderId=big[0]["orderId"], limit=1) == big[:1]
    assert await venue.rows(TRADES, orderId=1) == []
    assert await venue.rows(TRADES, limit=2) == trades[-2:]   # no parameter: the newest


@pytest.mark.parametrize(("params", "code", "msg"), [
    ({"fromId": 700_000_001, "startTime": T0}, -1128,
     "Combination of optional parameters invalid."),
    ({"fromId": 700_000_001, "endTime": T0}, -1128,
     "Combination of optional parameters invalid."),
    ({"startTime": T0 + 1, "endTime": T0}, -1023, "Start time is greater than end time."),
    ({"startTime": T0, "endTime": T0 + WEEK_MS + 1}, -1127,
     "More than 168 hours between startTime and endTime."),
    ({"startTime": "1e12"}, -1100,
     "Illegal characters found in parameter 'startTime'; legal range is '^[0-9]{1,20}$'."),
    ({"endTime": "-5"}, -1100,
     "Illegal characters found in parameter 'endTime'; legal range is '^[0-9]{1,20}$'."),
    ({"fromId": "x"}, -1100,
     "Illegal characters found in parameter 'fromId'; legal range is '^[0-9]{1,20}$'."),
    ({"orderId": "1.5"}, -1100,
     "Illegal characters found in parameter 'orderId'; legal range is '^[0-9]{1,20}$'."),
])
async def test_user_trades_refusals(venue: Venue, params: dict[str, Any], code: int,
                                    msg: str) -> None:
    await venue.order("BUY", "0.003")
    assert await venue.get(TRADES, **params) == (400, {"code": code, "msg": msg})


async def test_all_orders_from_order_id_and_window(venue: Venue) -> None:
    for n in range(4):
        if n:
            venue.later(STEP_MS)
        if n % 2:   # resting far below the market: its last update is its creation
            status, _, _ = await venue.sim.call("POST", "/fapi/v1/order", {
                "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                "quantity": "0.003", "price": "45000.0"}, timestamp_ms=round(venue.now[0] * 1000))
            assert status == 200
        else:
            await venue.order("BUY" if n else "SELL", "0.003")
    orders = await venue.rows(ORDERS)
    assert [o["updateTime"] for o in orders] == [T0 + n * STEP_MS for n in range(4)]
    assert [o["status"] for o in orders] == ["FILLED", "NEW", "FILLED", "NEW"]
    ids = [o["orderId"] for o in orders]
    assert ids == sorted(ids)
    # orderId: that order and the later ones, the first `limit`
    assert await venue.rows(ORDERS, orderId=ids[1], limit=2) == orders[1:3]
    assert await venue.rows(ORDERS, orderId=ids[3] + 1) == []
    assert await venue.rows(ORDERS, startTime=T0 + STEP_MS, limit=2) == orders[1:3]
    assert await venue.rows(ORDERS, startTime=T0 + STEP_MS, endTime=T0 + 2 * STEP_MS) == (
        orders[1:3])
    assert await venue.rows(ORDERS, endTime=T0 + 2 * STEP_MS, limit=1) == orders[2:3]
    assert await venue.rows(ORDERS, startTime=T0 - WEEK_MS - 1) == []
    assert await venue.rows(ORDERS, endTime=T0 + 3 * STEP_MS + WEEK_MS + 1) == []
    assert await venue.rows(ORDERS, limit=2) == orders[2:]
    for params, code in [({"startTime": T0 + 1, "endTime": T0}, -1023),
                         ({"startTime": T0, "endTime": T0 + WEEK_MS + 1}, -1127),
                         ({"orderId": "abc"}, -1100), ({"startTime": "soon"}, -1100)]:
        status, body = await venue.get(ORDERS, **params)
        assert (status, body["code"]) == (400, code), params


def test_window_defaults() -> None:
    now = T0 + WEEK_MS
    assert window({}, now, anchored=False) == Window(T0, None, newest=True)   # the last 7 days
    assert window({}, now, anchored=True) == Window(None, None, newest=False)
    assert window({"startTime": ""}, now, anchored=False) == Window(T0, None, newest=True)
    assert window({"endTime": str(now)}, now, anchored=True) == Window(T0, now, newest=False)
    assert page([1, 2, 3], 2, Window(None, None, newest=True)) == [2, 3]
    assert page([1, 2, 3], 2, Window(None, None, newest=False)) == [1, 2]
