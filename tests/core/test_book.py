from __future__ import annotations

import math

import pytest

from venueguard.core.book import (
    APPLIED,
    DROPPED,
    DUPLICATE_ID,
    DUPLICATE_PRICE,
    INVALID_ID,
    INVALID_PRICE,
    INVALID_REASONS,
    INVALID_SIDE,
    INVALID_SIZE,
    MALFORMED_ROW,
    MISSING_PRICE,
    OFF_LOT,
    OFF_TICK,
    PRICE_MISMATCH,
    UNKNOWN_ACTION,
    UNKNOWN_ID,
    ApplyStatus,
    BookConfig,
)
from venueguard.venues.bitmex.book import BookSet, L2Book, LegacyIds

XBT_LEGACY = LegacyIds(index=88, tick=0.01)


def row(level_id: int, side: str, size: float | None = None, price: float | None = None,
        symbol: str = "XBTUSD") -> dict[str, object]:
    out: dict[str, object] = {"symbol": symbol, "id": level_id, "side": side}
    if size is not None:
        out["size"] = size
    if price is not None:
        out["price"] = price
    return out


def modern_book() -> L2Book:
    book = L2Book("XBTUSD", BookConfig(max_age_s=5.0))
    result = book.apply("partial", [
        row(11, "Sell", 30, 101.0), row(12, "Sell", 20, 100.5),
        row(21, "Buy", 10, 100.0), row(22, "Buy", 40, 99.5), row(23, "Buy", 5, 99.0),
    ], now=10.0)
    assert result is APPLIED
    return book


def test_partial_builds_sorted_sides_and_top_of_book() -> None:
    book = modern_book()
    assert book.best_bid() == (100.0, 10)
    assert book.best_ask() == (100.5, 20)
    assert book.spread() == 0.5
    assert book.mid() == 100.25
    assert book.depth() == ([(100.0, 10), (99.5, 40), (99.0, 5)], [(100.5, 20), (101.0, 30)])
    assert book.depth(2) == ([(100.0, 10), (99.5, 40)], [(100.5, 20), (101.0, 30)])
    assert book.depth(0) == ([], [])
    assert len(book) == 5
    assert 21 in book and 99 not in book


def test_modern_insert_update_delete() -> None:
    book = modern_book()
    assert book.apply("insert", [row(24, "Buy", 7, 100.25)], now=11.0) is APPLIED
    assert book.best_bid() == (100.25, 7)
    assert book.apply("update", [row(24, "Buy", 9, 100.25), row(12, "Sell", 1, 100.5)],
                      now=12.0) is APPLIED
    assert book.best_bid() == (100.25, 9)
    assert book.best_ask() == (100.5, 1)
    assert book.apply("delete", [row(24, "Buy", price=100.25), row(12, "Sell", price=100.5)],
                      now=13.0) is APPLIED
    assert book.best_bid() == (100.0, 10)
    assert book.best_ask() == (101.0, 30)
    assert book.sides() == {"Buy": {100.0: 10, 99.5: 40, 99.0: 5}, "Sell": {101.0: 30}}
    assert book.messages_applied == 4 and book.rows_applied == 5 + 1 + 2 + 2


def test_update_giving_a_level_id_a_new_price_is_refused_not_moved() -> None:
    """Regression: an update naming id 23 at 101.5 used to move the level, so the best bid
    jumped to a price no insert ever created (and here crossed the book)."""
    book = modern_book()
    result = book.apply("update", [row(23, "Buy", 6, 101.5)], now=11.0)
    assert result.reason == PRICE_MISMATCH and PRICE_MISMATCH in INVALID_REASONS
    assert not book.valid and book.best_bid() is None and book.resync_reason == PRICE_MISMATCH
    book = modern_book()  # the fast path (one row, a valid book) refuses it too
    assert book.apply("update", [row(21, "Buy", None, 98.0)], now=11.0).reason == PRICE_MISMATCH
    book = modern_book()  # the price it already has is fine; a bad one says why
    assert book.apply("update", [row(23, "Buy", 6, 99.0)], now=11.0) is APPLIED
    assert book.apply("update", [row(23, "Buy", 6, -1.0)], now=12.0).reason == INVALID_PRICE


@pytest.mark.parametrize("level_id", [2**63, 2**64 - 1, -(2**63) - 1, 10**30])
@pytest.mark.parametrize("action", ["insert", "update", "delete", "partial"])
def test_ids_outside_the_int64_range_are_refused(action: str, level_id: int) -> None:
    """Regression: ids beyond int64 (2**63, 2**64 - 1) were accepted as level keys."""
    book = modern_book()
    rows = [row(level_id, "Buy", 1, 97.0 if action in ("insert", "partial") else None)]
    result = book.apply(action, rows, now=11.0)
    assert result.reason == INVALID_ID and INVALID_ID in INVALID_REASONS and not book.valid
    edge = modern_book()
    assert edge.apply("insert", [row(2**63 - 1, "Buy", 1, 97.0)], now=11.0) is APPLIED
    assert edge.apply("insert", [row(-(2**63), "Buy", 1, 96.0)], now=11.0) is APPLIED


def test_legacy_rows_without_price_use_the_id_map() -> None:
    book = L2Book("XBTUSD")
    partial = [row(XBT_LEGACY.level_id(p), "Sell", 5, p) for p in (16903.0, 16902.5)]
    partial += [row(XBT_LEGACY.level_id(p), "Buy", 8, p) for p in (16902.0, 16901.5)]
    assert book.apply("partial", partial, now=1.0) is APPLIED
    ask_id = XBT_LEGACY.level_id(16902.5)
    assert book.apply("update", [row(ask_id, "Sell", 77)], now=2.0) is APPLIED
    assert book.best_ask() == (16902.5, 77)
    assert book.apply("delete", [row(ask_id, "Sell")], now=3.0) is APPLIED
    assert book.best_ask() == (16903.0, 5)
    # an insert without price cannot be placed without the legacy id scheme
    new_id = XBT_LEGACY.level_id(16902.5)
    result = book.apply("insert", [row(new_id, "Sell", 3)], now=4.0)
    assert result.status is ApplyStatus.RESYNC and result.reason == MISSING_PRICE
    assert not book.valid


def test_legacy_insert_without_price_derives_it_from_the_id() -> None:
    book = L2Book("XBTUSD", legacy=XBT_LEGACY)
    book.apply("partial", [], now=1.0)
    assert book.apply("insert", [row(8_798_309_800, "Buy", 42)], now=2.0) is APPLIED
    assert book.best_bid() == (16902.0, 42)


@pytest.mark.parametrize(("ids", "level_id", "price"), [
    (XBT_LEGACY, 8_798_309_800, 16902.0),  # XBTUSD: id = 8_800_000_000 - price * 100
    (LegacyIds(549, 0.001), 54_899_972_558, 27.442),  # SOLUSDT (2021 capture)
    (LegacyIds(88, 0.5), 8_800_000_000 - 53805, 26902.5),
    (LegacyIds(3, 5.0), 300_000_000 - 20, 100.0),
])
def test_legacy_id_scheme_round_trips(ids: LegacyIds, level_id: int, price: float) -> None:
    assert ids.price(level_id) == price
    assert ids.level_id(price) == level_id


def test_rows_before_the_first_partial_are_dropped_and_counted() -> None:
    book = L2Book("XBTUSD")
    assert book.apply("insert", [row(1, "Buy", 1, 10.0)], now=0.0) is DROPPED
    assert book.apply("update", [row(1, "Buy", 2), row(2, "Sell", 2)], now=0.5) is DROPPED
    assert book.dropped_rows == 3
    assert book.best_bid() is None and not book.is_fresh(0.5)
    assert book.apply("partial", [row(1, "Buy", 1, 10.0)], now=1.0) is APPLIED
    assert book.is_fresh(1.0)


@pytest.mark.parametrize(("action", "rows", "reason"), [
    ("update", [row(999, "Buy", 1)], UNKNOWN_ID),
    ("update", [row(21, "Sell", 1)], UNKNOWN_ID),  # the key is (id, side)
    ("delete", [row(999, "Sell")], UNKNOWN_ID),
    ("insert", [row(21, "Buy", 1, 97.0)], DUPLICATE_ID),
    ("insert", [row(31, "Buy", 1, 100.0)], DUPLICATE_PRICE),
    ("insert", [row(31, "Buy", 1)], MISSING_PRICE),
    ("insert", [row(31, "buy", 1, 97.0)], INVALID_SIDE),
    ("insert", [{"symbol": "XBTUSD", "side": "Buy", "price": 97.0}], MALFORMED_ROW),
    ("insert", [row(31, "Buy", "7", 97.0)], INVALID_SIZE),  # type: ignore[arg-type]
    ("insert", [row(31, "Buy", 7, "97")], INVALID_PRICE),  # type: ignore[arg-type]
    ("update", [row(21, "Buy", None, None) | {"size": [1]}], INVALID_SIZE),
    ("update", [{"symbol": "XBTUSD", "id": [21], "side": "Buy", "size": 1}], INVALID_ID),
    # impossible values: refused before they touch the book
    ("insert", [row(31, "Buy", -7, 97.0)], INVALID_SIZE),
    ("insert", [row(31, "Buy", 0, 97.0)], INVALID_SIZE),
    ("insert", [row(31, "Buy", 7.5, 97.0)], INVALID_SIZE),
    ("insert", [{"symbol": "XBTUSD", "id": 31, "side": "Buy", "price": 97.0}], INVALID_SIZE),
    ("insert", [row(31, "Buy", 7, -97.0)], INVALID_PRICE),
    ("insert", [row(31, "Buy", 7, 0.0)], INVALID_PRICE),
    ("insert", [row(31, "Buy", 7, float("nan"))], INVALID_PRICE),
    ("insert", [row(31, "Buy", 7, float("inf"))], INVALID_PRICE),
    ("insert", [row(31, "Buy", 7, 1e300)], INVALID_PRICE),
    ("insert", [row(31, "Buy", 10**30, 97.0)], INVALID_SIZE),
    ("insert", [row(31, "Buy", True, 97.0)], INVALID_SIZE),
    ("update", [row(21, "Buy", -5)], INVALID_SIZE),
    ("update", [row(21, "Buy", 0)], INVALID_SIZE),
    ("update", [row(21, "Buy", 2.5)], INVALID_SIZE),
    ("update", [{"symbol": "XBTUSD", "id": 21.0, "side": "Buy", "size": 1}], INVALID_ID),
    ("update", [{"symbol": "XBTUSD", "id": True, "side": "Buy", "size": 1}], INVALID_ID),
    ("update", [row(21, "Buy", 5, float("nan"))], INVALID_PRICE),
    ("delete", [row(21, "Buy", None, 55.0)], PRICE_MISMATCH),
    ("frobnicate", [row(21, "Buy", 1)], UNKNOWN_ACTION),
])
def test_inconsistent_delta_asks_for_resync_and_invalidates(
        action: str, rows: list[dict[str, object]], reason: str) -> None:
    book = modern_book()
    result = book.apply(action, rows, now=11.0)
    assert result.status is ApplyStatus.RESYNC and result.needs_resync
    assert result.reason == reason == book.resync_reason
    assert not book.valid and book.resyncs == 1
    assert not book.is_fresh(11.0)
    assert book.best_bid() is None and book.best_ask() is None  # nothing stale is served
    # deltas are dropped until a new partial arrives
    assert book.apply("update", [row(21, "Buy", 3)], now=12.0) is DROPPED
    assert book.apply("partial", [row(1, "Buy", 1, 50.0)], now=13.0) is APPLIED
    assert book.valid and book.resync_reason is None and book.best_bid() == (50.0, 1)


def test_second_partial_replaces_state() -> None:
    book = modern_book()
    assert book.apply("partial", [row(7, "Sell", 3, 200.0)], now=20.0) is APPLIED
    assert book.sides() == {"Buy": {}, "Sell": {200.0: 3}}
    assert book.partials == 2
    assert book.apply("update", [row(21, "Buy", 3)], now=21.0).reason == UNKNOWN_ID


def test_empty_partial_is_a_valid_empty_book() -> None:
    book = L2Book("ETHYLDH23")
    assert book.apply("partial", [], now=0.0) is APPLIED
    assert book.valid and len(book) == 0
    assert book.mid() is None and book.spread() is None and book.imbalance() is None


def test_freshness_follows_updates_and_max_age() -> None:
    book = L2Book("XBTUSD", BookConfig(max_age_s=2.0))
    assert book.age_s(5.0) == math.inf and not book.is_fresh(5.0)
    book.apply("partial", [row(1, "Buy", 1, 10.0)], now=10.0)
    assert book.is_fresh(12.0) and book.age_s(11.5) == 1.5
    assert not book.is_fresh(12.01)
    book.apply("update", [row(1, "Buy", 2)], now=12.5)
    assert book.is_fresh(14.5) and not book.is_fresh(14.6)
    book.touch(14.0)  # evidence the stream is current, without a change
    assert book.is_fresh(15.9) and not book.is_fresh(16.1)
    assert book.age_s(9.0) == 0.0  # a clock running backwards never makes age negative


def test_invalid_book_is_never_fresh_even_if_touched() -> None:
    book = modern_book()
    book.invalidate("gap")
    book.touch(10.5)
    assert not book.is_fresh(10.5)
    assert book.resync_reason == "gap"


def test_churn_counts_top_of_book_changes_only() -> None:
    book = modern_book()
    base_any, base_price = book.top_changes, book.top_price_changes
    book.apply("update", [row(23, "Buy", 6)], now=11.0)  # deep level
    book.apply("insert", [row(30, "Sell", 1, 105.0)], now=11.0)  # deep level
    assert (book.top_changes, book.top_price_changes) == (base_any, base_price)
    book.apply("update", [row(21, "Buy", 11)], now=11.0)  # best bid size
    assert (book.top_changes, book.top_price_changes) == (base_any + 1, base_price)
    book.apply("delete", [row(12, "Sell")], now=11.0)  # best ask price moves
    assert (book.top_changes, book.top_price_changes) == (base_any + 2, base_price + 1)


def test_imbalance_over_top_levels() -> None:
    book = modern_book()
    # top 1: bids 10 vs asks 20
    assert book.imbalance(1) == pytest.approx((10 - 20) / 30)
    # top 2: bids 50 vs asks 50
    assert book.imbalance(2) == 0.0
    # all: bids 55 vs asks 50
    assert book.imbalance(10) == pytest.approx(5 / 105)


def test_crossed_book_reports_negative_spread() -> None:
    book = L2Book("X")
    book.apply("partial", [row(1, "Buy", 1, 101.0, "X"), row(2, "Sell", 1, 100.0, "X")], 0.0)
    assert book.spread() == -1.0


def test_orderbook10_snapshots_replace_the_book() -> None:
    book = L2Book("XBTUSD")
    result = book.apply_snapshot([[9770, 35719], [9769, 31]], [[9770.5, 101196], [9771, 2095]],
                            now=1.0, timestamp="2020-05-07T19:00:53.458Z")
    assert result is APPLIED and book.is_fresh(1.0)
    assert book.best_bid() == (9770, 35719) and book.best_ask() == (9770.5, 101196)
    assert book.last_row_timestamp == "2020-05-07T19:00:53.458Z"
    churn = book.top_changes
    book.apply_snapshot([[9770, 35719], [9769, 31]], [[9770.5, 101196], [9771, 2095]], now=2.0)
    assert book.top_changes == churn  # identical image: no churn
    prices_moved = book.top_price_changes
    book.apply_snapshot([[9770, 1]], [[9770.5, 101196]], now=2.5)  # best bid size only
    assert (book.top_changes, book.top_price_changes) == (churn + 1, prices_moved)
    book.apply_snapshot([[9760, 1]], [[9761, 2]], now=3.0)
    assert book.sides() == {"Buy": {9760: 1}, "Sell": {9761: 2}}
    assert (book.top_changes, book.top_price_changes) == (churn + 2, prices_moved + 1)
    bad = book.apply_snapshot([[9760, "1"]], [], now=4.0)
    assert bad.reason == INVALID_SIZE and not book.valid
    assert book.apply_snapshot([[1]], [], now=4.0).reason == MALFORMED_ROW
    assert book.apply_snapshot([[1, 1]], [], now=5.0) is APPLIED and book.valid


def test_bookset_routes_mixed_symbols() -> None:
    books = BookSet()
    results = books.apply("partial", [row(1, "Buy", 1, 10.0, "A"), row(2, "Sell", 2, 11.0, "B")],
                          now=0.0, partial_filter={})
    assert dict(results) == {"A": APPLIED, "B": APPLIED}
    results = books.apply("update", [row(1, "Buy", 5, symbol="A"), row(2, "Sell", 6, symbol="B")],
                          now=1.0)
    assert dict(results) == {"A": APPLIED, "B": APPLIED}
    assert books.books["A"].best_bid() == (10.0, 5) and books.books["B"].best_ask() == (11.0, 6)
    # an update for an unknown id invalidates only its own symbol
    results = dict(books.apply("update", [row(9, "Buy", 5, symbol="B")], now=2.0))
    assert results["B"].reason == UNKNOWN_ID
    assert books.books["A"].valid and not books.books["B"].valid


def test_bookset_partial_filters() -> None:
    books = BookSet()
    books.apply("partial", [row(1, "Buy", 1, 10.0, "A")], 0.0, {"symbol": "A"})
    books.apply("partial", [row(2, "Buy", 1, 20.0, "B")], 0.0, {"symbol": "B"})
    # a partial for one symbol leaves the other alone (rows of other symbols are ignored)
    books.apply("partial", [row(3, "Buy", 3, 30.0, "A"), row(4, "Buy", 4, 40.0, "B")], 1.0,
                {"symbol": "A"})
    assert books.books["A"].best_bid() == (30.0, 3) and books.books["B"].best_bid() == (20.0, 1)
    # no filter at all: only the symbols in the rows are replaced
    books.apply("partial", [row(5, "Buy", 5, 50.0, "B")], 2.0, None)
    assert books.books["A"].best_bid() == (30.0, 3) and books.books["B"].best_bid() == (50.0, 5)
    # a filter without symbol is an image of every symbol: A becomes empty
    books.apply("partial", [row(6, "Buy", 6, 60.0, "B")], 3.0, {})
    assert len(books.books["A"]) == 0 and books.books["A"].valid
    assert books.books["B"].best_bid() == (60.0, 6)


@pytest.mark.parametrize("symbol", ["", None, 7, 1.5, ["XBTUSD"]])
@pytest.mark.parametrize("action", ["update", "partial"])
def test_bookset_refuses_rows_whose_symbol_is_empty_null_or_a_number(
        action: str, symbol: object) -> None:
    """Regression: a row with symbol "" went to a book named "" and was dropped uncounted."""
    books = BookSet()
    books.apply("partial", [row(1, "Buy", 1, 10.0)], 0.0, {"symbol": "XBTUSD"})
    bad = row(1, "Buy", 2, 10.0) | {"symbol": symbol}
    for rows in ([bad], [row(1, "Buy", 3, 10.0), bad]):
        (name, result), = books.apply(action, rows, 1.0)
        assert name == "" and result.reason == MALFORMED_ROW
    assert "" not in books.books and books.books["XBTUSD"].best_bid() == (10.0, 1)


def test_bookset_rejects_rows_without_symbol_and_uses_legacy_per_symbol() -> None:
    books = BookSet(legacy={"XBTUSD": XBT_LEGACY})
    (symbol, result), = books.apply("insert", [{"id": 1, "side": "Buy"}], now=0.0)
    assert symbol == "" and result.reason == MALFORMED_ROW
    books.apply("partial", [], 0.0, {"symbol": "XBTUSD"})
    assert dict(books.apply("insert", [row(8_798_309_800, "Buy", 1)], 1.0)) == {"XBTUSD": APPLIED}
    assert books.books["XBTUSD"].best_bid() == (16902.0, 1)
    books.invalidate_all("disconnected")
    assert not books.books["XBTUSD"].valid


def test_bookset_top_rows() -> None:
    books = BookSet()
    results = books.apply_top([
        {"symbol": "XBTUSD", "bids": [[1.0, 2]], "asks": [[2.0, 3]], "timestamp": "t"},
        {"symbol": "ETHUSD", "bids": "nope", "asks": []},
        {"bids": [], "asks": []},
    ], now=1.0)
    assert results[0] == ("XBTUSD", APPLIED)
    assert results[1][1].reason == MALFORMED_ROW
    assert results[2][0] == "" and results[2][1].needs_resync


def test_tick_and_lot_are_enforced_where_known() -> None:
    book = L2Book("XBTUSD", BookConfig(tick=0.5, lot=100))
    assert book.apply("partial", [row(1, "Buy", 200, 100.5), row(2, "Sell", 100, 101.0)],
                      now=1.0) is APPLIED
    assert book.apply("insert", [row(3, "Buy", 100, 99.25)], now=2.0).reason == OFF_TICK
    assert book.apply("partial", [row(1, "Buy", 200, 100.5)], now=3.0) is APPLIED
    assert book.apply("update", [row(1, "Buy", 150)], now=4.0).reason == OFF_LOT
    assert not book.valid
    fine = L2Book("ETHUSD", BookConfig(tick=0.05))
    assert fine.apply("partial", [row(1, "Buy", 3, 123.45), row(2, "Sell", 1, 0.15)],
                      now=1.0) is APPLIED  # 123.45 / 0.05 is not exact in binary, still on tick


def test_increments_learned_later_apply_to_the_next_rows() -> None:
    book = modern_book()
    book.set_increments(1.0, None)
    assert book.apply("insert", [row(31, "Buy", 1, 97.5)], now=11.0).reason == OFF_TICK
