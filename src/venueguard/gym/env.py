"""``VenueEnv``: a Gymnasium environment where the venue refuses, delays and forgets.

The simulator's engine and market process run in-process, in simulated time (``step_ms`` a
step), deterministically per seed. The observation, the action and the contract of what reality
may do to an action are documented in docs/gym.md (and in :mod:`venueguard.gym.spaces` and
:mod:`venueguard.gym.contract`).

Reward: the change of the account's equity at the venue (realised PnL net of fees plus
unrealised PnL at the mid price), in the settlement currency (USDT for ``XBTUSDT``). It is the
venue's truth, not what the agent believes: a late fill moves the reward before the agent's
position. Episodes are truncated after ``max_steps``; they never terminate early.

``info`` of every step::

    step            the number of steps taken so far
    effects         what reality did to each action this step: dicts with ``action`` (place,
                    amend, cancel, cancel_all), ``result`` (accepted, rejected, refused,
                    in_flight, unknown), ``reason``, ``step`` (the index of the step it
                    happened in, from 0) and, when known, ``cl_ord_id``,
                    ``sent_step``, ``delay_steps``, ``retry_after_s``, ``evidence_in_steps``;
                    requests sent earlier appear in the step their answer arrives
    events          what happened without an action: fault (a fault started), stale (the client
                    gave up on a silent connection), resync, late_fill, evidence (an UNKNOWN
                    order settled, with its state)
    health, regime  venue health and outage regime names
    data_fresh      whether the agent's market data is fresh
    data_rejected   messages the client dropped so far (``ws_reorder``, ``ws_duplicate``)
    position        the position the agent believes (contracts)
    venue_position  the position the venue holds (contracts)
    equity          the venue's equity figure the reward is taken from
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np

from venueguard.core.health import VenueState
from venueguard.core.regime import Regime
from venueguard.gym.contract import Contract, contract_for
from venueguard.gym.slots import TERMINAL_VALUES
from venueguard.gym.spaces import (
    MARKET_HIGH,
    STATE_CODE,
    ActionKind,
    action_space,
    encode,
    observation_space,
)
from venueguard.gym.venue import SimVenue

__all__ = ["VenueEnv"]

_MAX_AGE = float(MARKET_HIGH[-1])
# keyed by value: a str hash is cached, an Enum member's is computed in Python on every lookup
_HEALTH = {s.value: i for i, s in enumerate(VenueState)}
_REGIME = {r.value: i for i, r in enumerate(Regime)}
_CODE = {state.value: code for state, code in STATE_CODE.items()}
Obs = dict[str, Any]


class VenueEnv(gym.Env[Obs, np.ndarray]):
    """See the module docstring and docs/gym.md."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, mode: str = "faulty", *, contract: Contract | None = None,
                 scenarios: Sequence[str] | None = None, symbol: str = "XBTUSDT",
                 step_ms: int = 100, max_steps: int = 3000, rate_msgs_s: float = 20.0,
                 burstiness: float = 1.0, slots: int = 8, max_offset: int = 10,
                 max_lots: int = 5) -> None:
        self.mode = mode
        chosen = contract_for(mode, contract)
        if scenarios is not None:
            chosen = replace(chosen, scenarios=tuple(scenarios))
        self.contract = chosen
        for name, value in (("step_ms", step_ms), ("max_steps", max_steps), ("slots", slots),
                            ("max_offset", max_offset), ("max_lots", max_lots)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
        if not rate_msgs_s > 0:
            raise ValueError(f"rate_msgs_s must be > 0, got {rate_msgs_s!r}")
        self.symbol = symbol
        self.step_ms = step_ms
        self.max_steps = max_steps
        self.rate_msgs_s = float(rate_msgs_s)
        self.burstiness = float(burstiness)
        self.slots = slots
        self.max_offset = max_offset
        self.max_lots = max_lots
        self.observation_space = observation_space(slots)
        self.action_space = action_space(max_offset, max_lots, slots)
        self._nvec = [int(n) for n in self.action_space.nvec]
        self._venue: SimVenue | None = None
        self._equity = 0.0
        self._empty_state = np.zeros(slots, dtype=np.int64)
        self._empty_info = np.zeros((slots, 4), dtype=np.float32)
        self._empty_position = np.zeros(1, dtype=np.float32)
        self._noted: tuple[bool, float, str, str] = (False, 0, "HEALTHY", "NORMAL")

    # ---------------------------------------------------------------------------- the API
    @property
    def venue(self) -> SimVenue:
        """The episode's venue (after :meth:`reset`)."""
        if self._venue is None:
            raise RuntimeError("call reset() before using the environment")
        return self._venue

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[Obs, dict[str, Any]]:
        super().reset(seed=seed)
        venue_seed = int(self.np_random.integers(0, 2**31 - 1))
        self._venue = SimVenue(symbol=self.symbol, seed=venue_seed, contract=self.contract,
                               step_ms=self.step_ms, rate_msgs_s=self.rate_msgs_s,
                               burstiness=self.burstiness, slots=self.slots,
                               max_offset=self.max_offset, max_lots=self.max_lots)
        self._equity = 0.0
        for raw in (options or {}).get("faults", ()):
            self._venue.inject(raw)
        return self._observe(), self._info()

    def step(self, action: np.ndarray | Sequence[int]
             ) -> tuple[Obs, float, bool, bool, dict[str, Any]]:
        venue = self.venue
        values = action.tolist() if isinstance(action, np.ndarray) else [int(a) for a in action]
        n0, n1, n2, n3, n4 = self._nvec
        if len(values) != 5 or not (0 <= values[0] < n0 and 0 <= values[1] < n1
                                    and 0 <= values[2] < n2 and 0 <= values[3] < n3
                                    and 0 <= values[4] < n4):
            raise ValueError(f"action {values!r} is outside {self.action_space}")
        venue.step(values)
        equity = venue.equity()
        reward = equity - self._equity
        self._equity = equity
        truncated = venue.step_index >= self.max_steps
        return self._observe(), reward, False, truncated, self._info()

    def inject_fault(self, fault: Mapping[str, object]) -> str:
        """Start a simulator fault now (``{"kind": K, ...params, "duration_s": S?}``, as for
        ``POST /_sim/faults``); returns its id. A fault whose contract row is off does nothing."""
        return self.venue.inject(fault)

    def encode(self, kind: ActionKind | int, *, side: str = "Buy", offset: int = 0,
               lots: int = 1, slot: int = 0) -> np.ndarray:
        """One action of this env's action space (see :func:`venueguard.gym.spaces.encode`)."""
        return encode(kind, side=side, offset=offset, lots=lots, slot=slot,
                      max_offset=self.max_offset)

    # ------------------------------------------------------------------------ observation
    def _observe(self) -> Obs:
        """The observation (module docstring); also notes what ``_info`` repeats."""
        venue = self.venue
        feed = venue.feed
        now_s = venue.now_s
        age = now_s - feed.last_data_s
        market = np.array([*feed.features, age if age < _MAX_AGE else _MAX_AGE],
                          dtype=np.float32)
        state = self._empty_state.copy()
        info = self._empty_info.copy()
        orders = venue.orders
        table = orders.table.orders
        spec = venue.spec
        lot = spec.lot_size
        tick_size = spec.tick_size
        bid, ask = feed.bid_tick, feed.ask_tick
        mid = None if bid is None or ask is None else (bid + ask) / 2.0
        finished: list[int] = []
        for index, cl in enumerate(orders.slots):
            if cl is None:
                continue
            order = table[cl]
            value = order.state._value_
            state[index] = _CODE[value]
            if value in TERMINAL_VALUES:
                finished.append(index)
            offset = 0.0
            price = order.price
            if mid is not None and price is not None:
                offset = price / tick_size - mid
                offset = -1e4 if offset < -1e4 else 1e4 if offset > 1e4 else offset
            qty, cum = order.qty / lot, order.cum_qty / lot
            info[index] = (1.0 if order.side == "Buy" else -1.0, offset,
                           qty if qty < 1e6 else 1e6, cum if cum < 1e6 else 1e6)
        orders.mark_shown(finished)
        believed = orders.table.position(self.symbol)
        position = self._empty_position.copy()
        scaled = believed / lot
        position[0] = -1e6 if scaled < -1e6 else 1e6 if scaled > 1e6 else scaled
        fresh = feed.fresh(now_s)
        health = venue.health.state._value_
        regime = venue.regime.regime._value_
        self._noted = (fresh, believed, health, regime)
        return {
            "market": market,
            "data_fresh": 1 if fresh else 0,  # an int: Discrete spaces hold ints
            "health": _HEALTH[health],
            "regime": _REGIME[regime],
            "order_state": state,
            "order_info": info,
            "position": position,
        }

    def _info(self) -> dict[str, Any]:
        venue = self.venue
        fresh, believed, health, regime = self._noted
        return {
            "step": venue.step_index,
            "effects": venue.effects,
            "events": venue.events,
            "health": health,
            "regime": regime,
            "data_fresh": fresh,
            "data_rejected": venue.feed.rejected,
            "position": believed,
            "venue_position": venue.venue_position(),
            "equity": self._equity,
        }
