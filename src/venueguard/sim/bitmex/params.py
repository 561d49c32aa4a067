"""Decoding and reading REST request parameters as BitMEX accepts them.

Parameters come from the query string and from the body, which may be JSON or
``application/x-www-form-urlencoded``; body fields win over query fields. Readers raise
:class:`SimError` (HTTP 400, BitMEX's texts) on malformed values, never anything else.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from venueguard import numbers
from venueguard.sim.model import SimError
from venueguard.venues.bitmex import errors

__all__ = [
    "bad", "decode", "loads", "opt_bool", "opt_filter", "opt_int", "opt_str", "opt_time_ms",
    "required", "str_list",
]


def bad(message: str) -> SimError:
    """A 400 ``HTTPError`` with ``message``."""
    return SimError(400, message, errors.NAME_HTTP)


def loads(text: str, error: str) -> object:
    """``json.loads`` whose every failure (bad syntax, nesting deeper than the parser's
    recursion limit, an integer beyond Python's digit limit) is a 400 with ``error``."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise bad(error) from None


def decode(query: Mapping[str, str], body: bytes, content_type: str) -> dict[str, Any]:
    """Merge query-string and body parameters into one dict."""
    out: dict[str, Any] = {str(k): v for k, v in query.items()}
    if not body:
        return out
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise bad("Invalid request body: not UTF-8") from None
    stripped = text.strip()
    if "json" in content_type or stripped.startswith(("{", "[")):
        decoded = loads(stripped, "Invalid JSON in request body") if stripped else {}
        if not isinstance(decoded, dict):
            raise bad("Invalid request body: expected a JSON object")
        out.update({str(k): v for k, v in decoded.items()})
        return out
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False)
    except ValueError:
        raise bad("Invalid request body") from None
    out.update(dict(pairs))
    return out


def required(prm: Mapping[str, Any], key: str) -> Any:
    """The value of ``key``; ``'key' is a required arg.`` when absent or empty."""
    value = prm.get(key)
    if value is None or value == "":
        raise bad(errors.required_arg_text(key))
    return value


def opt_str(prm: Mapping[str, Any], key: str) -> str | None:
    value = prm.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad(f"Invalid {key}")
    return value


def opt_int(
    prm: Mapping[str, Any], key: str, default: int, *, low: int | None = None,
    high: int | None = None,
) -> int:
    """A whole number (JSON number or numeric string), ``default`` when absent."""
    value = prm.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise bad(f"Invalid {key}")
    try:  # ASCII only (venueguard.numbers): float() takes non-ASCII digits, ' 5', '1_0'
        number = numbers.read_float(value) if isinstance(value, str) else value
    except (numbers.NumberError, OverflowError):
        raise bad(f"Invalid {key}") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise bad(f"Invalid {key}")  # inf, 1e999, nan
    if not isinstance(number, int | float) or number != int(number) or abs(number) > 10**15:
        raise bad(f"Invalid {key}")
    result = int(number)
    if (low is not None and result < low) or (high is not None and result > high):
        raise bad(f"Invalid {key}")
    return result


def opt_bool(prm: Mapping[str, Any], key: str, default: bool = False) -> bool:
    value = prm.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise bad(f"Invalid {key}")


def opt_time_ms(prm: Mapping[str, Any], key: str) -> int | None:
    """A time as BitMEX reads ``startTime``/``endTime`` (ISO 8601, UTC when no zone is given),
    in epoch milliseconds; None when absent."""
    value = prm.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise bad(f"Invalid {key}")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise bad(f"Invalid {key}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return round(when.timestamp() * 1000)


def opt_filter(prm: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``filter`` parameter: a JSON object, given as a string or already decoded."""
    value = prm.get("filter")
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = loads(value, "Invalid filter")
    if not isinstance(value, dict):
        raise bad("Invalid filter")
    return {str(k): v for k, v in value.items()}


def str_list(prm: Mapping[str, Any], key: str) -> list[str]:
    """A string, a JSON array (as a string or decoded) of strings, or nothing (``[]``)."""
    value = prm.get(key)
    if value is None or value == "":
        return []
    if isinstance(value, str):
        text = value.strip()
        if not text.startswith("["):
            return [text]
        value = loads(text, f"Invalid {key}")
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise bad(f"Invalid {key}")
