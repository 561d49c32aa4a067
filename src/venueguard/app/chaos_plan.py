"""Seeded fault schedules and trading plans for ``venueguard chaos`` (pure: no I/O, no clock).

One seed gives one :class:`SeedPlan`: a few faults (kind, start, duration, parameters) drawn from
the fault kinds of the simulator's control API (``docs/control-api.md``), and the trader's moves
(side, price offset, whether it crosses the spread, when it cancels). Everything is drawn from
``random.Random(seed)`` in a fixed order, so the same seed always gives the same plan (invariant
7 compares two draws).

Time is scaled down: a seed's faults fall inside ``window_s`` (a few seconds), and the client's
thresholds are scaled to match (see :mod:`venueguard.app.chaos_seed`). Parameters are drawn in
ranges that keep a fault meaningful at that scale (a visibility delay shorter than the client's
grace period, as the design requires of a venue it trusts).

A fleet seed (``--fleet``) also draws its lease handover (:func:`lease_cut_for`: when, how and
for how long the lease owner loses the fleet's store) from ``random.Random`` seeded with the
seed on a stream of its own, so its faults and moves stay those of a single bot.

Kinds left out of random schedules, and why (each has its own system test): ``invalid_key``,
``bad_signature`` and ``expired_request`` (bad credentials stop a session for good, by design),
``cloudflare_1010`` and ``cloudflare_1006`` (a ban blocks every request until an operator resets
it). Pass ``kinds=`` to draw from another set.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["CUT_WAYS", "DEFAULT_KINDS", "FaultSpec", "LeaseCut", "PlanConfig", "SeedPlan",
           "TradeMove", "lease_cut_for", "member_moves", "plan_for"]

Params = dict[str, float | int | bool]


def _r(rng: random.Random, low: float, high: float, digits: int = 2) -> float:
    return round(rng.uniform(low, high), digits)


#: kind -> parameter drawer (given the seed's RNG). Order matters for determinism: never reorder.
_DRAWERS: dict[str, Callable[[random.Random], Params]] = {
    "overload_503": lambda r: {"probability": _r(r, 0.3, 1.0)},
    "rate_limit_429": lambda r: {"retry_after_s": _r(r, 0.1, 0.4), "probability": _r(r, 0.3, 1.0)},
    "forbidden_403": lambda r: {"probability": _r(r, 0.2, 0.6)},
    "cloudflare_522": lambda r: {"probability": _r(r, 0.2, 0.6)},
    "dns_failure": lambda r: {},
    "latency": lambda r: {"ms": _r(r, 20.0, 150.0, 0), "jitter_ms": _r(r, 0.0, 80.0, 0)},
    "timeout_after_accept": lambda r: {"probability": _r(r, 0.3, 1.0)},
    "bad_gateway_after_accept": lambda r: {"probability": _r(r, 0.3, 1.0)},
    "ws_stall": lambda r: {},
    "ws_half_open": lambda r: {},
    "ws_drop": lambda r: {},
    "ws_reorder": lambda r: {"probability": _r(r, 0.1, 0.5)},
    "ws_duplicate": lambda r: {"probability": _r(r, 0.1, 0.5)},
    "ws_stale_timestamps": lambda r: {"delay_s": _r(r, 2.0, 6.0)},
    "ws_future_timestamps": lambda r: {"ahead_s": _r(r, 2.0, 6.0)},
    "ws_gap": lambda r: {"count": r.randint(1, 5)},
    "delayed_visibility": lambda r: {"delay_s": _r(r, 0.2, 1.0)},
    "late_fill": lambda r: {"delay_s": _r(r, 0.2, 1.0)},
    "cancel_race": lambda r: {"probability": _r(r, 0.3, 1.0)},
}

DEFAULT_KINDS: tuple[str, ...] = tuple(_DRAWERS)


@dataclass(frozen=True, slots=True)
class PlanConfig:
    window_s: float = 2.5          # faults start and end inside [0, window_s]
    max_faults: int = 3
    min_duration_s: float = 0.3
    max_duration_s: float = 1.5
    moves: int = 60                # trader moves drawn (the trader stops at the window's end)
    kinds: tuple[str, ...] = DEFAULT_KINDS

    def __post_init__(self) -> None:
        unknown = [k for k in self.kinds if k not in _DRAWERS]
        if unknown or not self.kinds:
            raise ValueError(f"unknown or no fault kinds: {unknown}; known: {sorted(_DRAWERS)}")
        if not 0 < self.min_duration_s <= self.max_duration_s < self.window_s:
            raise ValueError("need 0 < min_duration_s <= max_duration_s < window_s")


@dataclass(frozen=True, slots=True)
class FaultSpec:
    kind: str
    start_s: float
    duration_s: float
    params: tuple[tuple[str, float | int | bool], ...]

    def body(self) -> dict[str, object]:
        """The JSON body for ``POST /_sim/faults``."""
        return {"kind": self.kind, **dict(self.params), "duration_s": self.duration_s}

    def label(self) -> str:
        return self.kind


@dataclass(frozen=True, slots=True)
class TradeMove:
    side: str          # Buy | Sell
    offset_ticks: int  # distance from mid; a crossing order goes through the mid instead
    crossing: bool     # takes liquidity (fills move the position)
    cancel_roll: float  # < 0.35 with open orders: cancel one instead of placing
    pick: float        # which open order to cancel


@dataclass(frozen=True, slots=True)
class SeedPlan:
    seed: int
    faults: tuple[FaultSpec, ...]
    moves: tuple[TradeMove, ...]

    @property
    def end_s(self) -> float:
        return max((f.start_s + f.duration_s for f in self.faults), default=0.0)

    def digest(self) -> str:
        """A fingerprint of the whole plan (what invariant 7 compares)."""
        return hashlib.sha256(repr(self).encode()).hexdigest()[:16]

    def kinds(self) -> list[str]:
        return [f.kind for f in self.faults]


def plan_for(seed: int, config: PlanConfig | None = None,
             kinds: Sequence[str] | None = None) -> SeedPlan:
    """The plan of ``seed``: 1..max_faults faults inside the window, then the trader's moves."""
    cfg = config or PlanConfig()
    pool = tuple(kinds) if kinds is not None else cfg.kinds
    rng = random.Random(f"venueguard-chaos/{seed}")
    faults: list[FaultSpec] = []
    for _ in range(rng.randint(1, cfg.max_faults)):
        kind = pool[rng.randrange(len(pool))]
        duration = _r(rng, cfg.min_duration_s, cfg.max_duration_s)
        start = _r(rng, 0.0, cfg.window_s - duration)
        params = _DRAWERS[kind](rng)
        faults.append(FaultSpec(kind, start, duration, tuple(sorted(params.items()))))
    faults.sort(key=lambda f: (f.start_s, f.kind))
    return SeedPlan(seed, tuple(faults), _moves(rng, cfg.moves))


def _moves(rng: random.Random, n: int) -> tuple[TradeMove, ...]:
    return tuple(TradeMove(side=rng.choice(("Buy", "Sell")), offset_ticks=rng.randint(1, 8),
                           crossing=rng.random() < 0.15, cancel_roll=rng.random(),
                           pick=rng.random())
                 for _ in range(n))


def member_moves(plan: SeedPlan, member: int, config: PlanConfig | None = None
                 ) -> tuple[TradeMove, ...]:
    """The moves of fleet member ``member`` under ``plan``: member 0 trades the plan's own
    moves, every other member moves drawn from the seed and its number."""
    if member == 0:
        return plan.moves
    cfg = config or PlanConfig()
    return _moves(random.Random(f"venueguard-chaos/{plan.seed}/member/{member}"), cfg.moves)


#: How a fleet seed takes the lease owner away: its store ``refused`` (every call fails at once,
#: as when its connection to the store is reset) or ``hung`` (calls go unanswered until they
#: time out, as behind a partition), or its bot's clean ``stop`` (started again on its journal
#: when the cut ends). Order matters for determinism: never reorder.
CUT_WAYS: tuple[str, ...] = ("refused", "hung", "stop")
#: The share of fleet seeds that take the owner's store away (the rest keep one owner).
CUT_SHARE = 0.75


@dataclass(frozen=True, slots=True)
class LeaseCut:
    """A fleet seed's lease handover: ``start_s`` into the window, the member then holding the
    lease loses its fleet store (``way``, one of :data:`CUT_WAYS`) for ``duration_s``."""

    way: str
    start_s: float
    duration_s: float

    def as_dict(self) -> dict[str, object]:
        return {"way": self.way, "start_s": self.start_s, "duration_s": self.duration_s}


def lease_cut_for(seed: int, config: PlanConfig | None = None, *,
                  min_duration_s: float = 1.3, max_duration_s: float = 2.0
                  ) -> LeaseCut | None:
    """The lease handover of fleet seed ``seed`` (None: the lease stays with one member), drawn
    from the seed on its own stream, so a seed's faults and moves are the same with or without
    a fleet. The cut starts while the seed's faults run and lasts longer than the lease (the
    bounds are the caller's: above the lease's time to live and a follower's renewal pace)."""
    cfg = config or PlanConfig()
    if not 0 < min_duration_s <= max_duration_s:
        raise ValueError("need 0 < min_duration_s <= max_duration_s")
    rng = random.Random(f"venueguard-chaos/{seed}/lease")
    if rng.random() >= CUT_SHARE:
        return None
    way = CUT_WAYS[rng.randrange(len(CUT_WAYS))]
    start = _r(rng, 0.0, cfg.window_s * 0.8)
    return LeaseCut(way, start, _r(rng, min_duration_s, max_duration_s))
