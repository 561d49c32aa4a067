"""ccxt's unified structures as venue-neutral reports (:mod:`venueguard.core.reports`).

Public API::

    order_report(order: Mapping) -> OrderReport        # a ccxt order dict
    fill_report(trade: Mapping) -> FillReport | None   # a ccxt trade of ours (None: unreadable)
    client_id_of(order: Mapping) -> str | None         # clientOrderId, else the venue's field

ccxt statuses: ``open`` (NEW, or PARTIALLY_FILLED once ``filled`` > 0), ``closed`` (FILLED),
``canceled`` and ``expired`` (CANCELED), ``rejected`` (REJECTED); anything else names no state
(a sparse update). Fields ccxt leaves None stay None.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from venueguard.core.reports import FillReport, OrderReport, OrderStatus, normalize_side

__all__ = ["client_id_of", "fill_report", "order_report"]

_STATUS = {"closed": OrderStatus.FILLED, "canceled": OrderStatus.CANCELED,
           "cancelled": OrderStatus.CANCELED, "expired": OrderStatus.CANCELED,
           "rejected": OrderStatus.REJECTED}
# where venues put the client id in the raw row, when ccxt's clientOrderId is empty
_INFO_KEYS = ("clOrdID", "clientOrderId", "clOrdId", "orderLinkId", "client_order_id",
              "cl_ord_id", "newClientOrderId")


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None  # NaN is no number


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def client_id_of(order: Mapping[str, Any]) -> str | None:
    """The client order id of a ccxt order (or trade) dict."""
    found = _text(order.get("clientOrderId"))
    if found is not None:
        return found
    info = order.get("info")
    if isinstance(info, Mapping):
        for key in _INFO_KEYS:
            found = _text(info.get(key))
            if found is not None:
                return found
    return None


def order_report(order: Mapping[str, Any]) -> OrderReport:
    """A ccxt order dict as an :class:`OrderReport`."""
    raw_status = order.get("status")
    filled = _num(order.get("filled"))
    status: OrderStatus | None = _STATUS.get(raw_status) if isinstance(raw_status, str) else None
    if raw_status == "open":
        status = OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.NEW
    ts = order.get("lastUpdateTimestamp") or order.get("timestamp")
    return OrderReport(
        client_id=client_id_of(order), venue_id=_text(order.get("id")), status=status,
        symbol=_text(order.get("symbol")), side=normalize_side(order.get("side")),
        qty=_num(order.get("amount")), price=_num(order.get("price")), filled_qty=filled,
        leaves_qty=_num(order.get("remaining")), avg_price=_num(order.get("average")),
        ts_venue_ms=int(ts) if isinstance(ts, int | float) and not isinstance(ts, bool) else None,
        reason=None)


def fill_report(trade: Mapping[str, Any]) -> FillReport | None:
    """A ccxt trade of ours (``fetch_my_trades`` / ``watch_my_trades``) as a fill."""
    exec_id = _text(trade.get("id"))
    qty, price = _num(trade.get("amount")), _num(trade.get("price"))
    if exec_id is None or qty is None or qty <= 0 or price is None:
        return None
    fee = trade.get("fee") if isinstance(trade.get("fee"), Mapping) else {}
    ts = trade.get("timestamp")
    return FillReport(
        exec_id=exec_id, client_id=client_id_of(trade), venue_id=_text(trade.get("order")),
        qty=qty, price=price, symbol=_text(trade.get("symbol")),
        side=normalize_side(trade.get("side")), leaves_qty=None,
        fee=_num(fee.get("cost")) if fee else None,
        fee_currency=_text(fee.get("currency")) if fee else None,
        liquidity=_text(trade.get("takerOrMaker")),
        ts_venue_ms=int(ts) if isinstance(ts, int | float) and not isinstance(ts, bool) else None)
