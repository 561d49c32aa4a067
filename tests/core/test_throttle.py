"""Adaptive throttling: reject probability max(0, (requests - K*accepts) / (requests + 1))."""

from __future__ import annotations

import random

import pytest

from venueguard.core.throttle import AdaptiveThrottle, ThrottleConfig


class Fixed:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


def test_no_rejection_while_the_venue_accepts() -> None:
    throttle = AdaptiveThrottle(ThrottleConfig(k=2.0), Fixed(0.0))
    for i in range(100):
        assert throttle.should_send(i * 0.1)
        throttle.on_accepted(i * 0.1)
    assert throttle.reject_probability(10.0) == 0.0
    assert throttle.rejected == 0


def test_probability_formula() -> None:
    throttle = AdaptiveThrottle(ThrottleConfig(k=2.0, window_s=60.0), Fixed(0.99))
    for _ in range(30):
        throttle.should_send(1.0)
    for _ in range(5):
        throttle.on_accepted(1.0)
    assert throttle.requests(1.0) == 30 and throttle.accepts(1.0) == 5
    assert throttle.reject_probability(1.0) == pytest.approx((30 - 2 * 5) / 31)


def test_rejects_locally_when_venue_refuses_everything() -> None:
    throttle = AdaptiveThrottle(ThrottleConfig(k=2.0), random.Random(3))
    sent = sum(throttle.should_send(i * 0.01) for i in range(1000))
    assert throttle.rejected == 1000 - sent
    assert sent < 100  # the probability climbs towards 1
    assert throttle.reject_probability(10.0) > 0.95


def test_rejected_requests_still_count() -> None:
    throttle = AdaptiveThrottle(ThrottleConfig(k=1.0), Fixed(0.0))  # u=0 < p: always rejected
    throttle.should_send(0.0)  # p = 0 for the very first request: sent
    assert not throttle.should_send(0.0)
    assert throttle.requests(0.0) == 2


def test_window_forgets_old_counts() -> None:
    throttle = AdaptiveThrottle(ThrottleConfig(k=2.0, window_s=10.0, bucket_s=1.0), Fixed(0.9))
    for _ in range(50):
        throttle.should_send(0.5)
    assert throttle.reject_probability(5.0) > 0.9
    assert throttle.requests(9.9) == 50
    assert throttle.requests(10.0) == 0  # bucket [0, 1) is out of the ten newest buckets
    assert throttle.reject_probability(10.0) == 0.0
    for _ in range(5):
        throttle.should_send(12.0)
    assert throttle.requests(15.0) == 5  # partial advance keeps newer buckets
    assert throttle.requests(100.0) == 0  # a long jump clears everything


def test_clock_step_back_counts_in_newest_bucket() -> None:
    throttle = AdaptiveThrottle(ThrottleConfig(window_s=5.0), Fixed(0.9))
    throttle.should_send(4.0)
    throttle.should_send(2.0)
    assert throttle.requests(4.0) == 2


def test_recovery_lets_traffic_back() -> None:
    throttle = AdaptiveThrottle(ThrottleConfig(k=2.0, window_s=30.0), random.Random(1))
    for i in range(300):
        throttle.should_send(i * 0.1)  # 30 s of refusals
    assert throttle.reject_probability(30.0) > 0.9
    sent_per_window: list[int] = []
    for window in range(10):  # the venue accepts everything again
        sent = 0
        for i in range(300):
            now = 30.0 + window * 30.0 + i * 0.1
            if throttle.should_send(now):
                sent += 1
                throttle.on_accepted(now)
        sent_per_window.append(sent)
    assert sent_per_window[0] < sent_per_window[2] < sent_per_window[4]  # opens up gradually
    assert sent_per_window[-1] == 300
    assert throttle.reject_probability(330.0) == 0.0


@pytest.mark.parametrize("kwargs", [{"k": 0.5}, {"window_s": 0.0}, {"bucket_s": 0.0},
                                    {"window_s": 1.0, "bucket_s": 2.0}])
def test_bad_config_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ThrottleConfig(**kwargs)
