"""BitMEX rows as venue-neutral reports (:mod:`venueguard.core.reports`).

The only place that reads BitMEX's order, execution and position fields (``ordStatus``,
``clOrdID``, ``orderID``, ``leavesQty``, ``execID``, ``lastPx``, ``currentQty``, ...) and the
error texts of its cancel and amend refusals. Pure functions; nothing here raises on a bad
row except :func:`fill_report`, whose caller reports the row instead of applying it.

* :func:`order_report` — an Order row (REST answer, ``GET /order``, websocket ``order``);
* :func:`execution_report` — an Execution row: a ``Trade`` is a fill, other kinds carry the
  order's status (``New``, ``Canceled``, ...) and become order reports;
* :func:`cancel_report` — one row of a ``DELETE /order`` (``/order/all``) answer, ``error``
  rows included (``not found`` and ``due to existing state: Filled`` are read here);
* :func:`position_reports` — ``GET /position`` rows or websocket ``position`` rows;
* :func:`refusal_status` — the closed state an amend refusal names
  (``Invalid ordStatus: Filled`` -> FILLED);
* :func:`trade_reports` — public ``trade`` rows (``trdMatchID`` is the trade id);
* :func:`apply_order_row`, :func:`apply_execution_row`, :func:`apply_cancel_row` — a row read
  and applied to an :class:`~venueguard.core.orders.OrderTable` in one call (for code that
  holds BitMEX rows, such as the simulated venue of the gym).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from venueguard.core.orders import OrderError, OrderTable, Transition
from venueguard.core.reports import (
    FillReport,
    OrderReport,
    OrderStatus,
    PositionReport,
    RefusalReport,
    TradeReport,
    normalize_side,
)
from venueguard.venues.bitmex.errors import INVALID_ORD_STATUS
from venueguard.venues.bitmex.timefmt import parse_ms_or_none

__all__ = ["ORDER_STATUS", "apply_cancel_row", "apply_execution_row", "apply_order_row",
           "cancel_report", "execution_report", "fill_report", "order_report",
           "order_status", "position_reports", "refusal_status", "trade_reports",
           "unusable_trade"]

Row = Mapping[str, object]

#: BitMEX ``ordStatus`` -> the neutral status (``Expired`` is a venue-side cancel).
ORDER_STATUS: Final[dict[str, OrderStatus]] = {
    "New": OrderStatus.NEW, "PartiallyFilled": OrderStatus.PARTIALLY_FILLED,
    "Filled": OrderStatus.FILLED, "Canceled": OrderStatus.CANCELED,
    "Expired": OrderStatus.CANCELED, "Rejected": OrderStatus.REJECTED,
}
_CANCEL_STATE_PREFIX: Final = "due to existing state:"
_NOT_FOUND: Final = "not found"


def _num(row: Row, key: str) -> float | None:
    value = row.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _str(row: Row, key: str) -> str | None:
    value = row.get(key)
    return value if isinstance(value, str) and value else None


def order_status(text: object) -> OrderStatus | None:
    """The neutral status of an ``ordStatus`` text (None when absent or unknown)."""
    return ORDER_STATUS.get(text) if isinstance(text, str) else None


def _ts(row: Row) -> int | None:
    text = _str(row, "timestamp") or _str(row, "transactTime")
    return parse_ms_or_none(text) if text is not None else None


def order_report(row: Row) -> OrderReport:
    """An Order row (full or sparse) as a report."""
    return OrderReport(
        client_id=_str(row, "clOrdID"), venue_id=_str(row, "orderID"),
        status=order_status(row.get("ordStatus")), symbol=_str(row, "symbol"),
        side=normalize_side(row.get("side")), qty=_num(row, "orderQty"),
        price=_num(row, "price"), filled_qty=_num(row, "cumQty"),
        leaves_qty=_num(row, "leavesQty"), avg_price=_num(row, "avgPx"), ts_venue_ms=_ts(row),
        reason=_str(row, "text") if row.get("ordStatus") in ("Rejected", "Canceled") else None)


def unusable_trade(row: Row) -> bool:
    """A ``Trade`` execution without an execID, a positive lastQty or a lastPx."""
    if row.get("execType") != "Trade":
        return False
    qty, px = _num(row, "lastQty"), _num(row, "lastPx")
    return _str(row, "execID") is None or qty is None or qty <= 0 or px is None


def fill_report(row: Row) -> FillReport:
    """A ``Trade`` execution row as a fill; ValueError when it lacks its id, qty or price."""
    exec_id, qty, px = _str(row, "execID"), _num(row, "lastQty"), _num(row, "lastPx")
    if exec_id is None or qty is None or qty <= 0 or px is None:
        raise ValueError("execution row lacks execID, lastQty or lastPx")
    liquidity = {"AddedLiquidity": "maker", "RemovedLiquidity": "taker"}.get(
        str(row.get("lastLiquidityInd")))
    return FillReport(
        exec_id=exec_id, client_id=_str(row, "clOrdID"), venue_id=_str(row, "orderID"),
        qty=qty, price=px, symbol=_str(row, "symbol"), side=normalize_side(row.get("side")),
        leaves_qty=_num(row, "leavesQty"), fee=_num(row, "execComm"),
        fee_currency=_str(row, "settlCurrency"), liquidity=liquidity, ts_venue_ms=_ts(row),
        order_qty=_num(row, "orderQty"))


def execution_report(row: Row) -> FillReport | OrderReport | None:
    """An Execution row: a fill (``Trade``), an order report (other kinds with a status), or
    None (nothing to apply). Raises ValueError for an unusable ``Trade`` row."""
    if row.get("execType") == "Trade":
        return fill_report(row)
    if order_status(row.get("ordStatus")) is None:
        return None
    return order_report(row)


def cancel_report(row: Row) -> OrderReport | RefusalReport:
    """One row of a cancel answer: the order as it is now, or the refusal it carries."""
    error = _str(row, "error")
    if error is None:
        return order_report(row)       # carries cumQty: a fill before the cancel shows
    status = order_status(row.get("ordStatus"))
    if _CANCEL_STATE_PREFIX in error:
        words = error.split(_CANCEL_STATE_PREFIX, 1)[1].split()
        status = order_status(words[0]) if words else status
    return RefusalReport(client_id=_str(row, "clOrdID"), venue_id=_str(row, "orderID"),
                         reason=error[:200], status=status,
                         not_found=_NOT_FOUND in error.lower() and status is None)


def position_reports(rows: Sequence[object]) -> list[PositionReport]:
    """Rows of ``GET /position`` or the websocket ``position`` table (rows without a symbol
    or an integer ``currentQty``, e.g. sparse updates of other fields, are skipped)."""
    out: list[PositionReport] = []
    for row in rows:
        if not isinstance(row, Mapping):
            continue
        symbol, qty = _str(row, "symbol"), row.get("currentQty")
        if symbol is None or isinstance(qty, bool) or not isinstance(qty, int):
            continue
        out.append(PositionReport(symbol, qty, _num(row, "avgEntryPrice"), _ts(row)))
    return out


def refusal_status(message: str) -> OrderStatus | None:
    """The closed state named by an amend refusal (``Invalid ordStatus: Filled``), else None
    (other refusals, such as ``Invalid price``, say nothing about the order's state)."""
    head, sep, rest = message.partition(INVALID_ORD_STATUS)
    if not sep or head.strip():
        return None
    words = rest.lstrip(": ").split()
    status = order_status(words[0].rstrip(".,;")) if words else None
    return status if status is not None and not status.is_open else None


def trade_reports(rows: Sequence[object]) -> tuple[list[TradeReport], int]:
    """Public ``trade`` rows as reports, and how many were malformed (no numeric price or
    size, or a side other than ``Buy``/``Sell``)."""
    out: list[TradeReport] = []
    bad = 0
    for row in rows:
        if not isinstance(row, Mapping):
            bad += 1
            continue
        price, size, side = _num(row, "price"), _num(row, "size"), row.get("side")
        if price is None or size is None or side not in ("Buy", "Sell"):
            bad += 1
            continue
        out.append(TradeReport(_str(row, "symbol"), price, size, str(side),
                               _str(row, "timestamp"), _str(row, "trdMatchID")))
    return out, bad


# ------------------------------------------------------------------ rows into an order table
def apply_order_row(table: OrderTable, row: Row, now: float) -> Transition | None:
    """An Order row applied to the order it is about (None when the table has no such order)."""
    return table.on_order_report(order_report(row), now)


def apply_execution_row(table: OrderTable, row: Row, now: float) -> Transition | None:
    """An Execution row applied to its order: a ``Trade`` is a fill (once per execID), other
    kinds with a status are order reports. None for an order the table does not have; raises
    ``OrderError`` for a trade of a known order without execID, lastQty or lastPx."""
    if table.find(_str(row, "clOrdID"), _str(row, "orderID")) is None:
        return None
    try:
        report = execution_report(row)
    except ValueError as exc:
        raise OrderError(str(exc)) from exc
    if report is None:
        return None
    if isinstance(report, FillReport):
        return table.on_fill_report(report, now)
    return table.on_order_report(report, now)


def apply_cancel_row(table: OrderTable, row: Row, now: float) -> Transition | None:
    """One row of a cancel answer (``error`` rows included) applied to its order."""
    report = cancel_report(row)
    if isinstance(report, OrderReport):
        return table.on_order_report(report, now)
    return table.on_refusal_report(report, now)
