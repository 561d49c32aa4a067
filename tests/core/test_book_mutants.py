"""Order book edges (core/book.py): value bounds, configured limits, legacy id arithmetic,
counters and timestamps, the in-place update's routing, orderBook10 images and BookSet's
per-symbol configuration."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from venueguard.core.book import (
    APPLIED,
    DROPPED,
    DUPLICATE_PRICE,
    INVALID_ID,
    INVALID_PRICE,
    INVALID_SIZE,
    MALFORMED_ROW,
    MAX_PRICE,
    MAX_SIZE,
    OFF_LOT,
    OFF_TICK,
    PRICE_MISMATCH,
    ApplyStatus,
    BookConfig,
    price_problem,
    size_problem,
)
from venueguard.venues.bitmex.book import MAX_ID, MIN_ID, BookSet, Increments, L2Book, LegacyIds


def row(level_id: int, side: str, size: object = None, price: object = None,
        symbol: str = "XBTUSD", **extra: object) -> dict[str, Any]:
    out: dict[str, Any] = {"symbol": symbol, "id": level_id, "side": side, **extra}
    if size is not None:
        out["size"] = size
    if price is not None:
        out["price"] = price
    return out


PARTIAL = [row(1, "Buy", 10, 100.0), row(2, "Buy", 20, 99.0),
           row(3, "Sell", 30, 101.0), row(4, "Sell", 40, 102.0)]


def synced(config: BookConfig | None = None, rows: list[dict[str, Any]] | None = None
           ) -> L2Book:
    book = L2Book("XBTUSD", config)
    assert book.apply("partial", PARTIAL if rows is None else rows, now=1.0) is APPLIED
    return book


# ---- price_problem / size_problem ----------------------------------------------------------------
def test_a_price_may_equal_the_bound_but_not_zero() -> None:
    assert price_problem(100, None, 100) is None
    assert price_problem(100.0, None, 100.0) is None
    assert price_problem(101, None, 100) == INVALID_PRICE
    assert price_problem(100.5, None, 100.0) == INVALID_PRICE
    assert price_problem(0, None) == INVALID_PRICE
    assert price_problem(-1, None) == INVALID_PRICE
    assert price_problem(int(MAX_PRICE), None) is None
    assert price_problem(MAX_PRICE * 2, None) == INVALID_PRICE


def test_the_tick_tolerance_is_one_billionth_of_a_step_the_bound_included() -> None:
    assert price_problem(1e-9, 1.0) is None                # exactly 1e-9 steps off: on the tick
    assert price_problem(1.0000000015, 1.0) == OFF_TICK    # 1.5e-9 steps off, below 2 steps
    assert price_problem(1000.56, 0.01) is None            # 100055.99999999999 steps: float noise
    assert price_problem(100.25, 0.5) == OFF_TICK


def test_a_size_may_equal_the_bound() -> None:
    assert size_problem(10, None, 10) is None
    assert size_problem(11, None, 10) == INVALID_SIZE
    assert size_problem(MAX_SIZE, None) is None


def test_a_lot_of_two_refuses_odd_sizes() -> None:
    assert size_problem(3, 2) == OFF_LOT
    assert size_problem(4, 2) is None
    assert size_problem(3, 1) is None


# ---- LegacyIds -----------------------------------------------------------------------------------
def test_a_tick_of_one_hundredth_prints_prices_as_bitmex_does() -> None:
    ids = LegacyIds(1, 0.01)
    assert ids.price(100_000_000 - 35) == 0.35   # 35 * 0.01 would be 0.35000000000000003
    assert ids.level_id(0.35) == 100_000_000 - 35


def test_a_tick_that_is_not_one_over_an_integer_multiplies_steps() -> None:
    ids = LegacyIds(1, 0.4)   # 1 / 0.4 = 2.5: no whole number of ticks per unit
    assert ids.price(100_000_000 - 3) == pytest.approx(1.2)
    assert ids.level_id(1.2) == 100_000_000 - 3


def test_a_tick_within_a_billionth_of_one_counts_as_one() -> None:
    ids = LegacyIds(1, 1.0 + 1e-12)
    assert ids.price(100_000_000 - 5) == 5.0
    assert ids.level_id(5.0) == 100_000_000 - 5


# ---- a new book ----------------------------------------------------------------------------------
def test_a_new_book_is_empty_invalid_and_uncounted() -> None:
    book = L2Book("XBTUSD")
    assert book.symbol == "XBTUSD" and book.valid is False
    assert book.last_row_timestamp is None and book.resync_reason is None
    assert book.last_update_now is None
    assert (book.top_changes, book.top_price_changes, book.resyncs, book.partials) == (0, 0, 0, 0)
    assert (book.messages_applied, book.rows_applied, book.dropped_rows) == (0, 0, 0)


def test_the_legacy_tick_is_the_book_tick_unless_one_is_given() -> None:
    legacy = LegacyIds(88, 0.5)
    book = L2Book("XBTUSD", legacy=legacy)
    book.apply("partial", [], now=1.0)
    assert book.apply("insert", [row(1, "Buy", 1, 100.25)], now=2.0).reason == OFF_TICK
    book = L2Book("XBTUSD", BookConfig(tick=0.25), legacy=legacy)
    book.apply("partial", [], now=1.0)
    assert book.apply("insert", [row(1, "Buy", 1, 100.25)], now=2.0) is APPLIED


# ---- configured limits on every path -------------------------------------------------------------
def test_configured_bounds_and_lot_apply_to_inserts() -> None:
    book = synced(BookConfig(max_price=1000.0))
    assert book.apply("insert", [row(9, "Buy", 1, 2000.0)], now=2.0).reason == INVALID_PRICE
    book = synced(BookConfig(max_size=100))
    assert book.apply("insert", [row(9, "Buy", 200, 98.0)], now=2.0).reason == INVALID_SIZE
    book = synced(BookConfig(lot=10))  # a lot without a tick
    assert book.apply("insert", [row(9, "Buy", 15, 98.0)], now=2.0).reason == OFF_LOT
    book = synced(BookConfig(lot=10))
    assert book.apply("insert", [row(9, "Buy", 20, 98.0)], now=2.0) is APPLIED


def test_configured_max_size_applies_to_updates() -> None:
    book = synced(BookConfig(max_size=100))
    assert book.apply("update", [row(1, "Buy", 100), row(2, "Buy", 101)], now=2.0
                      ).reason == INVALID_SIZE
    book = synced(BookConfig(max_size=100))
    assert book.apply("update", [row(1, "Buy", 101)], now=2.0).reason == INVALID_SIZE


def test_a_delete_naming_an_impossible_price_is_refused_as_such() -> None:
    book = synced(BookConfig(max_price=1000.0))
    nan = float("nan")
    assert book.apply("delete", [row(1, "Buy", price=nan)], now=2.0).reason == INVALID_PRICE
    book = synced(BookConfig(max_price=1000.0))
    assert book.apply("delete", [row(1, "Buy", price=2000.0)], now=2.0).reason == INVALID_PRICE
    book = synced(BookConfig(max_price=1000.0))
    assert book.apply("delete", [row(1, "Buy", price=98.0)], now=2.0).reason == PRICE_MISMATCH
    book = synced()
    assert book.apply("delete", [row(3, "Sell", price=101.0)], now=2.0) is APPLIED
    assert book.best_ask() == (102.0, 40)


def test_configured_limits_apply_to_orderbook10_images() -> None:
    cases = [(BookConfig(max_price=1000.0), [[2000.0, 1]], INVALID_PRICE),
             (BookConfig(max_size=100), [[10.0, 200]], INVALID_SIZE),
             (BookConfig(lot=10), [[10.0, 15]], OFF_LOT),
             (BookConfig(tick=0.5), [[10.25, 1]], OFF_TICK),
             (BookConfig(), [[10.0, 1], [10.0, 2]], DUPLICATE_PRICE)]
    for config, bids, reason in cases:
        book = L2Book("XBTUSD", config)
        result = book.apply_snapshot(bids, [], now=1.0)
        assert result.reason == reason == book.resync_reason
        assert result.status is ApplyStatus.RESYNC and not book.valid


def test_increments_set_on_a_book_change_only_what_is_given() -> None:
    book = synced(BookConfig(tick=0.5, lot=10))
    book.set_increments(None, 5)
    assert book.apply("insert", [row(9, "Buy", 5, 98.5)], now=2.0) is APPLIED
    assert book.apply("insert", [row(10, "Buy", 5, 97.25)], now=3.0).reason == OFF_TICK
    book = synced(BookConfig(lot=10))
    book.set_increments(0.25, None)
    assert book.apply("insert", [row(9, "Buy", 10, 98.25)], now=2.0) is APPLIED
    assert book.apply("insert", [row(10, "Buy", 5, 97.0)], now=3.0).reason == OFF_LOT


# ---- updates -------------------------------------------------------------------------------------
def test_an_update_naming_another_price_is_refused_wherever_it_stands() -> None:
    """A level's price never changes under its id: the row is refused even after valid rows
    of the same message, and a named price that is itself impossible says so."""
    book = synced()
    result = book.apply("update", [row(1, "Buy", 5), row(2, "Buy", price=98.0)], now=2.0)
    assert result.reason == PRICE_MISMATCH == book.resync_reason and not book.valid
    assert len(book) == 0
    book = synced(BookConfig(max_price=1000.0))
    assert book.apply("update", [row(2, "Buy", price=2000.0)], now=2.0).reason == INVALID_PRICE
    book = synced()
    assert book.apply("update", [row(2, "Buy", price=float("nan"))], now=2.0
                      ).reason == INVALID_PRICE


def test_rows_naming_their_own_price_in_one_message_are_applied() -> None:
    book = synced()
    assert book.apply("update", [row(4, "Sell", 41, 102.0), row(3, "Sell", 31)],
                      now=2.0) is APPLIED
    assert book.sides()["Sell"] == {101.0: 31, 102.0: 41}
    assert book.rows_applied == 4 + 2


def test_one_row_update_counts_once() -> None:
    book = synced()
    before = (book.messages_applied, book.rows_applied, book.top_changes)
    assert book.apply("update", [row(1, "Buy", 11, timestamp="t2")], now=2.5) is APPLIED
    assert (book.messages_applied, book.rows_applied, book.top_changes) == (
        before[0] + 1, before[1] + 1, before[2] + 1)
    assert book.last_row_timestamp == "t2" and book.last_update_now == 2.5


def test_a_one_row_update_that_is_not_a_mapping_is_malformed() -> None:
    book = synced()
    result = book.apply("update", [["not", "a", "row"]], now=2.0)  # type: ignore[list-item]
    assert result.reason == MALFORMED_ROW and not book.valid


def update_one(book: L2Book, r: dict[str, Any], now: float) -> Any:
    """The one-row fast path, fed the row's fields as a decoder hands them over."""
    return book.apply_one("update", r.get("side"), r.get("id"), r.get("size"), r.get("price"),
                          r.get("timestamp"), now)


def test_the_usual_one_level_size_update_is_applied_in_place() -> None:
    """The in-place path takes a plain size change; anything unusual is left to the general
    path (None, book untouched), whose outcome tests/core/test_book_fast_path.py compares."""
    book = synced()
    assert update_one(book, row(2, "Buy", 1), 2.0) is APPLIED
    assert update_one(book, row(3, "Sell", 7, 101.0), 3.0) is APPLIED   # same price named
    assert update_one(book, row(4, "Sell", MAX_SIZE), 4.0) is APPLIED   # the largest size
    assert book.sides() == {"Buy": {100.0: 10, 99.0: 1}, "Sell": {101.0: 7, 102.0: MAX_SIZE}}
    assert (book.messages_applied, book.rows_applied, book.last_update_now) == (4, 7, 4.0)
    lots = synced(BookConfig(lot=5))
    assert update_one(lots, row(1, "Buy", 15), 2.0) is APPLIED
    assert lots.best_bid() == (100.0, 15)
    for unusual in (row(9, "Buy", 1), row(1, "Sell", 1), row(1, "buy", 1), row(1, "Buy"),
                    row(1, "Buy", 0), row(1, "Buy", 2.0), row(1, "Buy", 1, 98.0),
                    row(1, "Buy", MAX_SIZE + 1), row(1, "Buy", True)):
        assert update_one(book, unusual, 9.0) is None
    assert update_one(lots, row(1, "Buy", 7), 9.0) is None
    assert book.messages_applied == 4 and book.best_bid() == (100.0, 10)
    # an id that is not an int within int64 never reaches the fast path: the book refuses it
    for level_id in (1.0, True, MAX_ID + 1, MIN_ID - 1):
        refused = synced()
        assert refused.apply("update", [row(level_id, "Buy", 1)], 9.0).reason == INVALID_ID


# ---- partials ------------------------------------------------------------------------------------
def test_a_partial_counts_one_message_its_rows_and_one_top_change() -> None:
    book = L2Book("XBTUSD")
    assert book.apply("partial", PARTIAL, now=1.0) is APPLIED
    assert (book.messages_applied, book.rows_applied, book.partials) == (1, 4, 1)
    assert (book.top_changes, book.top_price_changes) == (1, 1)
    assert book.apply("partial", PARTIAL[:2], now=2.0) is APPLIED
    assert (book.messages_applied, book.rows_applied, book.partials) == (2, 6, 2)
    assert (book.top_changes, book.top_price_changes) == (2, 2)


def test_a_partial_records_its_last_row_timestamp_or_none() -> None:
    book = L2Book("XBTUSD")
    book.apply("partial", [row(1, "Buy", 1, 10.0, timestamp="t1"),
                           row(2, "Sell", 1, 11.0, timestamp="t2")], now=1.0)
    assert book.last_row_timestamp == "t2"
    book.apply("partial", [row(1, "Buy", 1, 10.0)], now=2.0)
    assert book.last_row_timestamp is None
    book.apply("partial", [row(1, "Buy", 1, 10.0, timestamp="t3")], now=3.0)
    book.apply("partial", [], now=4.0)
    assert book.last_row_timestamp is None


def test_a_malformed_partial_invalidates_with_its_reason() -> None:
    book = L2Book("XBTUSD")
    result = book.apply("partial", [{"symbol": "XBTUSD", "id": 1, "price": 1.0}], now=1.0)
    assert result.status is ApplyStatus.RESYNC and result.reason == MALFORMED_ROW
    assert book.resync_reason == MALFORMED_ROW and not book.valid and len(book) == 0
    result = book.apply("partial", [row(1, "Buy", 1, 10.0), row(2, "Buy", 1, 10.0)], now=2.0)
    assert result.reason == DUPLICATE_PRICE == book.resync_reason and book.resyncs == 2


def test_every_invalidation_is_counted() -> None:
    book = synced()
    book.invalidate("gap")
    book.invalidate("gap")
    assert book.resyncs == 2 and book.resync_reason == "gap"


# ---- orderBook10 images --------------------------------------------------------------------------
def test_the_first_image_is_a_top_change_even_when_empty() -> None:
    book = L2Book("XBTUSD")
    assert book.apply_snapshot([], [], now=1.0) is APPLIED
    assert (book.top_changes, book.top_price_changes, book.messages_applied) == (1, 1, 1)
    assert book.valid and book.best_bid() is None


def test_images_with_one_side_empty_compare_their_tops() -> None:
    book = L2Book("XBTUSD")
    assert book.apply_snapshot([], [[10.0, 1]], now=1.0) is APPLIED
    assert book.apply_snapshot([], [[10.0, 2]], now=2.0) is APPLIED   # best ask size only
    assert (book.top_changes, book.top_price_changes) == (2, 1)
    assert book.apply_snapshot([], [[11.0, 2]], now=3.0) is APPLIED   # best ask price
    assert (book.top_changes, book.top_price_changes) == (3, 2)
    assert book.apply_snapshot([[9.0, 1]], [], now=4.0) is APPLIED
    assert (book.top_changes, book.top_price_changes) == (4, 3)
    assert book.apply_snapshot([[9.0, 1]], [], now=5.0) is APPLIED    # the same image
    assert (book.top_changes, book.top_price_changes, book.messages_applied) == (4, 3, 5)
    assert book.last_update_now == 5.0


def test_an_image_after_a_resync_clears_the_reason() -> None:
    book = synced()
    book.invalidate("gap")
    assert book.apply_snapshot([[1.0, 1]], [[2.0, 1]], now=2.0) is APPLIED
    assert book.resync_reason is None and book.valid


# ---- reading -------------------------------------------------------------------------------------
def test_mid_and_spread_need_both_sides() -> None:
    book = synced(rows=[row(1, "Buy", 1, 10.0)])
    assert book.mid() is None and book.spread() is None
    book = synced(rows=[row(1, "Sell", 1, 10.0)])
    assert book.mid() is None and book.spread() is None


def test_imbalance_reads_five_levels_by_default() -> None:
    rows = [row(i, "Buy", 1, 100.0 - i) for i in range(6)]
    rows[5]["size"] = 1000  # the sixth bid, not read by default
    rows.append(row(99, "Sell", 5, 101.0))
    book = synced(rows=rows)
    assert book.imbalance() == 0.0
    assert book.imbalance(6) == pytest.approx((1005 - 5) / 1010)


def test_imbalance_of_a_single_contract() -> None:
    book = synced(rows=[row(1, "Buy", 1, 10.0)])
    assert book.imbalance() == 1.0
    book = synced(rows=[row(1, "Sell", 1, 10.0)])
    assert book.imbalance() == -1.0


# ---- BookSet -------------------------------------------------------------------------------------
def test_a_one_row_message_creates_the_book_of_a_new_symbol() -> None:
    books = BookSet()
    assert books.apply("insert", [row(1, "Buy", 1, 10.0, symbol="NEW")], now=1.0) == [
        ("NEW", DROPPED)]
    assert books.books["NEW"].symbol == "NEW" and books.books["NEW"].dropped_rows == 1


def test_bookset_passes_the_time_on_both_paths() -> None:
    books = BookSet()
    books.apply("partial", [row(1, "Buy", 1, 10.0), row(2, "Sell", 1, 11.0)], now=1.0)
    books.apply("update", [row(1, "Buy", 2)], now=2.0)
    assert books.books["XBTUSD"].last_update_now == 2.0
    books.apply("update", [row(1, "Buy", 3), row(2, "Sell", 3)], now=3.0)
    assert books.books["XBTUSD"].last_update_now == 3.0
    assert books.books["XBTUSD"].sides() == {"Buy": {10.0: 3}, "Sell": {11.0: 3}}


def test_bookset_keeps_every_row_of_a_symbol_in_order() -> None:
    books = BookSet()
    rows = [row(1, "Buy", 1, 10.0), row(2, "Buy", 2, 9.0), row(3, "Buy", 3, 8.0)]
    assert books.apply("partial", rows, now=1.0) == [("XBTUSD", APPLIED)]
    assert books.books["XBTUSD"].sides()["Buy"] == {10.0: 1, 9.0: 2, 8.0: 3}


@pytest.mark.parametrize("rows", [[{"id": 1, "side": "Buy"}], [["junk"]],
                                  [row(1, "Buy", 1, 10.0), {"symbol": 5}]])
def test_bookset_rows_without_a_symbol_are_malformed(rows: list[Any]) -> None:
    ((symbol, result),) = BookSet().apply("update", rows, now=1.0)
    assert symbol == "" and result.status is ApplyStatus.RESYNC and result.reason == MALFORMED_ROW


def test_bookset_invalidates_every_book_with_the_reason() -> None:
    books = BookSet()
    books.apply("partial", [row(1, "Buy", 1, 10.0, symbol="A"), row(2, "Buy", 1, 10.0,
                                                                      symbol="B")], now=1.0)
    books.invalidate_all("disconnected")
    assert [(b.valid, b.resync_reason) for b in books.books.values()] == [
        (False, "disconnected"), (False, "disconnected")]


def test_bookset_images_reach_the_book_of_their_symbol() -> None:
    books = BookSet()
    results = books.apply_top([
        {"bids": [], "asks": []},
        {"symbol": "A", "bids": [[1.0, 2]], "asks": [[2.0, 3]], "timestamp": "ta"},
    ], now=4.0)
    assert results[0][0] == "" and results[0][1].status is ApplyStatus.RESYNC
    assert results[0][1].reason == MALFORMED_ROW
    assert results[1] == ("A", APPLIED)
    book = books.books["A"]
    assert book.last_update_now == 4.0 and book.last_row_timestamp == "ta"
    assert book.best_bid() == (1.0, 2) and book.best_ask() == (2.0, 3)
    assert set(books.books) == {"A"}


@pytest.mark.parametrize("image", [
    {"symbol": "A", "bids": [[1.0, 2]], "asks": ((2.0, 3),)},
    {"symbol": "A", "bids": ((1.0, 2),), "asks": [[2.0, 3]]},
    {"symbol": "A", "bids": [[1.0, 2]]},
    {"symbol": "A", "asks": [[2.0, 3]]},
])
def test_bookset_image_sides_must_be_lists(image: dict[str, Any]) -> None:
    books = BookSet()
    books.apply_top([{"symbol": "A", "bids": [[1.0, 1]], "asks": [[2.0, 1]]}], now=1.0)
    ((symbol, result),) = books.apply_top([image], now=2.0)
    assert symbol == "A" and result.reason == MALFORMED_ROW
    assert not books.books["A"].valid and books.books["A"].resync_reason == MALFORMED_ROW
    assert set(books.books) == {"A"}


def test_bookset_configures_each_book_from_its_increments() -> None:
    books = BookSet(BookConfig(tick=0.5, lot=2, max_age_s=3.0),
                    increments={"A": Increments(tick=1.0, lot=10)})
    a = books.book("A")
    assert (a.config.tick, a.config.lot, a.config.max_age_s, a.legacy) == (1.0, 10, 3.0, None)
    b = books.book("B")
    assert b.config == books.config and b.symbol == "B"
    assert books.book("A") is a


def test_bookset_configures_legacy_ids_per_symbol() -> None:
    legacy = LegacyIds(88, 0.01)
    books = BookSet(BookConfig(tick=0.5), legacy={"XBTUSD": legacy})
    book = books.book("XBTUSD")
    assert book.legacy == legacy and book.config.tick == 0.5 and book.config.lot is None
    assert books.book("ETHUSD").legacy is None


def test_bookset_increments_merge_and_reach_books_now_and_later() -> None:
    books = BookSet()
    existing = books.book("A")
    existing.apply("partial", [], now=1.0)
    books.set_increments("A", 0.5, None)
    assert books.increments["A"] == Increments(0.5, None)
    books.set_increments("A", None, 10)
    assert books.increments["A"] == Increments(0.5, 10)
    books.set_increments("A", 0.25, None)
    assert books.increments["A"] == Increments(0.25, 10)
    assert existing.apply("insert", [row(1, "Buy", 10, 10.25, symbol="A")], now=2.0) is APPLIED
    assert existing.apply("insert", [row(2, "Buy", 5, 10.5, symbol="A")], now=3.0
                          ).reason == OFF_LOT
    existing.apply("partial", [], now=4.0)
    assert existing.apply("insert", [row(3, "Buy", 10, 10.1, symbol="A")], now=5.0
                          ).reason == OFF_TICK
    later = books.book("B")
    books.set_increments("B", None, 3)
    assert books.increments["B"] == Increments(None, 3)
    later.apply("partial", [], now=1.0)
    assert later.apply("insert", [row(1, "Buy", 4, 10.0, symbol="B")], now=2.0).reason == OFF_LOT
    books.set_increments("C", 2.0, 7)
    created = books.book("C")
    assert (created.config.tick, created.config.lot) == (2.0, 7)
    assert set(books.books) == {"A", "B", "C"}


def test_a_mapping_row_takes_the_general_path_with_the_same_result() -> None:
    book = synced()
    proxy = MappingProxyType(row(1, "Buy", 12))
    assert book.apply("update", [proxy], now=2.0) is APPLIED
    assert book.best_bid() == (100.0, 12)


def test_the_int64_edges_are_ids_on_every_action_and_one_beyond_is_not() -> None:
    for edge, beyond in ((MAX_ID, MAX_ID + 1), (MIN_ID, MIN_ID - 1)):
        book = synced()
        assert book.apply("insert", [row(edge, "Buy", 1, 98.0)], now=2.0) is APPLIED
        assert book.apply("update", [row(edge, "Buy", 2, 98.0), row(1, "Buy", 3)],
                          now=3.0) is APPLIED
        assert book.apply("update", [row(edge, "Buy", 4)], now=3.5) is APPLIED
        assert book.sides()["Buy"] == {100.0: 3, 99.0: 20, 98.0: 4}
        assert book.apply("delete", [row(edge, "Buy")], now=4.0) is APPLIED
        for action in ("update", "delete"):
            book = synced()
            assert book.apply(action, [row(beyond, "Buy", 1)], now=2.0).reason == INVALID_ID
