"""Reconciler timing and reports pinned down: exact deadlines (first lookup of an UNKNOWN,
pending cancels, suspects, budget, position grace, execution fetches), the exact decisions of
adoption and of an UNKNOWN alert, and a complete order history settling UNKNOWN orders."""

from __future__ import annotations

import random

from venueguard.core.order_events import Ambiguous, AmendRejected, NotFoundAtVenue, VenueSnapshot
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
from venueguard.core.reports import FillReport, OrderReport, OrderStatus, RefusalReport

S = OrderState
WALL = 1_000_000
#: Sweeps rare enough that they never decide a deadline below.
CFG = ReconcileConfig(visibility_grace_s=5.0, acceptance_window_s=15.0,
                      unknown_first_query_s=0.5, query_interval_s=5.0, unknown_window_s=60.0,
                      sweep_interval_s=1000.0, safe_sweep_interval_s=1000.0,
                      position_grace_s=10.0, budget_queries=50, budget_interval_s=10.0,
                      history_margin_ms=5_000, max_ids_per_query=20)


def setup(config: ReconcileConfig = CFG, symbols: tuple[str, ...] = ("XBTUSD",)
          ) -> tuple[OrderTable, Reconciler]:
    table = OrderTable(ClOrdIdGenerator(random.Random(5)))
    return table, Reconciler(table, config, start_wall_ms=WALL, symbols=symbols)


def placed(table: OrderTable, now: float) -> str:
    order = table.new_order("XBTUSD", "Buy", 10, 100.0, now=now, wall_ms=WALL + int(now * 1000))
    table.on_submitted(order.cl_ord_id, now)
    return order.cl_ord_id


def acked(table: OrderTable, now: float) -> str:
    cl = placed(table, now)
    table.on_acked(cl, "v-" + cl, now)
    return cl


def unknown(table: OrderTable, now: float) -> str:
    cl = placed(table, now)
    table.on_ambiguous(cl, "timeout", now)
    return cl


def reports(decisions: list[Decision]) -> list[Decision]:
    return [d for d in decisions if isinstance(d, Mismatch | Resolved | Alert)]


def swept(rec: Reconciler, now: float = 0.0) -> None:
    """The first poll: the sweep (open orders, executions since the start, positions)."""
    decisions = rec.poll(now, WALL)
    assert FetchOpenOrders(None) in decisions


# ------------------------------------------------------------------------------ deadlines
def test_before_anything_the_sweep_is_due_at_once() -> None:
    _, rec = setup(symbols=())
    assert rec.next_deadline() == -1e18
    assert (rec.venue_open, rec.phantoms, rec.adopted) == (None, 0, 0)
    rec.on_open_orders([], 1.0, WALL)
    assert rec.venue_open == 0


def test_a_fresh_unknown_is_first_looked_up_after_half_a_second() -> None:
    table, rec = setup()
    swept(rec)
    cl = unknown(table, 10.0)
    assert rec.next_deadline() == 10.5
    assert rec.poll(10.4, WALL) == []
    assert rec.poll(10.5, WALL) == [QueryOrders((cl,))]
    assert rec.next_deadline() == 15.5


def test_a_pending_cancel_is_looked_up_one_interval_after_the_request() -> None:
    table, rec = setup()
    swept(rec)
    cl = acked(table, 1.0)
    table.on_cancel_requested(cl, 10.0)
    assert rec.next_deadline() == 15.0
    assert rec.poll(14.9, WALL) == []
    assert rec.poll(15.0, WALL) == [QueryOrders((cl,))]
    assert rec.next_deadline() == 20.0


def test_a_suspect_is_looked_up_at_once() -> None:
    table, rec = setup()
    swept(rec)
    cl = acked(table, 0.25)
    rec.on_open_orders([], 6.0, WALL, asked_at=6.0)   # missing 5.75 s after the ack: suspect
    assert rec.next_deadline() == 0.25
    assert rec.poll(6.0, WALL) == [QueryOrders((cl,))]
    assert rec.next_deadline() == 11.0


def test_an_order_only_looked_at_by_the_history_check_is_pending_new_so_never() -> None:
    table, rec = setup()
    swept(rec)
    placed(table, 1.0)                                 # sent, no answer yet: no lookup due
    assert rec.next_deadline() == 1000.0


def test_an_unknown_known_to_exist_is_looked_up_every_interval_not_by_history() -> None:
    table, rec = setup()
    swept(rec)
    cl = placed(table, 0.0)
    table.on_duplicate(cl, 0.0)                        # UNKNOWN, but it exists at the venue
    decisions = rec.poll(100.0, WALL)
    assert QueryOrders((cl,)) in decisions
    assert not [d for d in decisions if isinstance(d, FetchOrderHistory)]
    assert rec.next_deadline() == 105.0


def test_an_exhausted_budget_holds_lookups_but_not_the_unknown_alert() -> None:
    cfg = ReconcileConfig(budget_queries=1, budget_interval_s=1000.0, sweep_interval_s=1000.0,
                          unknown_window_s=60.0)
    table, rec = setup(cfg, symbols=())
    cl = unknown(table, 0.0)
    assert rec.poll(0.5, WALL) == [QueryOrders((cl,))]
    assert rec.next_deadline() == 60.0                # the alert is not budgeted
    decisions = rec.poll(60.0, WALL)
    assert [type(d) for d in decisions] == [Alert, Mismatch]
    assert rec.next_deadline() == 1000.5              # the budget frees up then


def test_an_exhausted_budget_delays_the_next_lookup() -> None:
    cfg = ReconcileConfig(budget_queries=1, budget_interval_s=10.0, sweep_interval_s=1000.0)
    _, rec = setup(cfg, symbols=())
    assert rec.poll(0.0, WALL) == [FetchOpenOrders(None)]
    assert rec.next_deadline() == 10.0                # the sweep's executions, once budget allows
    assert rec.poll(9.9, WALL) == []
    assert rec.poll(10.0, WALL) == [FetchExecutions(None, WALL - 5_000)]
    assert rec.next_deadline() == 1000.0


def test_a_position_mismatch_is_fetched_again_when_its_grace_ends_and_then_halts() -> None:
    cfg = ReconcileConfig(query_interval_s=20.0, position_grace_s=10.0, sweep_interval_s=1000.0)
    _, rec = setup(cfg)
    assert rec.poll(0.0, WALL) == [FetchOpenOrders(None), FetchExecutions(None, WALL - 5_000),
                                   FetchPosition("XBTUSD")]
    rec.on_position("XBTUSD", 3.0, 1.0)               # locally 0: fetch every execution
    assert rec.next_deadline() == -1e18
    assert rec.poll(1.0, WALL) == [FetchExecutions(None, WALL - 5_000)]
    assert rec.next_deadline() == 11.0                # the grace ends before the next fetches
    assert rec.poll(10.9, WALL) == []
    assert rec.poll(11.0, WALL) == [FetchPosition("XBTUSD")]
    assert rec.next_deadline() == 21.0                # executions again, one interval later
    rec.on_position("XBTUSD", 3.0, 11.5)
    decisions = rec.poll(11.5, WALL)
    assert [type(d) for d in decisions] == [Mismatch, Alert, Halt]
    assert rec.next_deadline() == 21.0                # never a deadline poll has nothing for
    assert rec.poll(21.0, WALL) == [FetchExecutions(None, WALL - 5_000)]
    assert rec.next_deadline() == 31.0
    assert rec.poll(31.0, WALL) == [FetchPosition("XBTUSD")]


def test_a_position_due_exactly_now_is_fetched() -> None:
    cfg = ReconcileConfig(query_interval_s=5.0, sweep_interval_s=1000.0)
    _, rec = setup(cfg)
    rec.poll(0.0, WALL)
    rec.on_position("XBTUSD", 3.0, 0.5)
    assert rec.poll(0.5, WALL) == [FetchExecutions(None, WALL - 5_000)]
    assert rec.poll(5.0, WALL) == [FetchPosition("XBTUSD")]


# ---------------------------------------------------------------------------- restarts
def restored(now: float) -> tuple[OrderTable, Reconciler, str]:
    table, rec = setup()
    cl = acked(table, now)                             # acked just before the restart
    rec.start(now + 1.0)
    return table, rec, cl


def test_a_restored_order_absent_inside_the_grace_is_asked_again_one_interval_later() -> None:
    table, rec, cl = restored(99.0)
    assert QueryOrders((cl,)) in rec.poll(100.0, WALL + 99_000)
    rec.on_order_lookup([cl], [], 100.5, WALL + 99_500, asked_at=100.0)
    assert rec.ready and table.orders[cl].state is S.NEW
    assert rec.next_deadline() == 105.0
    assert rec.poll(104.9, WALL + 99_500) == []
    assert rec.poll(105.0, WALL + 99_500) == [QueryOrders((cl,))]


def test_a_restored_order_answered_before_it_was_asked_is_asked_at_once() -> None:
    _, rec, cl = restored(99.0)
    rec.on_order_lookup([cl], [], 100.0, WALL + 99_000, asked_at=100.0)
    assert rec.ready and rec.next_deadline() == -1e18
    assert QueryOrders((cl,)) in rec.poll(100.1, WALL + 99_000)


# ---------------------------------------------------------------------------- adoption
def test_adopting_venue_orders_reports_each_and_counts_them() -> None:
    table, rec = setup()
    rows = [OrderReport(None, "v9", OrderStatus.NEW, "XBTUSD", "Sell", 2.0, 105.0),
            OrderReport("theirs", "v8", OrderStatus.NEW, "XBTUSD", "Buy", 1.0, 99.0)]
    rec.on_open_orders(rows, 1.0, WALL + 7)
    assert (rec.adopted, rec.phantoms, rec.venue_open) == (2, 2, 2)
    assert reports(rec.poll(1.0, WALL)) == [
        Mismatch("phantom_venue", "venue:v9", "open at the venue, unknown locally (v9)"),
        Resolved("adopted", "venue:v9", "NEW"),
        Mismatch("phantom_venue", "theirs", "open at the venue, unknown locally (v8)"),
        Resolved("adopted", "theirs", "NEW")]
    adopted = table.orders["venue:v9"]
    assert (adopted.created_at, adopted.created_wall_ms, adopted.adopted) == (1.0, WALL + 7, True)


def test_adopting_a_closed_order_is_no_phantom() -> None:
    _, rec = setup()
    rec.on_order_lookup([], [OrderReport("old", "v7", OrderStatus.FILLED, "XBTUSD", "Buy", 1.0,
                                         99.0, filled_qty=1.0)], 2.0, WALL)
    assert (rec.adopted, rec.phantoms) == (1, 0)
    assert reports(rec.poll(2.0, WALL)) == [Resolved("adopted", "old", "FILLED")]


# ---------------------------------------------------------------------------- UNKNOWN
def test_an_unknown_without_evidence_alerts_once_when_the_window_ends() -> None:
    table, rec = setup()
    swept(rec)
    cl = unknown(table, 10.0)
    assert reports(rec.poll(69.9, WALL)) == []
    decisions = rec.poll(70.0, WALL)
    assert reports(decisions) == [
        Alert("critical", f"order {cl} UNKNOWN for 60 s without venue evidence; it stays "
                          "UNKNOWN"),
        Mismatch("unknown_unresolved", cl, "60 s")]
    assert reports(rec.poll(200.0, WALL)) == []


def history_case() -> tuple[OrderTable, Reconciler, str]:
    table, rec = setup()
    swept(rec)
    cl = unknown(table, 10.0)
    return table, rec, cl


def test_a_complete_history_without_the_unknown_settles_it_at_the_window_edge() -> None:
    table, rec, cl = history_case()
    created = table.orders[cl].created_wall_ms
    table.take_transitions()
    rec.on_order_history([], 75.0, WALL, start_wall_ms=created, complete=True, asked_at=70.0)
    order = table.orders[cl]
    assert (order.state, order.state_since) == (S.REJECTED, 75.0)
    [transition] = table.take_transitions()
    assert transition.event == NotFoundAtVenue(
        70.0, grace_elapsed=True, definitive=True,
        reason="absent from the venue's complete order history")
    assert transition.now == 75.0
    assert reports(rec.poll(75.0, WALL)) == [
        Resolved("unknown_not_placed", cl, "absent from the venue's complete order history")]


def test_a_history_asked_before_the_window_ends_settles_nothing() -> None:
    table, rec, cl = history_case()
    rec.on_order_history([], 75.0, WALL, start_wall_ms=WALL, complete=True, asked_at=69.9)
    assert table.orders[cl].state is S.UNKNOWN


def test_a_history_starting_after_the_order_was_created_settles_nothing() -> None:
    table, rec, cl = history_case()
    created = table.orders[cl].created_wall_ms
    rec.on_order_history([], 75.0, WALL, start_wall_ms=created + 1, complete=True)
    assert table.orders[cl].state is S.UNKNOWN


def test_one_unknown_left_alone_does_not_stop_the_next_from_settling() -> None:
    table, rec = setup()
    swept(rec)
    found = unknown(table, 10.0)
    exists = placed(table, 10.0)
    table.on_duplicate(exists, 10.0)                   # UNKNOWN, known to exist: stays
    second = unknown(table, 10.0)
    row = OrderReport(found, "v-found", OrderStatus.NEW, "XBTUSD", "Buy", 10.0, 100.0)
    rec.on_order_history([row], 80.0, WALL + 5, start_wall_ms=WALL, complete=True)
    assert table.orders[found].state is S.NEW
    assert table.orders[found].state_since == 80.0
    assert table.orders[exists].state is S.UNKNOWN
    assert table.orders[second].state is S.REJECTED


def test_a_history_adopts_orders_unknown_locally() -> None:
    table, rec = setup()
    row = OrderReport("theirs", "v5", OrderStatus.CANCELED, "XBTUSD", "Sell", 3.0, 101.0)
    rec.on_order_history([row], 80.0, WALL + 9, start_wall_ms=WALL, complete=False)
    adopted = table.orders["theirs"]
    assert (adopted.state, adopted.created_at, adopted.created_wall_ms) == (
        S.CANCELED, 80.0, WALL + 9)
    assert adopted.history[-1].event == VenueSnapshot(OrderStatus.CANCELED, "v5", order_qty=3.0,
                                                      price=101.0)


def test_an_unknown_restored_at_startup_is_answered_by_a_complete_history() -> None:
    table, rec = setup()
    cl = unknown(table, 10.0)
    rec.start(11.0)
    assert not rec.ready
    rec.on_order_history([], 80.0, WALL, start_wall_ms=WALL, complete=True)
    assert rec.ready and table.orders[cl].state is S.REJECTED


# ------------------------------------------------------------------------------ absence
def last_event(table: OrderTable, cl: str) -> object:
    return table.orders[cl].history[-1].event


def test_an_unknown_not_found_after_the_acceptance_window_says_so_exactly() -> None:
    table, rec = setup()
    swept(rec)
    cl = unknown(table, 10.0)
    rec.on_order_lookup([cl], [], 26.0, WALL, asked_at=25.0)
    reason = "never accepted: not found by client id 15 s after its outcome became unknown"
    assert last_event(table, cl) == NotFoundAtVenue(25.0, True, True, reason)
    assert table.orders[cl].state is S.REJECTED
    assert reports(rec.poll(26.0, WALL)) == [Resolved("unknown_not_accepted", cl, reason)]


def test_an_open_order_absent_exactly_at_the_grace_end_is_closed() -> None:
    table, rec = setup()
    swept(rec)
    cl = acked(table, 1.0)
    rec.on_order_lookup([cl], [], 7.0, WALL, asked_at=6.0)
    assert last_event(table, cl) == NotFoundAtVenue(6.0, True, False, "not found by client id")
    assert table.orders[cl].state is S.CANCELED


def test_absence_asked_before_the_grace_end_is_no_evidence() -> None:
    table, rec = setup()
    swept(rec)
    cl = acked(table, 1.0)
    rec.on_order_lookup([cl], [], 9.0, WALL, asked_at=5.9)
    assert last_event(table, cl) == NotFoundAtVenue(5.9, False, False, "not found by client id")
    assert table.orders[cl].state is S.NEW


def test_a_lookup_answers_every_id_even_after_one_the_table_does_not_know() -> None:
    table, rec = setup()
    swept(rec)
    cl = acked(table, 1.0)
    rec.on_order_lookup(["ghost", cl], [], 7.0, WALL, asked_at=7.0)
    assert table.orders[cl].state is S.CANCELED


def test_a_restored_order_created_a_grace_ago_in_wall_time_is_absent_at_once() -> None:
    table, rec = setup()
    cl = acked(table, 99.0)
    created = table.orders[cl].created_wall_ms
    rec.start(100.0)
    rec.on_order_lookup([cl], [], 100.0, created + 4_999, asked_at=100.0)
    assert table.orders[cl].state is S.NEW
    rec.on_order_lookup([cl], [], 100.0, created + 5_000, asked_at=100.0)
    assert table.orders[cl].state is S.CANCELED


def test_a_cancel_refused_as_unknown_order_is_absence_with_the_venue_reason() -> None:
    table, rec = setup()
    swept(rec)
    cl = acked(table, 1.0)
    table.on_cancel_requested(cl, 2.0)
    rec.on_cancel_reports([RefusalReport(cl, None, "Not Found", not_found=True)], 8.0, WALL)
    assert last_event(table, cl) == NotFoundAtVenue(8.0, True, False, "cancel refused: Not Found")
    assert table.orders[cl].state is S.CANCELED


# ------------------------------------------------------------------------------ open list
def test_the_open_list_of_one_symbol_says_nothing_about_another() -> None:
    table, rec = setup()
    swept(rec)
    acked(table, 1.0)
    rec.on_open_orders([], 10.0, WALL, asked_at=10.0, symbol="ETHUSD")
    assert rec.poll(10.0, WALL) == []
    rec.on_open_orders([], 10.0, WALL, asked_at=10.0, symbol="XBTUSD")
    assert [type(d) for d in rec.poll(10.0, WALL)] == [QueryOrders]


def test_an_order_in_the_open_list_does_not_hide_the_next_missing_one() -> None:
    table, rec = setup()
    swept(rec)
    shown = acked(table, 1.0)
    missing = acked(table, 1.0)
    row = OrderReport(shown, "v-" + shown, OrderStatus.NEW, "XBTUSD", "Buy", 10.0, 100.0)
    rec.on_open_orders([row], 10.0, WALL, asked_at=10.0)
    assert rec.poll(10.0, WALL) == [QueryOrders((missing,))]


def test_the_open_list_counts_the_grace_from_when_it_was_asked() -> None:
    table, rec = setup()
    swept(rec)
    acked(table, 1.0)
    rec.on_open_orders([], 20.0, WALL, asked_at=5.9)
    assert rec.poll(20.0, WALL) == []


def test_the_open_list_counts_a_restored_order_from_its_creation_in_wall_time() -> None:
    table, rec = setup()
    cl = acked(table, 99.0)
    created = table.orders[cl].created_wall_ms
    rec.start(100.0)
    rec.on_order_lookup([cl], [OrderReport(cl, "v-" + cl, OrderStatus.NEW)], 100.0, created)
    rec.poll(100.0, created)
    rec.on_open_orders([], 101.0, created + 5_000, asked_at=101.0)
    assert QueryOrders((cl,)) in rec.poll(101.0, created + 5_000)


def test_a_suspect_found_open_by_its_lookup_is_no_longer_asked_about() -> None:
    table, rec = setup()
    swept(rec)
    cl = acked(table, 1.0)
    rec.on_open_orders([], 10.0, WALL, asked_at=10.0)
    assert rec.poll(10.0, WALL) == [QueryOrders((cl,))]
    rec.on_order_lookup([cl], [OrderReport(cl, "v-" + cl, OrderStatus.NEW)], 10.5, WALL)
    assert rec.next_deadline() == 1000.0


# ------------------------------------------------------------------------------ reports
def test_a_report_without_status_or_symbol_about_an_unknown_order_is_dropped() -> None:
    table, rec = setup()
    rec.on_order_reports([OrderReport("x", "v1", OrderStatus.NEW),
                          OrderReport("y", "v2", None, "XBTUSD")], 1.0, WALL)
    assert (table.orders, rec.adopted) == ({}, 0)


def test_a_sparse_update_of_a_pending_cancel_changes_nothing() -> None:
    table, rec = setup()
    swept(rec)
    cl = acked(table, 1.0)
    table.on_cancel_requested(cl, 2.0)
    rec.on_order_reports([OrderReport(cl, None, None, price=101.0)], 20.0, WALL)
    assert table.orders[cl].state is S.PENDING_CANCEL
    assert rec.poll(20.0, WALL) == [QueryOrders((cl,))]


def test_a_lost_cancel_answer_is_resent_every_interval_while_the_row_shows_open() -> None:
    table, rec = setup()
    swept(rec)
    cl = acked(table, 1.0)
    table.on_cancel_requested(cl, 10.0)
    row = OrderReport(cl, "v-" + cl, OrderStatus.NEW)
    rec.on_order_reports([row], 14.9, WALL)
    assert ResendCancel(cl) not in rec.poll(14.9, WALL)
    rec.on_order_reports([row], 15.0, WALL)
    assert ResendCancel(cl) in rec.poll(15.0, WALL)
    rec.on_order_reports([row], 19.9, WALL)
    assert ResendCancel(cl) not in rec.poll(19.9, WALL)
    rec.on_order_reports([row], 20.0, WALL)
    assert ResendCancel(cl) in rec.poll(20.0, WALL)


def test_a_lost_amend_answer_is_settled_by_an_open_row_one_interval_later() -> None:
    table, rec = setup()
    swept(rec)
    cl = acked(table, 1.0)
    table.on_amend_requested(cl, 5.0, None, 10.0)
    row = OrderReport(cl, "v-" + cl, OrderStatus.NEW, qty=5.0)
    rec.on_order_reports([row], 14.9, WALL)
    assert table.orders[cl].state is S.PENDING_AMEND
    rec.on_order_reports([row], 15.0, WALL)
    assert table.orders[cl].state is S.NEW
    assert last_event(table, cl) == AmendRejected(
        "amend outcome unknown: the venue's row is authoritative")


# ------------------------------------------------------------------------------ fills
def fill_report(exec_id: str, client_id: str | None, symbol: str | None) -> FillReport:
    return FillReport(exec_id, client_id, None, 1.0, 100.0, symbol=symbol, side="Buy")


def test_fills_of_unknown_orders_without_symbol_are_skipped_not_the_rest() -> None:
    table, rec = setup()
    swept(rec)
    cl = acked(table, 1.0)
    rec.on_fill_reports([fill_report("e1", "ghost", None), fill_report("e2", cl, None)],
                        2.0, WALL)
    assert "ghost" not in table.orders and rec.adopted == 0
    assert table.orders[cl].cum_qty == 1.0


def test_a_fill_of_an_unknown_order_with_a_symbol_adopts_it() -> None:
    table, rec = setup()
    rec.on_fill_reports([fill_report("e1", "theirs", "XBTUSD")], 3.0, WALL + 1)
    adopted = table.orders["theirs"]
    assert (adopted.created_at, adopted.created_wall_ms, adopted.cum_qty) == (3.0, WALL + 1, 1.0)
    assert rec.adopted == 1


# ------------------------------------------------------------------------------ position
def test_a_position_mismatch_halts_exactly_at_the_grace_end_with_its_message() -> None:
    _, rec = setup()
    rec.poll(0.0, WALL)
    rec.on_position("XBTUSD", 3.0, 5.0)
    assert reports(rec.poll(5.0, WALL)) == []
    rec.on_position("XBTUSD", 3.0, 14.9)
    assert reports(rec.poll(14.9, WALL)) == []
    rec.on_position("XBTUSD", 3.0, 15.0)
    assert rec.poll(15.0, WALL)[:3] == [
        Mismatch("position", None, "XBTUSD local 0 venue 3.0"),
        Alert("critical", "position mismatch after reconciliation: XBTUSD local 0 venue 3.0"),
        Halt("position mismatch: XBTUSD local 0 venue 3.0")]
    assert rec.position_mismatches == frozenset({"XBTUSD"})
    rec.on_position("XBTUSD", 0.0, 16.0)
    assert reports(rec.poll(16.0, WALL)) == [Resolved("position", None, "XBTUSD 0")]
    assert rec.position_mismatches == frozenset()


def test_a_mismatch_gone_before_the_grace_ends_is_resolved_silently() -> None:
    _, rec = setup()
    rec.poll(0.0, WALL)
    rec.on_position("XBTUSD", 3.0, 1.0)
    rec.on_position("XBTUSD", 0.0, 2.0)
    assert reports(rec.poll(2.0, WALL)) == []


def filled_now(table: OrderTable, side: str, qty: float, now: float, n: int) -> None:
    """A market order of ``qty`` on ``side`` filled at once (execution ``e<n>``)."""
    order = table.new_order("XBTUSD", side, qty, None, now=now, wall_ms=WALL)
    table.on_submitted(order.cl_ord_id, now)
    table.on_acked(order.cl_ord_id, f"v{n}", now)
    table.on_fill_report(FillReport(f"e{n}", order.cl_ord_id, f"v{n}", qty, 100.0,
                                    symbol="XBTUSD", side=side, leaves_qty=0.0), now)


def test_fills_applied_while_a_position_was_on_its_way_are_no_mismatch() -> None:
    cfg = ReconcileConfig(query_interval_s=5.0, position_grace_s=0.0, sweep_interval_s=1000.0)
    table, rec = setup(cfg)
    assert FetchPosition("XBTUSD") in rec.poll(0.0, WALL)      # asked at 0
    filled_now(table, "Buy", 100, 0.1, 1)                      # local 100, then 200
    filled_now(table, "Buy", 100, 0.2, 2)
    rec.on_position("XBTUSD", 100.0, 0.3)     # the venue answered between the two fills
    assert reports(rec.poll(0.3, WALL)) == []
    assert rec.position_mismatches == frozenset()


def test_a_real_mismatch_names_the_local_value_nearest_the_venue_while_fills_flow() -> None:
    cfg = ReconcileConfig(query_interval_s=5.0, position_grace_s=0.0, sweep_interval_s=1000.0)
    table, rec = setup(cfg)
    table.set_position_baseline("XBTUSD", 300)                 # only the journal knows it
    assert FetchPosition("XBTUSD") in rec.poll(0.0, WALL)
    filled_now(table, "Sell", 100, 0.1, 1)                     # local 200, then 100
    filled_now(table, "Sell", 100, 0.2, 2)
    rec.on_position("XBTUSD", 230.0, 0.3)
    assert [d for d in rec.poll(0.3, WALL) if isinstance(d, Halt)] == [
        Halt("position mismatch: XBTUSD local 200 venue 230.0")]


def test_a_position_update_nobody_asked_for_compares_with_the_local_position_only() -> None:
    cfg = ReconcileConfig(query_interval_s=5.0, position_grace_s=0.0, sweep_interval_s=1000.0)
    table, rec = setup(cfg)
    rec.poll(0.0, WALL)
    rec.on_position("XBTUSD", 0.0, 0.05)                      # the answer: agreed
    filled_now(table, "Buy", 100, 0.1, 1)
    rec.on_position("XBTUSD", 0.0, 0.2)                        # a stream update, stale
    assert [d for d in rec.poll(0.2, WALL) if isinstance(d, Halt)] == [
        Halt("position mismatch: XBTUSD local 100 venue 0.0")]


# ------------------------------------------------------------------------------ restart
def test_a_restart_makes_a_pending_new_unknown_with_its_reason() -> None:
    table, rec = setup()
    cl = placed(table, 1.0)
    rec.start(2.0)
    assert table.orders[cl].state is S.UNKNOWN
    assert last_event(table, cl) == Ambiguous("restart: send outcome unknown")


def test_start_looks_every_unfinished_order_up_at_once() -> None:
    table, rec = setup()
    swept(rec)
    cl = unknown(table, 1.0)
    assert rec.poll(1.5, WALL) == [QueryOrders((cl,))]
    rec.start(2.0)
    assert rec.poll(2.0, WALL) == [QueryOrders((cl,))]


# ------------------------------------------------------------------------------ cancels
def test_every_answer_of_a_bulk_cancel_is_applied() -> None:
    table, rec = setup()
    swept(rec)
    first, second = acked(table, 1.0), acked(table, 1.0)
    rec.on_cancel_reports([OrderReport(first, None, OrderStatus.CANCELED),
                           OrderReport(second, None, OrderStatus.CANCELED)], 2.0, WALL)
    assert (table.orders[first].state, table.orders[second].state) == (S.CANCELED, S.CANCELED)


def test_a_refusal_about_an_unknown_order_does_not_hide_the_next() -> None:
    table, rec = setup()
    swept(rec)
    cl = acked(table, 1.0)
    table.on_cancel_requested(cl, 2.0)
    rec.on_cancel_reports([RefusalReport("ghost", None, "Not Found", not_found=True),
                           RefusalReport(None, "v-" + cl, "Not Found", not_found=True)],
                          8.0, WALL, asked_at=7.5)
    order = table.orders[cl]
    assert (order.state, order.state_since) == (S.CANCELED, 8.0)
    assert last_event(table, cl) == NotFoundAtVenue(7.5, True, False, "cancel refused: Not Found")


def test_a_refused_cancel_of_a_restored_order_counts_its_age_in_wall_time() -> None:
    table, rec = setup()
    cl = acked(table, 99.0)
    created = table.orders[cl].created_wall_ms
    rec.start(100.0)
    table.on_cancel_requested(cl, 100.0)
    refusal = RefusalReport(cl, None, "Not Found", not_found=True)
    rec.on_cancel_reports([refusal], 101.0, created + 5_000)
    assert table.orders[cl].state is S.CANCELED


def test_a_refused_cancel_naming_a_fill_resolves_an_unknown() -> None:
    table, rec = setup()
    swept(rec)
    cl = unknown(table, 1.0)
    rec.on_cancel_reports([RefusalReport(cl, None, "already filled", OrderStatus.FILLED)],
                          2.0, WALL)
    assert table.orders[cl].state is S.FILLED
    assert reports(rec.poll(2.0, WALL)) == [Resolved("unknown", cl, "venue shows FILLED")]


# ------------------------------------------------------------------------------ executions
def test_missing_executions_are_fetched_until_they_add_up() -> None:
    table, rec = setup()
    swept(rec)
    cl = acked(table, 1.0)
    rec.on_order_reports([OrderReport(cl, None, OrderStatus.FILLED, filled_qty=10.0)], 2.0, WALL)
    assert rec.poll(2.0, WALL) == [FetchExecutions(None, WALL - 5_000)]
    fill = FillReport("e1", cl, None, 4.0, 100.0, leaves_qty=6.0)
    rec.on_fill_reports([fill], 3.0, WALL)
    assert rec.next_deadline() == 7.0                  # still 6 missing: ask again
    rest = FillReport("e2", cl, None, 6.0, 100.0, leaves_qty=0.0)
    rec.on_fill_reports([rest], 4.0, WALL)
    assert table.orders[cl].cum_qty == 10.0
    assert rec.next_deadline() == 1000.0               # nothing missing any more


# ------------------------------------------------------------------------------ sweeps
def test_a_venue_fill_not_seen_locally_asks_for_executions() -> None:
    table, rec = setup()
    swept(rec)
    cl = acked(table, 1.0)
    rec.on_order_reports([OrderReport(cl, None, OrderStatus.PARTIALLY_FILLED, filled_qty=4.0)],
                         2.0, WALL)
    assert table.orders[cl].state is S.PARTIALLY_FILLED
    assert rec.poll(2.0, WALL) == [FetchExecutions(None, WALL - 5_000)]


def test_each_sweep_fetches_the_positions_again() -> None:
    cfg = ReconcileConfig(sweep_interval_s=30.0, safe_sweep_interval_s=60.0)
    _, rec = setup(cfg)
    sweep = [FetchOpenOrders(None), FetchExecutions(None, WALL - 5_000), FetchPosition("XBTUSD")]
    assert rec.poll(0.0, WALL) == sweep
    assert rec.poll(29.9, WALL) == []
    assert rec.poll(30.0, WALL) == sweep


def test_safe_mode_sweeps_less_often() -> None:
    cfg = ReconcileConfig(sweep_interval_s=30.0, safe_sweep_interval_s=60.0)
    _, rec = setup(cfg, symbols=())
    rec.set_safe_mode(True)
    assert rec.poll(0.0, WALL) == [FetchOpenOrders(None), FetchExecutions(None, WALL - 5_000)]
    assert rec.next_deadline() == 60.0
    assert rec.poll(30.0, WALL) == []
    assert FetchOpenOrders(None) in rec.poll(60.0, WALL)
    rec.set_safe_mode(False)
    assert rec.next_deadline() == 90.0


def test_the_history_of_an_unknown_is_fetched_once_per_interval_after_the_window() -> None:
    table, rec = setup()
    swept(rec)
    cl = unknown(table, 10.0)
    created = table.orders[cl].created_wall_ms

    def histories(now: float) -> list[Decision]:
        return [d for d in rec.poll(now, WALL) if isinstance(d, FetchOrderHistory)]

    assert histories(69.9) == []
    assert histories(70.0) == [FetchOrderHistory(None, created - 5_000)]
    assert histories(71.0) == []
    assert histories(74.9) == []
    assert histories(75.0) == [FetchOrderHistory(None, created - 5_000)]


# ------------------------------------------------------------------------------ notes
def test_phantom_orders_are_counted_and_reported_one_by_one() -> None:
    table, rec = setup()
    swept(rec)
    first, second = acked(table, 1.0), acked(table, 1.0)
    rec.on_order_lookup([first, second], [], 7.0, WALL, asked_at=6.0)
    assert rec.phantoms == 2
    assert reports(rec.poll(7.0, WALL)) == [
        Mismatch("phantom_local", first, "NEW absent"),
        Resolved("phantom_local", first, "now CANCELED"),
        Mismatch("phantom_local", second, "NEW absent"),
        Resolved("phantom_local", second, "now CANCELED")]


def test_a_websocket_update_answers_for_a_restored_order() -> None:
    table, rec = setup()
    cl = acked(table, 99.0)
    rec.start(100.0)
    assert not rec.ready
    rec.on_order_reports([OrderReport(cl, None, OrderStatus.CANCELED)], 100.5, WALL)
    assert rec.ready
    assert rec.startup_counts().resolved == 1


def test_a_suspect_that_fills_meanwhile_is_no_longer_suspect() -> None:
    table, rec = setup()
    swept(rec)
    cl = acked(table, 1.0)
    rec.on_open_orders([], 10.0, WALL, asked_at=10.0)
    rec.on_fill_reports([FillReport("e1", cl, None, 4.0, 100.0, leaves_qty=6.0)], 10.0, WALL)
    assert table.orders[cl].state is S.PARTIALLY_FILLED
    assert rec.poll(10.0, WALL) == []


def test_the_history_check_keeps_its_own_pace_beside_the_lookups() -> None:
    table, rec = setup()
    swept(rec)
    unknown(table, 0.0)
    seen: list[tuple[float, list[str]]] = []
    while (now := rec.next_deadline()) is not None and now <= 70.0:
        seen.append((now, [type(d).__name__ for d in rec.poll(now, WALL)]))
    assert seen[-5:] == [
        (60.0, ["Alert", "Mismatch", "FetchOrderHistory"]),   # the window ends: not a lookup
        (60.5, ["QueryOrders"]),
        (65.0, ["FetchOrderHistory"]),
        (65.5, ["QueryOrders"]),
        (70.0, ["FetchOrderHistory"])]
    assert [t for t, _ in seen[:12]] == [0.5 + 5 * i for i in range(12)]


# ------------------------------------------------------------------------------ clocks
def test_every_venue_fact_is_applied_at_the_time_given() -> None:
    table, rec = setup()
    swept(rec)
    a, b, c, d, e = (acked(table, 1.0) for _ in range(5))
    rec.on_order_reports([OrderReport("theirs", "v9", OrderStatus.NEW, "XBTUSD", "Buy", 1.0)],
                         2.0, WALL + 2)
    assert table.orders["theirs"].created_wall_ms == WALL + 2
    rec.on_fill_reports([FillReport("e1", None, "v-" + a, 1.0, 100.0)], 3.0, WALL)
    assert (table.orders[a].state, table.orders[a].state_since) == (S.PARTIALLY_FILLED, 3.0)
    rec.on_cancel_reports([OrderReport(b, None, OrderStatus.CANCELED)], 4.0, WALL)
    assert (table.orders[b].state, table.orders[b].state_since) == (S.CANCELED, 4.0)
    table.on_cancel_requested(c, 4.5)
    rec.on_cancel_reports([RefusalReport(c, None, "busy")], 5.0, WALL)
    assert (table.orders[c].state, table.orders[c].state_since) == (S.NEW, 5.0)
    rec.on_order_lookup([d], [OrderReport(d, None, OrderStatus.CANCELED)], 6.0, WALL)
    assert (table.orders[d].state, table.orders[d].state_since) == (S.CANCELED, 6.0)
    rec.on_order_lookup([e], [], 7.0, WALL, asked_at=6.5)
    assert (table.orders[e].state, table.orders[e].state_since) == (S.CANCELED, 7.0)
