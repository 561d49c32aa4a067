"""The single-row size update (the usual delta, applied in place) ends exactly where the
general path does: same levels, same top-of-book counters, same validity and reason.

A row given as a read-only mapping proxy instead of a dict always takes the general path, so
each step is fed to two books, one row as a dict and one as a proxy, and the books compared.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from venueguard.core.book import APPLIED
from venueguard.venues.bitmex.book import L2Book

PARTIAL = [
    {"symbol": "XBTUSD", "id": 10 + i, "side": "Buy" if i < 4 else "Sell",
     "size": 100 + i, "price": 100.0 + i, "timestamp": "2026-11-23T12:00:00.000Z"}
    for i in range(8)
]

IDS = st.one_of(st.integers(10, 17), st.sampled_from([99, "13", None]))
SIZES = st.one_of(st.integers(0, 200), st.floats(0, 200, allow_nan=False),
                  st.sampled_from(["5", True, None]))
KEYS = st.one_of(  # mostly a level of the partial, sometimes not, or malformed
    st.sampled_from([(10, "Buy"), (11, "Buy"), (13, "Buy"), (14, "Sell"), (17, "Sell")]),
    st.tuples(IDS, st.sampled_from(["Buy", "Sell", "buy", 1])),
)
ROWS = st.tuples(KEYS, st.fixed_dictionaries({}, optional={
    "size": SIZES,
    "price": st.sampled_from([100.0, 101.0, 103.0, 104.0, 107.0, 102.5, "103"]),
    "timestamp": st.just("2026-11-23T12:00:01.000Z"),
})).map(lambda pair: {"id": pair[0][0], "side": pair[0][1], **pair[1]})


def snapshot(book: L2Book) -> tuple[Any, ...]:
    return (book.depth(), book.valid, book.resync_reason, book.top_changes,
            book.top_price_changes, book.messages_applied, book.rows_applied,
            book.last_row_timestamp, book.last_update_now)


@settings(max_examples=300, deadline=None)
@given(st.lists(ROWS, min_size=1, max_size=20))
def test_in_place_update_matches_the_general_path(rows: list[dict[str, Any]]) -> None:
    fast, general = L2Book("XBTUSD"), L2Book("XBTUSD")
    for book in (fast, general):
        assert book.apply("partial", PARTIAL, 0.0) is APPLIED
    for step, row in enumerate(rows, start=1):
        if not fast.valid:  # a bad row ended the book: start again, so later rows are tried
            for book in (fast, general):
                book.apply("partial", PARTIAL, float(step))
        got = fast.apply("update", [row], float(step))
        want = general.apply("update", [MappingProxyType(row)], float(step))
        assert got == want
        assert snapshot(fast) == snapshot(general)


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
