"""The rule table: what each kind of outcome means and what to do about it, as data.

The defaults live in ``rules_default.toml`` inside this package. A user file merges over them:
tables merge key by key; the user's ``[[patterns]]`` are tried before the default ones (set
``replace_patterns = true`` at the top of the user file to drop the default patterns).

Public API::

    parse_rules(text: str, source: str = "<rules>", *, base: RuleSet | None = None) -> RuleSet
    default_rules() -> RuleSet                     # parsed once, cached
    load_rules(user_text: str | None, source: str) -> RuleSet   # defaults + user file
    RuleSet.rule(kind) -> Rule
    class RulesError(ValueError): source, line, problem

``parse_rules`` does no I/O: the caller reads the file and passes its text and name. Only
``default_rules`` reads package data (``importlib.resources``), once. A malformed file raises
``RulesError`` naming the file, the line and the problem. Every field is type-checked (a
string where a boolean belongs is an error, not a truthy value) and every number must be finite
and inside its range (``nan``, ``inf`` and absurd magnitudes are refused).
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from venueguard.core.kinds import CLASSIFIED_KINDS, LOCAL_KINDS, Action, AlertTier, Kind, Transport
from venueguard.core.ruletable import (
    MATCH_MODES,
    HealthConfig,
    Pattern,
    ResponseTimeRules,
    Rule,
    RulesError,
    RuleSet,
    SlowRule,
)

__all__ = [
    "HealthConfig",
    "Pattern",
    "ResponseTimeRules",
    "Rule",
    "RuleSet",
    "RulesError",
    "SlowRule",
    "default_rules",
    "load_rules",
    "parse_rules",
]

# --- parsing --------------------------------------------------------------------------------

MAX_NUMBER = 1e7  # seconds (115 days) or factors: anything larger is a typo, not a policy
MAX_INTEGER = 10**9
PATTERN_KEYS = {"kind", "text", "match", "name", "status"}


def _toml_line(message: str) -> int | None:
    found = re.search(r"line (\d+)", message)
    return int(found.group(1)) if found else None


def _header_line(lines: list[str], names: list[str], start: int) -> int | None:
    if not names:
        return None
    dotted = r"\s*\.\s*".join(r"\"?" + re.escape(n) + r"\"?" for n in names)
    header = re.compile(r"^\s*\[\s*" + dotted + r"\s*\]")
    for i in range(start, len(lines)):
        if header.match(lines[i]):
            return i
    return None


def _locate(text: str, path: tuple[str | int, ...]) -> int | None:
    """Best-effort line of a key path: its own table header, else its table's header and then
    the ``key =`` line. Integers index arrays of tables (``("patterns", 3)``: 4th header)."""
    lines = text.splitlines()
    if not lines:
        return None
    start = 0
    names: list[str] = []
    for part in path:
        if isinstance(part, str):
            names.append(part)
            continue
        array = re.compile(r"^\s*\[\[\s*" + re.escape(".".join(names)) + r"\s*\]\]")
        hits = [i for i, line in enumerate(lines) if array.match(line)]
        if part < len(hits):
            start = hits[part]
        names = []
    own = _header_line(lines, names, start)
    if own is not None:
        return own + 1
    parent = _header_line(lines, names[:-1], start)
    if parent is not None:
        start = parent
    if names:
        key_re = re.compile(r"^\s*\"?" + re.escape(names[-1]) + r"\"?\s*=")
        for i in range(start, len(lines)):
            if key_re.match(lines[i]):
                return i + 1
    return start + 1


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source

    def fail(self, path: tuple[str | int, ...], problem: str) -> RulesError:
        dotted = ".".join(str(p) for p in path)
        return RulesError(self.source, _locate(self.text, path), f"{dotted}: {problem}")

    def kind(self, value: object, path: tuple[str | int, ...]) -> Kind:
        try:
            kind = Kind(value)
        except ValueError:
            kind = None
        if kind is None or kind in LOCAL_KINDS:
            known = ", ".join(k.value for k in CLASSIFIED_KINDS)
            raise self.fail(path, f"unknown kind {value!r} (known: {known})")
        return kind

    def number(self, value: object, path: tuple[str | int, ...], *, minimum: float = 0.0,
               maximum: float = MAX_NUMBER) -> float:
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not math.isfinite(value) or not minimum <= value <= maximum):
            raise self.fail(path, f"expected a finite number from {minimum:g} to {maximum:g}, "
                                  f"got {value!r}")
        return float(value)

    def integer(self, value: object, path: tuple[str | int, ...], *, minimum: int = 0,
                maximum: int = MAX_INTEGER) -> int:
        if (isinstance(value, bool) or not isinstance(value, int)
                or not minimum <= value <= maximum):
            raise self.fail(path, f"expected a whole number from {minimum} to {maximum}, "
                                  f"got {value!r}")
        return value

    def boolean(self, value: object, path: tuple[str | int, ...]) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, f"expected true or false, got {value!r}")
        return value

    def table(self, value: object, path: tuple[str | int, ...]) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(path, f"expected a table, got {type(value).__name__}")
        return value

    def only(self, body: Mapping[str, Any], allowed: set[str], path: tuple[str | int, ...]) -> None:
        for key in body:
            if key not in allowed:
                known = ", ".join(sorted(allowed))
                raise self.fail((*path, key), f"unknown setting (known: {known})")

    def rule(self, name: str, spec: object) -> Rule:
        path: tuple[str | int, ...] = ("kinds", name)
        body = self.table(spec, path)
        kind = self.kind(name, path)
        self.only(body, {"action", "cooldown_s", "alert", "message", "max_retries",
                         "min_delay_s", "delay_factor"}, path)
        try:
            action = Action(body.get("action", ""))
        except ValueError:
            known = ", ".join(a.value for a in Action)
            raise self.fail((*path, "action"),
                            f"unknown action {body.get('action')!r} (known: {known})") from None
        alert: AlertTier | None = None
        if "alert" in body:
            try:
                alert = AlertTier(body["alert"])
            except ValueError:
                raise self.fail((*path, "alert"),
                                f"unknown alert tier {body['alert']!r} (info, warning, critical)"
                                ) from None
        max_retries = body.get("max_retries")
        message = body.get("message", "")
        if not isinstance(message, str):
            raise self.fail((*path, "message"), "expected a string")
        rule = Rule(
            kind=kind,
            action=action,
            cooldown_s=self.number(body.get("cooldown_s", 0.0), (*path, "cooldown_s")),
            alert=alert,
            message=message,
            max_retries=None if max_retries is None else self.integer(
                max_retries, (*path, "max_retries")),
            min_delay_s=self.number(body.get("min_delay_s", 0.0), (*path, "min_delay_s")),
            delay_factor=self.number(body.get("delay_factor", 1.0), (*path, "delay_factor"),
                                     minimum=1.0, maximum=1000.0),
        )
        if action is Action.COOLDOWN and rule.cooldown_s <= 0:
            raise self.fail((*path, "cooldown_s"), "action 'cooldown' needs cooldown_s > 0")
        return rule

    def pattern(self, index: int, spec: object) -> Pattern:
        path: tuple[str | int, ...] = ("patterns", index)
        body = self.table(spec, path)
        self.only(body, PATTERN_KEYS, path)
        kind = self.kind(body.get("kind"), (*path, "kind"))
        text = body.get("text", "")
        if not isinstance(text, str):
            raise self.fail((*path, "text"), "expected a string")
        mode = body.get("match", "contains")
        if mode not in MATCH_MODES:
            raise self.fail((*path, "match"), f"expected one of {', '.join(MATCH_MODES)}")
        name = body.get("name")
        if name is not None and not isinstance(name, str):
            raise self.fail((*path, "name"), "expected a string")
        if not text and name is None:
            raise self.fail((*path, "text"), "a pattern needs a text or a name")
        statuses: frozenset[int] | None = None
        if "status" in body:
            raw = body["status"]
            values = raw if isinstance(raw, list) else [raw]
            statuses = frozenset(self.integer(v, (*path, "status"), minimum=100, maximum=9999)
                                 for v in values)
        return Pattern(kind, text.lower(), mode, name, statuses)

    def code_table(self, name: str, spec: object) -> dict[int, Kind]:
        out: dict[int, Kind] = {}
        for key, value in self.table(spec, (name,)).items():
            if not (key.isascii() and key.isdigit() and 100 <= int(key) <= 9999):
                raise self.fail((name, key), "expected a numeric code (100 to 9999) as key")
            out[int(key)] = self.kind(value, (name, key))
        return out

    def response_time(self, spec: object) -> ResponseTimeRules:
        path: tuple[str | int, ...] = ("response_time",)
        body = self.table(spec, path)
        self.only(body, {"window_s", "count", "average", "halve_after_cooldown",
                         "retry_pending_after_cooldown"}, path)
        counts = []
        raw_counts = body.get("count", [])
        if not isinstance(raw_counts, list):
            raise self.fail((*path, "count"), "expected an array of tables")
        for i, item in enumerate(raw_counts):
            sub = self.table(item, ("response_time.count", i))
            ipath: tuple[str | int, ...] = ("response_time.count", i)
            self.only(sub, {"slower_than_s", "more_than", "cooldown_s"}, ipath)
            counts.append(SlowRule(
                slower_than_s=self.number(sub.get("slower_than_s"), (*ipath, "slower_than_s")),
                more_than=self.integer(sub.get("more_than"), (*ipath, "more_than")),
                cooldown_s=self.number(sub.get("cooldown_s"), (*ipath, "cooldown_s")),
            ))
        average = self.table(body.get("average", {}), (*path, "average"))
        self.only(average, {"slower_than_s", "cooldown_s", "min_samples"}, (*path, "average"))
        slower = average.get("slower_than_s")
        return ResponseTimeRules(
            window_s=self.number(body.get("window_s", 3600.0), (*path, "window_s"), minimum=1e-9),
            counts=tuple(counts),
            average_slower_than_s=None if slower is None else self.number(
                slower, ("response_time", "average", "slower_than_s")),
            average_cooldown_s=self.number(average.get("cooldown_s", 0.0),
                                           ("response_time", "average", "cooldown_s")),
            average_min_samples=max(1, self.integer(average.get("min_samples", 1),
                                                    ("response_time", "average", "min_samples"))),
            halve_after_cooldown=self.boolean(body.get("halve_after_cooldown", True),
                                              (*path, "halve_after_cooldown")),
            retry_pending_after_cooldown=self.boolean(
                body.get("retry_pending_after_cooldown", True),
                (*path, "retry_pending_after_cooldown")),
        )

    def health(self, spec: object) -> HealthConfig:
        path: tuple[str | int, ...] = ("health",)
        body = self.table(spec, path)
        self.only(body, {"degraded_window_s", "degraded_after", "healthy_after_s",
                         "degrading_kinds", "alert_repeat_s"}, path)
        kinds = body.get("degrading_kinds", [])
        if not isinstance(kinds, list):
            raise self.fail((*path, "degrading_kinds"), "expected a list of kinds")
        return HealthConfig(
            degraded_window_s=self.number(body.get("degraded_window_s", 60.0),
                                          (*path, "degraded_window_s")),
            degraded_after=max(1, self.integer(body.get("degraded_after", 3),
                                               (*path, "degraded_after"))),
            healthy_after_s=self.number(body.get("healthy_after_s", 60.0),
                                        (*path, "healthy_after_s")),
            degrading_kinds=frozenset(self.kind(k, (*path, "degrading_kinds")) for k in kinds),
            alert_repeat_s=self.number(body.get("alert_repeat_s", 60.0), (*path, "alert_repeat_s")),
        )

    def orders(self, spec: object) -> float:
        path: tuple[str | int, ...] = ("orders",)
        body = self.table(spec, path)
        self.only(body, {"visibility_horizon_s"}, path)
        return self.number(body.get("visibility_horizon_s", 60.0),
                           (*path, "visibility_horizon_s"), minimum=1.0)

    def build(self, data: Mapping[str, Any], patterns: list[Any]) -> RuleSet:
        known = {"kinds", "patterns", "status", "cloudflare", "transport", "response_time",
                 "health", "orders", "replace_patterns"}
        for key in data:
            if key not in known:
                raise self.fail((key,), f"unknown section (known: {', '.join(sorted(known))})")
        rules = {}
        for name, spec in self.table(data.get("kinds", {}), ("kinds",)).items():
            rule = self.rule(name, spec)
            rules[rule.kind] = rule
        transport: dict[Transport, Kind] = {}
        for key, value in self.table(data.get("transport", {}), ("transport",)).items():
            try:
                failure = Transport(key)
            except ValueError:
                raise self.fail(("transport", key), "unknown transport failure") from None
            transport[failure] = self.kind(value, ("transport", key))
        compiled = tuple(self.pattern(i, p) for i, p in enumerate(patterns))
        return RuleSet(
            rules=rules,
            patterns=compiled,
            digit_free=not any(ch.isdigit() for p in compiled for ch in p.text),
            status_kinds=self.code_table("status", data.get("status", {})),
            cloudflare_kinds=self.code_table("cloudflare", data.get("cloudflare", {})),
            transport_kinds=transport,
            response_time=self.response_time(data.get("response_time", {})),
            health=self.health(data.get("health", {})),
            visibility_horizon_s=self.orders(data.get("orders", {})),
            source=self.source,
            raw=data,
        )


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_rules(text: str, source: str = "<rules>", *, base: RuleSet | None = None) -> RuleSet:
    """Parse rule-file ``text`` (named ``source`` in errors), merged over ``base`` if given.

    Raises :class:`RulesError` for TOML syntax errors (with tomllib's line) and for semantic
    errors (unknown kind, action, tier or setting; bad numbers), with the line of the key.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(source, _toml_line(str(exc)), str(exc)) from None
    parser = _Parser(text, source)
    user_patterns = data.get("patterns", [])
    if not isinstance(user_patterns, list):
        raise parser.fail(("patterns",), "expected an array of tables ([[patterns]])")
    replace = parser.boolean(data.pop("replace_patterns", False), ("replace_patterns",))
    if base is None:
        return parser.build(data, user_patterns)
    # user patterns come first, so pattern i of the merged list is pattern i of this file and
    # any error found while building the merged table points at a line of this file
    merged = _merge(base.raw, {k: v for k, v in data.items() if k != "patterns"})
    patterns = user_patterns if replace else [*user_patterns, *base.raw.get("patterns", [])]
    merged["patterns"] = patterns
    return parser.build(merged, patterns)


@cache
def default_rules() -> RuleSet:
    """The packaged default rule table (``rules_default.toml``), parsed once."""
    text = resources.files("venueguard.core").joinpath("rules_default.toml").read_text("utf-8")
    return parse_rules(text, "rules_default.toml")


def load_rules(user_text: str | None, source: str = "<user rules>", *,
               base: RuleSet | None = None) -> RuleSet:
    """``base`` (default: the packaged defaults; a venue adapter passes its own table, which
    carries that venue's error texts) with the user file's text merged over it (``None``:
    ``base`` alone)."""
    table = base if base is not None else default_rules()
    if user_text is None:
        return table
    return parse_rules(user_text, source, base=table)
