"""The observation and action spaces of :class:`~venueguard.gym.env.VenueEnv`, with their bounds.

Observation (a ``Dict``; every value is clipped into its documented bounds):

=================  ======================  ===================================================
key                space                   meaning
=================  ======================  ===================================================
``market``         Box(9,) float32         the monitor's snapshot features, in this order:
                                           spread [0, 1e4], spread_bps [0, 1e4],
                                           imbalance [-1, 1], churn_per_s [0, 1e4],
                                           trade_rate_per_s [0, 1e4], volume_per_s [0, 1e12],
                                           gap_events [0, 1e4], last_trade_age_s [-1, 1e6]
                                           (-1: none yet), data_age_s [0, 1e6]
``data_fresh``     Discrete(2)             1 while the agent's market data is fresh
``health``         Discrete(4)             venue health: HEALTHY, DEGRADED, COOLDOWN, BLOCKED
``regime``         Discrete(4)             NORMAL, CAUTIOUS, SAFE, RECOVERING
``order_state``    MultiDiscrete([10]*K)   per order slot: 0 empty, else 1 + the index of the
                                           order's state in ``ORDER_STATES`` (UNKNOWN is 9)
``order_info``     Box(K, 4) float32       per slot: side (+1 buy, -1 sell, 0 empty), price
                                           offset from the seen mid in ticks [-1e4, 1e4],
                                           quantity in lots [0, 1e6], filled lots [0, 1e6]
``position``       Box(1,) float32         the position the agent believes, in lots [-1e6, 1e6]
=================  ======================  ===================================================

Action: ``MultiDiscrete([5, 2, 2 * max_offset + 1, max_lots, K])``:
``[kind, side, offset, size, slot]`` with kind 0 hold, 1 place, 2 amend, 3 cancel, 4 cancel-all;
side 0 buy, 1 sell; ``offset - max_offset`` ticks away from the seen touch (positive: behind the
best price, negative: into the spread or through it); size ``1 + size`` lots; slot: the order
slot an amend or cancel targets. :func:`encode` builds one.
"""

from __future__ import annotations

import enum

import numpy as np
from gymnasium import spaces

from venueguard.core.orders import OrderState

__all__ = ["ORDER_STATES", "ActionKind", "action_space", "encode", "observation_space"]

ORDER_STATES: tuple[OrderState, ...] = tuple(OrderState)
STATE_CODE: dict[OrderState, int] = {s: i + 1 for i, s in enumerate(ORDER_STATES)}
MARKET_NAMES: tuple[str, ...] = (
    "spread", "spread_bps", "imbalance", "churn_per_s", "trade_rate_per_s", "volume_per_s",
    "gap_events", "last_trade_age_s", "data_age_s",
)
MARKET_LOW = np.array([0, 0, -1, 0, 0, 0, 0, -1, 0], dtype=np.float32)
MARKET_HIGH = np.array([1e4, 1e4, 1, 1e4, 1e4, 1e12, 1e4, 1e6, 1e6], dtype=np.float32)
INFO_LIMIT = 1e4
LOTS_LIMIT = 1e6


class ActionKind(enum.IntEnum):
    HOLD = 0
    PLACE = 1
    AMEND = 2
    CANCEL = 3
    CANCEL_ALL = 4


def observation_space(slots: int) -> spaces.Dict:
    info_low = np.tile(np.array([-1, -INFO_LIMIT, 0, 0], dtype=np.float32), (slots, 1))
    info_high = np.tile(np.array([1, INFO_LIMIT, LOTS_LIMIT, LOTS_LIMIT], dtype=np.float32),
                        (slots, 1))
    return spaces.Dict({
        "market": spaces.Box(MARKET_LOW, MARKET_HIGH, dtype=np.float32),
        "data_fresh": spaces.Discrete(2),
        "health": spaces.Discrete(4),
        "regime": spaces.Discrete(4),
        "order_state": spaces.MultiDiscrete([len(ORDER_STATES) + 1] * slots),
        "order_info": spaces.Box(info_low, info_high, dtype=np.float32),
        "position": spaces.Box(-LOTS_LIMIT, LOTS_LIMIT, shape=(1,), dtype=np.float32),
    })


def action_space(max_offset: int, max_lots: int, slots: int) -> spaces.MultiDiscrete:
    return spaces.MultiDiscrete([len(ActionKind), 2, 2 * max_offset + 1, max_lots, slots])


def encode(kind: ActionKind | int, *, side: str = "Buy", offset: int = 0, lots: int = 1,
           slot: int = 0, max_offset: int = 10) -> np.ndarray:
    """One action as the env expects it (``offset`` in ticks, ``lots`` >= 1)."""
    if side not in ("Buy", "Sell"):
        raise ValueError(f"side must be 'Buy' or 'Sell', not {side!r}")
    if not -max_offset <= offset <= max_offset:
        raise ValueError(f"offset must be within +-{max_offset} ticks, got {offset}")
    if lots < 1:
        raise ValueError(f"lots must be >= 1, got {lots}")
    return np.array([int(kind), 0 if side == "Buy" else 1, offset + max_offset, lots - 1, slot],
                    dtype=np.int64)
