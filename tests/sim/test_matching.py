"""Matching engine: priority, fills, order instructions, amends, cancels and BitMEX's texts."""

from __future__ import annotations

import pytest

from venueguard.sim.engine import Engine, SimError, Update

T0 = 1_700_000_000_000
SYM = "XBTUSD"


def quiet_engine(bids: dict[float, int], asks: dict[float, int]) -> Engine:
    """An engine whose market is silent (rate 0) and whose book holds exactly these levels."""
    engine = Engine([SYM], seed=7, rate_msgs_s=0, start_ms=T0)
    book = engine.markets[SYM].book
    spec = engine.spec(SYM)
    ts = engine.iso(T0)
    for tick in [-k for k in book.bid_keys]:
        book.set_market(True, tick, 0, ts)
    for tick in list(book.ask_keys):
        book.set_market(False, tick, 0, ts)
    for price, size in bids.items():
        book.set_market(True, spec.ticks(price) or 0, size, ts)
    for price, size in asks.items():
        book.set_market(False, spec.ticks(price) or 0, size, ts)
    engine.drain_updates()
    return engine


def sizes(engine: Engine) -> dict[tuple[str, float], int]:
    return {(str(r["side"]), float(r["price"])): int(r["size"])  # type: ignore[call-overload]
            for r in engine.get_book_l2(SYM, 0)}


def order(engine: Engine, now: int = T0, **params: object) -> dict[str, object]:
    return engine.place_order({"symbol": SYM, **params}, now)


def private(updates: list[Update], table: str) -> list[dict[str, object]]:
    return [row for u in updates if u.table == table and u.private for row in u.rows]


def test_aggressor_fills_best_prices_first_and_rests_the_remainder() -> None:
    engine = quiet_engine({}, {100.0: 300, 100.5: 200})
    row = order(engine, side="Buy", orderQty=700, price=100.5, clOrdID="b1")
    assert row["ordStatus"] == "PartiallyFilled"
    assert row["cumQty"] == 500 and row["leavesQty"] == 200
    assert row["avgPx"] == pytest.approx((300 * 100.0 + 200 * 100.5) / 500)
    assert sizes(engine) == {("Buy", 100.5): 200}
    updates = engine.drain_updates()
    trades = [r for u in updates if u.table == "trade" for r in u.rows]
    assert [(t["price"], t["size"], t["side"]) for t in trades] == [
        (100.0, 300, "Buy"), (100.5, 200, "Buy")]
    execs = private(updates, "execution")
    assert [e["execType"] for e in execs] == ["New", "Trade", "Trade"]
    assert {e["lastLiquidityInd"] for e in execs[1:]} == {"RemovedLiquidity"}
    assert [e["trdMatchID"] for e in execs[1:]] == [t["trdMatchID"] for t in trades]


def test_time_priority_between_account_orders_at_one_price() -> None:
    engine = quiet_engine({99.0: 100}, {})
    first = order(engine, side="Sell", orderQty=200, price=101.0, clOrdID="first")
    second = order(engine, side="Sell", orderQty=200, price=101.0, clOrdID="second")
    order(engine, side="Buy", orderQty=300, price=101.0, clOrdID="taker")
    by_cl = {o["clOrdID"]: o for o in engine.get_orders()}
    assert by_cl["first"]["ordStatus"] == "Filled"
    assert by_cl["second"]["cumQty"] == 100 and by_cl["second"]["leavesQty"] == 100
    assert first["orderID"] != second["orderID"]
    fills = [e for e in engine.get_executions() if e["clOrdID"] in ("first", "second")]
    assert [(e["clOrdID"], e["lastQty"], e["lastLiquidityInd"]) for e in fills] == [
        ("first", 200, "AddedLiquidity"), ("second", 100, "AddedLiquidity")]


def test_market_quantity_queued_ahead_fills_before_a_later_account_order() -> None:
    engine = quiet_engine({99.0: 100}, {101.0: 500})
    order(engine, side="Sell", orderQty=200, price=101.0, clOrdID="mine")
    order(engine, side="Buy", orderQty=300, price=101.0, clOrdID="t1")
    assert engine.get_orders(filter={"clOrdID": "mine"})[0]["cumQty"] == 0
    order(engine, side="Buy", orderQty=400, price=101.0, clOrdID="t2")
    mine = engine.get_orders(filter={"clOrdID": "mine"})[0]
    assert mine["cumQty"] == 200 and mine["ordStatus"] == "Filled"
    assert sizes(engine) == {("Buy", 99.0): 100}  # 500 market + 200 mine - 700 taken


def test_market_order_sweeps_and_cancels_what_it_cannot_fill() -> None:
    engine = quiet_engine({99.0: 100}, {101.0: 100})
    row = order(engine, side="Buy", orderQty=300, ordType="Market")
    assert row["ordStatus"] == "Canceled" and row["cumQty"] == 100
    assert str(row["text"]).startswith("Canceled: Order had timeInForce of ImmediateOrCancel\n")


def test_immediate_or_cancel_keeps_its_fills_and_cancels_the_rest() -> None:
    engine = quiet_engine({99.0: 100}, {101.0: 200})
    row = order(engine, side="Buy", orderQty=500, price=101.0, timeInForce="ImmediateOrCancel")
    assert row["ordStatus"] == "Canceled"
    assert row["cumQty"] == 200 and row["leavesQty"] == 0
    assert row["text"] == ("Canceled: Order had timeInForce of ImmediateOrCancel\n"
                           "Submitted via API.")
    assert ("Buy", 101.0) not in sizes(engine)


def test_fill_or_kill_fills_entirely_or_not_at_all() -> None:
    engine = quiet_engine({99.0: 100}, {101.0: 200, 101.5: 100})
    miss = order(engine, side="Buy", orderQty=400, price=101.5, timeInForce="FillOrKill")
    assert miss["ordStatus"] == "Canceled" and miss["cumQty"] == 0
    assert miss["text"] == "Canceled: Order had timeInForce of FillOrKill\nSubmitted via API."
    assert sizes(engine)[("Sell", 101.0)] == 200
    hit = order(engine, side="Buy", orderQty=300, price=101.5, timeInForce="FillOrKill")
    assert hit["ordStatus"] == "Filled" and hit["cumQty"] == 300


def test_post_only_that_would_cross_comes_back_canceled_not_rejected() -> None:
    engine = quiet_engine({99.0: 100}, {101.0: 200})
    row = order(engine, side="Buy", orderQty=100, price=101.0,
                execInst="ParticipateDoNotInitiate")
    assert row["ordStatus"] == "Canceled" and row["cumQty"] == 0
    assert row["text"] == ("Canceled: Order had execInst of ParticipateDoNotInitiate\n"
                           "Submitted via API.")
    assert sizes(engine)[("Sell", 101.0)] == 200
    inserts = private(engine.drain_updates(), "order")
    assert inserts[-1]["ordStatus"] == "Canceled"
    resting = order(engine, side="Buy", orderQty=100, price=100.0,
                    execInst="ParticipateDoNotInitiate")
    assert resting["ordStatus"] == "New" and resting["workingIndicator"] is True
    assert sizes(engine)[("Buy", 100.0)] == 100


def test_duplicate_clordid_is_refused_even_after_the_first_order_closed() -> None:
    engine = quiet_engine({99.0: 100}, {101.0: 100})
    first = order(engine, side="Buy", orderQty=100, price=98.0, clOrdID="same")
    engine.cancel_orders([str(first["orderID"])], [], None, T0)
    with pytest.raises(SimError) as info:
        order(engine, side="Buy", orderQty=100, price=98.0, clOrdID="same")
    assert (info.value.status, info.value.message) == (400, "Duplicate clOrdID")
    assert len(engine.truth()["orders"]) == 1  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"symbol": "NOPE", "orderQty": 100, "price": 100.0}, "Invalid symbol"),
        ({"orderQty": 100, "price": 100.0}, "'symbol' is a required arg."),
        ({"symbol": SYM, "orderQty": 100, "price": 100.2}, "Invalid price tickSize"),
        ({"symbol": SYM, "orderQty": 150, "price": 100.0}, "Invalid orderQty"),
        ({"symbol": SYM, "orderQty": "1.5", "price": 100.0}, "Invalid orderQty"),
        ({"symbol": SYM, "orderQty": 0, "price": 100.0}, "Invalid orderQty"),
        ({"symbol": SYM, "price": 100.0}, "orderQty is required"),
        ({"symbol": SYM, "orderQty": 100, "price": "abc"}, "Invalid price"),
        ({"symbol": SYM, "orderQty": 100, "price": -5}, "Invalid price"),
        ({"symbol": SYM, "orderQty": 100, "ordType": "Limit"}, "Invalid price"),
        ({"symbol": SYM, "orderQty": 100, "side": "Up", "price": 100.0}, "Invalid side"),
        ({"symbol": SYM, "orderQty": 100, "ordType": "Stop", "stopPx": 90},
         "Unsupported ordType"),
        ({"symbol": SYM, "orderQty": 100, "price": 100.0, "timeInForce": "Forever"},
         "Unsupported timeInForce"),
        ({"symbol": SYM, "orderQty": 100, "price": 100.0, "execInst": "Sometimes"},
         "Unsupported execInst"),
        ({"symbol": SYM, "orderQty": True, "price": 100.0}, "Invalid orderQty"),
    ],
)
def test_invalid_orders_get_bitmex_texts(params: dict[str, object], message: str) -> None:
    engine = quiet_engine({99.0: 100}, {101.0: 100})
    with pytest.raises(SimError) as info:
        engine.place_order(params, T0)
    assert info.value.status == 400
    assert info.value.message == message
    assert engine.truth()["orders"] == []


def test_form_strings_and_signed_quantity_are_accepted() -> None:
    engine = quiet_engine({99.0: 100}, {101.0: 100})
    row = engine.place_order({"symbol": SYM, "orderQty": "-200", "price": "102"}, T0)
    assert row["side"] == "Sell" and row["orderQty"] == 200 and row["price"] == 102.0


def test_amend_price_loses_priority_and_smaller_size_keeps_it() -> None:
    engine = quiet_engine({99.0: 100}, {})
    order(engine, side="Sell", orderQty=200, price=101.0, clOrdID="a")
    order(engine, side="Sell", orderQty=200, price=101.0, clOrdID="b")
    order(engine, side="Sell", orderQty=200, price=101.0, clOrdID="c")
    engine.amend_order({"origClOrdID": "a", "price": 101.5}, T0)
    amended = engine.amend_order({"origClOrdID": "a", "price": 101.0}, T0)
    assert amended["text"] == "Amended price: Amended via API.\nSubmitted via API."
    engine.amend_order({"origClOrdID": "b", "orderQty": 100}, T0)  # shrink: keeps its place
    order(engine, side="Buy", orderQty=200, price=101.0, clOrdID="t")
    by_cl = {o["clOrdID"]: o for o in engine.get_orders()}
    assert by_cl["b"]["ordStatus"] == "Filled"
    assert by_cl["c"]["cumQty"] == 100
    assert by_cl["a"]["cumQty"] == 0


def test_amend_larger_size_goes_to_the_back_of_the_queue() -> None:
    engine = quiet_engine({99.0: 100}, {})
    a = order(engine, side="Sell", orderQty=100, price=101.0, clOrdID="a")
    order(engine, side="Sell", orderQty=100, price=101.0, clOrdID="b")
    row = engine.amend_order({"orderID": a["orderID"], "leavesQty": 300}, T0)
    assert row["orderQty"] == 300 and row["leavesQty"] == 300
    assert row["text"] == "Amended leavesQty: Amended via API.\nSubmitted via API."
    order(engine, side="Buy", orderQty=100, price=101.0)
    by_cl = {o["clOrdID"]: o for o in engine.get_orders()}
    assert by_cl["b"]["ordStatus"] == "Filled" and by_cl["a"]["cumQty"] == 0
    assert sizes(engine)[("Sell", 101.0)] == 300


def test_amend_errors() -> None:
    engine = quiet_engine({99.0: 100}, {101.0: 100})
    row = order(engine, side="Buy", orderQty=100, price=98.0, clOrdID="x")
    cases: list[tuple[dict[str, object], str]] = [
        ({"orderID": "00000000-0000-0000-0000-000000000000", "price": 97.0}, "Invalid orderID"),
        ({"origClOrdID": "nope", "price": 97.0}, "Invalid origClOrdID"),
        ({"price": 97.0}, "orderID or origClOrdID must be sent."),
        ({"orderID": row["orderID"], "price": 97.2}, "Invalid price tickSize"),
        ({"orderID": row["orderID"], "price": 98.0},
         "Invalid amend: orderQty, leavesQty, price, stopPx unchanged"),
        ({"orderID": row["orderID"], "leavesQty": 0}, "Invalid leavesQty"),
    ]
    for params, message in cases:
        with pytest.raises(SimError) as info:
            engine.amend_order(params, T0)
        assert info.value.message == message
    engine.cancel_orders([], ["x"], None, T0)
    with pytest.raises(SimError) as info:
        engine.amend_order({"origClOrdID": "x", "price": 97.0}, T0)
    assert info.value.message == "Invalid ordStatus: Canceled"


def test_amend_into_the_other_side_trades_unless_post_only() -> None:
    engine = quiet_engine({99.0: 100}, {101.0: 100})
    order(engine, side="Buy", orderQty=200, price=98.0, clOrdID="x")
    row = engine.amend_order({"origClOrdID": "x", "price": 101.0}, T0)
    assert row["cumQty"] == 100 and row["ordStatus"] == "PartiallyFilled"
    order(engine, side="Buy", orderQty=100, price=98.0, clOrdID="p",
          execInst="ParticipateDoNotInitiate")
    engine.place_order({"symbol": SYM, "side": "Sell", "orderQty": 100, "price": 102.0}, T0)
    post = engine.amend_order({"origClOrdID": "p", "price": 102.0}, T0)
    assert post["ordStatus"] == "Canceled"
    assert str(post["text"]).startswith("Canceled: Order had execInst of ParticipateDoNotInitiate")


def test_cancel_rows_for_open_closed_and_unknown_orders() -> None:
    engine = quiet_engine({99.0: 100}, {101.0: 100})
    a = order(engine, side="Buy", orderQty=100, price=98.0, clOrdID="a")
    order(engine, side="Buy", orderQty=100, price=97.0, clOrdID="b")
    rows = engine.cancel_orders([str(a["orderID"])], ["b"], "bye", T0)
    assert [r["ordStatus"] for r in rows] == ["Canceled", "Canceled"]
    assert rows[0]["text"] == "Canceled: bye\nSubmitted via API."
    again = engine.cancel_orders([str(a["orderID"])], ["ghost"], None, T0)
    assert again[0]["error"] == "Unable to cancel order due to existing state: Canceled"
    assert again[0]["orderID"] == a["orderID"]
    assert again[1]["clOrdID"] == "ghost" and "error" in again[1]
    with pytest.raises(SimError):
        engine.cancel_orders([], [], None, T0)


def test_cancel_all_honours_symbol_and_filter() -> None:
    engine = quiet_engine({99.0: 100}, {101.0: 100})
    order(engine, side="Buy", orderQty=100, price=98.0, clOrdID="b1")
    order(engine, side="Sell", orderQty=100, price=103.0, clOrdID="s1")
    rows = engine.cancel_all(SYM, {"side": "Sell"}, None, T0)
    assert [r["clOrdID"] for r in rows] == ["s1"]
    assert [o["clOrdID"] for o in engine.get_orders(filter={"open": True})] == ["b1"]
    assert engine.cancel_all(None, None, None, T0)[0]["clOrdID"] == "b1"
    assert engine.get_orders(filter={"open": True}) == []
    assert sizes(engine) == {("Buy", 99.0): 100, ("Sell", 101.0): 100}
    with pytest.raises(SimError):
        engine.cancel_all("NOPE", None, None, T0)


def test_dead_mans_switch_cancels_everything_at_expiry() -> None:
    engine = quiet_engine({99.0: 100}, {101.0: 100})
    order(engine, side="Buy", orderQty=100, price=98.0, clOrdID="a")
    order(engine, side="Sell", orderQty=100, price=104.0, clOrdID="b")
    ack = engine.cancel_all_after(60_000, T0)
    assert ack["cancelTime"] == engine.iso(T0 + 60_000)
    engine.drain_updates()
    engine.advance(T0 + 59_999)
    assert len(engine.get_orders(filter={"open": True})) == 2
    engine.advance(T0 + 60_000)
    assert engine.get_orders(filter={"open": True}) == []
    updates = engine.drain_updates()
    execs = private(updates, "execution")
    assert [e["execType"] for e in execs] == ["Canceled", "Canceled"]
    assert all(str(e["text"]).startswith("Canceled: Cancel-all-after triggered") for e in execs)
    order_updates = private(updates, "order")
    assert {(o["clOrdID"], o["ordStatus"]) for o in order_updates} == {
        ("a", "Canceled"), ("b", "Canceled")}
    assert all(u.private for u in updates if u.table in ("order", "execution", "position"))
    assert engine.cancel_at_ms is None


def test_dead_mans_switch_refreshed_or_disarmed_does_not_fire() -> None:
    engine = quiet_engine({99.0: 100}, {101.0: 100})
    order(engine, side="Buy", orderQty=100, price=98.0)
    engine.cancel_all_after(10_000, T0)
    engine.cancel_all_after(10_000, T0 + 8_000)  # refreshed: now fires at T0 + 18 s
    engine.advance(T0 + 15_000)
    assert len(engine.get_orders(filter={"open": True})) == 1
    assert engine.cancel_all_after(0, T0 + 15_000)["cancelTime"] == 0
    engine.advance(T0 + 100_000)
    assert len(engine.get_orders(filter={"open": True})) == 1
    with pytest.raises(SimError):
        engine.cancel_all_after(-1, T0 + 100_000)


def test_reduce_only_without_a_position_is_rejected_on_the_order() -> None:
    engine = quiet_engine({99.0: 100}, {101.0: 100})
    row = order(engine, side="Sell", orderQty=100, price=102.0, execInst="ReduceOnly")
    assert row["ordStatus"] == "Rejected"
    assert row["ordRejReason"] == (
        "Order had execInst of ReduceOnly and side of Sell but current position is 0")


def test_resting_order_fills_passively_when_the_market_trades_through_it() -> None:
    engine = Engine([SYM], seed=11, rate_msgs_s=3000, start_ms=T0)
    engine.advance(T0 + 1000)
    bid = engine.get_book_l2(SYM, 1)[1]
    row = engine.place_order(
        {"symbol": SYM, "side": "Buy", "orderQty": 100, "price": bid["price"],
         "clOrdID": "passive"}, T0 + 1000)
    now = T0 + 1000
    while now < T0 + 300_000 and engine.get_orders(filter={"clOrdID": "passive"})[0][
            "ordStatus"] != "Filled":
        now += 500
        engine.advance(now)
    assert engine.get_orders(filter={"clOrdID": "passive"})[0]["ordStatus"] == "Filled"
    fills = engine.get_executions(filter={"orderID": row["orderID"]})
    assert sum(int(f["lastQty"]) for f in fills) == 100  # type: ignore[call-overload]
    assert {f["lastLiquidityInd"] for f in fills} == {"AddedLiquidity"}
    position = engine.get_positions()[0]
    assert position["currentQty"] == 100
    assert position["avgEntryPrice"] == bid["price"]


def test_cancelling_a_filled_order_reports_its_state_on_the_row() -> None:
    engine = quiet_engine({99.0: 100}, {101.0: 500})
    row = order(engine, side="Buy", orderQty=200, price=101.0, clOrdID="done")
    assert row["ordStatus"] == "Filled"
    rows = engine.cancel_orders([str(row["orderID"])], [], None, T0)
    assert rows[0]["error"] == "Unable to cancel order due to existing state: Filled"
    assert rows[0]["ordStatus"] == "Filled" and rows[0]["cumQty"] == 200
    assert engine.get_orders(filter={"clOrdID": "done"})[0]["ordStatus"] == "Filled"
