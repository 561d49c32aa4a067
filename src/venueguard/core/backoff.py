"""Exponential backoff with jitter: shared config, per-call state, injected randomness.

Public API::

    class RandomSource(Protocol): def random(self) -> float   # e.g. random.Random(seed)
    class Jitter(Enum): NONE, FULL, EQUAL, DECORRELATED
    BackoffConfig(base_s=0.5, cap_s=30.0, multiplier=2.0, jitter=Jitter.FULL,
                  reset_after_s=60.0)
    compute_delay_s(config, attempt, prev_s, rng) -> float      # pure formula
    class Backoff(config, rng):                                  # one per connection / call
        next_delay_s(now, *, factor=1.0, min_s=0.0) -> float    # after a failure
        on_success(now) -> None                                  # connected / request succeeded
        reset() -> None
        attempt: int                                             # failures since the last reset

Call order: on each failure call ``next_delay_s(now)`` and sleep that long before the next try;
when a try succeeds call ``on_success(now)``. If the success holds for ``reset_after_s`` (that
is, the next failure comes at least that long after it), the next delay starts over from the
first step. ``factor``/``min_s`` apply a rule's ``delay_factor``/``min_delay_s`` (e.g. a
load-shedding 503: at least 0.5 s, twice the usual): the result is
``max(min_s, min(cap_s, delay * factor))``.

Formulas (``exp = min(cap, base * multiplier ** attempt)``, ``u = rng.random()`` in [0, 1)):
NONE ``exp``; FULL ``u * exp``; EQUAL ``exp/2 + u * exp/2``;
DECORRELATED ``min(cap, base + u * (3 * prev - base))`` with ``prev`` the previous delay
(``base`` at the start).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Backoff", "BackoffConfig", "Jitter", "RandomSource", "compute_delay_s"]


class RandomSource(Protocol):
    """Anything with ``random() -> float`` in [0, 1); adapters pass ``random.Random(seed)``."""

    def random(self) -> float: ...


class Jitter(enum.Enum):
    NONE = "none"
    FULL = "full"
    EQUAL = "equal"
    DECORRELATED = "decorrelated"


@dataclass(frozen=True, slots=True)
class BackoffConfig:
    """Shared, immutable backoff settings (seconds)."""

    base_s: float = 0.5
    cap_s: float = 30.0
    multiplier: float = 2.0
    jitter: Jitter = Jitter.FULL
    reset_after_s: float = 60.0  # a success that lasts this long resets the attempt count

    def __post_init__(self) -> None:
        if not self.base_s > 0:
            raise ValueError(f"base_s must be > 0, got {self.base_s}")
        if not self.cap_s >= self.base_s:
            raise ValueError(f"cap_s ({self.cap_s}) must be >= base_s ({self.base_s})")
        if not self.multiplier >= 1:
            raise ValueError(f"multiplier must be >= 1, got {self.multiplier}")
        if not self.reset_after_s >= 0:
            raise ValueError(f"reset_after_s must be >= 0, got {self.reset_after_s}")

    @property
    def capped_attempt(self) -> int:
        """The first attempt whose exponential step reaches ``cap_s`` (later ones stay there)."""
        if self.multiplier == 1 or self.cap_s == self.base_s:
            return 0
        return max(0, math.ceil(math.log(self.cap_s / self.base_s, self.multiplier)))


def _exp_step(config: BackoffConfig, attempt: int) -> float:
    if attempt >= config.capped_attempt:
        return config.cap_s if config.multiplier > 1 else config.base_s
    return min(config.cap_s, config.base_s * config.multiplier**attempt)


def compute_delay_s(config: BackoffConfig, attempt: int, prev_s: float, rng: RandomSource) -> float:
    """The delay before retry number ``attempt`` (0-based). Always within [0, cap_s]."""
    u = rng.random()
    if not 0.0 <= u < 1.0:
        u = min(max(u, 0.0), 1.0)
    jitter = config.jitter
    if jitter is Jitter.DECORRELATED:
        prev = min(max(prev_s, config.base_s), config.cap_s)
        return min(config.cap_s, config.base_s + u * (3.0 * prev - config.base_s))
    step = _exp_step(config, max(0, attempt))
    if jitter is Jitter.NONE:
        return step
    if jitter is Jitter.FULL:
        return u * step
    return step / 2.0 + u * step / 2.0


class Backoff:
    """Backoff state for one connection or one logical request (never shared between them)."""

    __slots__ = ("_prev_s", "_rng", "_success_at", "attempt", "config")

    def __init__(self, config: BackoffConfig, rng: RandomSource) -> None:
        self.config = config
        self._rng = rng
        self.attempt = 0
        self._prev_s = config.base_s
        self._success_at: float | None = None

    def next_delay_s(self, now: float, *, factor: float = 1.0, min_s: float = 0.0) -> float:
        """Record a failure at ``now`` and return how long to wait before the next try."""
        if self._success_at is not None:
            if now - self._success_at >= self.config.reset_after_s:
                self.reset()
            self._success_at = None
        delay = compute_delay_s(self.config, self.attempt, self._prev_s, self._rng)
        self._prev_s = max(delay, self.config.base_s)
        self.attempt += 1
        return max(min_s, min(self.config.cap_s, delay * factor))

    def on_success(self, now: float) -> None:
        """A try succeeded at ``now``; the count resets unless a failure follows too soon."""
        if self._success_at is None:
            self._success_at = now

    def reset(self) -> None:
        """Start over from the first step."""
        self.attempt = 0
        self._prev_s = self.config.base_s
        self._success_at = None

    @property
    def stable_since(self) -> float | None:
        """When the current run of success began (None while failing)."""
        return self._success_at
