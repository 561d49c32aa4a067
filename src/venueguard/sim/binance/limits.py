"""Request-weight and order-count limits as Binance USDⓈ-M applies them.

- Weight is counted per client IP in wall-clock minute buckets; every response carries
  ``X-MBX-USED-WEIGHT-1M``. Over ``weight_per_min``: HTTP 429, code -1003, ``Retry-After`` = seconds
  to the next minute.
- A client that keeps sending while it is being told 429 (more than ``ban_after`` further
  requests before its ``Retry-After`` passed) is banned: HTTP 418, code -1003 "IP banned until",
  for ``ban_s`` (doubling on each repeat, as the venue's bans grow from 2 minutes to 3 days).
- New orders are counted per API key in 10-second and 1-minute buckets
  (``X-MBX-ORDER-COUNT-10S`` / ``-1M`` on order responses); over either: 429, code -1015.
Times are injected (``wall_s``), so tests drive them by hand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from venueguard.sim.binance import errors

__all__ = ["Limiter", "Limits"]

MAX_BAN_S = 3 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Limits:
    weight_per_min: int = 2400
    orders_per_10s: int = 300
    orders_per_min: int = 1200
    ban_after: int = 2
    ban_s: float = 120.0


@dataclass(slots=True)
class _Ip:
    minute: int = -1
    weight: int = 0
    told_until_s: float = 0.0  # a 429 told the client to wait until then
    ignored: int = 0  # requests sent while told to wait
    banned_until_s: float = 0.0
    bans: int = 0


@dataclass(slots=True)
class _Orders:
    ten: int = -1
    ten_count: int = 0
    minute: int = -1
    minute_count: int = 0


@dataclass(slots=True)
class Limiter:
    limits: Limits = field(default_factory=Limits)
    _ips: dict[str, _Ip] = field(default_factory=dict)
    _orders: dict[str, _Orders] = field(default_factory=dict)

    def charge(self, ip: str, weight: int, wall_s: float) -> dict[str, str]:
        """Count ``weight`` for ``ip``; returns the headers, raises BinanceError when refused."""
        state = self._ips.setdefault(ip, _Ip())
        minute = int(wall_s // 60)
        if minute != state.minute:
            state.minute, state.weight = minute, 0
        if wall_s < state.banned_until_s:
            raise self._ban_error(state, wall_s)
        if wall_s < state.told_until_s:
            state.ignored += 1
            if state.ignored > self.limits.ban_after:
                state.bans += 1
                ban_s = min(MAX_BAN_S, self.limits.ban_s * 2 ** (state.bans - 1))
                state.banned_until_s = wall_s + ban_s
                raise self._ban_error(state, wall_s)
        else:
            state.ignored = 0
        state.weight += weight
        headers = {"X-MBX-USED-WEIGHT-1M": str(state.weight)}
        if state.weight > self.limits.weight_per_min:
            retry_s = max(1, math.ceil((minute + 1) * 60 - wall_s))
            state.told_until_s = wall_s + retry_s
            exc = errors.too_many(self.limits.weight_per_min)
            exc.status = 429
            exc.headers = {**headers, "Retry-After": str(retry_s)}
            raise exc
        return headers

    def _ban_error(self, state: _Ip, wall_s: float) -> errors.BinanceError:
        until_ms = int(state.banned_until_s * 1000)
        exc = errors.banned(until_ms)
        exc.status = 418
        exc.headers = {"X-MBX-USED-WEIGHT-1M": str(state.weight),
                       "Retry-After": str(max(1, math.ceil(state.banned_until_s - wall_s)))}
        return exc

    def count_order(self, key: str, wall_s: float) -> dict[str, str]:
        """Count one new order for ``key``; returns the headers, raises when over a limit."""
        state = self._orders.setdefault(key, _Orders())
        ten, minute = int(wall_s // 10), int(wall_s // 60)
        if ten != state.ten:
            state.ten, state.ten_count = ten, 0
        if minute != state.minute:
            state.minute, state.minute_count = minute, 0
        state.ten_count += 1
        state.minute_count += 1
        headers = {"X-MBX-ORDER-COUNT-10S": str(state.ten_count),
                   "X-MBX-ORDER-COUNT-1M": str(state.minute_count)}
        for count, limit, interval, end in (
                (state.ten_count, self.limits.orders_per_10s, "10 SECOND", (ten + 1) * 10),
                (state.minute_count, self.limits.orders_per_min, "1 MINUTE", (minute + 1) * 60)):
            if count > limit:
                exc = errors.too_many_orders(limit, interval)
                exc.status = 429
                exc.headers = {**headers, "Retry-After": str(max(1, math.ceil(end - wall_s)))}
                raise exc
        return headers
