"""Backoff edges the formula tests leave open: exact error messages, the clamp of an
out-of-range random value, the cap reached exactly, and decorrelated jitter after ``reset()``."""

from __future__ import annotations

import re

import pytest

from venueguard.core.backoff import Backoff, BackoffConfig, Jitter, compute_delay_s


class Fixed:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_s": 0.0}, "base_s must be > 0, got 0.0"),
        ({"base_s": 2.0, "cap_s": 1.0}, "cap_s (1.0) must be >= base_s (2.0)"),
        ({"multiplier": 0.5}, "multiplier must be >= 1, got 0.5"),
        ({"reset_after_s": -1.0}, "reset_after_s must be >= 0, got -1.0"),
    ],
)
def test_bad_config_names_the_field_and_value(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        BackoffConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("reset_after_s", [0.0, 0.5])
def test_short_reset_periods_are_valid(reset_after_s: float) -> None:
    """0 (any success resets) and sub-second periods are accepted, and 0 resets at once."""
    config = BackoffConfig(base_s=1.0, cap_s=8.0, jitter=Jitter.NONE, reset_after_s=reset_after_s)
    backoff = Backoff(config, Fixed(0.0))
    assert [backoff.next_delay_s(0.0) for _ in range(3)] == [1.0, 2.0, 4.0]
    backoff.on_success(1.0)
    assert backoff.next_delay_s(1.0 + reset_after_s) == 1.0


def test_random_value_between_one_and_two_is_clamped_to_one() -> None:
    """An RNG returning 1.5 is treated as 1.0: the full step, never 1.5 times it."""
    config = BackoffConfig(base_s=1.0, cap_s=8.0, jitter=Jitter.FULL)
    assert compute_delay_s(config, 1, 1.0, Fixed(1.5)) == 2.0
    equal = BackoffConfig(base_s=1.0, cap_s=8.0, jitter=Jitter.EQUAL)
    assert compute_delay_s(equal, 1, 1.0, Fixed(1.5)) == 2.0


def test_capped_attempt_returns_the_cap_exactly() -> None:
    """Where base * multiplier ** n rounds a hair below cap_s, step n is still cap_s itself."""
    config = BackoffConfig(base_s=4.6958066647297745, cap_s=408.49435496339686,
                           multiplier=4.430900018770143, jitter=Jitter.NONE)
    assert config.capped_attempt == 3
    assert config.base_s * config.multiplier**3 < config.cap_s
    backoff = Backoff(config, Fixed(0.0))
    assert [backoff.next_delay_s(0.0) for _ in range(5)][3:] == [config.cap_s, config.cap_s]


def test_decorrelated_jitter_starts_from_base_after_reset() -> None:
    """After reset() the previous delay is base_s again: base + u * (3 * base - base)."""
    config = BackoffConfig(base_s=1.0, cap_s=100.0, jitter=Jitter.DECORRELATED)
    backoff = Backoff(config, Fixed(0.5))
    first = [backoff.next_delay_s(0.0) for _ in range(3)]
    assert first == [2.0, 3.5, 5.75]
    backoff.reset()
    assert backoff.attempt == 0
    assert backoff.next_delay_s(0.0) == 2.0
