"""Dead man's switch policy: armed while orders rest, refreshed, shortened in safe mode,
disarmed only on a clean stop."""

from __future__ import annotations

import pytest

from venueguard.core.dms import DeadMansSwitch, DmsConfig, Lapsed, SendCancelAllAfter


def test_not_armed_without_resting_orders() -> None:
    dms = DeadMansSwitch()
    assert dms.poll(0.0) == [] and dms.next_deadline() is None


def test_armed_with_60s_and_refreshed_every_15s() -> None:
    dms = DeadMansSwitch()
    dms.on_resting(2, 0.0)
    assert dms.poll(0.0) == [SendCancelAllAfter(60_000)]
    assert dms.poll(0.5) == []                       # in flight: not sent twice
    dms.on_ack(60_000, 0.5)
    assert dms.armed and dms.expires_at == pytest.approx(60.5)
    assert dms.next_deadline() == pytest.approx(15.5)
    assert dms.poll(15.0) == []
    assert dms.poll(15.5) == [SendCancelAllAfter(60_000)]


def test_failure_is_retried_and_unanswered_request_is_resent() -> None:
    dms = DeadMansSwitch(DmsConfig(retry_s=2.0))
    dms.on_resting(1, 0.0)
    dms.poll(0.0)
    dms.on_failure(0.3)
    assert dms.poll(1.0) == [] and dms.next_deadline() == pytest.approx(2.3)
    assert dms.poll(2.3) == [SendCancelAllAfter(60_000)]
    assert dms.poll(4.3) == [SendCancelAllAfter(60_000)]    # no answer in retry_s


def test_the_resting_count_says_whether_a_send_is_due_while_not_armed() -> None:
    dms = DeadMansSwitch()
    assert dms.resting == 0 and dms.next_deadline() is None
    dms.on_resting(2, 0.0)
    assert dms.resting == 2 and not dms.armed and dms.next_deadline() == float("-inf")
    dms.poll(0.0)
    dms.on_failure(0.1)
    assert not dms.armed and dms.next_deadline() == pytest.approx(2.1)   # arming: retried
    dms.on_resting(0, 0.2)
    assert dms.resting == 0 and dms.next_deadline() is None


def test_safe_mode_shortens_the_timer_at_once() -> None:
    dms = DeadMansSwitch()
    dms.on_resting(1, 0.0)
    dms.poll(0.0)
    dms.on_ack(60_000, 0.1)
    dms.set_safe_mode(True, 3.0)
    assert dms.poll(3.0) == [SendCancelAllAfter(15_000)]
    dms.on_ack(15_000, 3.1)
    assert dms.next_deadline() == pytest.approx(8.1)
    dms.set_safe_mode(False, 9.0)
    assert dms.poll(9.0) == [SendCancelAllAfter(60_000)]


def test_clean_stop_disarms_and_a_crash_leaves_it_armed() -> None:
    dms = DeadMansSwitch()
    dms.on_resting(1, 0.0)
    dms.poll(0.0)
    dms.on_ack(60_000, 0.1)
    assert dms.stop(5.0) == SendCancelAllAfter(0)
    dms.on_ack(0, 5.1)
    assert not dms.armed and dms.poll(100.0) == [] and dms.next_deadline() is None
    crashed = DeadMansSwitch()
    crashed.on_resting(1, 0.0)
    crashed.poll(0.0)
    crashed.on_ack(60_000, 0.1)
    # a crash is simply the absence of any further call: nothing disarms the venue's timer
    assert crashed.armed and crashed.expires_at == pytest.approx(60.1)
    assert DeadMansSwitch().stop(1.0) is None


def test_lapse_without_refresh_is_reported_once() -> None:
    dms = DeadMansSwitch()
    dms.on_resting(1, 0.0)
    dms.poll(0.0)
    dms.on_ack(60_000, 0.0)
    for t in (15.0, 17.0, 19.0):                       # refreshes keep failing
        dms.poll(t)
        dms.on_failure(t)
    out = dms.poll(60.0)
    assert Lapsed(60.0) in out
    assert not [d for d in dms.poll(61.0) if isinstance(d, Lapsed)]


@pytest.mark.parametrize("kwargs", [{"timeout_s": 3.0, "refresh_s": 1.0},
                                    {"timeout_s": 60.0, "refresh_s": 60.0},
                                    {"retry_s": 0.0}])
def test_config_is_validated(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        DmsConfig(**kwargs)
