"""Reconciler scenarios: grace periods, phantoms both ways, races, UNKNOWN, position, budget."""

from __future__ import annotations

import random

from bitmex_rows import cancels, executions, on_order_row, orders, ws_orders
from venueguard.core.orders import ClOrdIdGenerator, OrderState, OrderTable
from venueguard.core.reconcile import (
    Alert,
    Decision,
    FetchExecutions,
    FetchOpenOrders,
    FetchOrderHistory,
    FetchPosition,
    Halt,
    Mismatch,
    QueryOrders,
    ReconcileConfig,
    Reconciler,
    ResendCancel,
    Resolved,
)
from venueguard.core.reports import FillReport, OrderReport, OrderStatus

S = OrderState
CFG = ReconcileConfig(visibility_grace_s=5.0, unknown_window_s=60.0, query_interval_s=5.0,
                      sweep_interval_s=30.0, position_grace_s=10.0, budget_queries=50)


def setup(config: ReconcileConfig = CFG) -> tuple[OrderTable, Reconciler]:
    table = OrderTable(ClOrdIdGenerator(random.Random(2)))
    return table, Reconciler(table, config, start_wall_ms=1_000_000, symbols=["XBTUSD"])


def new(table: OrderTable, now: float, qty: int = 10, side: str = "Buy") -> str:
    order = table.new_order("XBTUSD", side, qty, 100.0, now=now, wall_ms=1_000_000 + int(now))
    table.on_submitted(order.cl_ord_id, now)
    return order.cl_ord_id


def ack(table: OrderTable, cl: str, now: float) -> None:
    on_order_row(table, {"clOrdID": cl, "orderID": "o-" + cl, "ordStatus": "New"}, now)


def of(decisions: list[Decision], kind: type) -> list[Decision]:
    return [d for d in decisions if isinstance(d, kind)]


def test_first_poll_sweeps_open_orders_and_positions() -> None:
    _, rec = setup()
    decisions = rec.poll(0.0, 0)
    assert FetchOpenOrders(None) in decisions and FetchPosition("XBTUSD") in decisions
    assert rec.poll(1.0, 0) == []
    assert rec.next_deadline() == 30.0


def test_absence_inside_the_grace_period_is_not_evidence() -> None:
    table, rec = setup()
    cl = new(table, 0.0)
    ack(table, cl, 0.2)
    rec.on_open_orders([], 1.0, 0, asked_at=1.0)          # acked 0.8 s ago: may not be visible
    assert not of(rec.poll(1.0, 0), QueryOrders)
    rec.on_order_lookup([cl], orders([]), 2.0, 0, asked_at=2.0)
    assert table.orders[cl].state is S.NEW and rec.phantoms == 0


def test_local_open_but_venue_absent_after_grace_is_a_phantom() -> None:
    table, rec = setup()
    cl = new(table, 0.0)
    ack(table, cl, 0.2)
    rec.poll(0.3, 0)
    rec.on_open_orders(orders([]), 10.0, 0, asked_at=10.0)
    assert table.orders[cl].state is S.NEW                  # first confirm by clOrdID
    decisions = rec.poll(10.0, 0)
    assert QueryOrders((cl,)) in decisions
    rec.on_order_lookup([cl], orders([]), 10.5, 0, asked_at=10.0)
    assert table.orders[cl].state is S.CANCELED and rec.phantoms == 1
    decisions = rec.poll(10.6, 0)
    assert Mismatch("phantom_local", cl, "NEW absent") in decisions
    assert of(decisions, Resolved)


def test_local_open_missing_from_list_but_found_closed_by_lookup() -> None:
    table, rec = setup()
    cl = new(table, 0.0)
    ack(table, cl, 0.2)
    rec.on_open_orders(orders([]), 10.0, 0)
    rec.poll(10.0, 0)
    rec.on_order_lookup([cl], orders([{"clOrdID": cl, "ordStatus": "Filled", "cumQty": 10}]),
                        10.5, 0)
    assert table.orders[cl].state is S.FILLED and rec.phantoms == 0
    assert FetchExecutions(None, 1_000_000 - CFG.history_margin_ms) in rec.poll(10.6, 0)


def test_venue_open_but_unknown_locally_is_adopted_and_flagged() -> None:
    table, rec = setup()
    row = {"orderID": "foreign", "clOrdID": "", "symbol": "XBTUSD", "side": "Sell",
           "orderQty": 2, "price": 105.0, "ordStatus": "New"}
    rec.on_open_orders(orders([row]), 1.0, 0)
    order = table.find(row["clOrdID"] or None, row["orderID"])
    assert order is not None and order.adopted and order.state is S.NEW
    decisions = rec.poll(1.0, 0)
    assert of(decisions, Mismatch)[0].kind == "phantom_venue"    # type: ignore[attr-defined]
    assert rec.phantoms == 1 and rec.adopted == 1
    rec.on_open_orders(orders([row]), 2.0, 0)                      # known now: not adopted twice
    assert rec.adopted == 1


def test_cancel_fill_race_resolves_to_filled() -> None:
    table, rec = setup()
    cl = new(table, 0.0)
    ack(table, cl, 0.1)
    table.on_cancel_requested(cl, 1.0)
    executions(rec, [{"execType": "Trade", "clOrdID": cl, "execID": "e1", "lastQty": 10,
                            "lastPx": 100.0, "leavesQty": 0, "symbol": "XBTUSD"}], 1.1, 0)
    rec.on_cancel_reports(cancels([{"clOrdID": cl, "error":
                         "Unable to cancel order due to existing state: Filled"}]), 1.2)
    assert table.orders[cl].state is S.FILLED and table.position("XBTUSD") == 10
    assert not of(rec.poll(1.3, 0), Mismatch)


def test_late_fill_after_cancel_is_reported_and_counted() -> None:
    table, rec = setup()
    cl = new(table, 0.0)
    ack(table, cl, 0.1)
    table.on_cancel_requested(cl, 1.0)
    rec.on_cancel_reports(cancels([{"clOrdID": cl, "ordStatus": "Canceled"}]), 1.1)
    executions(rec, [{"execType": "Trade", "clOrdID": cl, "execID": "late", "lastQty": 3,
                            "lastPx": 100.0, "leavesQty": 7}], 1.5, 0)
    assert table.orders[cl].state is S.CANCELED and table.position("XBTUSD") == 3
    assert Mismatch("late_fill", cl, "CANCELED partial_fill") in rec.poll(1.6, 0)


def test_unknown_found_by_clordid_takes_its_real_state() -> None:
    table, rec = setup()
    cl = new(table, 0.0)
    table.on_ambiguous(cl, "timeout", 10.0)
    assert QueryOrders((cl,)) in rec.poll(10.5, 0)
    rec.on_order_lookup([cl], orders([{"clOrdID": cl, "orderID": "o", "ordStatus": "New"}]),
                        11.0, 0)
    assert table.orders[cl].state is S.NEW
    assert Resolved("unknown", cl, "venue shows NEW") in rec.poll(11.0, 0)


def test_unknown_without_evidence_alerts_and_never_becomes_rejected() -> None:
    table, rec = setup()
    cl = new(table, 0.0)
    table.on_ambiguous(cl, "timeout", 10.0)
    alerts: list[Decision] = []
    asked = 0
    now = 10.0
    while now < 400.0:                       # the venue never answers: every lookup fails
        for d in rec.poll(now, 0):
            asked += isinstance(d, QueryOrders)
            alerts += of([d], Alert)
        deadline = rec.next_deadline()
        assert deadline is not None and deadline > now
        now = deadline
    assert table.orders[cl].state is S.UNKNOWN and asked > 10
    assert len(alerts) == 1 and alerts[0].tier == "critical"     # type: ignore[attr-defined]


def test_unknown_inside_the_acceptance_window_stays_unknown_when_not_found() -> None:
    table, rec = setup()
    cl = new(table, 0.0)
    table.on_ambiguous(cl, "timeout", 10.0)
    window = CFG.acceptance_window_s
    for now in (10.5, 15.5, 10.0 + window - 0.5):         # may still be on its way
        rec.on_order_lookup([cl], [], now, 0, asked_at=now)
        assert table.orders[cl].state is S.UNKNOWN
    assert QueryOrders((cl,)) in rec.poll(10.0 + window, 0)     # still asked about


def test_unknown_not_found_by_client_id_after_the_acceptance_window_was_never_accepted() -> None:
    table, rec = setup()
    cl = new(table, 0.0)
    table.on_ambiguous(cl, "timeout", 10.0)
    asked = 10.0 + CFG.acceptance_window_s
    rec.on_order_lookup([cl], [], asked + 0.2, 0, asked_at=asked)
    order = table.orders[cl]
    assert order.state is S.REJECTED
    reason = order.history[-1].event.reason                      # type: ignore[union-attr]
    assert reason.startswith("never accepted: not found by client id")
    decisions = rec.poll(asked + 0.3, 0)
    assert Resolved("unknown_not_accepted", cl, reason) in decisions
    assert not of(decisions, Alert)
    later = of(rec.poll(500.0, 0), QueryOrders)
    assert all(cl not in d.cl_ord_ids for d in later)          # type: ignore[attr-defined]


def test_a_cancel_refused_as_not_found_settles_an_unknown_after_the_window() -> None:
    table, rec = setup()
    cl = new(table, 0.0)
    table.on_ambiguous(cl, "timeout", 10.0)
    not_found = {"clOrdID": cl, "error": "Unable to cancel order: Not found or not owned by user"}
    table.on_cancel_requested(cl, 11.0)
    rec.on_cancel_reports(cancels([not_found]), 11.1, 0, asked_at=11.0)
    assert table.orders[cl].state is S.UNKNOWN                   # too early to be evidence
    late = 10.0 + CFG.acceptance_window_s
    table.on_cancel_requested(cl, late)
    rec.on_cancel_reports(cancels([not_found]), late + 0.1, 0, asked_at=late)
    assert table.orders[cl].state is S.REJECTED


def test_a_cancel_refused_as_not_found_closes_an_open_order_after_grace() -> None:
    table, rec = setup()
    cl = new(table, 0.0)
    ack(table, cl, 0.2)
    not_found = {"clOrdID": cl, "error": "Unable to cancel order: Not found or not owned by user"}
    table.on_cancel_requested(cl, 1.0)
    rec.on_cancel_reports(cancels([not_found]), 1.1, 0, asked_at=1.0)
    assert table.orders[cl].state is S.PENDING_CANCEL            # inside the grace: no evidence
    assert QueryOrders((cl,)) in rec.poll(6.5, 0)                # settled by a lookup instead
    table.on_cancel_requested(cl, 7.0)
    rec.on_cancel_reports(cancels([not_found]), 7.1, 0, asked_at=7.0)
    order = table.orders[cl]
    assert order.state is S.CANCELED and order.history[-1].kind == "absent"


def test_restored_orders_count_their_age_from_creation_in_wall_time() -> None:
    table = OrderTable(ClOrdIdGenerator(random.Random(2)))
    old = table.new_order("XBTUSD", "Buy", 10, 100.0, now=0.0, wall_ms=1_000_000)
    table.on_submitted(old.cl_ord_id, 0.0)
    table.on_acked(old.cl_ord_id, "o1", 0.1)
    fresh = table.new_order("XBTUSD", "Buy", 10, 100.0, now=0.0, wall_ms=1_299_000)
    table.on_submitted(fresh.cl_ord_id, 0.0)
    table.on_acked(fresh.cl_ord_id, "o2", 0.1)
    for order in (old, fresh):            # as Journal.load_table leaves them: times restart
        order.state_since = order.created_at = 50.0
    rec = Reconciler(table, CFG, start_wall_ms=1_000_000, symbols=["XBTUSD"])
    rec.start(50.0)
    ids = [old.cl_ord_id, fresh.cl_ord_id]
    assert QueryOrders(tuple(ids)) in rec.poll(50.0, 1_300_000) or \
        QueryOrders(tuple(reversed(ids))) in rec.poll(50.0, 1_300_000)
    rec.on_order_lookup(ids, [], 50.2, 1_300_000, asked_at=50.0)    # the venue forgot both
    assert old.state is S.CANCELED                     # created 300 s ago: gone
    assert fresh.state is S.NEW                        # created 1 s ago: may not be visible yet
    counts = rec.startup_counts()
    assert (counts.journaled, counts.resolved, counts.unresolved, counts.adopted) == (2, 1, 1, 0)
    later = 50.0 + CFG.query_interval_s                 # not settled yet: asked again
    assert QueryOrders((fresh.cl_ord_id,)) in rec.poll(later, 1_305_000)
    rec.on_order_lookup([fresh.cl_ord_id], [], later + 0.2, 1_305_000, asked_at=later)
    assert fresh.state is S.CANCELED
    assert rec.startup_counts().unresolved == 0


def test_unknown_resolved_as_not_placed_only_by_complete_history_after_window() -> None:
    table, rec = setup()
    cl = new(table, 0.0)
    table.on_ambiguous(cl, "timeout", 10.0)
    start = 1_000_000 - CFG.history_margin_ms
    rec.on_order_history([], 30.0, 0, start_wall_ms=start, complete=True)   # too early
    assert table.orders[cl].state is S.UNKNOWN
    decisions = rec.poll(70.0, 0)
    assert FetchOrderHistory(None, start) in decisions
    rec.on_order_history([], 71.0, 0, start_wall_ms=start, complete=False)  # a page missing
    assert table.orders[cl].state is S.UNKNOWN
    rec.on_order_history([], 72.0, 0, start_wall_ms=start, complete=True, asked_at=71.5)
    assert table.orders[cl].state is S.REJECTED
    assert Resolved("unknown_not_placed", cl, "absent from the venue's complete order history") \
        in rec.poll(72.0, 0)


def test_duplicate_clordid_unknown_is_never_resolved_by_absence() -> None:
    table, rec = setup()
    cl = new(table, 0.0)
    table.on_duplicate(cl, 1.0)
    rec.on_order_history([], 100.0, 0, start_wall_ms=0, complete=True)
    assert table.orders[cl].state is S.UNKNOWN


def test_position_reconciled_against_executions() -> None:
    table, rec = setup()
    cl = new(table, 0.0, qty=10)
    ack(table, cl, 0.1)
    rec.poll(0.2, 0)
    rec.on_position("XBTUSD", 6, 1.0)                      # a fill we have not seen
    assert FetchExecutions(None, 1_000_000 - CFG.history_margin_ms) in rec.poll(1.0, 0)
    rec.on_position("XBTUSD", 6, 11.5)
    decisions = rec.poll(11.5, 0)
    assert Mismatch("position", None, "XBTUSD local 0 venue 6") in decisions
    assert [d.tier for d in of(decisions, Alert)] == ["critical"]    # type: ignore[attr-defined]
    assert Halt("position mismatch: XBTUSD local 0 venue 6") in decisions
    assert rec.position_mismatches == {"XBTUSD"}
    executions(rec, [{"execType": "Trade", "clOrdID": cl, "execID": "e9", "lastQty": 6,
                            "lastPx": 100.0, "leavesQty": 4}], 12.0, 0)
    rec.on_position("XBTUSD", 6, 12.5)
    assert Resolved("position", None, "XBTUSD 6") in rec.poll(12.5, 0)
    assert rec.position_mismatches == frozenset()


def test_lookups_are_budgeted_and_lower_in_safe_mode() -> None:
    config = ReconcileConfig(budget_queries=4, safe_budget_queries=1, budget_interval_s=10.0,
                             max_ids_per_query=5)
    table, rec = setup(config)
    rec.set_safe_mode(True)
    for _ in range(12):
        table.on_ambiguous(new(table, 0.0), "timeout", 1.0)
    first = [d for d in rec.poll(2.0, 0) if not isinstance(d, Alert | Mismatch | Resolved)]
    assert len(first) == 1
    assert rec.poll(5.0, 0) == []
    deadline = rec.next_deadline()
    assert deadline is not None and deadline >= 12.0
    rec.set_safe_mode(False)
    assert len(rec.poll(12.0, 0)) == 4


def test_restart_turns_pending_new_into_unknown_and_waits_for_answers() -> None:
    table, rec = setup()
    cl = new(table, 0.0)
    other = new(table, 0.0)
    ack(table, other, 0.1)
    rec.start(5.0)
    assert table.orders[cl].state is S.UNKNOWN and not rec.ready
    query = of(rec.poll(5.0, 0), QueryOrders)
    assert query and set(query[0].cl_ord_ids) == {cl, other}      # type: ignore[attr-defined]
    rec.on_order_lookup([cl, other], orders([{"clOrdID": other, "ordStatus": "New"}]), 5.5, 0)
    assert rec.ready and table.orders[cl].state is S.UNKNOWN


def test_each_sweep_fetches_executions_since_the_previous_one() -> None:
    _, rec = setup()
    first = rec.poll(0.0, 2_000_000)
    assert FetchExecutions(None, 1_000_000 - CFG.history_margin_ms) in first
    assert rec.exec_watermark_ms == 2_000_000
    second = rec.poll(30.0, 2_030_000)
    assert FetchExecutions(None, 2_000_000 - CFG.history_margin_ms) in second
    rec.on_open_orders(orders([]), 30.5, 2_030_500)
    assert rec.venue_open == 0


def test_restart_resumes_execution_fetches_from_the_saved_watermark() -> None:
    table = OrderTable(ClOrdIdGenerator(random.Random(4)))
    rec = Reconciler(table, CFG, start_wall_ms=5, exec_since_ms=900_000)
    assert FetchExecutions(None, 900_000 - CFG.history_margin_ms) in rec.poll(0.0, 1_000_000)
    rec.on_position("XBTUSD", 3, 1.0)            # a miss older than the watermark
    assert FetchExecutions(None, 5 - CFG.history_margin_ms) in rec.poll(1.0, 1_000_001)


def test_query_splits_adopted_orders_by_order_id() -> None:
    query = QueryOrders(("vg-a-1", "venue:abc", "vg-a-2"))
    assert query.by_cl_ord_id == ("vg-a-1", "vg-a-2") and query.by_order_id == ("abc",)


def test_lost_amend_answer_is_settled_by_the_venue_row() -> None:
    table, rec = setup()
    cl = new(table, 0.0, qty=10)
    ack(table, cl, 0.1)
    table.on_amend_requested(cl, 7, 99.0, 1.0)
    table.on_ambiguous(cl, "timeout", 2.0)
    assert QueryOrders((cl,)) in rec.poll(6.0, 0)
    rec.on_order_lookup([cl], orders([{"clOrdID": cl, "ordStatus": "New", "orderQty": 7,
                                "price": 99.0}]), 6.5, 0)
    order = table.orders[cl]
    assert order.state is S.NEW and (order.qty, order.price) == (7, 99.0)


def test_lost_cancel_answer_is_resent_while_the_venue_shows_it_open() -> None:
    table, rec = setup()
    cl = new(table, 0.0)
    ack(table, cl, 0.1)
    table.on_cancel_requested(cl, 1.0)
    table.on_ambiguous(cl, "timeout", 2.0)
    assert QueryOrders((cl,)) in rec.poll(6.0, 0)
    rec.on_order_lookup([cl], orders([{"clOrdID": cl, "ordStatus": "New"}]), 6.5, 0)
    assert ResendCancel(cl) in rec.poll(6.5, 0)
    rec.on_order_lookup([cl], orders([{"clOrdID": cl, "ordStatus": "New"}]), 7.0, 0)
    assert not of(rec.poll(7.0, 0), ResendCancel)      # not again before query_interval_s


def test_delayed_open_row_after_a_cancel_is_ignored_quietly() -> None:
    table, rec = setup()
    cl = new(table, 0.0)
    ack(table, cl, 0.1)
    table.on_cancel_requested(cl, 1.0)
    rec.on_cancel_reports(cancels([{"clOrdID": cl, "ordStatus": "Canceled"}]), 1.1)
    ws_orders(rec, [{"clOrdID": cl, "ordStatus": "New"}], 1.2, 0)   # sent before the cancel
    assert table.orders[cl].state is S.CANCELED
    assert not of(rec.poll(1.3, 0), Mismatch)


def test_an_order_hidden_longer_than_the_old_window_is_never_called_not_placed() -> None:
    # accepted, its answer lost, hidden from every query for 25 s (delayed visibility longer
    # than any grace): absence inside the visibility horizon is no evidence, by client id or
    # in a complete history; the order is found once it shows
    table, rec = setup()
    assert CFG.acceptance_window_s == 60.0                       # the documented default
    cl = new(table, 0.0)
    table.on_ambiguous(cl, "timeout", 0.5)
    for now in (1.0, 6.0, 16.0, 20.0, 24.0):
        rec.on_order_lookup([cl], [], now, 1_000_000 + int(now * 1000), asked_at=now)
        rec.on_order_history([], now, 0, start_wall_ms=0, complete=True, asked_at=now)
        assert table.orders[cl].state is S.UNKNOWN
    on_order_row(table, {"clOrdID": cl, "orderID": "o-" + cl, "ordStatus": "New"}, 25.5)
    rec.on_order_lookup([cl], orders([{"clOrdID": cl, "orderID": "o-" + cl, "ordStatus": "New",
                                       "symbol": "XBTUSD"}]), 25.6, 0, asked_at=25.5)
    assert table.orders[cl].state is S.NEW


def test_a_complete_history_proves_absence_only_past_the_visibility_horizon() -> None:
    table, rec = setup(ReconcileConfig(unknown_window_s=4.0, acceptance_window_s=30.0))
    cl = new(table, 0.0)
    table.on_ambiguous(cl, "timeout", 1.0)
    rec.on_order_history([], 20.0, 0, start_wall_ms=0, complete=True, asked_at=20.0)
    assert table.orders[cl].state is S.UNKNOWN                   # past the window, not the horizon
    rec.on_order_history([], 31.5, 0, start_wall_ms=0, complete=True, asked_at=31.0)
    assert table.orders[cl].state is S.REJECTED


def test_a_fill_naming_only_a_venue_id_waits_while_an_order_of_ours_is_in_doubt() -> None:
    # Binance's trade rows carry no client id, and an order of ours answered by a timeout may
    # still be hidden from queries: adopting the fill by venue id would make a second local
    # order of ours, and the fill would be credited to both once ours shows its venue id.
    table, rec = setup()
    cl = new(table, 0.0, qty=3)
    table.on_ambiguous(cl, "timeout", 1.0)
    fill = FillReport("t1:v9", None, "v9", 3, 100.0, "XBTUSD", "Buy", leaves_qty=None)
    rec.on_fill_reports([fill], 2.0, 0)
    assert set(table.orders) == {cl} and rec.adopted == 0 and table.position("XBTUSD") == 0
    rec.on_order_lookup([cl], [OrderReport(cl, "v9", OrderStatus.FILLED, symbol="XBTUSD",
                                           side="Buy", qty=3, filled_qty=3)], 3.0, 0)
    assert FetchExecutions(None, 1_000_000 - CFG.history_margin_ms) in rec.poll(3.0, 0)
    rec.on_fill_reports([fill], 4.0, 0)                 # the fetch again: found by venue id
    assert set(table.orders) == {cl} and table.orders[cl].cum_qty == 3
    assert table.position("XBTUSD") == 3
    other = FillReport("t2:v10", None, "v10", 1, 100.0, "XBTUSD", "Sell", leaves_qty=None)
    rec.on_fill_reports([other], 5.0, 0)                # nothing of ours in doubt: adopted
    assert rec.adopted == 1 and table.position("XBTUSD") == 2


def test_an_order_answered_not_processed_holds_no_fill_back() -> None:
    # an overload answer means the venue never took the order: it waits to be sent again as
    # PENDING_NEW, and a fill naming only a venue id cannot be its
    table, rec = setup()
    cl = new(table, 0.0, qty=3)
    table.on_rejected(cl, "The system is currently overloaded.", not_processed=True, now=1.0)
    assert table.orders[cl].state is S.PENDING_NEW
    other = FillReport("t2:v10", None, "v10", 1, 100.0, "XBTUSD", "Sell", leaves_qty=None)
    rec.on_fill_reports([other], 2.0, 0)
    assert rec.adopted == 1 and table.position("XBTUSD") == -1
    table.on_submitted(cl, 3.0)                           # sent again: in doubt while in flight
    fill = FillReport("t3:v11", None, "v11", 3, 100.0, "XBTUSD", "Buy", leaves_qty=None)
    rec.on_fill_reports([fill], 4.0, 0)
    assert rec.adopted == 1 and table.position("XBTUSD") == -1
