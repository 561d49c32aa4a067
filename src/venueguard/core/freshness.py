"""Learned data freshness: each channel's own idea of how long a silence may normally last.

A fixed data-age threshold is wrong both ways: a liquid book that changes every few milliseconds
is traded on for the whole threshold after it died, and a thin symbol that trades once a minute
is flagged stale in its normal quiet. An accrual failure detector (the phi detector of
Hayashibara et al.) instead learns each channel's inter-arrival distribution and turns the
current silence into a *suspicion level* ``phi = -log10 P(a normal silence lasts this long)``.

Public API::

    FreshnessConfig(enabled=True, suspicion=8.0, floor_s=1.0, max_s=60.0, warmup=100,
                    warmup_s=30.0, rewarm=20, half_life_s=600.0, tail_fraction=0.02, margin=2.0)
    class ChannelFreshness(config, static_s):       # one per channel, kept across reconnects
        on_arrival(now)                              # every accepted data message
        on_connect(now)                              # a new connection: re-warm, no gap learned
        threshold_s: float                           # the silence that is stale, now
        learned: bool                                # False while (re)warming: threshold = static
        suspicion(now) -> float | None               # phi of the current silence (None: warming)
        stalls: int                                  # silences >= threshold, never learned
    class FreshnessModels(config):                   # the detectors of one session, by channel
        channel(name, static_s) -> ChannelFreshness
        on_connect(now)
        items() -> iterable of (name, ChannelFreshness)

The model (chosen by measurement, see docs/performance.md "Learned freshness"): a histogram of
the channel's gaps in half-octave bins (1 ms to about 17 min, 42 floats; messages less than a
millisecond apart count as one arrival), every gap weighted
``2 ** (t / half_life_s)`` so that old gaps fade (constant memory, no window to keep). Below the
upper tail the survival function ``P(gap > t)`` is read from the histogram; the upper tail (the
``tail_fraction`` longest gaps, at least a few) is fitted with an exponential whose scale is the
tail's mean excess, as in a peaks-over-threshold fit. Neither a normal tail on the gaps (Akka's
detector) nor an exponential on all of them (Cassandra's) survives a bursty market: the first
flags every pause after a burst, the second is either far too loose or too tight depending on the
regime. The threshold is the silence whose suspicion reaches ``suspicion``, never below
``margin`` times the longest gap the model still remembers, clamped to ``[floor_s, max_s]``.

Regimes: quiet hours add long gaps to the tail and the threshold widens at once; a burst adds
many short gaps and the long ones weigh less, so it tightens; old gaps fade with ``half_life_s``.
A stall is never learned: a gap at or past the threshold in force when it ended counts in
``stalls`` and leaves the model as it was, so a dead stream cannot teach the model that long
silences are normal. Until ``warmup`` gaps are learned over at least ``warmup_s`` (a rare
long gap needs time to show up), and for ``rewarm`` gaps after each
reconnect (the first gap of a connection is the subscription, not the market's rhythm, and is
not learned), the threshold is the channel's static one.

Everything is sans-I/O: ``now`` is monotonic seconds passed in.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["ChannelFreshness", "FreshnessConfig", "FreshnessModels"]

_BASE_S = 0.001  # lower edge of bin 1 (shorter gaps all land in bin 0)
_RATIO = math.sqrt(2.0)  # half-octave bins
_BINS = 42  # the top bin starts at about 1,000 s and takes every longer gap
_INV_LOG_RATIO = 1.0 / math.log(_RATIO)
_LOWER = tuple(0.0 if k == 0 else _BASE_S * _RATIO ** (k - 1) for k in range(_BINS))
_MIDDLE = tuple(_BASE_S / 2 if k == 0 else _BASE_S * _RATIO ** (k - 0.5) for k in range(_BINS))
_MIN_TAIL = 3.0  # the tail fit uses at least this many (decayed) gaps
_FORGOTTEN = 0.05  # a bin lighter than this (decayed gaps) is no longer remembered
_REFRESH_S = 0.25  # the threshold is recomputed at most this often
_RENORMALISE = 1e12
_LN10 = math.log(10.0)


@dataclass(frozen=True, slots=True)
class FreshnessConfig:
    """How each channel learns its freshness threshold (one config shared by every channel).

    ``enabled=False`` keeps the static thresholds of :class:`~venueguard.core.liveness
    .LivenessConfig`. ``suspicion`` is phi: a silence is stale once the model gives it a
    probability below ``10 ** -suspicion``.
    """

    enabled: bool = True
    suspicion: float = 8.0
    floor_s: float = 1.0
    max_s: float = 60.0
    warmup: int = 100
    warmup_s: float = 30.0
    rewarm: int = 20
    half_life_s: float = 600.0
    tail_fraction: float = 0.02
    margin: float = 2.0

    def __post_init__(self) -> None:
        if not self.suspicion > 0:
            raise ValueError("suspicion must be > 0")
        if not 0 < self.floor_s <= self.max_s or not math.isfinite(self.max_s):
            raise ValueError("need 0 < floor_s <= max_s (finite)")
        if self.warmup < 1 or self.rewarm < 0 or not self.warmup_s >= 0:
            raise ValueError("warmup must be >= 1, warmup_s >= 0 and rewarm >= 0")
        if not self.half_life_s > 0:
            raise ValueError("half_life_s must be > 0")
        if not 0 < self.tail_fraction < 1:
            raise ValueError("tail_fraction must be in (0, 1)")
        if not self.margin >= 1:
            raise ValueError("margin must be >= 1")


class ChannelFreshness:
    """The learned freshness of one channel (see the module docstring)."""

    __slots__ = (
        "_beta", "_config", "_decay", "_first", "_last", "_next_refresh", "_p_tail",
        "_rewarm_left", "_t_ref", "_top", "_total", "_u", "_unit", "_weights", "learned",
        "learned_gaps", "stalls", "static_s", "threshold_s",
    )

    def __init__(self, config: FreshnessConfig, static_s: float) -> None:
        self._config = config
        self.static_s = static_s
        self.threshold_s = static_s
        self.learned = False
        self.learned_gaps = 0
        self.stalls = 0
        self._weights = [0.0] * _BINS
        self._total = 0.0
        self._decay = math.log(2.0) / config.half_life_s
        self._t_ref: float | None = None
        self._unit = 1.0  # the weight of a gap learned now, in units of the reference time
        self._last: float | None = None
        self._first: float | None = None  # when the first gap was learned
        self._rewarm_left = 0
        self._next_refresh = -math.inf
        self._u = 0.0  # where the fitted tail starts
        self._p_tail = 1.0  # P(gap > u)
        self._beta = 0.0  # the tail's scale (mean excess over u)
        self._top = 0.0  # upper edge of the longest gap remembered

    # ---- feeds -----------------------------------------------------------------------------

    def on_connect(self, now: float) -> None:
        """A new connection: the static threshold until ``rewarm`` gaps are learned again; the
        silence before its first message is not a gap of the market."""
        self._last = None
        if self.learned and self._config.rewarm > 0:
            self.learned = False
            self.threshold_s = self.static_s
        self._rewarm_left = self._config.rewarm

    def on_arrival(self, now: float) -> None:
        """One accepted data message of this channel at ``now``."""
        last = self._last
        self._last = now
        if last is None:
            return
        gap = now - last
        if gap < _BASE_S:  # messages within a millisecond (one read, one batch): one arrival
            return
        if gap >= self.threshold_s:  # a stall (declared or not): never learned
            self.stalls += 1
            return
        k = int(math.log(gap / _BASE_S) * _INV_LOG_RATIO) + 1
        if k >= _BINS:
            k = _BINS - 1
        if self._t_ref is None:
            self._t_ref = self._first = now
        self._weights[k] += self._unit
        self._total += self._unit
        self.learned_gaps += 1
        if self._rewarm_left:
            self._rewarm_left -= 1
        if now >= self._next_refresh or (not self.learned and self._ready()):
            self._refresh(now)

    # ---- model -----------------------------------------------------------------------------

    def _ready(self) -> bool:
        cfg = self._config
        return (self.learned_gaps >= cfg.warmup and not self._rewarm_left
                and self._first is not None and self._last is not None
                and self._last - self._first >= cfg.warmup_s)

    def _refresh(self, now: float) -> None:
        self._next_refresh = now + _REFRESH_S
        assert self._t_ref is not None
        unit = math.exp((now - self._t_ref) * self._decay)
        if unit > _RENORMALISE:
            scale = 1.0 / unit
            self._weights = [w * scale for w in self._weights]
            self._total *= scale
            self._t_ref = now
            unit = 1.0
        self._unit = unit
        self._fit(unit)
        if not self._ready():
            return
        cfg = self._config
        learned = self._u + self._beta * (cfg.suspicion * _LN10 + math.log(self._p_tail))
        learned = max(learned, cfg.margin * self._top)
        self.threshold_s = min(max(learned, cfg.floor_s), cfg.max_s)
        self.learned = True

    def _fit(self, unit: float) -> None:
        """Tail start ``u``, ``P(gap > u)`` and the tail's scale, from the decayed histogram."""
        weights = self._weights
        total = self._total
        forgotten = _FORGOTTEN * unit
        need = max(self._config.tail_fraction * total, _MIN_TAIL * unit)
        top = _BINS - 1
        while top > 0 and weights[top] <= forgotten:
            top -= 1
        tail = 0.0
        k = _BINS - 1
        while k > 0:
            tail += weights[k]
            if tail >= need:
                break
            k -= 1
        self._top = _LOWER[top] * _RATIO if top else _BASE_S
        u = _LOWER[k]
        excess = sum(weights[j] * (_MIDDLE[j] - u) for j in range(k, _BINS))
        tail = sum(weights[k:])
        self._u = u
        self._p_tail = min(1.0, tail / total) if total > 0 else 1.0
        self._beta = max(excess / tail if tail > 0 else 0.0, _BASE_S, 0.25 * u)

    # ---- reads -----------------------------------------------------------------------------

    def survival(self, silence_s: float) -> float:
        """The model's ``P(a normal gap lasts longer than silence_s)``."""
        total = self._total
        if total <= 0 or self._beta <= 0:
            return 1.0  # nothing fitted yet
        if silence_s >= self._u:
            return self._p_tail * math.exp(-(silence_s - self._u) / self._beta)
        above = 0.0
        for k in range(_BINS - 1, -1, -1):
            if _LOWER[k] < silence_s:
                # the bin holding silence_s: count the part above it (uniform within the bin)
                upper = _LOWER[k + 1] if k + 1 < _BINS else _LOWER[k] * _RATIO
                above += self._weights[k] * (upper - silence_s) / (upper - _LOWER[k])
                break
            above += self._weights[k]
        # (the tail was fitted at the last refresh; gaps learned since must not push below it)
        return min(1.0, max(above / total, self._p_tail))

    def suspicion(self, now: float) -> float | None:
        """phi of the silence since the last message (None while the static threshold rules)."""
        if not self.learned or self._last is None:
            return None
        survival = self.survival(max(0.0, now - self._last))
        return 300.0 if survival <= 1e-300 else -math.log10(survival)

    def suspicion_at(self, silence_s: float) -> float:
        """phi of a silence of ``silence_s`` (the learned model, whether in force or not)."""
        survival = self.survival(max(0.0, silence_s))
        return 300.0 if survival <= 1e-300 else -math.log10(survival)


class FreshnessModels:
    """The per-channel detectors of one session; they outlive its connections."""

    def __init__(self, config: FreshnessConfig) -> None:
        self.config = config
        self._channels: dict[str, ChannelFreshness] = {}

    def channel(self, name: str, static_s: float) -> ChannelFreshness:
        """The detector of ``name`` (created with ``static_s`` as its fallback threshold)."""
        found = self._channels.get(name)
        if found is None or found.static_s != static_s:
            found = self._channels[name] = ChannelFreshness(self.config, static_s)
        return found

    def on_connect(self, now: float) -> None:
        for detector in self._channels.values():
            detector.on_connect(now)

    def items(self) -> Iterator[tuple[str, ChannelFreshness]]:
        return iter(list(self._channels.items()))

    def __len__(self) -> int:
        return len(self._channels)
