"""Safe-mode policy: block orders, one bulk cancel with a bounded retry, low-rate reconcile."""

from __future__ import annotations

import pytest

from venueguard.core.regime import Regime
from venueguard.core.safemode import (
    CancelAll,
    SafeAlert,
    SafeModeConfig,
    SafeModePolicy,
    SetSafeMode,
    regime_name,
)


def test_entering_safe_blocks_orders_and_sends_one_bulk_cancel() -> None:
    policy = SafeModePolicy()
    assert policy.on_regime(Regime.CAUTIOUS, 0.0) == [] and policy.orders_allowed
    out = policy.on_regime(Regime.SAFE, 1.0)
    assert out == [SetSafeMode(True), CancelAll(1)]
    assert not policy.orders_allowed and policy.safe
    assert policy.poll(1.5) == [] and policy.on_regime("SAFE", 2.0) == []   # no storm
    assert policy.on_cancel_all_result(True, 2.5) == []
    assert policy.poll(100.0) == [] and policy.next_deadline() is None


def test_recovering_keeps_orders_blocked_until_normal() -> None:
    policy = SafeModePolicy()
    policy.on_regime("SAFE", 0.0)
    policy.on_cancel_all_result(True, 0.5)
    assert policy.on_regime("RECOVERING", 10.0) == []
    assert not policy.orders_allowed and policy.safe
    assert policy.on_regime("NORMAL", 20.0) == [SetSafeMode(False)]
    assert policy.orders_allowed and not policy.safe


def test_failed_bulk_cancel_is_retried_with_backoff_under_a_bound() -> None:
    policy = SafeModePolicy(SafeModeConfig(cancel_retry_s=1.0, cancel_retry_max_s=4.0,
                                           cancel_max_attempts=4))
    sent = policy.on_regime("SAFE", 0.0)
    assert sent[-1] == CancelAll(1)
    now, attempts, alerts = 0.0, [1], []
    for _ in range(10):
        alerts += policy.on_cancel_all_result(False, now)
        deadline = policy.next_deadline()
        if deadline is None:
            break
        now = deadline
        attempts += [d.attempt for d in policy.poll(now) if isinstance(d, CancelAll)]
    assert attempts == [1, 2, 3, 4]
    assert now == pytest.approx(1.0 + 2.0 + 4.0)
    assert alerts == [SafeAlert("critical", "bulk cancel failed 4 times; "
                                "relying on the dead man's switch")]


def test_back_to_normal_drops_a_pending_retry_and_waits_for_an_inflight_cancel() -> None:
    policy = SafeModePolicy()
    policy.on_regime("SAFE", 0.0)
    assert not policy.orders_allowed
    policy.on_cancel_all_result(False, 0.1)
    policy.on_regime("NORMAL", 0.5)
    assert policy.poll(10.0) == [] and policy.orders_allowed
    policy.on_regime("SAFE", 20.0)                       # a new episode: a new single cancel
    policy.on_regime("NORMAL", 20.5)
    assert not policy.orders_allowed                     # its cancel is still in flight
    policy.on_cancel_all_result(True, 21.0)
    assert policy.orders_allowed


def test_regime_names() -> None:
    assert regime_name(Regime.RECOVERING) == "RECOVERING" and regime_name("safe") == "SAFE"
    with pytest.raises(ValueError):
        regime_name("PANIC")
    with pytest.raises(ValueError):
        regime_name(3)  # type: ignore[arg-type]
