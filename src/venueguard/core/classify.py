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
patterns (BitMEX ``{"error": {"message", "name"}}`` or websocket ``{"status", "error"}``, and
per-row ``"error"`` fields of a 200 list) -> HTTP status table -> status class (2xx ok, other 4xx
bad_request, other 5xx server_error) -> unknown.

Bodies are read at most ``MAX_BODY_CHARS`` deep, so hostile sizes cost nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from venueguard.core.kinds import AMBIGUOUS_KINDS, Action, AlertTier, Kind, Transport
from venueguard.core.rules import Rule, RuleSet, default_rules

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

MAX_BODY_CHARS = 65_536
_MESSAGE_CHARS = 300
_CACHE_MAX = 4096
_RETRYABLE = frozenset({Action.RETRY, Action.BACKOFF, Action.WAIT_RETRY_AFTER, Action.RETRY_ONCE})
_CLOUDFLARE_RE = re.compile(r"error(?:\s+code)?\s*:?\s*(\d{3,4})\b", re.IGNORECASE)
_RETRY_IN_RE = re.compile(r"retry in (\d+(?:\.\d+)?) seconds?", re.IGNORECASE)
_TITLE_RE = re.compile(r"<title>\s*([^<]{0,200}?)\s*</title>", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one request (or one websocket error frame).

    status: HTTP status, or the ``status`` of a websocket error frame; None when no response.
    headers: response headers (any case; a case-insensitive mapping is fine).
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


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The ``x-ratelimit-*`` headers of a response (None where absent or unreadable)."""

    limit: int | None = None
    remaining: int | None = None
    reset_epoch_s: float | None = None
    remaining_1s: int | None = None


@dataclass(frozen=True, slots=True)
class Classification:
    """The verdict on one outcome. ``action`` is the rule table's default for ``kind``."""

    kind: Kind
    action: Action
    ambiguous: bool  # the request may have been processed by the venue
    status: int | None = None
    retry_after_s: float | None = None  # from Retry-After, meta.retryAfter, the text, or reset
    message: str = ""  # the venue's error text (or a page title), truncated
    error_name: str | None = None  # BitMEX error.name
    cloudflare_code: int | None = None
    rate_limit: RateLimit | None = None

    @property
    def retryable(self) -> bool:
        """True when the default action resends the request (subject to budget and backoff)."""
        return self.action in _RETRYABLE

    def rule(self, rules: RuleSet | None = None) -> Rule:
        """The full rule (cooldown, alert, retry limits) behind this verdict."""
        return (rules or default_rules()).rule(self.kind)


def _as_float(raw: object) -> float | None:
    try:
        return float(str(raw).strip())
    except ValueError:
        return None


def _as_int(raw: object) -> int | None:
    value = _as_float(raw)
    return None if value is None else int(value)


def _read_headers(
    headers: Mapping[str, str], wall_ms: int | None
) -> tuple[RateLimit | None, float | None]:
    limit = remaining = remaining_1s = None
    reset_s: float | None = None
    retry_after: float | None = None
    for key, value in headers.items():
        low = key.lower()
        if low == "retry-after":
            retry_after = _as_float(value)
            if retry_after is None and wall_ms is not None:
                try:
                    retry_after = parsedate_to_datetime(str(value)).timestamp() - wall_ms / 1000
                except (TypeError, ValueError, IndexError):
                    retry_after = None
        elif not low.startswith("x-ratelimit-"):
            continue
        elif low == "x-ratelimit-limit":
            limit = _as_int(value)
        elif low == "x-ratelimit-remaining":
            remaining = _as_int(value)
        elif low == "x-ratelimit-reset":
            reset_s = _as_float(value)
        elif low == "x-ratelimit-remaining-1s":
            remaining_1s = _as_int(value)
    if limit is None and remaining is None and reset_s is None and remaining_1s is None:
        return None, retry_after
    return RateLimit(limit, remaining, reset_s, remaining_1s), retry_after


def _decode(body: object) -> object:
    """Bytes/str -> decoded JSON when it looks like JSON, else the text (truncated)."""
    if isinstance(body, bytes | bytearray | memoryview):
        body = bytes(body[:MAX_BODY_CHARS]).decode("utf-8", "replace")
    if isinstance(body, str):
        text = body[:MAX_BODY_CHARS]
        head = text.lstrip()[:1]
        if head in ("{", "[") and len(body) <= MAX_BODY_CHARS:
            try:
                return json.loads(text)
            except (ValueError, RecursionError):
                return text
        return text
    return body


def _error_of(body: object) -> tuple[str | None, str | None, float | None]:
    """(message, name, meta.retryAfter) from a BitMEX JSON error, a WS frame or a row list."""
    if isinstance(body, Mapping):
        err = body.get("error")
        if isinstance(err, Mapping):
            message = err.get("message")
            name = err.get("name")
            return (str(message) if message is not None else "",
                    name if isinstance(name, str) else None, None)
        if isinstance(err, str):  # websocket error frame / cancel row
            meta = body.get("meta")
            after = _as_float(meta.get("retryAfter")) if isinstance(meta, Mapping) else None
            return err, None, after
        return None, None, None
    if isinstance(body, Sequence) and not isinstance(body, str):
        for row in body[:1000]:
            if isinstance(row, Mapping) and isinstance(row.get("error"), str):
                return row["error"], None, None
    return None, None, None


def _match(rules: RuleSet, message: str, name: str | None, status: int | None) -> Kind | None:
    key = (status, name, message)
    memo = rules.memo
    found = memo.get(key)
    if found is not None:
        return None if found is Kind.UNKNOWN else found
    low = message.lower()
    kind = Kind.UNKNOWN
    for pattern in rules.patterns:
        if pattern.matches(low, name, status):
            kind = pattern.kind
            break
    if len(memo) >= _CACHE_MAX:
        memo.clear()
    memo[key] = kind
    return None if kind is Kind.UNKNOWN else kind


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


def _verdict(
    rules: RuleSet,
    kind: Kind,
    outcome: Outcome,
    *,
    retry_after_s: float | None = None,
    message: str = "",
    name: str | None = None,
    cloudflare: int | None = None,
    rate_limit: RateLimit | None = None,
) -> Classification:
    rule = rules.rule(kind)
    return Classification(
        kind=kind,
        action=rule.action,
        ambiguous=kind in AMBIGUOUS_KINDS,
        status=outcome.status,
        retry_after_s=retry_after_s,
        message=message[:_MESSAGE_CHARS],
        error_name=name,
        cloudflare_code=cloudflare,
        rate_limit=rate_limit,
    )


def classify(outcome: Outcome, rules: RuleSet | None = None) -> Classification:
    """Classify one outcome with ``rules`` (default: the packaged table). Pure; never raises."""
    table = rules or default_rules()
    if outcome.transport is not None and outcome.status is None:
        failed = table.transport_kinds.get(outcome.transport, Kind.TRANSIENT_NETWORK)
        if failed in AMBIGUOUS_KINDS and outcome.sent is False:
            failed = Kind.TRANSIENT_NETWORK  # nothing was written, so nothing was processed
        return _verdict(table, failed, outcome, message=outcome.transport.value)

    status = outcome.status
    rate_limit, retry_after = (
        _read_headers(outcome.headers, outcome.wall_ms) if outcome.headers else (None, None)
    )
    body = _decode(outcome.body)
    message, name, meta_after = _error_of(body)
    if retry_after is None:
        retry_after = meta_after

    if message is None and isinstance(body, str) and body and (status is None or status >= 400):
        found = _CLOUDFLARE_RE.search(body)
        if found is not None:
            code = int(found.group(1))
            cf_kind = table.cloudflare_kinds.get(code)
            if cf_kind is not None:
                title = _TITLE_RE.search(body)
                text = title.group(1) if title else found.group(0)
                return _verdict(table, cf_kind, outcome, retry_after_s=retry_after,
                                message=text, cloudflare=code, rate_limit=rate_limit)

    matched = _match(table, message, name, status) if message is not None else None
    kind = matched if matched is not None else _by_status(table, status)
    if kind is Kind.OK and message is not None and status is not None and status >= 300:
        kind = Kind.UNKNOWN
    if kind is Kind.RATE_LIMITED and retry_after is None:
        retry_after = _retry_after_fallback(message, rate_limit, outcome.wall_ms)
    if message is None and isinstance(body, str):
        title = _TITLE_RE.search(body)
        message = title.group(1) if title else body[:80].strip()
    return _verdict(table, kind, outcome, retry_after_s=retry_after, message=message or "",
                    name=name, rate_limit=rate_limit)


def _retry_after_fallback(
    message: str | None, rate_limit: RateLimit | None, wall_ms: int | None
) -> float | None:
    if message:
        found = _RETRY_IN_RE.search(message)
        if found is not None:
            return float(found.group(1))
    if rate_limit is not None and rate_limit.reset_epoch_s is not None and wall_ms is not None:
        return max(0.0, rate_limit.reset_epoch_s - wall_ms / 1000)
    return None
