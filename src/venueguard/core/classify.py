"""One pure function that says what an outcome was and what to do about it.

Public API::

    classify(outcome: Outcome, rules: RuleSet | None = None) -> Classification
    classify_text(message, *, name=None, status=None, rules=None) -> Kind   # per-row / WS texts
    Outcome(status=None, headers=None, body=None, transport=None, sent=None, wall_ms=None)
    Classification(kind, action, ambiguous, status, retry_after_s, message, error_name,
                   cloudflare_code, rate_limit)  # .retryable, .rule(rules)
    RateLimit(limit, remaining, reset_epoch_s, remaining_1s)
    Kind, Action, AlertTier, Transport   (re-exported from venueguard.core.kinds)

An adapter builds an :class:`Outcome` from whatever happened (an HTTP response, a transport
exception, a websocket error frame) and calls :func:`classify`. ``rules`` defaults to the packaged
table (:func:`venueguard.core.rules.default_rules`). The result's ``action`` is the rule table's
default for the kind; ``ambiguous`` is True when the request may have been processed (read
timeout, reset after send, 502, 504, other 5xx), which means: do not resend a non-idempotent
request before resolving it with venue evidence.

Order of decisions: transport failure -> Cloudflare code in a non-JSON page -> error text
patterns (a JSON ``{"error": {"message", "name"}}`` body or a websocket ``{"status", "error"}``, and
per-row ``"error"`` fields of a 200 list) -> HTTP status table -> status class (2xx ok, other 4xx
bad_request, other 5xx server_error) -> unknown.

A transport failure with ``sent=False`` is never ambiguous (nothing reached the venue).
Bodies are read at most ``MAX_BODY_CHARS`` deep, so hostile sizes cost nothing. Verdicts that
depend only on status, error name and message (or on a small error page) are cached in the
rule set, bounded, so the common repeated outcomes cost a lookup plus any header parsing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

from venueguard.core.kinds import AMBIGUOUS_KINDS, Action, AlertTier, Kind, Transport
from venueguard.core.responses import (
    MAX_BODY_CHARS,
    RateLimit,
    decode_body,
    error_of,
    read_headers,
    retry_after_from,
)
from venueguard.core.rules import Pattern, Rule, RuleSet, default_rules

__all__ = [
    "MAX_BODY_CHARS",
    "Action",
    "AlertTier",
    "Classification",
    "Kind",
    "Outcome",
    "RateLimit",
    "Transport",
    "classify",
    "classify_text",
]

_MESSAGE_CHARS = 300
_CACHE_MAX = 4096
_PAGE_CACHE_CHARS = 4096  # error pages up to this size are cached whole (they repeat verbatim)
_RETRYABLE = frozenset({Action.RETRY, Action.BACKOFF, Action.WAIT_RETRY_AFTER, Action.RETRY_ONCE})
_CLOUDFLARE_RE = re.compile(r"error(?:\s+code)?\s*:?\s*(\d{3,4})\b", re.IGNORECASE)
_new_tuple = tuple.__new__
_TITLE_RE = re.compile(r"<title>\s*([^<]{0,200}?)\s*</title>", re.IGNORECASE)


# Outcome, Classification and RateLimit (in responses.py) are typed NamedTuples rather than
# frozen dataclasses: one of each is built per response on the hot path, where a frozen
# dataclass's __init__ costs 3-4 us on a small machine and a NamedTuple about 1 us. They are
# just as immutable.


class Outcome(NamedTuple):
    """What happened to one request (or one websocket error frame).

    status: HTTP status, or the ``status`` of a websocket error frame; None when no response.
    headers: response headers. Names are looked up lower-case (``retry-after``,
        ``x-ratelimit-remaining``) and in their usual spelling (``Retry-After``,
        ``X-RateLimit-Remaining``); a case-insensitive mapping (aiohttp's) finds any spelling.
    body: raw ``bytes``/``str``, or already-decoded JSON (``dict``/``list``); None when absent.
    transport: the failure below HTTP, when there was no response.
    sent: whether the request was completely written; None when not known.
    wall_ms: wall clock (epoch ms) at receipt; only needed for an HTTP-date ``Retry-After``
        and for ``x-ratelimit-reset``.
    """

    status: int | None = None
    headers: Mapping[str, str] | None = None
    body: object = None
    transport: Transport | None = None
    sent: bool | None = None
    wall_ms: int | None = None


class Classification(NamedTuple):
    """The verdict on one outcome. ``action`` is the rule table's default for ``kind``."""

    kind: Kind
    action: Action
    ambiguous: bool  # the request may have been processed by the venue
    status: int | None = None
    retry_after_s: float | None = None  # from Retry-After, meta.retryAfter, the text, or reset
    message: str = ""  # the venue's error text (or a page title), truncated
    error_name: str | None = None  # the body's error.name
    cloudflare_code: int | None = None
    rate_limit: RateLimit | None = None

    @property
    def retryable(self) -> bool:
        """True when the default action resends the request (subject to budget and backoff)."""
        return self.action in _RETRYABLE

    def rule(self, rules: RuleSet | None = None) -> Rule:
        """The full rule (cooldown, alert, retry limits) behind this verdict."""
        return (rules or default_rules()).rule(self.kind)


_DIGITS_RE = re.compile(r"\d+")


def _scan(patterns: tuple[Pattern, ...], low: str, name: str | None, status: int | None) -> Kind:
    for pattern in patterns:
        if pattern.name is not None and pattern.name != name:
            continue
        if pattern.statuses is not None and status not in pattern.statuses:
            continue
        mode = pattern.match
        if mode == "contains":
            if pattern.text in low:
                return pattern.kind
        elif mode == "prefix":
            if low.startswith(pattern.text):
                return pattern.kind
        elif low.rstrip(". ") == pattern.text.rstrip(". "):
            return pattern.kind
    return Kind.UNKNOWN


def _match(rules: RuleSet, message: str, name: str | None, status: int | None) -> Kind | None:
    """First matching pattern's kind (None if none). Memoised by the exact text and, so texts
    that differ only in numbers (balances, timestamps, nonces) share an entry, by the text with
    digit runs replaced by ``#``."""
    memo = rules.memo
    key = (status, name, message)
    found = memo.get(key)
    if found is None:
        # shapes are only shared when no pattern text mentions a digit
        shape = (status, name, _DIGITS_RE.sub("#", message)) if rules.digit_free else key
        found = memo.get(shape)
        if found is None:
            found = _scan(rules.patterns, message.lower(), name, status)
            if len(memo) >= _CACHE_MAX:
                memo.clear()
            memo[shape] = found
        if len(memo) >= _CACHE_MAX:
            memo.clear()
        memo[key] = found
    return None if found is Kind.UNKNOWN else found


def classify_text(
    message: str,
    *,
    name: str | None = None,
    status: int | None = None,
    rules: RuleSet | None = None,
) -> Kind:
    """The kind of a bare error text (cancel-row or websocket ``error``); UNKNOWN if none."""
    return _match(rules or default_rules(), message, name, status) or Kind.UNKNOWN


def _by_status(rules: RuleSet, status: int | None) -> Kind:
    if status is None:
        return Kind.UNKNOWN
    kind = rules.status_kinds.get(status)
    if kind is not None:
        return kind
    if 200 <= status < 300:
        return Kind.OK
    if 400 <= status < 500:
        return Kind.BAD_REQUEST
    if 500 <= status < 600:
        return Kind.SERVER_ERROR
    return Kind.UNKNOWN


def _remember(table: RuleSet, key: object, verdict: Classification) -> Classification:
    verdicts = table.verdicts
    if len(verdicts) >= _CACHE_MAX:
        verdicts.clear()
    verdicts[key] = verdict
    return verdict


def classify(outcome: Outcome, rules: RuleSet | None = None) -> Classification:
    """Classify one outcome with ``rules`` (default: the packaged table). Pure; never raises.

    Verdicts that depend only on (status, error name, message) or on the transport failure are
    cached in the rule set (bounded), so repeated outcomes cost a dictionary lookup.
    """
    table = rules if rules is not None else default_rules()
    status, headers, body, transport, sent, wall_ms = outcome
    if transport is not None and status is None:
        found = table.verdicts.get((transport, sent))
        if found is not None:
            return found
        failed = table.transport_kinds.get(transport, Kind.TRANSIENT_NETWORK)
        if failed in AMBIGUOUS_KINDS and sent is False:
            failed = Kind.TRANSIENT_NETWORK  # nothing was written, so nothing was processed
        return _remember(table, (transport, sent), Classification(
            failed, table.rule(failed).action, failed in AMBIGUOUS_KINDS, None, None,
            transport.value))

    rate_limit, retry_after = read_headers(headers, wall_ms) if headers else (None, None)
    decoded = body if body.__class__ is dict else decode_body(body)
    message, name, meta_after = error_of(decoded)
    if retry_after is None:
        retry_after = meta_after
    # the verdict without per-response details depends on (status, name, message) only, or on
    # the whole page for a text/HTML body; it is cached, and details are added on top
    key: tuple[object, ...] | None = (status, name, message)
    if isinstance(decoded, str):
        key = (status, decoded) if len(decoded) <= _PAGE_CACHE_CHARS else None
    base = table.verdicts.get(key) if key is not None else None
    if base is None:
        base = _respond(table, status, decoded, message, name)
        if key is not None:
            _remember(table, key, base)
    if retry_after is None and rate_limit is None:
        return base
    if retry_after is None:
        retry_after = base.retry_after_s
        if retry_after is None and base.kind is Kind.RATE_LIMITED:
            retry_after = retry_after_from(message, rate_limit, wall_ms)
    # Classification(...) without the generated __new__'s overhead (hot path)
    return _new_tuple(Classification, (base[0], base[1], base[2], base[3], retry_after,
                                       base[5], base[6], base[7], rate_limit))


def _respond(
    table: RuleSet, status: int | None, decoded: object, message: str | None, name: str | None
) -> Classification:
    """The verdict from status and body alone (no headers, no wall clock)."""
    if message is None and isinstance(decoded, str) and decoded and (
            status is None or status >= 400):
        found = _CLOUDFLARE_RE.search(decoded)
        if found is not None:
            code = int(found.group(1))
            cf_kind = table.cloudflare_kinds.get(code)
            if cf_kind is not None:
                title = _TITLE_RE.search(decoded)
                text = title.group(1) if title else found.group(0)
                return Classification(cf_kind, table.rule(cf_kind).action,
                                      cf_kind in AMBIGUOUS_KINDS, status, None,
                                      text[:_MESSAGE_CHARS], None, code, None)
    matched = _match(table, message, name, status) if message is not None else None
    kind = matched if matched is not None else _by_status(table, status)
    retry_after = None
    if kind is Kind.RATE_LIMITED:
        retry_after = retry_after_from(message, None, None)
    if message is None and isinstance(decoded, str):
        title = _TITLE_RE.search(decoded)
        message = title.group(1) if title else decoded[:80].strip()
    return Classification(kind, table.rule(kind).action, kind in AMBIGUOUS_KINDS, status,
                          retry_after, (message or "")[:_MESSAGE_CHARS], name, None, None)
