"""A periodic sweep's answers, read by one member of a fleet and taken by the others, as data.

Bots sharing an account each sweep their open orders and the executions since their last
sweep every ``sweep_interval_s``: the same two answers, N times. A :class:`SweepSnapshot` is
one member's answers (the account's whole lists, every member's orders, with the wall times
they were asked at), kept in the fleet's store; another member whose sweep comes due takes it
instead of asking the venue when it is :func:`usable` for it:

- answered at most ``max_age_s`` ago (the freshness bound: a read waits its turn under the
  shared limit before it is sent, so the answer, not the question, dates what the venue
  showed), and, for the first sweep after a start, asked after that start
  (``not_before_wall_ms``: never an answer older than the journal the member just loaded);
- its executions count only when they reach back far enough for the member (:func:`covers`).

The snapshot's question time is the sweep's: the reconciler's visibility grace counts from
it, and a row about an order that changed after that time says nothing about it (see
:func:`still_evidence`): an answer asked before a write is never evidence against the write.

Public API::

    ShareConfig(max_age_s=10.0, max_wait_s=15.0, postpone_s=1.0, fills_lookback_s=70.0)
    SweepSnapshot(symbol, asked_wall_ms, answered_wall_ms, orders,
                  fills_from_ms, fills_asked_wall_ms, fills)
    usable(snap, symbol=, now_wall_ms=, config=, not_before_wall_ms=) -> bool
    covers(snap, from_ms) -> bool
    still_evidence(state_since, asked_at) -> bool
    encode(snap) -> bytes;  decode(raw) -> SweepSnapshot | None   # None: not a snapshot
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from venueguard.core.reports import FillReport, OrderReport, OrderStatus

__all__ = ["ShareConfig", "SweepSnapshot", "covers", "decode", "encode", "still_evidence",
           "usable"]


@dataclass(frozen=True, slots=True)
class ShareConfig:
    """``max_age_s``: the oldest answer a member takes instead of its own sweep.
    ``postpone_s``: while another member is reading, a member whose sweep is due looks again
    this much later, never longer in all than ``max_wait_s`` (then it asks itself; a claim
    on the read lasts ``max_wait_s + max_age_s`` at most). ``fills_lookback_s``: the member
    that reads asks the executions this far back at least, so that the others' sweeps (due
    within about one interval) are covered too."""

    max_age_s: float = 10.0
    max_wait_s: float = 15.0
    postpone_s: float = 1.0
    fills_lookback_s: float = 70.0

    def __post_init__(self) -> None:
        if not (self.max_age_s > 0 and self.max_wait_s >= 0 and self.postpone_s > 0
                and self.fills_lookback_s >= 0):
            raise ValueError("max_age_s > 0, max_wait_s >= 0, postpone_s > 0 and "
                             "fills_lookback_s >= 0 needed")

    @property
    def claim_ttl_s(self) -> float:
        return self.max_wait_s + self.max_age_s


@dataclass(frozen=True, slots=True)
class SweepSnapshot:
    """The account's open orders in ``symbol`` (None: every symbol), asked at
    ``asked_wall_ms`` and answered at ``answered_wall_ms``; the executions since
    ``fills_from_ms``, asked at ``fills_asked_wall_ms`` (both None with no executions: the
    reader could not get them)."""

    symbol: str | None
    asked_wall_ms: int
    answered_wall_ms: int
    orders: tuple[OrderReport, ...]
    fills_from_ms: int | None = None
    fills_asked_wall_ms: int | None = None
    fills: tuple[FillReport, ...] = ()


def usable(snap: SweepSnapshot, *, symbol: str | None, now_wall_ms: int, config: ShareConfig,
           not_before_wall_ms: int | None = None) -> bool:
    """Whether a member may take ``snap`` instead of its own sweep (see the module docstring)."""
    if snap.symbol != symbol or not snap.asked_wall_ms <= snap.answered_wall_ms <= now_wall_ms:
        return False               # another symbol, or a clock that disagrees: ask yourself
    if not_before_wall_ms is not None and snap.asked_wall_ms < not_before_wall_ms:
        return False
    return now_wall_ms - snap.answered_wall_ms <= config.max_age_s * 1000


def covers(snap: SweepSnapshot, from_ms: int) -> bool:
    """Whether the snapshot's executions include every one since ``from_ms``."""
    return snap.fills_from_ms is not None and snap.fills_asked_wall_ms is not None \
        and snap.fills_from_ms <= from_ms


def still_evidence(state_since: float, asked_at: float) -> bool:
    """Whether a row asked at ``asked_at`` speaks of an order's current state, which it has
    held since ``state_since`` (both monotonic): not when the order changed after the
    question (a cancel or amend sent since: the row shows what it was)."""
    return state_since <= asked_at


# --------------------------------------------------------------------------- the record
_ORDER_FIELDS = frozenset(f.name for f in fields(OrderReport))
_FILL_FIELDS = frozenset(f.name for f in fields(FillReport))
_NUMBERS = frozenset({"qty", "price", "filled_qty", "leaves_qty", "avg_price", "fee",
                      "order_qty"})
_INTS = frozenset({"ts_venue_ms"})
_FILL_NEEDS = frozenset({"exec_id", "qty", "price"})


def encode(snap: SweepSnapshot) -> bytes:
    return json.dumps({"symbol": snap.symbol, "asked_wall_ms": snap.asked_wall_ms,
                       "answered_wall_ms": snap.answered_wall_ms,
                       "orders": [asdict(r) for r in snap.orders],
                       "fills_from_ms": snap.fills_from_ms,
                       "fills_asked_wall_ms": snap.fills_asked_wall_ms,
                       "fills": [asdict(f) for f in snap.fills]},
                      separators=(",", ":")).encode()


def decode(raw: bytes | str | None) -> SweepSnapshot | None:
    """The snapshot in ``raw``, or None when there is none or it is not one whole (a member
    never acts on a record it cannot read: it asks the venue itself)."""
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
        symbol, asked, answered = doc["symbol"], doc["asked_wall_ms"], doc["answered_wall_ms"]
        fills_from, fills_asked = doc["fills_from_ms"], doc["fills_asked_wall_ms"]
        if not (symbol is None or isinstance(symbol, str)) or type(asked) is not int \
                or type(answered) is not int \
                or not all(v is None or type(v) is int for v in (fills_from, fills_asked)) \
                or not isinstance(doc["orders"], list) or not isinstance(doc["fills"], list):
            return None
        orders = tuple(OrderReport(**_row(row, _ORDER_FIELDS)) for row in doc["orders"])
        fills = tuple(FillReport(**_row(row, _FILL_FIELDS, _FILL_NEEDS)) for row in doc["fills"])
    except (ValueError, KeyError, TypeError):
        return None
    return SweepSnapshot(symbol, asked, answered, orders, fills_from, fills_asked, fills)


def _row(row: object, names: frozenset[str], needs: frozenset[str] = frozenset()
         ) -> dict[str, Any]:
    if not isinstance(row, dict) or set(row) != names \
            or any(row[name] is None for name in needs):
        raise ValueError("not a report row")
    out: dict[str, Any] = {}
    for name, value in row.items():
        if value is None:
            pass
        elif name in _NUMBERS:
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ValueError(f"bad {name}")
            value = float(value)
        elif name in _INTS:
            if type(value) is not int:
                raise ValueError(f"bad {name}")
        elif not isinstance(value, str):
            raise ValueError(f"bad {name}")
        elif name == "status":
            value = OrderStatus(value)
        out[name] = value
    return out
