"""BitMEX ``orderBookL2`` / ``orderBookL2_25`` rows onto the venue-neutral book.

:class:`L2Book` is one symbol's :class:`~venueguard.core.book.OrderBook` fed BitMEX rows. Call
order: ``apply("partial", rows, now)`` first (rows arriving earlier are dropped and counted),
then ``apply("insert" | "update" | "delete", rows, now)`` for every delta, in order. A later
partial replaces the whole state. Both row formats are handled:

* modern: ``price`` on every row, ids arbitrary;
* legacy: update/delete rows carry no ``price``; the book remembers ``id -> price`` from the
  partial and inserts (and can derive a missing insert price from the id with :class:`LegacyIds`).

Rows are keyed by ``(id, side)``; this module keeps the ``id -> price`` map and turns each row
into a level change of the neutral book. A level's price never changes under its id: an update
or delete naming a known id at another price is impossible and refused (``price_mismatch``).
A delta that cannot belong to the book (update/delete of an unknown id, insert of an existing
id or at an existing price, a malformed row) returns a ``RESYNC`` result instead of raising:
the book marks itself invalid until the next partial and the caller should resubscribe.

Every value is checked before it touches the book: ids are integers in the int64 range (the
venue's schema), sides ``Buy``/``Sell``, prices as the neutral book checks them, sizes positive
whole contracts. A size of zero is never a level: only ``delete`` removes one. A row that fails
returns RESYNC with one of the reasons in :data:`~venueguard.core.book.INVALID_REASONS`; the
caller counts those as refused data (``data.rejected``), not as a gap.

``orderBook10`` images (full top 10 each time) go through :meth:`BookSet.apply_top`. Rows of
``GET /orderBook/L2`` have the partial's shape and can be applied as one.

Typical use with decoded messages (``venueguard.venues.bitmex.messages``)::

    books = BookSet(BookConfig(max_age_s=5.0))
    for symbol, result in books.apply(msg.action, msg.data, now, msg.filter):
        if result.needs_resync:
            ...  # resubscribe the topic; the book stays invalid until the next partial
    book = books.books["XBTUSD"]
    if book.is_fresh(now):
        bid, ask = book.best_bid(), book.best_ask()
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from venueguard.core.book import (
    APPLIED,
    BUY,
    DROPPED,
    DUPLICATE_ID,
    INVALID_ID,
    INVALID_SIDE,
    MALFORMED_ROW,
    MISSING_PRICE,
    PRICE_MISMATCH,
    SELL,
    UNKNOWN_ACTION,
    UNKNOWN_ID,
    ApplyResult,
    ApplyStatus,
    BookConfig,
    OrderBook,
    price_problem,
    size_problem,
)

__all__ = ["MAX_ID", "MIN_ID", "BookSet", "Increments", "L2Book", "LegacyIds"]

# Level ids are int64 on the wire (the venue's schema); a value outside cannot name a level.
MIN_ID = -(2**63)
MAX_ID = 2**63 - 1


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


class L2Book(OrderBook):
    """One symbol's book fed BitMEX L2 rows. See the module docstring for the call order."""

    __slots__ = ("_ask_ids", "_bid_ids", "legacy")

    def __init__(self, symbol: str, config: BookConfig | None = None,
                 legacy: LegacyIds | None = None) -> None:
        config = config or BookConfig()
        if config.tick is None and legacy is not None:
            config = replace(config, tick=legacy.tick)
        super().__init__(symbol, config)
        self.legacy = legacy
        self._bid_ids: dict[int, float] = {}  # level id -> price
        self._ask_ids: dict[int, float] = {}

    def apply(self, action: str, rows: Sequence[Mapping[str, Any]], now: float) -> ApplyResult:
        """Apply one message's rows (all for this symbol). Never raises on bad rows."""
        if len(rows) == 1 and self.valid and type(rows[0]) is dict:
            row = rows[0]
            level_id = row.get("id")
            # 5.0 or True would find the level of id 5 or 1; an int beyond int64 names no level
            if type(level_id) is int and MIN_ID <= level_id <= MAX_ID:
                applied = self.apply_one(action, row.get("side"), level_id, row.get("size"),
                                         row.get("price"),
                                         row.get("timestamp", self.last_row_timestamp), now)
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

    def apply_one(self, action: str, side: object, level_id: int, size: object,
                  price: object, timestamp: str | int | None, now: float) -> ApplyResult | None:
        """The usual message, one row of a valid book (an invalid one holds no id, so nothing
        is applied to it), given by its fields: ``level_id`` an
        ``int`` within int64 (the caller checks: a typed decoder already has), ``size`` and
        ``price`` None when the row has none, ``timestamp`` what the book records as its last
        row time. Applied when every check passes; None, with nothing changed, when anything
        about it is unusual: :meth:`apply` then takes the general path, which decides (and
        counts) what is wrong.

        Same outcome as the general path: with one row, the top of the book changes price
        exactly when the row's level is, or becomes, a best one (size only: when an update
        gives a best level another size).
        """
        if side == BUY:
            is_buy, ids = True, self._bid_ids
        elif side == SELL:
            is_buy, ids = False, self._ask_ids
        else:
            return None
        if action == "update":
            known = ids.get(level_id)
            if (known is None or type(size) is not int or not 0 < size <= self._max_size
                    or (self._lot is not None and size % self._lot)
                    or (price is not None and price != known)):
                return None
            if is_buy:
                levels = self._bids
                if levels[known] != size and known == self._bid_px[-1]:
                    self.top_changes += 1
            else:
                levels = self._asks
                if levels[known] != size and known == self._ask_px[0]:
                    self.top_changes += 1
            levels[known] = size
        elif action == "delete":
            known = ids.get(level_id)
            if known is None or (price is not None and price != known):
                return None
            if known == (self._bid_px[-1] if is_buy else self._ask_px[0]):
                self.top_changes += 1
                self.top_price_changes += 1
            self._remove_row_level(is_buy, level_id, known)
        elif action == "insert":
            if level_id in ids or not self.valid:
                return None
            if price is None:
                if self.legacy is None:
                    return None
                price = self.legacy.price(level_id)
            if self.add_level(is_buy, price, size) is not None:
                return None
            ids[level_id] = price  # type: ignore[assignment]
            if price == (self._bid_px[-1] if is_buy else self._ask_px[0]):
                self.top_changes += 1
                self.top_price_changes += 1
        else:
            return None
        self.last_row_timestamp = timestamp
        self.messages_applied += 1
        self.rows_applied += 1
        self.last_update_now = now
        return APPLIED

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
        legacy = self.legacy
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
            reason = self._add_row_level(is_buy, level_id, price, row.get("size"))
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
            self._remove_row_level(is_buy, level_id, price)
        return None

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


    def _add_row_level(self, is_buy: bool, level_id: int, price: Any, size: Any) -> str | None:
        reason = self.add_level(is_buy, price, size)
        if reason is None:
            (self._bid_ids if is_buy else self._ask_ids)[level_id] = price
        return reason

    def _remove_row_level(self, is_buy: bool, level_id: int, price: float) -> None:
        self.remove_level(is_buy, price)
        del (self._bid_ids if is_buy else self._ask_ids)[level_id]

    def _clear(self) -> None:
        super()._clear()
        self._bid_ids.clear()
        self._ask_ids.clear()

    def keys(self) -> set[tuple[int, str]]:
        """The (id, side) keys of every level held."""
        return {(i, BUY) for i in self._bid_ids} | {(i, SELL) for i in self._ask_ids}

    def __contains__(self, level_id: object) -> bool:
        """True when a level with this id exists on either side."""
        return level_id in self._bid_ids or level_id in self._ask_ids


class BookSet:
    """The books of one L2 table, one :class:`L2Book` per symbol.

    Feed each decoded data message with :meth:`apply` (pass a partial's ``filter``); rows may
    mix symbols (a subscription without a symbol).
    """

    def __init__(self, config: BookConfig | None = None,
                 legacy: Mapping[str, LegacyIds] | None = None,
                 increments: Mapping[str, Increments] | None = None) -> None:
        self.config = config or BookConfig()
        self.legacy = dict(legacy or {})
        self.increments = dict(increments or {})
        self.books: dict[str, L2Book] = {}

    def book(self, symbol: str) -> L2Book:
        """The book of ``symbol``, created (invalid, awaiting a partial) on first use."""
        book = self.books.get(symbol)
        if book is None:
            config = self.config
            known = self.increments.get(symbol)
            if known is not None:
                config = replace(config, tick=known.tick, lot=known.lot)
            book = self.books[symbol] = L2Book(symbol, config, self.legacy.get(symbol))
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
            results.append((symbol, self.book(symbol).apply_snapshot(bids, asks, now,
                                                                     row.get("timestamp"))))
        return results

    def invalidate_all(self, reason: str) -> None:
        """Mark every book out of sync (e.g. the connection dropped)."""
        for book in self.books.values():
            book.invalidate(reason)
