"""Rule-file parsing pinned down: the exact error text and line of every refusal, the edges of
every range, the values an omitted setting takes, how a user file merges over a base, and how
the line of a key is found."""

from __future__ import annotations

import re

import pytest

from venueguard.core.kinds import CLASSIFIED_KINDS, Action, AlertTier, Kind, Transport
from venueguard.core.rules import (
    MAX_INTEGER,
    MAX_NUMBER,
    HealthConfig,
    Pattern,
    ResponseTimeRules,
    Rule,
    RulesError,
    RuleSet,
    SlowRule,
    _locate,
    default_rules,
    load_rules,
    parse_rules,
)

KINDS = ", ".join(k.value for k in CLASSIFIED_KINDS)
ACTIONS = ", ".join(a.value for a in Action)
NUMBER = "expected a finite number from 0 to 1e+07, got"
WHOLE = "expected a whole number from 0 to 1000000000, got"


def refusal(text: str, base: RuleSet | None = None) -> RulesError:
    with pytest.raises(RulesError) as caught:
        parse_rules(text, "my.toml", base=base)
    return caught.value


BAD = [
    ('# x\n\n[kinds.explode]\naction = "retry"\n', 3,
     f"kinds.explode: unknown kind 'explode' (known: {KINDS})"),
    ('[kinds.forbidden]\ncooldown_s = 1\naction = "nap"\n', 3,
     f"kinds.forbidden.action: unknown action 'nap' (known: {ACTIONS})"),
    ('[kinds.dns]\nmessage = "x"\n', 1,
     f"kinds.dns.action: unknown action None (known: {ACTIONS})"),
    ('[kinds.dns]\naction = "retry"\nalert = "loud"\n', 3,
     "kinds.dns.alert: unknown alert tier 'loud' (info, warning, critical)"),
    ('[kinds.dns]\naction = "retry"\ncooldown_s = -5\n', 3, f"kinds.dns.cooldown_s: {NUMBER} -5"),
    ('[kinds.dns]\ncolldown_s = 5\n', 2, "kinds.dns.colldown_s: unknown setting (known: action, "
     "alert, cooldown_s, delay_factor, max_retries, message, min_delay_s)"),
    ('[kinds.bad_request]\naction = "cooldown"\n', 1,
     "kinds.bad_request.cooldown_s: action 'cooldown' needs cooldown_s > 0"),
    ('[kinds.bad_request]\naction = "cooldown"\ncooldown_s = 0\n', 3,
     "kinds.bad_request.cooldown_s: action 'cooldown' needs cooldown_s > 0"),
    ('[kinds.dns]\naction = "retry"\nmessage = 5\n', 3, "kinds.dns.message: expected a string"),
    ('[kinds.dns]\naction = "retry"\nmax_retries = 1.5\n', 3,
     f"kinds.dns.max_retries: {WHOLE} 1.5"),
    ('[kinds.dns]\naction = "retry"\nmax_retries = true\n', 3,
     f"kinds.dns.max_retries: {WHOLE} True"),
    ('[kinds.dns]\naction = "retry"\nmax_retries = -1\n', 3, f"kinds.dns.max_retries: {WHOLE} -1"),
    ('[kinds.dns]\naction = "retry"\nmax_retries = 1000000001\n', 3,
     f"kinds.dns.max_retries: {WHOLE} 1000000001"),
    ('[kinds.dns]\naction = "retry"\nmin_delay_s = true\n', 3,
     f"kinds.dns.min_delay_s: {NUMBER} True"),
    ('[kinds.dns]\naction = "retry"\nmin_delay_s = "1"\n', 3,
     f"kinds.dns.min_delay_s: {NUMBER} '1'"),
    ('[kinds.dns]\naction = "retry"\nmin_delay_s = nan\n', 3,
     f"kinds.dns.min_delay_s: {NUMBER} nan"),
    ('[kinds.dns]\naction = "retry"\nmin_delay_s = -inf\n', 3,
     f"kinds.dns.min_delay_s: {NUMBER} -inf"),
    ('[kinds.dns]\naction = "retry"\ndelay_factor = 0.5\n', 3,
     "kinds.dns.delay_factor: expected a finite number from 1 to 1000, got 0.5"),
    ('[kinds.dns]\naction = "retry"\ndelay_factor = 1000.5\n', 3,
     "kinds.dns.delay_factor: expected a finite number from 1 to 1000, got 1000.5"),
    ('[kinds.dns]\naction = "retry"\ncooldown_s = 10000000.5\n', 3,
     f"kinds.dns.cooldown_s: {NUMBER} 10000000.5"),
    ('kinds = 3\n', 1, "kinds: expected a table, got int"),
    ('[kinds]\ndns = 3\n', 2, "kinds.dns: expected a table, got int"),
    ('[[patterns]]\nkind = "ok"\ntext = "a"\n\n[[patterns]]\nkind = "nope"\ntext = "b"\n', 6,
     f"patterns.1.kind: unknown kind 'nope' (known: {KINDS})"),
    ('[[patterns]]\ntext = "b"\n', 1, f"patterns.0.kind: unknown kind None (known: {KINDS})"),
    ('[[patterns]]\nkind = "ok"\nmatch = "regex"\ntext = "a"\n', 3,
     "patterns.0.match: expected one of prefix, contains, exact"),
    ('[[patterns]]\nkind = "ok"\n', 1, "patterns.0.text: a pattern needs a text or a name"),
    ('[[patterns]]\nkind = "ok"\ntext = ""\n', 3,
     "patterns.0.text: a pattern needs a text or a name"),
    ('[[patterns]]\nkind = "ok"\ntext = 5\n', 3, "patterns.0.text: expected a string"),
    ('[[patterns]]\nkind = "ok"\ntext = "a"\nname = 5\n', 4, "patterns.0.name: expected a string"),
    ('[[patterns]]\nkind = "ok"\ntext = "a"\nstatus = "x"\n', 4,
     "patterns.0.status: expected a whole number from 100 to 9999, got 'x'"),
    ('[[patterns]]\nkind = "ok"\ntext = "a"\nstatus = [200, 99]\n', 4,
     "patterns.0.status: expected a whole number from 100 to 9999, got 99"),
    ('[[patterns]]\nkind = "ok"\ntext = "a"\nstatus = 10000\n', 4,
     "patterns.0.status: expected a whole number from 100 to 9999, got 10000"),
    ('[[patterns]]\nkind = "ok"\ntext = "a"\ncase = "upper"\n', 4,
     "patterns.0.case: unknown setting (known: kind, match, name, status, text)"),
    ('patterns = 3\n', 1, "patterns: expected an array of tables ([[patterns]])"),
    ('patterns = [3]\n', 1, "patterns.0: expected a table, got int"),
    ('[status]\nfour = "ok"\n', 2, "status.four: expected a numeric code (100 to 9999) as key"),
    ('[status]\n99 = "ok"\n', 2, "status.99: expected a numeric code (100 to 9999) as key"),
    ('[status]\n10000 = "ok"\n', 2, "status.10000: expected a numeric code (100 to 9999) as key"),
    ('[status]\n"٢٠٠" = "ok"\n', 2, "status.٢٠٠: expected a numeric code (100 to 9999) as key"),
    ('[status]\n200 = "nope"\n', 2, f"status.200: unknown kind 'nope' (known: {KINDS})"),
    ('status = 3\n', 1, "status: expected a table, got int"),
    ('[cloudflare]\n1010 = "banned"\n', 2,
     f"cloudflare.1010: unknown kind 'banned' (known: {KINDS})"),
    ('[transport]\ncarrier_pigeon = "dns"\n', 2,
     "transport.carrier_pigeon: unknown transport failure"),
    ('[transport]\ndns = "weather"\n', 2,
     f"transport.dns: unknown kind 'weather' (known: {KINDS})"),
    ('transport = 1\n', 1, "transport: expected a table, got int"),
    ('[response_time]\nwindow_s = 0\n', 2,
     "response_time.window_s: expected a finite number from 1e-09 to 1e+07, got 0"),
    ('[response_time]\ncount = 3\n', 2, "response_time.count: expected an array of tables"),
    ('[response_time]\ncount = [3]\n', 1, "response_time.count.0: expected a table, got int"),
    ('[[response_time.count]]\nslower_than_s = 60\nmore_than = -1\ncooldown_s = 5\n', 3,
     f"response_time.count.0.more_than: {WHOLE} -1"),
    ('[[response_time.count]]\nslower_than_s = -60\nmore_than = 1\ncooldown_s = 5\n', 2,
     f"response_time.count.0.slower_than_s: {NUMBER} -60"),
    ('[[response_time.count]]\nslower_than_s = 60\nmore_than = 1\ncooldown_s = -5\n', 4,
     f"response_time.count.0.cooldown_s: {NUMBER} -5"),
    ('[[response_time.count]]\nslower_than_s = 60\nmore_than = 1\ncooldown_s = 5\nfoo = 1\n', 5,
     "response_time.count.0.foo: unknown setting (known: cooldown_s, more_than, slower_than_s)"),
    ('[response_time.average]\nslower_than = 5.0\n', 2, "response_time.average.slower_than: "
     "unknown setting (known: cooldown_s, min_samples, slower_than_s)"),
    ('[response_time.average]\nslower_than_s = -1\n', 2,
     f"response_time.average.slower_than_s: {NUMBER} -1"),
    ('[response_time.average]\ncooldown_s = -1\n', 2,
     f"response_time.average.cooldown_s: {NUMBER} -1"),
    ('[response_time.average]\nmin_samples = -1\n', 2,
     f"response_time.average.min_samples: {WHOLE} -1"),
    ('[response_time]\nhalve_after_cooldown = "no"\n', 2,
     "response_time.halve_after_cooldown: expected true or false, got 'no'"),
    ('[response_time]\nretry_pending_after_cooldown = 1\n', 2,
     "response_time.retry_pending_after_cooldown: expected true or false, got 1"),
    ('[response_time]\nwindow = 1\n', 2, "response_time.window: unknown setting (known: average, "
     "count, halve_after_cooldown, retry_pending_after_cooldown, window_s)"),
    ('[response_time]\naverage = 3\n', 2, "response_time.average: expected a table, got int"),
    ('response_time = 3\n', 1, "response_time: expected a table, got int"),
    ('[health]\ndegrading_kinds = ["dns", "weather"]\n', 2,
     f"health.degrading_kinds: unknown kind 'weather' (known: {KINDS})"),
    ('[health]\ndegrading_kinds = "dns"\n', 2, "health.degrading_kinds: expected a list of kinds"),
    ('[health]\ndegraded_window_s = -1\n', 2, f"health.degraded_window_s: {NUMBER} -1"),
    ('[health]\ndegraded_after = -1\n', 2, f"health.degraded_after: {WHOLE} -1"),
    ('[health]\nhealthy_after_s = -1\n', 2, f"health.healthy_after_s: {NUMBER} -1"),
    ('[health]\nalert_repeat_s = nan\n', 2, f"health.alert_repeat_s: {NUMBER} nan"),
    ('[health]\nhealthy_after = 1\n', 2, "health.healthy_after: unknown setting (known: "
     "alert_repeat_s, degraded_after, degraded_window_s, degrading_kinds, healthy_after_s)"),
    ('health = 1\n', 1, "health: expected a table, got int"),
    ('[healthy]\nx = 1\n', 1, "healthy: unknown section (known: cloudflare, health, kinds, "
     "orders, patterns, replace_patterns, response_time, status, transport)"),
    ('[orders]\nhorizon = 5\n', 2, "orders.horizon: unknown setting (known: "
     "visibility_horizon_s)"),
    ('[orders]\nvisibility_horizon_s = 0.5\n', 2, "orders.visibility_horizon_s: expected a "
     "finite number from 1 to 1e+07, got 0.5"),
    ('replace_patterns = "yes"\n', 1, "replace_patterns: expected true or false, got 'yes'"),
    ('[kinds.forbidden]\ncooldown_s = 300\naction = cooldown\n', 3,
     "Invalid value (at line 3, column 10)"),
    ('x = 1\nx = 2\n', 2, "Cannot overwrite a value (at line 2, column 6)"),
]


@pytest.mark.parametrize(("text", "line", "problem"), BAD)
def test_a_bad_file_is_refused_with_its_line_and_problem(text: str, line: int,
                                                         problem: str) -> None:
    err = refusal(text)
    assert (err.source, err.line, err.problem) == ("my.toml", line, problem)
    assert str(err) == f"rules file my.toml, line {line}: {problem}"
    assert isinstance(err, ValueError)


#: Over the defaults a kind already has an action: the cases without one are checked below.
BAD_OVER_DEFAULTS = [case for case in BAD
                     if "action" in case[0] or not case[0].startswith("[kinds.")]


@pytest.mark.parametrize(("text", "line", "problem"), BAD_OVER_DEFAULTS)
def test_a_bad_user_file_over_the_defaults_is_refused_the_same_way(text: str, line: int,
                                                                    problem: str) -> None:
    err = refusal(text, default_rules())
    assert (err.line, err.problem) == (line, problem)


def test_a_kind_without_action_over_the_defaults_keeps_the_default_action() -> None:
    rules = parse_rules('[kinds.dns]\nmessage = "x"\n', "my.toml", base=default_rules())
    assert rules.rule(Kind.DNS).action is default_rules().rule(Kind.DNS).action
    assert rules.rule(Kind.DNS).message == "x"
    err = refusal('[kinds.dns]\nalert = "loud"\n', default_rules())
    assert (err.line, err.problem) == (2, "kinds.dns.alert: unknown alert tier 'loud' "
                                          "(info, warning, critical)")
    err = refusal('[kinds.dns]\ncolldown_s = 5\n', default_rules())
    assert (err.line, err.problem) == (2, "kinds.dns.colldown_s: unknown setting (known: "
                                          "action, alert, cooldown_s, delay_factor, "
                                          "max_retries, message, min_delay_s)")


@pytest.mark.parametrize("text", ["[kinds", "a = "])
def test_a_syntax_error_at_the_end_names_no_line(text: str) -> None:
    err = refusal(text)
    assert err.line is None
    assert str(err) == f"rules file my.toml: {err.problem}"
    assert err.problem.endswith("(at end of document)")


# ------------------------------------------------------------------------------ values
def test_omitted_settings_take_their_defaults() -> None:
    rules = parse_rules('[kinds.ok]\naction = "none"\n[kinds.dns]\naction = "retry"\n'
                        'cooldown_s = 3\nalert = "critical"\nmessage = "m"\nmax_retries = 2\n'
                        'min_delay_s = 0.5\ndelay_factor = 4\n', "tiny.toml")
    assert rules.rules == {
        Kind.OK: Rule(Kind.OK, Action.NONE, 0.0, None, "", None, 0.0, 1.0),
        Kind.DNS: Rule(Kind.DNS, Action.RETRY, 3.0, AlertTier.CRITICAL, "m", 2, 0.5, 4.0)}
    assert isinstance(rules.rules[Kind.DNS].cooldown_s, float)
    assert rules.patterns == () and rules.digit_free is True
    assert rules.status_kinds == {} and rules.cloudflare_kinds == {}
    assert rules.transport_kinds == {}
    assert rules.response_time == ResponseTimeRules(3600.0, (), None, 0.0, 1, True, True)
    assert rules.health == HealthConfig(60.0, 3, 60.0, frozenset(), 60.0)
    assert rules.source == "tiny.toml"
    assert rules.raw == {"kinds": {"ok": {"action": "none"}, "dns": {
        "action": "retry", "cooldown_s": 3, "alert": "critical", "message": "m",
        "max_retries": 2, "min_delay_s": 0.5, "delay_factor": 4}}}


def test_every_section_is_read() -> None:
    rules = parse_rules(
        '[status]\n418 = "overloaded"\n100 = "ok"\n9999 = "dns"\n'
        '[cloudflare]\n1010 = "ip_banned"\n'
        '[transport]\ndns = "dns"\n'
        '[response_time]\nwindow_s = 60\nhalve_after_cooldown = false\n'
        'retry_pending_after_cooldown = false\n'
        '[[response_time.count]]\nslower_than_s = 30\nmore_than = 5\ncooldown_s = 300\n'
        '[response_time.average]\nslower_than_s = 9\ncooldown_s = 7\nmin_samples = 4\n'
        '[health]\ndegraded_window_s = 10\ndegraded_after = 2\nhealthy_after_s = 20\n'
        'degrading_kinds = ["dns", "overloaded"]\nalert_repeat_s = 30\n'
        '[[patterns]]\nkind = "overloaded"\ntext = "Busy 2"\nmatch = "prefix"\nname = "E"\n'
        'status = [503, 502]\n'
        '[[patterns]]\nkind = "dns"\nname = "DnsError"\n', "all.toml")
    assert rules.status_kinds == {418: Kind.OVERLOADED, 100: Kind.OK, 9999: Kind.DNS}
    assert rules.cloudflare_kinds == {1010: Kind.IP_BANNED}
    assert rules.transport_kinds == {Transport.DNS: Kind.DNS}
    assert rules.response_time == ResponseTimeRules(
        60.0, (SlowRule(30.0, 5, 300.0),), 9.0, 7.0, 4, False, False)
    assert rules.health == HealthConfig(10.0, 2, 20.0, frozenset({Kind.DNS, Kind.OVERLOADED}),
                                        30.0)
    assert rules.patterns == (
        Pattern(Kind.OVERLOADED, "busy 2", "prefix", "E", frozenset({502, 503})),
        Pattern(Kind.DNS, "", "contains", "DnsError", None))
    assert rules.digit_free is False


def test_counts_at_least_one() -> None:
    rules = parse_rules('[response_time.average]\nmin_samples = 0\n[health]\n'
                        'degraded_after = 0\n', "x.toml")
    assert rules.response_time.average_min_samples == 1
    assert rules.health.degraded_after == 1


@pytest.mark.parametrize(("setting", "value"), [
    ("cooldown_s", 0), ("cooldown_s", MAX_NUMBER), ("delay_factor", 1), ("delay_factor", 1000),
    ("max_retries", 0), ("max_retries", MAX_INTEGER), ("min_delay_s", 1e7)])
def test_range_edges_are_accepted(setting: str, value: float) -> None:
    rules = parse_rules(f'[kinds.dns]\naction = "retry"\n{setting} = {value!r}\n', "x.toml")
    assert getattr(rules.rule(Kind.DNS), setting) == value


def test_status_code_edges_are_accepted() -> None:
    rules = parse_rules('[[patterns]]\nkind = "ok"\ntext = "a"\nstatus = [100, 9999]\n', "x")
    assert rules.patterns[0].statuses == frozenset({100, 9999})
    assert parse_rules("[response_time]\nwindow_s = 1e-9\n", "x").response_time.window_s == 1e-9


# ------------------------------------------------------------------------------ merging
def test_a_user_file_merges_key_by_key_and_its_patterns_come_first() -> None:
    base = parse_rules('[kinds.dns]\naction = "retry"\nmessage = "base"\n'
                       '[kinds.ok]\naction = "none"\n[status]\n500 = "server_error"\n'
                       '[[patterns]]\nkind = "dns"\ntext = "b"\n', "base.toml")
    merged = parse_rules('[kinds.dns]\nmessage = "mine"\n[status]\n501 = "dns"\n'
                         '[[patterns]]\nkind = "ok"\ntext = "u"\n', "mine.toml", base=base)
    assert merged.rules[Kind.DNS] == Rule(Kind.DNS, Action.RETRY, message="mine")
    assert merged.rules[Kind.OK] == Rule(Kind.OK, Action.NONE)
    assert merged.status_kinds == {500: Kind.SERVER_ERROR, 501: Kind.DNS}
    assert [p.text for p in merged.patterns] == ["u", "b"]
    assert merged.source == "mine.toml"
    assert base.raw["kinds"]["dns"]["message"] == "base"          # the base is left alone
    replaced = parse_rules('replace_patterns = true\n[[patterns]]\nkind = "ok"\ntext = "u"\n',
                           "mine.toml", base=base)
    assert [p.text for p in replaced.patterns] == ["u"]
    kept = parse_rules('replace_patterns = false\n', "mine.toml", base=base)
    assert [p.text for p in kept.patterns] == ["b"] and "replace_patterns" not in kept.raw


def test_a_scalar_replaces_a_table_and_a_table_replaces_a_scalar() -> None:
    base = parse_rules('[kinds.dns]\naction = "retry"\n', "base.toml")
    err = refusal('kinds = 5\n', base)
    assert (err.line, err.problem) == (1, "kinds: expected a table, got int")


def test_load_rules_without_a_user_file_is_the_base_itself() -> None:
    base = parse_rules('[kinds.ok]\naction = "none"\n', "base.toml")
    assert load_rules(None, base=base) is base
    assert load_rules(None) is default_rules()
    mine = load_rules('[kinds.ok]\nmessage = "m"\n', "mine.toml", base=base)
    assert mine.rules == {Kind.OK: Rule(Kind.OK, Action.NONE, message="m")}
    assert mine.source == "mine.toml"
    assert load_rules("").source == "<user rules>"
    assert parse_rules("").source == "<rules>"


def test_the_defaults_are_parsed_once() -> None:
    assert default_rules() is default_rules()
    assert default_rules().source == "rules_default.toml"


# ------------------------------------------------------------------------------ lines
@pytest.mark.parametrize(("text", "path", "line"), [
    ("", ("kinds",), None),
    ('[ kinds . "dns" ]\n"action" = 1\n', ("kinds", "dns", "action"), 2),
    ('[kinds.dns]\n', ("kinds", "dns"), 1),
    ('a = 1\n[kinds.dns]\naction = 1\n[kinds.ok]\naction = 1\n', ("kinds", "ok", "action"), 5),
    ('a = 1\n[kinds.dns]\naction = 1\n[kinds.ok]\naction = 1\n', ("kinds", "ok"), 4),
    ('[[patterns]]\na = 1\n[[patterns]]\nkind = 1\n', ("patterns", 1, "kind"), 4),
    ('[[patterns]]\nkind = 1\n[[patterns]]\nkind = 1\n', ("patterns", 0, "kind"), 2),
    ('[[patterns]]\na = 1\n\n[[patterns]]\na = 1\n', ("patterns", 1), 4),
    ('[[patterns]]\na = 1\n[[patterns]]\nkind = 1\n', ("patterns", 5, "kind"), 4),
    ('x = 1\n[kinds]\ndns = 3\n', ("kinds", "dns"), 3),
    ('x = 1\ny = 2\n', ("zz",), 1),
    ('x = 1\ny = 2\n', ("y",), 2),
    ('[a]\nx = 1\n[b]\nx = 1\n', ("b", "x"), 4),
    ('[a]\n  x = 1\n', ("a", "x"), 2),
    ('[a]\nxy = 1\nx = 1\n', ("a", "x"), 3),
    ('[ab]\n[a]\n', ("a",), 2),
    ('[x]\n[[a]]\n[x]\n', ("a", 0, "x"), 3),
    ('[[a.b]]\nx = 1\n[[a.b]]\nx = 2\n', ("a", "b", 1, "x"), 4),
    ('[a.b]\n[a]\n', ("a",), 2),
    ('[kinds.dns]\n[kinds . dns . x]\n', ("kinds", "dns", "x"), 2),
])
def test_the_line_of_a_key(text: str, path: tuple[str | int, ...], line: int | None) -> None:
    assert _locate(text, path) == line


def test_errors_in_a_user_file_over_a_base_point_into_the_user_file() -> None:
    text = '# mine\n[[patterns]]\nkind = "ok"\ntext = "a"\n[[patterns]]\nkind = "x"\ntext = "b"\n'
    err = refusal(text, default_rules())
    assert (err.line, err.problem) == (6, f"patterns.1.kind: unknown kind 'x' (known: {KINDS})")
    assert re.fullmatch(r"rules file my\.toml, line 6: patterns\.1\.kind: .*", str(err))


def test_a_merged_table_can_be_merged_over_again() -> None:
    first = load_rules('[[patterns]]\nkind = "ok"\ntext = "one"\n', "one.toml",
                       base=parse_rules('[[patterns]]\nkind = "dns"\ntext = "base"\n', "b"))
    assert first.raw["patterns"] == [{"kind": "ok", "text": "one"},
                                     {"kind": "dns", "text": "base"}]
    second = load_rules('[[patterns]]\nkind = "ok"\ntext = "two"\n', "two.toml", base=first)
    assert [p.text for p in second.patterns] == ["two", "one", "base"]


def test_a_short_cooldown_is_a_cooldown() -> None:
    rules = parse_rules('[kinds.dns]\naction = "cooldown"\ncooldown_s = 0.5\n', "x.toml")
    assert rules.rule(Kind.DNS) == Rule(Kind.DNS, Action.COOLDOWN, cooldown_s=0.5)
