"""Amends through the order manager: journal before send, the same client id, ambiguous
outcomes settled by venue evidence.

:meth:`venueguard.io.order_manager.OrderManager.amend` calls :meth:`OrderAmends.amend`.
What it guarantees (the order keeps its client id):

1. PENDING_AMEND with the requested values is committed to the journal BEFORE the request leaves
   (``order.amend_sent`` once it does);
2. an overload is retried by the REST session within its budget; a final overload, or any
   failure that proves nothing was processed, is ``amend_rejected``: the order rests as it was;
3. a definite refusal is ``amend_rejected``; when the venue names the order's state (the
   adapter's ``refusal_status``, e.g. BitMEX ``Invalid ordStatus: Filled``) that state is
   applied too, and the reconciler fetches what the order did (its executions);
4. an ambiguous outcome (timeout, 502, 504, connection lost) is NEVER resent: the order stays
   PENDING_AMEND (``order.amend_unknown``) until venue evidence settles its price and quantity:
   a report showing the requested values (websocket or lookup) settles it as amended at once;
   the reconciler's lookup by client id settles it with whatever the venue shows otherwise.

Refused like a new order (:class:`~venueguard.io.order_manager.OrdersBlocked`, ``order.refused``)
when not ready, stopping or in safe mode.
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING

from venueguard.core import orders as o
from venueguard.core.orders import Order, OrderState
from venueguard.io import errors
from venueguard.io.order_outcomes import NOT_SENT, failure_reason, not_processed

if TYPE_CHECKING:
    from venueguard.io.order_manager import OrderManager

__all__ = ["OrderAmends"]

S = OrderState


class OrderAmends:
    """The amends of one order manager: requests and the values each is waiting for."""

    def __init__(self, manager: OrderManager) -> None:
        self.manager = manager
        #: Amends not settled yet: client id -> requested (qty, price).
        self.pending: dict[str, tuple[float | None, float | None]] = {}

    async def amend(self, cl_ord_id: str, *, price: float | None = None,
                    qty: float | None = None) -> Order:
        """Amend a resting order's price and/or quantity (``qty`` is the new total quantity,
        filled part included); returns the order in whatever state the outcome left it.

        Raises ``OrdersBlocked`` (nothing journaled or sent) when not ready, stopping or refused
        by safe mode, and ``ValueError`` for an unknown client id, an order that is not NEW or
        PARTIALLY_FILLED (for example an amend already pending) or an amend that changes
        nothing.
        """
        m = self.manager
        order = self._admit(cl_ord_id, price, qty)
        cl, table = order.cl_ord_id, m.table
        table.on_amend_requested(cl, qty, price, m.clock.monotonic())
        self.pending[cl] = (qty, price)
        m.drain()
        try:
            await m.flush()                       # durable BEFORE the request leaves
        except BaseException:
            m.own(cl, o.AmendRejected("not sent: journal write failed"))
            m.drain()
            raise
        m.events.emit("order.amend_sent", cl_ord_id=cl, qty=qty, price=price)
        try:
            report = await m.venue.amend_order(cl, order.order_id, qty=qty, price=price)
        except asyncio.CancelledError:
            m.own(cl, o.Ambiguous("cancelled while in flight"))
            m.drain()
            m.flush_while_unwinding()
            raise
        except BaseException as exc:
            self._on_failure(cl, exc)
            await m.flush()
            if not isinstance(exc, errors.VenueError):
                raise
            return order
        now = m.clock.monotonic()
        if report.client_id == cl or (order.order_id is not None
                                      and report.venue_id == order.order_id):
            m.own(cl, o.Amended(qty, price))      # then the report: the venue's exact values
            m.reconciler.on_order_reports([report], now, m.clock.wall_ms())
        else:                                     # an answer that is not this order's
            m.own(cl, o.Ambiguous("answer without the order's row"))
        m.drain()
        m.wake()
        await m.flush()
        return order

    def _admit(self, cl_ord_id: str, price: float | None, qty: float | None) -> Order:
        m = self.manager
        order = m.table.orders.get(cl_ord_id)
        if order is None:
            raise ValueError(f"amend: unknown client id {cl_ord_id!r}")
        if price is None and qty is None:
            raise ValueError("amend needs a price or a qty")
        if (price is not None and not price > 0) or (qty is not None and (
                isinstance(qty, bool) or not isinstance(qty, int | float) or not qty > 0)):
            raise ValueError("amend needs price > 0 and qty > 0")
        if order.state not in (S.NEW, S.PARTIALLY_FILLED):
            raise ValueError(f"amend: {cl_ord_id} is {order.state.value}, not NEW or "
                             "PARTIALLY_FILLED")
        if matches(order, qty, price):
            raise ValueError(f"amend: {cl_ord_id} already has that price and quantity")
        reason = m.refused(cl_ord_id=cl_ord_id, request="amend", symbol=order.symbol,
                           side=order.side, qty=qty, price=price)
        if reason is not None:
            raise m.blocked(reason)
        return order

    def _on_failure(self, cl: str, exc: BaseException) -> None:
        """Map a failed amend: not processed or refused (the order rests as it was, plus any
        state the venue named), or unknown (left PENDING_AMEND for the evidence)."""
        m = self.manager
        refused = isinstance(exc, errors.Rejected) and not isinstance(exc, NOT_SENT)
        if refused or not_processed(exc):
            if m.own(cl, o.AmendRejected(failure_reason(exc))) and refused:
                assert isinstance(exc, errors.VenueError)
                status = m.venue.refusal_status(exc.venue_message)
                if status is not None:            # the venue named the order's state
                    m.own(cl, o.VenueSnapshot(status=status))
        else:                                     # anything else may have been processed
            label = (f"{exc.kind.value} {exc.status or ''}".strip()
                     if isinstance(exc, errors.VenueError) else type(exc).__name__)
            if m.own(cl, o.Ambiguous(label)):
                m.events.emit("order.amend_unknown", cl_ord_id=cl, reason=label)
        m.drain()
        m.wake()

    def settle(self) -> None:
        """An amend whose requested values a venue report now shows took effect: settle it.
        Amends that left PENDING_AMEND otherwise are forgotten here."""
        table = self.manager.table
        for cl, (qty, price) in list(self.pending.items()):
            order = table.orders[cl]
            if order.state is S.PENDING_AMEND and matches(order, qty, price):
                table.on_amended(cl, qty, price, self.manager.clock.monotonic())
            if order.state is not S.PENDING_AMEND:
                del self.pending[cl]


def matches(order: Order, qty: float | None, price: float | None) -> bool:
    """True when the order shows every requested value."""
    return ((qty is None or order.qty == qty)
            and (price is None or (order.price is not None
                                   and math.isclose(order.price, price, rel_tol=1e-12))))
