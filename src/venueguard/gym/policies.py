"""Policies for ``venueguard gym-eval``: the demo market maker, a random policy, and user ones.

A policy has ``act(obs) -> action`` and, optionally, ``reset(seed)`` (called before each episode).
:func:`load_policy` accepts ``mm`` (the market maker), ``random``, or ``MODULE:ATTR``: a class is
instantiated with the environment (``ATTR(env)``), any other callable is used as ``act``.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from venueguard.core.orders import OrderState
from venueguard.core.regime import Regime
from venueguard.gym.env import Obs, VenueEnv
from venueguard.gym.spaces import STATE_CODE, ActionKind

__all__ = ["MarketMakerPolicy", "Policy", "RandomPolicy", "load_policy"]

BUILT_IN = ("mm", "random")
_RESTING = frozenset({STATE_CODE[OrderState.NEW], STATE_CODE[OrderState.PARTIALLY_FILLED]})
_OPEN = _RESTING | {STATE_CODE[OrderState.PENDING_CANCEL], STATE_CODE[OrderState.PENDING_AMEND]}
_NO_NEW_ORDERS = frozenset({list(Regime).index(Regime.SAFE), list(Regime).index(Regime.RECOVERING)})


class Policy(Protocol):
    def act(self, obs: Obs) -> np.ndarray: ...


class RandomPolicy:
    """Uniform samples from the action space (seeded by :meth:`reset`)."""

    def __init__(self, env: VenueEnv) -> None:
        self.space = env.action_space

    def reset(self, seed: int) -> None:
        self.space.seed(seed)

    def act(self, obs: Obs) -> np.ndarray:
        return self.space.sample()


class MarketMakerPolicy:
    """The monitor's demo trader (``--trade demo``) as a policy, with its defaults.

    Every ``every_steps`` (0.5 s at 100 ms steps) it cancels the oldest resting order once it
    has rested ``ttl_steps`` (5 s); otherwise, when the data is fresh, fewer than ``max_open``
    orders are open and the regime is not SAFE or RECOVERING, it places one post-only lot on a
    random side, 1 to 7 ticks behind the touch (about 2 to 8 ticks from the mid).
    """

    def __init__(self, env: VenueEnv, *, every_steps: int = 5, ttl_steps: int = 50,
                 max_open: int = 3, min_offset: int = 1, max_offset: int = 7) -> None:
        self.env = env
        self.every_steps = every_steps
        self.ttl_steps = ttl_steps
        self.max_open = max_open
        self.min_offset = min(min_offset, env.max_offset)
        self.max_offset = min(max_offset, env.max_offset)
        self._rng = random.Random(0)
        self._born: dict[int, int] = {}
        self._step = 0
        self._hold = env.encode(ActionKind.HOLD)

    def reset(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._born = {}
        self._step = 0

    def act(self, obs: Obs) -> np.ndarray:
        step = self._step
        self._step += 1
        states: list[int] = obs["order_state"].tolist()
        for slot, code in enumerate(states):
            if code == 0:
                self._born.pop(slot, None)
            elif slot not in self._born:
                self._born[slot] = step
        hold = self._hold.copy()
        if step % self.every_steps:
            return hold
        resting = sorted((self._born[s], s) for s, code in enumerate(states) if code in _RESTING)
        if resting and step - resting[0][0] >= self.ttl_steps:
            return self.env.encode(ActionKind.CANCEL, slot=resting[0][1])
        if sum(1 for code in states if code in _OPEN) >= self.max_open:
            return hold
        if not obs["data_fresh"] or int(obs["regime"]) in _NO_NEW_ORDERS:
            return hold
        side = "Buy" if self._rng.random() < 0.5 else "Sell"
        offset = self._rng.randint(self.min_offset, self.max_offset)
        return self.env.encode(ActionKind.PLACE, side=side, offset=offset, lots=1)


class _Callable:
    def __init__(self, fn: Callable[[Obs], Any]) -> None:
        self.fn = fn

    def act(self, obs: Obs) -> np.ndarray:
        return np.asarray(self.fn(obs), dtype=np.int64)


def load_policy(spec: str, env: VenueEnv) -> Policy:
    """``mm``, ``random`` or ``MODULE:ATTR`` (module docstring); ValueError when unusable."""
    if spec == "mm":
        return MarketMakerPolicy(env)
    if spec == "random":
        return RandomPolicy(env)
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"policy {spec!r}: use {' or '.join(BUILT_IN)} or MODULE:ATTR")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"policy {spec!r}: cannot import {module_name}: {exc}") from None
    target = getattr(module, attr, None)
    if target is None:
        raise ValueError(f"policy {spec!r}: {module_name} has no attribute {attr!r}")
    if isinstance(target, type):
        policy = target(env)
        if not callable(getattr(policy, "act", None)):
            raise ValueError(f"policy {spec!r}: instances need an act(obs) method")
        return policy  # type: ignore[no-any-return]
    if callable(target):
        return _Callable(target)
    raise ValueError(f"policy {spec!r}: {attr} is neither a class nor a callable")
