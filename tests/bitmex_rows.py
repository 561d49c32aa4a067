"""Feed BitMEX rows to the neutral order table and reconciler through the BitMEX adapter's
readers (venueguard.venues.bitmex.reports), so the table's tests keep speaking real rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from venueguard.core.orders import OrderTable, Transition
from venueguard.core.reconcile import Reconciler
from venueguard.core.reports import FillReport, OrderReport
from venueguard.venues.bitmex import reports as rr

Row = Mapping[str, Any]


def on_order_row(table: OrderTable, row: Row, now: float) -> Transition | None:
    return table.on_order_report(rr.order_report(row), now)


def on_execution_row(table: OrderTable, row: Row, now: float) -> Transition | None:
    report = rr.execution_report(row)
    if report is None:
        return None
    if isinstance(report, FillReport):
        return table.on_fill_report(report, now)
    return table.on_order_report(report, now)


def on_cancel_row(table: OrderTable, row: Row, now: float) -> Transition | None:
    report = rr.cancel_report(row)
    if isinstance(report, OrderReport):
        return table.on_order_report(report, now)
    return table.on_refusal_report(report, now)


def adopt(table: OrderTable, row: Row, now: float, wall_ms: int) -> Any:
    return table.adopt(rr.order_report(row), now, wall_ms)


def orders(rows: Sequence[Row]) -> list[OrderReport]:
    return [rr.order_report(row) for row in rows]


def fills(rows: Sequence[Row]) -> list[FillReport]:
    out = []
    for row in rows:
        report = rr.execution_report(row)
        assert isinstance(report, FillReport), row
        out.append(report)
    return out


def cancels(rows: Sequence[Row]) -> list[Any]:
    return [rr.cancel_report(row) for row in rows]


def ws_orders(rec: Reconciler, rows: Sequence[Row], now: float, wall_ms: int) -> None:
    rec.on_order_reports(orders(rows), now, wall_ms)


def executions(rec: Reconciler, rows: Sequence[Row], now: float, wall_ms: int) -> None:
    """Execution rows in order: fills, and the status of other executions."""
    for row in rows:
        report = rr.execution_report(row)
        if isinstance(report, FillReport):
            rec.on_fill_reports([report], now, wall_ms)
        elif report is not None:
            rec.on_order_reports([report], now, wall_ms)
