"""Adaptive throttle edges: exact config bounds and messages, buckets longer than a second,
the draw at exactly the reject probability, and no randomness used while nothing is refused."""

from __future__ import annotations

import re

import pytest

from venueguard.core.throttle import AdaptiveThrottle, ThrottleConfig


class Fixed:
    def __init__(self, value: float) -> None:
        self.value = value
        self.draws = 0

    def random(self) -> float:
        self.draws += 1
        return self.value


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0.5}, "k must be >= 1"),
        ({"window_s": 0.0}, "need 0 < bucket_s <= window_s"),
        ({"bucket_s": 0.0}, "need 0 < bucket_s <= window_s"),
        ({"window_s": 1.0, "bucket_s": 2.0}, "need 0 < bucket_s <= window_s"),
    ],
)
def test_bad_config_says_which_bound(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        ThrottleConfig(**kwargs)


def test_short_windows_and_a_single_bucket_are_valid() -> None:
    assert ThrottleConfig(window_s=0.5, bucket_s=0.25).buckets == 2
    assert ThrottleConfig(window_s=3.0, bucket_s=3.0).buckets == 1


def test_two_second_buckets_forget_by_bucket() -> None:
    """window 10 s in 2 s buckets: at t=11 the window holds buckets [2, 12), so a request at
    t=1 (bucket [0, 2)) is gone and those at t=2 and t=4 are kept."""
    throttle = AdaptiveThrottle(ThrottleConfig(window_s=10.0, bucket_s=2.0), Fixed(0.99))
    for t in (1.0, 2.0, 4.0):
        throttle.should_send(t)
    assert throttle.requests(9.9) == 3
    assert throttle.requests(11.0) == 2
    assert throttle.requests(13.9) == 1
    assert throttle.requests(14.0) == 0


def test_a_draw_equal_to_the_probability_sends() -> None:
    """Refuse when the draw is strictly below the probability: 3 refused requests and no
    accept give (3 - 0) / (3 + 1) = 0.75, and a draw of exactly 0.75 is sent."""
    throttle = AdaptiveThrottle(ThrottleConfig(), Fixed(0.75))
    for _ in range(3):
        throttle.should_send(0.0)
    assert throttle.reject_probability(0.0) == 0.75
    assert throttle.should_send(0.0)
    assert throttle.rejected == 0


def test_no_random_draw_while_the_probability_is_zero() -> None:
    """A healthy venue costs no randomness, so a shared seeded source stays reproducible."""
    rng = Fixed(0.0)
    throttle = AdaptiveThrottle(ThrottleConfig(), rng)
    for t in range(5):
        assert throttle.should_send(float(t))
        throttle.on_accepted(float(t))
    assert rng.draws == 0
