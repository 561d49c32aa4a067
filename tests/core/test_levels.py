"""Sanity of the top levels of a price-level book image (core/levels.py)."""

from __future__ import annotations

import math

import pytest

from venueguard.core.levels import BAD_LEVEL, CROSSED, UNSORTED, check_levels

BIDS = [[100.0, 1.0], [99.5, 2.0], [99.0, 3.0]]
ASKS = [[100.5, 1.0], [101.0, 2.0], [101.5, 3.0]]


def test_a_sound_book_passes() -> None:
    assert check_levels(BIDS, ASKS) is None
    assert check_levels([], []) is None and check_levels(BIDS, []) is None


@pytest.mark.parametrize(("bids", "asks", "reason"), [
    ([[100.5, 1.0]], [[100.5, 1.0]], CROSSED),             # touching is crossed too
    ([[101.0, 1.0]], [[100.5, 1.0]], CROSSED),
    ([[99.0, 1.0], [100.0, 1.0]], ASKS, UNSORTED),          # bids must fall
    (BIDS, [[101.0, 1.0], [100.5, 1.0]], UNSORTED),          # asks must rise
    (BIDS, [[100.5, 1.0], [100.5, 2.0]], UNSORTED),          # a price twice
    ([[100.0, 0.0]], ASKS, BAD_LEVEL),                      # empty level
    ([[100.0, -1.0]], ASKS, BAD_LEVEL),
    ([[math.nan, 1.0]], ASKS, BAD_LEVEL),
    ([[math.inf, 1.0]], ASKS, BAD_LEVEL),
    ([["100", 1.0]], ASKS, BAD_LEVEL),                      # not a number
    ([[100.0]], ASKS, BAD_LEVEL),                           # no size
])
def test_bad_books_are_named(bids: list[list[object]], asks: list[list[object]],
                             reason: str) -> None:
    assert check_levels(bids, asks) == reason


def test_only_the_top_levels_are_read() -> None:
    deep_junk = [*BIDS, [200.0, 1.0]]  # unsorted below the checked depth
    assert check_levels(deep_junk, ASKS, depth=3) is None
    assert check_levels(deep_junk, ASKS, depth=4) == UNSORTED
