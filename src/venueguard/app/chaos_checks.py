"""The invariants of ``docs/invariants.md``, as pure checks over what one chaos seed observed.

Each check takes the venue's ground truth (``GET /_sim/truth``) and the client's side, and returns
:class:`Violation` records (empty when the invariant holds). Numbers follow ``docs/invariants.md``:

1. no intent placed twice: at most one venue order per clOrdID and per intent (the trader tags
   each intent's ``text``, so a client that re-sends under a new clOrdID is caught too);
2. after the faults end plus the grace period, every venue order is known locally and an order
   is believed open locally iff it is open at the venue (no UNKNOWN left);
3. local position == venue position;
4. nothing older than the staleness bound reached a consumer marked fresh (the consumer-side
   instrument of :mod:`venueguard.app.chaos_seed` reports what it saw);
5. requests on the wire (the simulator's counters) within the retry budget's bound;
6. no unhandled exception, every task ended, memory bounded;
7. same seed, same decisions (plan fingerprints; the journal's order events replayed through a
   fresh order state machine give the journaled transitions).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from venueguard.core import orders as core_orders
from venueguard.core.budget import BudgetConfig
from venueguard.core.reports import OrderStatus

__all__ = [
    "LocalOrder",
    "Violation",
    "check_budget",
    "check_converged",
    "check_no_double",
    "check_position",
    "replay_transitions",
    "retry_bound",
    "stale_by_ms",
]

VENUE_OPEN = frozenset({"New", "PartiallyFilled"})
LOCAL_OPEN = frozenset(s.value for s in core_orders.OPEN_STATES)
API_PREFIXES = ("GET /api/v1", "POST /api/v1", "PUT /api/v1", "DELETE /api/v1")


@dataclass(frozen=True, slots=True)
class Violation:
    invariant: int
    message: str

    def __str__(self) -> str:
        return f"invariant {self.invariant}: {self.message}"


@dataclass(frozen=True, slots=True)
class LocalOrder:
    cl_ord_id: str
    order_id: str | None
    state: str  # core OrderState value


def _ours(truth: Mapping[str, Any], symbol: str) -> list[Mapping[str, Any]]:
    return [o for o in truth.get("orders", []) if o.get("symbol") == symbol]


def _intent_tag(row: Mapping[str, Any]) -> str:
    """The ``text`` the client gave an order: the venue prepends a line for each later event
    (``Canceled: Canceled via API.\nchaos-3-4``), so the client's own text is the last line."""
    return str(row.get("text") or "").rsplit("\n", 1)[-1]


def check_no_double(truth: Mapping[str, Any], symbol: str, intent_prefix: str) -> list[Violation]:
    """Invariant 1: per clOrdID and per intent tag (``text`` starting with ``intent_prefix``)."""
    rows = _ours(truth, symbol)
    out: list[Violation] = []
    by_cl = Counter(str(r.get("clOrdID") or "") for r in rows)
    for cl, n in sorted(by_cl.items()):
        if cl and n > 1:
            out.append(Violation(1, f"clOrdID {cl} placed {n} times at the venue"))
    by_intent = Counter(tag for r in rows if (tag := _intent_tag(r)).startswith(intent_prefix))
    for tag, n in sorted(by_intent.items()):
        if n > 1:
            ids = sorted(str(r.get("clOrdID")) for r in rows if _intent_tag(r) == tag)
            out.append(Violation(1, f"intent {tag} placed {n} times at the venue "
                                    f"(clOrdIDs {', '.join(ids)})"))
    return out


def check_converged(truth: Mapping[str, Any], symbol: str,
                    local: Iterable[LocalOrder]) -> list[Violation]:
    """Invariant 2 (call after the faults end; poll it until empty or the grace runs out)."""
    local_list = list(local)
    by_cl = {o.cl_ord_id: o for o in local_list}
    by_oid = {o.order_id: o for o in local_list if o.order_id}
    out: list[Violation] = []
    venue_open: set[str] = set()
    for row in _ours(truth, symbol):
        cl, oid, status = str(row.get("clOrdID") or ""), row.get("orderID"), row.get("ordStatus")
        mine = by_cl.get(cl) or by_oid.get(str(oid)) or by_cl.get(f"venue:{oid}")
        if mine is None:
            out.append(Violation(2, f"venue order {cl or oid} ({status}) unknown locally"))
            continue
        if status in VENUE_OPEN:
            venue_open.add(mine.cl_ord_id)
            if mine.state not in LOCAL_OPEN:
                out.append(Violation(2, f"{mine.cl_ord_id} open at the venue, {mine.state} "
                                        "locally"))
    for order in local_list:
        if order.state == "UNKNOWN":
            out.append(Violation(2, f"{order.cl_ord_id} still UNKNOWN"))
        elif order.state in LOCAL_OPEN and order.cl_ord_id not in venue_open:
            out.append(Violation(2, f"{order.cl_ord_id} believed {order.state} locally, "
                                    "not open at the venue (phantom)"))
    return out


def venue_position(truth: Mapping[str, Any], symbol: str) -> int:
    for row in truth.get("positions", []):
        if row.get("symbol") == symbol:
            return int(row.get("currentQty") or 0)
    return 0


def check_position(truth: Mapping[str, Any], symbol: str, local_qty: float) -> list[Violation]:
    """Invariant 3."""
    venue = venue_position(truth, symbol)
    if venue != local_qty:
        return [Violation(3, f"position {symbol}: local {local_qty}, venue {venue}")]
    return []


def api_requests(truth: Mapping[str, Any]) -> int:
    """Requests the venue received on its REST API (control routes excluded)."""
    counts: Mapping[str, int] = truth.get("requests", {})
    return sum(int(n) for key, n in counts.items() if key.startswith(API_PREFIXES))


def retry_bound(logical: int, duration_s: float, budget: BudgetConfig) -> float:
    """The most retries a :class:`~venueguard.core.budget.RetryBudget` can grant.

    Cut the run into blocks of ``window_s``; every retry of a block was granted inside one
    window, so a block holds at most ``ratio x requests of it and the block before`` plus
    ``min_per_s x window_s``: summed, ``2 x ratio x logical + min_per_s x window_s x blocks``.
    """
    blocks = math.ceil(max(duration_s, 0.0) / budget.window_s) + 1
    return 2 * budget.ratio * logical + budget.min_per_s * budget.window_s * blocks


def check_budget(truth: Mapping[str, Any], *, logical: int, sent: int, duration_s: float,
                 budget: BudgetConfig, max_attempts: int) -> list[Violation]:
    """Invariant 5: what reached the venue vs the client's logical requests."""
    received = api_requests(truth)
    out: list[Violation] = []
    if received > sent:
        out.append(Violation(5, f"venue received {received} requests, client says it sent {sent}"))
    limit = logical + retry_bound(logical, duration_s, budget)
    if received > limit:
        out.append(Violation(5, f"{received} requests for {logical} logical ones exceeds the "
                                f"budget bound {limit:.0f}"))
    if received > logical * max_attempts:
        out.append(Violation(5, f"{received} requests for {logical} logical ones exceeds "
                                f"{max_attempts} attempts each"))
    return out


def stale_by_ms(ts_ms: int | None, now_ms: int, bound_ms: int) -> int | None:
    """Invariant 4's judgment of one piece of data: its age (``now_ms`` on the simulator's clock
    minus the venue's timestamp ``ts_ms``) when that is beyond ``bound_ms``, else None (fresh,
    or no timestamp to judge by)."""
    if ts_ms is None:
        return None
    age_ms = now_ms - ts_ms
    return age_ms if age_ms > bound_ms else None


def _event(payload: Mapping[str, Any]) -> core_orders.Event:
    fields = dict(payload)
    cls = getattr(core_orders, str(fields.pop("type")))
    for name in ("status", "venue_status"):      # journaled as the status's text
        if isinstance(fields.get(name), str):
            fields[name] = OrderStatus(fields[name])
    event: core_orders.Event = cls(**fields)
    return event


def replay_transitions(order: Mapping[str, Any],
                       history: Sequence[tuple[str | None, str, Mapping[str, Any]]],
                       ) -> list[Violation]:
    """Invariant 7: apply the journaled events of one order to a fresh order state machine.

    ``order`` has cl_ord_id, symbol, side, qty, price, adopted; ``history`` is (from_state,
    to_state, payload) per journaled row, oldest first (the intent row has no from_state).
    The replay must take the same transitions.
    """
    cl = str(order["cl_ord_id"])
    start = core_orders.OrderState.UNKNOWN if order.get("adopted") else \
        core_orders.OrderState.PENDING_NEW
    fresh = core_orders.Order(cl, str(order["symbol"]), str(order["side"]), float(order["qty"]),
                              order.get("price"), 0.0, 0, state=start,
                              adopted=bool(order.get("adopted")))
    for step, (from_state, to_state, payload) in enumerate(history):
        if from_state is None:          # the intent row: the order as created
            if to_state != fresh.state.value:
                return [Violation(7, f"{cl}: journaled as {to_state} at creation")]
            continue
        if fresh.state.value != from_state:
            return [Violation(7, f"{cl} step {step}: replay in {fresh.state.value}, journal "
                                 f"says {from_state}")]
        try:
            fresh.apply(_event(payload), float(step))
        except (core_orders.OrderError, TypeError, AttributeError, KeyError) as exc:
            return [Violation(7, f"{cl} step {step}: replay refused the journaled event "
                                 f"({exc})")]
        if fresh.state.value != to_state:
            return [Violation(7, f"{cl} step {step}: replay reached {fresh.state.value}, journal "
                                 f"says {to_state}")]
    return []
