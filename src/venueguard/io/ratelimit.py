"""Client-side rate limits: websocket opens, and REST requests fed by the venue's headers.

Both are plain state with time passed in (monotonic seconds, plus epoch seconds where the venue's
``x-ratelimit-reset`` is compared), so tests drive them with numbers.

Public API::

    OpenRateLimiter(max_opens=60, window_s=3600.0)   # BitMEX: 60 websocket opens per hour
        delay_s(now) -> float       # how long to wait before the next open (0: go)
        on_open(now) -> None        # an open was attempted at ``now``
    RestRateLimiter(reserve=1)
        on_headers(rate_limit, now, wall_s) -> None   # x-ratelimit-* of every response
        on_retry_after(retry_after_s, now) -> None    # a 429 (or WS 429) said wait
        delay_s(now) -> float                         # wait this long before the next request

Call order (REST): before each request ``delay_s`` and sleep it; after each response
``on_headers``; on a 429 also ``on_retry_after``.
"""

from __future__ import annotations

from collections import deque

from venueguard.core.classify import RateLimit

__all__ = ["OpenRateLimiter", "RestRateLimiter"]


class OpenRateLimiter:
    """Sliding window of connection opens: never more than ``max_opens`` per ``window_s``."""

    def __init__(self, max_opens: int = 60, window_s: float = 3600.0) -> None:
        if max_opens < 1 or not window_s > 0:
            raise ValueError("need max_opens >= 1 and window_s > 0")
        self.max_opens = max_opens
        self.window_s = window_s
        self._opens: deque[float] = deque()

    def _expire(self, now: float) -> None:
        edge = now - self.window_s
        opens = self._opens
        while opens and opens[0] <= edge:
            opens.popleft()

    def delay_s(self, now: float) -> float:
        self._expire(now)
        if len(self._opens) < self.max_opens:
            return 0.0
        return max(0.0, self._opens[0] + self.window_s - now)

    def on_open(self, now: float) -> None:
        self._expire(now)
        self._opens.append(now)

    def opens_in_window(self, now: float) -> int:
        self._expire(now)
        return len(self._opens)


class RestRateLimiter:
    """Waits the venue's rate limit out instead of running into 429s.

    ``reserve``: requests kept in hand; when ``x-ratelimit-remaining`` falls to it, wait until
    ``x-ratelimit-reset``. ``x-ratelimit-remaining-1s`` of 0 waits out the rest of that second.
    """

    def __init__(self, reserve: int = 1, max_wait_s: float = 60.0) -> None:
        self.reserve = reserve
        self.max_wait_s = max_wait_s
        self.remaining: int | None = None
        self.reset_epoch_s: float | None = None
        self._reset_now: float | None = None  # monotonic time of the reset, when known
        self._second_until: float | None = None
        self._retry_until: float | None = None

    def on_headers(self, rate_limit: RateLimit | None, now: float, wall_s: float) -> None:
        if rate_limit is None:
            return
        if rate_limit.remaining is not None:
            self.remaining = rate_limit.remaining
            self.reset_epoch_s = rate_limit.reset_epoch_s
            self._reset_now = (
                None if rate_limit.reset_epoch_s is None
                else now + min(self.max_wait_s, max(0.0, rate_limit.reset_epoch_s - wall_s)))
        if rate_limit.remaining_1s is not None:
            self._second_until = now + 1.0 if rate_limit.remaining_1s <= 0 else None

    def on_retry_after(self, retry_after_s: float, now: float) -> None:
        until = now + min(self.max_wait_s, max(0.0, retry_after_s))
        if self._retry_until is None or until > self._retry_until:
            self._retry_until = until

    def delay_s(self, now: float) -> float:
        waits = [0.0]
        if self._retry_until is not None:
            waits.append(self._retry_until - now)
        if self._second_until is not None:
            waits.append(self._second_until - now)
        if (self.remaining is not None and self.remaining <= self.reserve
                and self._reset_now is not None):
            waits.append(self._reset_now - now)
        return max(waits)
