"""The monitor's sources for ``--venue ccxt:EXCHANGE_ID``: any ccxt pro exchange, guarded.

:func:`open_sources` builds, for one :class:`~venueguard.app.monitor.MonitorContext`, a
:func:`venueguard.ccxt.guard`-ed ccxt pro exchange (its REST and websocket URLs pointed at
``--sim-url`` when given) and two sources over it:

- :class:`CcxtMarket`: ``watch_order_book`` and ``watch_trades`` loops (fresh data or an
  explicit recovery, see :mod:`venueguard.ccxt.streams`; on bitmex and binanceusdm served by
  venueguard's own sessions, :mod:`venueguard.ccxt.native`, unless
  ``VENUEGUARD_NATIVE_STREAMS=0``) read each tick as a :class:`~venueguard.app.ticker.MarketInput`;
- :class:`CcxtVenue`: a REST probe (``fetch_ticker`` every ``probe_interval_s``) through the
  guarded pipeline, so the venue's health state moves with what the venue answers.

Public data needs no keys; private calls use ``VENUEGUARD_API_KEY`` / ``VENUEGUARD_API_SECRET``
(and ``VENUEGUARD_API_PASSWORD`` where the venue needs one). ``--symbol`` is a ccxt unified
symbol (``BTC/USDT:USDT``) or the venue's own id (``XBTUSD``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from venueguard.app.ticker import MarketInput, VenueInput
from venueguard.ccxt.checks import require_websocket, resolve_exchange
from venueguard.io import errors

if TYPE_CHECKING:
    from venueguard.app.monitor import MonitorConfig, MonitorContext
    from venueguard.ccxt.guarded import GuardConfig, GuardedExchange

__all__ = ["CcxtMarket", "CcxtVenue", "check_venue", "exchange_id_of", "guard_config",
           "open_sources"]

_IMBALANCE_LEVELS = 5
_ORIGIN_RE = re.compile(r"^[a-z]+://[^/]+")


def check_venue(venue: str) -> None:
    """Refuse, in one line, an unknown exchange id, one without websocket support, or a
    missing or too old ccxt (``ConfigError``)."""
    resolve_exchange(exchange_id_of(venue), pro=True)


def exchange_id_of(venue: str) -> str:
    """``ccxt:binanceusdm`` -> ``binanceusdm``."""
    return venue.split(":", 1)[1]


def point_at(exchange: Any, rest_url: str, ws_url: str) -> None:
    """Send every REST and websocket URL of ``exchange`` to a simulator: the scheme and host
    of each URL are replaced, its path is kept (``/api/v1``, ``/fapi/v1``, ``/realtime``)."""
    rest_origin = _ORIGIN_RE.match(rest_url)
    ws_origin = _ORIGIN_RE.match(ws_url)
    if rest_origin is None or ws_origin is None:
        raise errors.ConfigError(f"--sim-url {rest_url!r} is not an http:// URL")

    def swap(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if not isinstance(value, str):
            return value
        value = value.replace("{hostname}", "sim.invalid")
        if value.startswith("ws"):
            return _ORIGIN_RE.sub(ws_origin.group(0), value)
        return _ORIGIN_RE.sub(rest_origin.group(0), value)

    exchange.urls = {**exchange.urls, "api": swap(exchange.urls.get("api", {}))}


class CcxtMarket:
    """Order book and trades of one symbol, through the guarded ``watch_*`` calls."""

    def __init__(self, exchange: GuardedExchange, symbol: str, clock: Any) -> None:
        self.exchange = exchange
        self.symbol = symbol
        self.clock = clock
        self._book: Mapping[str, Any] | None = None
        self._book_at: float | None = None
        self._top: tuple[float, float] | None = None
        self.top_changes = 0
        self.trades = 0
        self.volume = 0.0
        self.last_trade_at: float | None = None
        self.lag_s: float | None = None

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._books())
            group.create_task(self._trades())

    async def _books(self) -> None:
        while True:
            book = await self.exchange.watch_order_book(self.symbol)
            self._book, self._book_at = book, self.clock.monotonic()
            if book["bids"] and book["asks"]:
                top = (book["bids"][0][0], book["asks"][0][0])
                if top != self._top:
                    self.top_changes += 1
                    self._top = top

    async def _trades(self) -> None:
        while True:
            trades = await self.exchange.watch_trades(self.symbol)
            now, wall_ms = self.clock.monotonic(), self.clock.wall_ms()
            for trade in trades:
                self.trades += 1
                self.volume += float(trade.get("amount") or 0.0)
                ts = trade.get("timestamp")
                if isinstance(ts, int):
                    self.lag_s = (wall_ms - ts) / 1000.0
            self.last_trade_at = now

    def best_bid(self) -> float | None:
        return self._top[0] if self._top else None

    def market_input(self, now: float) -> MarketInput:
        book = self._book
        fresh = self.exchange.is_fresh("orderbook", self.symbol)
        if book is None or not book["bids"] or not book["asks"]:
            return MarketInput(fresh=False, connected=fresh)
        bids, asks = book["bids"], book["asks"]
        return MarketInput(
            fresh=fresh, best_bid=bids[0][0], best_ask=asks[0][0],
            bid_qty=float(sum(level[1] for level in bids[:_IMBALANCE_LEVELS])),
            ask_qty=float(sum(level[1] for level in asks[:_IMBALANCE_LEVELS])),
            data_age_s=None if self._book_at is None else now - self._book_at,
            top_changes_total=self.top_changes, trades_total=self.trades,
            volume_total=self.volume, last_trade_now=self.last_trade_at, connected=fresh,
            lag_s=self.lag_s)


class CcxtVenue:
    """The REST probe and the venue health of the guarded exchange."""

    def __init__(self, exchange: GuardedExchange, symbol: str, ctx: MonitorContext) -> None:
        self.exchange = exchange
        self.symbol = symbol
        self.ctx = ctx

    async def run(self) -> None:
        ctx = self.ctx
        rest = self.exchange.rest
        while True:
            started = ctx.clock.monotonic()
            rest.last_latency_s = None
            status: int | None = 200
            try:
                await self.exchange.fetch_ticker(self.symbol)
            except errors.VenueguardError:
                status = None  # refused locally (cooldown, blocked): nothing was sent
            except Exception as exc:  # a ccxt error: classified and reported by the guard
                verdict = getattr(exc, "venueguard", None)
                status = verdict.status if verdict is not None else None
            if ctx.on_request is not None:
                # the venue's round trip, as on the native path; the wall time of the call
                # also holds ccxt's own rate-limit wait (docs/ccxt.md, "Latency")
                latency_s = rest.last_latency_s
                ctx.on_request("fetch_ticker", status,
                               latency_s if latency_s is not None
                               else ctx.clock.monotonic() - started,
                               ctx.clock.wall_ms() / 1000.0)
            self.exchange.rest.poll()
            await asyncio.sleep(ctx.config.probe_interval_s)

    def venue_input(self, now: float, wall_s: float) -> VenueInput:
        health = self.exchange.rest.health
        until = None if health.until is None else wall_s + max(0.0, health.until - now)
        return VenueInput(state=health.state.value, until_wall_s=until)

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self.exchange.close()


def guard_config(cfg: MonitorConfig) -> GuardConfig:
    """The guard's settings from the monitor's: the rules file, native or ccxt's readers, and
    the ``[freshness]`` table for every guarded stream."""
    from venueguard.ccxt import GuardConfig, StreamConfig

    return GuardConfig(rules_text=cfg.rules_text, rules_source=cfg.rules_path or "<rules>",
                       native_streams=cfg.native_streams,
                       streams=StreamConfig(freshness=cfg.thresholds.learned_freshness))


async def open_sources(ctx: MonitorContext) -> tuple[CcxtMarket, CcxtVenue]:
    """Build the guarded exchange and the market and venue sources (module docstring)."""
    from venueguard.ccxt import guard

    cfg = ctx.config
    exchange_id = exchange_id_of(cfg.venue)
    klass = resolve_exchange(exchange_id, pro=True)
    settings: dict[str, Any] = {}
    if cfg.api_key is not None:
        settings.update(apiKey=cfg.api_key, secret=cfg.api_secret)
    if cfg.api_password is not None:
        settings["password"] = cfg.api_password
    raw = klass(settings)
    if cfg.sim_url is not None:
        point_at(raw, ctx.rest_url, ctx.ws_url)
        # a simulator serves the venue's trading API only: no spot wallet lookups at load time
        raw.options = {**raw.options, "fetchCurrencies": False, "fetchMargins": False}
    exchange = guard(raw, guard_config(cfg), events=ctx.events, metrics=ctx.metrics,
                     alerts=ctx.alerts, clock=ctx.clock)
    try:
        require_websocket(raw)
        await exchange.load_markets()
        symbol = _unified_symbol(raw, cfg.symbol)
    except BaseException:
        await exchange.close()
        raise
    ctx.market, ctx.rest = exchange, exchange
    return CcxtMarket(exchange, symbol, ctx.clock), CcxtVenue(exchange, symbol, ctx)


def _unified_symbol(raw: Any, symbol: str) -> str:
    markets = getattr(raw, "markets", None) or {}
    if symbol in markets:
        return symbol
    by_id = getattr(raw, "markets_by_id", None) or {}
    found = by_id.get(symbol) or by_id.get(symbol.upper())
    if found:
        first = found[0] if isinstance(found, list) else found
        return str(first["symbol"])
    raise errors.ConfigError(f"symbol {symbol!r} is not listed by ccxt {raw.id}: pass a unified "
                             "symbol such as BTC/USDT:USDT with --symbol")
