"""The monitor's sources on Binance USDⓈ-M, natively (no ccxt): ``--venue binance-usdm`` and
``binance-usdm-testnet`` (``--sim-url`` points both at ``venueguard sim --dialect
binance-usdm``).

- market data: a :class:`~venueguard.io.binance_session.BinanceMarketDataSession` on
  ``<symbol>@depth@100ms``, ``@bookTicker`` and ``@aggTrade``, read by the same
  :class:`~venueguard.app.feeds.SessionMarket` as the BitMEX session;
- venue health: a public probe (``GET /fapi/v1/time`` every ``probe_interval_s``), each
  outcome classified by the rule table and fed to :class:`~venueguard.core.health.VenueHealth`.
  Watching only: ``--trade demo`` is refused at startup on these venues.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import aiohttp

from venueguard.app.feeds import SessionMarket
from venueguard.app.ticker import VenueInput
from venueguard.config import Thresholds
from venueguard.core.backoff import BackoffConfig
from venueguard.core.classify import Outcome, classify
from venueguard.core.health import VenueHealth
from venueguard.core.liveness import LivenessConfig
from venueguard.core.rules import RuleSet, default_rules
from venueguard.io.binance_session import (
    BINANCE_USDM,
    BINANCE_USDM_TESTNET,
    BinanceMarketDataSession,
    binance_config,
)
from venueguard.io.clock import Clock
from venueguard.io.http_transport import transport_failure

if TYPE_CHECKING:
    from venueguard.app.monitor import MonitorContext

__all__ = ["BINANCE_VENUES", "BinanceProbe", "endpoints", "liveness_config", "open_sources"]

BINANCE_VENUES = {"binance-usdm": BINANCE_USDM, "binance-usdm-testnet": BINANCE_USDM_TESTNET}


def endpoints(venue: str, sim_url: str | None) -> tuple[str, str]:
    """(REST base, websocket base) of ``venue``, or of the simulator at ``sim_url``."""
    if sim_url is not None:
        return sim_url, sim_url.replace("http://", "ws://", 1)
    ws, rest = BINANCE_VENUES[venue]
    return rest, ws


class BinanceProbe:
    """The venue side of the monitor on Binance: a public request at a low rate, classified."""

    def __init__(self, rest_url: str, interval_s: float, clock: Clock, ctx: MonitorContext,
                 rules: RuleSet | None = None) -> None:
        self.rest_url = rest_url.rstrip("/")
        self.interval_s = interval_s
        self.clock = clock
        self.ctx = ctx
        self.rules = rules or default_rules()
        self.health = VenueHealth(self.rules, clock.monotonic())
        self._http: aiohttp.ClientSession | None = None

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=10.0)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            self._http = http
            try:
                while True:
                    await self.probe_once()
                    await asyncio.sleep(self.interval_s)
            finally:
                self._http = None

    async def probe_once(self) -> None:
        assert self._http is not None
        started = self.clock.monotonic()
        latency: float | None = None
        try:
            async with self._http.get(f"{self.rest_url}/fapi/v1/time") as resp:
                body = await resp.read()
                latency = self.clock.monotonic() - started
                outcome = Outcome(status=resp.status, headers=resp.headers, body=body,
                                  sent=True, wall_ms=self.clock.wall_ms())
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            failure, sent = transport_failure(exc, sent=False)
            outcome = Outcome(transport=failure, sent=sent)
        now = self.clock.monotonic()
        verdict = classify(outcome, self.rules)
        metrics = self.ctx.metrics
        metrics.observe_rest("GET", "/fapi/v1/time",
                             "none" if outcome.status is None else str(outcome.status), latency)
        if outcome.status != 200:
            metrics.rest_errors_total.labels(verdict.kind.value).inc()
        self.health.on_outcome(verdict, now, latency_s=latency)
        self.health.poll(now)
        hook = self.ctx.on_request
        if hook is not None:
            hook("GET /fapi/v1/time", outcome.status, latency, self.clock.wall_ms() / 1000.0)

    def venue_input(self, now: float, wall_s: float) -> VenueInput:
        health = self.health
        until = health.until
        return VenueInput(health.state.value,
                          wall_s + (until - now) if until is not None and until > now else None)

    async def aclose(self) -> None:
        return None


def liveness_config(t: Thresholds) -> LivenessConfig:
    """The Binance session's liveness with the ``[thresholds]`` and ``[freshness]`` of the config
    file (depth and ticker within ``default_freshness_s``; aggregated trades may be quiet)."""
    return LivenessConfig(ping_after_s=t.heartbeat_ping_after_s,
                          pong_timeout_s=t.heartbeat_pong_timeout_s,
                          max_data_age_s=t.default_freshness_s,
                          quiet_channels=frozenset({"aggTrade"}),
                          freshness=t.learned_freshness)


async def open_sources(ctx: MonitorContext) -> tuple[SessionMarket, BinanceProbe]:
    """Build the market and venue sources for the monitor (see the module docstring)."""
    cfg = ctx.config
    t = cfg.thresholds
    config = binance_config(
        ctx.ws_url, ctx.rest_url, [cfg.symbol], liveness=liveness_config(t),
        backoff=BackoffConfig(base_s=t.ws_backoff_base_s, cap_s=t.ws_backoff_cap_s,
                              reset_after_s=60.0))
    md = BinanceMarketDataSession(config, events=ctx.events, metrics=ctx.metrics,
                                  alerts=ctx.alerts, clock=ctx.clock, opens=ctx.fleet)
    ctx.market = md
    return SessionMarket(md, cfg.symbol), BinanceProbe(ctx.rest_url, cfg.probe_interval_s,
                                                       ctx.clock, ctx, cfg.rules)
