"""The market-data pipeline of one Binance USDⓈ-M session: frame -> decode -> checks -> books /
trades / quotes / consumers.

Synchronous and clock-free, like the BitMEX pipeline (:mod:`venueguard.io.md_state`), and driven
by the same session loop (:mod:`venueguard.io.binance_session`) through the same calls::

    state = BinanceMdState(config, sink)
    state.begin(now)                          # on every (re)connect
    state.expect(streams)                     # e.g. "btcusdt@depth@100ms", "btcusdt@aggTrade"
    state.on_frame(payload, now, wall_ms)     # every text frame, in order
    state.on_snapshot(symbol, body, now)      # the REST depth snapshot of each depth symbol
    state.take_control()                      # replies / errors for the session to handle
    state.resync_reason                       # set when a book broke: reconnect and resync

Liveness channels are ``depth:<SYMBOL>``, ``bookTicker:<SYMBOL>`` and ``aggTrade:<SYMBOL>``
(trades may be quiet). Every data event is checked before it is used: its event time ``E``
(stale, future, reordered beyond the window) and its transaction time ``T`` (stale or future
against the wall clock); a trade or ticker seen before is a duplicate, a ticker whose ``u``
steps back is a reorder. A depth diff then goes through Binance's documented sync
(:mod:`venueguard.venues.binance.depth`): a break in the ``pu`` chain is a gap, an impossible
level is refused, and either makes the session resync. A refusal is counted (``data.rejected``
with its reason); a diff that crosses the book is a gap, as on BitMEX.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from venueguard.core.book import (
    APPLIED,
    INVALID_REASONS,
    MALFORMED_ROW,
    ApplyStatus,
    BookConfig,
    OrderBook,
    price_problem,
    size_problem,
)
from venueguard.core.liveness import Liveness, LivenessConfig, Verdict
from venueguard.core.trades import TapeConfig, TradeTape
from venueguard.io.md_base import MdSink, MdStateBase
from venueguard.io.md_events import BookResynced, TableData, TopOfBook
from venueguard.io.md_state import CROSSED_BOOK
from venueguard.venues.binance.depth import GAP, DepthSync
from venueguard.venues.binance.messages import (
    AggTrade,
    BookTicker,
    DepthUpdate,
    MessageError,
    decode,
    depth_snapshot,
)
from venueguard.venues.bitmex.timefmt import format_ms

__all__ = ["DEPTH", "BinanceMdConfig", "BinanceMdState", "DepthBooks", "channel_of"]

DEPTH = "depth"
_OK = Verdict.OK
_MINOR_REORDER = Verdict.MINOR_REORDER
UNEXPECTED_SYMBOL = "unexpected_symbol"
_KINDS = {"depth": DEPTH, "bookTicker": "bookTicker", "aggTrade": "aggTrade"}


def channel_of(stream: str) -> str | None:
    """The liveness channel of a stream name (``btcusdt@depth@100ms`` -> ``depth:BTCUSDT``)."""
    symbol, _, kind = stream.partition("@")
    name = _KINDS.get(kind.partition("@")[0])
    return f"{name}:{symbol.upper()}" if name and symbol else None


@dataclass(frozen=True, slots=True)
class BinanceMdConfig:
    """Liveness rules, book freshness, tape sizes, tick and lot per symbol (from exchangeInfo)."""

    liveness: LivenessConfig = field(default_factory=LivenessConfig)
    book_max_age_s: float = 10.0
    tape: TapeConfig = field(default_factory=TapeConfig)
    check_timestamps: bool = True
    increments: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    max_buffer: int = 10_000  # depth diffs kept per symbol while its snapshot is fetched


class DepthBooks:
    """The depth books of a session, one :class:`DepthSync` per symbol."""

    def __init__(self, config: BinanceMdConfig) -> None:
        self._config = config
        self.syncs: dict[str, DepthSync] = {}
        self.books: dict[str, OrderBook] = {}

    def sync(self, symbol: str) -> DepthSync:
        sync = self.syncs.get(symbol)
        if sync is None:
            tick, lot = self._config.increments.get(symbol, (None, None))
            sync = self.syncs[symbol] = DepthSync(symbol, BookConfig(
                max_age_s=self._config.book_max_age_s, tick=tick, lot=lot, whole_sizes=False),
                self._config.max_buffer)
            self.books[symbol] = sync.book
        return sync

    def book(self, symbol: str) -> OrderBook:
        return self.sync(symbol).book


class BinanceMdState(MdStateBase):
    """Books, tapes and quotes of one Binance session, and the per-connection checks."""

    def __init__(self, config: BinanceMdConfig, sink: MdSink | None = None) -> None:
        super().__init__(sink)
        self.config = config
        self.depth = DepthBooks(config)
        self.books: dict[str, DepthBooks] = {DEPTH: self.depth}
        self.tapes: dict[str, TradeTape] = {}
        self.quotes: dict[str, dict[str, Any]] = {}
        self.liveness = Liveness(config.liveness, 0.0)
        self._synced_before: set[str] = set()
        self._ticker_ids: dict[str, int] = {}
        self._check_ts = config.check_timestamps
        self._depth_names: dict[str, tuple[str, str]] = {}  # symbol -> (channel, stream prefix)

    # ---- connection lifecycle ------------------------------------------------------------------

    def begin(self, now: float) -> None:
        """A new connection: fresh checks; every depth book awaits a new snapshot."""
        self.liveness = Liveness(self.config.liveness, now)
        self._new_connection()
        self._ticker_ids.clear()
        for symbol, sync in self.depth.syncs.items():
            if sync.book.valid:
                self._synced_before.add(symbol)
            sync.reset("reconnect")
            sync.book.set_increments(*self.config.increments.get(symbol, (None, None)))

    def expect(self, topics: Iterable[str]) -> None:
        """The streams of this connection: each depth stream's symbol gets a book."""
        for topic in topics:
            channel = channel_of(topic)
            if channel is not None and channel.startswith(DEPTH + ":"):
                self.depth.sync(channel.partition(":")[2])

    def on_subscribed(self, topic: str, now: float) -> None:
        channel = channel_of(topic)
        if channel is not None:
            self.liveness.on_subscribed(channel, now)

    def needs_snapshot(self, symbol: str) -> bool:
        return self.depth.sync(symbol).needs_snapshot

    # ---- frames ---------------------------------------------------------------------------------

    def on_frame(self, payload: bytes, now: float, wall_ms: int) -> bool:
        """Feed one text frame; True when the session must look (control frame, resync)."""
        self.counters.frames += 1
        liveness = self.liveness
        try:
            msg = decode(payload)
        except MessageError as exc:
            self._on_malformed(now)
            stream = exc.stream
            if exc.code == "unknown_event":  # an event no book is made of: counted, no resync
                self._count(exc.code, f"other:{stream or ''}", now)
                return self.resync_reason is not None
            channel = channel_of(stream) if stream and "@" in stream else (
                f"{DEPTH}:{stream}" if stream else None)
            self._refuse(exc.code, channel, now)
            return self.resync_reason is not None
        if isinstance(msg, DepthUpdate):
            self._on_depth(msg, now, wall_ms)
        elif isinstance(msg, BookTicker):
            self._on_ticker(msg, now, wall_ms)
        elif isinstance(msg, AggTrade):
            self._on_trade(msg, now, wall_ms)
        else:
            liveness.on_inbound(now)
            self._control.append(msg)
            return True
        return self.resync_reason is not None

    def _checked(self, table: str, channel: str, now: float, wall_ms: int, event_ms: int,
                 txn_ms: int, key: object) -> bool:
        """The liveness and time checks of one data event of ``table`` (``channel`` is
        ``table:SYMBOL``); False (refused, counted) if any fails."""
        if not self._check_ts:
            self.liveness.check(channel, now, None, None, None)
            verdict = _OK
        else:
            live = self.config.liveness
            if txn_ms - wall_ms > live.future_tolerance_ms:
                verdict = Verdict.FUTURE
                self.liveness.on_inbound(now)  # the connection delivers; the channel is not fresh
            elif wall_ms - txn_ms > live.max_ts_age_ms:
                verdict = Verdict.STALE
                self.liveness.on_inbound(now)
            else:
                verdict = self.liveness.check(channel, now, event_ms, wall_ms,
                                              None if key is None else (key,))
                if verdict is _MINOR_REORDER and table == DEPTH:
                    verdict = Verdict.REORDER  # diffs applied out of order corrupt a book
        if verdict is _OK or verdict is _MINOR_REORDER:
            self.last_data_now = now
            counts = self.table_counts
            counts[table] = counts.get(table, 0) + 1
            return True
        problem = verdict.value
        self._refuse(problem, channel, now, invalidate=problem != Verdict.DUPLICATE.value)
        return False

    def _on_depth(self, msg: DepthUpdate, now: float, wall_ms: int) -> None:
        symbol, stream = msg.symbol, msg.stream
        names = self._depth_names.get(symbol)
        if names is None:
            names = (f"{DEPTH}:{symbol}", symbol.lower() + "@")
            if "@" not in symbol and len(self._depth_names) < 1000:
                self._depth_names[symbol] = names
        channel = names[0]
        if stream is not None and not stream.startswith(names[1]) and _misnamed(stream, symbol):
            # the stream names one symbol, the event another: whose change it is is unknown
            self._refuse(MALFORMED_ROW, channel_of(stream), now)
            return
        sync = self.depth.syncs.get(msg.symbol)
        if sync is None:  # not a symbol of this session: no book grows from it
            self._count(UNEXPECTED_SYMBOL, channel, now)
            return
        if not self._checked(DEPTH, channel, now, wall_ms, msg.event_ms, msg.txn_ms, None):
            return
        book = sync.book
        tops = book.top_changes
        result = sync.on_update(msg, now)
        if result is APPLIED:
            if book.top_changes != tops:
                self._top_changed(msg.symbol, book, now)
        elif result.status is ApplyStatus.RESYNC:
            reason = result.reason or GAP
            if reason in INVALID_REASONS:
                self._count(reason, channel, now)
            self._gap(msg.symbol, reason, now)
        elif result.reason is not None:  # old news (duplicate / reorder): counted, no resync
            self._count(result.reason, channel, now)

    def _on_ticker(self, msg: BookTicker, now: float, wall_ms: int) -> None:
        channel = f"bookTicker:{msg.symbol}"
        if _misnamed(msg.stream, msg.symbol):
            self._refuse(MALFORMED_ROW, channel, now, invalidate=False)
            return
        problem = (price_problem(msg.bid[0], None) or price_problem(msg.ask[0], None)
                   or _qty_problem(msg.bid[1]) or _qty_problem(msg.ask[1]))
        if problem is not None:
            self._refuse(problem, channel, now, invalidate=False)
            return
        last = self._ticker_ids.get(msg.symbol)
        if last is not None and msg.update_id <= last:
            reason = Verdict.DUPLICATE if msg.update_id == last else Verdict.REORDER
            self._refuse(reason.value, channel, now, invalidate=False)
            return
        if not self._checked("bookTicker", channel, now, wall_ms, msg.event_ms, msg.txn_ms,
                             msg.update_id):
            return
        self._ticker_ids[msg.symbol] = msg.update_id
        quote = {"symbol": msg.symbol, "bid": msg.bid, "ask": msg.ask, "update_id": msg.update_id,
                 "event_ms": msg.event_ms, "txn_ms": msg.txn_ms}
        self.quotes[msg.symbol] = quote
        if self.sink.push is not None:
            self.sink.push(TableData(now, "bookTicker", "update", msg.symbol, [quote]))

    def _on_trade(self, msg: AggTrade, now: float, wall_ms: int) -> None:
        channel = f"aggTrade:{msg.symbol}"
        if _misnamed(msg.stream, msg.symbol):
            self._refuse(MALFORMED_ROW, channel, now, invalidate=False)
            return
        problem = price_problem(msg.price, None) or size_problem(msg.qty, None, whole=False)
        if problem is not None:
            self._refuse(problem, channel, now, invalidate=False)
            return
        if not self._checked("aggTrade", channel, now, wall_ms, msg.event_ms, msg.trade_ms,
                             msg.agg_id):
            return
        tape = self.tapes.get(msg.symbol)
        if tape is None:
            tape = self.tapes[msg.symbol] = TradeTape(msg.symbol, self.config.tape)
        side = "Sell" if msg.buyer_is_maker else "Buy"  # the aggressor's side
        tape.on_trade(msg.price, msg.qty, side, now, timestamp=format_ms(msg.trade_ms),
                      trade_id=str(msg.agg_id))
        if self.sink.push is not None:
            self.sink.push(TableData(now, "aggTrade", "insert", msg.symbol, [{
                "symbol": msg.symbol, "price": msg.price, "size": msg.qty, "side": side,
                "trade_ms": msg.trade_ms, "agg_id": msg.agg_id}]))

    # ---- snapshots ------------------------------------------------------------------------------

    def on_snapshot(self, symbol: str, body: bytes | str | dict[str, Any], now: float) -> bool:
        """The REST depth snapshot of ``symbol``; True when the book is synced from it."""
        channel = f"{DEPTH}:{symbol}"
        try:
            snapshot = depth_snapshot(body)
        except MessageError as exc:
            self._count(exc.code, channel, now)
            return False
        sync = self.depth.sync(symbol)
        result = sync.on_snapshot(snapshot, now)
        if result.status is ApplyStatus.RESYNC:
            reason = result.reason or GAP
            if reason in INVALID_REASONS:
                self._count(reason, channel, now)
            self._gap(symbol, reason, now)
            return False
        if symbol in self._synced_before:
            self.counters.resyncs += 1
            if self.sink.log is not None:
                self.sink.log("book.resynced", table=DEPTH, symbol=symbol,
                              levels=len(sync.book))
            if self.sink.push is not None:
                self.sink.push(BookResynced(now, DEPTH, symbol, len(sync.book)))
        self._synced_before.add(symbol)
        self._top_changed(symbol, sync.book, now, image=True)
        return True

    # ---- reporting ------------------------------------------------------------------------------

    def _top_changed(self, symbol: str, book: OrderBook, now: float, image: bool = False
                     ) -> None:
        spread = book.spread()
        if not image and spread is not None and spread <= 0:
            self.depth.sync(symbol).reset(CROSSED_BOOK)  # a diff crossed the book
            self._gap(symbol, CROSSED_BOOK, now)
            return
        if self.sink.push is not None:
            self.sink.push(TopOfBook(now, DEPTH, symbol, book.best_bid(), book.best_ask()))

    def _count(self, reason: str, channel: str | None, now: float) -> None:
        table, _, symbol = (channel or "").partition(":")
        self._count_refusal(reason, table, symbol or None, now)

    def _refuse(self, reason: str, channel: str | None, now: float, *,
                invalidate: bool = True) -> None:
        """Count a refused event; a depth book that may have missed it resyncs (every book
        when whose it was is unknown)."""
        self._count(reason, channel, now)
        if not invalidate:
            return
        table, _, symbol = (channel or "").partition(":")
        if channel is not None and table != DEPTH:
            return
        targets = [symbol] if symbol else list(self.depth.syncs)
        for name in targets:
            sync = self.depth.syncs.get(name)
            if sync is not None and sync.book.valid:
                sync.reset(f"rejected_{reason}")
                self._gap(name, f"rejected_{reason}", now)

    def _gap(self, symbol: str, reason: str, now: float) -> None:
        self._synced_before.add(symbol)
        self._report_gap(DEPTH, symbol, reason, now)


def _qty_problem(qty: float) -> str | None:
    """A ticker's quantity may be 0 (an empty side); never negative or unbounded."""
    return None if qty == 0 else size_problem(qty, None, whole=False)


def _misnamed(stream: str | None, symbol: str) -> bool:
    """A combined frame whose stream names another symbol than its event."""
    return stream is not None and stream.partition("@")[0] != symbol.lower()
