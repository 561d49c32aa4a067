"""Retry budget: retries may not exceed a fraction of requests over a sliding window.

Public API::

    BudgetConfig(ratio=0.1, min_per_s=0.5, window_s=10.0)
    class RetryBudget(config):          # one per venue (shared by every call to it)
        on_request(now) -> None          # a first attempt of a logical request
        try_retry(now) -> bool           # True: a retry is granted and counted; False: give up
        can_retry(now) -> bool           # whether try_retry would grant, without counting
        allowance(now) -> float          # ratio * requests_in_window + min_per_s * window_s
        retries_in_window(now) / requests_in_window(now) -> int

The window is ``(now - window_s, now]``. Invariant, checked whenever a retry is granted:
``retries_in_window <= allowance``, counting the granted retry. Retries never count as
requests, so a storm of failures cannot buy itself more retries. Memory holds one float per
request and per retry inside the window.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["BudgetConfig", "RetryBudget"]


@dataclass(frozen=True, slots=True)
class BudgetConfig:
    ratio: float = 0.1  # retries per request
    min_per_s: float = 0.5  # retries always allowed per second of window, even when idle
    window_s: float = 10.0

    def __post_init__(self) -> None:
        if self.ratio < 0 or self.min_per_s < 0:
            raise ValueError("ratio and min_per_s must be >= 0")
        if not self.window_s > 0:
            raise ValueError("window_s must be > 0")


class RetryBudget:
    """Sliding-window retry budget. Times are monotonic seconds passed in, non-decreasing."""

    __slots__ = ("_requests", "_retries", "config", "denied")

    def __init__(self, config: BudgetConfig | None = None) -> None:
        self.config = config or BudgetConfig()
        self._requests: deque[float] = deque()
        self._retries: deque[float] = deque()
        self.denied = 0  # retries refused so far

    def _expire(self, now: float) -> None:
        edge = now - self.config.window_s
        requests, retries = self._requests, self._retries
        while requests and requests[0] <= edge:
            requests.popleft()
        while retries and retries[0] <= edge:
            retries.popleft()

    def on_request(self, now: float) -> None:
        """Count a first attempt of a logical request."""
        self._expire(now)
        self._requests.append(now)

    def allowance(self, now: float) -> float:
        """How many retries the window holds at ``now``."""
        self._expire(now)
        cfg = self.config
        return cfg.ratio * len(self._requests) + cfg.min_per_s * cfg.window_s

    def can_retry(self, now: float) -> bool:
        allowance = self.allowance(now)  # expires old entries first
        return len(self._retries) + 1 <= allowance

    def try_retry(self, now: float) -> bool:
        """Grant and count one retry at ``now`` if the budget holds one; else count a denial."""
        if self.can_retry(now):
            self._retries.append(now)
            return True
        self.denied += 1
        return False

    def retries_in_window(self, now: float) -> int:
        self._expire(now)
        return len(self._retries)

    def requests_in_window(self, now: float) -> int:
        self._expire(now)
        return len(self._requests)
