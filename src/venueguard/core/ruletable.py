"""The rule table's data types: what :func:`venueguard.core.rules.parse_rules` builds.

Public API (all re-exported by :mod:`venueguard.core.rules`)::

    Rule(kind, action, cooldown_s=0.0, alert=None, message="", max_retries=None,
         min_delay_s=0.0, delay_factor=1.0)
    Pattern(kind, text, match="contains", name=None, statuses=None)
    SlowRule(slower_than_s, more_than, cooldown_s)
    ResponseTimeRules(window_s, counts, average_slower_than_s, average_cooldown_s, ...)
    HealthConfig(degraded_window_s, degraded_after, healthy_after_s, degrading_kinds,
                 alert_repeat_s)
    RuleSet(rules, patterns, status_kinds, cloudflare_kinds, transport_kinds, response_time,
            health, source, ...)       # .rule(kind) -> Rule
    class RulesError(ValueError): source, line, problem
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from venueguard.core.kinds import Action, AlertTier, Kind, Transport

if TYPE_CHECKING:
    from venueguard.core.classify import Classification

__all__ = [
    "MATCH_MODES",
    "HealthConfig",
    "Pattern",
    "ResponseTimeRules",
    "Rule",
    "RuleSet",
    "RulesError",
    "SlowRule",
]

MATCH_MODES = ("prefix", "contains", "exact")


class RulesError(ValueError):
    """A rules file that cannot be used: names the file, the line (when known) and the problem."""

    def __init__(self, source: str, line: int | None, problem: str) -> None:
        self.source = source
        self.line = line
        self.problem = problem
        where = f"{source}, line {line}" if line is not None else source
        super().__init__(f"rules file {where}: {problem}")


@dataclass(frozen=True, slots=True)
class Rule:
    """What to do about one kind. ``max_retries`` None means "as the budget and backoff allow"."""

    kind: Kind
    action: Action
    cooldown_s: float = 0.0  # venue cooldown started by this kind (action COOLDOWN)
    alert: AlertTier | None = None
    message: str = ""  # alert text
    max_retries: int | None = None
    min_delay_s: float = 0.0  # floor on the delay before a retry (a load-shedding 503: >= 0.5 s)
    delay_factor: float = 1.0  # multiplier on the backoff delay (> 1: a longer backoff)


@dataclass(frozen=True, slots=True)
class Pattern:
    """A text rule: an error message matching ``text`` (case-insensitive) means ``kind``.

    ``match``: ``contains`` (default), ``prefix``, or ``exact`` (ignoring a trailing period).
    ``name`` (the error body's ``error.name``) and ``statuses`` further restrict the match when set.
    An empty ``text`` with a ``name`` matches every message of that name.
    """

    kind: Kind
    text: str  # stored lower-cased
    match: str = "contains"  # prefix | contains | exact
    name: str | None = None
    statuses: frozenset[int] | None = None


@dataclass(frozen=True, slots=True)
class SlowRule:
    """More than ``more_than`` responses slower than ``slower_than_s`` within the window."""

    slower_than_s: float
    more_than: int
    cooldown_s: float


@dataclass(frozen=True, slots=True)
class ResponseTimeRules:
    """Response-time rules evaluated over a sliding window (default one hour)."""

    window_s: float = 3600.0
    counts: tuple[SlowRule, ...] = ()
    average_slower_than_s: float | None = None
    average_cooldown_s: float = 0.0
    average_min_samples: int = 1
    halve_after_cooldown: bool = True
    retry_pending_after_cooldown: bool = True


@dataclass(frozen=True, slots=True)
class HealthConfig:
    """When failures make the venue DEGRADED and when it is HEALTHY again."""

    degraded_window_s: float = 60.0
    degraded_after: int = 3  # this many degrading outcomes within the window
    healthy_after_s: float = 60.0  # no degrading outcome for this long -> HEALTHY
    degrading_kinds: frozenset[Kind] = frozenset()
    alert_repeat_s: float = 60.0  # the same kind and tier alert at most once in this long


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A complete, validated rule table. Build it with :func:`parse_rules` or :func:`load_rules`."""

    rules: Mapping[Kind, Rule]
    patterns: tuple[Pattern, ...]
    status_kinds: Mapping[int, Kind]
    cloudflare_kinds: Mapping[int, Kind]
    transport_kinds: Mapping[Transport, Kind]
    response_time: ResponseTimeRules
    health: HealthConfig
    source: str = "<rules>"
    #: ``[orders] visibility_horizon_s``: how long an order the venue accepted may stay
    #: invisible to its queries. Absence is evidence that an order was never placed only when
    #: the venue was asked at least this long after the request left.
    visibility_horizon_s: float = 60.0
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)  # merged TOML, for merging
    digit_free: bool = True  # no pattern text contains a digit (classify memo may share shapes)
    # classify() memo of (status, name, message) -> Kind; bounded, see classify._CACHE_MAX.
    memo: dict[tuple[int | None, str | None, str], Kind] = field(
        default_factory=dict, repr=False, compare=False
    )
    # classify() cache of whole verdicts for outcomes without per-response details; bounded
    verdicts: dict[object, Classification] = field(
        default_factory=dict, repr=False, compare=False
    )

    def rule(self, kind: Kind) -> Rule:
        """The rule for ``kind``; kinds without an entry fall back to the ``unknown`` rule."""
        found = self.rules.get(kind)
        if found is not None:
            return found
        return self.rules.get(Kind.UNKNOWN, Rule(kind, Action.RETRY_ONCE))
