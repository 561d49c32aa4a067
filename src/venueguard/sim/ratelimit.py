"""A token bucket: the shape of a venue's request limits (:mod:`venueguard.sim.bitmex.ratelimit`).

Time is passed in (monotonic seconds), so a bucket is testable without sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TokenBucket"]


@dataclass(slots=True)
class TokenBucket:
    """``capacity`` tokens, refilled at ``rate_per_s``; starts full."""

    capacity: float
    rate_per_s: float
    tokens: float
    updated_s: float

    @classmethod
    def full(cls, capacity: float, rate_per_s: float, now_s: float) -> TokenBucket:
        return cls(capacity, rate_per_s, capacity, now_s)

    def _refill(self, now_s: float) -> None:
        if now_s > self.updated_s:
            earned = (now_s - self.updated_s) * self.rate_per_s
            self.tokens = min(self.capacity, self.tokens + earned)
            self.updated_s = now_s

    def peek(self, now_s: float) -> float:
        self._refill(now_s)
        return self.tokens

    def take(self, now_s: float) -> bool:
        """Spend one token if there is one; returns whether it was spent."""
        self._refill(now_s)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def seconds_until_token(self, now_s: float) -> float:
        self._refill(now_s)
        if self.tokens >= 1.0 or self.rate_per_s <= 0:
            return 0.0
        return (1.0 - self.tokens) / self.rate_per_s
