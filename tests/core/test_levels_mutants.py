"""Edges of the book-image sanity check: the bounds of a level and the default depth."""

from __future__ import annotations

import math

from venueguard.core.levels import BAD_LEVEL, UNSORTED, check_levels

ASKS = [[100.5, 1.0]]


def test_a_price_below_one_is_still_a_price() -> None:
    assert check_levels([[0.5, 1.0]], [[0.6, 1.0]]) is None


def test_a_zero_price_is_a_bad_level() -> None:
    assert check_levels([[0.0, 1.0]], ASKS) == BAD_LEVEL
    assert check_levels([[0, 1]], ASKS) == BAD_LEVEL


def test_an_infinite_size_is_a_bad_level() -> None:
    assert check_levels([[100.0, math.inf]], ASKS) == BAD_LEVEL


def test_a_bool_price_is_not_a_number_even_with_a_numeric_size() -> None:
    assert check_levels([[True, 1.0]], ASKS) == BAD_LEVEL
    assert check_levels([[100.0, True]], ASKS) == BAD_LEVEL


def test_two_bids_at_one_price_are_unsorted() -> None:
    assert check_levels([[100.0, 1.0], [100.0, 2.0]], ASKS) == UNSORTED


def test_the_default_depth_is_five_levels_on_each_side() -> None:
    bids = [[100.0 - i, 1.0] for i in range(5)]
    asks = [[101.0 + i, 1.0] for i in range(5)]
    assert check_levels([*bids, [0.0, 1.0]], asks) is None      # the sixth bid is not read
    assert check_levels(bids, [*asks, [0.0, 1.0]]) is None      # nor the sixth ask
    assert check_levels([*bids[:4], [0.0, 1.0]], asks) == BAD_LEVEL
    assert check_levels(bids, [*asks[:4], [0.0, 1.0]]) == BAD_LEVEL
    assert check_levels(bids, asks, depth=6) is None
    assert check_levels(bids, [*asks, [0.0, 1.0]], depth=6) == BAD_LEVEL
