"""The order state table: every real-world edge by name, and the rules around it."""

from __future__ import annotations

import random
import re

import pytest

from bitmex_rows import adopt, on_cancel_row, on_execution_row, on_order_row
from venueguard.core.orders import (
    TRANSITIONS,
    VENUE_KINDS,
    CancelRejected,
    ClOrdIdGenerator,
    InvalidTransition,
    NotFoundAtVenue,
    OrderError,
    OrderState,
    OrderTable,
    VenueSnapshot,
    log_event,
    refusal_event,
    snapshot_of,
)
from venueguard.core.reports import FillReport, OrderReport, OrderStatus, RefusalReport
from venueguard.venues.bitmex import reports as rr

S = OrderState


def make_table(seed: int = 1) -> OrderTable:
    return OrderTable(ClOrdIdGenerator(random.Random(seed)))


def placed(table: OrderTable, qty: int = 10, side: str = "Buy") -> str:
    order = table.new_order("XBTUSD", side, qty, 100.0, now=0.0, wall_ms=1_000)
    table.on_submitted(order.cl_ord_id, 0.1)
    return order.cl_ord_id


def acked(table: OrderTable, qty: int = 10, side: str = "Buy") -> str:
    cl = placed(table, qty, side)
    on_order_row(table, {"clOrdID": cl, "orderID": "oid-" + cl, "ordStatus": "New",
                        "cumQty": 0, "leavesQty": qty}, 0.2)
    return cl


def trade(cl: str, exec_id: str, qty: int, leaves: int, px: float = 100.0) -> dict[str, object]:
    return {"execType": "Trade", "clOrdID": cl, "execID": exec_id, "lastQty": qty,
            "lastPx": px, "leavesQty": leaves, "ordStatus": "Filled" if leaves == 0 else
            "PartiallyFilled"}


def test_venue_event_kinds_cover_every_state() -> None:
    expected = {"acked", "venue_info", "venue_new", "venue_partially_filled", "venue_filled",
                "cancel_rejected_filled", "venue_canceled", "canceled", "venue_rejected",
                "partial_fill", "filled", "amended", "absent_in_grace", "absent",
                "absent_definitive"}
    assert expected == VENUE_KINDS
    for kind in VENUE_KINDS:
        for state in OrderState:
            assert (state, kind) in TRANSITIONS, (state, kind)


def test_unknown_becomes_rejected_only_through_venue_evidence() -> None:
    kinds = {kind for (state, kind), target in TRANSITIONS.items()
             if state is S.UNKNOWN and target is S.REJECTED}
    assert kinds == {"venue_rejected", "absent_definitive"}


def test_new_order_starts_pending_and_ack_moves_to_new() -> None:
    table = make_table()
    cl = acked(table)
    order = table.orders[cl]
    assert order.state is S.NEW and order.order_id == "oid-" + cl
    assert [t.to_state for t in order.history] == [S.PENDING_NEW, S.NEW]


def test_503_overload_keeps_the_order_retryable_with_the_same_clordid() -> None:
    table = make_table()
    cl = placed(table)
    t = table.on_rejected(cl, "The system is currently overloaded.", not_processed=True, now=1.0)
    assert t is not None and t.kind == "overloaded" and t.to_state is S.PENDING_NEW
    table.on_submitted(cl, 1.6)                     # the retry: same order, same clOrdID
    assert table.orders[cl].send_count == 2 and len(table.orders) == 1


def test_definite_4xx_rejects() -> None:
    table = make_table()
    cl = placed(table)
    table.on_rejected(cl, "Invalid price tickSize", not_processed=False, now=1.0)
    assert table.orders[cl].state is S.REJECTED
    with pytest.raises(InvalidTransition):
        table.on_submitted(cl, 2.0)


@pytest.mark.parametrize("reason", ["timeout", "502 Bad Gateway", "504", "reset after send"])
def test_timeout_502_504_are_ambiguous_and_go_unknown(reason: str) -> None:
    table = make_table()
    cl = placed(table)
    table.on_ambiguous(cl, reason, 5.0)
    assert table.orders[cl].state is S.UNKNOWN
    with pytest.raises(InvalidTransition):          # never resent blind: look it up first
        table.on_submitted(cl, 6.0)


def test_unknown_resolved_by_found_row() -> None:
    table = make_table()
    cl = placed(table)
    table.on_ambiguous(cl, "timeout", 5.0)
    on_order_row(table, {"clOrdID": cl, "orderID": "x1", "ordStatus": "PartiallyFilled",
                        "cumQty": 3}, 6.0)
    order = table.orders[cl]
    assert order.state is S.PARTIALLY_FILLED and order.venue_cum_qty == 3 and order.cum_qty == 0


def test_duplicate_clordid_response_means_it_exists_at_the_venue() -> None:
    table = make_table()
    cl = placed(table)
    table.on_duplicate(cl, 1.0)
    order = table.orders[cl]
    assert order.state is S.UNKNOWN and order.exists_at_venue
    with pytest.raises(InvalidTransition):          # absence can no longer prove "not placed"
        table.on_not_found(cl, NotFoundAtVenue(99.0, True, definitive=True), 99.0)


def test_fill_after_cancel_ack_is_a_late_fill_counted_in_position() -> None:
    table = make_table()
    cl = acked(table, qty=10)
    table.on_cancel_requested(cl, 1.0)
    on_cancel_row(table, {"clOrdID": cl, "orderID": "oid-" + cl, "ordStatus": "Canceled"}, 1.1)
    t = on_execution_row(table, trade(cl, "e1", 4, 6), 1.2)
    assert t is not None and t.anomaly == "late_fill"
    order = table.orders[cl]
    assert order.state is S.CANCELED and order.cum_qty == 4
    assert table.position("XBTUSD") == 4


def test_late_fill_after_canceled_that_completes_the_order_makes_it_filled() -> None:
    table = make_table()
    cl = acked(table, qty=5)
    on_order_row(table, {"clOrdID": cl, "ordStatus": "Canceled"}, 1.0)
    t = on_execution_row(table, trade(cl, "e1", 5, 0), 1.5)
    assert t is not None and t.anomaly == "late_fill" and table.orders[cl].state is S.FILLED


def test_cancel_of_an_order_already_filled() -> None:
    table = make_table()
    cl = acked(table)
    table.on_cancel_requested(cl, 1.0)
    row = {"clOrdID": cl, "orderID": "oid-" + cl,
           "error": "Unable to cancel order due to existing state: Filled"}
    t = on_cancel_row(table, row, 1.1)
    assert t is not None and t.kind == "cancel_rejected_filled"
    assert table.orders[cl].state is S.FILLED
    with pytest.raises(InvalidTransition):          # our own code must not cancel a FILLED order
        table.on_cancel_requested(cl, 2.0)


def test_cancel_fill_race_fill_wins_while_pending_cancel() -> None:
    table = make_table()
    cl = acked(table, qty=10)
    table.on_cancel_requested(cl, 1.0)
    on_execution_row(table, trade(cl, "e1", 3, 7), 1.1)
    assert table.orders[cl].state is S.PENDING_CANCEL
    on_execution_row(table, trade(cl, "e2", 7, 0), 1.2)
    assert table.orders[cl].state is S.FILLED and table.position("XBTUSD") == 10


def test_cancel_rejected_not_found_returns_to_resting_state() -> None:
    table = make_table()
    cl = acked(table, qty=10)
    on_execution_row(table, trade(cl, "e1", 3, 7), 1.0)
    table.on_cancel_requested(cl, 2.0)
    on_cancel_row(table, {"clOrdID": cl, "error": "Unable to cancel order: Not found"}, 2.1)
    assert table.orders[cl].state is S.PARTIALLY_FILLED


def test_cancel_row_parsing() -> None:
    report = rr.cancel_report({"error": "Unable to cancel order due to existing state: Canceled"})
    assert isinstance(report, RefusalReport) and not report.not_found
    assert refusal_event(report) == CancelRejected(
        "Unable to cancel order due to existing state: Canceled",
        venue_status=OrderStatus.CANCELED)
    done = rr.cancel_report({"ordStatus": "Canceled", "cumQty": 2})
    assert isinstance(done, OrderReport)
    assert snapshot_of(done) == VenueSnapshot(OrderStatus.CANCELED, cum_qty=2)
    gone = rr.cancel_report({"error": "Unable to cancel order: Not found or not owned by user"})
    assert isinstance(gone, RefusalReport) and gone.not_found and gone.status is None
    assert refusal_event(gone).venue_status is None
    still_open = RefusalReport("c", None, "busy", status=OrderStatus.NEW)
    assert refusal_event(still_open).venue_status is None   # an open state says nothing new


def test_execution_is_idempotent_by_exec_id() -> None:
    table = make_table()
    cl = acked(table, qty=10, side="Sell")
    assert on_execution_row(table, trade(cl, "e1", 4, 6), 1.0) is not None
    assert on_execution_row(table, trade(cl, "e1", 4, 6), 1.1) is None   # REST replays WS
    assert table.orders[cl].cum_qty == 4 and table.position("XBTUSD") == -4


def test_fill_before_ack_and_avg_px() -> None:
    table = make_table()
    cl = placed(table, qty=10)
    on_execution_row(table, trade(cl, "e1", 5, 5, px=100.0), 0.15)
    on_execution_row(table, trade(cl, "e2", 5, 0, px=110.0), 0.16)
    order = table.orders[cl]
    assert order.state is S.FILLED and order.avg_px == pytest.approx(105.0)
    table.on_acked(cl, "oid", 0.2)                  # the REST answer arrives last
    assert order.state is S.FILLED


def test_stale_snapshot_never_reopens_a_closed_order() -> None:
    table = make_table()
    cl = acked(table)
    on_order_row(table, {"clOrdID": cl, "ordStatus": "Canceled"}, 1.0)
    t = on_order_row(table, {"clOrdID": cl, "ordStatus": "New"}, 1.1)
    assert t is not None and t.anomaly == "stale_open_row" and table.orders[cl].state is S.CANCELED


def test_absence_within_grace_is_no_evidence_and_after_grace_closes_open_order() -> None:
    table = make_table()
    cl = acked(table)
    table.on_not_found(cl, NotFoundAtVenue(1.0, grace_elapsed=False), 1.0)
    assert table.orders[cl].state is S.NEW
    t = table.on_not_found(cl, NotFoundAtVenue(9.0, grace_elapsed=True), 9.0)
    assert t is not None and t.anomaly == "phantom_local" and table.orders[cl].state is S.CANCELED


def test_unknown_needs_definitive_absence() -> None:
    table = make_table()
    cl = placed(table)
    table.on_ambiguous(cl, "timeout", 1.0)
    table.on_not_found(cl, NotFoundAtVenue(10.0, grace_elapsed=True), 10.0)
    assert table.orders[cl].state is S.UNKNOWN
    table.on_not_found(cl, NotFoundAtVenue(70.0, grace_elapsed=True, definitive=True), 70.0)
    assert table.orders[cl].state is S.REJECTED


def test_amend_flow_and_withdraw_rules() -> None:
    table = make_table()
    cl = acked(table, qty=10)
    table.on_amend_requested(cl, 8, 99.5, 1.0)
    assert table.orders[cl].state is S.PENDING_AMEND
    on_order_row(table, {"clOrdID": cl, "ordStatus": "New"}, 1.1)   # a snapshot is not the answer
    assert table.orders[cl].state is S.PENDING_AMEND
    table.on_amended(cl, 8, 99.5, 1.2)
    assert table.orders[cl].state is S.NEW and table.orders[cl].qty == 8
    other = placed(table)
    with pytest.raises(InvalidTransition):          # a request is in flight
        table.on_withdrawn(other, "safe mode", 2.0)
    table.on_rejected(other, "overloaded", not_processed=True, now=2.1)
    table.on_withdrawn(other, "safe mode", 2.2)
    assert table.orders[other].state is S.REJECTED


def test_venue_evidence_after_reject_wins() -> None:
    table = make_table()
    cl = placed(table)
    table.on_rejected(cl, "bad", not_processed=False, now=1.0)
    t = on_order_row(table, {"clOrdID": cl, "ordStatus": "New"}, 2.0)
    assert t is not None and t.anomaly == "evidence_after_reject"
    assert table.orders[cl].state is S.NEW


def test_adopt_unknown_venue_order() -> None:
    table = make_table()
    order = adopt(table, {"orderID": "v1", "clOrdID": "", "symbol": "XBTUSD", "side": "Sell",
                         "orderQty": 3, "price": 101.0, "ordStatus": "New"}, 1.0, 5_000)
    assert order.adopted and order.state is S.NEW and order.cl_ord_id == "venue:v1"
    assert table.find(None, "v1") is order and table.find("venue:v1") is order


def test_unknown_client_order_id_is_an_error() -> None:
    with pytest.raises(OrderError):
        make_table().on_submitted("nope", 0.0)


def test_execution_row_missing_fields_is_a_clear_error() -> None:
    table = make_table()
    cl = acked(table)
    with pytest.raises(ValueError, match="execID"):
        on_execution_row(table, {"execType": "Trade", "clOrdID": cl, "lastQty": 1}, 1.0)
    with pytest.raises(OrderError, match="exec id"):
        table.on_fill_report(FillReport("", cl, None, 1, 100.0), 1.0)
    with pytest.raises(OrderError, match="positive qty"):
        table.on_fill_report(FillReport("e1", cl, None, 0, 100.0), 1.0)
    assert table.orders[cl].cum_qty == 0


def test_clordid_generator_is_deterministic_short_and_safe() -> None:
    a = ClOrdIdGenerator(random.Random(7), prefix="bot_1")
    b = ClOrdIdGenerator(random.Random(7), prefix="bot_1")
    ids = [a.next() for _ in range(1000)]
    assert ids == [b.next() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(len(i) <= 36 and re.fullmatch(r"[A-Za-z0-9_-]+", i) for i in ids)
    assert ClOrdIdGenerator(random.Random(8)).next() != ClOrdIdGenerator(random.Random(7)).next()
    with pytest.raises(ValueError):
        ClOrdIdGenerator(random.Random(1), prefix="bad prefix!")


def test_non_trade_execution_rows_apply_as_snapshots() -> None:
    table = make_table()
    cl = acked(table)
    assert on_execution_row(table, {"execType": "Funding", "clOrdID": cl}, 1.0) is None
    t = on_execution_row(table, {"execType": "Canceled", "clOrdID": cl, "ordStatus": "Canceled",
                                "cumQty": 0}, 1.1)
    assert t is not None and t.to_state is S.CANCELED
    assert on_execution_row(table, trade("someone-else", "e9", 1, 0), 1.2) is None


def test_log_event_names_follow_the_design() -> None:
    table = make_table()
    cl = placed(table)
    table.on_ambiguous(cl, "timeout", 1.0)
    on_order_row(table, {"clOrdID": cl, "ordStatus": "New"}, 2.0)
    on_execution_row(table, trade(cl, "e1", 10, 0), 3.0)
    names = [log_event(t) for t in table.take_transitions()]
    assert names == ["order.sent", "order.unknown", "order.acked", "order.filled"]
    cl2 = acked(table)
    table.on_cancel_requested(cl2, 4.0)
    on_cancel_row(table, {"clOrdID": cl2, "ordStatus": "Canceled"}, 4.1)
    assert [log_event(t) for t in table.take_transitions()][-2:] == [None, "order.canceled"]


def test_never_resend_an_order_the_venue_has_shown() -> None:
    table = make_table()
    cl = placed(table)
    on_order_row(table, {"clOrdID": cl, "orderQty": 10}, 0.5)   # sparse row: no status yet
    order = table.orders[cl]
    assert order.state is S.PENDING_NEW and order.exists_at_venue and order.in_flight
    table.on_rejected(cl, "overloaded", not_processed=True, now=0.6)
    with pytest.raises(InvalidTransition):
        table.on_submitted(cl, 1.0)
    with pytest.raises(InvalidTransition):
        table.on_withdrawn(cl, "safe mode", 1.0)


def test_venue_leaves_qty_outranks_local_arithmetic() -> None:
    table = make_table()
    cl = acked(table, qty=2)                       # the venue has it amended to 4: we missed it
    t = on_execution_row(table, trade(cl, "e1", 2, 2), 1.0)
    order = table.orders[cl]
    assert t is not None and order.state is S.PARTIALLY_FILLED and order.qty == 4


def test_fractional_fills_without_leaves_complete_the_order_exactly() -> None:
    table = make_table()
    order = table.new_order("BTC/USDT:USDT", "Sell", 0.9, 100.0, now=0.0, wall_ms=0)
    cl = order.cl_ord_id
    table.on_submitted(cl, 0.0)
    table.on_acked(cl, "v1", 0.1)
    for n in range(3):               # 0.3 + 0.3 + 0.3 is 0.8999999999999999 in floats
        table.on_fill_report(FillReport(f"f{n}", cl, "v1", 0.3, 100.0), 0.2 + n)
    assert order.state is S.FILLED and order.cum_qty == 0.9
    assert table.position("BTC/USDT:USDT") == -0.9
    buy = table.new_order("BTC/USDT:USDT", "Buy", 0.9, 99.0, now=5.0, wall_ms=0)
    table.on_submitted(buy.cl_ord_id, 5.0)
    for n in range(9):
        table.on_fill_report(FillReport(f"b{n}", buy.cl_ord_id, None, 0.1, 99.0), 6.0 + n)
    assert buy.state is S.FILLED and table.position("BTC/USDT:USDT") == 0


def test_transition_table_is_written_out_for_every_state() -> None:
    from venueguard.core.orders import LOCAL_TRANSITIONS, VENUE_TRANSITIONS
    for kind, row in VENUE_TRANSITIONS.items():
        assert list(row) == list(OrderState), kind          # one column per state, in order
    assert not {kind for _, kind in LOCAL_TRANSITIONS} & set(VENUE_TRANSITIONS)
    assert len(TRANSITIONS) == len(LOCAL_TRANSITIONS) + len(VENUE_TRANSITIONS) * len(OrderState)


def test_an_order_adopted_from_its_fills_takes_the_fills_order_quantity() -> None:
    table = make_table()
    first = FillReport("f1", "by-hand", "v7", 100, 50.0, "XBTUSD", "Sell", leaves_qty=200,
                       order_qty=300)
    order = table.adopt(first, 1.0, 5_000)
    assert order.adopted and order.qty == 300 and order.side == "Sell"
    assert table.find(None, "v7") is order
    t = table.on_fill_report(first, 1.0)
    assert t is not None and t.to_state is S.PARTIALLY_FILLED
    last = FillReport("f2", "by-hand", "v7", 200, 50.0, "XBTUSD", "Sell", leaves_qty=0,
                      order_qty=300)
    t = table.on_fill_report(last, 1.1)
    assert t is not None and t.to_state is S.FILLED and t.anomaly is None   # no overfill
    assert table.position("XBTUSD") == -300


def test_an_execution_is_credited_to_one_order_only() -> None:
    table = make_table()
    cl = placed(table, qty=3)
    table.on_ambiguous(cl, "timeout", 0.2)          # in doubt: its venue id is not known
    fill = FillReport("t1:v9", None, "v9", 3, 100.0, "XBTUSD", "Buy", leaves_qty=None)
    stand_in = table.adopt(fill, 0.3, 2_000)
    assert table.on_fill_report(fill, 0.3) is not None
    table.on_order_report(OrderReport(cl, "v9", OrderStatus.FILLED, symbol="XBTUSD",
                                      side="Buy", qty=3, filled_qty=3), 0.4)
    again = FillReport("t1:v9", cl, "v9", 3, 100.0, "XBTUSD", "Buy", leaves_qty=None)
    assert table.on_fill_report(again, 0.5) is None
    assert stand_in.cum_qty == 3 and table.orders[cl].cum_qty == 0
    assert table.position("XBTUSD") == 3
