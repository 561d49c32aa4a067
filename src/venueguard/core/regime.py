"""Outage regime: NORMAL / CAUTIOUS / SAFE / RECOVERING from per-minute error counts and market
intensity, with hysteresis (enter thresholds above exit thresholds) and a minimum dwell.

Public API::

    class Regime(Enum): NORMAL, CAUTIOUS, SAFE, RECOVERING        # .gauge -> 0..3
    RegimeConfig(...)                                              # thresholds, see below
    class RegimeDetector(config=None, now=0.0):
        on_outcome(kind: Kind, now) -> None     # every classified REST outcome
        on_intensity(value, now) -> None        # market intensity (~1 normal, higher in bursts)
        poll(now) -> list[RegimeChange]         # evaluate; transitions with their reason
        next_deadline() -> float | None
        score(now) -> float                     # weighted errors per minute
        buckets() -> list[MinuteBucket]         # per-minute history (oldest first)
        regime: Regime
    RegimeChange(from_, to, reason, score, intensity, at)

Per minute the detector counts 503s (kind ``overloaded``), timeouts (``ambiguous_timeout``) and
other failures; the venue's answers about one order (``ORDER_ANSWER_KINDS``: no such order, not
open, client id taken) are answers, not failures: the runtime's own lookups of an order in doubt
meet them, and they must not talk it into SAFE. The score is
``w_503 * n503 + w_timeout * ntimeout + w_other * nother`` over the
last ``window_s`` (a sliding window: the previous minute's counts weighted by the part of it
still inside the window). Each poll turns score and intensity into a signal:

    SEVERE     score >= safe_enter
    HIGH       score >  safe_exit                                    (SAFE holds)
    ELEVATED   score >= cautious_enter or intensity >= intensity_enter
    MILD       score >  cautious_exit  or intensity >  intensity_exit (CAUTIOUS holds)
    CALM       otherwise

and the table ``_TABLE`` gives the next regime. Moving up (to CAUTIOUS from NORMAL, to SAFE from
anywhere) happens at once; moving down (CAUTIOUS -> NORMAL, SAFE -> RECOVERING,
RECOVERING -> NORMAL) only after ``min_dwell_s`` in the current regime.
"""

from __future__ import annotations

import enum
import math
from collections import deque
from dataclasses import dataclass

from venueguard.core.kinds import ORDER_ANSWER_KINDS, Kind

__all__ = ["MinuteBucket", "Regime", "RegimeChange", "RegimeConfig", "RegimeDetector", "Signal"]


class Regime(enum.Enum):
    NORMAL = "NORMAL"
    CAUTIOUS = "CAUTIOUS"
    SAFE = "SAFE"
    RECOVERING = "RECOVERING"

    @property
    def gauge(self) -> int:
        """The ``venueguard_regime`` value: 0 NORMAL, 1 CAUTIOUS, 2 SAFE, 3 RECOVERING."""
        return list(Regime).index(self)


class Signal(enum.Enum):
    CALM = "calm"
    MILD = "mild"
    ELEVATED = "elevated"
    HIGH = "high"
    SEVERE = "severe"


_N, _C, _S, _R = Regime.NORMAL, Regime.CAUTIOUS, Regime.SAFE, Regime.RECOVERING
# (regime, signal) -> (next regime, needs the minimum dwell first)
_TABLE: dict[tuple[Regime, Signal], tuple[Regime, bool]] = {
    (_N, Signal.CALM): (_N, False),
    (_N, Signal.MILD): (_N, False),
    (_N, Signal.ELEVATED): (_C, False),
    (_N, Signal.HIGH): (_C, False),
    (_N, Signal.SEVERE): (_S, False),
    (_C, Signal.CALM): (_N, True),
    (_C, Signal.MILD): (_C, False),
    (_C, Signal.ELEVATED): (_C, False),
    (_C, Signal.HIGH): (_C, False),
    (_C, Signal.SEVERE): (_S, False),
    (_S, Signal.CALM): (_R, True),
    (_S, Signal.MILD): (_R, True),
    (_S, Signal.ELEVATED): (_R, True),
    (_S, Signal.HIGH): (_S, False),
    (_S, Signal.SEVERE): (_S, False),
    (_R, Signal.CALM): (_N, True),
    (_R, Signal.MILD): (_R, False),
    (_R, Signal.ELEVATED): (_R, False),  # still shaky: stay careful, do not bounce to CAUTIOUS
    (_R, Signal.HIGH): (_R, False),  # between exit and enter of SAFE: hysteresis holds
    (_R, Signal.SEVERE): (_S, False),
}


@dataclass(frozen=True, slots=True)
class RegimeConfig:
    bucket_s: float = 60.0
    window_s: float = 60.0
    history_buckets: int = 180  # per-minute buckets kept for buckets()
    weight_503: float = 1.0
    weight_timeout: float = 2.0  # a timeout costs more: the request may have been processed
    weight_other: float = 0.5
    cautious_enter: float = 5.0
    cautious_exit: float = 2.0
    safe_enter: float = 30.0
    safe_exit: float = 10.0
    intensity_enter: float = 3.0
    intensity_exit: float = 2.0
    min_dwell_s: float = 120.0
    eval_interval_s: float = 5.0  # how often poll wants to run while not NORMAL or not calm

    def __post_init__(self) -> None:
        if not (self.cautious_exit < self.cautious_enter and self.safe_exit < self.safe_enter):
            raise ValueError("each exit threshold must be below its enter threshold")
        if not self.cautious_enter <= self.safe_enter:
            raise ValueError("cautious_enter must be <= safe_enter")
        if not self.intensity_exit < self.intensity_enter:
            raise ValueError("intensity_exit must be below intensity_enter")
        if not (self.bucket_s > 0 and self.window_s > 0 and self.eval_interval_s > 0):
            raise ValueError("bucket_s, window_s and eval_interval_s must be > 0")
        if self.history_buckets < 2:
            raise ValueError("history_buckets must be >= 2")


@dataclass(slots=True)
class MinuteBucket:
    start_s: float
    n503: int = 0
    ntimeout: int = 0
    nother: int = 0
    nok: int = 0
    intensity_max: float = 0.0


@dataclass(frozen=True, slots=True)
class RegimeChange:
    from_: Regime
    to: Regime
    reason: str
    score: float
    intensity: float
    at: float


class RegimeDetector:
    """Regime over one venue. Times are monotonic seconds passed in, non-decreasing."""

    def __init__(self, config: RegimeConfig | None = None, now: float = 0.0) -> None:
        self.config = config or RegimeConfig()
        self.regime = Regime.NORMAL
        self.since = now
        self.intensity = 0.0
        self._buckets: deque[MinuteBucket] = deque(maxlen=self.config.history_buckets)
        self._last_eval: float | None = None

    def _bucket(self, now: float) -> MinuteBucket:
        start = math.floor(now / self.config.bucket_s) * self.config.bucket_s
        buckets = self._buckets
        if not buckets or buckets[-1].start_s < start:
            buckets.append(MinuteBucket(start))
        return buckets[-1]

    def on_outcome(self, kind: Kind, now: float) -> None:
        bucket = self._bucket(now)
        if kind is Kind.OK or kind in ORDER_ANSWER_KINDS:
            bucket.nok += 1
        elif kind is Kind.OVERLOADED:
            bucket.n503 += 1
        elif kind is Kind.AMBIGUOUS_TIMEOUT:
            bucket.ntimeout += 1
        else:
            bucket.nother += 1

    def on_intensity(self, value: float, now: float) -> None:
        self.intensity = max(0.0, value)
        bucket = self._bucket(now)
        bucket.intensity_max = max(bucket.intensity_max, self.intensity)

    def _weighted(self, bucket: MinuteBucket) -> float:
        cfg = self.config
        return (cfg.weight_503 * bucket.n503 + cfg.weight_timeout * bucket.ntimeout
                + cfg.weight_other * bucket.nother)

    def score(self, now: float) -> float:
        """Weighted failures in the sliding window ending at ``now``, per ``window_s``."""
        cfg = self.config
        edge = now - cfg.window_s
        total = 0.0
        for bucket in reversed(self._buckets):
            end = bucket.start_s + cfg.bucket_s
            if end <= edge:
                break
            if bucket.start_s >= edge:
                total += self._weighted(bucket)
            else:  # partly inside the window: count the share that is
                total += self._weighted(bucket) * (end - edge) / cfg.bucket_s
        return total * 60.0 / cfg.window_s

    def signal(self, score: float, intensity: float) -> Signal:
        cfg = self.config
        if score >= cfg.safe_enter:
            return Signal.SEVERE
        if score > cfg.safe_exit:
            return Signal.HIGH
        if score >= cfg.cautious_enter or intensity >= cfg.intensity_enter:
            return Signal.ELEVATED
        if score > cfg.cautious_exit or intensity > cfg.intensity_exit:
            return Signal.MILD
        return Signal.CALM

    def poll(self, now: float) -> list[RegimeChange]:
        """Evaluate at ``now``; returns the transition made, if any (at most one per poll)."""
        self._last_eval = now
        score = self.score(now)
        signal = self.signal(score, self.intensity)
        target, needs_dwell = _TABLE[(self.regime, signal)]
        if target is self.regime or (needs_dwell and now < self.since + self.config.min_dwell_s):
            return []
        change = RegimeChange(self.regime, target, self._reason(target, score), score,
                              self.intensity, now)
        self.regime = target
        self.since = now
        return [change]

    def _reason(self, target: Regime, score: float) -> str:
        cfg = self.config
        text = f"score {score:.1f}/min"
        if target is Regime.SAFE:
            return f"{text} >= safe_enter {cfg.safe_enter:g}"
        if target is Regime.CAUTIOUS:
            if score >= cfg.cautious_enter:
                return f"{text} >= cautious_enter {cfg.cautious_enter:g}"
            return f"market intensity {self.intensity:.2f} >= {cfg.intensity_enter:g}"
        if target is Regime.RECOVERING:
            return f"{text} <= safe_exit {cfg.safe_exit:g} after {cfg.min_dwell_s:g} s in SAFE"
        return (f"{text} <= cautious_exit {cfg.cautious_exit:g} and intensity "
                f"{self.intensity:.2f} <= {cfg.intensity_exit:g}")

    def next_deadline(self) -> float | None:
        """When to poll next: periodically while anything is going on, else None."""
        busy = self.regime is not Regime.NORMAL or self.intensity > self.config.intensity_exit
        if not busy and self._buckets:
            last = self._buckets[-1]
            busy = last.n503 + last.ntimeout + last.nother > 0
        if not busy:
            return None
        base = self._last_eval if self._last_eval is not None else self.since
        return base + self.config.eval_interval_s

    def buckets(self) -> list[MinuteBucket]:
        """Per-minute counts, oldest first (copies)."""
        return [MinuteBucket(b.start_s, b.n503, b.ntimeout, b.nother, b.nok, b.intensity_max)
                for b in self._buckets]
