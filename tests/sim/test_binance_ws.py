"""The Binance dialect's websocket: raw and combined streams, the depth sequence a client syncs
with by Binance's documented procedure, and the user data stream."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from venueguard.sim.binance.testing import BinanceHandle, running_binance_sim

pytestmark = [pytest.mark.system, pytest.mark.virtual_time]


@pytest.fixture
async def sim() -> AsyncIterator[BinanceHandle]:
    async with running_binance_sim(rate_msgs_s=5.0) as handle:
        yield handle


async def _frame(ws: aiohttp.ClientWebSocketResponse, timeout_s: float = 5.0) -> Any:
    msg = await ws.receive(timeout=timeout_s)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    return orjson.loads(msg.data)


def _apply(book: dict[str, dict[str, str]], event: dict[str, Any]) -> None:
    for side, key in (("bids", "b"), ("asks", "a")):
        for price, qty in event[key]:
            if float(qty) == 0:
                book[side].pop(price, None)
            else:
                book[side][price] = qty


async def test_documented_sync_on_the_live_stream_matches_snapshots(sim: BinanceHandle) -> None:
    matched = 0
    async with sim.session.ws_connect(f"{sim.ws_base}/ws/btcusdt@depth@100ms") as ws:
        history: list[dict[str, Any]] = [await _frame(ws)]  # raw events: no wrapper
        assert history[0]["e"] == "depthUpdate" and "stream" not in history[0]
        for _ in range(40):
            _, _, snap = await sim.call("GET", "/fapi/v1/depth",
                                        {"symbol": "BTCUSDT", "limit": 1000}, signed=False)
            lid = snap["lastUpdateId"]
            book = {"bids": dict(snap["bids"]), "asks": dict(snap["asks"])}
            prev_u = None
            index = 0
            while prev_u is None or prev_u < lid:
                if index == len(history):
                    history.append(await _frame(ws))
                event = history[index]
                index += 1
                if event["u"] < lid:
                    continue
                if prev_u is None:
                    assert event["U"] <= lid <= event["u"]
                else:
                    assert event["pu"] == prev_u
                _apply(book, event)
                prev_u = event["u"]
            if prev_u == lid:  # no change after the snapshot in that batch: books must agree
                assert book == {"bids": dict(snap["bids"]), "asks": dict(snap["asks"])}
                matched += 1
            if matched >= 3:
                break
            await asyncio.sleep(0.03)
    assert matched >= 3


async def test_combined_streams_wrap_events(sim: BinanceHandle) -> None:
    url = f"{sim.ws_base}/stream?streams=btcusdt@bookTicker/btcusdt@aggTrade"
    async with sim.session.ws_connect(url) as ws:
        seen: dict[str, dict[str, Any]] = {}
        async with asyncio.timeout(10):
            while len(seen) < 2:
                frame = await _frame(ws)
                seen[frame["stream"]] = frame["data"]
    ticker, trade = seen["btcusdt@bookTicker"], seen["btcusdt@aggTrade"]
    assert ticker["e"] == "bookTicker" and float(ticker["b"]) < float(ticker["a"])
    assert set(ticker) == {"e", "u", "s", "b", "B", "a", "A", "T", "E"}
    assert trade["e"] == "aggTrade" and set(trade) == {"e", "E", "a", "s", "p", "q", "f", "l",
                                                       "T", "m"}


async def test_user_stream_reports_fills_and_positions(sim: BinanceHandle) -> None:
    key = (await sim.call("POST", "/fapi/v1/listenKey", signed=False))[2]["listenKey"]
    async with sim.session.ws_connect(f"{sim.ws_base}/stream?streams={key}") as ws:
        status, _, order = await sim.call("POST", "/fapi/v1/order", {
            "symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.020",
            "newClientOrderId": "fill-1"})
        assert status == 200 and order["status"] == "FILLED"
        events: list[dict[str, Any]] = []
        async with asyncio.timeout(5):
            while not any(e["e"] == "ACCOUNT_UPDATE" for e in events):
                frame = await _frame(ws)
                assert frame["stream"] == key
                events.append(frame["data"])
    updates = [e["o"] for e in events if e["e"] == "ORDER_TRADE_UPDATE"]
    assert updates[0]["x"] == "NEW" and updates[-1]["X"] == "FILLED"
    trades = [u for u in updates if u["x"] == "TRADE"]
    assert trades and all(u["i"] == order["orderId"] and u["c"] == "fill-1" for u in trades)
    assert sum(float(u["l"]) for u in trades) == pytest.approx(0.02)
    account = next(e for e in events if e["e"] == "ACCOUNT_UPDATE")["a"]
    assert account["P"][0]["s"] == "BTCUSDT" and account["P"][0]["pa"] == "-0.020"
    assert account["B"][0]["a"] == "USDT"


async def test_depth_cadences_and_a_snapshot_spanned_on_each(sim: BinanceHandle) -> None:
    url = f"{sim.ws_base}/stream?streams=btcusdt@depth/btcusdt@depth@500ms"
    async with sim.session.ws_connect(url) as ws:
        _, _, snap = await sim.call("GET", "/fapi/v1/depth", {"symbol": "BTCUSDT", "limit": 5},
                                    signed=False)
        lid = snap["lastUpdateId"]
        events: dict[str, list[dict[str, Any]]] = {"btcusdt@depth": [],
                                                   "btcusdt@depth@500ms": []}
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.2):
                while True:
                    frame = await _frame(ws)
                    events[frame["stream"]].append(frame["data"])
    for name, interval_ms in (("btcusdt@depth", 250), ("btcusdt@depth@500ms", 500)):
        got = events[name]
        assert len(got) >= 2, name
        assert all(b["pu"] == a["u"] for a, b in itertools.pairwise(got))
        assert all(b["E"] - a["E"] >= 0.8 * interval_ms for a, b in itertools.pairwise(got))
        spanning = next(e for e in got if e["u"] >= lid)  # the snapshot's own id is spanned
        assert spanning["U"] <= lid <= spanning["u"]
