"""Reading request fields as BitMEX does: values may come as JSON numbers or as form strings.

Each reader returns the parsed value, None when the field is absent (or JSON null), and raises
:class:`SimError` with BitMEX's text when the value is malformed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from venueguard import numbers
from venueguard.sim.model import SimError

__all__ = ["read_bool", "read_float", "read_int", "read_str", "read_str_list"]


def _bad(message: str) -> SimError:
    return SimError(400, message, "HTTPError")


def read_str(params: Mapping[str, object], key: str, error: str) -> str | None:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(error)
    return value


def read_float(params: Mapping[str, object], key: str, error: str) -> float | None:
    value = params.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise _bad(error)
    if isinstance(value, int | float):
        try:
            number = float(value)
        except OverflowError:  # an integer of more than 308 digits
            raise _bad(error) from None
    elif isinstance(value, str):
        try:  # ASCII digits only (venueguard.numbers): float() would take non-ASCII digits or '1_0'
            number = numbers.read_float(value)
        except numbers.NumberError:
            raise _bad(error) from None
    else:
        raise _bad(error)
    if number != number or number in (float("inf"), float("-inf")):
        raise _bad(error)
    return number


def read_int(params: Mapping[str, object], key: str, error: str) -> int | None:
    """A whole number; ``"2"``, ``2`` and ``2.0`` are accepted, ``2.5`` is not."""
    number = read_float(params, key, error)
    if number is None:
        return None
    if number != int(number) or abs(number) > 1e15:
        raise _bad(error)
    return int(number)


def read_bool(params: Mapping[str, object], key: str, error: str) -> bool | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _bad(error)


def read_str_list(value: object, error: str) -> list[str]:
    """A string, a JSON array given as a string, or a list of strings (bulk ids)."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except (ValueError, RecursionError):
                raise _bad(error) from None
        else:
            return [text] if text else []
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        out: list[str] = []
        for item in value:
            if not isinstance(item, str):
                raise _bad(error)
            out.append(item)
        return out
    raise _bad(error)
