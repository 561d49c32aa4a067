"""nautilus_trader's own BitMEX adapter (its Rust-cored HTTP and websocket clients) through the
proxy to the simulator, only its URLs changed: instruments, account, an order submitted, queried,
modified and canceled, a fill and its position, and the book and trades streamed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from venueguard.proxy.testing import Proxied

pytest.importorskip("nautilus_trader", reason="nautilus_trader is not installed "
                    "(pip install -e '.[nautilus]'; make test installs it)")

from nautilus_trader.core import nautilus_pyo3 as n
from nautilus_trader.model.data import OrderBookDelta, OrderBookDeltas, TradeTick, capsule_to_data

pytestmark = pytest.mark.system

ACCOUNT = n.AccountId("BITMEX-1")


async def _until(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_nautilus_bitmex_adapter_through_the_proxy(proxied: Proxied) -> None:
    sim, proxy = await proxied(rate=300.0, sim_overrides={"rest_per_min": 10_000})
    http = n.BitmexHttpClient(api_key=sim.api_key, api_secret=sim.api_secret,
                              base_url=proxy.base_url + "/api/v1", max_retries=0,
                              timeout_secs=10)
    instruments = await http.request_instruments(True)
    assert [str(i.id) for i in instruments] == ["XBTUSD.BITMEX"]
    for instrument in instruments:
        http.add_instrument(instrument)
    iid = instruments[0].id
    state = await http.request_account_state(ACCOUNT)
    assert [b.to_dict()["currency"] for b in state.balances] == ["XBT"]
    book = await sim.request("GET", "/orderBook/L2", signed=False,
                             query={"symbol": "XBTUSD", "depth": 1})
    bid = max(r["price"] for r in book[2] if r["side"] == "Buy")
    price = n.Price.from_str(f"{bid - 1000:.1f}")
    cid = n.ClientOrderId("NT-PROXY-1")
    report = await http.submit_order(iid, cid, n.OrderSide.BUY, n.OrderType.LIMIT,
                                     n.Quantity.from_int(100), n.TimeInForce.GTC, price=price,
                                     post_only=True)
    assert str(report.order_status) == "ACCEPTED"
    queried = await http.query_order(iid, client_order_id=cid)
    assert queried is not None and queried.venue_order_id == report.venue_order_id
    moved = await http.modify_order(iid, client_order_id=cid, quantity=n.Quantity.from_int(200))
    assert str(moved.quantity) == "200"
    canceled = await http.cancel_order(iid, client_order_id=cid)
    assert str(canceled.order_status) == "CANCELED"
    filled = await http.submit_order(iid, n.ClientOrderId("NT-PROXY-2"), n.OrderSide.BUY,
                                     n.OrderType.MARKET, n.Quantity.from_int(300),
                                     n.TimeInForce.IOC)
    assert str(filled.order_status) == "FILLED"
    positions = await http.request_position_status_reports()
    assert [(str(p.position_side), str(p.quantity)) for p in positions] == [("LONG", "300")]
    truth = await sim.truth()
    assert truth["clOrdID_attempts"] == {"NT-PROXY-1": 1, "NT-PROXY-2": 1}

    deltas: list[Any] = []
    trades: list[TradeTick] = []

    def on_message(msg: object) -> None:
        if not n.is_pycapsule(msg):
            return
        data = capsule_to_data(msg)
        if isinstance(data, OrderBookDeltas | OrderBookDelta):
            deltas.append(data)
        elif isinstance(data, TradeTick):
            trades.append(data)

    ws = n.BitmexWebSocketClient(url=proxy.ws_base + "/realtime", api_key=sim.api_key,
                                 api_secret=sim.api_secret, account_id=ACCOUNT, heartbeat=5)
    await ws.connect(instruments, on_message)
    try:
        await ws.wait_until_active(10)
        await ws.subscribe_book(n.InstrumentId.from_str("XBTUSD.BITMEX"))
        await ws.subscribe_trades(n.InstrumentId.from_str("XBTUSD.BITMEX"))
        await _until(lambda: len(deltas) >= 20 and len(trades) >= 3)
    finally:
        await ws.close()
    assert proxy.server.ws_opened_total >= 1
