"""Order table paths the other tests left loose: new-order validation and its message, the
fields of an adopted order, and the arguments each request outcome carries into history."""

from __future__ import annotations

import random
import re

import pytest

from venueguard.core.order_events import (
    Ambiguous,
    Amended,
    AmendRejected,
    AmendRequested,
    OrderRejected,
    VenueSnapshot,
    Withdrawn,
)
from venueguard.core.orders import ClOrdIdGenerator, OrderState, OrderTable
from venueguard.core.reports import FillReport, OrderReport, OrderStatus

S = OrderState
MESSAGE = f"^{re.escape('side must be Buy or Sell and qty positive')}$"


def table() -> OrderTable:
    return OrderTable(ClOrdIdGenerator(random.Random(9)))


@pytest.mark.parametrize(("side", "qty"), [("Buy", 0), ("Sell", -1), ("buy", 5), ("Hold", 5)])
def test_a_new_order_needs_a_side_and_a_positive_qty(side: str, qty: float) -> None:
    with pytest.raises(ValueError, match=MESSAGE):
        table().new_order("XBTUSD", side, qty, 100.0, now=1.0, wall_ms=5)


def test_a_new_order_keeps_what_it_was_given() -> None:
    order = table().new_order("XBTUSD", "Sell", 0.5, 101.5, now=2.0, wall_ms=7)
    assert (order.symbol, order.side, order.qty, order.price, order.created_at,
            order.created_wall_ms, order.state, order.state_since) == (
        "XBTUSD", "Sell", 0.5, 101.5, 2.0, 7, S.PENDING_NEW, 2.0)


def test_an_adopted_order_takes_the_report_fields() -> None:
    t = table()
    report = OrderReport(None, "v1", OrderStatus.NEW, "XBTUSD", "sell", 3.0, 99.5)
    order = t.adopt(report, 4.0, 8)
    assert (order.cl_ord_id, order.symbol, order.side, order.qty, order.price, order.adopted,
            order.created_at, order.created_wall_ms, order.state, order.state_since,
            order.order_id) == ("venue:v1", "XBTUSD", "Sell", 3.0, 99.5, True, 4.0, 8, S.NEW, 4.0,
                                "v1")
    bare = t.adopt(OrderReport("c2", None, None), 5.0, 9)
    assert (bare.symbol, bare.side, bare.qty, bare.price, bare.state) == (
        "", "Buy", 0, None, S.UNKNOWN)


def test_an_order_adopted_from_a_fill_is_found_by_its_venue_id() -> None:
    t = table()
    fill = FillReport("e1", None, "v3", 1.0, 100.0, symbol="XBTUSD", order_qty=2.0)
    order = t.adopt(fill, 6.0, 10)
    assert (order.cl_ord_id, order.qty, order.price, order.order_id) == ("venue:v3", 2.0, None,
                                                                         "v3")
    assert t.find(None, "v3") is order
    assert t.on_order_report(OrderReport(None, "v3", OrderStatus.NEW), 7.0) is not None
    assert order.state is S.NEW


def test_request_outcomes_carry_their_arguments_into_history() -> None:
    t = table()
    order = t.new_order("XBTUSD", "Buy", 10, 100.0, now=0.0, wall_ms=0)
    cl = order.cl_ord_id
    t.on_submitted(cl, 0.1)
    t.on_acked(cl, "v-1", 0.2)
    t.on_amend_requested(cl, 5.0, 101.0, 0.3)
    assert order.history[-1].event == AmendRequested(5.0, 101.0)
    t.on_amend_rejected(cl, "too late", 0.4)
    assert order.history[-1].event == AmendRejected("too late")
    t.on_amend_requested(cl, None, 102.0, 0.5)
    t.on_amended(cl, 6.0, 102.0, 0.6)
    assert order.history[-1].event == Amended(6.0, 102.0)
    t.on_order_report(OrderReport(None, "v-1", OrderStatus.CANCELED), 0.7)
    assert order.history[-1].event == VenueSnapshot(OrderStatus.CANCELED, "v-1")
    other = t.new_order("XBTUSD", "Buy", 1, None, now=1.0, wall_ms=0)
    t.on_withdrawn(other.cl_ord_id, "safe mode", 1.5)
    assert (other.history[-1].event, other.history[-1].now) == (Withdrawn("safe mode"), 1.5)
    third = t.new_order("XBTUSD", "Buy", 1, None, now=2.0, wall_ms=0)
    t.on_submitted(third.cl_ord_id, 2.0)
    t.on_ambiguous(third.cl_ord_id, "timeout", 2.5)
    assert third.history[-1].event == Ambiguous("timeout")
    fourth = t.new_order("XBTUSD", "Buy", 1, None, now=3.0, wall_ms=0)
    t.on_submitted(fourth.cl_ord_id, 3.0)
    t.on_rejected(fourth.cl_ord_id, "bad price", not_processed=False, now=3.5)
    assert fourth.history[-1].event == OrderRejected("bad price", False)
