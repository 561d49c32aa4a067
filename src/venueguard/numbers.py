"""Numbers read from text: command-line options, config values, request parameters.

One grammar everywhere. Python's own readers are too lenient for input that crosses a trust
boundary: ``str.isdigit()`` is true for ``²`` and ``⑤`` (which ``int()`` then refuses), ``int()``
and ``float()`` take Arabic-Indic or full-width digits, ``1_000``, surrounding whitespace, and
``float()`` takes ``nan`` and ``inf``. Here a number is ASCII only::

    whole number   [+-]?[0-9]+
    number         [+-]?([0-9]+(.[0-9]*)?|.[0-9]+)([eE][+-]?[0-9]+)?

and it must be finite and inside the caller's range, which the refusal states
(``must be a whole number from 1 to 65535, not '70000'``). Every reader raises
:class:`NumberError` (a ``ValueError``); :func:`int_arg` and :func:`float_arg` make argparse
``type`` callables that raise ``argparse.ArgumentTypeError`` with the same text.
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["FloatArg", "IntArg", "NumberError", "ascii_digits", "describe", "float_arg", "int_arg",
           "read_float", "read_int", "url_port"]

MAX_DIGITS = 30  # longer texts are refused before any conversion (no huge-integer work)
_INT = re.compile(rf"[+-]?[0-9]{{1,{MAX_DIGITS}}}", re.ASCII)
_FLOAT = re.compile(rf"[+-]?(?:[0-9]{{1,{MAX_DIGITS}}}(?:\.[0-9]{{0,{MAX_DIGITS}}})?"
                    rf"|\.[0-9]{{1,{MAX_DIGITS}}})(?:[eE][+-]?[0-9]{{1,4}})?", re.ASCII)
_DIGITS = re.compile(r"[0-9]+", re.ASCII)


class NumberError(ValueError):
    """A refused number; ``str()`` says what was expected (with the range) and what came."""


def ascii_digits(text: str, max_len: int = 20) -> bool:
    """True when ``text`` is 1..``max_len`` ASCII digits (what ``str.isdigit`` should mean for
    an id or a timestamp)."""
    return 0 < len(text) <= max_len and _DIGITS.fullmatch(text) is not None


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e16 else repr(value)


def describe(kind: str, low: float | None, high: float | None, *,
             above: float | None = None) -> str:
    """``a whole number from 1 to 10``, ``a number greater than 0 and at most 10000``, ..."""
    parts: list[str] = []
    if above is not None:
        parts.append(f"greater than {_fmt(above)}")
    if low is not None and high is not None and above is None:
        return f"{kind} from {_fmt(low)} to {_fmt(high)}"
    if low is not None:
        parts.append(f"at least {_fmt(low)}")
    if high is not None:
        parts.append(f"at most {_fmt(high)}")
    if not parts:
        return kind
    return f"{kind} {'of ' if parts[0].startswith('at ') else ''}{' and '.join(parts)}"


def read_int(text: str, *, low: int | None = None, high: int | None = None) -> int:
    """A whole number in ASCII digits (optional sign) within ``low..high`` (inclusive)."""
    what = describe("a whole number", low, high)
    if not isinstance(text, str) or _INT.fullmatch(text) is None:
        raise NumberError(f"must be {what}, not {_shown(text)}")
    value = int(text)
    if (low is not None and value < low) or (high is not None and value > high):
        raise NumberError(f"must be {what}, not {_shown(text)}")
    return value


def read_float(text: str, *, low: float | None = None, high: float | None = None,
               above: float | None = None) -> float:
    """A finite number in ASCII (sign, decimals and exponent allowed) within the range:
    ``low``/``high`` inclusive, ``above`` exclusive."""
    what = describe("a number", low, high, above=above)
    if not isinstance(text, str) or _FLOAT.fullmatch(text) is None:
        raise NumberError(f"must be {what}, not {_shown(text)}")
    value = float(text)
    if not math.isfinite(value) or (low is not None and value < low) \
            or (high is not None and value > high) or (above is not None and value <= above):
        raise NumberError(f"must be {what}, not {_shown(text)}")
    return value


def url_port(url: str) -> int | None:
    """The port written in ``url`` (None when it names none), a whole number from 1 to 65535.

    ``urllib``'s ``.port`` takes ``0`` and refuses in its own words; here a port is read as every
    other number (``--sim-url http://127.0.0.1:²`` is refused saying what a port must be).
    """
    host = urlsplit(url).netloc.rpartition("@")[2]
    if host.startswith("["):  # [v6]:port
        rest = host.partition("]")[2]
        text = rest[1:] if rest.startswith(":") else rest
    else:
        text = host.partition(":")[2]
    if text == "":
        return None
    if not ascii_digits(text, 5) or not 1 <= int(text) <= 65535:  # no sign either
        raise NumberError(f"port must be {describe('a whole number', 1, 65535)}, "
                          f"not {_shown(text)}")
    return int(text)


def _shown(text: object) -> str:
    shown = repr(text)
    return shown if len(shown) <= 40 else shown[:37] + "..."


@dataclass(frozen=True, slots=True)
class IntArg:
    """An argparse ``type``: a whole number within ``low..high`` (see :func:`read_int`)."""

    low: int | None = None
    high: int | None = None

    @property
    def __name__(self) -> str:  # argparse names the type in some of its messages
        return "whole number"

    def __call__(self, text: str) -> int:
        try:
            return read_int(text, low=self.low, high=self.high)
        except NumberError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class FloatArg:
    """An argparse ``type``: a finite number within the range (see :func:`read_float`)."""

    low: float | None = None
    high: float | None = None
    above: float | None = None

    @property
    def __name__(self) -> str:
        return "number"

    def __call__(self, text: str) -> float:
        try:
            return read_float(text, low=self.low, high=self.high, above=self.above)
        except NumberError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None


def int_arg(low: int | None = None, high: int | None = None) -> IntArg:
    """An argparse ``type`` for a whole number within ``low..high``."""
    return IntArg(low, high)


def float_arg(low: float | None = None, high: float | None = None, *,
              above: float | None = None) -> FloatArg:
    """An argparse ``type`` for a finite number within the range (see :func:`read_float`)."""
    return FloatArg(low, high, above)
