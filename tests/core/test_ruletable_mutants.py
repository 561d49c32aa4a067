"""RuleSet.rule fallbacks and RulesError's text, on hand-built tables."""

from __future__ import annotations

from venueguard.core.kinds import Action, Kind
from venueguard.core.ruletable import HealthConfig, ResponseTimeRules, Rule, RulesError, RuleSet


def table(rules: dict[Kind, Rule]) -> RuleSet:
    return RuleSet(rules=rules, patterns=(), status_kinds={}, cloudflare_kinds={},
                   transport_kinds={}, response_time=ResponseTimeRules(), health=HealthConfig())


def test_a_kind_without_a_rule_gets_the_unknown_rule() -> None:
    unknown = Rule(Kind.UNKNOWN, Action.WARN, message="unclassified")
    rules = table({Kind.UNKNOWN: unknown, Kind.DNS: Rule(Kind.DNS, Action.RETRY)})
    assert rules.rule(Kind.DNS) == Rule(Kind.DNS, Action.RETRY)
    assert rules.rule(Kind.NOT_FOUND) is unknown


def test_without_an_unknown_rule_the_fallback_is_retry_once_for_that_kind() -> None:
    assert table({}).rule(Kind.NOT_FOUND) == Rule(Kind.NOT_FOUND, Action.RETRY_ONCE)


def test_rules_error_names_source_line_and_problem() -> None:
    with_line = RulesError("venue.toml", 7, "unknown action 'explode'")
    assert str(with_line) == "rules file venue.toml, line 7: unknown action 'explode'"
    assert (with_line.source, with_line.line, with_line.problem) == (
        "venue.toml", 7, "unknown action 'explode'")
    without_line = RulesError("venue.toml", None, "not TOML")
    assert str(without_line) == "rules file venue.toml: not TOML"
    assert without_line.problem == "not TOML" and without_line.line is None
    assert isinstance(without_line, ValueError)
