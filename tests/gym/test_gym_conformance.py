"""Gymnasium conformance: check_env, determinism per seed, vector environments."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium", reason="venueguard[gym] is not installed")

from gymnasium.utils.env_checker import check_env  # noqa: E402
from gymnasium.vector import AsyncVectorEnv, SyncVectorEnv  # noqa: E402

import venueguard.gym  # noqa: E402
from venueguard.gym import ENV_ID, VenueEnv  # noqa: E402


@pytest.mark.parametrize("mode", ["faulty", "perfect"])
def test_check_env_passes(mode: str) -> None:
    env = gym.make(ENV_ID, mode=mode, max_steps=200)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def flat(obs: dict[str, Any]) -> tuple[object, ...]:
    return tuple(v.tobytes() if isinstance(v, np.ndarray) else v for v in obs.values())


def trajectory(seed: int, steps: int = 400) -> list[tuple[Any, ...]]:
    env = VenueEnv("faulty", max_steps=steps)
    env.action_space.seed(seed)
    obs, info = env.reset(seed=seed)
    out: list[tuple[Any, ...]] = [(flat(obs), info)]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        out.append((flat(obs), reward, terminated, truncated, info))
    return out


def test_same_seed_same_trajectory_different_seed_different() -> None:
    first = trajectory(11)
    assert first == trajectory(11)
    assert first != trajectory(12)
    assert first[-1][3] is True  # truncated at max_steps
    assert any(step[4]["effects"] for step in first[1:])  # actions met the venue


def test_reset_with_the_same_seed_restarts_the_same_market() -> None:
    env = VenueEnv("faulty")
    obs_a, _ = env.reset(seed=5)
    for _ in range(50):
        env.step(np.zeros(5, dtype=np.int64))
    obs_b, _ = env.reset(seed=5)
    assert repr(obs_a) == repr(obs_b)


def test_registered_and_made_through_gymnasium() -> None:
    assert ENV_ID in gym.registry
    env = gym.make("venueguard/Venue-v0", mode="perfect")
    assert isinstance(env.unwrapped, VenueEnv) and env.unwrapped.mode == "perfect"
    env.close()
    assert venueguard.gym.VenueEnv is VenueEnv


def _make(mode: str) -> Any:
    return lambda: gym.make(ENV_ID, mode=mode, max_steps=30)


@pytest.mark.parametrize("vector_cls", [SyncVectorEnv, AsyncVectorEnv])
def test_vector_envs_step_and_autoreset(vector_cls: Any) -> None:
    envs = vector_cls([_make("faulty"), _make("perfect")])
    try:
        obs, _ = envs.reset(seed=[1, 2])
        assert obs["market"].shape == (2, 9) and obs["order_state"].shape == (2, 8)
        envs.action_space.seed(3)
        truncations = 0
        for _ in range(40):
            obs, rewards, _, truncated, _ = envs.step(envs.action_space.sample())
            truncations += int(truncated.sum())
            assert rewards.shape == (2,)
            assert envs.single_observation_space.contains(
                {k: v[0] for k, v in obs.items()})
        assert truncations == 2  # each env truncated once at 30 steps, then reset
    finally:
        envs.close()
