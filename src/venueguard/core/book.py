"""Local level-2 order book of one instrument, venue-neutral: price levels and nothing else.

A book is fed two kinds of facts, each checked before it touches a level:

* a snapshot, :meth:`OrderBook.apply_snapshot` (``bids`` and ``asks`` as ``(price, size)``
  pairs): replaces the whole state and makes the book valid;
* level changes, :meth:`OrderBook.apply_changes` (``(price, size)`` pairs per side, applied in
  order; a size of 0 deletes the level, a size at an absent price creates it).

A venue's own shapes (row ids, sequence numbers, update actions) stay in its adapter under
``venueguard.venues``; the adapter turns them into these facts (and into the primitives
:meth:`OrderBook.add_level`, :meth:`OrderBook.set_size` and :meth:`OrderBook.remove_level`
when its protocol says a level must, or must not, already exist).

Every value is checked: prices finite, positive and at most ``max_price`` (and on the tick when
the book knows it); sizes positive and at most ``max_size`` (whole numbers when the instrument
trades whole contracts, ``whole_sizes``), a multiple of the lot when known. A fact that fails
returns a ``RESYNC`` result with one of the reasons in :data:`INVALID_REASONS` and the book
marks itself invalid until the next snapshot: the caller counts it as refused data
(``data.rejected``) and resyncs. An invalid book, or one not updated for ``max_age_s``, is
never fresh (:meth:`OrderBook.is_fresh`).

Typical use::

    book = OrderBook("BTCUSDT", BookConfig(max_age_s=5.0, tick=0.1, lot=0.001,
                                           whole_sizes=False))
    book.apply_snapshot([(100.0, 2.0)], [(100.1, 1.0)], now)
    result = book.apply_changes([(100.0, 0.0)], [(100.2, 3.0)], now)
    if result.needs_resync:
        ...  # fetch a new snapshot; the book stays invalid until then
    if book.is_fresh(now):
        bid, ask = book.best_bid(), book.best_ask()

Time is the caller's monotonic ``now`` in seconds; this module reads no clock.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

BUY = "Buy"
SELL = "Sell"


class ApplyStatus(Enum):
    APPLIED = "applied"
    DROPPED = "dropped"  # no snapshot yet, or waiting for a new one after a resync
    RESYNC = "resync"  # this message proves the local book is out of sync


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """Outcome of feeding a book; a RESYNC always carries its ``reason``.

    Hot paths can test ``result is APPLIED`` (results without a reason are shared constants).
    """

    status: ApplyStatus
    reason: str | None = None

    @property
    def needs_resync(self) -> bool:
        return self.reason is not None


APPLIED = ApplyResult(ApplyStatus.APPLIED)
DROPPED = ApplyResult(ApplyStatus.DROPPED)

# Resync reasons (values of ApplyResult.reason): the stream and the book disagree.
UNKNOWN_ID = "unknown_id"
DUPLICATE_ID = "duplicate_id"
DUPLICATE_PRICE = "duplicate_price"
MISSING_PRICE = "missing_price"
# Refusal reasons: the fact itself is impossible (the caller counts it as rejected data).
MALFORMED_ROW = "malformed_row"
UNKNOWN_ACTION = "unknown_action"
PRICE_MISMATCH = "price_mismatch"  # a level id named at a price other than its own
INVALID_SIDE = "invalid_side"
INVALID_ID = "invalid_id"
INVALID_PRICE = "invalid_price"
INVALID_SIZE = "invalid_size"
OFF_TICK = "off_tick"
OFF_LOT = "off_lot"
INVALID_REASONS = frozenset({
    MALFORMED_ROW, UNKNOWN_ACTION, INVALID_SIDE, INVALID_ID, INVALID_PRICE, INVALID_SIZE,
    OFF_TICK, OFF_LOT, PRICE_MISMATCH,
})
MAX_PRICE = 1e9
MAX_SIZE = 10**15
_NUMBER = (int, float)  # exact types: bool is not a price


@dataclass(frozen=True, slots=True)
class BookConfig:
    """``max_age_s``: a book not updated (or touched) for longer is stale. ``tick`` and ``lot``
    (None: unknown) and the bounds are what a level's price and size must respect;
    ``whole_sizes``: sizes are whole numbers (contracts), else any positive number on the lot."""

    max_age_s: float = 5.0
    tick: float | None = None
    lot: float | None = None
    max_price: float = MAX_PRICE
    max_size: float = MAX_SIZE
    whole_sizes: bool = True


def _off_step(value: float, step: float) -> bool:
    steps = value / step
    return abs(steps - round(steps)) > 1e-9 * max(1.0, abs(steps))


def price_problem(price: object, tick: float | None, max_price: float = MAX_PRICE
                  ) -> str | None:
    """None when ``price`` is a usable level price, else the refusal reason."""
    if type(price) is int:
        if not 0 < price <= max_price:
            return INVALID_PRICE
    elif type(price) is float:
        if not 0.0 < price <= max_price:  # also false for nan; inf exceeds the bound
            return INVALID_PRICE
    else:
        return INVALID_PRICE
    if tick is not None and _off_step(price, tick):
        return OFF_TICK
    return None


def size_problem(size: object, lot: float | None, max_size: float = MAX_SIZE, *,
                 whole: bool = True) -> str | None:
    """None when ``size`` is a usable level size, else the reason. ``whole``: a positive whole
    number (contracts); otherwise any finite positive number, on the lot when one is known."""
    if whole:
        if type(size) is not int or not 0 < size <= max_size:
            return INVALID_SIZE
        if lot is not None and lot > 1 and size % lot:
            return OFF_LOT
        return None
    if type(size) not in _NUMBER or not 0 < size <= max_size:  # type: ignore[operator]
        return INVALID_SIZE  # nan fails the comparison; inf exceeds the bound
    if lot is not None and _off_step(size, lot):  # type: ignore[arg-type]
        return OFF_LOT
    return None


class OrderBook:
    """The book of one instrument. See the module docstring for the call order."""

    __slots__ = (
        "_ask_px", "_asks", "_bid_px", "_bids", "_lot", "_max_price", "_max_size", "_tick",
        "_whole", "config", "dropped_rows", "last_row_timestamp", "last_update_now",
        "messages_applied", "partials", "resync_reason", "resyncs", "rows_applied", "symbol",
        "top_changes", "top_price_changes", "valid",
    )

    def __init__(self, symbol: str, config: BookConfig | None = None) -> None:
        self.symbol = symbol
        self.config = config = config or BookConfig()
        self._tick = config.tick
        self._lot = config.lot
        self._max_price = config.max_price
        self._max_size = config.max_size
        self._whole = config.whole_sizes
        self._bids: dict[float, Any] = {}  # price -> size
        self._asks: dict[float, Any] = {}
        self._bid_px: list[float] = []  # ascending; best bid is last
        self._ask_px: list[float] = []  # ascending; best ask is first
        self.valid = False
        self.last_update_now: float | None = None
        self.last_row_timestamp: str | int | None = None  # venue time of the last fact applied
        self.resync_reason: str | None = None
        self.messages_applied = 0
        self.rows_applied = 0
        self.dropped_rows = 0
        self.partials = 0
        self.resyncs = 0
        self.top_changes = 0  # best bid/ask price or size changed
        self.top_price_changes = 0  # best bid/ask price changed

    def set_increments(self, tick: float | None, lot: float | None) -> None:
        """The instrument's tick and lot, once known (e.g. from the venue's instrument list)."""
        if tick is not None:
            self._tick = tick
        if lot is not None:
            self._lot = lot

    # ---- feeding: venue-neutral facts ----------------------------------------------------------
    def apply_snapshot(self, bids: Iterable[Sequence[Any]], asks: Iterable[Sequence[Any]],
                       now: float, timestamp: str | int | None = None) -> ApplyResult:
        """Replace the book with an image (``[(price, size), ...]`` per side, any order).

        An image is complete, so it makes the book valid. A bad level -> RESYNC.
        """
        top_before = self._top() if self.valid else None
        self._clear()
        try:
            for is_buy, levels in ((True, bids), (False, asks)):
                book = self._bids if is_buy else self._asks
                for price, size in levels:
                    problem = (price_problem(price, self._tick, self._max_price)
                               or size_problem(size, self._lot, self._max_size,
                                               whole=self._whole))
                    if problem is not None:
                        return self.invalidate(problem)
                    if price in book:
                        return self.invalidate(DUPLICATE_PRICE)
                    book[price] = size
        except (TypeError, ValueError):
            return self.invalidate(MALFORMED_ROW)
        self._bid_px.extend(sorted(self._bids))
        self._ask_px.extend(sorted(self._asks))
        self.valid = True
        self.resync_reason = None
        self.messages_applied += 1
        self.last_update_now = now
        self.last_row_timestamp = timestamp
        top_after = self._top()
        if top_after != top_before:
            self.top_changes += 1
            if top_before is None or (top_after[0], top_after[2]) != (top_before[0], top_before[2]):
                self.top_price_changes += 1
        return APPLIED

    def apply_changes(self, bids: Sequence[Sequence[Any]], asks: Sequence[Sequence[Any]],
                      now: float, timestamp: str | int | None = None) -> ApplyResult:
        """Apply level changes (``(price, size)`` per side, in order; size 0 deletes; deleting
        an absent level changes nothing). Every change is checked before any is applied, so a
        refused message leaves no half of itself behind (the book is invalid anyway).

        Before a snapshot (or after a resync) the changes are dropped (DROPPED)."""
        if not self.valid:
            self.dropped_rows += len(bids) + len(asks)
            return DROPPED
        tick, lot, max_price, max_size, whole = (
            self._tick, self._lot, self._max_price, self._max_size, self._whole)
        try:
            for levels in (bids, asks):
                for price, size in levels:
                    # The usual level (float price and size, on the tick and lot, within
                    # bounds) passes this inline test; anything else gets the full checks.
                    if (type(price) is float and 0.0 < price <= max_price
                            and type(size) is float and 0.0 <= size <= max_size and not whole
                            and (tick is None or abs((p := price / tick) - round(p))
                                 <= 1e-9 * (p if p > 1.0 else 1.0))
                            and (lot is None or size == 0.0 or abs((q := size / lot) - round(q))
                                 <= 1e-9 * (q if q > 1.0 else 1.0))):
                        continue
                    problem = price_problem(price, tick, max_price)
                    if problem is None and (size != 0 or type(size) not in _NUMBER):
                        problem = size_problem(size, lot, max_size, whole=whole)
                    if problem is not None:
                        return self.invalidate(problem)
        except (TypeError, ValueError):
            return self.invalidate(MALFORMED_ROW)
        bid_px, ask_px, bid_book, ask_book = self._bid_px, self._ask_px, self._bids, self._asks
        # the top of the book before, inlined (this runs for every message)
        bid = bid_px[-1] if bid_px else None
        ask = ask_px[0] if ask_px else None
        bid_size, ask_size = bid_book.get(bid), ask_book.get(ask)  # type: ignore[arg-type]
        for book, prices, levels in ((bid_book, bid_px, bids), (ask_book, ask_px, asks)):
            for price, size in levels:
                if size == 0:
                    if price in book:
                        del book[price]
                        del prices[bisect_left(prices, price)]
                elif price in book:
                    book[price] = size
                else:
                    book[price] = size
                    insort(prices, price)
        if timestamp is not None:
            self.last_row_timestamp = timestamp
        self.messages_applied += 1
        self.rows_applied += len(bids) + len(asks)
        self.last_update_now = now
        new_bid = bid_px[-1] if bid_px else None
        new_ask = ask_px[0] if ask_px else None
        if new_bid != bid or new_ask != ask:
            self.top_changes += 1
            self.top_price_changes += 1
        elif (bid_book.get(new_bid) != bid_size  # type: ignore[arg-type]
              or ask_book.get(new_ask) != ask_size):  # type: ignore[arg-type]
            self.top_changes += 1
        return APPLIED

    # ---- primitives for adapters whose protocol says whether a level exists ---------------------
    def add_level(self, is_buy: bool, price: Any, size: Any) -> str | None:
        """Create the level at ``price``; None, or why not (the book is left unchanged)."""
        # The usual level passes the inline test; anything else gets the full checks.
        if not (type(size) is int and 0 < size <= self._max_size and type(price) in _NUMBER
                and 0 < price <= self._max_price and self._tick is None and self._lot is None):
            problem = (price_problem(price, self._tick, self._max_price)
                       or size_problem(size, self._lot, self._max_size, whole=self._whole))
            if problem is not None:
                return problem
        levels = self._bids if is_buy else self._asks
        if price in levels:
            return DUPLICATE_PRICE
        levels[price] = size
        insort(self._bid_px if is_buy else self._ask_px, price)
        return None

    def set_size(self, is_buy: bool, price: float, size: Any) -> str | None:
        """New size of the existing level at ``price``; None, or why not (unchanged)."""
        problem = size_problem(size, self._lot, self._max_size, whole=self._whole)
        if problem is not None:
            return problem
        (self._bids if is_buy else self._asks)[price] = size
        return None

    def remove_level(self, is_buy: bool, price: float) -> None:
        """Delete the existing level at ``price`` (KeyError when there is none)."""
        if is_buy:
            levels, prices = self._bids, self._bid_px
        else:
            levels, prices = self._asks, self._ask_px
        del levels[price]
        del prices[bisect_left(prices, price)]

    def size_at(self, is_buy: bool, price: float) -> Any:
        """Size of the level at ``price``, or None."""
        return (self._bids if is_buy else self._asks).get(price)

    def _top(self) -> tuple[float | None, Any, float | None, Any]:
        bid_px, ask_px = self._bid_px, self._ask_px
        bid = bid_px[-1] if bid_px else None
        ask = ask_px[0] if ask_px else None
        return (bid, self._bids[bid] if bid is not None else None,
                ask, self._asks[ask] if ask is not None else None)

    def _clear(self) -> None:
        self._bids.clear()
        self._asks.clear()
        self._bid_px.clear()
        self._ask_px.clear()

    def invalidate(self, reason: str) -> ApplyResult:
        """Mark the book out of sync (e.g. on a gap) until the next snapshot; returns RESYNC."""
        self.valid = False
        self.resync_reason = reason
        self.resyncs += 1
        self._clear()
        return ApplyResult(ApplyStatus.RESYNC, reason)

    def touch(self, now: float) -> None:
        """Record that the stream carrying this book is known current at ``now`` (for example a
        later message on the same ordered connection arrived), so a quiet book stays fresh."""
        if self.valid:
            self.last_update_now = now

    # ---- freshness ---------------------------------------------------------------------------
    def age_s(self, now: float) -> float:
        """Seconds since the last applied update (or touch); ``inf`` when never updated."""
        if self.last_update_now is None:
            return float("inf")
        return max(0.0, now - self.last_update_now)

    def is_fresh(self, now: float) -> bool:
        """Valid (synced since the last snapshot) and updated within ``config.max_age_s``."""
        return self.valid and self.age_s(now) <= self.config.max_age_s

    # ---- reading -----------------------------------------------------------------------------
    def best_bid(self) -> tuple[float, float] | None:
        """(price, size) of the best bid, or None."""
        if not self._bid_px:
            return None
        price = self._bid_px[-1]
        return price, self._bids[price]

    def best_ask(self) -> tuple[float, float] | None:
        """(price, size) of the best ask, or None."""
        if not self._ask_px:
            return None
        price = self._ask_px[0]
        return price, self._asks[price]

    def mid(self) -> float | None:
        if not self._bid_px or not self._ask_px:
            return None
        return (self._bid_px[-1] + self._ask_px[0]) / 2.0

    def spread(self) -> float | None:
        """Best ask minus best bid (negative when crossed), or None when a side is empty."""
        if not self._bid_px or not self._ask_px:
            return None
        return self._ask_px[0] - self._bid_px[-1]

    def depth(self, levels: int | None = None
              ) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """(bids best-first i.e. descending, asks best-first i.e. ascending), ``levels`` each."""
        bid_px = self._bid_px if levels is None else self._bid_px[-levels:] if levels > 0 else []
        ask_px = self._ask_px if levels is None else self._ask_px[:levels]
        bids, asks = self._bids, self._asks
        return ([(p, bids[p]) for p in reversed(bid_px)], [(p, asks[p]) for p in ask_px])

    def imbalance(self, levels: int = 5) -> float | None:
        """(bid size - ask size) / (bid size + ask size) over the top ``levels``; None if empty."""
        bids, asks = self.depth(levels)
        bid_qty = sum(s for _, s in bids)
        ask_qty = sum(s for _, s in asks)
        total = bid_qty + ask_qty
        return None if total <= 0 else (bid_qty - ask_qty) / total

    def sides(self) -> dict[str, dict[float, float]]:
        """``{"Buy": {price: size}, "Sell": {price: size}}`` (copies)."""
        return {BUY: dict(self._bids), SELL: dict(self._asks)}

    def __len__(self) -> int:
        return len(self._bids) + len(self._asks)
