"""Client-side adaptive throttling: refuse some requests locally while the venue refuses many.

Public API::

    ThrottleConfig(k=2.0, window_s=120.0, bucket_s=1.0)
    class AdaptiveThrottle(config, rng):          # one per venue
        should_send(now) -> bool                   # draws; counts the request either way
        on_accepted(now) -> None                   # the venue accepted (processed) a request
        reject_probability(now) -> float           # max(0, (requests - k*accepts) / (requests + 1))
        requests(now) / accepts(now) -> int

Call order: before each request ``should_send(now)``; if False, fail the request locally (it
was counted as a request, so the probability falls as the venue recovers). After a response
that shows the venue accepted the request (anything but overload, rate limit or an unreachable
venue) call ``on_accepted(now)``. Counts are kept in ``bucket_s`` buckets over ``window_s``, so
memory stays fixed whatever the request rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from venueguard.core.backoff import RandomSource

__all__ = ["AdaptiveThrottle", "ThrottleConfig"]


@dataclass(frozen=True, slots=True)
class ThrottleConfig:
    k: float = 2.0  # accepts are multiplied by k: 2 lets through twice what the venue accepts
    window_s: float = 120.0
    bucket_s: float = 1.0

    def __post_init__(self) -> None:
        if not self.k >= 1:
            raise ValueError("k must be >= 1")
        if not (self.window_s > 0 and self.bucket_s > 0 and self.bucket_s <= self.window_s):
            raise ValueError("need 0 < bucket_s <= window_s")

    @property
    def buckets(self) -> int:
        return max(1, math.ceil(self.window_s / self.bucket_s))


class _Ring:
    """Counts per bucket index over the last ``size`` buckets."""

    __slots__ = ("counts", "head", "size", "total")

    def __init__(self, size: int) -> None:
        self.size = size
        self.counts = [0] * size
        self.head: int | None = None  # bucket index of the newest bucket
        self.total = 0

    def advance(self, index: int) -> int:
        """Move the window so ``index`` is the newest bucket; returns the bucket to count in."""
        head = self.head
        if head is not None and index <= head:
            return head  # same bucket (or a clock step back: counted in the newest bucket)
        if head is None or index - head >= self.size:
            self.counts = [0] * self.size
            self.total = 0
            self.head = index
            return index
        while head < index:
            head += 1
            slot = head % self.size
            self.total -= self.counts[slot]
            self.counts[slot] = 0
        self.head = head
        return head

    def add(self, index: int) -> None:
        slot = self.advance(index) % self.size
        self.counts[slot] += 1
        self.total += 1


class AdaptiveThrottle:
    """Reject probability ``max(0, (requests - k * accepts) / (requests + 1))`` over the window."""

    __slots__ = ("_accepts", "_requests", "_rng", "config", "rejected")

    def __init__(self, config: ThrottleConfig | None, rng: RandomSource) -> None:
        self.config = config or ThrottleConfig()
        self._rng = rng
        self._requests = _Ring(self.config.buckets)
        self._accepts = _Ring(self.config.buckets)
        self.rejected = 0

    def _index(self, now: float) -> int:
        return math.floor(now / self.config.bucket_s)

    def requests(self, now: float) -> int:
        self._requests.advance(self._index(now))
        return self._requests.total

    def accepts(self, now: float) -> int:
        self._accepts.advance(self._index(now))
        return self._accepts.total

    def reject_probability(self, now: float) -> float:
        requests = self.requests(now)
        accepts = self.accepts(now)
        return max(0.0, (requests - self.config.k * accepts) / (requests + 1))

    def should_send(self, now: float) -> bool:
        """Count a request at ``now`` and decide whether to send it (False: refuse locally)."""
        probability = self.reject_probability(now)
        self._requests.add(self._index(now))
        if probability > 0.0 and self._rng.random() < probability:
            self.rejected += 1
            return False
        return True

    def on_accepted(self, now: float) -> None:
        self._accepts.add(self._index(now))
