"""Local level-2 order book, fed BitMEX ``orderBookL2`` / ``orderBookL2_25`` rows.

Call order per symbol: ``apply("partial", rows, now)`` first (rows arriving earlier are dropped
and counted), then ``apply("insert" | "update" | "delete", rows, now)`` for every delta, in
order. A later partial replaces the whole state. Both row formats are handled:

* modern: ``price`` on every row, ids arbitrary;
* legacy: update/delete rows carry no ``price``; the book remembers ``id -> price`` from the
  partial and inserts (and can derive a missing insert price from the id with :class:`LegacyIds`).

A level's price never changes under its id: an update or delete naming a known id at another
price is impossible and refused (``price_mismatch``). A delta that cannot belong to the book
(update/delete of an unknown id, insert of an existing id, a malformed row) returns a
``RESYNC`` result instead of raising: the book marks itself invalid until the next partial and
the caller should resubscribe.

Every value is checked before it touches the book: ids are integers in the int64 range, sides
``Buy``/``Sell``, prices finite, positive and at most ``max_price`` (and on the tick when the
book knows it), sizes positive integers (BitMEX sizes are whole contracts) of at most
``max_size`` (and a multiple of the lot when known). A size of zero is never a level: only
``delete`` removes one.
A row that fails returns RESYNC with one of the reasons in :data:`INVALID_REASONS`; the caller
counts those as refused data (``data.rejected``), not as a gap. An invalid book, or one not
updated for ``max_age_s``, is never fresh (:meth:`OrderBook.is_fresh`).

``orderBook10`` snapshots (full top 10 each time) go through :meth:`OrderBook.apply_top`.
Rows of ``GET /orderBook/L2`` have the partial's shape and can be applied as one.

Typical use with decoded messages (``venueguard.venues.bitmex.messages``)::

    books = BookSet(BookConfig(max_age_s=5.0))
    for symbol, result in books.apply(msg.action, msg.data, now, msg.filter):
        if result.needs_resync:
            ...  # resubscribe the topic; the book stays invalid until the next partial
    book = books.books["XBTUSD"]
    if book.is_fresh(now):
        bid, ask = book.best_bid(), book.best_ask()

Time is the caller's monotonic ``now`` in seconds; this module reads no clock.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

BUY = "Buy"
SELL = "Sell"


class ApplyStatus(Enum):
    APPLIED = "applied"
    DROPPED = "dropped"  # no partial yet, or waiting for a new one after a resync
    RESYNC = "resync"  # this message proves the local book is out of sync


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """Outcome of one :meth:`OrderBook.apply`; a RESYNC always carries its ``reason``.

    Hot paths can test ``result is APPLIED`` (results without a reason are shared constants).
    """

    status: ApplyStatus
    reason: str | None = None

    @property
    def needs_resync(self) -> bool:
        return self.reason is not None


APPLIED = ApplyResult(ApplyStatus.APPLIED)
DROPPED = ApplyResult(ApplyStatus.DROPPED)

# Resync reasons (values of ApplyResult.reason).
UNKNOWN_ID = "unknown_id"
DUPLICATE_ID = "duplicate_id"
DUPLICATE_PRICE = "duplicate_price"
MISSING_PRICE = "missing_price"
MALFORMED_ROW = "malformed_row"
UNKNOWN_ACTION = "unknown_action"
# Refusal reasons: the row itself is impossible (the caller counts it as rejected data).
PRICE_MISMATCH = "price_mismatch"  # an update or delete naming a known id at another price
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
# Level ids are int64 on the wire (the venue's schema); a value outside cannot name a level.
MIN_ID = -(2**63)
MAX_ID = 2**63 - 1
MAX_PRICE = 1e9
MAX_SIZE = 10**15
_NUMBER = (int, float)  # exact types: bool is not a price


@dataclass(frozen=True, slots=True)
class LegacyIds:
    """Legacy id scheme of one instrument: ``id = 100_000_000 * index - price / tick``."""

    index: int
    tick: float

    def _per_unit(self) -> int | None:
        inverse = 1.0 / self.tick
        rounded = round(inverse)
        return rounded if rounded >= 1 and abs(inverse - rounded) < 1e-9 else None

    def price(self, level_id: int) -> float:
        """Price encoded in ``level_id`` (exactly the float BitMEX would print)."""
        steps = self.index * 100_000_000 - level_id
        per_unit = self._per_unit()
        return steps / per_unit if per_unit else float(steps * self.tick)

    def level_id(self, price: float) -> int:
        """Id of the level at ``price``."""
        per_unit = self._per_unit()
        steps = round(price * per_unit) if per_unit else round(price / self.tick)
        return int(self.index * 100_000_000 - steps)


@dataclass(frozen=True, slots=True)
class Increments:
    """An instrument's price tick and size lot (``tickSize`` / ``lotSize``)."""

    tick: float | None = None
    lot: int | None = None


@dataclass(frozen=True, slots=True)
class BookConfig:
    """``max_age_s``: a book not updated (or touched) for longer is stale. ``tick`` and ``lot``
    (None: unknown) and the bounds are what a row's price and size must respect."""

    max_age_s: float = 5.0
    legacy: LegacyIds | None = None
    tick: float | None = None
    lot: int | None = None
    max_price: float = MAX_PRICE
    max_size: int = MAX_SIZE


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
    if tick is not None:
        steps = price / tick
        if abs(steps - round(steps)) > 1e-9 * max(1.0, abs(steps)):
            return OFF_TICK
    return None


def size_problem(size: object, lot: int | None, max_size: int = MAX_SIZE) -> str | None:
    """None when ``size`` is a usable level size (a positive whole number), else the reason."""
    if type(size) is not int or not 0 < size <= max_size:
        return INVALID_SIZE
    if lot is not None and lot > 1 and size % lot:
        return OFF_LOT
    return None


class OrderBook:
    """The book of one symbol. See the module docstring for the call order."""

    __slots__ = (
        "_ask_ids", "_ask_px", "_asks", "_bid_ids", "_bid_px", "_bids", "_lot", "_max_price",
        "_max_size", "_tick", "config", "dropped_rows",
        "last_row_timestamp", "last_update_now", "messages_applied", "partials",
        "resync_reason", "resyncs", "rows_applied", "symbol", "top_changes",
        "top_price_changes", "valid",
    )

    def __init__(self, symbol: str, config: BookConfig | None = None) -> None:
        self.symbol = symbol
        self.config = config = config or BookConfig()
        self._tick = config.tick if config.tick is not None else (
            config.legacy.tick if config.legacy is not None else None)
        self._lot = config.lot
        self._max_price = config.max_price
        self._max_size = config.max_size
        self._bids: dict[float, Any] = {}  # price -> size
        self._asks: dict[float, Any] = {}
        self._bid_px: list[float] = []  # ascending; best bid is last
        self._ask_px: list[float] = []  # ascending; best ask is first
        self._bid_ids: dict[int, float] = {}  # level id -> price
        self._ask_ids: dict[int, float] = {}
        self.valid = False
        self.last_update_now: float | None = None
        self.last_row_timestamp: str | None = None  # venue "timestamp" of the last row applied
        self.resync_reason: str | None = None
        self.messages_applied = 0
        self.rows_applied = 0
        self.dropped_rows = 0
        self.partials = 0
        self.resyncs = 0
        self.top_changes = 0  # best bid/ask price or size changed
        self.top_price_changes = 0  # best bid/ask price changed

    def set_increments(self, tick: float | None, lot: int | None) -> None:
        """The instrument's tick and lot, once known (e.g. from the ``instrument`` table)."""
        if tick is not None:
            self._tick = tick
        if lot is not None:
            self._lot = lot

    # ---- feeding -----------------------------------------------------------------------------
    def apply(self, action: str, rows: Sequence[Mapping[str, Any]], now: float) -> ApplyResult:
        """Apply one message's rows (all for this symbol). Never raises on bad rows."""
        if len(rows) == 1 and action == "update" and self.valid and type(rows[0]) is dict:
            applied = self._update_size(rows[0], now)
            if applied is not None:
                return applied
        if action == "partial":
            return self._partial(rows, now)
        if not self.valid:
            self.dropped_rows += len(rows)
            return DROPPED
        bid_px, ask_px, bids, asks = self._bid_px, self._ask_px, self._bids, self._asks
        # Top of book before, inlined: this runs for every message.
        bid = bid_px[-1] if bid_px else None
        ask = ask_px[0] if ask_px else None
        bid_size, ask_size = bids.get(bid), asks.get(ask)  # type: ignore[arg-type]
        try:
            if action == "update":
                reason = self._update(rows)
            elif action == "insert":
                reason = self._insert(rows)
            elif action == "delete":
                reason = self._delete(rows)
            else:
                reason = UNKNOWN_ACTION
        except (KeyError, TypeError, ValueError, AttributeError):
            reason = MALFORMED_ROW
        if reason is not None:
            return self.invalidate(reason)
        if rows:
            self.last_row_timestamp = rows[-1].get("timestamp", self.last_row_timestamp)
        self.messages_applied += 1
        self.rows_applied += len(rows)
        self.last_update_now = now
        new_bid = bid_px[-1] if bid_px else None
        new_ask = ask_px[0] if ask_px else None
        if new_bid != bid or new_ask != ask:
            self.top_changes += 1
            self.top_price_changes += 1
        elif bids.get(new_bid) != bid_size or asks.get(new_ask) != ask_size:  # type: ignore[arg-type]
            self.top_changes += 1
        return APPLIED

    def _update_size(self, row: Mapping[str, Any], now: float) -> ApplyResult | None:
        """The usual delta, one level's new size, applied in place; None (nothing changed) when
        anything about the row is unusual, so that :meth:`apply` takes its general path.

        Same outcome as the general path: with one row and no price move, the top of the book
        changes exactly when the row is a best level and its size differs.
        """
        side = row.get("side")
        if side == BUY:
            ids, levels, prices = self._bid_ids, self._bids, self._bid_px
            best = prices[-1] if prices else None
        elif side == SELL:
            ids, levels, prices = self._ask_ids, self._asks, self._ask_px
            best = prices[0] if prices else None
        else:
            return None
        level_id = row.get("id")
        if type(level_id) is not int:  # 5.0 or True would find the level of id 5 or 1
            return None
        price = ids.get(level_id)
        size = row.get("size")
        if (price is None or type(size) is not int or not 0 < size <= self._max_size
                or (self._lot is not None and size % self._lot)):
            return None
        named = row.get("price")
        if named is not None and named != price:
            return None  # impossible: the general path refuses it
        if price == best and levels[price] != size:
            self.top_changes += 1
        levels[price] = size
        self.last_row_timestamp = row.get("timestamp", self.last_row_timestamp)
        self.messages_applied += 1
        self.rows_applied += 1
        self.last_update_now = now
        return APPLIED

    def _top(self) -> tuple[float | None, Any, float | None, Any]:
        bid_px, ask_px = self._bid_px, self._ask_px
        bid = bid_px[-1] if bid_px else None
        ask = ask_px[0] if ask_px else None
        return (bid, self._bids[bid] if bid is not None else None,
                ask, self._asks[ask] if ask is not None else None)

    def _update(self, rows: Sequence[Mapping[str, Any]]) -> str | None:
        bid_ids, bids, ask_ids, asks = self._bid_ids, self._bids, self._ask_ids, self._asks
        for row in rows:
            # Rows are keyed by (id, side) as BitMEX's "keys" say.
            side = row["side"]
            if side == BUY:
                ids, levels = bid_ids, bids
            elif side == SELL:
                ids, levels = ask_ids, asks
            else:
                return INVALID_SIDE
            level_id = row["id"]
            if type(level_id) is not int or not MIN_ID <= level_id <= MAX_ID:
                return INVALID_ID
            price = ids.get(level_id)
            if price is None:
                return UNKNOWN_ID
            size = row.get("size")
            if size is not None:
                problem = size_problem(size, self._lot, self._max_size)
                if problem is not None:
                    return problem
            named = row.get("price")
            if named is not None and named != price:
                # A level's price never changes under its id: the row is impossible.
                problem = price_problem(named, None, self._max_price)
                return problem if problem is not None else PRICE_MISMATCH
            if size is not None:
                levels[price] = size
        return None

    def _insert(self, rows: Sequence[Mapping[str, Any]]) -> str | None:
        legacy = self.config.legacy
        for row in rows:
            side = row["side"]
            is_buy = side == BUY
            if not is_buy and side != SELL:
                return INVALID_SIDE
            level_id = row["id"]
            if type(level_id) is not int or not MIN_ID <= level_id <= MAX_ID:
                return INVALID_ID
            if level_id in (self._bid_ids if is_buy else self._ask_ids):
                return DUPLICATE_ID
            price = row.get("price")
            if price is None:
                if legacy is None:
                    return MISSING_PRICE
                price = legacy.price(level_id)
            reason = self._add_level(is_buy, level_id, price, row.get("size"))
            if reason is not None:
                return reason
        return None

    def _delete(self, rows: Sequence[Mapping[str, Any]]) -> str | None:
        for row in rows:
            side = row["side"]
            if side == BUY:
                is_buy = True
            elif side == SELL:
                is_buy = False
            else:
                return INVALID_SIDE
            level_id = row["id"]
            if type(level_id) is not int or not MIN_ID <= level_id <= MAX_ID:
                return INVALID_ID
            price = (self._bid_ids if is_buy else self._ask_ids).get(level_id)
            if price is None:
                return UNKNOWN_ID
            named = row.get("price")
            if named is not None and named != price:
                problem = price_problem(named, None, self._max_price)
                return problem if problem is not None else PRICE_MISMATCH
            self._remove_level(is_buy, level_id, price)
        return None

    def _add_level(self, is_buy: bool, level_id: int, price: Any, size: Any) -> str | None:
        # The usual row passes the inline test; anything else gets the full checks.
        if not (type(size) is int and 0 < size <= self._max_size and type(price) in _NUMBER
                and 0 < price <= self._max_price and self._tick is None and self._lot is None):
            problem = (price_problem(price, self._tick, self._max_price)
                       or size_problem(size, self._lot, self._max_size))
            if problem is not None:
                return problem
        levels = self._bids if is_buy else self._asks
        if price in levels:
            return DUPLICATE_PRICE
        levels[price] = size
        insort(self._bid_px if is_buy else self._ask_px, price)
        (self._bid_ids if is_buy else self._ask_ids)[level_id] = price
        return None

    def _remove_level(self, is_buy: bool, level_id: int, price: float) -> None:
        if is_buy:
            levels, prices, ids = self._bids, self._bid_px, self._bid_ids
        else:
            levels, prices, ids = self._asks, self._ask_px, self._ask_ids
        del levels[price]
        del prices[bisect_left(prices, price)]
        del ids[level_id]

    def _clear(self) -> None:
        self._bids.clear()
        self._asks.clear()
        self._bid_px.clear()
        self._ask_px.clear()
        self._bid_ids.clear()
        self._ask_ids.clear()

    def _partial(self, rows: Sequence[Mapping[str, Any]], now: float) -> ApplyResult:
        self._clear()
        self.valid = True
        self.resync_reason = None
        self.partials += 1
        self.last_update_now = now
        self.last_row_timestamp = None
        try:
            reason = self._insert(rows)
        except (KeyError, TypeError, ValueError, AttributeError):
            reason = MALFORMED_ROW
        if reason is not None:
            return self.invalidate(reason)
        if rows:
            self.last_row_timestamp = rows[-1].get("timestamp")
        self.messages_applied += 1
        self.rows_applied += len(rows)
        self.top_changes += 1
        self.top_price_changes += 1
        return APPLIED

    def apply_top(self, bids: Iterable[Sequence[Any]], asks: Iterable[Sequence[Any]],
                  now: float, timestamp: str | None = None) -> ApplyResult:
        """Replace the book with an ``orderBook10`` image (``[[price, size], ...]`` per side).

        Each image is complete, so no partial is needed first. Malformed levels -> RESYNC.
        """
        top_before = self._top() if self.valid else None
        self._clear()
        try:
            for is_buy, levels in ((True, bids), (False, asks)):
                for price, size in levels:
                    problem = (price_problem(price, self._tick, self._max_price)
                               or size_problem(size, self._lot, self._max_size))
                    if problem is not None:
                        return self.invalidate(problem)
                    book = self._bids if is_buy else self._asks
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

    def invalidate(self, reason: str) -> ApplyResult:
        """Mark the book out of sync (e.g. on a gap) until the next partial; returns RESYNC."""
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
        """Valid (synced since the last partial) and updated within ``config.max_age_s``."""
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

    def keys(self) -> set[tuple[int, str]]:
        """The (id, side) keys of every level held."""
        return {(i, BUY) for i in self._bid_ids} | {(i, SELL) for i in self._ask_ids}

    def __len__(self) -> int:
        return len(self._bids) + len(self._asks)

    def __contains__(self, level_id: object) -> bool:
        """True when a level with this id exists on either side."""
        return level_id in self._bid_ids or level_id in self._ask_ids


class BookSet:
    """The books of one L2 table, one :class:`OrderBook` per symbol.

    Feed each decoded data message with :meth:`apply` (pass a partial's ``filter``); rows may
    mix symbols (a subscription without a symbol).
    """

    def __init__(self, config: BookConfig | None = None,
                 legacy: Mapping[str, LegacyIds] | None = None,
                 increments: Mapping[str, Increments] | None = None) -> None:
        self.config = config or BookConfig()
        self.legacy = dict(legacy or {})
        self.increments = dict(increments or {})
        self.books: dict[str, OrderBook] = {}

    def book(self, symbol: str) -> OrderBook:
        """The book of ``symbol``, created (invalid, awaiting a partial) on first use."""
        book = self.books.get(symbol)
        if book is None:
            config = self.config
            legacy = self.legacy.get(symbol)
            known = self.increments.get(symbol)
            if legacy is not None or known is not None:
                config = replace(config, legacy=legacy or config.legacy,
                                 tick=known.tick if known is not None else config.tick,
                                 lot=known.lot if known is not None else config.lot)
            book = self.books[symbol] = OrderBook(symbol, config)
        return book

    def set_increments(self, symbol: str, tick: float | None, lot: int | None) -> None:
        """Record ``symbol``'s tick and lot (None: unchanged) for its book, now and later."""
        known = self.increments.get(symbol) or Increments()
        self.increments[symbol] = Increments(tick if tick is not None else known.tick,
                                             lot if lot is not None else known.lot)
        book = self.books.get(symbol)
        if book is not None:
            book.set_increments(tick, lot)

    def apply(self, action: str, rows: Sequence[Mapping[str, Any]], now: float,
              partial_filter: Mapping[str, Any] | None = None) -> list[tuple[str, ApplyResult]]:
        """Apply one message; returns (symbol, result) per symbol touched.

        ``partial_filter`` is the partial's ``filter``: with a ``symbol`` only that book is
        replaced; present without one (``{}``) the partial is an image of every symbol, so books
        it does not mention become empty; absent (None), only the symbols in the rows are
        replaced. A row without a non-empty string ``symbol`` (missing, null, empty, a number)
        gives RESYNC (``malformed_row``) under the symbol ``""``: the message is refused whole.
        """
        if len(rows) == 1 and action != "partial":  # the usual message: one row
            symbol = rows[0].get("symbol") if type(rows[0]) is dict else None
            if type(symbol) is str and symbol:
                book = self.books.get(symbol) or self.book(symbol)
                return [(symbol, book.apply(action, rows, now))]
        groups: dict[str, Sequence[Mapping[str, Any]]] = {}
        lists: dict[str, list[Mapping[str, Any]]] = {}
        try:
            for row in rows:
                symbol = row["symbol"]
                if type(symbol) is not str or not symbol:
                    raise TypeError
                group = lists.get(symbol)
                if group is None:
                    lists[symbol] = [row]
                else:
                    group.append(row)
        except (KeyError, TypeError, AttributeError):
            return [("", ApplyResult(ApplyStatus.RESYNC, MALFORMED_ROW))]
        groups.update(lists)
        if action == "partial" and partial_filter is not None:
            only = partial_filter.get("symbol")
            if type(only) is str:
                groups = {only: groups.get(only, ())}
            else:
                for symbol in self.books:
                    groups.setdefault(symbol, ())
        return [(symbol, self.book(symbol).apply(action, group, now))
                for symbol, group in groups.items()]

    def apply_top(self, rows: Sequence[Mapping[str, Any]], now: float
                  ) -> list[tuple[str, ApplyResult]]:
        """Apply ``orderBook10`` rows (``{symbol, bids, asks, timestamp}``)."""
        results = []
        for row in rows:
            symbol = row.get("symbol")
            if type(symbol) is not str or not symbol:
                results.append(("", ApplyResult(ApplyStatus.RESYNC, MALFORMED_ROW)))
                continue
            bids, asks = row.get("bids"), row.get("asks")  # a side missing is malformed
            if not isinstance(bids, list) or not isinstance(asks, list):
                results.append((symbol, self.book(symbol).invalidate(MALFORMED_ROW)))
                continue
            results.append((symbol, self.book(symbol).apply_top(bids, asks, now,
                                                                row.get("timestamp"))))
        return results

    def invalidate_all(self, reason: str) -> None:
        """Mark every book out of sync (e.g. the connection dropped)."""
        for book in self.books.values():
            book.invalidate(reason)
