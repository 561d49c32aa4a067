"""Venue health state machine: HEALTHY / DEGRADED / COOLDOWN(until) / BLOCKED."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bitmex_rules_shim import classify
from venueguard.core import health as health_module
from venueguard.core.classify import Classification, Outcome, Transport
from venueguard.core.health import (
    Alert,
    Disconnect,
    HealthDecision,
    Resync,
    StateChanged,
    VenueHealth,
    VenueState,
)
from venueguard.core.kinds import Kind
from venueguard.core.rules import default_rules
from venueguard.venues.bitmex import errors as bx

OK = classify(Outcome(status=200, body=[]))
REFUSED = classify(Outcome(transport=Transport.CONNECTION_REFUSED))
OVERLOADED = classify(Outcome(status=503, body=bx.rest_error_body(bx.OVERLOADED)))
REJECTED = classify(Outcome(status=400, body=bx.rest_error_body(bx.INVALID_PRICE)))
FORBIDDEN = classify(Outcome(status=403, body="Access Denied"))
BANNED = classify(Outcome(status=403, body="error code: 1010"))
BAD_KEY = classify(Outcome(status=401, body=bx.rest_error_body(bx.INVALID_API_KEY)))
EXPIRED = classify(Outcome(status=400, body=bx.rest_error_body(bx.expired_text(5))))
LIMITED = classify(Outcome(status=429, body=bx.rest_error_body("slow", bx.NAME_RATE_LIMIT)))


def states(decisions: list[HealthDecision]) -> list[VenueState]:
    return [d.state for d in decisions if isinstance(d, StateChanged)]


def test_gauge_values() -> None:
    assert [s.gauge for s in VenueState] == [0, 1, 2, 3]


def test_degraded_after_three_failures_within_a_minute() -> None:
    health = VenueHealth()
    health.on_outcome(REFUSED, 0.0)
    health.on_outcome(OVERLOADED, 30.0)
    assert health.poll(30.0) == [] and health.state is VenueState.HEALTHY
    health.on_outcome(REFUSED, 59.0)
    decisions = health.poll(59.0)
    assert states(decisions) == [VenueState.DEGRADED]
    change = decisions[0]
    assert isinstance(change, StateChanged) and change.previous is VenueState.HEALTHY
    assert "3 failures" in change.reason


def test_spread_out_failures_do_not_degrade() -> None:
    health = VenueHealth()
    for t in (0.0, 40.0, 80.0, 120.0):
        health.on_outcome(REFUSED, t)
    assert health.state is VenueState.HEALTHY


def test_client_errors_do_not_degrade() -> None:
    health = VenueHealth()
    for t in range(10):
        health.on_outcome(REJECTED, float(t))
    assert health.state is VenueState.HEALTHY and health.poll(10.0) == []


def test_healthy_again_after_a_quiet_minute() -> None:
    health = VenueHealth()
    for t in (0.0, 1.0, 2.0):
        health.on_outcome(REFUSED, t)
    health.poll(2.0)
    assert health.next_deadline() == 62.0
    assert health.poll(61.9) == [] and health.since == 2.0
    assert states(health.poll(62.0)) == [VenueState.HEALTHY]
    assert health.since == 62.0
    assert health.next_deadline() is None


def test_cooldown_is_extended_never_shortened() -> None:
    health = VenueHealth()
    health.on_outcome(FORBIDDEN, 0.0)  # until 300
    health.on_outcome(LIMITED, 10.0)  # would be until 11: ignored
    assert health.until == 300.0
    health.on_outcome(FORBIDDEN, 100.0)  # until 400
    changes = [d for d in health.poll(100.0) if isinstance(d, StateChanged)]
    assert [(c.state, c.until) for c in changes] == [(VenueState.COOLDOWN, 300.0),
                                                     (VenueState.COOLDOWN, 400.0)]


def test_rate_limit_without_retry_after_waits_the_rule_minimum() -> None:
    health = VenueHealth()
    health.on_outcome(LIMITED, 5.0)
    assert health.until == 5.0 + default_rules().rule(Kind.RATE_LIMITED).min_delay_s


def test_zero_retry_after_is_no_cooldown() -> None:
    health = VenueHealth()
    health.on_outcome(LIMITED._replace(retry_after_s=0.0), 5.0)
    assert health.state is VenueState.HEALTHY


def test_blocked_ignores_everything_until_reset() -> None:
    health = VenueHealth()
    health.on_outcome(BANNED, 1.0)
    health.poll(1.0)
    for t in range(2, 50):
        health.on_outcome(FORBIDDEN if t % 2 else OK, float(t), latency_s=200.0)
        assert health.poll(float(t) * 1000) == []
    assert health.state is VenueState.BLOCKED and not health.allows_requests(1e12)
    health.reset(60_000.0, "operator checked the ban")
    decisions = health.poll(60_000.0)
    assert states(decisions) == [VenueState.HEALTHY]
    assert isinstance(decisions[0], StateChanged) and decisions[0].reason == \
        "operator checked the ban"
    assert health.allows_requests(60_000.0) and health.slow_counts() == (0, 0)
    assert health.average_latency_s is None


def test_reset_ends_a_cooldown() -> None:
    health = VenueHealth()
    health.on_outcome(FORBIDDEN, 0.0)
    health.reset(1.0)
    assert health.state is VenueState.HEALTHY and health.until is None


def test_disconnect_and_resync_decisions() -> None:
    health = VenueHealth()
    health.on_outcome(BAD_KEY, 1.0)
    health.on_outcome(EXPIRED, 2.0)
    decisions = health.poll(2.0)
    assert [type(d) for d in decisions if not isinstance(d, Alert)] == [Disconnect, Resync]
    assert health.state is VenueState.HEALTHY


def test_queued_decisions_are_due_at_once() -> None:
    health = VenueHealth()
    health.on_outcome(BAD_KEY, 7.0)
    assert health.next_deadline() == 7.0
    health.poll(7.0)
    assert health.next_deadline() is None


def test_latency_samples_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health_module, "_MAX_SAMPLES", 10)
    health = VenueHealth()
    for i in range(30):
        health.on_latency(float(i), float(i))
    assert health.average_latency_s == pytest.approx(sum(range(20, 30)) / 10)


def test_latency_leaves_the_window() -> None:
    health = VenueHealth()
    health.on_latency(80.0, 0.0)
    health.on_latency(10.0, 3000.0)
    assert health.average_latency_s == pytest.approx(45.0)
    health.poll(3600.0)
    assert health.average_latency_s == pytest.approx(10.0)


OUTCOMES = [OK, REFUSED, OVERLOADED, REJECTED, FORBIDDEN, BANNED, BAD_KEY, EXPIRED, LIMITED,
            classify(Outcome(status=522, body="Error code 522")),
            classify(Outcome(status=403, body="error code: 1007")),
            classify(Outcome(transport=Transport.DNS)), classify(Outcome())]

step = st.tuples(
    st.floats(0.0, 400.0),  # time gap
    st.sampled_from(["outcome", "poll", "latency"]),
    st.integers(0, len(OUTCOMES) - 1),
    st.one_of(st.none(), st.floats(0.0, 200.0)),
)


@given(steps=st.lists(step, max_size=80), reset_at=st.one_of(st.none(), st.integers(0, 80)))
def test_property_blocked_never_left_without_reset(
    steps: list[tuple[float, str, int, float | None]], reset_at: int | None
) -> None:
    health = VenueHealth()
    now = 0.0
    blocked = False
    for i, (gap, what, index, latency) in enumerate(steps):
        now += gap
        if i == reset_at:
            health.reset(now)
            blocked = False
            assert health.state is VenueState.HEALTHY
        verdict: Classification = OUTCOMES[index]
        if what == "outcome":
            health.on_outcome(verdict, now, latency_s=latency)
        elif what == "latency" and latency is not None:
            health.on_latency(latency, now)
        for decision in health.poll(now):
            if isinstance(decision, StateChanged) and decision.previous is VenueState.BLOCKED:
                assert decision.reason == "reset"  # only reset() leaves BLOCKED
        if blocked:
            assert health.state is VenueState.BLOCKED
            assert not health.allows_requests(now) and health.next_deadline() is None
        blocked = health.state is VenueState.BLOCKED
        if health.state is VenueState.COOLDOWN:
            assert health.until is not None and health.next_deadline() is not None
            assert health.next_deadline() <= health.until  # type: ignore[operator]


def test_repeated_alerts_are_rate_limited() -> None:
    health = VenueHealth()
    for t in (0.0, 10.0, 59.9):
        health.on_outcome(BAD_KEY, t)
    assert len([d for d in health.poll(60.0) if isinstance(d, Alert)]) == 1
    assert health.suppressed_alerts == 2
    health.on_outcome(BAD_KEY, 60.0)
    health.on_outcome(EXPIRED, 60.0)  # another kind alerts on its own schedule
    assert [d.kind for d in health.poll(60.0) if isinstance(d, Alert)] == [
        Kind.INVALID_CREDENTIALS, Kind.NONCE_EXPIRED]
