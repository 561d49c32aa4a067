"""The market-data pipeline of one session: frame -> decode -> checks -> book / trades / consumers.

Synchronous and clock-free: the session passes ``now`` (monotonic s) and ``wall_ms`` with each
frame. Books and trade tapes live for the whole session; the :class:`Liveness` object (heartbeat,
freshness, timestamp and ordering checks) is per connection and replaced by :meth:`MdState.begin`;
the learned freshness of each channel (``MdState.freshness``) lives for the whole session.

Call order (driven by :mod:`venueguard.io.ws_session`)::

    state = MdState(config, sink)
    state.begin(now)                 # on every (re)connect, before the first frame
    state.expect(topics)             # the topics about to be subscribed
    state.on_frame(payload, now, wall_ms)    # every text frame, in order
    state.take_control()             # acks / error frames / welcome for the session to handle
    state.resync_reason              # set when a book proved out of sync: reconnect and resync

Rules: a data message that fails a check (stale, future, reorder, duplicate) is counted, logged
(``data.rejected``) and dropped; so is one that is impossible on its face (not decodable, an
unknown action, a missing or unparseable server ``timestamp`` on a table that carries one, a
price or size that is not finite and positive or off the instrument's tick or lot, an id of the
wrong type: see :mod:`venueguard.venues.bitmex.book`). A duplicate is a frame whose hash is that
of one of the last ``duplicate_memory`` of its channel and timestamp (a frame's bytes are not
kept: holding thousands of frames alive costs more than hashing each). Tables documented to
carry no timestamp (``MdStateConfig.untimed_tables``) are checked by arrival order only. Any
refusal of data that belonged to a book (and was not a duplicate) invalidates the book and
requests a resync, because the book would otherwise miss that change. For book
tables even a reorder inside the liveness window counts as a reorder: deltas applied out of
order leave wrong sizes behind. A partial is checked by its newest row only (stale or future:
rejected, and the session resyncs), never for order or duplicates; it replaces the book.
BitMEX has no sequence numbers, so a dropped delta shows up only through its consequences: a
later delta for an unknown id (or an insert of an existing one), or a delta that crosses a book
whose partial was not crossed; each invalidates the book (``book.gap``) and requests a resync.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from venueguard.core.book import (
    APPLIED,
    INVALID_REASONS,
    MALFORMED_ROW,
    BookConfig,
    price_problem,
    size_problem,
)
from venueguard.core.freshness import FreshnessModels
from venueguard.core.liveness import Liveness, LivenessConfig, Verdict
from venueguard.core.trades import TapeConfig, TradeTape
from venueguard.io.md_base import MdCounters, MdSink, MdStateBase
from venueguard.io.md_events import BookResynced, TableData, TopOfBook
from venueguard.venues.bitmex.book import BookSet, Increments, L2Book, LegacyIds
from venueguard.venues.bitmex.messages import (
    BOOK_PREFIX,
    DELTA_ERRORS,
    Action,
    MessageError,
    Pong,
    TableMessage,
    book_delta_decoder,
    decode,
)
from venueguard.venues.bitmex.reports import trade_reports
from venueguard.venues.bitmex.timefmt import parse_ms_or_none
from venueguard.venues.bitmex.topics import BOOK_L2_TABLES

__all__ = ["UNTIMED_TABLES", "MdCounters", "MdSink", "MdState", "MdStateConfig"]

_PARTIAL = Action.PARTIAL
_loads = orjson.loads
_BOOK_PREFIX = BOOK_PREFIX
_decode_delta = book_delta_decoder.decode
_DELTA_ERRORS = DELTA_ERRORS
_OK = Verdict.OK
_MINOR_REORDER = Verdict.MINOR_REORDER
_REORDER = Verdict.REORDER
CROSSED_BOOK = "crossed_book"
MISSING_TIMESTAMP = "missing_timestamp"
BAD_TIMESTAMP = "bad_timestamp"
# BitMEX tables whose rows may carry no ``timestamp``: liquidations; chat, announcements and the
# like (a ``date`` instead); and the private account tables, whose sparse updates may omit it
# (they are not market data and feed no book). Without one their order is the order of
# arrival; a timestamp they do carry is still checked.
UNTIMED_TABLES = frozenset({
    "liquidation", "connected", "chat", "announcement", "publicNotifications",
    "privateNotifications", "order", "execution", "position", "margin", "wallet", "transact",
})

# Market tables whose every row names its instrument: a row without a non-empty ``symbol`` is
# refused with its message (counted), never dropped unseen.
SYMBOL_TABLES = frozenset({
    "trade", "quote", "instrument", "orderBook10", "liquidation", "funding", "settlement",
    "tradeBin1m", "tradeBin5m", "tradeBin1h", "tradeBin1d", "quoteBin1m", "quoteBin5m",
    "quoteBin1h", "quoteBin1d",
})


@dataclass(frozen=True, slots=True)
class MdStateConfig:
    """What the pipeline keeps: liveness rules, book freshness, tape sizes, legacy id schemes."""

    liveness: LivenessConfig = field(default_factory=LivenessConfig)
    book_max_age_s: float = 10.0
    tape: TapeConfig = field(default_factory=TapeConfig)
    legacy_ids: Mapping[str, LegacyIds] = field(default_factory=dict)
    check_timestamps: bool = True  # False for recorded data (replays, backtests): no ts checks
    untimed_tables: frozenset[str] = UNTIMED_TABLES
    increments: Mapping[str, Increments] = field(default_factory=dict)  # tick/lot per symbol


class MdState(MdStateBase):
    """Books, tapes and quotes of one session, and the per-connection checks."""

    def __init__(self, config: MdStateConfig, sink: MdSink | None = None) -> None:
        super().__init__(sink)
        self.config = config
        book_config = BookConfig(max_age_s=config.book_max_age_s)
        self.books: dict[str, BookSet] = {
            table: BookSet(book_config, config.legacy_ids, config.increments)
            for table in BOOK_L2_TABLES
        }
        self.tapes: dict[str, TradeTape] = {}
        self.quotes: dict[str, dict[str, Any]] = {}
        # each channel's learned freshness outlives the connection (Liveness is per connection)
        fresh = config.liveness.freshness
        self.freshness = FreshnessModels(fresh) if fresh.enabled else None
        self.liveness = Liveness(config.liveness, 0.0, self.freshness)
        self._channels: dict[tuple[str, str | None], str] = {}
        self._subscribed: set[str] = set()
        self._synced_before: set[tuple[str, str]] = set()
        self._top_seen: dict[tuple[str, str], int] = {}
        self._crossed_image: dict[tuple[str, str], bool] = {}
        self._check_ts = config.check_timestamps
        self._untimed = config.untimed_tables
        self._last_table: str | None = None  # one-entry cache of the channel lookup
        self._last_symbol: str | None = None
        self._last_channel = ""
        self._last_book: L2Book | None = None
        self._ts_text = ""
        self._ts_ms: int | None = None

    # ---- connection lifecycle ------------------------------------------------------------------

    def begin(self, now: float) -> None:
        """A new connection starts: fresh checks, no data yet, every book awaits its partial."""
        self.liveness = Liveness(self.config.liveness, now, self.freshness)
        self._new_connection()
        for table, books in self.books.items():
            for symbol, book in books.books.items():
                if book.valid:
                    self._synced_before.add((table, symbol))
            books.invalidate_all("reconnect")

    def expect(self, topics: Iterable[str]) -> None:
        """The topics being subscribed on this connection (names the channels of early data)."""
        self._subscribed = set(topics)
        self._channels.clear()
        self._last_table = None
        self._last_book = None

    def on_subscribed(self, topic: str, now: float) -> None:
        self._subscribed.add(topic)
        self.liveness.on_subscribed(topic, now)

    # ---- the hot path --------------------------------------------------------------------------

    def on_frame(self, payload: bytes, now: float, wall_ms: int) -> bool:
        """Feed one text frame; True when the session must look (control frame, resync).
        The same as :meth:`on_frames` with one frame."""
        return self.on_frames((payload,), now, wall_ms)

    def on_frames(self, payloads: Sequence[bytes], now: float, wall_ms: int) -> bool:
        """Feed the text frames of one transport read, in order; True when the session must
        look (a control frame, a resync). They arrived together, so they share one ``now``
        and ``wall_ms``; each goes through every check as if fed alone.

        Never raises on bad input (malformed frames are counted). The usual book delta, one
        row decoded straight into typed fields (:func:`decode_book_delta`), is handled here,
        with every check of the general path (:meth:`_on_message`), which takes every other
        frame and any delta found unusual here before anything changed.
        """
        self.counters.frames += len(payloads)
        check = self.liveness.check
        check_ts = self._check_ts
        look = False
        # the one-entry caches of the channel lookup and the timestamp parse, held in locals
        # for the read and read back after the general path (which uses them too)
        table, symbol = self._last_table, self._last_symbol
        channel, book = self._last_channel, self._last_book
        ts_text, ts_ms = self._ts_text, self._ts_ms
        accepted = 0  # book deltas of ``table`` accepted here, not yet in table_counts
        for payload in payloads:
            if type(payload) is bytes and payload.startswith(_BOOK_PREFIX):
                try:
                    delta = _decode_delta(payload)
                except _DELTA_ERRORS:
                    delta = None
                if delta is not None and len(delta.data) == 1:
                    row = delta.data[0]
                    if delta.table != table or row.symbol != symbol:
                        if accepted:
                            self._accepted(table, accepted, now)
                            accepted = 0
                        table, symbol = delta.table, row.symbol
                        books = self.books.get(table)
                        if books is not None and symbol:
                            channel = self._channel(table, symbol)
                            book = books.books.get(symbol)
                            self._last_table, self._last_symbol = table, symbol
                            self._last_channel, self._last_book = channel, book
                        else:
                            book = None  # the general path takes it (and sets the caches)
                    if book is not None and book.valid:
                        timestamp = row.timestamp
                        if not check_ts:
                            verdict: Verdict | None = check(channel, now, None, None, None)
                        else:
                            if timestamp != ts_text:
                                ts_ms, ts_text = self._timestamp_ms(timestamp), timestamp
                            # no readable timestamp: the general path refuses it, saying why
                            verdict = (None if ts_ms is None
                                       else check(channel, now, ts_ms, wall_ms, hash(payload)))
                        if verdict is _OK:
                            accepted += 1
                            tops = book.top_changes
                            result = book.apply_one(delta.action, row.side, row.id, row.size,
                                                    row.price, timestamp, now)
                            if result is None:  # unusual: the general path of the book decides
                                result = book.apply(delta.action, _loads(payload)["data"], now)
                            if result is APPLIED:
                                if book.top_changes != tops:
                                    self._top_changed(book, table, symbol, now)
                            elif result.reason is not None:
                                self._book_failed(table, symbol, result.reason, now)
                            continue
                        if verdict is not None:  # a reordered book delta corrupts the book
                            self._refuse((_REORDER if verdict is _MINOR_REORDER else verdict
                                          ).value, table, symbol, [{"symbol": symbol}], now,
                                         invalidate=verdict is not Verdict.DUPLICATE)
                            continue
            if accepted:
                self._accepted(table, accepted, now)
                accepted = 0
            if self._on_message(payload, now, wall_ms):
                look = True
            table, symbol = self._last_table, self._last_symbol
            channel, book = self._last_channel, self._last_book
            ts_text, ts_ms = self._ts_text, self._ts_ms
        if accepted:
            self._accepted(table, accepted, now)
        return look or self.resync_reason is not None

    def _accepted(self, table: str | None, count: int, now: float) -> None:
        """``count`` book deltas of ``table`` were accepted (by the read's lane) at ``now``."""
        self.last_data_now = now
        if table is not None:
            counts = self.table_counts
            counts[table] = counts.get(table, 0) + count

    def _on_message(self, payload: bytes, now: float, wall_ms: int) -> bool:
        """Any frame, by the general path."""
        liveness = self.liveness
        try:
            msg = decode(payload)
        except MessageError as exc:
            self._on_malformed(now)
            self._refuse(exc.code, exc.table or "", None, None, now)
            return self.resync_reason is not None
        if type(msg) is not TableMessage:
            if type(msg) is Pong:
                liveness.on_pong(now)
                return False
            liveness.on_inbound(now)
            self._control.append(msg)
            return True
        rows = msg.data
        table = msg.table
        symbol = msg.symbol
        action = msg.action
        if symbol is None and rows:
            first = rows[0].get("symbol")
            symbol = first if type(first) is str and first else None
        # One-entry cache of the channel and book of the last message (compared by value:
        # decoded strings are new objects every time).
        if table == self._last_table and symbol == self._last_symbol:
            channel = self._last_channel
            book = self._last_book
        else:
            channel = self._channel(table, symbol)
            self._last_table, self._last_symbol, self._last_channel = table, symbol, channel
            book = self._last_book = None
        if action is _PARTIAL or not rows or not self._check_ts:
            if action is _PARTIAL and rows and self._check_ts:
                problem = self._partial_problem(table, rows, wall_ms)
                if problem is not None:
                    self._refuse(problem, table, symbol, rows, now)
                    if table in self.books and self.resync_reason is None:
                        self.resync_reason = f"{table}:{symbol} {problem} partial"
                    return self.resync_reason is not None
            liveness.check(channel, now, None, None, None)
        else:
            text = rows[-1].get("timestamp")
            ts_ms = self._ts_ms if text == self._ts_text else self._timestamp_ms(text)
            if (ts_ms is None or len(rows) != 1) and table not in self._untimed:
                problem = _timestamp_problem(rows)
                if problem is not None:
                    self._refuse(problem, table, symbol, rows, now)
                    return self.resync_reason is not None
            verdict = liveness.check(channel, now, ts_ms, wall_ms,
                                     hash(payload) if ts_ms is not None else None)
            if verdict is not _OK:
                if verdict is _MINOR_REORDER and table in self.books:
                    verdict = _REORDER  # an out-of-order book delta corrupts the book
                if not verdict.accepted:
                    self._refuse(verdict.value, table, symbol, rows, now,
                                 invalidate=verdict is not Verdict.DUPLICATE)
                    return self.resync_reason is not None
        self.last_data_now = now
        counts = self.table_counts
        counts[table] = counts.get(table, 0) + 1
        if book is None:
            books = self.books.get(table)
            if books is None:
                self._on_other(msg, table, symbol, rows, now)
                return self.resync_reason is not None
            if symbol is not None:
                book = self._last_book = books.books.get(symbol)
            if book is None or action is _PARTIAL:
                self._on_book(books, table, msg, now)
                return self.resync_reason is not None
        elif action is _PARTIAL:
            self._on_book(self.books[table], table, msg, now)
            return self.resync_reason is not None
        if rows[0].get("symbol") != symbol or (
                len(rows) != 1 and not all(r.get("symbol") == symbol for r in rows)):
            self._on_book(self.books[table], table, msg, now)
            return self.resync_reason is not None
        # The hot path: one symbol's delta applied straight to its book.
        tops = book.top_changes
        result = book.apply(action, rows, now)
        if result is APPLIED:
            if book.top_changes != tops:
                self._top_changed(book, table, book.symbol, now)
        elif result.reason is not None:
            self._book_failed(table, book.symbol, result.reason, now)
        return self.resync_reason is not None

    def _channel(self, table: str, symbol: str | None) -> str:
        key = (table, symbol)
        channel = self._channels.get(key)
        if channel is None:
            full = f"{table}:{symbol}" if symbol is not None else table
            channel = full if full in self._subscribed or table not in self._subscribed else table
            self._channels[key] = channel
        return channel

    def _timestamp_ms(self, text: object) -> int | None:
        """Epoch ms of a row's ``timestamp`` (None when missing or malformed); remembers the
        last text parsed, as consecutive messages often share it."""
        ts_ms = parse_ms_or_none(text)
        if isinstance(text, str):
            self._ts_text, self._ts_ms = text, ts_ms
        return ts_ms

    def _partial_problem(self, table: str, rows: list[dict[str, Any]], wall_ms: int
                         ) -> str | None:
        """A partial is checked by its newest row: a book's image older than the staleness bound
        (or any image from the future) is not a fresh image, whatever its levels say. Other
        tables' rows carry when each row last changed (an order resting for an hour, the last
        trades of a quiet symbol), so their age says nothing of the image's. Every row of a
        table that carries timestamps must carry a readable one."""
        newest: int | None = None
        timed = table not in self._untimed
        for row in rows:
            text = row.get("timestamp")
            ts_ms = parse_ms_or_none(text)
            if ts_ms is None:
                if timed:
                    return MISSING_TIMESTAMP if text is None else BAD_TIMESTAMP
            elif newest is None or ts_ms > newest:
                newest = ts_ms
        if newest is None:
            return None
        live = self.config.liveness
        if newest - wall_ms > live.future_tolerance_ms:
            return Verdict.FUTURE.value
        if wall_ms - newest > live.max_ts_age_ms and table in self.books:
            return Verdict.STALE.value
        return None

    def _top_changed(self, book: L2Book, table: str, symbol: str, now: float) -> None:
        key = (table, symbol)
        self._top_seen[key] = book.top_changes
        spread = book.spread()
        if spread is not None and spread <= 0 and not self._crossed_image.get(key, False):
            book.invalidate(CROSSED_BOOK)  # a delta crossed an uncrossed book
            self._gap(table, symbol, CROSSED_BOOK, now)
            return
        push = self.sink.push
        if push is not None:
            push(TopOfBook(now, table, symbol, book.best_bid(), book.best_ask()))

    def _on_other(self, msg: TableMessage, table: str, symbol: str | None,
                  rows: list[dict[str, Any]], now: float) -> None:
        """An accepted message of a table that is not a level-2 book."""
        if table in SYMBOL_TABLES and not all(_named(row) for row in rows):
            self._refuse(MALFORMED_ROW, table, symbol, rows, now)  # whose row it was is unknown
            return
        if table == "trade" and rows:
            for row in rows:
                problem = (price_problem(row.get("price"), None)
                           or size_problem(row.get("size"), None))
                if problem is not None:
                    self._refuse(problem, table, symbol, rows, now)
                    return
            for sym, group in _by_symbol(rows, symbol).items():
                tape = self.tapes.get(sym)
                if tape is None:
                    tape = self.tapes[sym] = TradeTape(sym, self.config.tape)
                trades, malformed = trade_reports(group)
                tape.on_reports(trades, now, malformed=malformed)
        elif table == "instrument" and rows:
            self._learn_increments(rows)
        elif table == "quote" and rows:
            for row in rows:
                quoted = row.get("symbol")
                if isinstance(quoted, str):
                    self.quotes[quoted] = row
        sink = self.sink
        if sink.push is not None:
            sink.push(TableData(now, table, msg.action.value, symbol, rows))

    def _learn_increments(self, rows: list[dict[str, Any]]) -> None:
        """Tick and lot of instruments, from ``instrument`` rows that carry them."""
        for row in rows:
            sym = row.get("symbol")
            raw_tick, raw_lot = row.get("tickSize"), row.get("lotSize")
            tick = (float(raw_tick) if isinstance(raw_tick, int | float)
                    and not isinstance(raw_tick, bool) else None)
            lot = raw_lot if type(raw_lot) is int else None
            tick = tick if tick is not None and 0.0 < tick < 1e9 else None
            lot = lot if lot is not None and 0 < lot < 10**12 else None
            if type(sym) is str and (tick is not None or lot is not None):
                for books in self.books.values():
                    books.set_increments(sym, tick, lot)

    def _book_failed(self, table: str, symbol: str, reason: str, now: float) -> None:
        """A book refused a message: impossible values are refused data; the rest a gap."""
        if reason in INVALID_REASONS:
            self._count_refusal(reason, table, symbol, now)
        self._gap(table, symbol, reason, now)

    def _refuse(self, reason: str, table: str, symbol: str | None,
                rows: list[dict[str, Any]] | None, now: float, *, invalidate: bool = True
                ) -> None:
        """Count, log and drop a refused message; the books it belonged to resync (rows None:
        which symbol is unknown, so every book of the table does)."""
        self._count_refusal(reason, table, symbol, now)
        books = self.books.get(table)
        if books is None or not invalidate:
            return  # a duplicate was already applied once; nothing is missing
        symbols = list(books.books) if rows is None else _by_symbol(rows, symbol)
        for sym in symbols:
            book = books.books.get(sym)
            if book is not None and book.valid:
                book.invalidate(f"rejected_{reason}")
                self._gap(table, sym, f"rejected_{reason}", now)

    def _gap(self, table: str, symbol: str, reason: str, now: float) -> None:
        self._synced_before.add((table, symbol))
        self._report_gap(table, symbol, reason, now)

    def _on_book(self, books: BookSet, table: str, msg: TableMessage, now: float) -> None:
        partial = msg.action is _PARTIAL
        results = books.apply(msg.action.value, msg.data, now, msg.filter if partial else None)
        sink = self.sink
        for symbol, result in results:
            book = books.books.get(symbol)
            if result is APPLIED:
                if partial:
                    self._partial_applied(table, symbol, now)
                key = (table, symbol)
                if book is not None and (partial or book.top_changes != self._top_seen.get(key)):
                    self._top_seen[key] = book.top_changes
                    spread = book.spread()
                    crossed = spread is not None and spread <= 0
                    if partial:  # the venue's own image is the truth, even a crossed one
                        self._crossed_image[key] = crossed
                    elif crossed and not self._crossed_image.get(key, False):
                        book.invalidate(CROSSED_BOOK)  # a delta crossed an uncrossed book
                        self._gap(table, symbol, CROSSED_BOOK, now)
                        continue
                    if sink.push is not None:
                        sink.push(TopOfBook(now, table, symbol, book.best_bid(), book.best_ask()))
            elif result.reason is not None and (book is None or not book.valid):
                self._book_failed(table, symbol, result.reason, now)

    def _partial_applied(self, table: str, symbol: str, now: float) -> None:
        key = (table, symbol)
        if key not in self._synced_before:
            self._synced_before.add(key)
            return
        self.counters.resyncs += 1
        book = self.books[table].book(symbol)
        sink = self.sink
        if sink.log is not None:
            sink.log("book.resynced", table=table, symbol=symbol, levels=len(book))
        if sink.push is not None:
            sink.push(BookResynced(now, table, symbol, len(book)))


def _by_symbol(rows: list[dict[str, Any]], symbol: str | None) -> dict[str, list[dict[str, Any]]]:
    if symbol is not None and all(row.get("symbol", symbol) == symbol for row in rows):
        return {symbol: rows}
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        sym = row.get("symbol")
        if type(sym) is str:
            out.setdefault(sym, []).append(row)
    return out


def _named(row: dict[str, Any]) -> bool:
    symbol = row.get("symbol")
    return type(symbol) is str and symbol != ""


def _timestamp_problem(rows: list[dict[str, Any]]) -> str | None:
    """Why some row lacks a readable server ``timestamp`` (None when every row has one)."""
    for row in rows:
        text = row.get("timestamp")
        if parse_ms_or_none(text) is None:
            return MISSING_TIMESTAMP if text is None else BAD_TIMESTAMP
    return None
