"""Reconciler timing and reports pinned down: exact deadlines (first lookup of an UNKNOWN,
pending cancels, suspects, budget, position grace, execution fetches), the exact decisions of
adoption and of an UNKNOWN alert, and a complete order history settling UNKNOWN orders."""

from __future__ import annotations

import random

from venueguard.core.order_events import NotFoundAtVenue, VenueSnapshot
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
    Resolved,
)
from venueguard.core.reports import OrderReport, OrderStatus

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
    first = unknown(table, 10.0)
    second = unknown(table, 10.0)
    row = OrderReport(first, "v-first", OrderStatus.NEW, "XBTUSD", "Buy", 10.0, 100.0)
    rec.on_order_history([row], 80.0, WALL + 5, start_wall_ms=WALL, complete=True)
    assert table.orders[first].state is S.NEW
    assert table.orders[first].state_since == 80.0
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
