"""The Binance USDⓈ-M market-data session: the same contract as the BitMEX session
(:class:`~venueguard.io.ws_session.MarketDataSession`), Binance's protocol underneath.

Usage::

    config = binance_config("wss://fstream.binance.com", "https://fapi.binance.com",
                            ["BTCUSDT"])
    async with BinanceMarketDataSession(config, events=EventLog(), metrics=Metrics()) as s:
        await s.wait_synced(10.0)            # every depth book synced from its snapshot
        book = s.book("BTCUSDT")             # BookView: .is_fresh, .age_s, .best_bid() ...

What one connection does: open the combined stream ``/stream?streams=<s>@depth@100ms/
<s>@bookTicker/<s>@aggTrade/...`` (subscribed from the first frame, so no SUBSCRIBE), then,
as Binance documents, fetch ``GET /fapi/v1/depth?limit=1000`` for each symbol while its diffs
are buffered, and sync each book (``U <= lastUpdateId <= u``, then the ``pu`` chain). The tick
and lot of each symbol come from ``GET /fapi/v1/exchangeInfo`` (once per session). A broken
chain, an impossible value or a stale, future or reordered event is refused and counted, and
the session reconnects and resyncs, exactly as the BitMEX session does (same reconnect loop,
backoff, connection-rate limit, events and metrics).

Heartbeat, both ways: the transport answers Binance's server pings (every 3 minutes; the venue
drops a connection that leaves them unanswered), and the session sends its own protocol ping
after ``ping_after_s`` of silence and expects the pong within ``pong_timeout_s``; on top, each
stream's data freshness is watched per channel (``depth:BTCUSDT``, ``bookTicker:BTCUSDT``;
``aggTrade`` may be quiet), so a stream that answers pings but sends no data is caught. Binance
closes every connection after 24 hours: the session reconnects itself first
(``max_connection_age_s``, 23 h 50 min by default).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp
import orjson

from venueguard.core.liveness import LivenessConfig
from venueguard.core.rules import RuleSet, default_rules
from venueguard.io.binance_md import DEPTH, BinanceMdConfig, BinanceMdState
from venueguard.io.md_pipeline import MdPipeline
from venueguard.io.md_views import BookView
from venueguard.io.ws_session import MarketDataSession, MdConfig
from venueguard.io.ws_transport import WsConnection
from venueguard.venues.binance.messages import ErrorReply, increments

__all__ = [
    "BINANCE_USDM",
    "BINANCE_USDM_TESTNET",
    "BinanceMarketDataSession",
    "binance_config",
    "binance_liveness",
]

# (websocket base, REST base) of the venues
BINANCE_USDM = ("wss://fstream.binance.com", "https://fapi.binance.com")
BINANCE_USDM_TESTNET = ("wss://fstream.binancefuture.com", "https://testnet.binancefuture.com")
DAY_MINUS_10_MIN_S = 24 * 3600.0 - 600.0


def binance_liveness(ticker_max_age_s: float = 15.0) -> LivenessConfig:
    """Ping after 5 s of silence, pong within 5 s; depth (every 100 ms) must move within 5 s,
    the best bid and ask (``bookTicker``) within ``ticker_max_age_s`` (a thin symbol's best quote
    rests for seconds: 7.5 s in a recorded AKRO stream); trades may be quiet."""
    return LivenessConfig(ping_after_s=5.0, pong_timeout_s=5.0, max_data_age_s=5.0,
                          channel_max_age_s={"bookTicker": ticker_max_age_s},
                          quiet_channels=frozenset({"aggTrade"}))


def binance_config(ws_base: str, rest_base: str, symbols: Iterable[str], *,
                   depth: bool = True, ticker: bool = True, trades: bool = True,
                   liveness: LivenessConfig | None = None, **extra: Any) -> MdConfig:
    """A session config for ``symbols`` on the combined stream of ``ws_base``, snapshots from
    ``rest_base`` (``BINANCE_USDM``, ``BINANCE_USDM_TESTNET`` or a simulator's URLs)."""
    streams: list[str] = []
    for symbol in symbols:
        low = symbol.lower()
        streams += ([f"{low}@depth@100ms"] if depth else []) + (
            [f"{low}@bookTicker"] if ticker else []) + ([f"{low}@aggTrade"] if trades else [])
    if not streams:
        raise ValueError("at least one symbol and one stream are needed")
    url = f"{ws_base.rstrip('/')}/stream?streams={'/'.join(streams)}"
    extra.setdefault("max_connection_age_s", DAY_MINUS_10_MIN_S)
    return MdConfig(url=url, topics=tuple(streams), rest_url=rest_base.rstrip("/"),
                    liveness=liveness or binance_liveness(), **extra)


class BinanceMarketDataSession(MarketDataSession):
    """See the module docstring. Built from :func:`binance_config`."""

    def __init__(self, config: MdConfig, **kwargs: Any) -> None:
        if not config.rest_url:
            raise ValueError("a Binance session needs rest_url (see binance_config)")
        self._increments: dict[str, tuple[float | None, float | None]] = {}
        self._http: aiohttp.ClientSession | None = None
        #: REST requests this session sent (its exchangeInfo and depth snapshots), one per GET
        self.rest_requests_total = 0
        super().__init__(config, **kwargs)
        self.binance: BinanceMdState = self.state  # type: ignore[assignment]

    # ---- the venue's parts ----------------------------------------------------------------------

    def _default_rules(self) -> RuleSet:
        return default_rules()

    def _make_state(self) -> MdPipeline:
        config = self.config
        return BinanceMdState(BinanceMdConfig(
            liveness=config.liveness, book_max_age_s=self.book_max_age_s, tape=config.tape,
            check_timestamps=config.check_timestamps, increments=self._increments), self._sink)

    def _send_ping(self, conn: WsConnection) -> None:
        conn.send_ping()  # a protocol ping: Binance answers it with a pong frame

    def _start_session(self, conn: WsConnection) -> None:
        # The combined stream is subscribed from its first frame: no command, no ack to await.
        self._authed = True
        self._pending_acks = set()
        topics = [t for t in self.config.topics if t not in self.failed_topics]
        self.state.expect(topics)
        now = self.clock.monotonic()
        for topic in topics:
            self.state.on_subscribed(topic, now)
            self.notify.log("ws.subscribed", topic=topic)
        self.live = True
        self._backoff.on_success(now)

    def _on_control(self, conn: WsConnection, msg: Any, now: float) -> None:
        if isinstance(msg, ErrorReply):
            self.notify.log("ws.venue_error", code=msg.code, message=msg.msg)

    async def _watch(self, conn: WsConnection) -> None:
        symbols = sorted(self.binance.depth.syncs)
        tasks = [asyncio.get_running_loop().create_task(self._snapshot(s, self._serial))
                 for s in symbols]
        try:
            await super()._watch(conn)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    # ---- REST ----------------------------------------------------------------------------------

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.config.connect_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            self._http = http
            try:
                await self._load_increments()
                await super().run()
            finally:
                self._http = None

    async def _get(self, path: str, params: Mapping[str, str]) -> tuple[int, bytes]:
        assert self._http is not None
        self.rest_requests_total += 1
        async with self._http.get(f"{self.config.rest_url}{path}", params=dict(params)) as resp:
            return resp.status, await resp.read()

    async def _load_increments(self) -> None:
        """Tick and lot of every symbol, once per session (best effort: without them the
        books check prices and sizes, not their steps)."""
        try:
            status, body = await self._get("/fapi/v1/exchangeInfo", {})
            if status == 200:
                self._increments.update(increments(orjson.loads(body)))
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            self.notify.log("md.exchange_info_failed", error=type(exc).__name__)

    async def _snapshot(self, symbol: str, serial: int) -> None:
        """Fetch ``symbol``'s depth snapshot for connection ``serial`` until its book syncs."""
        delay = 0.2
        while serial == self._serial and self.binance.needs_snapshot(symbol):
            try:
                status, body = await self._get("/fapi/v1/depth",
                                               {"symbol": symbol, "limit": "1000"})
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, body = 0, type(exc).__name__.encode()
            if serial != self._serial:
                return
            if status == 200:
                self.binance.on_snapshot(symbol, body, self.clock.monotonic())
                self._wake.set()  # a gap while bridging ends the connection
            else:
                self.notify.log("md.snapshot_failed", symbol=symbol, status=status)
            if self.binance.needs_snapshot(symbol):
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    # ---- the contract ---------------------------------------------------------------------------

    def book(self, symbol: str, table: str = DEPTH) -> BookView:
        if table != DEPTH:
            raise ValueError(f"{table} is not a Binance book (use {DEPTH!r})")
        self.binance.depth.sync(symbol)
        return BookView(self, DEPTH, symbol)

    @property
    def synced(self) -> bool:
        """Live, and every depth book synced from its snapshot."""
        if not self.live:
            return False
        return all(sync.book.valid for sync in self.binance.depth.syncs.values())
