"""Safe-mode edges: the symbol of the bulk cancel, no retry before its time, and late or
stray cancel results that must never start another bulk cancel."""

from __future__ import annotations

import re

import pytest

from venueguard.core.safemode import CancelAll, SafeModePolicy, SetSafeMode, regime_name


def test_unknown_regime_message_names_it() -> None:
    with pytest.raises(ValueError, match=re.escape("unknown regime 'PANIC'")):
        regime_name("PANIC")


def test_a_new_policy_is_normal_and_allows_orders() -> None:
    policy = SafeModePolicy()
    assert policy.regime == "NORMAL"
    assert policy.orders_allowed and not policy.safe and policy.next_deadline() is None


def test_bulk_cancel_and_its_retry_carry_the_symbol() -> None:
    policy = SafeModePolicy(symbol="XBTUSD")
    assert policy.on_regime("SAFE", 0.0) == [SetSafeMode(True), CancelAll(1, "XBTUSD")]
    policy.on_cancel_all_result(False, 0.0)
    assert policy.poll(1.0) == [CancelAll(2, "XBTUSD")]


def test_a_failed_bulk_cancel_is_not_retried_before_its_delay() -> None:
    policy = SafeModePolicy()
    policy.on_regime("SAFE", 0.0)
    policy.on_cancel_all_result(False, 0.0)
    assert policy.next_deadline() == 1.0
    assert policy.poll(0.5) == []
    assert policy.poll(0.999) == []
    assert policy.poll(1.0) == [CancelAll(2)]


def test_a_stray_failure_before_any_safe_episode_is_ignored() -> None:
    policy = SafeModePolicy()
    assert policy.on_cancel_all_result(False, 0.0) == []
    assert policy.next_deadline() is None
    assert policy.poll(100.0) == []
    assert policy.on_regime("SAFE", 200.0) == [SetSafeMode(True), CancelAll(1)]


def test_a_late_failure_after_the_cancel_succeeded_starts_no_new_cancel() -> None:
    policy = SafeModePolicy()
    policy.on_regime("SAFE", 0.0)
    assert policy.on_cancel_all_result(True, 0.5) == []
    assert policy.on_cancel_all_result(False, 0.6) == []      # e.g. a duplicate timeout report
    assert policy.next_deadline() is None
    assert policy.poll(100.0) == []


def test_an_inflight_cancel_failing_after_normal_is_not_retried() -> None:
    """Back to NORMAL with the cancel in flight: its failure must not send a cancel that could
    hit the orders placed since."""
    policy = SafeModePolicy()
    policy.on_regime("SAFE", 0.0)
    policy.on_regime("NORMAL", 0.5)
    assert policy.on_cancel_all_result(False, 1.0) == []
    assert policy.orders_allowed
    assert policy.next_deadline() is None
    assert policy.poll(100.0) == []
