"""Environment steps per second of ``venueguard/Venue-v0`` on one core, faults on.

Variants, each measured in this run (CPU seconds of this process, ``time.process_time``, best
of ``--repeat`` runs, so other processes on a shared machine disturb the figures less):

- ``engine alone``: the simulator's engine advanced 100 ms and drained, per step: the floor
  every variant pays (market process at the env's default rate);
- ``perfect, hold`` / ``faulty, hold``: the env doing nothing but watching (faulty mode runs the
  default scenarios, 503-lesson and flaky-acks);
- ``faulty, random actions``: uniformly sampled actions, drawn before the timed loop (refusals,
  rejections, UNKNOWN orders, cooldowns all happen);
- ``faulty, demo market maker``: the built-in policy, its own cost included;
- ``faulty, random via gym.make``: through Gymnasium's default wrappers (order enforcing and
  the passive checker);
- ``CartPole-v1``: Gymnasium's classic-control environment, for scale.

The target is 20,000 env steps/s with faults on; the script prints each figure against it.

    .venv/bin/python bench/gym_steps.py [--steps 30000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np

from venueguard.gym import ENV_ID, VenueEnv
from venueguard.gym.policies import MarketMakerPolicy
from venueguard.gym.venue import START_MS
from venueguard.sim.engine import Engine

TARGET = 20_000.0


def best_rate(run: Callable[[], int], repeat: int) -> float:
    best = 0.0
    for _ in range(repeat):
        started = time.process_time()
        steps = run()
        took = max(time.process_time() - started, 1e-9)
        best = max(best, steps / took)
    return best


def engine_alone(steps: int) -> Callable[[], int]:
    def run() -> int:
        engine = Engine(["XBTUSDT"], seed=1, rate_msgs_s=20.0, start_ms=START_MS,
                        publish_l2_25=False, publish_l2=False, slice_ms=100,
                        publish_positions=False)  # as the environment configures it
        for i in range(1, steps + 1):
            engine.advance(START_MS + i * 100)
            engine.drain_updates()
        return steps
    return run


def env_loop(mode: str, steps: int, actions: str) -> Callable[[], int]:
    """Episodes of the default length (3,000 steps), resets included in the time."""
    def run() -> int:
        env = VenueEnv(mode)
        obs, _ = env.reset(seed=1)
        step = env.step
        if actions == "hold":
            hold = np.zeros(5, dtype=np.int64)
            for _ in range(steps):
                if step(hold)[3]:
                    env.reset()
        else:
            policy = MarketMakerPolicy(env)
            policy.reset(1)
            for _ in range(steps):
                obs, _, _, truncated, _ = step(policy.act(obs))
                if truncated:
                    obs, _ = env.reset()
        return steps
    return run


def timed_random(mode: str, steps: int, repeat: int, *, wrapped: bool) -> float:
    """Actions drawn before the timed loop; episodes of the default length, resets timed."""
    best = 0.0
    for _ in range(repeat):
        env = gym.make(ENV_ID, mode=mode) if wrapped else VenueEnv(mode)
        env.reset(seed=1)
        env.action_space.seed(1)
        drawn = [env.action_space.sample() for _ in range(steps)]
        step = env.step
        reset = env.reset
        started = time.process_time()
        for action in drawn:
            if step(action)[3]:
                reset()
        best = max(best, steps / max(time.process_time() - started, 1e-9))
        env.close()
    return best


def cartpole(steps: int) -> Callable[[], int]:
    def run() -> int:
        env = gym.make("CartPole-v1").unwrapped
        env.reset(seed=1)
        step = env.step
        done = 0
        while done < steps:
            _, _, terminated, truncated, _ = step(done % 2)
            done += 1
            if terminated or truncated:
                env.reset()
        return steps
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    steps, repeat = args.steps, args.repeat
    figures = [
        ("engine alone (100 ms steps)", best_rate(engine_alone(steps), repeat)),
        ("perfect, hold", best_rate(env_loop("perfect", steps, "hold"), repeat)),
        ("faulty, hold", best_rate(env_loop("faulty", steps, "hold"), repeat)),
        ("faulty, random actions", timed_random("faulty", steps, repeat, wrapped=False)),
        ("faulty, demo market maker", best_rate(env_loop("faulty", steps, "mm"), repeat)),
        ("faulty, random via gym.make", timed_random("faulty", steps, repeat, wrapped=True)),
        ("CartPole-v1 (reference)", best_rate(cartpole(steps), repeat)),
    ]
    cart = figures[-1][1]
    print(f"env steps per CPU second, one core, best of {repeat} x {steps} steps "
          f"(target {TARGET:,.0f} with faults on)")
    print(f"{'variant':<32} {'steps/s':>10} {'vs target':>10} {'vs CartPole':>12}")
    for name, rate in figures:
        print(f"{name:<32} {rate:>10,.0f} {rate / TARGET:>9.2f}x {rate / cart:>11.3f}x")


if __name__ == "__main__":
    main()
