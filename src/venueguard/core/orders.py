"""Order state: one transition table, events as frozen facts, an order table that applies them.

Every order goes through ``OrderTable``; its state changes only by applying an event through
``TRANSITIONS[(state, event kind)]``. Two sources of events, treated differently:

* **Our own request outcomes** (``Submitted``, ``OrderRejected``, ``Ambiguous``,
  ``ClOrdIDTaken``, ``CancelRequested``, ``AmendRequested``, ``Withdrawn``, ...). A missing
  entry means the caller broke the rules (for example resending an order that is already acked);
  ``InvalidTransition`` is raised and nothing changes. Never retry on it: it is a bug, not a
  venue failure.
* **Venue evidence** (order reports, fills, cancel answers, absence after a grace period). The
  venue is the source of truth, so every state has an entry for these kinds; an edge that
  contradicts what we believed is applied and recorded as an *anomaly* on the transition, never
  raised.

The events themselves are in :mod:`venueguard.core.order_events` (re-exported here).

Call order for one new order (the order manager does this)::

    order = table.new_order(symbol, side, qty, price, now=now, wall_ms=wall_ms)
    journal.record_intent(order)                 # durable BEFORE anything is sent
    table.on_submitted(order.cl_ord_id, now)     # then send the order with order.cl_ord_id
    # accepted     -> table.on_order_report(report, now)  (its status decides: NEW, FILLED, ...)
    # overloaded   -> table.on_rejected(cl, msg, not_processed=True, now)  retry, SAME client id
    # refused      -> table.on_rejected(cl, msg, not_processed=False, now)
    # client id already at the venue -> table.on_duplicate(cl, now)   (it exists: look it up)
    # timeout / 502 / 504 / reset after send -> table.on_ambiguous(cl, reason, now)  (UNKNOWN)
    journal.sync(table)          # appends every queued transition (table.take_transitions())

Amends: ``on_amend_requested`` before the request; accepted -> ``on_amended`` then
``on_order_report``; overloaded or refused -> ``on_amend_rejected``. Cancels:
``on_cancel_requested`` before the request, then each answer through ``on_order_report`` or
``on_refusal_report``; an ambiguous cancel -> ``on_ambiguous`` (the order stays PENDING_CANCEL
and the reconciler looks it up). Fills: ``on_fill_report`` (idempotent by exec id).

Everything the venue says arrives as the neutral reports of :mod:`venueguard.core.reports`
(each venue adapter builds them from its own rows); websocket updates and REST snapshots go
through ``core.reconcile.Reconciler``, which calls this table.

Quantities are floats (see :mod:`venueguard.core.reports` for why); every sum the table keeps
is rounded to ``QTY_DIGITS`` decimals, so fractional fills add up exactly.
"""

from __future__ import annotations

import enum
import string
from collections import deque
from dataclasses import dataclass, field
from typing import Final, Protocol

from venueguard.core.order_events import (
    Acked,
    Ambiguous,
    Amended,
    AmendRejected,
    AmendRequested,
    Canceled,
    CancelRejected,
    CancelRequested,
    ClOrdIDTaken,
    Event,
    Filled,
    NotFoundAtVenue,
    OrderError,
    OrderRejected,
    PartialFill,
    Submitted,
    VenueSnapshot,
    Withdrawn,
    event_kind,
    fill_event,
    refusal_event,
    snapshot_of,
)
from venueguard.core.reports import (
    SIDES,
    FillReport,
    OrderReport,
    OrderStatus,
    RefusalReport,
    normalize_side,
)

__all__ = [
    "ANOMALIES", "LOCAL_TRANSITIONS", "OPEN_STATES", "POSITION_TRAIL", "QTY_DIGITS", "RESTING",
    "TERMINAL_STATES", "TRANSITIONS", "UNFINISHED_STATES", "VENUE_KINDS", "VENUE_TRANSITIONS",
    "Acked", "Ambiguous", "AmendRejected", "AmendRequested", "Amended", "CancelRejected",
    "CancelRequested", "Canceled", "ClOrdIDTaken", "ClOrdIdGenerator", "Event", "Filled",
    "InvalidTransition", "NotFoundAtVenue", "Order", "OrderError", "OrderRejected", "OrderState",
    "OrderTable", "PartialFill", "RandomLike", "Submitted", "Transition", "VenueSnapshot",
    "Withdrawn", "event_kind", "fill_event", "log_event", "qty_sum", "refusal_event",
    "snapshot_of",
]

#: Decimals kept in quantity sums (below any venue's lot size; removes float noise such as
#: 0.1 + 0.2 = 0.30000000000000004).
QTY_DIGITS: Final = 12

#: Position values an :class:`OrderTable` keeps per symbol, so that a position answered by
#: the venue can be compared with every value the executions gave while it was on its way.
POSITION_TRAIL: Final = 256


def qty_sum(a: float, b: float) -> float:
    """``a + b`` rounded to ``QTY_DIGITS`` (integers stay integers)."""
    total = a + b
    return total if isinstance(total, int) else round(total, QTY_DIGITS)


class OrderState(enum.Enum):
    PENDING_NEW = "PENDING_NEW"            # intent journaled; request not answered (or 503'd)
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    PENDING_CANCEL = "PENDING_CANCEL"
    PENDING_AMEND = "PENDING_AMEND"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    UNKNOWN = "UNKNOWN"                    # may or may not exist; only venue evidence resolves


S = OrderState
TERMINAL_STATES: Final = frozenset({S.FILLED, S.CANCELED, S.REJECTED})
#: Believed resting at the venue (counted as "open locally").
OPEN_STATES: Final = frozenset({S.NEW, S.PARTIALLY_FILLED, S.PENDING_CANCEL, S.PENDING_AMEND})
UNFINISHED_STATES: Final = frozenset(OrderState) - TERMINAL_STATES


class InvalidTransition(OrderError):
    """The local caller broke the rules (an event our own code should not have produced here)."""


# ------------------------------------------------------------------------ transition table
class _Resting(enum.Enum):
    """Target meaning "back to resting": NEW if nothing filled yet, else PARTIALLY_FILLED."""
    RESTING = "RESTING"


RESTING: Final = _Resting.RESTING
Target = OrderState | _Resting
PN, N, PF, F = S.PENDING_NEW, S.NEW, S.PARTIALLY_FILLED, S.FILLED
PC, PA, C, R, U = S.PENDING_CANCEL, S.PENDING_AMEND, S.CANCELED, S.REJECTED, S.UNKNOWN

#: Our own request outcomes: (state, event kind) -> new state. Only the legal rows; a missing
#: one raises ``InvalidTransition``.
LOCAL_TRANSITIONS: Final[dict[tuple[OrderState, str], Target]] = {
    # --- our order request and its answers
    (PN, "submitted"): PN,            # first send, or a resend after 503 with the SAME client id
    (PN, "overloaded"): PN,           # 503: never reached the engine; retryable, same client id
    (PN, "rejected"): R,              # definite 4xx
    (PN, "ambiguous"): U,             # timeout / 502 / 504: may exist; look up by client id
    (U, "ambiguous"): U,
    (PC, "ambiguous"): PC,            # cancel outcome unknown; cancels are idempotent, look it up
    (PA, "ambiguous"): PA,
    (PN, "duplicate"): U,             # client id already at the venue = it exists: look it up
    (U, "duplicate"): U,
    (PN, "withdrawn"): R,             # only when nothing is in flight (checked in Order.apply)
    # --- cancel and amend requests
    (N, "cancel_requested"): PC, (PF, "cancel_requested"): PC, (PA, "cancel_requested"): PC,
    (PC, "cancel_requested"): PC,     # resend of an idempotent cancel
    (U, "cancel_requested"): U,       # cancel by client id while unresolved: answers are evidence
    (N, "amend_requested"): PA, (PF, "amend_requested"): PA,
    (PA, "amend_rejected"): RESTING,
    (PC, "cancel_rejected"): RESTING,  # unexplained refusal: back to what we knew
    (U, "cancel_rejected"): U,        # a failed cancel is no evidence either way
    (N, "cancel_rejected"): N, (PF, "cancel_rejected"): PF, (PA, "cancel_rejected"): PA,
    (F, "cancel_rejected"): F, (C, "cancel_rejected"): C, (R, "cancel_rejected"): R,
}

#: Venue evidence: kind -> {state -> new state}, every state listed (the venue is the source of
#: truth, so evidence is never refused). Columns: PENDING_NEW, NEW, PARTIALLY_FILLED, FILLED,
#: PENDING_CANCEL, PENDING_AMEND, CANCELED, REJECTED, UNKNOWN. Odd edges carry a comment; the
#: ones that contradict our belief are also listed in ``ANOMALIES``.
VENUE_TRANSITIONS: Final[dict[str, dict[OrderState, Target]]] = {
    # REST acceptance of our request. REJECTED -> NEW: evidence after a reject wins.
    "acked": {PN: N, N: N, PF: PF, F: F, PC: PC, PA: PA, C: C, R: N, U: N},
    # A sparse update that names no state.
    "venue_info": {PN: PN, N: N, PF: PF, F: F, PC: PC, PA: PA, C: C, R: R, U: U},
    # Open rows. The venue never moves a closed order back to open and fills are irreversible,
    # so a stale open row leaves FILLED/CANCELED (and PARTIALLY_FILLED for "new") as they are;
    # a row before our REST answer acks it; UNKNOWN is resolved; REJECTED: it exists after all.
    "venue_new": {PN: N, N: N, PF: PF, F: F, PC: PC, PA: PA, C: C, R: N, U: N},
    "venue_partially_filled": {PN: PF, N: PF, PF: PF, F: F, PC: PC, PA: PA, C: C, R: PF, U: PF},
    # FILLED wins everything, CANCELED included (the fill won the cancel race).
    "venue_filled": {PN: F, N: F, PF: F, F: F, PC: F, PA: F, C: F, R: F, U: F},
    # A cancel refused because the order is already filled.
    "cancel_rejected_filled": {PN: F, N: F, PF: F, F: F, PC: F, PA: F, C: F, R: F, U: F},
    # Closed rows; a fill is final (FILLED stays FILLED, flagged).
    "venue_canceled": {PN: C, N: C, PF: C, F: F, PC: C, PA: C, C: C, R: C, U: C},
    # Cancel answer, dead man's switch, IOC/post-only auto-cancel, bulk cancel.
    "canceled": {PN: C, N: C, PF: C, F: F, PC: C, PA: C, C: C, R: C, U: C},
    "venue_rejected": {PN: R, N: R, PF: R, F: F, PC: R, PA: R, C: C, R: R, U: R},
    # Executions. A late fill after CANCELED (it traded before the cancel; the cancel answer
    # arrived first) counts in the quantity and the position, the state stays CANCELED;
    # PENDING_CANCEL stays pending. A fill before the ack acks it; it resolves UNKNOWN;
    # REJECTED -> PARTIALLY_FILLED: it traded, so it existed.
    "partial_fill": {PN: PF, N: PF, PF: PF, F: F, PC: PC, PA: PA, C: C, R: PF, U: PF},
    "filled": {PN: F, N: F, PF: F, F: F, PC: F, PA: F, C: F, R: F, U: F},
    # Our amend answered: back to resting with the new values.
    "amended": {PN: PN, N: N, PF: PF, F: F, PC: PC, PA: RESTING, C: C, R: R, U: U},
    # Not shown by the venue within the visibility grace: eventually consistent, no evidence.
    "absent_in_grace": {PN: PN, N: N, PF: PF, F: F, PC: PC, PA: PA, C: C, R: R, U: U},
    # Not shown after the grace: an order believed open is closed (flagged when no cancel was
    # pending); UNKNOWN stays UNKNOWN (it may still be on its way).
    "absent": {PN: PN, N: C, PF: C, F: F, PC: C, PA: C, C: C, R: R, U: U},
    # Definitive absence (complete history, or looked up by client id after the acceptance
    # window): UNKNOWN was never accepted.
    "absent_definitive": {PN: PN, N: C, PF: C, F: F, PC: C, PA: C, C: C, R: R, U: R},
}

#: Every (state, kind) -> target, local and venue.
TRANSITIONS: Final[dict[tuple[OrderState, str], Target]] = {
    **LOCAL_TRANSITIONS,
    **{(state, kind): target for kind, row in VENUE_TRANSITIONS.items()
       for state, target in row.items()},
}

#: Kinds carrying venue evidence: defined for every state.
VENUE_KINDS: Final = frozenset(VENUE_TRANSITIONS)

#: Edges that contradict the local belief; applied (the venue wins) and flagged.
ANOMALIES: Final[dict[tuple[OrderState, str], str]] = {
    (C, "partial_fill"): "late_fill", (C, "filled"): "late_fill",
    (C, "venue_filled"): "fill_after_cancel", (C, "cancel_rejected_filled"): "fill_after_cancel",
    (F, "venue_canceled"): "canceled_after_fill", (F, "canceled"): "canceled_after_fill",
    (F, "venue_rejected"): "rejected_after_fill", (C, "venue_rejected"): "rejected_after_cancel",
    (C, "venue_new"): "stale_open_row", (C, "venue_partially_filled"): "stale_open_row",
    **{(R, k): "evidence_after_reject" for k in ("acked", "venue_new", "venue_partially_filled",
                                                 "venue_filled", "venue_canceled", "canceled",
                                                 "partial_fill", "filled",
                                                 "cancel_rejected_filled")},
    **{(s, "venue_rejected"): "rejected_while_open" for s in (N, PF, PC, PA)},
    **{(s, "absent"): "phantom_local" for s in (N, PF, PA)},
    **{(s, "absent_definitive"): "phantom_local" for s in (N, PF, PA)},
}


# ---------------------------------------------------------------------------------- orders
def log_event(transition: Transition) -> str | None:
    """The event name (``docs/events.md``) to emit for a transition (None: nothing to log).
    ``order.intent`` is emitted by whoever calls ``Journal.record_intent``."""
    before, after, kind = transition.from_state, transition.to_state, transition.kind
    if kind == "submitted":
        return "order.sent"
    if kind in ("partial_fill", "filled"):
        return "order.filled"
    if before is after:
        return None
    return {S.NEW: "order.acked", S.UNKNOWN: "order.unknown",
            S.CANCELED: "order.canceled"}.get(after)


@dataclass(frozen=True, slots=True)
class Transition:
    """One applied event: what the journal appends and what history shows."""
    cl_ord_id: str
    from_state: OrderState
    to_state: OrderState
    kind: str
    event: Event
    now: float
    anomaly: str | None = None


@dataclass(slots=True, eq=False)
class Order:
    """One intent. ``cl_ord_id`` is generated once and kept across every retry of this intent.

    ``cum_qty``/``avg_px`` come from executions applied here (idempotent by exec_id);
    ``venue_cum_qty`` is the highest filled quantity the venue has shown (ahead of ``cum_qty``
    when some executions are not seen yet: the reconciler fetches them).
    """
    cl_ord_id: str
    symbol: str
    side: str
    qty: float
    price: float | None
    created_at: float
    created_wall_ms: int
    state: OrderState = OrderState.PENDING_NEW
    state_since: float = 0.0
    order_id: str | None = None
    cum_qty: float = 0
    avg_px: float | None = None
    venue_cum_qty: float = 0
    in_flight: bool = False
    send_count: int = 0
    exists_at_venue: bool = False
    adopted: bool = False
    exec_ids: set[str] = field(default_factory=set)
    history: list[Transition] = field(default_factory=list)

    @property
    def signed_cum_qty(self) -> float:
        return self.cum_qty if self.side == "Buy" else -self.cum_qty

    def apply(self, event: Event, now: float) -> Transition | None:
        """Apply one event; returns the transition, or None for a duplicate execution."""
        fills_complete = False
        if isinstance(event, PartialFill | Filled):
            if event.exec_id in self.exec_ids:
                return None                  # the same execution seen twice (WS and REST)
            leaves = event.leaves_qty if isinstance(event, PartialFill) else 0
            fills_complete = (qty_sum(self.cum_qty, event.qty) >= self.qty if leaves is None
                              else leaves == 0)
        kind = event_kind(event, fills_complete=fills_complete)
        target = TRANSITIONS.get((self.state, kind))
        if target is None:
            raise InvalidTransition(f"{self.cl_ord_id}: {kind} not allowed in {self.state.value}")
        if isinstance(event, Withdrawn | Submitted) and (self.in_flight or self.exists_at_venue):
            raise InvalidTransition(f"{self.cl_ord_id}: {kind} with a request in flight or "
                                    "with the order seen at the venue")
        if kind == "absent_definitive" and self.state is S.UNKNOWN and self.exists_at_venue:
            raise InvalidTransition(f"{self.cl_ord_id}: known to exist; absence proves nothing")
        anomaly = ANOMALIES.get((self.state, kind))
        anomaly = self._absorb(event) or anomaly
        new_state = target if isinstance(target, OrderState) else (
            S.PARTIALLY_FILLED if self.cum_qty > 0 else S.NEW)
        transition = Transition(self.cl_ord_id, self.state, new_state, kind, event, now, anomaly)
        if new_state is not self.state:
            self.state, self.state_since = new_state, now
        if new_state is not S.PENDING_NEW:
            self.in_flight = False          # the request is answered one way or another
        self.history.append(transition)
        return transition

    def _absorb(self, event: Event) -> str | None:
        """Update quantities and flags from the event; returns an anomaly label if any."""
        match event:
            case Submitted():
                self.in_flight, self.send_count = True, self.send_count + 1
            case OrderRejected() | Ambiguous():
                self.in_flight = False
            case ClOrdIDTaken():
                self.in_flight, self.exists_at_venue = False, True
            case Acked(order_id=order_id):
                self.in_flight, self.exists_at_venue, self.order_id = False, True, order_id
            case PartialFill() | Filled():
                total = qty_sum(self.cum_qty, event.qty)
                prev = (self.avg_px or 0.0) * self.cum_qty
                self.avg_px = (prev + event.px * event.qty) / total if total else None
                self.cum_qty, self.exists_at_venue = total, True
                self.exec_ids.add(event.exec_id)
                self.venue_cum_qty = max(self.venue_cum_qty, total)
                if isinstance(event, PartialFill) and event.leaves_qty is not None:
                    self.qty = max(self.qty, qty_sum(total, event.leaves_qty))  # missed amend
                if total > self.qty:
                    return "overfill"
            case VenueSnapshot():
                self.exists_at_venue = True
                self.order_id = event.order_id or self.order_id
                self.venue_cum_qty = max(self.venue_cum_qty, event.cum_qty or 0)
                if event.order_qty is not None:
                    self.qty = event.order_qty
                if event.price is not None:
                    self.price = event.price
            case Canceled() | CancelRejected(venue_status=OrderStatus.FILLED
                                             | OrderStatus.CANCELED):
                self.exists_at_venue = True
            case Amended(qty=qty, price=price):
                self.qty = qty if qty is not None else self.qty
                self.price = price if price is not None else self.price
        return None


class RandomLike(Protocol):
    def random(self) -> float: ...


_ID_CHARS: Final = string.ascii_letters + string.digits
_PREFIX_CHARS: Final = frozenset(_ID_CHARS + "-_")


class ClOrdIdGenerator:
    """Deterministic client ids ``<prefix>-<session token>-<counter>``: at most 36 characters of
    ``[A-Za-z0-9_-]``. The session token comes from the injected RNG, so ids from a restarted
    process never collide with the journal's; the counter makes them unique within a session."""

    def __init__(self, rng: RandomLike, *, prefix: str = "vg", start: int = 0) -> None:
        if not prefix or len(prefix) > 12 or not set(prefix) <= _PREFIX_CHARS:
            raise ValueError("prefix must be 1-12 characters of [A-Za-z0-9_-]")
        self._token = "".join(_ID_CHARS[int(rng.random() * len(_ID_CHARS)) % len(_ID_CHARS)]
                              for _ in range(8))
        self._prefix, self._counter = prefix, start

    def next(self) -> str:
        self._counter += 1
        cl_ord_id = f"{self._prefix}-{self._token}-{self._counter}"
        if len(cl_ord_id) > 36:
            raise OrderError("client id counter exhausted (36 characters)")
        return cl_ord_id


# ------------------------------------------------------------------------------- table
class OrderTable:
    """Every order this process knows, by client id, plus the position implied by executions.

    Feeds are ``on_<fact>(cl_ord_id | report, ..., now)``; each returns the ``Transition``
    applied (or None when nothing applied) and queues it for ``take_transitions()``, which the
    adapter drains into the journal after each step. Venue facts arrive as the reports of
    :mod:`venueguard.core.reports`: ``on_order_report``, ``on_fill_report`` and
    ``on_refusal_report`` apply one to the order it is about (None when the table has no such
    order: the reconciler adopts those with ``adopt``). An execution counts once in the
    table: one applied to an order is not applied to another (the journal keeps each exec id
    once, so a second crediting would come back after a restart).
    """

    def __init__(self, ids: ClOrdIdGenerator) -> None:
        self._ids = ids
        self.orders: dict[str, Order] = {}
        self._by_order_id: dict[str, str] = {}
        self._exec_owner: dict[str, str] = {}      # exec id -> the client id it was applied to
        self._exec_position: dict[str, float] = {}
        self._baseline: dict[str, float] = {}
        self._outbox: list[Transition] = []
        # per symbol: how many times its position changed, and its latest values by that count
        self._pos_changes: dict[str, int] = {}
        self._pos_trail: dict[str, deque[tuple[int, float]]] = {}

    # --- creation and lookup
    def new_order(self, symbol: str, side: str, qty: float, price: float | None, *,
                  now: float, wall_ms: int, cl_ord_id: str | None = None) -> Order:
        """A new intent in PENDING_NEW with ``cl_ord_id`` (None: a fresh one). Journal it, then
        ``on_submitted``."""
        if side not in SIDES or not qty > 0:
            raise ValueError("side must be Buy or Sell and qty positive")
        order = Order(cl_ord_id or self._ids.next(), symbol, side, qty, price, now, wall_ms,
                      state_since=now)
        self.orders[order.cl_ord_id] = order
        return order

    def restore(self, order: Order) -> None:
        """Put back an order read from the journal (positions follow its executions)."""
        self.orders[order.cl_ord_id] = order
        if order.order_id:
            self._by_order_id[order.order_id] = order.cl_ord_id
        for exec_id in order.exec_ids:
            self._exec_owner.setdefault(exec_id, order.cl_ord_id)
        self._exec_position[order.symbol] = qty_sum(self._exec_position.get(order.symbol, 0),
                                                    order.signed_cum_qty)

    def adopt(self, report: OrderReport | FillReport, now: float, wall_ms: int) -> Order:
        """Take over a venue order unknown locally (flagged ``adopted``). An order report is
        applied to it; a fill is left to the caller (``on_fill_report``). Orders without a
        client id get the local id ``venue:<venue id>``."""
        venue_id = report.venue_id or ""
        cl_ord_id = report.client_id or f"venue:{venue_id}"
        qty = report.qty if isinstance(report, OrderReport) else report.order_qty
        price = report.price if isinstance(report, OrderReport) else None
        order = Order(cl_ord_id, report.symbol or "", normalize_side(report.side) or "Buy",
                      qty or 0, price, now, wall_ms, state=S.UNKNOWN, state_since=now,
                      adopted=True)
        self.orders[cl_ord_id] = order
        if isinstance(report, OrderReport):
            self.apply(cl_ord_id, snapshot_of(report), now)
        elif venue_id:
            order.order_id = venue_id
            self._by_order_id[venue_id] = cl_ord_id
        return order

    def find(self, client_id: str | None, venue_id: str | None = None) -> Order | None:
        """The local order a report is about (by client id, then venue id), if any."""
        if client_id and client_id in self.orders:
            return self.orders[client_id]
        if venue_id and venue_id in self._by_order_id:
            return self.orders[self._by_order_id[venue_id]]
        if venue_id and f"venue:{venue_id}" in self.orders:
            return self.orders[f"venue:{venue_id}"]
        return None

    def in_states(self, states: frozenset[OrderState]) -> list[Order]:
        return [o for o in self.orders.values() if o.state in states]

    def position(self, symbol: str) -> float:
        """Baseline plus the signed sum of every execution applied for ``symbol``."""
        return qty_sum(self._baseline.get(symbol, 0), self._exec_position.get(symbol, 0))

    def position_mark(self, symbol: str) -> int:
        """A mark of ``symbol``'s position now, for :meth:`positions_since`."""
        return self._pos_changes.get(symbol, 0)

    def positions_since(self, symbol: str, mark: int) -> list[float]:
        """The values ``symbol``'s position took after each change since ``mark``, oldest
        first (at most the last :data:`POSITION_TRAIL`)."""
        return [qty for n, qty in self._pos_trail.get(symbol, ()) if n > mark]

    def set_position_baseline(self, symbol: str, qty: float) -> None:
        """The position held before any journaled execution (0 for a fresh account)."""
        self._baseline[symbol] = qty

    def _note_position(self, symbol: str) -> None:
        count = self._pos_changes[symbol] = self._pos_changes.get(symbol, 0) + 1
        trail = self._pos_trail.setdefault(symbol, deque(maxlen=POSITION_TRAIL))
        trail.append((count, self.position(symbol)))

    def take_transitions(self) -> list[Transition]:
        """Drain every transition applied since the last call, in order (for the journal)."""
        out, self._outbox = self._outbox, []
        return out

    # --- the one place events are applied
    def apply(self, cl_ord_id: str, event: Event, now: float) -> Transition | None:
        order = self.orders.get(cl_ord_id)
        if order is None:
            raise OrderError(f"unknown client id {cl_ord_id!r}")
        exec_id = event.exec_id if isinstance(event, PartialFill | Filled) else None
        if exec_id is not None and self._exec_owner.get(exec_id, cl_ord_id) != cl_ord_id:
            return None                      # already credited to another order
        before = order.cum_qty
        transition = order.apply(event, now)
        if transition is None:
            return None
        if exec_id is not None:
            self._exec_owner[exec_id] = cl_ord_id
        if order.order_id:
            self._by_order_id[order.order_id] = cl_ord_id
        if order.cum_qty != before:
            delta = qty_sum(order.cum_qty, -before)
            self._exec_position[order.symbol] = qty_sum(
                self._exec_position.get(order.symbol, 0), delta if order.side == "Buy" else -delta)
            self._note_position(order.symbol)
        self._outbox.append(transition)
        return transition

    # --- outcomes of our own requests (the order manager calls these)
    def on_submitted(self, cl_ord_id: str, now: float) -> Transition | None:
        return self.apply(cl_ord_id, Submitted(), now)

    def on_acked(self, cl_ord_id: str, order_id: str, now: float) -> Transition | None:
        return self.apply(cl_ord_id, Acked(order_id), now)

    def on_rejected(self, cl_ord_id: str, reason: str, *, not_processed: bool,
                    now: float) -> Transition | None:
        return self.apply(cl_ord_id, OrderRejected(reason, not_processed), now)

    def on_ambiguous(self, cl_ord_id: str, reason: str, now: float) -> Transition | None:
        return self.apply(cl_ord_id, Ambiguous(reason), now)

    def on_duplicate(self, cl_ord_id: str, now: float) -> Transition | None:
        return self.apply(cl_ord_id, ClOrdIDTaken(), now)

    def on_cancel_requested(self, cl_ord_id: str, now: float) -> Transition | None:
        return self.apply(cl_ord_id, CancelRequested(), now)

    def on_amend_requested(self, cl_ord_id: str, qty: float | None, price: float | None,
                           now: float) -> Transition | None:
        return self.apply(cl_ord_id, AmendRequested(qty, price), now)

    def on_amended(self, cl_ord_id: str, qty: float | None, price: float | None,
                   now: float) -> Transition | None:
        """The amend was accepted (then feed its report through ``on_order_report``)."""
        return self.apply(cl_ord_id, Amended(qty, price), now)

    def on_amend_rejected(self, cl_ord_id: str, reason: str, now: float) -> Transition | None:
        return self.apply(cl_ord_id, AmendRejected(reason), now)

    def on_withdrawn(self, cl_ord_id: str, reason: str, now: float) -> Transition | None:
        return self.apply(cl_ord_id, Withdrawn(reason), now)

    def on_not_found(self, cl_ord_id: str, event: NotFoundAtVenue,
                     now: float) -> Transition | None:
        return self.apply(cl_ord_id, event, now)

    # --- venue reports (REST answers and snapshots, websocket updates)
    def on_order_report(self, report: OrderReport, now: float) -> Transition | None:
        """An order report about a known order (None if unknown: the reconciler adopts)."""
        order = self.find(report.client_id, report.venue_id)
        if order is None:
            return None
        return self.apply(order.cl_ord_id, snapshot_of(report), now)

    def on_refusal_report(self, report: RefusalReport, now: float) -> Transition | None:
        """A refused cancel of a known order (the reconciler turns ``not_found`` refusals into
        absence evidence first: see ``Reconciler.on_cancel_reports``)."""
        order = self.find(report.client_id, report.venue_id)
        if order is None:
            return None
        return self.apply(order.cl_ord_id, refusal_event(report), now)

    def on_fill_report(self, report: FillReport, now: float) -> Transition | None:
        """An execution of a known order, applied once per exec id (None when unknown or
        already applied). Raises ``OrderError`` for a fill without exec id, qty or price."""
        order = self.find(report.client_id, report.venue_id)
        if order is None:
            return None
        return self.apply(order.cl_ord_id, fill_event(report), now)
