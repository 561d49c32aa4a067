"""The default rule table encodes the driver rules (seed 001) and the reconnect rules (seed 002);
rule files merge over the defaults and malformed ones fail with file, line and problem."""

from __future__ import annotations

import pytest

from bitmex_rules_shim import classify
from venueguard.core.backoff import Backoff, BackoffConfig, Jitter
from venueguard.core.classify import Outcome, Transport
from venueguard.core.health import (
    Alert,
    Disconnect,
    HealthDecision,
    Resync,
    RetryPending,
    StateChanged,
    VenueHealth,
    VenueState,
)
from venueguard.core.kinds import CLASSIFIED_KINDS, LOCAL_KINDS, Action, AlertTier, Kind
from venueguard.core.rules import RulesError, default_rules, load_rules, parse_rules
from venueguard.venues.bitmex import errors as bx


def bitmex_error(status: int, message: str, name: str = "HTTPError") -> Outcome:
    return Outcome(status=status, body={"error": {"message": message, "name": name}})


def feed(health: VenueHealth, outcome: Outcome, now: float,
         latency_s: float | None = None) -> list[HealthDecision]:
    health.on_outcome(classify(outcome), now, latency_s=latency_s)
    return health.poll(now)


def alerts(decisions: list[HealthDecision]) -> list[Alert]:
    return [d for d in decisions if isinstance(d, Alert)]


def state_of(health: VenueHealth) -> VenueState:
    return health.state


def assert_cooldown(health: VenueHealth, start: float, duration_s: float) -> None:
    assert health.state is VenueState.COOLDOWN
    assert health.until == pytest.approx(start + duration_s)
    assert health.next_deadline() == pytest.approx(start + duration_s)
    assert not health.allows_requests(start + duration_s - 0.001)
    assert health.poll(start + duration_s - 0.001) == []
    assert health.allows_requests(start + duration_s)
    ended = health.poll(start + duration_s)
    assert state_of(health) is VenueState.DEGRADED
    assert any(isinstance(d, StateChanged) and d.reason == "cooldown ended" for d in ended)


# --- seed 001: HTTP / Cloudflare / DNS ----------------------------------------------------------

def test_rule_403_cools_down_5_minutes() -> None:
    health = VenueHealth(now=100.0)
    decisions = feed(health, Outcome(status=403, body="<html>Access Denied</html>"), 100.0)
    assert [d.state for d in decisions if isinstance(d, StateChanged)] == [VenueState.COOLDOWN]
    assert_cooldown(health, 100.0, 300.0)


def test_rule_522_cools_down_2_minutes() -> None:
    health = VenueHealth()
    feed(health, Outcome(status=522, body="<html>Error code 522</html>"), 10.0)
    assert_cooldown(health, 10.0, 120.0)


def test_rule_1010_blocks_totally() -> None:
    health = VenueHealth()
    decisions = feed(health, Outcome(status=403, body="error code: 1010"), 5.0)
    assert health.state is VenueState.BLOCKED
    assert [a.tier for a in alerts(decisions)] == [AlertTier.CRITICAL]
    assert health.next_deadline() is None
    assert not health.allows_requests(1e9)
    assert health.poll(1e9) == [] and health.state is VenueState.BLOCKED


@pytest.mark.parametrize("code", [1006, 1007, 1008])
def test_rule_1006_1007_1008_block_and_alert_ip_banned(code: int) -> None:
    health = VenueHealth()
    page = f"<html><title>Access denied</title><h1>Error {code}</h1></html>"
    decisions = feed(health, Outcome(status=403, body=page), 1.0)
    assert health.state is VenueState.BLOCKED
    critical = [a for a in alerts(decisions) if a.tier is AlertTier.CRITICAL]
    assert [a.message for a in critical] == ["IP banned"]
    assert critical[0].kind is Kind.IP_BANNED


def test_rule_dns_short_cooldown() -> None:
    health = VenueHealth()
    feed(health, Outcome(transport=Transport.DNS), 50.0)
    rule = default_rules().rule(Kind.DNS)
    assert rule.action is Action.COOLDOWN and 0 < rule.cooldown_s <= 60
    assert_cooldown(health, 50.0, rule.cooldown_s)


# --- seed 001: exchange errors ------------------------------------------------------------------

def test_rule_invalid_key_warns_and_disconnects() -> None:
    health = VenueHealth()
    decisions = feed(health, bitmex_error(401, bx.INVALID_API_KEY), 1.0)
    assert any(isinstance(d, Disconnect) and d.kind is Kind.INVALID_CREDENTIALS
               for d in decisions)
    assert alerts(decisions)
    assert not classify(bitmex_error(401, bx.INVALID_API_KEY)).retryable


def test_rule_nonce_expired_resyncs_and_reconnects() -> None:
    for message in (bx.expired_text(1728606269),
                    "Nonce is not increasing. This nonce: 62279790258940, last nonce: 6227979"):
        health = VenueHealth()
        decisions = feed(health, bitmex_error(400, message), 1.0)
        assert [d.kind for d in decisions if isinstance(d, Resync)] == [Kind.NONCE_EXPIRED]
        assert health.state is VenueState.HEALTHY


def _assert_warn_only(outcome: Outcome, kind: Kind) -> None:
    health = VenueHealth()
    verdict = classify(outcome)
    assert verdict.kind is kind and verdict.action is Action.WARN and not verdict.retryable
    health.on_outcome(verdict, 1.0)
    decisions = health.poll(1.0)
    assert [type(d) for d in decisions] == [Alert]
    assert alerts(decisions)[0].tier is AlertTier.WARNING
    assert health.state is VenueState.HEALTHY and health.allows_requests(1.0)


def test_rule_order_type_disabled_warns_only() -> None:
    _assert_warn_only(bitmex_error(400, bx.UNSUPPORTED_ORD_TYPE), Kind.ORDER_TYPE_DISABLED)


def test_rule_amount_too_low_warns_only() -> None:
    _assert_warn_only(bitmex_error(400, "Order value is below the minimum"), Kind.AMOUNT_TOO_LOW)


def test_rule_amount_too_high_warns_only() -> None:
    _assert_warn_only(bitmex_error(400, "Value of position and orders exceeds position Risk "
                                        "Limit"), Kind.AMOUNT_TOO_HIGH)


# --- seed 001: response times -------------------------------------------------------------------

OK = Outcome(status=200, body=[])


def test_rule_slow_over_60s_more_than_6_per_hour_cools_down_5_minutes() -> None:
    health = VenueHealth()
    for i in range(6):
        feed(health, OK, 100.0 * i, latency_s=61.0)
    assert health.state is VenueState.HEALTHY  # six is not "more than six"
    feed(health, OK, 700.0, latency_s=61.0)
    assert_cooldown(health, 700.0, 300.0)


def test_rule_slow_responses_outside_the_hour_do_not_count() -> None:
    health = VenueHealth()
    for i in range(7):
        feed(health, OK, 700.0 * i, latency_s=61.0)  # at most 6 inside any hour
    assert health.state is VenueState.HEALTHY
    assert health.slow_counts()[0] <= 6


def test_rule_slow_over_30s_more_than_24_per_hour_cools_down_5_minutes() -> None:
    health = VenueHealth()
    for i in range(24):
        feed(health, OK, 10.0 * i, latency_s=31.0)
        feed(health, OK, 10.0 * i + 1, latency_s=0.1)  # keeps the average low
    assert health.state is VenueState.HEALTHY
    feed(health, OK, 300.0, latency_s=31.0)
    assert_cooldown(health, 300.0, 300.0)


def test_rule_average_over_90s_cools_down_5_minutes() -> None:
    health = VenueHealth()
    feed(health, OK, 0.0, latency_s=89.0)
    assert health.state is VenueState.HEALTHY
    feed(health, OK, 10.0, latency_s=95.0)  # average 92 s
    assert health.average_latency_s == pytest.approx(92.0)
    assert_cooldown(health, 10.0, 300.0)


def test_rule_after_cooldown_counters_halved_and_pending_retried() -> None:
    health = VenueHealth()
    for i in range(7):
        feed(health, OK, float(i), latency_s=61.0)  # the 7th starts the cooldown
    for i in range(3):  # in-flight slow responses during the cooldown are still counted
        feed(health, OK, 10.0 + i, latency_s=61.0)
    assert health.slow_counts()[0] == 10
    ended = health.poll(6.0 + 300.0)
    assert health.slow_counts() == (5, 5)
    assert any(isinstance(d, RetryPending) for d in ended)
    assert health.state is VenueState.DEGRADED


# --- seed 002: reconnect rules --------------------------------------------------------------------

def test_rule_invalid_credentials_no_retry_critical_alert() -> None:
    for outcome in (bitmex_error(401, bx.SIGNATURE_NOT_VALID), bitmex_error(403, bx.KEY_DISABLED),
                    Outcome(status=401, body=bx.ws_error_frame(401, bx.WS_ACCOUNT_LOCKED))):
        verdict = classify(outcome)
        assert verdict.kind is Kind.INVALID_CREDENTIALS and not verdict.retryable
        assert verdict.rule().max_retries == 0
        health = VenueHealth()
        health.on_outcome(verdict, 1.0)
        assert [a.tier for a in alerts(health.poll(1.0))] == [AlertTier.CRITICAL]


def test_rule_unknown_symbol_no_retry() -> None:
    for outcome in (bitmex_error(400, bx.INVALID_SYMBOL),
                    Outcome(status=400, body=bx.ws_error_frame(400, "Unknown table: tradeBin5dm"))):
        verdict = classify(outcome)
        assert verdict.kind is Kind.UNKNOWN_SYMBOL
        assert verdict.action is Action.FAIL and not verdict.retryable
        assert verdict.rule().max_retries == 0


def test_rule_rate_limited_waits_retry_after() -> None:
    health = VenueHealth()
    outcome = Outcome(status=429, headers={"Retry-After": "7"},
                      body=bx.rest_error_body(bx.rate_limit_text(7), bx.NAME_RATE_LIMIT))
    verdict = classify(outcome)
    assert verdict.action is Action.WAIT_RETRY_AFTER and verdict.retry_after_s == 7.0
    health.on_outcome(verdict, 20.0)
    assert health.state is VenueState.COOLDOWN and health.until == 27.0
    assert not health.allows_requests(26.9) and health.allows_requests(27.0)


def test_rule_overloaded_backs_off_longer() -> None:
    verdict = classify(bitmex_error(503, bx.OVERLOADED))
    rule = verdict.rule()
    config = BackoffConfig(base_s=0.1, cap_s=30.0, jitter=Jitter.NONE)

    class Half:
        def random(self) -> float:
            return 0.5

    plain, overloaded = Backoff(config, Half()), Backoff(config, Half())
    for _ in range(5):
        normal = plain.next_delay_s(0.0)
        longer = overloaded.next_delay_s(0.0, factor=rule.delay_factor, min_s=rule.min_delay_s)
        assert longer > normal and longer >= 0.5


def test_rule_unknown_retries_once_then_alerts() -> None:
    rule = default_rules().rule(Kind.UNKNOWN)
    assert rule.action is Action.RETRY_ONCE and rule.max_retries == 1
    health = VenueHealth()
    odd = Outcome(status=None)
    assert alerts(feed(health, odd, 1.0)) == []  # first: retry once, quietly
    second = alerts(feed(health, odd, 2.0))  # the retry failed too: alert
    assert [a.tier for a in second] == [AlertTier.WARNING]
    assert feed(health, OK, 3.0) == []
    assert alerts(feed(health, odd, 4.0)) == []  # a success broke the streak


# --- the file itself ------------------------------------------------------------------------------

def test_defaults_cover_every_kind() -> None:
    rules = default_rules()
    # every kind a classifier produces has a rule; the local kinds (decided on our side of the
    # wire, carried by errors only) have none and a rule file cannot name them
    assert set(rules.rules) == set(CLASSIFIED_KINDS) == set(Kind) - LOCAL_KINDS
    assert rules.source == "rules_default.toml"
    assert load_rules(None) is rules


def test_user_file_merges_over_defaults() -> None:
    merged = load_rules('[kinds.forbidden]\ncooldown_s = 600\n\n[status]\n418 = "overloaded"\n',
                        "mine.toml")
    assert merged.rule(Kind.FORBIDDEN).cooldown_s == 600
    assert merged.rule(Kind.FORBIDDEN).action is Action.COOLDOWN  # kept from the defaults
    assert merged.rule(Kind.EDGE_PROTECTION).cooldown_s == 120
    assert merged.status_kinds[418] is Kind.OVERLOADED and merged.status_kinds[403] is \
        Kind.FORBIDDEN
    assert len(merged.patterns) == len(default_rules().patterns)


def test_user_patterns_come_first() -> None:
    merged = load_rules('[[patterns]]\nkind = "overloaded"\ntext = "Duplicate clOrdID"\n')
    assert classify(bitmex_error(400, bx.DUPLICATE_CLORDID), merged).kind is Kind.OVERLOADED
    assert len(merged.patterns) == len(default_rules().patterns) + 1


def _error(text: str) -> RulesError:
    with pytest.raises(RulesError) as caught:
        load_rules(text, "/etc/venueguard/rules.toml")
    return caught.value


def test_malformed_toml_names_file_and_line() -> None:
    err = _error('[kinds.forbidden]\ncooldown_s = 300\naction = cooldown\n')
    assert err.source == "/etc/venueguard/rules.toml" and err.line == 3
    assert "/etc/venueguard/rules.toml, line 3" in str(err)


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('# x\n\n[kinds.explode]\naction = "retry"\n', 3, "unknown kind 'explode'"),
        ('[kinds.forbidden]\ncooldown_s = 1\naction = "nap"\n', 3, "unknown action 'nap'"),
        ('[kinds.dns]\nalert = "loud"\n', 2, "unknown alert tier"),
        ('[kinds.dns]\ncooldown_s = -5\n', 2, "kinds.dns.cooldown_s"),
        ('[kinds.dns]\ncolldown_s = 5\n', 2, "unknown setting"),
        ('[kinds.bad_request]\naction = "cooldown"\n', 1, "needs cooldown_s"),
        ('[[patterns]]\nkind = "ok"\ntext = "a"\n\n[[patterns]]\nkind = "nope"\ntext = "b"\n',
         6, "patterns.1.kind"),
        ('[[patterns]]\nkind = "ok"\nmatch = "regex"\ntext = "a"\n', 3, "match"),
        ('[[patterns]]\nkind = "ok"\n', 1, "needs a text or a name"),
        ('[status]\nfour = "ok"\n', 2, "numeric code"),
        ('[cloudflare]\n1010 = "banned"\n', 2, "unknown kind 'banned'"),
        ('[transport]\ncarrier_pigeon = "dns"\n', 2, "unknown transport"),
        ('[response_time]\nwindow_s = 0\n', 2, "window_s"),
        ('[[response_time.count]]\nslower_than_s = 60\nmore_than = -1\ncooldown_s = 5\n', 3,
         "more_than"),
        ('[health]\ndegrading_kinds = ["dns", "weather"]\n', 2, "weather"),
        ('[healthy]\nx = 1\n', 1, "unknown section"),
        ('[health]\nhealthy_after = 1\n', 2, "unknown setting"),
        ('[response_time]\nwindow = 1\n', 2, "unknown setting"),
        ('patterns = 3\n', 1, "array of tables"),
        ('kinds = 3\n', 1, "expected a table"),
        ('[kinds.dns]\naction = "retry"\nmessage = 5\n', 3, "kinds.dns.message"),
        ('[[patterns]]\nkind = "ok"\ntext = 5\n', 3, "patterns.0.text"),
        ('[[patterns]]\nkind = "ok"\ntext = "a"\nname = 5\n', 4, "patterns.0.name"),
        ('[[patterns]]\nkind = "ok"\ntext = "a"\nstatus = "x"\n', 4, "patterns.0.status"),
        ('[health]\ndegrading_kinds = "dns"\n', 2, "expected a list"),
        ('[kinds.dns]\naction = "retry"\nmax_retries = 1.5\n', 3, "whole number"),
    ],
)
def test_semantic_errors_name_key_and_line(text: str, line: int, words: str) -> None:
    err = _error(text)
    assert err.line == line, str(err)
    assert words in str(err)
    assert str(err).startswith("rules file /etc/venueguard/rules.toml, line ")


def test_parse_without_base_is_standalone() -> None:
    rules = parse_rules('[kinds.ok]\naction = "none"\n', "tiny.toml")
    assert set(rules.rules) == {Kind.OK}
    assert rules.patterns == () and rules.rule(Kind.DNS).action is Action.RETRY_ONCE


def test_single_status_in_a_pattern() -> None:
    rules = load_rules('[[patterns]]\nkind = "overloaded"\ntext = "busy"\nstatus = 409\n')
    assert rules.patterns[0].statuses == frozenset({409})
    assert classify(Outcome(status=409, body={"error": {"message": "busy"}}), rules).kind is \
        Kind.OVERLOADED
    assert classify(Outcome(status=400, body={"error": {"message": "busy"}}), rules).kind is \
        Kind.BAD_REQUEST


def test_empty_file_is_the_defaults() -> None:
    assert load_rules("", "empty.toml").rules == default_rules().rules


@pytest.mark.parametrize(("text", "words"), [
    ("[kinds.overloaded]\naction = 'cooldown'\ncooldown_s = nan\n", "cooldown_s"),
    ("[kinds.overloaded]\naction = 'cooldown'\ncooldown_s = inf\n", "cooldown_s"),
    ("[kinds.overloaded]\naction = 'retry'\nmin_delay_s = -inf\n", "min_delay_s"),
    ("[kinds.overloaded]\naction = 'retry'\nmin_delay_s = 1e300\n", "min_delay_s"),
    ("[kinds.overloaded]\naction = 'retry'\ndelay_factor = 1e6\n", "delay_factor"),
    ("[kinds.overloaded]\naction = 'retry'\nmax_retries = 99999999999\n", "max_retries"),
    ("replace_patterns = 'yes'\n", "replace_patterns"),
    ("replace_patterns = 1\n", "replace_patterns"),
    ("[response_time]\nhalve_after_cooldown = 'no'\n", "halve_after_cooldown"),
    ("[response_time]\ncount = 3\n", "count"),
    ("[response_time.average]\nslower_than = 5.0\n", "slower_than"),
    ("[[patterns]]\nkind = 'overloaded'\ntext = 'x'\nstatus = 70000\n", "status"),
    ("[[patterns]]\nkind = 'overloaded'\ntext = 'x'\ncase = 'upper'\n", "case"),
    ("[status]\n99999 = 'overloaded'\n", "99999"),
    ("[health]\nalert_repeat_s = nan\n", "alert_repeat_s"),
])
def test_non_finite_out_of_range_and_mistyped_values_are_refused(text: str, words: str) -> None:
    with pytest.raises(RulesError) as err:
        load_rules(text, "mine.toml")
    assert err.value.source == "mine.toml" and err.value.line is not None
    assert words in str(err.value)


def test_replace_patterns_true_still_drops_the_default_patterns() -> None:
    rules = load_rules("replace_patterns = true\n[[patterns]]\nkind = 'overloaded'\ntext = 'zz'\n")
    assert [p.text for p in rules.patterns] == ["zz"]


def test_the_visibility_horizon_is_data_with_a_documented_default() -> None:
    from venueguard.core.rules import default_rules, parse_rules

    assert default_rules().visibility_horizon_s == 60.0
    venue = parse_rules("[orders]\nvisibility_horizon_s = 90\n", base=default_rules())
    assert venue.visibility_horizon_s == 90.0
    user = parse_rules("[health]\ndegraded_after = 4\n", base=venue)
    assert user.visibility_horizon_s == 90.0          # a user file keeps the venue's horizon


@pytest.mark.parametrize("kind", sorted(k.value for k in LOCAL_KINDS))
def test_a_rule_file_cannot_name_a_local_kind(kind: str) -> None:
    with pytest.raises(RulesError, match=f"unknown kind '{kind}'"):
        parse_rules(f'[kinds.{kind}]\naction = "retry"\n', "my.toml", base=default_rules())
