"""Load shedding that follows the market: how likely a venue answers "overloaded" right now.

A venue sheds load when its matching engine has more to do than it can: on market bursts, when
every participant sends and amends at once. The simulator models that with two inputs and one
curve (the full story, with figures, is in ``docs/overload.md``):

- **load**, in units of the calm market: the market intensity of the order's instrument
  (``1 + excitation`` of the market process, :mod:`venueguard.sim.market`: about 1 when calm,
  4 to 10 in a burst) plus the venue's recent order rate (orders, amends and cancels per second,
  an exponential average with time constant ``OrderRate.tau_s``) times ``order_weight_s``. The
  market term makes 503s arrive with bursts and persist while the burst decays (the excitation
  is self-exciting, so bursts and their 503s cluster); the order term makes a client that
  hammers the venue during a burst raise its own odds of being shed.
- **curve** (:meth:`OverloadModel.probability`): ``mode="load"`` sheds nothing up to
  ``threshold`` and then rises towards ``ceiling``:
  ``ceiling * (1 - exp(-(load - threshold) / scale))``. ``mode="intensity"`` is the older linear
  rule ``ceiling * load`` capped at 1 (no threshold: a calm market still sheds at about
  ``ceiling``). ``mode="flat"`` ignores the load.

Determinism. The model holds no randomness: :meth:`OverloadModel.decide` draws once from the
caller's ``random.Random`` (the fault's own seeded stream in the simulator), and the load is a
function of simulated time (the market process is seeded; the order rate is fed the simulated
times of requests). So the same seed and the same requests at the same simulated times give the
same decisions.

Any dialect uses it the same way::

    model = OverloadModel.from_params(fault.params)   # or OverloadModel(ceiling=0.9, ...)
    load = model.load(intensity, order_rate.rate(now_s))
    if model.decide(load, fault.rng):
        ...answer 503 / -1007
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = ["Mode", "OrderRate", "OverloadModel"]

Mode = Literal["flat", "intensity", "load"]


@dataclass(frozen=True, slots=True)
class OverloadModel:
    """The shedding curve over load (see the module docstring)."""

    ceiling: float = 1.0  # probability as the load grows (mode "load"), or the slope
    mode: Mode = "load"
    threshold: float = 2.0  # load absorbed without shedding: twice the calm market
    scale: float = 1.5  # load above the threshold that brings p to 63% of the ceiling
    order_weight_s: float = 0.5  # one order per second adds this much load

    def __post_init__(self) -> None:
        if not 0.0 <= self.ceiling <= 1.0:
            raise ValueError(f"ceiling must be within [0, 1], got {self.ceiling!r}")
        if self.threshold < 0 or self.scale <= 0 or self.order_weight_s < 0:
            raise ValueError("threshold and order_weight_s must be >= 0 and scale > 0")

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> OverloadModel:
        """From ``overload_503`` fault parameters (``probability``, ``follow_intensity``,
        ``follow_load``, ``load_threshold``, ``load_scale``, ``order_weight_s``)."""
        mode: Mode = ("load" if params.get("follow_load") else
                      "intensity" if params.get("follow_intensity") else "flat")
        defaults = cls()
        return cls(
            ceiling=_num(params, "probability", 1.0), mode=mode,
            threshold=_num(params, "load_threshold", defaults.threshold),
            scale=_num(params, "load_scale", defaults.scale),
            order_weight_s=_num(params, "order_weight_s", defaults.order_weight_s))

    def load(self, intensity: float, orders_per_s: float = 0.0) -> float:
        """The venue's load from market intensity and order rate (intensity alone unless the
        mode is ``load``, so ``intensity`` keeps its older meaning)."""
        load = max(0.0, intensity)
        if self.mode == "load":
            load += self.order_weight_s * max(0.0, orders_per_s)
        return load

    def probability(self, load: float) -> float:
        """Probability that one order-entry request is shed at this load."""
        if self.mode == "flat":
            return self.ceiling
        if self.mode == "intensity":
            return min(1.0, self.ceiling * max(0.0, load))
        excess = load - self.threshold
        if excess <= 0:
            return 0.0
        return self.ceiling * -math.expm1(-excess / self.scale)

    def decide(self, load: float, rng: random.Random) -> bool:
        """One decision: True = shed this request. Draws once from ``rng`` unless p is 0 or 1."""
        p = self.probability(load)
        if p <= 0.0:
            return False
        if p >= 1.0:
            return True
        return rng.random() < p


class OrderRate:
    """Orders per second at the venue, an exponential average fed the requests' times.

    ``rate(now_s)`` is ``sum(exp(-(now_s - t_i) / tau_s)) / tau_s`` over the requests so far:
    a steady ``r`` requests per second reads ``r`` after a few ``tau_s``. Time is injected
    (simulated seconds), so the value is reproducible.
    """

    __slots__ = ("_at_s", "_level", "tau_s")

    def __init__(self, tau_s: float = 2.0) -> None:
        if tau_s <= 0:
            raise ValueError(f"tau_s must be > 0, got {tau_s!r}")
        self.tau_s = tau_s
        self._level = 0.0
        self._at_s = -math.inf

    def _decayed(self, now_s: float) -> float:
        if self._level == 0.0 or now_s <= self._at_s:
            return self._level
        return self._level * math.exp(-(now_s - self._at_s) / self.tau_s)

    def on_request(self, now_s: float) -> None:
        """One order, amend or cancel request reached the venue at ``now_s``."""
        self._level = self._decayed(now_s) + 1.0
        self._at_s = max(self._at_s, now_s)

    def rate(self, now_s: float) -> float:
        return self._decayed(now_s) / self.tau_s


def _num(params: Mapping[str, object], name: str, default: float) -> float:
    value = params.get(name, default)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else default
