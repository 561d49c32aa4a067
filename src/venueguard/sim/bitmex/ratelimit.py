"""BitMEX's REST limits and the websocket connection-open limit.

REST: 120 requests a minute per API key (30 a minute per IP when unauthenticated), refilled
continuously, plus a second layer of 10 a second on order routes. Every response carries
``x-ratelimit-limit``, ``x-ratelimit-remaining`` and ``x-ratelimit-reset`` (UNIX seconds when one
request will be allowed again); order routes add ``x-ratelimit-remaining-1s``.
Websocket: at most N connection opens per hour per client IP (60 by default).
Time is passed in (monotonic seconds), so the buckets are testable without sleeping.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from dataclasses import dataclass

from venueguard.sim.ratelimit import TokenBucket

__all__ = ["ConnectionRateLimiter", "RateDecision", "RestRateLimiter"]


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    headers: dict[str, str]
    retry_after_s: int


class RestRateLimiter:
    """Per-identity buckets. ``identity`` is a verified API key, or ``ip:<addr>`` for every
    request whose key did not verify (or that sent none): made-up keys share their IP's bucket.

    Memory is bounded by ``max_identities`` per table without ever clearing them all: when full,
    buckets that have refilled completely are dropped (a full bucket is what a new one would
    be), and if none has, the least recently used one.
    """

    def __init__(self, *, per_min: int = 120, unauth_per_min: int = 30,
                 order_per_s: int = 10, max_identities: int = 10_000) -> None:
        self.per_min = per_min
        self.unauth_per_min = unauth_per_min
        self.order_per_s = order_per_s
        self._max = max_identities
        self._minute: OrderedDict[str, TokenBucket] = OrderedDict()
        self._second: OrderedDict[str, TokenBucket] = OrderedDict()

    def _bucket(self, table: OrderedDict[str, TokenBucket], key: str, capacity: int,
                per_s: float, now_s: float) -> TokenBucket:
        bucket = table.get(key)
        if bucket is not None:
            table.move_to_end(key)
            return bucket
        if len(table) >= self._max:  # bounded memory under many identities
            for name in [n for n, b in table.items() if b.peek(now_s) >= b.capacity]:
                del table[name]
            while len(table) >= self._max:
                table.popitem(last=False)
        bucket = table[key] = TokenBucket.full(capacity, per_s, now_s)
        return bucket

    def __len__(self) -> int:
        return len(self._minute)

    def check(self, identity: str, *, authenticated: bool, order_route: bool,
              now_s: float, wall_s: float) -> RateDecision:
        """Spend tokens for one request; returns the decision and the headers to send."""
        limit = self.per_min if authenticated else self.unauth_per_min
        minute = self._bucket(self._minute, identity, limit, limit / 60.0, now_s)
        second = (self._bucket(self._second, identity, self.order_per_s,
                               float(self.order_per_s), now_s) if order_route else None)
        allowed = minute.peek(now_s) >= 1.0 and (second is None or second.peek(now_s) >= 1.0)
        if allowed:
            minute.take(now_s)
            if second is not None:
                second.take(now_s)
        wait_s = max(minute.seconds_until_token(now_s),
                     second.seconds_until_token(now_s) if second is not None else 0.0)
        headers = {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(int(minute.peek(now_s))),
            "x-ratelimit-reset": str(math.ceil(wall_s + wait_s)),
        }
        if second is not None:
            headers["x-ratelimit-limit-1s"] = str(self.order_per_s)
            headers["x-ratelimit-remaining-1s"] = str(int(second.peek(now_s)))
        retry_after = max(1, math.ceil(wait_s)) if not allowed else 0
        return RateDecision(allowed, headers, retry_after)


class ConnectionRateLimiter:
    """Sliding one-hour window of websocket opens per client IP."""

    def __init__(self, per_hour: int = 60, window_s: float = 3600.0) -> None:
        self.per_hour = per_hour
        self.window_s = window_s
        self._opens: dict[str, deque[float]] = {}

    def _window(self, ip: str, now_s: float) -> deque[float]:
        opens = self._opens.setdefault(ip, deque())
        while opens and opens[0] <= now_s - self.window_s:
            opens.popleft()
        return opens

    def try_open(self, ip: str, now_s: float) -> tuple[bool, int, int]:
        """Record an open; returns (allowed, remaining, retry_after_s)."""
        opens = self._window(ip, now_s)
        if len(opens) >= self.per_hour:
            retry = math.ceil(opens[0] + self.window_s - now_s) if opens else 1
            return False, 0, max(1, retry)
        opens.append(now_s)
        return True, self.per_hour - len(opens), 0
