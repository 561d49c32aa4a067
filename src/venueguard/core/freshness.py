"""Learned data freshness: each channel's own idea of how long a silence may normally last.

A fixed data-age threshold is wrong both ways: a liquid book that changes every few milliseconds
is traded on for the whole threshold after it died, and a thin symbol that trades once a minute
is flagged stale in its normal quiet. An accrual failure detector (the phi detector of
Hayashibara et al.) instead learns each channel's inter-arrival distribution and turns the
current silence into a *suspicion level* ``phi = -log10 P(a normal silence lasts this long)``.

Public API::

    FreshnessConfig(enabled=True, suspicion=8.0, floor_s=1.0, max_s=120.0, warmup=30,
                    warmup_s=30.0, rewarm=20, half_life_s=600.0, recent_half_life_s=30.0,
                    tail_fraction=0.02, margin=2.0)
    class ChannelFreshness(config, static_s):       # one per channel, kept across reconnects
        on_arrival(now)                              # every accepted data message
        on_connect(now)                              # a new connection: re-warm, no gap learned
        threshold_s: float                           # the silence that is stale, now
        learned: bool                                # False while (re)warming (fallback rules)
        suspicion(now) -> float | None               # phi of the current silence (None: warming)
        stalls: int                                  # silences >= threshold, never learned
    class FreshnessModels(config):                   # the detectors of one session, by channel
        channel(name, static_s) -> ChannelFreshness
        on_connect(now)
        items() -> iterable of (name, ChannelFreshness)

The model (chosen by measurement, see docs/performance.md "Learned freshness"): a histogram of
the channel's gaps in half-octave bins (1 ms to about 17 min, 42 floats; messages less than a
millisecond apart count as one arrival), every gap weighted ``2 ** (t / half_life_s)`` so that
old gaps fade (constant memory, no window to keep). Below the upper tail the survival function
``P(gap > t)`` is read from the histogram; the upper tail (the ``tail_fraction`` longest gaps,
at least a few) is an exponential whose scale is the tail's mean excess, as in a
peaks-over-threshold fit, raised by two standard errors of that mean (a scale fitted on a
handful of gaps is not trusted as if fitted on thousands). Neither a normal tail on the gaps
(Akka's detector) nor one exponential over all of them (Cassandra's) survives a bursty market:
both are fitted by the many short gaps of a burst and flag the pause after it.

A second model of the same form, the recent one, forgets with ``recent_half_life_s``. The long
model counts gaps, so after busy hours its tail speaks for the busy hours; when the market slows
down within minutes, the recent model is the one that knows. The suspicion of a silence is the
*lower* of the two models' phi: a channel is suspected only when both its long history and its
recent rhythm find the silence abnormal. The threshold is the silence whose suspicion reaches
``suspicion``, never below ``margin`` times the longest gap the long model still remembers,
clamped to ``[floor_s, max_s]`` (the floor is the channel's static threshold where that is
lower).

Regimes: quiet hours add long gaps to both models and the threshold widens at once; a burst adds
many short gaps and the long ones weigh less, so it tightens (as far as the long model's memory
of the quiet allows); old gaps fade. A stall is never learned: a gap at or past the threshold in
force when it ended counts in ``stalls`` and leaves both models as they were, so a dead stream
cannot teach them that long silences are normal. Until ``warmup`` gaps are learned over at least
``warmup_s`` (a rare long gap needs time to show up), and for ``rewarm`` gaps after each
reconnect (the first gap of a connection is the subscription, not the market's rhythm, and is
not learned), the threshold falls back to the channel's static one -- or to ``margin`` times
the longest gap the channel has already shown, when that is longer (up to ``max_s``): a thin
channel is never flagged for a silence it has shown to be normal, and nothing learned ever makes
the fallback tighter.

Everything is sans-I/O: ``now`` is monotonic seconds passed in.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["ChannelFreshness", "FreshnessConfig", "FreshnessModels"]

_BASE_S = 0.001  # lower edge of bin 1 (shorter gaps are one arrival: bin 0 stays empty)
_RATIO = math.sqrt(2.0)  # half-octave bins
_BINS = 42  # the top bin starts at about 1,000 s and takes every longer gap
_INV_LOG_RATIO = 1.0 / math.log(_RATIO)
_INV_BASE = 1.0 / _BASE_S
_log = math.log
_LOWER = tuple(0.0 if k == 0 else _BASE_S * _RATIO ** (k - 1) for k in range(_BINS))
_MIDDLE = tuple(_BASE_S / 2 if k == 0 else _BASE_S * _RATIO ** (k - 0.5) for k in range(_BINS))
_MIN_TAIL = 3.0  # the tail fit uses at least this many (decayed) gaps
_FORGOTTEN = 0.05  # a bin lighter than this (decayed gaps) is no longer remembered
_SCALE_Z = 2.0  # standard errors added to the tail's fitted scale
_REFRESH_S = 1.0  # the threshold is recomputed at most this often (on an arrival)
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
    max_s: float = 120.0
    warmup: int = 30
    warmup_s: float = 30.0
    rewarm: int = 20
    half_life_s: float = 600.0
    recent_half_life_s: float = 30.0
    tail_fraction: float = 0.02
    margin: float = 2.0

    def __post_init__(self) -> None:
        if not self.suspicion > 0:
            raise ValueError("suspicion must be > 0")
        if not 0 < self.floor_s <= self.max_s or not math.isfinite(self.max_s):
            raise ValueError("need 0 < floor_s <= max_s (finite)")
        if self.warmup < 1 or self.rewarm < 0 or not self.warmup_s >= 0:
            raise ValueError("warmup must be >= 1, warmup_s >= 0 and rewarm >= 0")
        if not self.half_life_s > 0 or not self.recent_half_life_s > 0:
            raise ValueError("half_life_s and recent_half_life_s must be > 0")
        if not 0 < self.tail_fraction < 1:
            raise ValueError("tail_fraction must be in (0, 1)")
        if not self.margin >= 1:
            raise ValueError("margin must be >= 1")


class _GapModel:
    """A time-decayed histogram of gaps and its tail fit (one memory length)."""

    __slots__ = ("beta", "decay", "p_tail", "t_ref", "top", "total", "u", "unit", "weights")

    def __init__(self, half_life_s: float) -> None:
        self.weights = [0.0] * _BINS
        self.total = 0.0
        self.decay = math.log(2.0) / half_life_s
        self.t_ref: float | None = None
        self.unit = 1.0  # the weight of a gap learned now, in units of the reference time
        self.u = 0.0  # where the fitted tail starts
        self.p_tail = 1.0  # P(gap > u)
        self.beta = 0.0  # the tail's scale (mean excess over u, raised for few gaps)
        self.top = 0.0  # upper edge of the longest gap remembered

    def add(self, counts: list[int], now: float) -> None:
        """Gaps counted per bin since the last call, learned as of ``now``."""
        if self.t_ref is None:
            self.t_ref = now
        unit = math.exp((now - self.t_ref) * self.decay)
        weights = self.weights
        added = 0
        for k, count in enumerate(counts):
            if count:
                weights[k] += count * unit
                added += count
        self.total += added * unit

    def fit(self, now: float, tail_fraction: float) -> None:
        """Tail start ``u``, ``P(gap > u)`` and the tail's scale, as of ``now``."""
        if self.t_ref is None:
            return
        unit = math.exp((now - self.t_ref) * self.decay)
        if unit > _RENORMALISE:
            scale = 1.0 / unit
            self.weights = [w * scale for w in self.weights]
            self.total *= scale
            self.t_ref = now
            unit = 1.0
        self.unit = unit
        weights = self.weights
        total = self.total
        forgotten = _FORGOTTEN * unit
        need = max(tail_fraction * total, _MIN_TAIL * unit)
        top = _BINS - 1
        while top > 0 and weights[top] <= forgotten:
            top -= 1
        self.top = _LOWER[top] * _RATIO if top else 0.0
        tail = 0.0
        k = _BINS - 1
        while k > 0:
            tail += weights[k]
            if tail >= need:
                break
            k -= 1
        u = _LOWER[k]
        excess = sum(weights[j] * (_MIDDLE[j] - u) for j in range(k, _BINS))
        tail = sum(weights[k:])
        self.u = u
        self.p_tail = min(1.0, tail / total) if total > 0 else 1.0
        beta = max(excess / tail if tail > 0 else 0.0, _BASE_S, 0.25 * u)
        # a scale fitted on few gaps is uncertain: take an upper bound (about two standard
        # errors of an exponential's mean), so a thin channel is judged cautiously
        self.beta = beta * (1.0 + _SCALE_Z / math.sqrt(max(tail / unit, 1.0)))

    def threshold(self, suspicion: float) -> float:
        """The silence whose phi under this model is ``suspicion``."""
        return self.u + self.beta * (suspicion * _LN10 + math.log(self.p_tail))

    def survival(self, silence_s: float) -> float:
        """``P(a normal gap lasts longer than silence_s)`` under this model."""
        total = self.total
        if total <= 0 or self.beta <= 0:
            return 1.0  # nothing fitted yet
        if silence_s >= self.u:
            return self.p_tail * math.exp(-(silence_s - self.u) / self.beta)
        above = 0.0
        for k in range(_BINS - 1, -1, -1):
            if _LOWER[k] < silence_s:
                # the bin holding silence_s: count the part above it (uniform within the bin)
                upper = _LOWER[k + 1] if k + 1 < _BINS else _LOWER[k] * _RATIO
                above += self.weights[k] * (upper - silence_s) / (upper - _LOWER[k])
                break
            above += self.weights[k]
        # (the tail was fitted at the last refresh; gaps learned since must not push below it)
        return min(1.0, max(above / total, self.p_tail))

    def phi(self, silence_s: float) -> float:
        survival = self.survival(silence_s)
        return 300.0 if survival <= 1e-300 else -math.log10(survival)


class ChannelFreshness:
    """The learned freshness of one channel (see the module docstring)."""

    __slots__ = (
        "_config", "_first", "_last", "_long", "_next_refresh", "_pending", "_recent",
        "_rewarm_left",
        "learned", "learned_gaps", "stalls", "static_s", "threshold_s",
    )

    def __init__(self, config: FreshnessConfig, static_s: float) -> None:
        self._config = config
        self.static_s = static_s
        self.threshold_s = static_s
        self.learned = False
        self.learned_gaps = 0
        self.stalls = 0
        self._long = _GapModel(config.half_life_s)
        self._recent = _GapModel(config.recent_half_life_s)
        self._pending = [0] * _BINS  # gaps per bin not yet added to the models
        self._last: float | None = None
        self._first: float | None = None  # when the first gap was learned
        self._rewarm_left = 0
        self._next_refresh = -math.inf

    # ---- feeds -----------------------------------------------------------------------------

    def on_connect(self, now: float) -> None:
        """A new connection: the fallback threshold until ``rewarm`` gaps are learned again;
        the silence before its first message is not a gap of the market."""
        self._last = None
        if self.learned and self._config.rewarm > 0:
            self.learned = False
            self.threshold_s = self._fallback()
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
        k = int(_log(gap * _INV_BASE) * _INV_LOG_RATIO) + 1
        # counted here, added to both models at the next refresh (this runs per message)
        self._pending[k if k < _BINS else _BINS - 1] += 1
        self.learned_gaps += 1
        if self._rewarm_left:
            self._rewarm_left -= 1
        if now >= self._next_refresh or (not self.learned and self._ready()):
            if self._first is None:
                self._first = now
            self._refresh(now)

    # ---- model -----------------------------------------------------------------------------

    def _fallback(self) -> float:
        """The threshold while (re)warming: static, or wider where the channel showed it."""
        cfg = self._config
        return max(self.static_s, min(cfg.max_s, cfg.margin * self._long.top))

    def _ready(self) -> bool:
        cfg = self._config
        return (self.learned_gaps >= cfg.warmup and not self._rewarm_left
                and self._first is not None and self._last is not None
                and self._last - self._first >= cfg.warmup_s)

    def _refresh(self, now: float) -> None:
        self._next_refresh = now + _REFRESH_S
        pending = self._pending
        self._long.add(pending, now)
        self._recent.add(pending, now)
        self._pending = [0] * _BINS
        cfg = self._config
        self._long.fit(now, cfg.tail_fraction)
        self._recent.fit(now, cfg.tail_fraction)
        if not self._ready():
            self.threshold_s = self._fallback()
            return
        learned = max(self._long.threshold(cfg.suspicion), self._recent.threshold(cfg.suspicion),
                      cfg.margin * self._long.top)
        # a static bound set below the floor is a wish for a tighter watch: it is the floor then
        floor = min(cfg.floor_s, self.static_s)
        self.threshold_s = min(max(learned, floor), max(cfg.max_s, floor))
        self.learned = True

    # ---- reads -----------------------------------------------------------------------------

    def survival(self, silence_s: float) -> float:
        """``P(a normal gap lasts longer than silence_s)``: the higher of the two models'."""
        return max(self._long.survival(silence_s), self._recent.survival(silence_s))

    def suspicion(self, now: float) -> float | None:
        """phi of the silence since the last message (None while the fallback rules)."""
        if not self.learned or self._last is None:
            return None
        return self.suspicion_at(now - self._last)

    def suspicion_at(self, silence_s: float) -> float:
        """phi of a silence of ``silence_s``: the lower of the long and the recent model's."""
        silence_s = max(0.0, silence_s)
        return min(self._long.phi(silence_s), self._recent.phi(silence_s))


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
