"""Backoff: formulas, caps, reset after a stable period, per-call state, injected RNG."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from venueguard.core.backoff import Backoff, BackoffConfig, Jitter, compute_delay_s


class Fixed:
    """An RNG that always returns the same value."""

    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


def delays(config: BackoffConfig, rng: object, n: int) -> list[float]:
    backoff = Backoff(config, rng)  # type: ignore[arg-type]
    return [backoff.next_delay_s(0.0) for _ in range(n)]


def test_no_jitter_doubles_up_to_the_cap() -> None:
    config = BackoffConfig(base_s=0.5, cap_s=10.0, jitter=Jitter.NONE)
    assert delays(config, Fixed(0.9), 7) == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_full_jitter_scales_the_step() -> None:
    config = BackoffConfig(base_s=1.0, cap_s=100.0, jitter=Jitter.FULL)
    assert delays(config, Fixed(0.25), 4) == [0.25, 0.5, 1.0, 2.0]
    assert delays(config, Fixed(0.0), 3) == [0.0, 0.0, 0.0]


def test_equal_jitter_keeps_half_the_step() -> None:
    config = BackoffConfig(base_s=2.0, cap_s=100.0, jitter=Jitter.EQUAL)
    assert delays(config, Fixed(0.0), 3) == [1.0, 2.0, 4.0]
    assert delays(config, Fixed(0.5), 3) == [1.5, 3.0, 6.0]


def test_decorrelated_jitter_grows_from_previous_delay() -> None:
    config = BackoffConfig(base_s=1.0, cap_s=20.0, jitter=Jitter.DECORRELATED)
    # u=1-: delay -> base + (3*prev - base) = 3*prev: 3, 9, 20 (cap)
    got = delays(config, Fixed(0.999999), 4)
    assert got[0] == pytest.approx(3.0, rel=1e-5)
    assert got[1] == pytest.approx(9.0, rel=1e-5)
    assert got[2:] == [20.0, 20.0]
    assert delays(config, Fixed(0.0), 3) == [1.0, 1.0, 1.0]


def test_reset_after_a_stable_period() -> None:
    config = BackoffConfig(base_s=1.0, cap_s=60.0, jitter=Jitter.NONE, reset_after_s=30.0)
    backoff = Backoff(config, Fixed(0.5))
    assert [backoff.next_delay_s(t) for t in (0.0, 1.0, 3.0)] == [1.0, 2.0, 4.0]
    backoff.on_success(10.0)
    assert backoff.stable_since == 10.0
    assert backoff.next_delay_s(39.9) == 8.0  # up for 29.9 s: not stable yet
    backoff.on_success(50.0)
    backoff.on_success(60.0)  # still the same run of success
    assert backoff.next_delay_s(80.0) == 1.0  # up for 30 s: starts over
    assert backoff.attempt == 1


def test_explicit_reset() -> None:
    backoff = Backoff(BackoffConfig(jitter=Jitter.NONE), Fixed(0.5))
    for _ in range(5):
        backoff.next_delay_s(0.0)
    backoff.reset()
    assert backoff.attempt == 0 and backoff.next_delay_s(0.0) == 0.5


def test_factor_and_floor_from_a_rule() -> None:
    backoff = Backoff(BackoffConfig(base_s=0.1, cap_s=5.0, jitter=Jitter.NONE), Fixed(0.5))
    assert backoff.next_delay_s(0.0, factor=2.0, min_s=0.5) == 0.5
    assert backoff.next_delay_s(0.0, factor=2.0, min_s=0.5) == 0.5  # 0.2 * 2 = 0.4 < 0.5
    assert backoff.next_delay_s(0.0, factor=2.0, min_s=0.5) == 0.8
    for _ in range(10):
        assert backoff.next_delay_s(0.0, factor=2.0) <= 5.0  # the cap still holds


def test_state_is_per_call() -> None:
    config = BackoffConfig(jitter=Jitter.NONE)
    first, second = Backoff(config, Fixed(0.5)), Backoff(config, Fixed(0.5))
    for _ in range(4):
        first.next_delay_s(0.0)
    assert second.next_delay_s(0.0) == config.base_s
    assert first.attempt == 4 and second.attempt == 1


def test_same_seed_same_delays() -> None:
    config = BackoffConfig(jitter=Jitter.DECORRELATED)
    assert delays(config, random.Random(7), 20) == delays(config, random.Random(7), 20)
    assert delays(config, random.Random(7), 20) != delays(config, random.Random(8), 20)


def test_out_of_range_rng_is_clamped() -> None:
    config = BackoffConfig(base_s=1.0, cap_s=8.0, jitter=Jitter.FULL)
    assert compute_delay_s(config, 3, 1.0, Fixed(7.0)) == 8.0
    assert compute_delay_s(config, 3, 1.0, Fixed(-1.0)) == 0.0


@pytest.mark.parametrize(
    "kwargs",
    [{"base_s": 0.0}, {"base_s": 2.0, "cap_s": 1.0}, {"multiplier": 0.5},
     {"reset_after_s": -1.0}],
)
def test_bad_config_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BackoffConfig(**kwargs)  # type: ignore[arg-type]


def test_multiplier_one_is_constant() -> None:
    config = BackoffConfig(base_s=2.0, cap_s=9.0, multiplier=1.0, jitter=Jitter.NONE)
    assert delays(config, Fixed(0.5), 4) == [2.0, 2.0, 2.0, 2.0]


@given(
    base_s=st.floats(0.001, 10.0),
    extra_s=st.floats(0.0, 1000.0),
    multiplier=st.floats(1.0, 10.0),
    jitter=st.sampled_from(list(Jitter)),
    attempt=st.integers(0, 10_000),
    prev_s=st.floats(0.0, 1e6),
    u=st.floats(0.0, 1.0, exclude_max=True),
)
def test_property_delay_within_bounds_for_any_attempt(
    base_s: float, extra_s: float, multiplier: float, jitter: Jitter, attempt: int,
    prev_s: float, u: float,
) -> None:
    config = BackoffConfig(base_s=base_s, cap_s=base_s + extra_s, multiplier=multiplier,
                           jitter=jitter)
    delay = compute_delay_s(config, attempt, prev_s, Fixed(u))
    assert 0.0 <= delay <= config.cap_s
    if multiplier == 1 or attempt * math.log(multiplier) >= math.log(config.cap_s / base_s):
        step = config.cap_s if multiplier > 1 else base_s
    else:
        step = base_s * multiplier**attempt
    if jitter is Jitter.NONE:
        assert delay == pytest.approx(step)
    elif jitter is Jitter.EQUAL:
        assert step / 2 - 1e-9 <= delay <= step + 1e-9
    elif jitter is Jitter.FULL:
        assert delay <= step + 1e-9
    else:
        assert delay >= min(base_s, config.cap_s) - 1e-9


@given(
    jitter=st.sampled_from(list(Jitter)),
    seed=st.integers(0, 2**32),
    n=st.integers(1, 200),
    factor=st.floats(1.0, 5.0),
    min_s=st.floats(0.0, 2.0),
)
def test_property_sequences_stay_within_cap_and_floor(
    jitter: Jitter, seed: int, n: int, factor: float, min_s: float
) -> None:
    config = BackoffConfig(base_s=0.2, cap_s=15.0, jitter=jitter)
    backoff = Backoff(config, random.Random(seed))
    for i in range(n):
        delay = backoff.next_delay_s(float(i), factor=factor, min_s=min_s)
        assert min_s <= delay <= max(config.cap_s, min_s)
