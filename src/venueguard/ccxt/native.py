"""Guarded streams served by venueguard's own sessions, for the venues it speaks natively.

For a guarded ``bitmex`` or ``binanceusdm`` exchange, ``watch_order_book``, ``watch_trades``
and ``watch_ticker`` are not ccxt's readers: each market id gets one native session
(:class:`~venueguard.io.ws_session.MarketDataSession` on ``orderBookL2`` and ``trade``, or
:class:`~venueguard.io.binance_session.BinanceMarketDataSession` on depth, bookTicker and
aggTrade), started on the first call, and the calls return ccxt's shapes:

* order book: ``{"bids": [[price, amount], ...], "asks": [...], "timestamp", "datetime",
  "nonce", "symbol"}`` (best first; ``limit`` levels per side when given; ``nonce`` is Binance's
  last applied ``u``, or on BitMEX the count of messages applied to the book);
* trades: the trades since the previous call (at most the tape's memory), each
  ``{"id", "symbol", "timestamp", "datetime", "side", "price", "amount", "cost", ...}``;
* ticker: the best bid and ask (with sizes) and the last trade price.

A call returns as soon as there is data newer than what the previous call of the same kind
returned, and only while that data is fresh: a session that went stale, lost its book or is
resyncing makes the call wait (the session reconnects by itself), so stale data is never handed
out (a frame whose venue timestamp is older than the guard's ``StreamConfig.max_ts_age_ms``
marks the session stale; ``StreamConfig.freshness`` is their learned freshness). A symbol the
venue refuses raises ``ccxt.BadSymbol``. ccxt's own readers are never started for these calls.
Opt out per exchange with ``GuardConfig(native_streams=False)``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import ccxt

from venueguard.core.backoff import RandomSource
from venueguard.core.book import OrderBook
from venueguard.core.freshness import FreshnessConfig
from venueguard.core.liveness import LivenessConfig
from venueguard.core.trades import TradeTape
from venueguard.io.binance_session import (
    BinanceMarketDataSession,
    binance_config,
    binance_liveness,
)
from venueguard.io.clock import SYSTEM_CLOCK, Clock
from venueguard.io.errors import StreamError
from venueguard.io.notify import Notifier
from venueguard.io.ws_session import MarketDataSession, MdConfig, default_liveness
from venueguard.venues.bitmex.timefmt import format_ms, parse_ms_or_none

__all__ = ["NATIVE_VENUES", "NativeStreams"]

NATIVE_VENUES = frozenset({"bitmex", "binanceusdm"})
NATIVE_KINDS = frozenset({"orderbook", "trades", "ticker"})


@dataclass(slots=True)
class _Feed:
    """One market id's session and the readers waiting for its next frame."""

    market_id: str
    symbol: str
    session: MarketDataSession
    task: asyncio.Task[None]
    waiters: list[asyncio.Future[None]]
    returned: dict[str, object]  # per kind, what the last call returned (a version)
    trade_cursor: int = 0

    def wake(self) -> None:
        waiters = self.waiters
        if waiters:
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
            waiters.clear()


class NativeStreams:
    """Native ``watch_*`` for one guarded exchange (see the module docstring)."""

    def __init__(self, exchange: Any, notify: Notifier, *, load_markets: Any,
                 max_age_s: float = 5.0, ticker_max_age_s: float = 15.0,
                 max_ts_age_ms: int | None = None, freshness: FreshnessConfig | None = None,
                 clock: Clock = SYSTEM_CLOCK, rng: RandomSource | None = None) -> None:
        self.exchange = exchange
        self._rng = rng     # the sessions' reconnect jitter (None: each its own)
        self.notify = notify
        self.clock = clock
        self.max_age_s = max_age_s
        self.ticker_max_age_s = ticker_max_age_s  # Binance's bookTicker (BitMEX: from the book)
        self.max_ts_age_ms = max_ts_age_ms  # the venue timestamp's bound (None: the session's)
        self.freshness = freshness  # the learned freshness (None: the session's default)
        self._load_markets = load_markets
        self._feeds: dict[str, _Feed] = {}
        self._lock = asyncio.Lock()

    # ---- the calls --------------------------------------------------------------------------

    async def watch(self, kind: str, symbol: str, args: tuple[Any, ...],
                    kwargs: Mapping[str, Any]) -> Any:
        feed = await self._feed(symbol)
        limit = args[1] if len(args) > 1 else kwargs.get("limit")
        while True:
            self._check_failed(feed)
            out = self._ready(feed, kind, limit if isinstance(limit, int) else None)
            if out is not None:
                return out
            waiter = asyncio.get_running_loop().create_future()
            feed.waiters.append(waiter)
            try:
                # a bound on the wait: the freshness of what is held changes with time alone
                async with asyncio.timeout(0.25):
                    await waiter
            except TimeoutError:
                pass

    @property
    def rest_requests_total(self) -> int:
        """REST requests the sessions sent themselves (Binance's exchangeInfo and depth
        snapshots; the BitMEX session sends none): not the guard's calls."""
        sessions = {id(feed.session): feed.session for feed in self._feeds.values()}
        return sum(int(getattr(s, "rest_requests_total", 0)) for s in sessions.values())

    def is_fresh(self, kind: str, symbol: str) -> bool:
        """Whether ``symbol``'s session holds fresh data for ``kind``."""
        feed = self._feeds.get(symbol)
        if feed is None:
            return False
        view = feed.session.book(feed.market_id)
        return feed.session.live if kind == "trades" else view.is_fresh

    async def aclose(self) -> None:
        """Stop every session."""
        feeds, self._feeds = list(self._feeds.values()), {}
        for feed in feeds:
            feed.session.stop()
        for feed in feeds:
            with contextlib.suppress(StreamError, asyncio.CancelledError):
                await feed.task

    # ---- sessions -----------------------------------------------------------------------------

    async def _feed(self, symbol: str) -> _Feed:
        feed = self._feeds.get(symbol)
        if feed is not None:
            return feed
        async with self._lock:
            feed = self._feeds.get(symbol)
            if feed is not None:
                return feed
            await self._load_markets()
            market = self.exchange.market(symbol)
            market_id = str(market["id"])
            session = self._session(market_id)
            task = asyncio.get_running_loop().create_task(session.run(),
                                                          name=f"venueguard-{market_id}")
            feed = _Feed(market_id, str(market["symbol"]), session, task, [], {})
            session.on_data = feed.wake
            self._feeds[symbol] = self._feeds[feed.symbol] = feed
            return feed

    def _session(self, market_id: str) -> MarketDataSession:
        exchange_id = self.exchange.id
        api = self.exchange.urls["api"]
        notify = self.notify
        kwargs: dict[str, Any] = {"events": notify.events, "metrics": notify.metrics,
                                  "alerts": notify.alerts, "clock": self.clock,
                                  "rng": self._rng}
        if exchange_id == "bitmex":
            liveness = self._bounds(replace(default_liveness(),
                                            max_data_age_s=self.max_age_s))
            return MarketDataSession(MdConfig(
                url=str(api["ws"]), topics=(f"orderBookL2:{market_id}", f"trade:{market_id}"),
                liveness=liveness), **kwargs)
        ws = str(api["ws"]["future"])
        ws_base = ws[:-3] if ws.endswith("/ws") else ws
        rest = str(api["fapiPublic"])
        rest_base = rest[: -len("/fapi/v1")] if rest.endswith("/fapi/v1") else rest
        liveness = self._bounds(binance_liveness(self.ticker_max_age_s))
        return BinanceMarketDataSession(binance_config(ws_base, rest_base, [market_id],
                                                       liveness=liveness), **kwargs)

    def _bounds(self, liveness: LivenessConfig) -> LivenessConfig:
        """The session's liveness with the guard's timestamp bound and learned freshness."""
        if self.max_ts_age_ms is not None:
            liveness = replace(liveness, max_ts_age_ms=self.max_ts_age_ms)
        if self.freshness is not None:
            liveness = replace(liveness, freshness=self.freshness)
        return liveness

    def _check_failed(self, feed: _Feed) -> None:
        session = feed.session
        if session.failed_topics:
            raise ccxt.BadSymbol(f"{feed.symbol}: the venue refused "
                                 f"{', '.join(sorted(session.failed_topics))}")
        task = feed.task
        if task.done():
            error = task.exception() if not task.cancelled() else None
            raise ccxt.NetworkError(f"{feed.symbol}: the market-data session ended"
                                    + (f": {error}" if error is not None else ""))

    # ---- shapes -------------------------------------------------------------------------------

    def _ready(self, feed: _Feed, kind: str, limit: int | None) -> Any:
        """ccxt's shape for ``kind`` when newer fresh data than the last return exists."""
        session = feed.session
        view = session.book(feed.market_id)
        if kind == "trades":
            tape = session.trades(feed.market_id)
            if tape is None or tape.total_trades == feed.trade_cursor or not session.live:
                return None
            return self._trades(feed, tape)
        if not view.is_fresh:
            return None
        book = view.book
        version = (book.partials, book.messages_applied)
        if feed.returned.get(kind) == version:
            return None
        feed.returned[kind] = version
        if kind == "orderbook":
            return self._book(feed, book, limit)
        return self._ticker(feed, book)

    def _book(self, feed: _Feed, book: OrderBook, limit: int | None) -> dict[str, Any]:
        bids, asks = book.depth(limit)
        ts = _ms(book.last_row_timestamp)
        nonce: int | None = book.messages_applied
        binance = getattr(feed.session, "binance", None)
        if binance is not None:
            nonce = binance.depth.syncs[feed.market_id].last_id
        return {"symbol": feed.symbol, "bids": [[p, s] for p, s in bids],
                "asks": [[p, s] for p, s in asks], "timestamp": ts,
                "datetime": format_ms(ts) if ts is not None else None, "nonce": nonce}

    def _trades(self, feed: _Feed, tape: TradeTape) -> list[dict[str, Any]]:
        new = tape.total_trades - feed.trade_cursor
        feed.trade_cursor = tape.total_trades
        out: list[dict[str, Any]] = []
        for trade in tape.recent(new):
            ts = parse_ms_or_none(trade.timestamp)
            out.append({"id": trade.trade_id, "symbol": feed.symbol, "timestamp": ts,
                        "datetime": trade.timestamp, "side": trade.side.lower(),
                        "price": trade.price, "amount": trade.size,
                        "cost": trade.price * trade.size, "order": None, "type": None,
                        "takerOrMaker": "taker", "fee": None, "fees": [], "info": {}})
        return out

    def _ticker(self, feed: _Feed, book: OrderBook) -> dict[str, Any]:
        bid, ask = book.best_bid(), book.best_ask()
        tape = feed.session.trades(feed.market_id)
        last = tape.last() if tape is not None else None
        ts = _ms(book.last_row_timestamp)
        price = last.price if last is not None else None
        return {"symbol": feed.symbol, "timestamp": ts,
                "datetime": format_ms(ts) if ts is not None else None,
                "bid": bid[0] if bid else None, "bidVolume": bid[1] if bid else None,
                "ask": ask[0] if ask else None, "askVolume": ask[1] if ask else None,
                "last": price, "close": price, "high": None, "low": None, "open": None,
                "vwap": None, "previousClose": None, "change": None, "percentage": None,
                "average": None, "baseVolume": None, "quoteVolume": None, "info": {}}


def _ms(stamp: object) -> int | None:
    """A book's venue time as epoch ms (BitMEX: ISO text; Binance: ms already)."""
    if type(stamp) is int:
        return stamp
    return parse_ms_or_none(stamp)
