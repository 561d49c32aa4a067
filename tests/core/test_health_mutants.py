"""Venue health on a small hand-built table: every field of every decision, when the owner is
asked to poll, streak alerts, slow-response and average cooldowns at their exact thresholds,
halving after a cooldown, and reset()."""

from __future__ import annotations

import pytest

from venueguard.core.classify import Classification
from venueguard.core.health import (
    Alert,
    Disconnect,
    Resync,
    RetryPending,
    StateChanged,
    VenueHealth,
    VenueState,
)
from venueguard.core.kinds import Action, AlertTier, Kind
from venueguard.core.ruletable import (
    HealthConfig,
    ResponseTimeRules,
    Rule,
    RuleSet,
    SlowRule,
)

H, D, C, B = VenueState.HEALTHY, VenueState.DEGRADED, VenueState.COOLDOWN, VenueState.BLOCKED


def table(*, average_cooldown_s: float = 25.0, halve: bool = True) -> RuleSet:
    rules = {
        Kind.SOFTWARE_BANNED: Rule(Kind.SOFTWARE_BANNED, Action.BLOCK, alert=AlertTier.CRITICAL,
                                   message="banned"),
        Kind.EDGE_PROTECTION: Rule(Kind.EDGE_PROTECTION, Action.COOLDOWN, cooldown_s=30.0,
                                   message="edge"),
        Kind.RATE_LIMITED: Rule(Kind.RATE_LIMITED, Action.WAIT_RETRY_AFTER, min_delay_s=2.0),
        Kind.FORBIDDEN: Rule(Kind.FORBIDDEN, Action.DISCONNECT, message="access denied"),
        Kind.IP_BANNED: Rule(Kind.IP_BANNED, Action.DISCONNECT),
        Kind.NONCE_EXPIRED: Rule(Kind.NONCE_EXPIRED, Action.RESYNC),
        Kind.INVALID_CREDENTIALS: Rule(Kind.INVALID_CREDENTIALS, Action.RESYNC,
                                       message="check keys"),
        Kind.ORDER_NOT_OPEN: Rule(Kind.ORDER_NOT_OPEN, Action.RETRY_ONCE, max_retries=2,
                                  message="not open"),
        Kind.UNKNOWN: Rule(Kind.UNKNOWN, Action.RETRY_ONCE),
        Kind.OVERLOADED: Rule(Kind.OVERLOADED, Action.BACKOFF),
        Kind.OK: Rule(Kind.OK, Action.NONE),
    }
    return RuleSet(
        rules=rules, patterns=(), status_kinds={}, cloudflare_kinds={}, transport_kinds={},
        response_time=ResponseTimeRules(
            window_s=100.0, counts=(SlowRule(1.0, 2, 15.0),), average_slower_than_s=5.0,
            average_cooldown_s=average_cooldown_s, average_min_samples=3,
            halve_after_cooldown=halve),
        health=HealthConfig(degraded_window_s=10.0, degraded_after=2, healthy_after_s=20.0,
                            degrading_kinds=frozenset({Kind.OVERLOADED}), alert_repeat_s=60.0))


def verdict(kind: Kind, message: str = "", retry_after_s: float | None = None) -> Classification:
    return Classification(kind, Action.NONE, False, None, retry_after_s, message)


def test_a_new_monitor_is_healthy_since_creation() -> None:
    assert VenueHealth(table()).since == 0.0
    health = VenueHealth(table(), now=7.0)
    assert (health.state, health.until, health.since) == (H, None, 7.0)
    health.reset(8.0)
    assert health.poll(8.0) == [] and health.next_deadline() is None


def test_block_decisions_carry_every_field() -> None:
    health = VenueHealth(table())
    health.on_outcome(verdict(Kind.SOFTWARE_BANNED), 3.0)
    assert health.next_deadline() == 3.0
    assert health.poll(3.0) == [Alert(AlertTier.CRITICAL, "banned", Kind.SOFTWARE_BANNED, 3.0),
                                StateChanged(B, H, None, "software_banned: banned", 3.0)]
    assert health.since == 3.0
    health.reset(9.0)
    assert health.poll(9.0) == [StateChanged(H, B, None, "reset", 9.0)]
    assert health.since == 9.0


def test_cooldown_decision_and_its_end() -> None:
    health = VenueHealth(table())
    health.on_outcome(verdict(Kind.EDGE_PROTECTION), 1.0)
    assert health.next_deadline() == 1.0
    assert health.poll(1.0) == [StateChanged(C, H, 31.0, "edge_protection: edge", 1.0)]
    assert health.next_deadline() == 31.0
    assert health.poll(31.0) == [StateChanged(D, C, None, "cooldown ended", 31.0),
                                 RetryPending("cooldown ended", 31.0)]
    assert health.next_deadline() == 51.0
    assert health.poll(51.0) == [StateChanged(H, D, None, "no failures for 20 s", 51.0)]


def test_retry_pending_alone_is_due_at_once() -> None:
    rules = table()
    health = VenueHealth(rules)
    health.on_outcome(verdict(Kind.EDGE_PROTECTION), 0.0)
    health.poll(0.0)
    health.on_latency(0.1, 29.0)
    out = health.poll(30.0)
    assert out[-1] == RetryPending("cooldown ended", 30.0)


def test_wait_retry_after_uses_the_header_or_the_rule_floor() -> None:
    health = VenueHealth(table())
    health.on_outcome(verdict(Kind.RATE_LIMITED, retry_after_s=4.5), 2.0)
    assert health.poll(2.0) == [StateChanged(C, H, 6.5, "rate_limited: retry after 4.5 s", 2.0)]
    other = VenueHealth(table())
    other.on_outcome(verdict(Kind.RATE_LIMITED), 2.0)
    assert other.next_deadline() == 2.0
    assert other.poll(2.0) == [StateChanged(C, H, 4.0, "rate_limited: retry after 2 s", 2.0)]


def test_an_equal_cooldown_end_changes_nothing() -> None:
    health = VenueHealth(table())
    health.on_outcome(verdict(Kind.EDGE_PROTECTION), 0.0)
    health.poll(0.0)
    health.on_outcome(verdict(Kind.RATE_LIMITED, retry_after_s=30.0), 0.0)
    assert health.poll(0.0) == [] and health.until == 30.0


@pytest.mark.parametrize(
    ("kind", "decision"),
    [(Kind.FORBIDDEN, Disconnect(Kind.FORBIDDEN, "access denied", 4.0)),
     (Kind.IP_BANNED, Disconnect(Kind.IP_BANNED, "ip_banned", 4.0)),
     (Kind.NONCE_EXPIRED, Resync(Kind.NONCE_EXPIRED, "nonce_expired", 4.0)),
     (Kind.INVALID_CREDENTIALS, Resync(Kind.INVALID_CREDENTIALS, "check keys", 4.0))],
)
def test_disconnect_and_resync_carry_the_message_or_the_kind(
        kind: Kind, decision: Disconnect | Resync) -> None:
    health = VenueHealth(table())
    health.on_outcome(verdict(kind), 4.0)
    assert health.next_deadline() == 4.0
    assert health.poll(4.0) == [decision]


def test_retry_once_alerts_past_max_retries_with_the_streak() -> None:
    health = VenueHealth(table())
    long_text = "y" * 130
    for t in (1.0, 2.0):
        health.on_outcome(verdict(Kind.ORDER_NOT_OPEN, long_text), t)
    assert health.poll(2.0) == [] and health.next_deadline() is None
    health.on_outcome(verdict(Kind.ORDER_NOT_OPEN, long_text), 3.0)
    assert health.next_deadline() == 3.0
    assert health.poll(3.0) == [Alert(AlertTier.WARNING, f"not open: 3 in a row ({'y' * 120})",
                                      Kind.ORDER_NOT_OPEN, 3.0)]
    health.on_outcome(verdict(Kind.OK), 4.0)
    for t in (5.0, 6.0, 100.0):
        health.on_outcome(verdict(Kind.ORDER_NOT_OPEN, "z"), t)
    assert health.poll(100.0) == [Alert(AlertTier.WARNING, "not open: 3 in a row (z)",
                                        Kind.ORDER_NOT_OPEN, 100.0)]


def test_retry_once_without_max_retries_alerts_the_first_time() -> None:
    health = VenueHealth(table())
    health.on_outcome(verdict(Kind.UNKNOWN, "odd"), 1.0)
    assert health.poll(1.0) == [Alert(AlertTier.WARNING, "unknown: 1 in a row (odd)",
                                      Kind.UNKNOWN, 1.0)]


def test_degrading_failures_expire_exactly_at_the_window_edge() -> None:
    health = VenueHealth(table())
    health.on_outcome(verdict(Kind.OVERLOADED), 0.0)
    health.on_outcome(verdict(Kind.OVERLOADED), 10.0)
    assert health.poll(10.0) == [] and health.state is H
    health.on_outcome(verdict(Kind.OVERLOADED), 19.0)
    assert health.poll(19.0) == [StateChanged(D, H, None, "2 failures within 10 s", 19.0)]


def test_slow_responses_start_a_cooldown_above_more_than() -> None:
    health = VenueHealth(table())
    health.on_latency(1.0, 0.0)                         # at the threshold: not slow
    health.on_latency(1.5, 1.0)
    health.on_latency(1.5, 2.0)
    assert health.slow_counts() == (2,) and health.poll(2.0) == []
    health.on_latency(1.5, 3.0)
    assert health.next_deadline() == 3.0
    assert health.poll(3.0) == [
        StateChanged(C, H, 18.0, "3 responses slower than 1 s within 100 s (more than 2)", 3.0),
        Alert(AlertTier.WARNING, "venue slow: 3 responses slower than 1 s", None, 3.0)]


def test_slow_counts_forget_exactly_at_the_window_edge() -> None:
    health = VenueHealth(table())
    health.on_latency(1.5, 0.0)
    assert health.slow_counts() == (1,)
    health.poll(99.9)
    assert health.slow_counts() == (1,)
    health.poll(100.0)
    assert health.slow_counts() == (0,)


def test_only_a_slow_response_can_start_a_slow_cooldown() -> None:
    """Slow responses counted during a cooldown are halved when it ends; a fast response after
    that starts nothing even though the count is still above ``more_than``."""
    health = VenueHealth(table(average_cooldown_s=0.0))
    for t in (0.0, 1.0, 2.0):
        health.on_latency(1.5, t)
    for i in range(4):
        health.on_latency(1.5, 3.0 + i)                 # during the cooldown: counted only
    assert health.slow_counts() == (7,)
    health.poll(17.0)
    assert health.state is D and health.slow_counts() == (3,)
    health.on_latency(0.1, 18.0)
    assert health.state is D and health.poll(18.0) == []


def test_average_cooldown_at_exactly_min_samples_and_above_the_limit() -> None:
    health = VenueHealth(table())
    health.on_latency(0.5, 0.0)
    health.on_latency(0.5, 1.0)
    assert health.poll(1.0) == []
    health.on_latency(17.0, 2.0)                        # average 6.0 > 5 with 3 samples
    assert health.next_deadline() == 2.0
    assert health.poll(2.0) == [
        StateChanged(C, H, 27.0, "average response time 6.0 s > 5 s", 2.0),
        Alert(AlertTier.WARNING, "venue slow: average response time 6.0 s", None, 2.0)]


def test_an_average_exactly_at_the_limit_is_not_slow() -> None:
    health = VenueHealth(table())
    for t, latency in ((0.0, 1.0), (1.0, 1.0), (2.0, 13.0)):
        health.on_latency(latency, t)
    assert health.average_latency_s == 5.0 and health.poll(2.0) == []


@pytest.mark.parametrize(("cooldown_s", "state"), [(0.0, H), (0.5, C)])
def test_average_cooldown_needs_a_positive_length(cooldown_s: float, state: VenueState) -> None:
    health = VenueHealth(table(average_cooldown_s=cooldown_s))
    for t in (0.0, 1.0, 2.0):
        health.on_latency(0.2 if t < 2.0 else 20.0, t)
    health.poll(2.0)
    assert health.state is state


def test_the_end_of_a_cooldown_keeps_the_newest_half_of_the_samples() -> None:
    health = VenueHealth(table())
    health.on_outcome(verdict(Kind.EDGE_PROTECTION), 0.0)
    for i, latency in enumerate((0.1, 0.2, 0.3, 0.4, 0.5, 0.9)):
        health.on_latency(latency, 1.0 + i)
    health.poll(30.0)
    assert health.average_latency_s == pytest.approx((0.4 + 0.5 + 0.9) / 3)


def test_reset_clears_the_samples() -> None:
    health = VenueHealth(table())
    for t in (0.0, 1.0):
        health.on_latency(0.5, t)
    health.reset(2.0)
    assert health.average_latency_s is None
    health.on_latency(0.25, 3.0)
    assert health.average_latency_s == 0.25


def test_a_shared_block_blocks_once_and_a_shared_reset_lifts_it() -> None:
    health = VenueHealth(table())
    health.on_shared(B, None, "peer: banned", 1.0)
    health.on_shared(B, None, "peer: banned again", 2.0)
    health.on_shared(C, 50.0, "peer: slow", 3.0)          # no cooldown over a block
    assert health.next_deadline() == 1.0
    assert health.poll(3.0) == [StateChanged(B, H, None, "peer: banned", 1.0)]
    health.on_shared(H, None, "operator reset", 4.0)
    assert health.poll(4.0) == [StateChanged(H, B, None, "operator reset", 4.0)]
    health.on_shared(H, None, "operator reset", 5.0)     # not blocked: nothing to lift
    assert health.poll(5.0) == []


def test_a_shared_cooldown_extends_only_while_it_lasts() -> None:
    health = VenueHealth(table())
    health.on_shared(C, 10.0, "peer: rate limited", 10.0)     # already over: ignored
    health.on_shared(C, None, "peer: no end", 10.0)
    assert health.poll(10.0) == [] and health.state is H
    health.on_shared(C, 20.0, "peer: rate limited", 10.0)
    assert health.next_deadline() == 10.0
    assert health.poll(10.0) == [StateChanged(C, H, 20.0, "peer: rate limited", 10.0)]
    health.on_shared(C, 15.0, "peer: shorter", 11.0)
    assert health.poll(11.0) == [] and health.until == 20.0


def test_a_shared_signal_that_changes_nothing_leaves_block_and_cooldown_alone() -> None:
    blocked = VenueHealth(table())
    blocked.on_shared(B, None, "peer: banned", 1.0)
    assert blocked.poll(1.0) == [StateChanged(B, H, None, "peer: banned", 1.0)]
    blocked.on_shared(C, 0.5, "peer: cooldown already over", 2.0)
    assert blocked.poll(2.0) == [] and blocked.state is B
    cooling = VenueHealth(table())
    cooling.on_shared(C, 20.0, "peer: rate limited", 1.0)
    assert cooling.poll(1.0) == [StateChanged(C, H, 20.0, "peer: rate limited", 1.0)]
    cooling.on_shared(H, None, "operator reset", 2.0)   # a reset lifts blocks only
    assert cooling.poll(2.0) == [] and cooling.state is C and cooling.until == 20.0
