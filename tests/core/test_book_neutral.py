"""The venue-neutral book: snapshots and level changes (side, price, size; size 0 deletes)."""

from __future__ import annotations

import math

import pytest

from venueguard.core.book import (
    APPLIED,
    DROPPED,
    DUPLICATE_PRICE,
    INVALID_PRICE,
    INVALID_SIZE,
    MALFORMED_ROW,
    OFF_LOT,
    OFF_TICK,
    ApplyStatus,
    BookConfig,
    OrderBook,
    size_problem,
)

FRACTIONAL = BookConfig(max_age_s=5.0, tick=0.1, lot=0.001, whole_sizes=False)


def synced(config: BookConfig = FRACTIONAL) -> OrderBook:
    book = OrderBook("BTCUSDT", config)
    assert book.apply_snapshot([(100.0, 1.5), (99.9, 2.0)], [(100.1, 0.25), (100.3, 4.0)],
                               now=1.0, timestamp=1_000) is APPLIED
    return book


def test_changes_before_a_snapshot_are_dropped_and_counted() -> None:
    book = OrderBook("BTCUSDT", FRACTIONAL)
    assert book.apply_changes([(100.0, 1.0)], [(100.1, 1.0), (100.2, 0.0)], now=0.5) is DROPPED
    assert book.dropped_rows == 3 and not book.valid and len(book) == 0


def test_a_snapshot_sorts_both_sides_and_counts_one_top_change() -> None:
    book = synced()
    assert book.depth() == ([(100.0, 1.5), (99.9, 2.0)], [(100.1, 0.25), (100.3, 4.0)])
    assert (book.top_changes, book.top_price_changes, book.last_row_timestamp) == (1, 1, 1_000)
    assert book.is_fresh(6.0) and not book.is_fresh(6.5)


def test_changes_set_create_and_delete_levels_in_order() -> None:
    book = synced()
    result = book.apply_changes([(100.0, 0.5), (99.8, 3.0), (99.9, 0)],
                                [(100.1, 0.0), (100.2, 1.0), (100.2, 1.25), (105.0, 0.0)],
                                now=2.0, timestamp=2_000)
    assert result is APPLIED
    assert book.depth() == ([(100.0, 0.5), (99.8, 3.0)], [(100.2, 1.25), (100.3, 4.0)])
    assert (book.messages_applied, book.rows_applied, book.last_update_now) == (2, 7, 2.0)
    assert book.last_row_timestamp == 2_000
    assert (book.top_changes, book.top_price_changes) == (2, 2)  # the best ask moved
    assert book.apply_changes([(100.0, 0.75)], [], now=3.0) is APPLIED
    assert (book.top_changes, book.top_price_changes) == (3, 2)  # the best bid's size only
    assert book.apply_changes([(99.8, 1.0)], [], now=4.0) is APPLIED
    assert (book.top_changes, book.top_price_changes) == (3, 2)  # below the top
    assert book.last_row_timestamp == 2_000  # no time given: the last one stays


@pytest.mark.parametrize(("bids", "reason"), [
    ([(100.05, 1.0)], OFF_TICK),
    ([(100.0, 0.0005)], OFF_LOT),
    ([(-1.0, 1.0)], INVALID_PRICE),
    ([(math.nan, 1.0)], INVALID_PRICE),
    ([(math.inf, 1.0)], INVALID_PRICE),
    ([(math.nan, 0.0)], INVALID_PRICE),  # even a delete names a real price
    ([(100.0, -1.0)], INVALID_SIZE),
    ([(100.0, math.nan)], INVALID_SIZE),
    ([(100.0, math.inf)], INVALID_SIZE),
    ([(100.0, "1")], INVALID_SIZE),
    ([(100.0, False)], INVALID_SIZE),
    ([("100", 1.0)], INVALID_PRICE),
    ([(100.0, 1.0), (99.0,)], MALFORMED_ROW),
    ([(100.0, 1.0), None], MALFORMED_ROW),
])
def test_an_impossible_change_is_refused_whole_and_invalidates(
        bids: list[tuple[object, ...]], reason: str) -> None:
    book = synced()
    result = book.apply_changes([(99.9, 7.0), *bids], [(100.1, 9.0)], now=2.0)  # type: ignore[list-item]
    assert result.status is ApplyStatus.RESYNC and result.reason == reason == book.resync_reason
    assert not book.valid and len(book) == 0 and book.best_bid() is None
    assert book.apply_changes([(99.9, 7.0)], [], now=3.0) is DROPPED


def test_a_snapshot_refuses_impossible_and_duplicate_levels() -> None:
    for bids, reason in (([(100.0, 1.0), (100.0, 2.0)], DUPLICATE_PRICE),
                         ([(100.0, 0.0)], INVALID_SIZE), ([(100.03, 1.0)], OFF_TICK),
                         ([(100.0,)], MALFORMED_ROW)):
        book = OrderBook("BTCUSDT", FRACTIONAL)
        result = book.apply_snapshot(bids, [], now=1.0)  # type: ignore[arg-type]
        assert result.reason == reason and not book.valid
    book = synced()
    assert book.apply_snapshot([(100.0, 1.0)], [(101.0, 1.0)], now=2.0) is APPLIED
    assert book.depth() == ([(100.0, 1.0)], [(101.0, 1.0)]) and book.valid


def test_whole_sizes_refuse_fractions_and_fractional_sizes_respect_the_lot() -> None:
    assert size_problem(2.0, None) == INVALID_SIZE
    assert size_problem(2, None) is None
    assert size_problem(0.003, 0.001, whole=False) is None
    assert size_problem(0.0035, 0.001, whole=False) == OFF_LOT
    assert size_problem(3, 0.001, whole=False) is None
    assert size_problem(10.0, None, 10, whole=False) is None
    assert size_problem(10.5, None, 10, whole=False) == INVALID_SIZE
    assert size_problem(True, None, whole=False) == INVALID_SIZE
    whole = OrderBook("XBTUSD", BookConfig())
    assert whole.apply_snapshot([(100.0, 5)], [], now=1.0) is APPLIED
    assert whole.apply_changes([(100.0, 2.5)], [], now=2.0).reason == INVALID_SIZE


def test_primitives_check_and_keep_sorted_sides() -> None:
    book = synced()
    assert book.add_level(True, 99.5, 1.0) is None
    assert book.add_level(True, 99.5, 1.0) == DUPLICATE_PRICE
    assert book.add_level(False, 100.15, 1.0) == OFF_TICK
    assert book.set_size(True, 99.5, 0.002) is None
    assert book.set_size(True, 99.5, 0.0) == INVALID_SIZE
    assert book.size_at(True, 99.5) == 0.002 and book.size_at(False, 99.5) is None
    book.remove_level(True, 100.0)
    assert [p for p, _ in book.depth()[0]] == [99.9, 99.5]
    with pytest.raises(KeyError):
        book.remove_level(False, 1.0)


# ---- what the mutation run of core/book.py asked for -------------------------------------------
def test_counters_accumulate_over_messages() -> None:
    book = OrderBook("BTCUSDT", FRACTIONAL)
    book.apply_changes([(100.0, 1.0)], [], now=0.1)
    book.apply_changes([(100.0, 1.0), (99.9, 1.0)], [], now=0.2)
    assert book.dropped_rows == 3
    book = synced()
    book.apply_changes([(99.9, 1.0)], [], now=2.0)
    book.apply_changes([(99.9, 2.0), (99.8, 1.0)], [(100.3, 1.0)], now=3.0)
    assert book.rows_applied == 4 and book.messages_applied == 3


def test_top_changes_look_at_the_best_levels_only() -> None:
    book = OrderBook("BTCUSDT", FRACTIONAL)
    book.apply_snapshot([(100.0, 1.0), (99.9, 1.0), (99.8, 1.0)],
                        [(100.1, 1.0), (100.2, 1.0), (100.3, 1.0)], now=1.0)
    tops = (book.top_changes, book.top_price_changes)
    assert book.apply_changes([(99.8, 5.0), (99.9, 0.0)], [(100.2, 5.0)], now=2.0) is APPLIED
    assert (book.top_changes, book.top_price_changes) == tops
    assert book.apply_changes([(100.0, 0.0), (99.8, 0.0)], [], now=3.0) is APPLIED  # no bids
    assert book.best_bid() is None and book.top_price_changes == tops[1] + 1
    assert book.apply_changes([], [(100.1, 0.0), (100.2, 0.0), (100.3, 0.0)], now=4.0) is APPLIED
    assert book.best_ask() is None and len(book) == 0 and book.valid


def test_fractional_sizes_without_a_tick_or_lot() -> None:
    book = OrderBook("X", BookConfig(whole_sizes=False))
    assert book.apply_snapshot([(10.5, 0.25)], [(11.0, 1.5)], now=1.0) is APPLIED
    assert book.apply_changes([(10.25, 0.125)], [(11.0, 2.75)], now=2.0) is APPLIED
    assert book.depth() == ([(10.5, 0.25), (10.25, 0.125)], [(11.0, 2.75)])


@pytest.mark.parametrize(("bids", "reason"), [
    ([(0.0, 1.0)], INVALID_PRICE),
    ([(0.1 * (1 - 1.5e-9), 1.0)], OFF_TICK),  # 1.5e-9 of a step off, below one step
    ([(100.0, 0.001 * (1 - 1.5e-9))], OFF_LOT),
])
def test_the_inline_check_refuses_what_the_full_checks_refuse(
        bids: list[tuple[float, float]], reason: str) -> None:
    assert synced().apply_changes(bids, [], now=2.0).reason == reason


def test_steps_are_checked_by_division_on_any_tick_and_lot() -> None:
    book = OrderBook("X", BookConfig(tick=0.3, lot=0.3, whole_sizes=False))
    assert book.apply_snapshot([(0.9, 0.6)], [(1.2, 0.3)], now=1.0) is APPLIED
    assert book.apply_changes([(10 / 3, 0.3)], [], now=2.0).reason == OFF_TICK  # 11.1 ticks
    assert book.apply_snapshot([(0.9, 0.6)], [(1.2, 0.3)], now=3.0) is APPLIED
    assert book.apply_changes([], [(1.5, 10 / 3)], now=4.0).reason == OFF_LOT
    assert book.apply_snapshot([(0.9, 0.6)], [(1.2, 0.3)], now=5.0) is APPLIED
    assert book.apply_changes([], [(1.5, 1.0)], now=6.0).reason == OFF_LOT


def test_configured_bounds_hold_for_values_of_any_number_type() -> None:
    config = BookConfig(max_price=1000.0, max_size=10, whole_sizes=False)
    for bids, reason in (([(2000, 1.0)], INVALID_PRICE), ([(100.0, 20)], INVALID_SIZE)):
        book = OrderBook("X", config)
        book.apply_snapshot([(100.0, 1.0)], [], now=1.0)
        assert book.apply_changes(bids, [], now=2.0).reason == reason


def test_a_whole_size_book_refuses_fractions_everywhere() -> None:
    book = OrderBook("XBTUSD", BookConfig())
    assert book.apply_snapshot([(100.0, 2.5)], [], now=1.0).reason == INVALID_SIZE
    book.apply_snapshot([(100.0, 2)], [(101.0, 3)], now=2.0)
    assert book.set_size(True, 100.0, 2.5) == INVALID_SIZE


def test_set_size_checks_the_lot_and_bounds_and_keeps_to_its_side() -> None:
    book = OrderBook("X", BookConfig(lot=0.001, max_size=10, whole_sizes=False))
    book.apply_snapshot([(100.0, 1.0)], [(101.0, 1.0)], now=1.0)
    assert book.set_size(False, 101.0, 0.0015) == OFF_LOT
    assert book.set_size(False, 101.0, 20.0) == INVALID_SIZE
    assert book.set_size(False, 101.0, 2.0) is None
    assert book.best_ask() == (101.0, 2.0) and book.best_bid() == (100.0, 1.0)
    loose = OrderBook("X", BookConfig(max_size=10, whole_sizes=False))  # no lot
    loose.apply_snapshot([(100.0, 1.0)], [], now=1.0)
    assert loose.set_size(True, 100.0, 0.5) is None and loose.best_bid() == (100.0, 0.5)


def test_the_best_bid_is_the_highest_of_many() -> None:
    book = OrderBook("BTCUSDT", FRACTIONAL)
    book.apply_snapshot([(99.7, 1.0), (99.8, 1.0), (99.9, 1.0), (100.0, 1.0)], [(100.1, 1.0)],
                        now=1.0)
    tops = (book.top_changes, book.top_price_changes)
    assert book.apply_changes([(99.9, 3.0)], [], now=2.0) is APPLIED
    assert (book.top_changes, book.top_price_changes) == tops
