"""What a fleet shares, as data and pure functions (no I/O, time passed in).

A fleet is several venueguard processes, on one machine or several, trading one venue account
from one or more egress IPs. This module holds what they agree on:

- :class:`Bucket`: a rate limit as the venue documents it (``limit`` per ``period_s``), run as a
  GCRA (the "theoretical arrival time" form of a token bucket): one number per bucket, so one
  atomic update reserves a slot for every caller in the fleet, in arrival order.
- :data:`VENUE_BUCKETS`: the documented limits per venue (BitMEX: 120 requests a minute per
  key, 10 a second on order routes; Binance USD-M futures: 2,400 request weight a minute per IP).
- :class:`Gcra`: the same arithmetic in process, for the in-process backend and for the
  conservative local share a process falls back to when the shared store is unreachable.
- :data:`BAN_SCOPES`: whether a cooldown or block is the account's or the IP's.
- :class:`BanNotice`: a cooldown, block or reset seen by one member, as every member applies it.
- :func:`worst_regime` / :func:`fleet_view`: the fleet's regime is its most cautious member's.

See docs/scaling.md for how these are shared and what happens when the store is unreachable.
"""

from __future__ import annotations

import enum
import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from venueguard.core.kinds import Kind
from venueguard.io.fleet_link import Rank

__all__ = [
    "BAN_SCOPES",
    "HELD_BACK",
    "REGIME_SEVERITY",
    "VENUE_BUCKETS",
    "BanNotice",
    "Bucket",
    "FleetView",
    "Gcra",
    "Scope",
    "account_tag",
    "buckets_for",
    "fleet_view",
    "live_statuses",
    "worst_regime",
]


class Scope(enum.Enum):
    """Who a limit or a ban belongs to."""

    ACCOUNT = "account"
    IP = "ip"


#: The share of a bucket's burst each rank of request leaves to the ranks above it (rounded
#: down to whole requests: of BitMEX's 120 a minute, reads leave 11 and orders 4). Under a
#: shared limit a cancel (which takes risk off) finds a slot first, then new orders and amends,
#: then reads (which can wait: the reconciler asks again). Held back only while the bucket is
#: nearly spent, so an idle fleet sends every rank at once.
HELD_BACK: dict[Rank, float] = {Rank.CANCEL: 0.0, Rank.WRITE: 0.04, Rank.READ: 0.1}


@dataclass(frozen=True, slots=True)
class Bucket:
    """``limit`` requests per ``period_s``, a burst of ``limit`` (as the venue refills it).

    ``headroom`` is the fraction kept back (the fleet aims just under the venue's limit, so the
    few milliseconds between reserving a slot and the request reaching the venue never cost a
    429). ``order_routes_only``: the bucket applies to order routes (BitMEX's per-second layer).
    ``rank``: the request's, when it is one (see :data:`HELD_BACK`: reads leave the last
    requests of the burst to orders, orders leave the very last to cancels).
    """

    name: str
    scope: Scope
    limit: int
    period_s: float
    order_routes_only: bool = False
    headroom: float = 0.02
    rank: Rank = Rank.CANCEL

    def __post_init__(self) -> None:
        if self.limit < 1 or not self.period_s > 0:
            raise ValueError(f"bucket {self.name}: need limit >= 1 and period_s > 0")
        if not 0 <= self.headroom < 0.5:
            raise ValueError(f"bucket {self.name}: headroom must be within [0, 0.5)")

    @property
    def interval_s(self) -> float:
        """Seconds between two requests at the sustained rate (after the headroom)."""
        return self.period_s / (self.limit * (1.0 - self.headroom))

    @property
    def burst(self) -> int:
        """Requests that may go at once from a full bucket (after the headroom)."""
        return max(1, math.floor(self.limit * (1.0 - self.headroom)))

    @property
    def tolerance_s(self) -> float:
        """GCRA tolerance: how far ahead of now the theoretical arrival time may run."""
        return max(0, self.burst - 1 - self.held_back) * self.interval_s

    @property
    def held_back(self) -> int:
        """Requests of the burst this rank leaves to the ranks above it."""
        return math.floor(self.burst * HELD_BACK[self.rank])

    def with_limit(self, limit: int) -> Bucket:
        return Bucket(self.name, self.scope, limit, self.period_s, self.order_routes_only,
                      self.headroom, self.rank)

    def ranked(self, rank: Rank) -> Bucket:
        """This bucket as a request of ``rank`` sees it (same state, less of the burst)."""
        return Bucket(self.name, self.scope, self.limit, self.period_s, self.order_routes_only,
                      self.headroom, rank)

    def share(self, members: int) -> Bucket:
        """This bucket divided among ``members`` processes (the degraded local share)."""
        members = max(1, members)
        return Bucket(self.name, self.scope, max(1, self.limit // members), self.period_s,
                      self.order_routes_only, self.headroom, self.rank)


#: The venues' documented limits. BitMEX: https://www.bitmex.com/app/restAPI ("Limits"),
#: Binance USD-M: the REQUEST_WEIGHT limit of GET /fapi/v1/exchangeInfo (weights simplified
#: to 1 a request here).
VENUE_BUCKETS: Mapping[str, tuple[Bucket, ...]] = {
    "bitmex": (Bucket("rest", Scope.ACCOUNT, 120, 60.0),
               Bucket("order", Scope.ACCOUNT, 10, 1.0, order_routes_only=True)),
    "binance-usdm": (Bucket("weight", Scope.IP, 2400, 60.0),),
}

#: Websocket connection opens allowed per IP: (opens, window_s).
WS_OPENS: Mapping[str, tuple[int, float]] = {
    "bitmex": (60, 3600.0),
    "binance-usdm": (300, 300.0),
}


def buckets_for(venue: str, rest_limit: int | None = None) -> tuple[Bucket, ...]:
    """The documented buckets of ``venue`` (``sim`` and ``bitmex-testnet`` speak BitMEX);
    ``rest_limit`` replaces the per-minute request limit (what ``sim --rest-limit`` set)."""
    family = "binance-usdm" if "binance" in venue else "bitmex"
    buckets = VENUE_BUCKETS[family]
    if rest_limit is None:
        return buckets
    return tuple(b.with_limit(rest_limit) if b.period_s == 60.0 else b for b in buckets)


class Gcra:
    """One bucket's state in process: the theoretical arrival time ``tat`` (monotonic s)."""

    __slots__ = ("tat",)

    def __init__(self) -> None:
        self.tat: float | None = None

    def reserve(self, bucket: Bucket, now: float, max_wait_s: float) -> float | None:
        """Reserve the next slot; returns the wait before sending, or None (nothing reserved)
        when that wait would exceed ``max_wait_s``."""
        wait = self.wait_s(bucket, now)
        if wait > max_wait_s:
            return None
        self.commit(bucket, now + wait)
        return wait

    def wait_s(self, bucket: Bucket, now: float) -> float:
        tat = now if self.tat is None else max(self.tat, now)
        return max(0.0, tat - bucket.tolerance_s - now)

    def commit(self, bucket: Bucket, at: float) -> None:
        tat = at if self.tat is None else max(self.tat, at)
        self.tat = tat + bucket.interval_s

    def tokens(self, bucket: Bucket, now: float) -> float:
        """Requests that could go at once now."""
        ahead = 0.0 if self.tat is None else max(0.0, self.tat - now)
        return max(0.0, bucket.burst - ahead / bucket.interval_s)

    def floor_remaining(self, bucket: Bucket, remaining: int, now: float) -> None:
        """The venue says only ``remaining`` requests are left: never believe in more."""
        floor = now + (bucket.burst - max(0, remaining)) * bucket.interval_s
        if self.tat is None or self.tat < floor:
            self.tat = floor


#: Which cooldowns and blocks are the IP's (Cloudflare bans an address) rather than the
#: account's (rate limits and key bans are per key). Kinds not listed are not shared.
BAN_SCOPES: Mapping[Kind, Scope] = {
    Kind.IP_BANNED: Scope.IP,
    Kind.EDGE_PROTECTION: Scope.IP,
    Kind.SOFTWARE_BANNED: Scope.IP,
    Kind.FORBIDDEN: Scope.ACCOUNT,
    Kind.RATE_LIMITED: Scope.ACCOUNT,
    Kind.INVALID_CREDENTIALS: Scope.ACCOUNT,
}


@dataclass(frozen=True, slots=True)
class BanNotice:
    """A cooldown (``until_wall_s`` set), a block (no end) or a reset seen by ``origin``."""

    scope: Scope
    state: str                       # COOLDOWN | BLOCKED | HEALTHY (an operator's reset)
    until_wall_s: float | None
    kind: str
    reason: str
    origin: str

    def active(self, wall_s: float) -> bool:
        if self.state == "BLOCKED":
            return True
        return self.state == "COOLDOWN" and self.until_wall_s is not None \
            and self.until_wall_s > wall_s

    def to_json(self) -> dict[str, object]:
        return {"scope": self.scope.value, "state": self.state, "until": self.until_wall_s,
                "kind": self.kind, "reason": self.reason, "origin": self.origin}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> BanNotice:
        until = data.get("until")
        state = str(data.get("state"))
        if state not in ("COOLDOWN", "BLOCKED", "HEALTHY"):
            raise ValueError(f"unknown ban state {state!r}")
        return cls(Scope(str(data.get("scope"))), state,
                   float(until) if isinstance(until, int | float) else None,
                   str(data.get("kind", "")), str(data.get("reason", ""))[:200],
                   str(data.get("origin", "")))


#: Regimes from the least to the most cautious (a member in SAFE makes the fleet SAFE).
REGIME_SEVERITY: Mapping[str, int] = {"NORMAL": 0, "CAUTIOUS": 1, "RECOVERING": 2, "SAFE": 3}
HEALTH_SEVERITY: Mapping[str, int] = {"HEALTHY": 0, "DEGRADED": 1, "COOLDOWN": 2, "BLOCKED": 3}


def worst_regime(names: Iterable[str]) -> str:
    worst = "NORMAL"
    for name in names:
        if REGIME_SEVERITY.get(name, 0) > REGIME_SEVERITY[worst]:
            worst = name
    return worst


@dataclass(frozen=True, slots=True)
class FleetView:
    """What the live members reported: how many, the worst regime and health, and the orders
    resting at the venue for the whole account (the dead man's switch owner arms for all)."""

    members: int
    regime: str
    health: str
    resting: int
    others_resting: int


def live_statuses(statuses: Mapping[str, Mapping[str, object]], wall_s: float,
                  max_age_s: float) -> dict[str, dict[str, object]]:
    """The records of live members: those older than ``max_age_s`` are of members gone."""
    return {m: dict(s) for m, s in statuses.items()
            if isinstance(w := s.get("wall"), int | float) and wall_s - w <= max_age_s}


def fleet_view(statuses: Mapping[str, Mapping[str, object]], me: str,
               wall_s: float, max_age_s: float) -> FleetView:
    """Fold the members' status records (``wall``, ``regime``, ``health``, ``resting``);
    records older than ``max_age_s`` are of members that are gone."""
    live = live_statuses(statuses, wall_s, max_age_s)
    regime = worst_regime(str(s.get("regime", "NORMAL")) for s in live.values())
    health = "HEALTHY"
    for status in live.values():
        name = str(status.get("health", "HEALTHY"))
        if HEALTH_SEVERITY.get(name, 0) > HEALTH_SEVERITY[health]:
            health = name
    resting = {m: r if isinstance(r := s.get("resting"), int) else 0 for m, s in live.items()}
    return FleetView(max(1, len(live)), regime, health, sum(resting.values()),
                     sum(r for m, r in resting.items() if m != me))


def account_tag(venue: str, api_key: str | None) -> str:
    """The account's name in shared keys: a hash of the key, never the key itself. Any string
    hashes, one read from a header's raw bytes included (aiohttp keeps bytes that are not UTF-8
    as surrogate escapes; they hash as those bytes)."""
    name = f"venueguard:{venue}:{api_key or 'anonymous'}"
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:20]
