"""The one-row fast path (the usual delta: an update, insert or delete of one level, applied
in place) ends exactly where the general path does: same levels, same top-of-book counters,
same validity and reason.

A row given as a read-only mapping proxy instead of a dict always takes the general path, so
each step is fed to two books, one row as a dict and one as a proxy, and the books compared.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from venueguard.core.book import APPLIED
from venueguard.venues.bitmex.book import MAX_ID, MIN_ID, L2Book, LegacyIds

PARTIAL = [
    {"symbol": "XBTUSD", "id": 10 + i, "side": "Buy" if i < 4 else "Sell",
     "size": 100 + i, "price": 100.0 + i, "timestamp": "2026-11-23T12:00:00.000Z"}
    for i in range(8)
]

IDS = st.one_of(st.integers(10, 17), st.integers(18, 21),
                st.sampled_from([99, "13", None, 13.0, True, MAX_ID, MAX_ID + 1, MIN_ID - 1]))
SIZES = st.one_of(st.integers(0, 200), st.sampled_from([103, 104]),  # the best levels' own
                  st.floats(0, 200, allow_nan=False),
                  st.sampled_from(["5", True, None]))
KEYS = st.one_of(  # mostly a level of the partial, sometimes not, or malformed
    st.sampled_from([(10, "Buy"), (11, "Buy"), (13, "Buy"), (14, "Sell"), (17, "Sell")]),
    st.tuples(IDS, st.sampled_from(["Buy", "Sell", "buy", 1])),
)
ROWS = st.tuples(KEYS, st.fixed_dictionaries({}, optional={
    "size": SIZES,
    "price": st.sampled_from([100.0, 101.0, 103.0, 104.0, 107.0, 102.5, "103", 100, 105.0,
                              99.0, 108.0, 0.0, -1.0, 10**23, float("inf")]),
    "timestamp": st.just("2026-11-23T12:00:01.000Z"),
})).map(lambda pair: {"id": pair[0][0], "side": pair[0][1], **pair[1]})


def snapshot(book: L2Book) -> tuple[Any, ...]:
    return (book.depth(), book.valid, book.resync_reason, book.top_changes,
            book.top_price_changes, book.messages_applied, book.rows_applied,
            book.last_row_timestamp, book.last_update_now)


ACTIONS = st.sampled_from(["update", "update", "insert", "delete", "upsert"])
# the legacy scheme of the partial's levels: id = 100_000_000 * index - price / tick
LEGACY = LegacyIds(index=1, tick=0.5)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(ACTIONS, ROWS), min_size=1, max_size=20), st.booleans())
def test_one_row_fast_path_matches_the_general_path(
        steps: list[tuple[str, dict[str, Any]]], legacy: bool) -> None:
    scheme = LEGACY if legacy else None
    fast, general = L2Book("XBTUSD", legacy=scheme), L2Book("XBTUSD", legacy=scheme)
    for book in (fast, general):
        assert book.apply("partial", PARTIAL, 0.0) is APPLIED
    for step, (action, row) in enumerate(steps, start=1):
        if not fast.valid:  # a bad row ended the book: start again, so later rows are tried
            for book in (fast, general):
                book.apply("partial", PARTIAL, float(step))
        got = fast.apply(action, [row], float(step))
        want = general.apply(action, [MappingProxyType(row)], float(step))
        assert got == want
        assert snapshot(fast) == snapshot(general)
        assert fast.keys() == general.keys()


def test_size_change_at_the_best_level_counts_as_a_top_change() -> None:
    book = L2Book("XBTUSD")
    book.apply("partial", PARTIAL, 0.0)
    before = (book.top_changes, book.top_price_changes)
    book.apply("update", [{"id": 11, "side": "Buy", "size": 5}], 1.0)  # not the best bid
    assert (book.top_changes, book.top_price_changes) == before
    book.apply("update", [{"id": 13, "side": "Buy", "size": 5, "price": 103.0}], 2.0)
    assert (book.top_changes, book.top_price_changes) == (before[0] + 1, before[1])
    assert book.best_bid() == (103.0, 5)
    book.apply("update", [{"id": 13, "side": "Buy", "size": 5}], 3.0)  # same size again
    assert book.top_changes == before[0] + 1


def test_the_fast_path_takes_the_usual_rows_and_leaves_the_rest() -> None:
    """Inserts, deletes and updates of one valid level are applied by the fast path; an
    impossible one is not (None, nothing changed) and the general path refuses it."""
    book = L2Book("XBTUSD")
    book.apply("partial", PARTIAL, 0.0)
    ts = "2026-11-23T12:00:02.000Z"
    assert book.apply_one("insert", "Buy", 20, 7, 103.5, ts, 1.0) is APPLIED
    assert book.best_bid() == (103.5, 7) and book.top_price_changes == 2
    assert book.apply_one("delete", "Buy", 20, None, None, ts, 2.0) is APPLIED
    assert book.best_bid() == (103.0, 103) and book.top_price_changes == 3
    assert book.apply_one("insert", "Sell", 21, 5, 110.0, ts, 3.0) is APPLIED
    assert book.top_changes == 3  # not a best level
    before = snapshot(book)
    for action, side, level_id, size, price in (
            ("insert", "Buy", 10, 5, 90.0),         # the id exists
            ("insert", "Buy", 22, 5, 100.0),        # the price exists
            ("insert", "Buy", 22, 5, None),         # no price, no legacy scheme
            ("insert", "Buy", 22, 0, 90.0),         # no size
            ("delete", "Buy", 99, None, None),      # unknown id
            ("delete", "Buy", 10, None, 100.5),     # another price under the id
            ("update", "Sell", 10, 5, None),        # the id is a bid's
            ("upsert", "Buy", 10, 5, None)):
        assert book.apply_one(action, side, level_id, size, price, ts, 9.0) is None
        assert snapshot(book) == before
    assert book.apply("delete", [{"id": 10, "side": "Buy", "price": 100.5}], 9.0).reason \
        == "price_mismatch"
