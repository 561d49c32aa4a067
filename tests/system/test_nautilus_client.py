"""nautilus_trader's own BitMEX adapter, pointed at the simulator's URLs and nothing else changed.

Drives its Rust-cored HTTP client (instruments, server time, account state, order submit / modify /
cancel / status reports, fills, positions) and its websocket client (book and trades). The book
check uses a recording the test makes from the live simulator, served through ``--replay``: the
book nautilus builds must equal the naive reference replay of the same messages.

nautilus_trader is large, so it is a test-only extra (``venueguard[nautilus]``) that ``make test``
installs; without it these tests skip and say so.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from venueguard.sim.testing import SimHandle, running_sim

pytest.importorskip("nautilus_trader", reason="nautilus_trader is not installed "
                    "(pip install -e '.[nautilus]'; make test installs it)")

from nautilus_trader.core import nautilus_pyo3 as n
from nautilus_trader.model.book import OrderBook
from nautilus_trader.model.data import (
    OrderBookDelta,
    OrderBookDeltas,
    TradeTick,
    capsule_to_data,
)
from nautilus_trader.model.enums import BookType
from nautilus_trader.model.identifiers import InstrumentId

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "venues"))
from reference_book import replay_reference

pytestmark = pytest.mark.system

ACCOUNT = n.AccountId("BITMEX-1")


def _http(sim: SimHandle) -> Any:
    return n.BitmexHttpClient(api_key=sim.api_key, api_secret=sim.api_secret,
                              base_url=sim.api_url, max_retries=0, timeout_secs=10)


async def _until(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_http_client_trades_against_the_simulator() -> None:
    async with running_sim(scenario="calm", seed=5, rate_msgs_s=100.0,
                           rest_per_min=10_000) as sim:
        http = _http(sim)
        instruments = await http.request_instruments(True)
        assert [str(i.id) for i in instruments] == ["XBTUSD.BITMEX"]
        for instrument in instruments:
            http.add_instrument(instrument)
        iid = instruments[0].id
        server_ms = await http.http_get_server_time()
        assert abs(server_ms - sim.server.clock.wall_s() * 1000) < 60_000
        state = await http.request_account_state(ACCOUNT)
        balances = [b.to_dict() for b in state.balances]
        assert [(b["currency"], b["total"]) for b in balances] == [("XBT", "1.00000000")]

        # a resting limit order: submit, query, modify, list, cancel
        book = await sim.request("GET", "/orderBook/L2", signed=False,
                                 query={"symbol": "XBTUSD", "depth": 1})
        bid = max(r["price"] for r in book[2] if r["side"] == "Buy")
        rest_px = n.Price.from_str(f"{bid - 1000:.1f}")
        report = await http.submit_order(iid, n.ClientOrderId("NT-REST-1"), n.OrderSide.BUY,
                                         n.OrderType.LIMIT, n.Quantity.from_int(100),
                                         n.TimeInForce.GTC, price=rest_px, post_only=True)
        assert str(report.order_status) == "ACCEPTED" and str(report.client_order_id) == \
            "NT-REST-1"
        queried = await http.query_order(iid, client_order_id=n.ClientOrderId("NT-REST-1"))
        assert queried is not None and queried.venue_order_id == report.venue_order_id
        moved = await http.modify_order(iid, client_order_id=n.ClientOrderId("NT-REST-1"),
                                        quantity=n.Quantity.from_int(200))
        assert str(moved.quantity) == "200"
        open_reports = await http.request_order_status_reports(iid, open_only=True)
        assert [str(r.client_order_id) for r in open_reports] == ["NT-REST-1"]
        canceled = await http.cancel_order(iid, client_order_id=n.ClientOrderId("NT-REST-1"))
        assert str(canceled.order_status) == "CANCELED"

        # bulk cancel (one DELETE /order with several ids) and cancel-all
        for i in (2, 3, 4):
            await http.submit_order(iid, n.ClientOrderId(f"NT-REST-{i}"), n.OrderSide.BUY,
                                    n.OrderType.LIMIT, n.Quantity.from_int(100),
                                    n.TimeInForce.GTC, price=rest_px, post_only=True)
        bulk = await http.cancel_orders(iid, client_order_ids=[n.ClientOrderId("NT-REST-2"),
                                                               n.ClientOrderId("NT-REST-3")])
        assert sorted((str(r.client_order_id), str(r.order_status)) for r in bulk) == [
            ("NT-REST-2", "CANCELED"), ("NT-REST-3", "CANCELED")]
        rest_all = await http.cancel_all_orders(iid, None)
        assert [str(r.client_order_id) for r in rest_all] == ["NT-REST-4"]
        assert await http.request_order_status_reports(iid, open_only=True) == []

        # a market order fills: fill report and position report follow
        filled = await http.submit_order(iid, n.ClientOrderId("NT-TAKE-1"), n.OrderSide.BUY,
                                         n.OrderType.MARKET, n.Quantity.from_int(300),
                                         n.TimeInForce.IOC)
        assert str(filled.order_status) == "FILLED" and str(filled.filled_qty) == "300"
        fills = await http.request_fill_reports(iid)
        assert sum(int(f.last_qty) for f in fills) == 300
        positions = await http.request_position_status_reports()
        assert [(str(p.instrument_id), str(p.position_side), str(p.quantity))
                for p in positions] == [("XBTUSD.BITMEX", "LONG", "300")]
        truth = await sim.truth()
        venue_pos = {p["symbol"]: p["currentQty"] for p in truth["positions"]}
        assert venue_pos == {"XBTUSD": 300}


async def _record(tmp_path: Path, messages: int) -> Path:
    """Record ``messages`` book and trade frames from a live simulator (the test's own data)."""
    frames: list[dict[str, Any]] = []
    async with running_sim(scenario="calm", seed=9, rate_msgs_s=2000.0) as live, \
            live.session.ws_connect(
                live.ws_url + "?subscribe=orderBookL2:XBTUSD,trade:XBTUSD") as ws:
        while len(frames) < messages:
            msg = orjson.loads((await ws.receive(timeout=5)).data)
            if isinstance(msg, dict) and msg.get("table") in ("orderBookL2", "trade"):
                frames.append(msg)
    path = tmp_path / "recorded.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(m) for m in frames) + b"\n")
    return path


async def test_websocket_client_book_matches_the_replayed_recording(tmp_path: Path) -> None:
    recording = await _record(tmp_path, 600)
    frames = [orjson.loads(line) for line in recording.read_bytes().splitlines()]
    expected = replay_reference(frames)["XBTUSD"]
    expected_trades = sum(len(f["data"]) for f in frames if f["table"] == "trade")
    async with running_sim(scenario="calm", seed=9, rate_msgs_s=1.0, replay_path=recording,
                           replay_speed=0.0) as sim:
        instruments = await _http(sim).request_instruments(True)
        iid = InstrumentId.from_str("XBTUSD.BITMEX")
        book = OrderBook(iid, BookType.L2_MBP)
        trades: list[TradeTick] = []

        def on_message(msg: object) -> None:
            if not n.is_pycapsule(msg):
                return
            data = capsule_to_data(msg)
            if isinstance(data, OrderBookDeltas):
                book.apply_deltas(data)
            elif isinstance(data, OrderBookDelta):
                book.apply_delta(data)
            elif isinstance(data, TradeTick):
                trades.append(data)

        ws = n.BitmexWebSocketClient(url=sim.ws_url, api_key=sim.api_key,
                                     api_secret=sim.api_secret, account_id=ACCOUNT, heartbeat=5)
        await ws.connect(instruments, on_message)
        try:
            await ws.wait_until_active(10)
            await ws.subscribe_book(n.InstrumentId.from_str("XBTUSD.BITMEX"))
            await ws.subscribe_trades(n.InstrumentId.from_str("XBTUSD.BITMEX"))

            def levels() -> dict[str, dict[float, float]]:
                return {"Buy": {lv.price.as_double(): lv.size() for lv in book.bids()},
                        "Sell": {lv.price.as_double(): lv.size() for lv in book.asks()}}

            await _until(lambda: len(trades) >= expected_trades and levels() == expected)
        finally:
            await ws.close()
    assert len(trades) == expected_trades and expected_trades > 0
    assert levels() == expected and len(expected["Buy"]) > 10
