"""Order table paths no other test reached: refused cancels found by client or venue id, and
the position baseline under the executions."""

from __future__ import annotations

import random

from venueguard.core.order_events import CancelRejected
from venueguard.core.orders import ClOrdIdGenerator, OrderState, OrderTable, Transition
from venueguard.core.reports import OrderStatus, RefusalReport


def cancel_pending() -> tuple[OrderTable, str]:
    table = OrderTable(ClOrdIdGenerator(random.Random(3)))
    order = table.new_order("XBTUSD", "Buy", 10, 100.0, now=0.0, wall_ms=0)
    table.on_submitted(order.cl_ord_id, 0.1)
    table.on_acked(order.cl_ord_id, "venue-1", 0.2)
    table.on_cancel_requested(order.cl_ord_id, 0.3)
    assert table.orders[order.cl_ord_id].state is OrderState.PENDING_CANCEL
    return table, order.cl_ord_id


def test_a_refused_cancel_found_by_venue_id_puts_the_order_back() -> None:
    table, cl = cancel_pending()
    report = RefusalReport(client_id=None, venue_id="venue-1", reason="try again")
    assert table.on_refusal_report(report, 0.4) == Transition(
        cl, OrderState.PENDING_CANCEL, OrderState.NEW, "cancel_rejected",
        CancelRejected("try again", None), 0.4)


def test_a_refused_cancel_naming_filled_fills_the_order() -> None:
    table, cl = cancel_pending()
    report = RefusalReport(client_id=cl, venue_id=None, reason="already filled",
                           status=OrderStatus.FILLED)
    moved = table.on_refusal_report(report, 0.5)
    assert moved is not None and moved.cl_ord_id == cl and moved.now == 0.5
    assert moved.event == CancelRejected("already filled", OrderStatus.FILLED)
    assert table.orders[cl].state is OrderState.FILLED


def test_a_refusal_about_an_unknown_order_changes_nothing() -> None:
    table, cl = cancel_pending()
    table.take_transitions()
    assert table.on_refusal_report(RefusalReport("nope", "venue-9", "unknown"), 0.6) is None
    assert table.take_transitions() == []
    assert table.orders[cl].state is OrderState.PENDING_CANCEL


def test_the_position_is_the_baseline_plus_executions() -> None:
    table = OrderTable(ClOrdIdGenerator(random.Random(4)))
    assert table.position("XBTUSD") == 0
    table.set_position_baseline("XBTUSD", 25.0)
    table.set_position_baseline("ETHUSD", -3.0)
    assert table.position("XBTUSD") == 25.0 and table.position("ETHUSD") == -3.0
