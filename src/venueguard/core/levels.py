"""Sanity of a price-level book image (``[[price, size, ...], ...]`` per side), top levels only.

Public API::

    check_levels(bids, asks, depth=5) -> str | None     # None: fine; else the reason

A book handed to a consumer must not be crossed (best bid >= best ask), must be sorted (bids
descending, asks ascending) and must hold finite positive prices and sizes. Only the first
``depth`` levels of each side are read, so the check costs the same whatever the book's size.
Reasons: ``crossed``, ``unsorted``, ``bad_level``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["BAD_LEVEL", "CROSSED", "UNSORTED", "check_levels"]

CROSSED = "crossed"
UNSORTED = "unsorted"
BAD_LEVEL = "bad_level"
_NUMBERS = (int, float)


def _side(levels: Sequence[Sequence[object]], depth: int, descending: bool) -> str | None:
    previous: float | None = None
    for level in levels[:depth]:
        price, size = level[0], level[1]
        if (type(price) not in _NUMBERS or type(size) not in _NUMBERS
                or not (0 < price < math.inf) or not (0 < size < math.inf)):  # type: ignore[operator]
            return BAD_LEVEL
        if previous is not None and (price >= previous if descending  # type: ignore[operator]
                                     else price <= previous):  # type: ignore[operator]
            return UNSORTED
        previous = price  # type: ignore[assignment]
    return None


def check_levels(bids: Sequence[Sequence[object]], asks: Sequence[Sequence[object]],
                 depth: int = 5) -> str | None:
    """Why the top ``depth`` levels of this book are unusable, or None when they are fine."""
    try:
        reason = _side(bids, depth, True) or _side(asks, depth, False)
    except (IndexError, TypeError):
        return BAD_LEVEL
    if reason is not None:
        return reason
    if bids and asks and bids[0][0] >= asks[0][0]:  # type: ignore[operator]
        return CROSSED
    return None
