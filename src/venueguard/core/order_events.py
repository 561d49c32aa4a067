"""Order events: what can happen to an order, as frozen facts, and their table keys.

Two sources, treated differently by :mod:`venueguard.core.orders` (see its docstring): our own
request outcomes (``Submitted``, ``OrderRejected``, ``Ambiguous``, ...) and venue evidence
(``VenueSnapshot``, fills, cancels, absence). :func:`event_kind` gives the key an event is
looked up by in ``TRANSITIONS``; :func:`snapshot_of`, :func:`fill_event` and
:func:`refusal_event` turn the neutral reports of :mod:`venueguard.core.reports` into events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from venueguard.core.reports import FillReport, OrderReport, OrderStatus, RefusalReport


class OrderError(Exception):
    """Base of order-table errors."""


# ---------------------------------------------------------------------------------- events
@dataclass(frozen=True, slots=True)
class Submitted:
    """The order request is about to be sent (first send or a retry after an overload)."""


@dataclass(frozen=True, slots=True)
class Acked:
    order_id: str


@dataclass(frozen=True, slots=True)
class OrderRejected:
    """A definite answer to our order request. ``not_processed``: the venue never saw it."""
    reason: str
    not_processed: bool


@dataclass(frozen=True, slots=True)
class Ambiguous:
    """The request may or may not have reached the engine: timeout, 502, 504, reset after send."""
    reason: str


@dataclass(frozen=True, slots=True)
class ClOrdIDTaken:
    """The venue already holds our client id: proof the order exists; look it up by client id."""


@dataclass(frozen=True, slots=True)
class PartialFill:
    """An execution; ``leaves_qty`` is the venue's remaining quantity when it says so
    (it outranks our arithmetic: our quantity may predate an amend)."""
    exec_id: str
    qty: float
    px: float
    leaves_qty: float | None = None


@dataclass(frozen=True, slots=True)
class Filled:
    """An execution after which the venue reports nothing left to fill."""
    exec_id: str
    qty: float
    px: float


@dataclass(frozen=True, slots=True)
class CancelRequested:
    pass


@dataclass(frozen=True, slots=True)
class Canceled:
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CancelRejected:
    """A refused cancel; ``venue_status`` is the state the venue named, if any."""
    reason: str
    venue_status: OrderStatus | None = None


@dataclass(frozen=True, slots=True)
class AmendRequested:
    qty: float | None = None
    price: float | None = None


@dataclass(frozen=True, slots=True)
class Amended:
    qty: float | None = None
    price: float | None = None


@dataclass(frozen=True, slots=True)
class AmendRejected:
    reason: str


@dataclass(frozen=True, slots=True)
class Withdrawn:
    """The intent is dropped locally while no request is in flight (e.g. 503'd, then safe mode)."""
    reason: str


@dataclass(frozen=True, slots=True)
class VenueSnapshot:
    """The order as the venue shows it (an ``OrderReport``: REST answer, lookup, websocket)."""
    status: OrderStatus | None
    order_id: str | None = None
    cum_qty: float | None = None
    leaves_qty: float | None = None
    avg_px: float | None = None
    order_qty: float | None = None
    price: float | None = None


@dataclass(frozen=True, slots=True)
class NotFoundAtVenue:
    """The venue did not show the order.

    ``grace_elapsed``: the query was made after the visibility grace period (before it, absence is
    no evidence at all). ``definitive``: the venue's complete order list for the time range since
    the order's creation was checked after the long window, or the order was looked up by its
    client id after the acceptance window: either alone may resolve UNKNOWN (never placed).
    ``reason`` says which evidence it was.
    """
    checked_at: float
    grace_elapsed: bool
    definitive: bool = False
    reason: str = ""


Event = (Submitted | Acked | OrderRejected | Ambiguous | ClOrdIDTaken | PartialFill | Filled
         | CancelRequested | Canceled | CancelRejected | AmendRequested | Amended | AmendRejected
         | Withdrawn | VenueSnapshot | NotFoundAtVenue)

_STATUS_KIND: Final[dict[str, str]] = {
    OrderStatus.NEW: "venue_new", OrderStatus.PARTIALLY_FILLED: "venue_partially_filled",
    OrderStatus.FILLED: "venue_filled", OrderStatus.CANCELED: "venue_canceled",
    OrderStatus.REJECTED: "venue_rejected"}


def event_kind(event: Event, *, fills_complete: bool = False) -> str:
    """The table key of an event. Fill kinds depend on the order: pass ``fills_complete``."""
    match event:
        case OrderRejected(not_processed=True):
            return "overloaded"
        case PartialFill() | Filled():
            return "filled" if fills_complete or isinstance(event, Filled) else "partial_fill"
        case CancelRejected(venue_status=status) if status in _STATUS_KIND:
            return ("cancel_rejected_filled" if status == OrderStatus.FILLED
                    else _STATUS_KIND[status])
        case VenueSnapshot(status=status):
            return _STATUS_KIND.get(status or "", "venue_info")
        case NotFoundAtVenue(grace_elapsed=False):
            return "absent_in_grace"
        case NotFoundAtVenue(definitive=definitive):
            return "absent_definitive" if definitive else "absent"
    return _KIND_BY_TYPE[type(event)]


_KIND_BY_TYPE: Final[dict[type, str]] = {
    Submitted: "submitted", Acked: "acked", OrderRejected: "rejected", Ambiguous: "ambiguous",
    ClOrdIDTaken: "duplicate", CancelRequested: "cancel_requested", Canceled: "canceled",
    CancelRejected: "cancel_rejected", AmendRequested: "amend_requested", Amended: "amended",
    AmendRejected: "amend_rejected", Withdrawn: "withdrawn",
}


# ------------------------------------------------------------------------ from reports
def snapshot_of(report: OrderReport) -> VenueSnapshot:
    """An order report (full or sparse) as evidence."""
    return VenueSnapshot(status=report.status, order_id=report.venue_id,
                         cum_qty=report.filled_qty, leaves_qty=report.leaves_qty,
                         avg_px=report.avg_price, order_qty=report.qty, price=report.price)


def refusal_event(report: RefusalReport) -> CancelRejected:
    """A refused cancel; an open state named by the venue says nothing new."""
    status = report.status if report.status is not None and not report.status.is_open else None
    return CancelRejected(reason=report.reason[:200], venue_status=status)


def fill_event(report: FillReport) -> PartialFill | Filled:
    """An execution: complete when the venue says nothing is left (else the table adds up)."""
    if not report.exec_id or not report.qty > 0 or not math.isfinite(report.price):
        raise OrderError("fill report lacks an exec id, a positive qty or a price")
    if report.leaves_qty == 0:
        return Filled(report.exec_id, report.qty, report.price)
    return PartialFill(report.exec_id, report.qty, report.price, report.leaves_qty)
