"""The monitor's adapters over the sessions: market data in, venue health and probe out.

:func:`open_sources` builds, for one :class:`~venueguard.app.monitor.MonitorContext`:

- a :class:`~venueguard.io.ws_session.MarketDataSession` on ``orderBookL2:SYM`` and
  ``trade:SYM`` (public, no credentials; with ``--trade demo`` it also authenticates and adds
  the private ``order``, ``execution`` and ``position`` topics for the trader), wrapped in
  :class:`SessionMarket` which reads the book, the tape and the liveness each tick;
- a :class:`~venueguard.io.http_session.RestSession` (shared with a trader through
  ``ctx.rest``) whose transport reports every response's latency to ``ctx.on_request``, and
  the :class:`~venueguard.app.probe.HealthProbe` that keeps it busy at a low rate, wrapped in
  :class:`SessionVenue`. The order probe runs only on the simulator (``--venue sim``) and only
  without a trader (whose own orders then show the venue's health).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from venueguard.app.probe import HealthProbe, ProbeConfig
from venueguard.app.ticker import MarketInput, VenueInput
from venueguard.config import Thresholds
from venueguard.core.backoff import BackoffConfig
from venueguard.core.budget import BudgetConfig
from venueguard.core.liveness import LivenessConfig
from venueguard.core.trades import Trade
from venueguard.io.fleet_link import Role
from venueguard.io.http_session import RestConfig, RestSession
from venueguard.io.http_transport import AiohttpTransport
from venueguard.io.rest_transport import RawResponse, RestTransport, TransportFailure
from venueguard.io.ws_session import MarketDataSession, MdConfig, default_liveness
from venueguard.venues.bitmex.timefmt import parse_ms_or_none

if TYPE_CHECKING:
    from venueguard.app.monitor import MonitorContext

SYMBOL_CHECK_TIMEOUT_S = 10.0
RequestHook = Callable[[str, int | None, float | None, float], None]
_IMBALANCE_LEVELS = 5


class ObservedTransport:
    """A :class:`~venueguard.io.rest_transport.RestTransport` around another that reports each
    attempt: endpoint, status (None on a transport failure), latency."""

    def __init__(self, inner: RestTransport,
                 on_response: Callable[[str, int | None, float | None], None],
                 prefix: str) -> None:
        self._inner = inner
        self._on_response = on_response
        self._prefix = prefix

    async def send(self, verb: str, url: str, headers: Mapping[str, str], body: bytes | None,
                   *, connect_s: float, sock_read_s: float) -> RawResponse:
        path = urlsplit(url).path
        if path.startswith(self._prefix):
            path = path[len(self._prefix):]
        endpoint = f"{verb} {path}"
        try:
            response = await self._inner.send(verb, url, headers, body, connect_s=connect_s,
                                              sock_read_s=sock_read_s)
        except TransportFailure:
            self._on_response(endpoint, None, None)
            raise
        self._on_response(endpoint, response.status, response.latency_s)
        return response

    async def close(self) -> None:
        await self._inner.close()


class SessionMarket:
    """The monitor's view of a market-data session (``run`` and ``market_input``)."""

    def __init__(self, session: MarketDataSession, symbol: str) -> None:
        self.session = session
        self.symbol = symbol

    async def run(self) -> None:
        await self.session.run()

    def best_bid(self) -> float | None:
        view = self.session.book(self.symbol)
        bid = view.best_bid() if view.is_fresh else None
        return None if bid is None else float(bid[0])

    def market_input(self, now: float) -> MarketInput:
        session = self.session
        view = session.book(self.symbol)
        book = view.book
        bid, ask = view.best_bid(), view.best_ask()
        bids, asks = book.depth(_IMBALANCE_LEVELS)
        tape = session.trades(self.symbol)
        last = tape.last() if tape is not None else None
        status = session.state.liveness.status(now)
        age = view.age_s
        connected = session.live and session.connected_at is not None
        return MarketInput(
            fresh=view.is_fresh,
            best_bid=float(bid[0]) if bid is not None and book.valid else None,
            best_ask=float(ask[0]) if ask is not None and book.valid else None,
            bid_qty=float(sum(size for _, size in bids)),
            ask_qty=float(sum(size for _, size in asks)),
            data_age_s=age if math.isfinite(age) else None,
            top_changes_total=book.top_price_changes,
            trades_total=tape.total_trades if tape is not None else 0,
            volume_total=float(tape.total_volume) if tape is not None else 0.0,
            last_trade_now=last.now if last is not None else None,
            connected=connected,
            connection_age_s=(now - session.connected_at
                              if connected and session.connected_at is not None else None),
            pong_age_s=status.pong_age_s,
            lag_s=self._lag_s(last, now),
        )

    def _lag_s(self, last: Trade | None, now: float) -> float | None:
        """How far behind the venue's clock the newest trade arrived (None if unknown)."""
        if last is None:
            return None
        ts_ms = parse_ms_or_none(last.timestamp)
        if ts_ms is None:
            return None
        received_wall_ms = self.session.clock.wall_ms() - (now - last.now) * 1000.0
        return (received_wall_ms - ts_ms) / 1000.0


class SessionVenue:
    """The monitor's view of the REST session: the probe loop and the venue health."""

    def __init__(self, rest: RestSession, probe: HealthProbe) -> None:
        self.rest = rest
        self.probe = probe

    async def run(self) -> None:
        await self.probe.run()

    def venue_input(self, now: float, wall_s: float) -> VenueInput:
        health = self.rest.health
        until = health.until
        return VenueInput(health.state.value,
                          wall_s + (until - now) if until is not None and until > now else None)

    async def aclose(self) -> None:
        await self.probe.cleanup()
        await self.rest.close()


class _RestProbeClient:
    """The probe's three calls on a :class:`RestSession`."""

    def __init__(self, rest: RestSession) -> None:
        self.rest = rest

    async def get_instrument(self, symbol: str) -> Mapping[str, object] | None:
        rows = await self.rest.request("GET", "/instrument", query={"symbol": symbol,
                                                                    "count": 1})
        if isinstance(rows, list) and rows and isinstance(rows[0], dict):
            return rows[0]
        return None

    async def place_post_only(self, symbol: str, cl_ord_id: str, qty: int, price: float) -> None:
        await self.rest.place_order(symbol, "Buy", qty, price, cl_ord_id=cl_ord_id,
                                    ord_type="Limit", exec_inst="ParticipateDoNotInitiate",
                                    text="venueguard health probe")

    async def cancel(self, cl_ord_ids: list[str]) -> None:
        await self.rest.cancel_orders(cl_ord_ids=cl_ord_ids, text="venueguard health probe")


def liveness_config(t: Thresholds) -> LivenessConfig:
    """The session's liveness settings with the ``[thresholds]`` of the config file."""
    base = default_liveness()
    return LivenessConfig(ping_after_s=t.heartbeat_ping_after_s,
                          pong_timeout_s=t.heartbeat_pong_timeout_s,
                          max_data_age_s=t.default_freshness_s,
                          channel_max_age_s=dict(t.freshness_s),
                          quiet_channels=base.quiet_channels - set(t.freshness_s),
                          freshness=t.learned_freshness)


async def open_sources(ctx: MonitorContext) -> tuple[SessionMarket, SessionVenue]:
    """Build the market and venue sources for the monitor (see the module docstring)."""
    cfg = ctx.config
    symbol = cfg.symbol
    trading = cfg.trade == "demo"
    topics = [f"orderBookL2:{symbol}", f"trade:{symbol}"]
    if trading:
        topics += ["order", "execution", "position"]
    md = MarketDataSession(
        MdConfig(url=ctx.ws_url, topics=tuple(topics),
                 api_key=cfg.api_key if trading else None,
                 api_secret=cfg.api_secret if trading else None, rules=cfg.rules,
                 liveness=liveness_config(cfg.thresholds),
                 backoff=BackoffConfig(base_s=cfg.thresholds.ws_backoff_base_s,
                                       cap_s=cfg.thresholds.ws_backoff_cap_s,
                                       reset_after_s=60.0)),
        events=ctx.events, metrics=ctx.metrics, alerts=ctx.alerts, clock=ctx.clock,
        opens=ctx.fleet)
    market = SessionMarket(md, symbol)

    sent = [0]                     # requests the session sent (the probe skips a busy session)

    def observed(endpoint: str, status: int | None, latency_s: float | None) -> None:
        sent[0] += 1
        if ctx.on_request is not None:
            ctx.on_request(endpoint, status, latency_s, ctx.clock.wall_ms() / 1000.0)

    api_prefix = "/api/v1"
    rest = RestSession(
        RestConfig(base_url=ctx.rest_url.rstrip("/") + api_prefix, api_key=cfg.api_key,
                   api_secret=cfg.api_secret, rules=cfg.rules,
                   backoff=BackoffConfig(base_s=cfg.thresholds.rest_backoff_base_s,
                                         cap_s=cfg.thresholds.rest_backoff_cap_s,
                                         reset_after_s=0.0),
                   budget=BudgetConfig(ratio=cfg.thresholds.retry_budget_ratio)),
        events=ctx.events, metrics=ctx.metrics, alerts=ctx.alerts, clock=ctx.clock,
        transport=ObservedTransport(AiohttpTransport(), observed, api_prefix), fleet=ctx.fleet)
    order_probe = cfg.is_sim and not trading and cfg.api_key is not None
    probe = HealthProbe(
        _RestProbeClient(rest),
        ProbeConfig(instrument_every_s=cfg.probe_interval_s,
                    order_every_s=cfg.order_probe_interval_s if order_probe else None),
        symbol=symbol, clock=ctx.clock, best_bid=market.best_bid,
        active=None if ctx.fleet is None else _not_follower(ctx.fleet),
        traffic=lambda: sent[0])
    try:
        ctx.instrument = await check_symbol(rest, symbol, ctx.rest_url)
    except BaseException:
        await rest.close()
        raise
    ctx.market, ctx.rest = md, rest
    return market, SessionVenue(rest, probe)


async def check_symbol(rest: RestSession, symbol: str, where: str,
                       timeout_s: float = SYMBOL_CHECK_TIMEOUT_S) -> Mapping[str, object] | None:
    """Refuse (StartupError) a symbol the venue answers it does not list: an empty
    ``GET /instrument?symbol=...``. A stream of an unknown topic would only ever look stale.
    Any other outcome (an error, a timeout: the venue may be failing right now) starts the
    monitor, which then shows what the venue does. Returns the instrument's row when the
    venue gave one (a trader takes its tick and lot sizes from it)."""
    from venueguard.app.monitor import StartupError

    try:
        async with asyncio.timeout(timeout_s):
            rows = await rest.request("GET", "/instrument", query={"symbol": symbol, "count": 1})
    except Exception:  # not an answer about the symbol
        return None
    if isinstance(rows, list) and rows and isinstance(rows[0], dict):
        return dict(rows[0])
    if not (isinstance(rows, list) and not rows):
        return None
    listed = ""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(timeout_s):
            active = await rest.request("GET", "/instrument/active")
        names = sorted({str(r.get("symbol")) for r in active if isinstance(r, dict)})
        listed = f" (it lists: {', '.join(names[:12])}{', ...' if len(names) > 12 else ''})"
    raise StartupError(f"unknown symbol {symbol!r} at {where}{listed}; choose one with --symbol")


def _not_follower(fleet: Any) -> Callable[[], bool]:
    """In a fleet the lease owner probes for the account (alone: every member does)."""
    return lambda: bool(fleet.role() is not Role.FOLLOWER)
