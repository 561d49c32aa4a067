"""What stands between a request and the matching engine, and what happens to its answer.

:class:`Gates` decides, for one request arriving at the venue, in the order a real request meets
them: the edge (Cloudflare bans, 403, 522), the network (DNS), authentication, the venue's rate
limit (its token buckets or ``rate_limit_429``), load shedding (``overload_503``, place and amend
only). A refusal is a :class:`Refusal` carrying the outcome's kind and status, which venue health
and the regime detector are fed. After the engine processed a write, :meth:`Gates.lost_answer`
says whether its answer is lost (``timeout_after_accept``, ``bad_gateway_after_accept``).
Every decision draws from the fault's own seeded stream.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from venueguard.core.kinds import Kind
from venueguard.sim.faults import Fault
from venueguard.sim.overload import OverloadModel
from venueguard.sim.ratelimit import TokenBucket

__all__ = ["ORDERS_PER_SECOND", "PER_MINUTE", "Gates", "Refusal"]

PER_MINUTE = 120  # BitMEX's REST limit per API key
ORDERS_PER_SECOND = 10  # and its second layer on order routes

# Faults answered before the engine: (kind, reason, kind of outcome, HTTP status)
_FRONT: tuple[tuple[str, str, Kind, int | None], ...] = (
    ("cloudflare_1006", "ip_banned", Kind.IP_BANNED, 403),
    ("cloudflare_1010", "software_banned", Kind.SOFTWARE_BANNED, 403),
    ("cloudflare_522", "edge", Kind.EDGE_PROTECTION, 522),
    ("forbidden_403", "forbidden", Kind.FORBIDDEN, 403),
    ("dns_failure", "dns", Kind.DNS, None),
    ("invalid_key", "invalid_key", Kind.INVALID_CREDENTIALS, 401),
    ("bad_signature", "bad_signature", Kind.INVALID_CREDENTIALS, 401),
    ("expired_request", "expired", Kind.NONCE_EXPIRED, 401),
)
_LOST: tuple[tuple[str, str, int | None], ...] = (
    ("timeout_after_accept", "timeout", None),
    ("bad_gateway_after_accept", "bad_gateway", 502),
)


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str
    kind: Kind
    status: int | None
    retry_after_s: float | None = None


class Gates:
    """``active(kind)`` returns the fault of ``kind`` in force (None when absent or its contract
    row is off); ``intensity()`` the market's current intensity."""

    def __init__(self, active: Callable[[str], Fault | None], intensity: Callable[[], float], *,
                 rate_limit: bool) -> None:
        self._active = active
        self._intensity = intensity
        self._rate_limit = rate_limit
        # the venue's two buckets for one API key (as
        # venueguard.sim.bitmex.ratelimit.RestRateLimiter keeps them, without the response
        # headers nobody reads here)
        self.per_minute = TokenBucket.full(PER_MINUTE, PER_MINUTE / 60.0, 0.0)
        self.per_second = TokenBucket.full(ORDERS_PER_SECOND, float(ORDERS_PER_SECOND), 0.0)
        self._models: dict[str, OverloadModel] = {}  # by fault id (a fault's params never change)

    def before(self, action: str, now_s: float) -> Refusal | None:
        """The refusal a request meets before the engine, if any."""
        active = self._active
        for kind, reason, outcome, status in _FRONT:
            fault = active(kind)
            if fault is not None and fault.roll():
                return Refusal(reason, outcome, status)
        if self._rate_limit:
            fault = active("rate_limit_429")
            if fault is not None and fault.roll():
                retry_s = max(1.0, float(round(float(fault.params["retry_after_s"]))))
                return Refusal("rate_limit", Kind.RATE_LIMITED, 429, retry_s)
            minute, second = self.per_minute, self.per_second
            if minute.peek(now_s) >= 1.0 and second.peek(now_s) >= 1.0:
                minute.take(now_s)
                second.take(now_s)
            else:
                wait_s = max(minute.seconds_until_token(now_s),
                             second.seconds_until_token(now_s))
                return Refusal("rate_limit", Kind.RATE_LIMITED, 429,
                               float(max(1, math.ceil(wait_s))))
        if action in ("place", "amend"):
            fault = active("overload_503")
            if fault is not None:
                model = self._models.get(fault.id)
                if model is None:  # the simulator's curve, built once per fault
                    model = self._models[fault.id] = OverloadModel.from_params(fault.params)
                if model.decide(model.load(self._intensity()), fault.rng):
                    return Refusal("overload", Kind.OVERLOADED, 503)
        return None

    def lost_answer(self) -> tuple[str, int | None] | None:
        """(reason, status) when the processed write's answer never reaches the client."""
        for kind, reason, status in _LOST:
            fault = self._active(kind)
            if fault is not None and fault.roll():
                return reason, status
        return None
