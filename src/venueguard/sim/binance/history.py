"""The time window and page of the history routes, ``GET /fapi/v1/allOrders`` and
``GET /fapi/v1/userTrades``, as the venue reads their parameters.

- ``startTime`` and ``endTime`` (ms, inclusive) may span 7 days at most (-1127; -1023 when
  ``startTime`` is after ``endTime``). ``startTime`` alone covers the 7 days from it, ``endTime``
  alone the 7 days up to it.
- A window with a start answers its first ``limit`` rows: a client pages forward by asking again
  from the newest time (or id) it was given. Without a start the answer is the newest ``limit``
  rows (for ``endTime`` alone Binance does not say which end it answers: this is the
  simulator's reading), and with no parameter at all the window is the last 7 days.
- An id to page from (``fromId`` for trades, ``orderId`` for orders) answers the first ``limit``
  rows from that id on; it has no 7-day default.

Rows come back oldest first, as the venue sends them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from venueguard.numbers import ascii_digits
from venueguard.sim.binance import errors

__all__ = ["WEEK_MS", "Window", "id_param", "page", "window"]

WEEK_MS = 7 * 24 * 3_600_000
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Window:
    """Inclusive time bounds (None: open) and which end of the window a page is cut from."""

    since_ms: int | None
    until_ms: int | None
    newest: bool


def id_param(params: Mapping[str, str], name: str) -> int | None:
    """An optional id or time in ms: digits (-1100 otherwise); absent or empty is None."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not ascii_digits(raw, 20):
        raise errors.illegal_chars(name)
    return int(raw)


def window(params: Mapping[str, str], now_ms: int, *, anchored: bool) -> Window:
    """The window ``startTime``/``endTime`` name at ``now_ms``; ``anchored``: an id to page
    from was sent."""
    start, end = id_param(params, "startTime"), id_param(params, "endTime")
    if start is not None and end is not None:
        if start > end:
            raise errors.start_after_end()
        if end - start > WEEK_MS:
            raise errors.window_too_long(WEEK_MS // 3_600_000)
        return Window(start, end, newest=False)
    if start is not None:
        return Window(start, start + WEEK_MS, newest=False)
    if end is not None:
        return Window(end - WEEK_MS, end, newest=not anchored)
    if anchored:
        return Window(None, None, newest=False)
    return Window(now_ms - WEEK_MS, None, newest=True)


def page(rows: Sequence[T], limit: int, win: Window) -> list[T]:
    """``limit`` rows of the window, from its start or its newest end."""
    return list(rows[-limit:] if win.newest else rows[:limit])
