"""A Gymnasium environment where the venue refuses, delays and forgets (extra ``venueguard[gym]``).

``VenueEnv`` (registered as ``venueguard/Venue-v0``) runs venueguard's simulator in-process, in
simulated time, deterministically per seed. ``mode="faulty"`` applies the contract of what
reality may do to an action (every row of :data:`~venueguard.gym.contract.ROWS`, documented in
docs/gym.md and :mod:`venueguard.gym.contract`); ``mode="perfect"`` switches all of it off.

    import gymnasium as gym
    import venueguard.gym  # registers venueguard/Venue-v0

    env = gym.make("venueguard/Venue-v0", mode="faulty")
    obs, info = env.reset(seed=1)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    print(info["effects"])  # what reality did to the action

``venueguard gym-eval`` runs policies in both modes over N seeds and prints the gap.
"""

from __future__ import annotations

try:
    import gymnasium
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError("venueguard.gym needs Gymnasium: pip install 'venueguard[gym]'") from exc

from venueguard.gym.contract import ROWS, Contract
from venueguard.gym.env import VenueEnv
from venueguard.gym.spaces import ActionKind, encode

__all__ = ["ENV_ID", "ROWS", "ActionKind", "Contract", "VenueEnv", "encode"]

ENV_ID = "venueguard/Venue-v0"

if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="venueguard.gym.env:VenueEnv")
