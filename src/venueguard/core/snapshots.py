"""Snapshot manager: the market feature vector on a fixed cadence, and the snapshots it missed.

A snapshot is what a predictor sees: spread, imbalance, top-of-book churn, trade rate, volume per
second, gap events, the outage regime and the venue's health, taken every ``interval_s`` seconds.
A snapshot is produced only from a book that is fresh and sane; otherwise the slot is counted as
missing, with the reason, so that "the model went quiet" can be told apart from "the data stopped".

Call order (all times are monotonic seconds passed in, nothing reads a clock):

1. ``SnapshotManager(symbol, config, start=now)``.
2. Feed facts as they arrive: ``on_top(best_bid, best_ask, now)`` on every book change (churn),
   ``on_trade(size, now)`` per trade, ``on_gap(now)`` per book gap or resync. A caller that
   polls counters instead feeds increments: ``on_top_changes(n, now)``, ``on_trades(n, volume,
   now)``.
3. Sleep until ``next_deadline()``, then call ``poll(now, view)`` with a :class:`MarketView` of the
   book and health at that moment. It returns the outcomes for every slot that came due: at most one
   :class:`Snapshot`, and :class:`MissedSnapshot` records for slots that were skipped (the caller
   slept too long: ``SLIPPED``) or whose book was stale or invalid.
4. ``stats()`` at any time: produced and missing counts and the missing ratio.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

# Numeric codes of the categorical features: the state order of docs/metrics.md.
REGIME_CODES: Mapping[str, int] = {"NORMAL": 0, "CAUTIOUS": 1, "SAFE": 2, "RECOVERING": 3}
VENUE_STATE_CODES: Mapping[str, int] = {"HEALTHY": 0, "DEGRADED": 1, "COOLDOWN": 2, "BLOCKED": 3}

FEATURE_NAMES: tuple[str, ...] = (
    "spread",
    "spread_bps",
    "imbalance",
    "churn_per_s",
    "trade_rate_per_s",
    "volume_per_s",
    "gap_events",
    "last_trade_age_s",
    "data_age_s",
    "regime",
    "venue_state",
)


@dataclass(frozen=True, slots=True)
class SnapshotConfig:
    """How often snapshots are taken and over which trailing window rates are measured."""

    interval_s: float = 1.0
    window_s: float = 10.0
    imbalance_spike: float = 0.6  # |imbalance| at or above this counts as a spike
    # Stricter than the book's own freshness if set: a book older than this is not snapshotted
    # (a model should not see a frozen book as the present market).
    max_data_age_s: float | None = None
    max_window_events: int = 200_000  # memory bound on the trailing windows under hostile rates

    def __post_init__(self) -> None:
        if not (math.isfinite(self.interval_s) and self.interval_s > 0):
            raise ValueError(f"interval_s must be a positive number, got {self.interval_s!r}")
        if not (math.isfinite(self.window_s) and self.window_s >= self.interval_s):
            raise ValueError(f"window_s must be >= interval_s, got {self.window_s!r}")
        if not 0 < self.imbalance_spike <= 1:
            raise ValueError(f"imbalance_spike must be in (0, 1], got {self.imbalance_spike!r}")
        if self.max_window_events < 1:
            raise ValueError("max_window_events must be >= 1")
        if self.max_data_age_s is not None and not self.max_data_age_s > 0:
            raise ValueError(f"max_data_age_s must be > 0, got {self.max_data_age_s!r}")


@dataclass(frozen=True, slots=True)
class MarketView:
    """The book and health facts at the moment a snapshot is due.

    ``fresh`` is the book's own verdict (partial received, data within the freshness bound).
    ``bid_qty``/``ask_qty`` are the resting quantities near the top used for the imbalance.
    """

    fresh: bool
    best_bid: float | None
    best_ask: float | None
    bid_qty: float = 0.0
    ask_qty: float = 0.0
    data_age_s: float | None = None
    regime: str = "NORMAL"
    venue_state: str = "HEALTHY"


class MissReason(enum.Enum):
    STALE_BOOK = "stale_book"  # the book says it is not fresh
    INVALID_BOOK = "invalid_book"  # a side is missing, crossed, or not a finite price
    SLIPPED = "slipped"  # the caller woke too late and the slot passed


@dataclass(frozen=True, slots=True)
class MissedSnapshot:
    due: float
    reason: MissReason
    slots: int = 1
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One feature vector. ``ts`` is the monotonic time it was taken."""

    seq: int
    ts: float
    symbol: str
    best_bid: float
    best_ask: float
    mid: float
    spread: float
    spread_bps: float
    imbalance: float
    churn_per_s: float
    trade_rate_per_s: float
    volume_per_s: float
    gap_events: int
    last_trade_age_s: float | None
    data_age_s: float | None
    regime: str
    venue_state: str

    def features(self) -> tuple[float, ...]:
        """The numeric vector in :data:`FEATURE_NAMES` order (unknown ages are -1)."""
        return (
            self.spread,
            self.spread_bps,
            self.imbalance,
            self.churn_per_s,
            self.trade_rate_per_s,
            self.volume_per_s,
            float(self.gap_events),
            -1.0 if self.last_trade_age_s is None else self.last_trade_age_s,
            -1.0 if self.data_age_s is None else self.data_age_s,
            float(REGIME_CODES.get(self.regime, -1)),
            float(VENUE_STATE_CODES.get(self.venue_state, -1)),
        )

    def as_dict(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class SnapshotStats:
    produced: int
    missing: int
    missing_by_reason: Mapping[str, int] = field(default_factory=dict)
    imbalance_spikes: int = 0
    rejected_inputs: int = 0

    @property
    def missing_ratio(self) -> float:
        """Missing slots over all slots that came due (0.0 before the first one)."""
        total = self.produced + self.missing
        return self.missing / total if total else 0.0


def _finite_positive(x: float | None) -> bool:
    return x is not None and math.isfinite(x) and x > 0


class SnapshotManager:
    """Builds :class:`Snapshot` objects on a fixed cadence (call order: module docstring)."""

    def __init__(self, symbol: str, config: SnapshotConfig | None = None, *, start: float) -> None:
        self.symbol = symbol
        self.config = config or SnapshotConfig()
        self._start = start
        self._due = start + self.config.interval_s
        self._last_now = start
        self._seq = 0
        self._produced = 0
        self._missing: dict[str, int] = {r.value: 0 for r in MissReason}
        self._spikes = 0
        self._rejected = 0
        cap = self.config.max_window_events
        self._churn: deque[tuple[float, int]] = deque(maxlen=cap)
        self._trades: deque[tuple[float, int, float]] = deque(maxlen=cap)
        self._gaps: deque[float] = deque(maxlen=cap)
        self._top: tuple[float, float] | None = None
        self._last_trade_at: float | None = None

    # -- feeds -------------------------------------------------------------------------------
    def on_top(self, best_bid: float | None, best_ask: float | None, now: float) -> None:
        """Record the current top of book; a change of best bid or best ask counts as churn."""
        if best_bid is None or best_ask is None:
            return
        if not (math.isfinite(best_bid) and math.isfinite(best_ask)):
            self._rejected += 1
            return
        top = (best_bid, best_ask)
        if self._top is not None and top != self._top:
            self._churn.append((self._clamp(now), 1))
        self._top = top

    def on_top_changes(self, count: int, now: float) -> None:
        """Record ``count`` best bid/ask changes that happened since the previous call."""
        if count > 0:
            self._churn.append((self._clamp(now), count))
        elif count < 0:
            self._rejected += 1

    def on_trade(self, size: float, now: float) -> None:
        """Record one trade of ``size`` contracts; negative or non-finite sizes are only counted."""
        if not (math.isfinite(size) and size >= 0):
            self._rejected += 1
            return
        at = self._clamp(now)
        self._trades.append((at, 1, size))
        self._last_trade_at = at

    def on_trades(self, count: int, volume: float, now: float,
                  last_trade_at: float | None = None) -> None:
        """Record ``count`` trades of ``volume`` contracts in all since the previous call;
        ``last_trade_at`` is when the newest of them arrived (default ``now``)."""
        if count < 0 or not (math.isfinite(volume) and volume >= 0):
            self._rejected += 1
            return
        if count == 0:
            return
        at = self._clamp(now)
        self._trades.append((at, count, volume))
        self._last_trade_at = at if last_trade_at is None else min(at, last_trade_at)

    def on_gap(self, now: float) -> None:
        """Record a gap event: levels vanished, a sequence gap, or a resync from a new partial."""
        self._gaps.append(self._clamp(now))

    # -- drain -------------------------------------------------------------------------------
    def next_deadline(self) -> float:
        return self._due

    def poll(self, now: float, view: MarketView) -> list[Snapshot | MissedSnapshot]:
        """Outcomes for every slot due at or before ``now`` (empty when none is due)."""
        now = self._clamp(now)
        if now < self._due:
            return []
        interval = self.config.interval_s
        skipped = int((now - self._due) // interval)
        out: list[Snapshot | MissedSnapshot] = []
        if skipped:
            self._missing[MissReason.SLIPPED.value] += skipped
            out.append(MissedSnapshot(self._due, MissReason.SLIPPED, skipped,
                                      f"woke {now - self._due:.3f}s after the slot"))
        due = self._due + skipped * interval
        self._due = due + interval
        self._trim(now)
        out.append(self._take(due, now, view))
        return out

    def stats(self) -> SnapshotStats:
        return SnapshotStats(
            produced=self._produced,
            missing=sum(self._missing.values()),
            missing_by_reason=dict(self._missing),
            imbalance_spikes=self._spikes,
            rejected_inputs=self._rejected,
        )

    # -- internals ---------------------------------------------------------------------------
    def _clamp(self, now: float) -> float:
        # A monotonic clock never goes back; if a caller's does, time stands still instead.
        if now > self._last_now:
            self._last_now = now
        return self._last_now

    def _trim(self, now: float) -> None:
        horizon = now - self.config.window_s
        while self._churn and self._churn[0][0] <= horizon:
            self._churn.popleft()
        while self._trades and self._trades[0][0] <= horizon:
            self._trades.popleft()
        while self._gaps and self._gaps[0] <= horizon:
            self._gaps.popleft()

    def _take(self, due: float, now: float, view: MarketView) -> Snapshot | MissedSnapshot:
        limit = self.config.max_data_age_s
        too_old = limit is not None and (view.data_age_s is None or view.data_age_s > limit)
        if not view.fresh or too_old:
            self._missing[MissReason.STALE_BOOK.value] += 1
            age = "unknown" if view.data_age_s is None else f"{view.data_age_s:.3f}s"
            return MissedSnapshot(due, MissReason.STALE_BOOK, 1, f"book not fresh (data age {age})")
        bid, ask = view.best_bid, view.best_ask
        if not (_finite_positive(bid) and _finite_positive(ask)) or bid is None or ask is None:
            self._missing[MissReason.INVALID_BOOK.value] += 1
            return MissedSnapshot(due, MissReason.INVALID_BOOK, 1, f"bid={bid!r} ask={ask!r}")
        if bid >= ask:
            self._missing[MissReason.INVALID_BOOK.value] += 1
            return MissedSnapshot(due, MissReason.INVALID_BOOK, 1, f"crossed book {bid} >= {ask}")
        window = max(self.config.interval_s, min(self.config.window_s, now - self._start))
        mid = (bid + ask) / 2.0
        spread = ask - bid
        depth = max(view.bid_qty, 0.0) + max(view.ask_qty, 0.0)
        imbalance = (max(view.bid_qty, 0.0) - max(view.ask_qty, 0.0)) / depth if depth > 0 else 0.0
        if abs(imbalance) >= self.config.imbalance_spike:
            self._spikes += 1
        self._seq += 1
        self._produced += 1
        return Snapshot(
            seq=self._seq,
            ts=now,
            symbol=self.symbol,
            best_bid=bid,
            best_ask=ask,
            mid=mid,
            spread=spread,
            spread_bps=spread / mid * 10_000.0,
            imbalance=imbalance,
            churn_per_s=sum(n for _, n in self._churn) / window,
            trade_rate_per_s=sum(n for _, n, _ in self._trades) / window,
            volume_per_s=sum(v for _, _, v in self._trades) / window,
            gap_events=len(self._gaps),
            last_trade_age_s=None if self._last_trade_at is None else now - self._last_trade_at,
            data_age_s=view.data_age_s,
            regime=view.regime,
            venue_state=view.venue_state,
        )
