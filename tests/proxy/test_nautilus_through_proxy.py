"""nautilus_trader's own BitMEX adapter (its Rust-cored HTTP and websocket clients) through the
proxy to the simulator, only its URLs changed: instruments, account, an order submitted, queried,
modified and canceled, a fill and its position, and the book and trades streamed; and what the
adapter reports under every REST fault, the same posted to the proxy as to the simulator."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from proxy_client_outcomes import NAUTILUS_STREAMS, REST_KINDS, WS_KINDS

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



async def test_nautilus_sees_each_rest_fault_as_on_the_simulator(proxied: Proxied) -> None:
    """The adapter's outcome of submit_order under every REST fault (its error type and text,
    the venue's address aside, or the order's status) is the same with the fault posted to the
    simulator as with it posted to the proxy."""
    overrides = {"rest_per_min": 10_000}
    direct, _ = await proxied(rate=50.0, sim_overrides=overrides)
    upstream, proxy = await proxied(rate=50.0, sim_overrides=overrides)
    seen: list[dict[str, str]] = []
    for sim, base, control in ((direct, direct.base_url, direct),
                               (upstream, proxy.base_url, proxy)):
        http = n.BitmexHttpClient(api_key=sim.api_key, api_secret=sim.api_secret,
                                  base_url=base + "/api/v1", max_retries=0, timeout_secs=5)
        instruments = await http.request_instruments(True)
        for instrument in instruments:
            http.add_instrument(instrument)
        outcomes: dict[str, str] = {}
        for i, (kind, params) in enumerate(REST_KINDS):
            await control.add_fault(kind, duration_s=30, **params)
            try:
                report = await http.submit_order(
                    instruments[0].id, n.ClientOrderId(f"NT-FAULT-{i}"), n.OrderSide.BUY,
                    n.OrderType.LIMIT, n.Quantity.from_int(100), n.TimeInForce.GTC,
                    price=n.Price.from_str("1000.0"))
                outcomes[kind] = f"ok {report.order_status}"
            except Exception as exc:  # the adapter raises plain ValueErrors
                text = re.sub(r"http://127\.0\.0\.1:\d+", "VENUE", str(exc))
                outcomes[kind] = f"{type(exc).__name__}: {text}"
            await control.clear_faults()
        seen.append(outcomes)
    on_sim, on_proxy = seen
    for kind, _ in REST_KINDS:
        assert on_sim[kind] == on_proxy[kind], kind
    assert on_sim["latency"] == "ok ACCEPTED"
    assert "overloaded" in on_sim["overload_503"]
    assert "RateLimitError" in on_sim["rate_limit_429"]
    assert "1006: Access denied" in on_sim["cloudflare_1006"]
    assert on_sim["timeout_after_accept"].startswith("ValueError: Network error")
    assert sum(v.startswith("ValueError") for v in on_sim.values()) == len(REST_KINDS) - 1



async def _book_under_fault(sim: Any, base_url: str, control: Any, instruments: list[Any],
                            kind: str, params: dict[str, Any], window_s: float = 1.5) -> str:
    """What the adapter's websocket client delivers for ``window_s`` after ``kind`` hits its
    book stream: "silent", or "updates" with their time (fresh, stale: over 20 s old, future:
    over 20 s ahead), "after reconnecting" when it opened a new connection meanwhile."""
    stamps: list[int] = []

    def on_message(msg: object) -> None:
        if not n.is_pycapsule(msg):
            return
        data = capsule_to_data(msg)
        if isinstance(data, OrderBookDeltas):
            stamps.append(data.deltas[-1].ts_event)
        elif isinstance(data, OrderBookDelta):
            stamps.append(data.ts_event)

    ws = n.BitmexWebSocketClient(url=base_url.replace("http://", "ws://", 1) + "/realtime",
                                 api_key=sim.api_key, api_secret=sim.api_secret,
                                 account_id=ACCOUNT, heartbeat=5)
    await ws.connect(instruments, on_message)
    try:
        await ws.wait_until_active(10)
        await ws.subscribe_book(n.InstrumentId.from_str("XBTUSD.BITMEX"))
        await _until(lambda: len(stamps) >= 3)
        opened = (await sim.truth())["ws"]["opened_total"]
        await control.add_fault(kind, **params)
        await asyncio.sleep(0.05)  # what was in flight before the hit
        before = len(stamps)
        await asyncio.sleep(window_s)
        after = stamps[before:]
        reconnected = (await sim.truth())["ws"]["opened_total"] > opened
    finally:
        await control.clear_faults()
        await ws.close()
    if not after:
        seen = "silent"
    else:
        age_s = time.time() - after[-1] / 1e9
        seen = "updates " + ("stale" if age_s > 20 else "future" if age_s < -20 else "fresh")
    return seen + (" after reconnecting" if reconnected else "")


@pytest.mark.slow
async def test_nautilus_sees_each_stream_fault_as_on_the_simulator(proxied: Proxied) -> None:
    """What the adapter's websocket client delivers under every websocket fault (silence, or
    updates and how old their time is, and whether it reconnected) is the same posted to the
    simulator as to the proxy."""
    overrides = {"rest_per_min": 10_000}
    direct, _ = await proxied(rate=200.0, sim_overrides=overrides)
    upstream, proxy = await proxied(rate=200.0, sim_overrides=overrides)
    http = n.BitmexHttpClient(api_key=direct.api_key, api_secret=direct.api_secret,
                              base_url=direct.base_url + "/api/v1", max_retries=0,
                              timeout_secs=10)
    instruments = await http.request_instruments(True)
    outcomes: dict[str, list[str]] = {}
    for sim, base, control in ((direct, direct.base_url, direct),
                               (upstream, proxy.base_url, proxy)):
        for kind, params in WS_KINDS:
            seen = await _book_under_fault(sim, base, control, instruments, kind, params)
            outcomes.setdefault(kind, []).append(seen)
    for kind, (on_sim, on_proxy) in outcomes.items():
        assert on_sim == on_proxy, f"{kind}: simulator {on_sim}, proxy {on_proxy}"
    assert {kind: both[0] for kind, both in outcomes.items()} == NAUTILUS_STREAMS
