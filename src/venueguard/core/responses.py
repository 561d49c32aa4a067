"""Reading an HTTP response for classification: headers, bodies, error texts.

Used by :mod:`venueguard.core.classify`; pure and bounded. Public API::

    RateLimit(limit, remaining, reset_epoch_s, remaining_1s)     # x-ratelimit-* headers
    read_headers(headers, wall_ms) -> (RateLimit | None, retry_after_s | None)
    decode_body(body) -> object          # bytes/str -> decoded JSON when it looks like JSON
    error_of(body) -> (message, name, meta_retry_after_s)
    retry_after_from(message, rate_limit, wall_ms) -> float | None
    MAX_BODY_CHARS                        # bodies are read at most this deep
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import NamedTuple

import orjson

__all__ = [
    "MAX_BODY_CHARS",
    "RateLimit",
    "decode_body",
    "error_of",
    "read_headers",
    "retry_after_from",
]

MAX_BODY_CHARS = 65_536
_new_tuple = tuple.__new__
_RETRY_IN_RE = re.compile(r"retry in (\d+(?:\.\d+)?) seconds?", re.IGNORECASE)


# A NamedTuple, as Classification: one is built per response carrying x-ratelimit-* headers.
class RateLimit(NamedTuple):
    """The ``x-ratelimit-*`` headers of a response (None where absent or unreadable)."""

    limit: int | None = None
    remaining: int | None = None
    reset_epoch_s: float | None = None
    remaining_1s: int | None = None


def _as_float(raw: object) -> float | None:
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _as_int(raw: object) -> int | None:
    try:
        return int(raw)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError):
        value = _as_float(raw)
        return None if value is None else int(value)


def read_headers(
    headers: Mapping[str, str], wall_ms: int | None
) -> tuple[RateLimit | None, float | None]:
    """(x-ratelimit-* values, Retry-After in seconds) from response headers.

    Names are tried lower-case, then as ``X-RateLimit-*`` / ``X-Ratelimit-*`` / ``Retry-After``;
    a case-insensitive mapping finds any spelling at the first try. An HTTP-date Retry-After
    needs ``wall_ms``. Unreadable values become None.
    """
    get = headers.get
    retry_after: float | None = None
    raw = get("retry-after") or get("Retry-After")
    if raw is not None:
        retry_after = _as_float(raw)
        if retry_after is None and wall_ms is not None:
            try:
                retry_after = parsedate_to_datetime(str(raw)).timestamp() - wall_ms / 1000
            except (TypeError, ValueError, IndexError, OverflowError):
                retry_after = None
        if retry_after is not None:
            retry_after = max(0.0, retry_after)  # a date in the past means "now"
    remaining = (get("x-ratelimit-remaining") or get("X-RateLimit-Remaining")
                 or get("X-Ratelimit-Remaining"))
    limit = get("x-ratelimit-limit") or get("X-RateLimit-Limit") or get("X-Ratelimit-Limit")
    reset = get("x-ratelimit-reset") or get("X-RateLimit-Reset") or get("X-Ratelimit-Reset")
    remaining_1s = (get("x-ratelimit-remaining-1s") or get("X-RateLimit-Remaining-1s")
                    or get("X-Ratelimit-Remaining-1s"))
    if remaining is None and limit is None and reset is None and remaining_1s is None:
        return None, retry_after
    return _new_tuple(RateLimit, (  # RateLimit(...) without the generated __new__'s overhead
        None if limit is None else _as_int(limit),
        None if remaining is None else _as_int(remaining),
        None if reset is None else _as_float(reset),
        None if remaining_1s is None else _as_int(remaining_1s),
    )), retry_after


def decode_body(body: object) -> object:
    """Bytes/str -> decoded JSON when it looks like JSON, else the text (truncated).

    Bytes are read as UTF-8 (a bad byte becomes U+FFFD). A body longer than
    :data:`MAX_BODY_CHARS` is never read as JSON, whether it came as bytes or as text: its
    first ``MAX_BODY_CHARS`` characters are returned.
    """
    if isinstance(body, bytes | bytearray | memoryview):
        whole = len(body) <= MAX_BODY_CHARS
        text = bytes(body[:MAX_BODY_CHARS]).decode("utf-8", "replace")
    elif isinstance(body, str):
        whole = len(body) <= MAX_BODY_CHARS
        text = body[:MAX_BODY_CHARS]
    else:
        return body
    if whole and text.lstrip()[:1] in ("{", "["):
        try:
            return orjson.loads(text)
        except (orjson.JSONDecodeError, RecursionError):
            pass
    return text


def error_of(body: object) -> tuple[str | None, str | None, float | None]:
    """(message, name, meta.retryAfter) from a JSON error body, a WS frame or a row list."""
    cls = body.__class__
    if cls is dict or (cls is not list and isinstance(body, Mapping)):
        err = body.get("error")  # type: ignore[attr-defined]
        if err is None:
            return None, None, None
        if isinstance(err, Mapping):
            message = err.get("message")
            name = err.get("name")
            return (str(message) if message is not None else "",
                    name if isinstance(name, str) else None, None)
        if isinstance(err, str):  # websocket error frame / cancel row
            meta = body.get("meta")  # type: ignore[attr-defined]
            after = _as_float(meta.get("retryAfter")) if isinstance(meta, Mapping) else None
            return err, None, None if after is None else max(0.0, after)
        return None, None, None
    if cls is list or (isinstance(body, Sequence) and not isinstance(body, str | bytes)):
        for row in body[:1000]:  # type: ignore[index]
            if row.__class__ is dict or isinstance(row, Mapping):
                err = row.get("error")
                if isinstance(err, str):
                    return err, None, None
    return None, None, None


def retry_after_from(
    message: str | None, rate_limit: RateLimit | None, wall_ms: int | None
) -> float | None:
    if message:
        found = _RETRY_IN_RE.search(message)
        if found is not None:
            return float(found.group(1))
    if rate_limit is not None and rate_limit.reset_epoch_s is not None and wall_ms is not None:
        return max(0.0, rate_limit.reset_epoch_s - wall_ms / 1000)
    return None
