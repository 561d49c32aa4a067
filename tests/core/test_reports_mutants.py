"""Neutral reports pinned down: status values and which are open, side spellings, and the
None a report carries for every field the venue did not send."""

from __future__ import annotations

import pytest

from venueguard.core import reports
from venueguard.core.reports import (
    SIDES,
    FillReport,
    OrderReport,
    OrderStatus,
    PositionReport,
    RefusalReport,
    TradeReport,
    normalize_side,
)


def test_statuses_have_their_wire_values_and_only_new_and_partial_are_open() -> None:
    assert {s.name: s.value for s in OrderStatus} == {
        "NEW": "new", "PARTIALLY_FILLED": "partially_filled", "FILLED": "filled",
        "CANCELED": "canceled", "REJECTED": "rejected"}
    assert {s for s in OrderStatus if s.is_open} == {OrderStatus.NEW,
                                                      OrderStatus.PARTIALLY_FILLED}
    assert OrderStatus("filled") is OrderStatus.FILLED


def test_sides_as_the_core_spells_them() -> None:
    assert SIDES == ("Buy", "Sell")


@pytest.mark.parametrize(
    ("text", "side"),
    [("Buy", "Buy"), ("buy", "Buy"), (" BUY\n", "Buy"), ("Sell", "Sell"), ("sell", "Sell"),
     ("  SeLL ", "Sell"), ("", None), ("b", None), ("long", None), ("buysell", None),
     (None, None), (1, None), (b"buy", None)],
)
def test_normalize_side_accepts_any_spelling_of_the_two_sides(text: object,
                                                               side: str | None) -> None:
    assert normalize_side(text) == side


def test_the_public_names() -> None:
    assert sorted(reports.__all__) == sorted([
        "SIDES", "FillReport", "OrderReport", "OrderStatus", "PositionReport", "RefusalReport",
        "Report", "TradeReport", "normalize_side"])
    assert all(hasattr(reports, name) for name in reports.__all__)


def test_fields_a_venue_did_not_send_are_none() -> None:
    order = OrderReport("c1", "v1")
    assert (order.status, order.symbol, order.side, order.qty, order.price, order.filled_qty,
            order.leaves_qty, order.avg_price, order.ts_venue_ms, order.reason) == (None,) * 10
    fill = FillReport("e1", "c1", None, 1.0, 100.0)
    assert (fill.symbol, fill.side, fill.leaves_qty, fill.fee, fill.fee_currency,
            fill.liquidity, fill.ts_venue_ms, fill.order_qty) == (None,) * 8
    refusal = RefusalReport("c1", None, "no")
    assert (refusal.status, refusal.not_found) == (None, False)
    position = PositionReport("XBTUSD", -3.0)
    assert (position.entry_price, position.ts_venue_ms) == (None, None)
    trade = TradeReport("XBTUSD", 100.0, 2.0, "Buy")
    assert (trade.timestamp, trade.trade_id) == (None, None)
