"""What the order manager tells the world: ``order.*`` events and the order-integrity metrics.

Each transition the order table applies (and the journal appends) is reported once, here:

* ``order.unknown`` — the order entered UNKNOWN (timeout, 502/504, restart, duplicate clOrdID);
* ``order.acked`` — the first venue evidence that the order exists (REST answer, websocket row,
  lookup, fill), with the kind of evidence in ``via`` and ``adopted`` for orders taken over;
* ``order.filled`` — every execution applied (``qty``, ``px``, ``cum_qty``), or a status that
  says FILLED before its executions are seen (``via``);
* ``order.canceled`` and ``order.rejected`` — the order reached that terminal state;
* ``order.amended`` — an amend left PENDING_AMEND with the requested values in place (our 200,
  or a venue row that showed them after an unanswered request), with the order's ``qty`` and
  ``price`` now and the evidence in ``via``;
* ``order.amend_rejected`` — an amend left PENDING_AMEND without them (a refusal, a final 503,
  or the venue's row showing other values; the order keeps the venue's), with ``reason`` and
  the order's ``state``.

(The order manager itself emits ``order.intent``, ``order.sent``, ``order.refused``, and for
amends ``order.amend_sent`` when the PUT leaves and ``order.amend_unknown`` when its outcome is
unknown.)

Metrics: ``order_acks_total``, ``partial_fills_total``, ``time_to_fill_seconds`` (from the first
evidence to FILLED), ``cancel_confirms_total`` (a cancel we asked for, confirmed),
``phantom_orders_total``, ``open_orders{view}``, ``orders_unknown`` and ``position{symbol}``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from venueguard.core.orders import (
    OPEN_STATES,
    AmendRequested,
    Filled,
    Order,
    OrderState,
    OrderTable,
    PartialFill,
    Transition,
)
from venueguard.telemetry.events import EventLog
from venueguard.telemetry.metrics import Metrics

__all__ = ["OrderReports"]

S = OrderState


class OrderReports:
    """Call :meth:`on_transition` for every applied transition, :meth:`gauges` after a batch."""

    def __init__(self, events: EventLog, metrics: Metrics | None) -> None:
        self.events = events
        self.metrics = metrics
        self.acked: set[str] = set()              # orders already reported as acked
        self._acked_at: dict[str, float] = {}
        self._phantoms_seen = 0
        self._amending: dict[str, AmendRequested] = {}   # amends not settled yet

    def on_transition(self, t: Transition, order: Order) -> None:
        cl, event, emit, metrics = t.cl_ord_id, t.event, self.events.emit, self.metrics
        if isinstance(event, AmendRequested):
            self._amending[cl] = event
        elif t.from_state is S.PENDING_AMEND and t.to_state is not S.PENDING_AMEND:
            self._amend_settled(t, order)
        if t.to_state is S.UNKNOWN and t.from_state is not S.UNKNOWN:
            emit("order.unknown", cl_ord_id=cl, reason=getattr(event, "reason", t.kind))
        if order.exists_at_venue and cl not in self.acked and t.to_state is not S.UNKNOWN:
            self.acked.add(cl)
            self._acked_at[cl] = t.now
            emit("order.acked", cl_ord_id=cl, order_id=order.order_id, state=t.to_state.value,
                 via=t.kind, adopted=order.adopted)
            if metrics is not None:
                metrics.order_acks_total.inc()
        if isinstance(event, PartialFill | Filled):
            emit("order.filled", cl_ord_id=cl, qty=event.qty, px=event.px, cum_qty=order.cum_qty,
                 state=t.to_state.value, exec_id=event.exec_id)
            if metrics is not None and order.cum_qty < order.qty:
                metrics.partial_fills_total.inc()
        elif t.to_state is S.FILLED and t.from_state is not S.FILLED:
            emit("order.filled", cl_ord_id=cl, qty=None, px=None, cum_qty=order.venue_cum_qty,
                 state="FILLED", via=t.kind)
        if t.to_state is S.FILLED and t.from_state is not S.FILLED:
            acked_at = self._acked_at.pop(cl, None)
            if metrics is not None and acked_at is not None:
                metrics.time_to_fill_seconds.observe(max(0.0, t.now - acked_at))
        if t.to_state is S.CANCELED and t.from_state is not S.CANCELED:
            self._acked_at.pop(cl, None)
            emit("order.canceled", cl_ord_id=cl, reason=getattr(event, "reason", "") or t.kind,
                 cum_qty=order.cum_qty)
            if metrics is not None and t.from_state is S.PENDING_CANCEL:
                metrics.cancel_confirms_total.inc()
        if t.to_state is S.REJECTED and t.from_state is not S.REJECTED:
            self._acked_at.pop(cl, None)
            emit("order.rejected", cl_ord_id=cl, reason=getattr(event, "reason", t.kind))

    def _amend_settled(self, t: Transition, order: Order) -> None:
        asked = self._amending.pop(t.cl_ord_id, None)
        took = asked is not None and (asked.qty is None or asked.qty == order.qty) and (
            asked.price is None or (order.price is not None
                                    and math.isclose(order.price, asked.price, rel_tol=1e-12)))
        if t.kind == "amended" or took:
            self.events.emit("order.amended", cl_ord_id=t.cl_ord_id, qty=order.qty,
                             price=order.price, state=t.to_state.value, via=t.kind)
        else:
            self.events.emit("order.amend_rejected", cl_ord_id=t.cl_ord_id,
                             reason=getattr(t.event, "reason", "") or t.kind,
                             state=t.to_state.value, qty=order.qty, price=order.price)

    def gauges(self, table: OrderTable, symbols: Sequence[str], *, phantoms: int,
               venue_open: int | None) -> None:
        """Bring the gauges up to date; ``phantoms`` is the reconciler's running count."""
        metrics = self.metrics
        new_phantoms, self._phantoms_seen = phantoms - self._phantoms_seen, phantoms
        if metrics is None:
            return
        if new_phantoms > 0:
            metrics.phantom_orders_total.inc(new_phantoms)
        metrics.open_orders.labels(view="local").set(len(table.in_states(OPEN_STATES)))
        if venue_open is not None:
            metrics.open_orders.labels(view="venue").set(venue_open)
        metrics.orders_unknown.set(len(table.in_states(frozenset({S.UNKNOWN}))))
        for symbol in symbols:
            metrics.position.labels(symbol=symbol).set(table.position(symbol))
