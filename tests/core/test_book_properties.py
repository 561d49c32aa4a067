"""The book equals a naive reference replay after any sequence of deltas, in both formats.

Each step builds one BitMEX message (as a dict), feeds it to ``L2Book`` and to the
reference in tests/venues/reference_book.py, and compares the two books.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from venueguard.core.book import APPLIED, DROPPED, ApplyStatus, BookConfig
from venueguard.venues.bitmex.book import L2Book, LegacyIds

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "venues"))
from reference_book import ReferenceBook

SYMBOL = "XBTUSD"
LEGACY = LegacyIds(index=88, tick=0.5)
TICKS = st.integers(min_value=1, max_value=16)  # price = ticks * 0.5; narrow, so reused
SIZES = st.integers(min_value=1, max_value=10_000)
SIDES = st.sampled_from(["Buy", "Sell"])


class BookMachine(RuleBasedStateMachine):
    """Modern format: price on every row, arbitrary ids."""

    legacy = False

    def __init__(self) -> None:
        super().__init__()
        self.book = L2Book(SYMBOL, BookConfig(max_age_s=1.0))
        self.reference = ReferenceBook(strict=False)
        self.levels: dict[tuple[int, str], float] = {}  # (id, side) -> price, while in sync
        self.next_id = 1_000
        self.now = 0.0
        self.synced = False

    # ---- helpers -------------------------------------------------------------------------
    def new_id(self, price: float) -> int:
        if self.legacy:
            return LEGACY.level_id(price)
        self.next_id += 7
        return self.next_id

    def taken(self, side: str, price: float) -> bool:
        return any(s == side and p == price for (_, s), p in self.levels.items()) or (
            self.legacy and (LEGACY.level_id(price), side) in self.levels)

    def row(self, level_id: int, side: str, price: float | None, size: int | None
            ) -> dict[str, Any]:
        out: dict[str, Any] = {"symbol": SYMBOL, "id": level_id, "side": side}
        if size is not None:
            out["size"] = size
        if price is not None and not self.legacy:
            out["price"] = price
        return out

    def send(self, action: str, rows: list[dict[str, Any]], message_extra: dict[str, Any] | None
             = None) -> ApplyStatus:
        self.now += 0.25
        message = {"table": "orderBookL2", "action": action, "data": rows, **(message_extra or {})}
        self.reference.apply_message(message)
        return self.book.apply(action, rows, self.now).status

    # ---- rules ---------------------------------------------------------------------------
    @initialize(levels=st.lists(st.tuples(SIDES, TICKS, SIZES), max_size=12))
    def first_partial(self, levels: list[tuple[str, int, int]]) -> None:
        self.partial(levels)

    @rule(levels=st.lists(st.tuples(SIDES, TICKS, SIZES), max_size=12))
    def partial(self, levels: list[tuple[str, int, int]]) -> None:
        self.levels = {}
        rows = []
        for side, ticks, size in levels:
            price = ticks * 0.5
            if self.taken(side, price):
                continue
            level_id = self.new_id(price)
            self.levels[(level_id, side)] = price
            rows.append({"symbol": SYMBOL, "id": level_id, "side": side, "size": size,
                         "price": price})
        status = self.send("partial", rows, {"filter": {"symbol": SYMBOL}})
        assert status is ApplyStatus.APPLIED
        self.synced = True

    @rule(side=SIDES, ticks=TICKS, size=SIZES)
    def insert(self, side: str, ticks: int, size: int) -> None:
        price = ticks * 0.5
        if self.taken(side, price):
            return
        level_id = self.new_id(price)
        status = self.send("insert", [{"symbol": SYMBOL, "id": level_id, "side": side,
                                       "size": size, "price": price}], None)
        if self.synced:
            assert status is ApplyStatus.APPLIED
            self.levels[(level_id, side)] = price
        else:
            assert status is ApplyStatus.DROPPED

    @precondition(lambda self: self.levels)
    @rule(data=st.data(), sizes=st.lists(SIZES, min_size=1, max_size=4))
    def update(self, data: st.DataObject, sizes: list[int]) -> None:
        count = min(len(sizes), len(self.levels))
        keys = data.draw(st.lists(st.sampled_from(sorted(self.levels)), min_size=count,
                                  max_size=count, unique=True))
        rows = [self.row(level_id, side, self.levels[(level_id, side)], size)
                for (level_id, side), size in zip(keys, sizes, strict=False)]
        assert self.send("update", rows, None) is ApplyStatus.APPLIED

    @precondition(lambda self: self.levels)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        level_id, side = data.draw(st.sampled_from(sorted(self.levels)))
        price = self.levels.pop((level_id, side))
        assert self.send("delete", [self.row(level_id, side, price, None)], None) is (
            ApplyStatus.APPLIED)

    @precondition(lambda self: self.synced)
    @rule(side=SIDES, size=SIZES)
    def update_unknown_id(self, side: str, size: int) -> None:
        status = self.send("update", [self.row(999_999_999_999, side, 1.0, size)], None)
        assert status is ApplyStatus.RESYNC
        assert not self.book.valid and not self.book.is_fresh(self.now)
        self.synced = False
        self.levels = {}

    @precondition(lambda self: not self.synced)
    @rule(size=SIZES)
    def delta_while_out_of_sync_is_dropped(self, size: int) -> None:
        assert self.book.apply("update", [self.row(1, "Buy", 1.0, size)], self.now) is DROPPED

    # ---- invariants ----------------------------------------------------------------------
    @invariant()
    def equals_reference(self) -> None:
        expected = self.reference.sides(SYMBOL)
        assert self.book.sides() == expected
        assert self.book.keys() == set(self.levels) == set(self.reference.rows.get(SYMBOL, {}))
        assert self.book.valid == self.synced == (SYMBOL in self.reference.synced)
        bids, asks = expected["Buy"], expected["Sell"]
        assert self.book.best_bid() == ((max(bids), bids[max(bids)]) if bids else None)
        assert self.book.best_ask() == ((min(asks), asks[min(asks)]) if asks else None)
        depth_bids, depth_asks = self.book.depth()
        assert [p for p, _ in depth_bids] == sorted(bids, reverse=True)
        assert [p for p, _ in depth_asks] == sorted(asks)
        assert self.book.is_fresh(self.now) == self.synced


class LegacyBookMachine(BookMachine):
    """Legacy format: update/delete rows without price, ids encode the price."""

    legacy = True


settings_ = settings(max_examples=150, stateful_step_count=40, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])
TestModernBook = BookMachine.TestCase
TestModernBook.settings = settings_
TestLegacyBook = LegacyBookMachine.TestCase
TestLegacyBook.settings = settings_


def test_applied_result_is_shared_constant() -> None:
    # The session's hot path tests `result is APPLIED`; keep that true.
    book = L2Book(SYMBOL)
    assert book.apply("partial", [], 0.0) is APPLIED
