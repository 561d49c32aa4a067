"""The one interface every venue adapter implements, in venue-neutral terms.

The order runtime (:class:`venueguard.io.order_manager.OrderManager`, the dead man's switch)
talks to a venue only through :class:`VenueAdapter`; the adapter alone knows the venue's
endpoints, row fields and error texts, and hands back the reports of
:mod:`venueguard.core.reports`. ``venueguard.venues.bitmex.adapter.BitmexAdapter`` implements it
over the native REST session.

Failures are raised as the exception tree of :mod:`venueguard.errors` (mapped by the
adapter at its boundary): ``AmbiguousOutcome`` when the request may have been processed,
``Rejected`` (and its subclasses, ``DuplicateClOrdID`` for a client id the venue already
holds) for a definite refusal, the not-sent kinds (``Overloaded``, ``RateLimited``, ...) when
the venue certainly did not process it. Order calls are never retried blindly by an adapter,
except a refusal that proves nothing was processed (an overload), resent with the SAME
client id.

Call order (what the order manager does)::

    report = await venue.place_order(client_id, symbol, side, qty, price, post_only=True)
    report = await venue.amend_order(client_id, venue_id, qty=..., price=...)
    reports = await venue.cancel_orders([client_id])      # OrderReport | RefusalReport each
    reports = await venue.orders_by_client_id([...])      # absent ids are simply missing
    reports = await venue.open_orders(symbol)             # the complete open list
    reports, complete = await venue.order_history(symbol, since_ms)
    fills, unreadable = await venue.fills_since(since_ms)
    positions = await venue.positions()
    batch = venue.read_private(topic, action, rows)       # a private websocket message
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from venueguard.core.reports import (
    FillReport,
    OrderReport,
    OrderStatus,
    PositionReport,
    RefusalReport,
)

__all__ = ["StreamBatch", "VenueAdapter"]


@dataclass(frozen=True, slots=True)
class StreamBatch:
    """What one private websocket message said, as reports in the venue's order (apply them
    in that order: a fill and a status of one order may share a message).

    ``complete_open_list``: the message's order reports are the venue's complete list of open
    orders (a snapshot sent on subscribe), so an order open locally and missing from it is
    suspect.
    ``unreadable``: per row the adapter could not read, the fields of a ``reconcile.bad_row``
    event (``error`` and what identifies the row); reported, never applied.
    """

    reports: tuple[OrderReport | FillReport | PositionReport, ...] = ()
    complete_open_list: bool = False
    unreadable: tuple[Mapping[str, object], ...] = ()


@runtime_checkable
class VenueAdapter(Protocol):
    """Order calls, queries by client id and private subscriptions of one venue; ``name``
    labels telemetry (``venue``)."""

    name: str

    # --- order calls (each raises the io.errors tree; none is retried blindly)
    async def place_order(self, client_id: str, symbol: str, side: str, qty: float,
                          price: float | None, *, post_only: bool = False,
                          text: str | None = None,
                          extra: Mapping[str, Any] | None = None) -> OrderReport:
        """Send one new limit order (market when ``price`` is None) carrying ``client_id``.
        ``extra``: the caller's venue-specific fields, passed on as the adapter documents."""
        ...

    async def amend_order(self, client_id: str, venue_id: str | None, *,
                          qty: float | None = None, price: float | None = None) -> OrderReport:
        """Change a resting order's total quantity and/or price, keeping its client id.
        ``client_id`` may be ``venue:<venue_id>`` for an order adopted without one."""
        ...

    async def cancel_orders(self, client_ids: Sequence[str], venue_ids: Sequence[str] = ()
                            ) -> list[OrderReport | RefusalReport]:
        """Cancel by client id (and by venue id for adopted orders): one report per order."""
        ...

    async def cancel_all(self, symbol: str | None = None) -> list[OrderReport | RefusalReport]:
        """One bulk cancel (safe mode); the reports of what it closed."""
        ...

    async def cancel_all_after(self, timeout_ms: int) -> Any:
        """Arm (``timeout_ms`` > 0) or disarm (0) the venue's dead man's switch."""
        ...

    # --- queries (reads: the adapter's session may retry them)
    async def orders_by_client_id(self, client_ids: Sequence[str],
                                  venue_ids: Sequence[str] = ()) -> list[OrderReport]:
        """Every order the venue has with one of these ids, open or closed."""
        ...

    async def open_orders(self, symbol: str | None = None) -> list[OrderReport]:
        """The venue's complete list of open orders."""
        ...

    async def order_history(self, symbol: str | None, since_ms: int
                            ) -> tuple[list[OrderReport], bool]:
        """Every order since ``since_ms``; ``complete`` False when the list was cut short
        (only a complete list proves an order was never placed)."""
        ...

    async def fills_since(self, since_ms: int
                          ) -> tuple[list[FillReport], list[Mapping[str, object]]]:
        """Every execution since ``since_ms``, and (as in ``StreamBatch.unreadable``) the
        trade rows it could not read."""
        ...

    async def positions(self) -> list[PositionReport]:
        ...

    # --- reading the venue's words
    def refusal_status(self, message: str) -> OrderStatus | None:
        """The closed order state a refusal's text names (an amend of a filled order), else
        None."""
        ...

    def private_topics(self, symbols: Sequence[str]) -> tuple[str, ...]:
        """The private websocket subscriptions that carry orders, fills and positions."""
        ...

    def read_private(self, topic: str, action: str, rows: Sequence[Any]) -> StreamBatch:
        """One private websocket message as reports (never raises on a bad row)."""
        ...
