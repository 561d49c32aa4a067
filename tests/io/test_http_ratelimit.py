"""Connection-open window and the REST limiter fed by x-ratelimit headers (numbers as time)."""

from __future__ import annotations

import pytest

from venueguard.core.classify import RateLimit
from venueguard.io.ratelimit import OpenRateLimiter, RestRateLimiter


def test_open_limiter_waits_rather_than_exceeding_60_per_hour() -> None:
    limiter = OpenRateLimiter(max_opens=60, window_s=3600.0)
    for i in range(60):
        assert limiter.delay_s(float(i)) == 0.0
        limiter.on_open(float(i))
    assert limiter.delay_s(100.0) == pytest.approx(3500.0)  # the first open leaves at t=3600
    assert limiter.delay_s(3600.5) == 0.0
    assert limiter.opens_in_window(3600.5) == 59
    with pytest.raises(ValueError):
        OpenRateLimiter(max_opens=0)


def test_rest_limiter_waits_for_reset_when_remaining_hits_reserve() -> None:
    limiter = RestRateLimiter(reserve=1)
    limiter.on_headers(RateLimit(limit=120, remaining=5, reset_epoch_s=1003.0), 10.0, 1000.0)
    assert limiter.delay_s(10.0) == 0.0
    limiter.on_headers(RateLimit(limit=120, remaining=1, reset_epoch_s=1003.0), 10.0, 1000.0)
    assert limiter.delay_s(10.0) == pytest.approx(3.0)
    assert limiter.delay_s(12.0) == pytest.approx(1.0)
    limiter.on_headers(None, 12.0, 1002.0)  # a response without headers changes nothing
    assert limiter.delay_s(12.0) == pytest.approx(1.0)


def test_rest_limiter_honours_the_one_second_limit_and_retry_after() -> None:
    limiter = RestRateLimiter()
    limiter.on_headers(RateLimit(remaining_1s=0), 20.0, 5000.0)
    assert limiter.delay_s(20.25) == pytest.approx(0.75)
    limiter.on_headers(RateLimit(remaining_1s=3), 21.0, 5001.0)
    assert limiter.delay_s(21.0) == 0.0
    limiter.on_retry_after(2.0, 21.0)
    limiter.on_retry_after(0.5, 21.0)  # a shorter wait never shortens a longer one
    assert limiter.delay_s(21.0) == pytest.approx(2.0)


def test_rest_limiter_caps_absurd_waits() -> None:
    limiter = RestRateLimiter(max_wait_s=60.0)
    limiter.on_retry_after(1e9, 0.0)
    assert limiter.delay_s(0.0) == pytest.approx(60.0)
