"""Dead man's switch edges: config bounds and messages, orders leaving while armed, any
positive acknowledged timer lapsing, and the next deadline once a lapse was reported."""

from __future__ import annotations

import re

import pytest

from venueguard.core.dms import DeadMansSwitch, DmsConfig, Lapsed, SendCancelAllAfter


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timeout_s": 4.99, "refresh_s": 1.0},
         "a timeout of at least 5 s is advised (venue rate limits)"),
        ({"safe_timeout_s": 3.0, "safe_refresh_s": 1.0},
         "a timeout of at least 5 s is advised (venue rate limits)"),
        ({"timeout_s": 60.0, "refresh_s": 60.0},
         "refresh must be positive and shorter than the timeout"),
        ({"refresh_s": 0.0}, "refresh must be positive and shorter than the timeout"),
        ({"retry_s": 0.0}, "retry_s must be positive"),
    ],
)
def test_config_errors_say_which_rule(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        DmsConfig(**kwargs)


def test_smallest_valid_config() -> None:
    """5 s timers, sub-second refreshes and retries are all accepted and used."""
    config = DmsConfig(timeout_s=5.0, refresh_s=0.5, safe_timeout_s=5.5, safe_refresh_s=0.25,
                       retry_s=0.5)
    dms = DeadMansSwitch(config)
    dms.on_resting(1, 0.0)
    assert dms.poll(0.0) == [SendCancelAllAfter(5_000)]
    dms.on_ack(5_000, 0.0)
    assert dms.next_deadline() == 0.5
    dms.on_failure(0.5)
    assert dms.next_deadline() == 1.0
    dms.set_safe_mode(True, 1.0)
    assert dms.poll(1.0) == [SendCancelAllAfter(5_500)]


@pytest.mark.parametrize("count", [0, -3])
def test_orders_gone_stops_refreshing_but_the_lapse_is_still_watched(count: int) -> None:
    """With no resting order nothing is sent any more, yet the armed timer's expiry stays the
    next deadline so its lapse is reported."""
    dms = DeadMansSwitch()
    dms.on_resting(2, 0.0)
    dms.poll(0.0)
    dms.on_ack(60_000, 0.0)
    dms.on_resting(count, 1.0)
    assert dms.next_deadline() == 60.0
    assert dms.poll(30.0) == []
    assert dms.poll(60.0) == [Lapsed(60.0)]
    assert dms.next_deadline() is None


def test_any_positive_acknowledged_timer_is_watched_for_a_lapse() -> None:
    dms = DeadMansSwitch()
    dms.on_ack(1, 10.0)
    assert dms.armed and dms.next_deadline() == 10.001
    assert dms.poll(10.001) == [Lapsed(10.001)]


def test_after_a_lapse_the_next_deadline_is_the_retry_not_the_past_expiry() -> None:
    dms = DeadMansSwitch(DmsConfig(retry_s=2.0))
    dms.on_resting(1, 0.0)
    dms.poll(0.0)
    dms.on_ack(60_000, 0.0)
    assert dms.poll(61.0) == [Lapsed(60.0), SendCancelAllAfter(60_000)]
    assert dms.next_deadline() == 63.0
