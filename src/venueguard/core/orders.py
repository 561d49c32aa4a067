"""Order state: one transition table, events as frozen facts, an order table that applies them.

Every order goes through ``OrderTable``; its state changes only by applying an event through
``TRANSITIONS[(state, event kind)]``. Two sources of events, treated differently:

* **Our own request outcomes** (``Submitted``, ``Rejected``, ``Ambiguous``, ``DuplicateClOrdID``,
  ``CancelRequested``, ``AmendRequested``, ``Withdrawn``, ...). A missing entry means the caller
  broke the rules (for example resending an order that is already acked); ``InvalidTransition`` is
  raised and nothing changes. Never retry on it: it is a bug, not a venue failure.
* **Venue evidence** (order rows, executions, cancel rows, absence after a grace period). The venue
  is the source of truth, so every state has an entry for these kinds; an edge that contradicts
  what we believed is applied and recorded as an *anomaly* on the transition, never raised.

Call order for one new order (the order manager does this)::

    order = table.new_order(symbol, side, qty, price, now=now, wall_ms=wall_ms)
    journal.record_intent(order)                 # durable BEFORE anything is sent
    table.on_submitted(order.cl_ord_id, now)     # then send POST /order with order.cl_ord_id
    # 200          -> table.on_order_row(row, now)   (ordStatus decides: New, Filled, ...)
    # 503 overload -> table.on_rejected(cl, msg, not_processed=True, now)  retry, SAME clOrdID
    # definite 4xx -> table.on_rejected(cl, msg, not_processed=False, now)
    # 400 "Duplicate clOrdID" -> table.on_duplicate(cl, now)   (it exists: look it up)
    # timeout / 502 / 504 / reset after send -> table.on_ambiguous(cl, reason, now)  (UNKNOWN)
    journal.sync(table)          # appends every queued transition (table.take_transitions())

Amends: ``on_amend_requested`` before PUT /order; 200 -> ``on_amended`` then ``on_order_row``;
503 or 4xx -> ``on_amend_rejected``. Cancels: ``on_cancel_requested`` before DELETE /order,
then each response row through ``on_cancel_row`` (rows with ``"error"`` included); an ambiguous
cancel -> ``on_ambiguous`` (the order stays PENDING_CANCEL and the reconciler looks it up).
Websocket ``order``/``execution`` rows and REST snapshots go through
``core.reconcile.Reconciler``, which calls this table.
"""

from __future__ import annotations

import enum
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol


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


class OrderError(Exception):
    """Base of order-table errors."""


class InvalidTransition(OrderError):
    """The local caller broke the rules (an event our own code should not have produced here)."""


# ---------------------------------------------------------------------------------- events
@dataclass(frozen=True, slots=True)
class Submitted:
    """The POST /order request is about to be sent (first send or a retry after a 503)."""


@dataclass(frozen=True, slots=True)
class Acked:
    order_id: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """A definite answer to our POST. ``not_processed``: the venue never saw it (503 overload)."""
    reason: str
    not_processed: bool


@dataclass(frozen=True, slots=True)
class Ambiguous:
    """The request may or may not have reached the engine: timeout, 502, 504, reset after send."""
    reason: str


@dataclass(frozen=True, slots=True)
class DuplicateClOrdID:
    """400 "Duplicate clOrdID": proof the order exists at the venue; look it up by clOrdID."""


@dataclass(frozen=True, slots=True)
class PartialFill:
    """An execution; ``leaves_qty`` is the venue's remaining quantity when the row says so
    (it outranks our arithmetic: our quantity may predate an amend)."""
    exec_id: str
    qty: int
    px: float
    leaves_qty: int | None = None


@dataclass(frozen=True, slots=True)
class Filled:
    """An execution after which the venue reports leavesQty 0."""
    exec_id: str
    qty: int
    px: float


@dataclass(frozen=True, slots=True)
class CancelRequested:
    pass


@dataclass(frozen=True, slots=True)
class Canceled:
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CancelRejected:
    """A cancel row with ``error``; ``venue_status`` is the state the venue named, if any."""
    reason: str
    venue_status: str | None = None


@dataclass(frozen=True, slots=True)
class AmendRequested:
    qty: int | None = None
    price: float | None = None


@dataclass(frozen=True, slots=True)
class Amended:
    qty: int | None = None
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
    """The order as the venue shows it (REST response, GET /order, websocket insert/update)."""
    ord_status: str | None
    order_id: str | None = None
    cum_qty: int | None = None
    leaves_qty: int | None = None
    avg_px: float | None = None
    order_qty: int | None = None
    price: float | None = None


@dataclass(frozen=True, slots=True)
class NotFoundAtVenue:
    """The venue did not show the order.

    ``grace_elapsed``: the query was made after the visibility grace period (before it, absence is
    no evidence at all). ``definitive``: the venue's complete order list for the time range since
    the order's creation was checked after the long window, which alone may resolve UNKNOWN.
    """
    checked_at: float
    grace_elapsed: bool
    definitive: bool = False


Event = (Submitted | Acked | Rejected | Ambiguous | DuplicateClOrdID | PartialFill | Filled
         | CancelRequested | Canceled | CancelRejected | AmendRequested | Amended | AmendRejected
         | Withdrawn | VenueSnapshot | NotFoundAtVenue)

_STATUS_KIND: Final = {"New": "venue_new", "PartiallyFilled": "venue_partially_filled",
                       "Filled": "venue_filled", "Canceled": "venue_canceled",
                       "Rejected": "venue_rejected"}


def event_kind(event: Event, *, fills_complete: bool = False) -> str:
    """The table key of an event. Fill kinds depend on the order: pass ``fills_complete``."""
    match event:
        case Rejected(not_processed=True):
            return "overloaded"
        case PartialFill() | Filled():
            return "filled" if fills_complete or isinstance(event, Filled) else "partial_fill"
        case CancelRejected(venue_status=status) if status in _STATUS_KIND:
            return "cancel_rejected_filled" if status == "Filled" else _STATUS_KIND[status]
        case VenueSnapshot(ord_status=status):
            return _STATUS_KIND.get(status or "", "venue_info")
        case NotFoundAtVenue(grace_elapsed=False):
            return "absent_in_grace"
        case NotFoundAtVenue(definitive=definitive):
            return "absent_definitive" if definitive else "absent"
    return _KIND_BY_TYPE[type(event)]


_KIND_BY_TYPE: Final[dict[type, str]] = {
    Submitted: "submitted", Acked: "acked", Rejected: "rejected", Ambiguous: "ambiguous",
    DuplicateClOrdID: "duplicate", CancelRequested: "cancel_requested", Canceled: "canceled",
    CancelRejected: "cancel_rejected", AmendRequested: "amend_requested", Amended: "amended",
    AmendRejected: "amend_rejected", Withdrawn: "withdrawn",
}


# ------------------------------------------------------------------------ transition table
class _Resting(enum.Enum):
    """Target meaning "back to resting": NEW if nothing filled yet, else PARTIALLY_FILLED."""
    RESTING = "RESTING"


RESTING: Final = _Resting.RESTING
Target = OrderState | _Resting
PN, N, PF, F = S.PENDING_NEW, S.NEW, S.PARTIALLY_FILLED, S.FILLED
PC, PA, C, R, U = S.PENDING_CANCEL, S.PENDING_AMEND, S.CANCELED, S.REJECTED, S.UNKNOWN

#: (state, event kind) -> new state. Local kinds have only their legal rows; venue kinds cover
#: every state (asserted by tests). Odd venue edges carry a comment.
TRANSITIONS: Final[dict[tuple[OrderState, str], Target]] = {
    # --- our POST /order and its answers
    (PN, "submitted"): PN,            # first send, or a resend after 503 with the SAME clOrdID
    (PN, "overloaded"): PN,           # 503: never reached the engine; retryable, same clOrdID
    (PN, "rejected"): R,              # definite 4xx
    (PN, "ambiguous"): U,             # timeout / 502 / 504: may exist; look up by clOrdID
    (U, "ambiguous"): U,
    (PC, "ambiguous"): PC,            # cancel outcome unknown; cancels are idempotent, look it up
    (PA, "ambiguous"): PA,
    (PN, "duplicate"): U,             # "Duplicate clOrdID" = it exists at the venue: look it up
    (U, "duplicate"): U,
    (PN, "withdrawn"): R,             # only when nothing is in flight (checked in Order.apply)
    # --- cancel and amend requests
    (N, "cancel_requested"): PC, (PF, "cancel_requested"): PC, (PA, "cancel_requested"): PC,
    (PC, "cancel_requested"): PC,     # resend of an idempotent cancel
    (U, "cancel_requested"): U,       # cancel by clOrdID while unresolved: its rows are evidence
    (N, "amend_requested"): PA, (PF, "amend_requested"): PA,
    (PA, "amend_rejected"): RESTING,
    (PC, "cancel_rejected"): RESTING,  # "not found"/unexplained error: back to what we knew
    (U, "cancel_rejected"): U,        # a failed cancel is no evidence either way
    (N, "cancel_rejected"): N, (PF, "cancel_rejected"): PF, (PA, "cancel_rejected"): PA,
    (F, "cancel_rejected"): F, (C, "cancel_rejected"): C, (R, "cancel_rejected"): R,
}


_venue_kinds: set[str] = set()


def _venue(kind: str, rows: Mapping[OrderState, Target]) -> None:
    missing = set(OrderState) - set(rows)
    assert not missing, f"venue kind {kind} lacks {missing}"
    _venue_kinds.add(kind)
    for state, target in rows.items():
        TRANSITIONS[(state, kind)] = target


_SAME: Final[dict[OrderState, Target]] = {s: s for s in OrderState}
_venue("acked", {**_SAME, PN: N, U: N,
                 R: N})                            # anomaly: evidence after a reject wins
_venue("venue_info", _SAME)                       # a sparse update without a status change
_venue("venue_new", {**_SAME, PN: N, U: N,        # row before our REST answer; UNKNOWN resolved
                     R: N})                       # anomaly: it exists after all
# Stale snapshots never reopen: the venue does not move a closed order back to New, and fills
# are irreversible, so FILLED/CANCELED/PARTIALLY_FILLED keep their state above.
_venue("venue_partially_filled", {**_SAME, PN: PF, U: PF, N: PF, R: PF})
_venue("venue_filled", dict.fromkeys(OrderState, F))  # incl. CANCELED: fill won the cancel race
_venue("cancel_rejected_filled", dict.fromkeys(OrderState, F))  # cancel of an order already filled
_venue("venue_canceled", {**dict.fromkeys(OrderState, C),
                          F: F})                  # anomaly: a fill is final, keep FILLED
# cancel ack, dead man's switch, IOC/post-only auto-cancel, DELETE /order/all:
_venue("canceled", {**dict.fromkeys(OrderState, C), F: F})
_venue("venue_rejected", {**dict.fromkeys(OrderState, R), F: F, C: C})
# Late fill after CANCELED (it traded before the cancel; the REST cancel ack arrived first): the
# quantity and the position count it, the state stays CANCELED; PENDING_CANCEL stays pending.
_venue("partial_fill", {**_SAME, PN: PF, U: PF, N: PF,  # fill before ack / resolves UNKNOWN
                        R: PF})                   # anomaly: it traded, so it existed
_venue("filled", dict.fromkeys(OrderState, F))    # a fill after the cancel ack completes it
_venue("amended", {**_SAME, PA: RESTING})
_venue("absent_in_grace", _SAME)                  # eventually consistent: no evidence yet
_venue("absent", {**_SAME, N: C, PF: C, PC: C, PA: C})  # after grace: not at the venue -> closed
_venue("absent_definitive", {**_SAME, N: C, PF: C, PC: C, PA: C,
                             U: R})               # full history lacks it: it was never placed

#: Kinds carrying venue evidence: defined for every state.
VENUE_KINDS: Final = frozenset(_venue_kinds)

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
    ``venue_cum_qty`` is the highest cumQty the venue has shown (ahead of ``cum_qty`` when some
    executions are not seen yet: the reconciler fetches them).
    """
    cl_ord_id: str
    symbol: str
    side: str
    qty: int
    price: float | None
    created_at: float
    created_wall_ms: int
    state: OrderState = OrderState.PENDING_NEW
    state_since: float = 0.0
    order_id: str | None = None
    cum_qty: int = 0
    avg_px: float | None = None
    venue_cum_qty: int = 0
    in_flight: bool = False
    send_count: int = 0
    exists_at_venue: bool = False
    adopted: bool = False
    exec_ids: set[str] = field(default_factory=set)
    history: list[Transition] = field(default_factory=list)

    @property
    def signed_cum_qty(self) -> int:
        return self.cum_qty if self.side == "Buy" else -self.cum_qty

    def apply(self, event: Event, now: float) -> Transition | None:
        """Apply one event; returns the transition, or None for a duplicate execution."""
        fills_complete = False
        if isinstance(event, PartialFill | Filled):
            if event.exec_id in self.exec_ids:
                return None                  # the same execution seen twice (WS and REST)
            leaves = event.leaves_qty if isinstance(event, PartialFill) else 0
            fills_complete = (self.cum_qty + event.qty >= self.qty if leaves is None
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
            self.in_flight = False          # the POST is answered one way or another
        self.history.append(transition)
        return transition

    def _absorb(self, event: Event) -> str | None:
        """Update quantities and flags from the event; returns an anomaly label if any."""
        match event:
            case Submitted():
                self.in_flight, self.send_count = True, self.send_count + 1
            case Rejected() | Ambiguous():
                self.in_flight = False
            case DuplicateClOrdID():
                self.in_flight, self.exists_at_venue = False, True
            case Acked(order_id=order_id):
                self.in_flight, self.exists_at_venue, self.order_id = False, True, order_id
            case PartialFill() | Filled():
                total = self.cum_qty + event.qty
                prev = (self.avg_px or 0.0) * self.cum_qty
                self.avg_px = (prev + event.px * event.qty) / total if total else None
                self.cum_qty, self.exists_at_venue = total, True
                self.exec_ids.add(event.exec_id)
                self.venue_cum_qty = max(self.venue_cum_qty, total)
                if isinstance(event, PartialFill) and event.leaves_qty is not None:
                    self.qty = max(self.qty, total + event.leaves_qty)   # an amend we missed
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
            case Canceled() | CancelRejected(venue_status="Filled" | "Canceled"):
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
    """Deterministic clOrdIDs ``<prefix>-<session token>-<counter>``: at most 36 characters of
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
            raise OrderError("clOrdID counter exhausted (36 characters)")
        return cl_ord_id


# -------------------------------------------------------------------------- BitMEX rows
def _int(row: Mapping[str, object], key: str) -> int | None:
    value = row.get(key)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _float(row: Mapping[str, object], key: str) -> float | None:
    value = row.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _str(row: Mapping[str, object], key: str) -> str | None:
    value = row.get(key)
    return value if isinstance(value, str) and value else None


def snapshot_from_row(row: Mapping[str, object]) -> VenueSnapshot:
    """A BitMEX Order row (full or sparse update) as evidence."""
    return VenueSnapshot(ord_status=_str(row, "ordStatus"), order_id=_str(row, "orderID"),
                         cum_qty=_int(row, "cumQty"), leaves_qty=_int(row, "leavesQty"),
                         avg_px=_float(row, "avgPx"), order_qty=_int(row, "orderQty"),
                         price=_float(row, "price"))


_CANCEL_STATE_PREFIX: Final = "due to existing state:"


def cancel_event_from_row(row: Mapping[str, object]) -> Event:
    """A DELETE /order response row: its snapshot, or CancelRejected when it has ``error``."""
    error = _str(row, "error")
    if error is None:
        return snapshot_from_row(row)       # carries cumQty: a fill before the cancel shows
    status = _str(row, "ordStatus")
    if _CANCEL_STATE_PREFIX in error:
        status = error.split(_CANCEL_STATE_PREFIX, 1)[1].strip().split()[0] or status
    return CancelRejected(reason=error[:200], venue_status=status if status in _STATUS_KIND
                          and status not in ("New", "PartiallyFilled") else None)


# ------------------------------------------------------------------------------- table
class OrderTable:
    """Every order this process knows, by clOrdID, plus the position implied by executions.

    Feeds are ``on_<fact>(cl_ord_id | row, ..., now)``; each returns the ``Transition`` applied
    (or None when nothing applied) and queues it for ``take_transitions()``, which the adapter
    drains into the journal after each step.
    """

    def __init__(self, ids: ClOrdIdGenerator) -> None:
        self._ids = ids
        self.orders: dict[str, Order] = {}
        self._by_order_id: dict[str, str] = {}
        self._exec_position: dict[str, int] = {}
        self._baseline: dict[str, int] = {}
        self._outbox: list[Transition] = []

    # --- creation and lookup
    def new_order(self, symbol: str, side: str, qty: int, price: float | None, *,
                  now: float, wall_ms: int) -> Order:
        """A new intent in PENDING_NEW with a fresh clOrdID. Journal it, then ``on_submitted``."""
        if side not in ("Buy", "Sell") or qty <= 0:
            raise ValueError("side must be Buy or Sell and qty positive")
        order = Order(self._ids.next(), symbol, side, qty, price, now, wall_ms, state_since=now)
        self.orders[order.cl_ord_id] = order
        return order

    def restore(self, order: Order) -> None:
        """Put back an order read from the journal (positions follow its executions)."""
        self.orders[order.cl_ord_id] = order
        if order.order_id:
            self._by_order_id[order.order_id] = order.cl_ord_id
        self._exec_position[order.symbol] = (self._exec_position.get(order.symbol, 0)
                                             + order.signed_cum_qty)

    def adopt(self, row: Mapping[str, object], now: float, wall_ms: int) -> Order:
        """Take over a venue order unknown locally (flagged ``adopted``); applies the row."""
        order_id = _str(row, "orderID") or ""
        cl_ord_id = _str(row, "clOrdID") or f"venue:{order_id}"
        order = Order(cl_ord_id, _str(row, "symbol") or "", _str(row, "side") or "Buy",
                      _int(row, "orderQty") or 0, _float(row, "price"), now, wall_ms,
                      state=S.UNKNOWN, state_since=now, adopted=True)
        self.orders[cl_ord_id] = order
        self.apply(cl_ord_id, snapshot_from_row(row), now)
        return order

    def find(self, row: Mapping[str, object]) -> Order | None:
        """The local order a venue row is about (by clOrdID, then orderID), if any."""
        cl_ord_id = _str(row, "clOrdID")
        if cl_ord_id and cl_ord_id in self.orders:
            return self.orders[cl_ord_id]
        order_id = _str(row, "orderID")
        if order_id and order_id in self._by_order_id:
            return self.orders[self._by_order_id[order_id]]
        if order_id and f"venue:{order_id}" in self.orders:
            return self.orders[f"venue:{order_id}"]
        return None

    def in_states(self, states: frozenset[OrderState]) -> list[Order]:
        return [o for o in self.orders.values() if o.state in states]

    def position(self, symbol: str) -> int:
        """Baseline plus the signed sum of every execution applied for ``symbol``."""
        return self._baseline.get(symbol, 0) + self._exec_position.get(symbol, 0)

    def set_position_baseline(self, symbol: str, qty: int) -> None:
        """The position held before any journaled execution (0 for a fresh account)."""
        self._baseline[symbol] = qty

    def take_transitions(self) -> list[Transition]:
        """Drain every transition applied since the last call, in order (for the journal)."""
        out, self._outbox = self._outbox, []
        return out

    # --- the one place events are applied
    def apply(self, cl_ord_id: str, event: Event, now: float) -> Transition | None:
        order = self.orders.get(cl_ord_id)
        if order is None:
            raise OrderError(f"unknown clOrdID {cl_ord_id!r}")
        before = order.cum_qty
        transition = order.apply(event, now)
        if transition is None:
            return None
        if order.order_id:
            self._by_order_id[order.order_id] = cl_ord_id
        if order.cum_qty != before:
            delta = order.cum_qty - before
            self._exec_position[order.symbol] = (self._exec_position.get(order.symbol, 0)
                                                 + (delta if order.side == "Buy" else -delta))
        self._outbox.append(transition)
        return transition

    # --- outcomes of our own requests (the order manager calls these)
    def on_submitted(self, cl_ord_id: str, now: float) -> Transition | None:
        return self.apply(cl_ord_id, Submitted(), now)

    def on_acked(self, cl_ord_id: str, order_id: str, now: float) -> Transition | None:
        return self.apply(cl_ord_id, Acked(order_id), now)

    def on_rejected(self, cl_ord_id: str, reason: str, *, not_processed: bool,
                    now: float) -> Transition | None:
        return self.apply(cl_ord_id, Rejected(reason, not_processed), now)

    def on_ambiguous(self, cl_ord_id: str, reason: str, now: float) -> Transition | None:
        return self.apply(cl_ord_id, Ambiguous(reason), now)

    def on_duplicate(self, cl_ord_id: str, now: float) -> Transition | None:
        return self.apply(cl_ord_id, DuplicateClOrdID(), now)

    def on_cancel_requested(self, cl_ord_id: str, now: float) -> Transition | None:
        return self.apply(cl_ord_id, CancelRequested(), now)

    def on_amend_requested(self, cl_ord_id: str, qty: int | None, price: float | None,
                           now: float) -> Transition | None:
        return self.apply(cl_ord_id, AmendRequested(qty, price), now)

    def on_amended(self, cl_ord_id: str, qty: int | None, price: float | None,
                   now: float) -> Transition | None:
        """PUT /order answered 200 (then feed its row through ``on_order_row``)."""
        return self.apply(cl_ord_id, Amended(qty, price), now)

    def on_amend_rejected(self, cl_ord_id: str, reason: str, now: float) -> Transition | None:
        return self.apply(cl_ord_id, AmendRejected(reason), now)

    def on_withdrawn(self, cl_ord_id: str, reason: str, now: float) -> Transition | None:
        return self.apply(cl_ord_id, Withdrawn(reason), now)

    def on_not_found(self, cl_ord_id: str, event: NotFoundAtVenue,
                     now: float) -> Transition | None:
        return self.apply(cl_ord_id, event, now)

    # --- venue rows (REST responses and snapshots, websocket rows)
    def on_order_row(self, row: Mapping[str, object], now: float) -> Transition | None:
        """An Order row about a known order (None if unknown: the reconciler adopts those)."""
        order = self.find(row)
        if order is None:
            return None
        return self.apply(order.cl_ord_id, snapshot_from_row(row), now)

    def on_cancel_row(self, row: Mapping[str, object], now: float) -> Transition | None:
        """One row of a DELETE /order (or /order/all) response, ``error`` rows included."""
        order = self.find(row)
        if order is None:
            return None
        return self.apply(order.cl_ord_id, cancel_event_from_row(row), now)

    def on_execution_row(self, row: Mapping[str, object], now: float) -> Transition | None:
        """An Execution row: ``Trade`` rows are fills (idempotent by execID); others carry
        the order's status and are applied as snapshots."""
        order = self.find(row)
        if order is None:
            return None
        if row.get("execType") != "Trade":
            if _str(row, "ordStatus") is None:
                return None
            return self.apply(order.cl_ord_id, snapshot_from_row(row), now)
        exec_id, qty, px = _str(row, "execID"), _int(row, "lastQty"), _float(row, "lastPx")
        if exec_id is None or qty is None or qty <= 0 or px is None:
            raise OrderError("execution row lacks execID, lastQty or lastPx")
        leaves = _int(row, "leavesQty")
        fill: Event = (Filled(exec_id, qty, px) if leaves == 0
                       else PartialFill(exec_id, qty, px, leaves))
        return self.apply(order.cl_ord_id, fill, now)
