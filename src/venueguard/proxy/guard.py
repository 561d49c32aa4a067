"""Guarding everything behind the proxy (``--guard``, ``--ws-silence-s``, ``--redis``).

- Every answer a client gets is classified by the dialect's rule table (the monitor's
  classifier), and the venue health follows it, with the monitor's events (``rest.error``,
  ``venue.state``, ``ws.stale``) and metrics (``venueguard_rest_requests_total``,
  ``venueguard_rest_latency_seconds``, ``venueguard_rest_errors_total``,
  ``venueguard_venue_state``, ``venueguard_ws_stale_total``...) served at ``/metrics``. Endpoints
  are ``METHOD path`` without the query string (Binance signs in the query). With a dashboard
  port, the monitor's live dashboard (503s per minute, latency, errors by kind, venue state, the
  event list) is served there, on its own port since every path of the proxy's belongs to the
  venue.
- With ``--redis`` the proxies and bots on one account share its limits, cooldowns and bans
  (:mod:`venueguard.fleet`): a request the shared buckets cannot fit, or sent while the account is
  cooling down or blocked (seen by any member), is refused here with the dialect's 429 and never
  reaches the venue; a cooldown or block this proxy sees is published to the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import ssl
from typing import TYPE_CHECKING

from aiohttp import web

from venueguard.core.classify import Classification, Outcome, Transport, classify
from venueguard.core.health import VenueHealth, VenueState
from venueguard.core.kinds import Kind
from venueguard.io.notify import HealthReporter, Notifier
from venueguard.sim.clock import SimClock
from venueguard.telemetry.events import EventLog, iso_utc_ms
from venueguard.telemetry.metrics import Metrics
from venueguard.telemetry.series import SeriesStore

if TYPE_CHECKING:
    from venueguard.app.dashboard import DashboardServer
    from venueguard.fleet import Fleet
    from venueguard.proxy.server import ProxyServer
    from venueguard.proxy.ws import Bridge

__all__ = ["Guard"]

_KEY_HEADERS = ("api-key", "X-MBX-APIKEY")
_MAX_FLEET_WAIT_S = 5.0


def _transport_of(exc: BaseException) -> tuple[Transport, bool | None]:
    from venueguard.proxy.upstream import UpstreamClosed, UpstreamUnreachable

    if isinstance(exc, UpstreamUnreachable):
        if isinstance(exc.__cause__, ssl.SSLError):
            return Transport.TLS, False
        return Transport.CONNECTION_REFUSED, False
    if isinstance(exc, TimeoutError):
        return Transport.READ_TIMEOUT, True
    if isinstance(exc, UpstreamClosed | ConnectionError):
        return Transport.RESET_AFTER_SEND, True
    return Transport.OTHER, None


class _ProxyClock:
    """The proxy's injected clock, as the sessions' ``Clock`` (``monotonic``, ``wall_ms``)."""

    def __init__(self, clock: SimClock) -> None:
        self._clock = clock

    def monotonic(self) -> float:
        return self._clock.monotonic_s()

    def wall_ms(self) -> int:
        return int(self._clock.wall_s() * 1000)


class Guard:
    """Classification, metrics, events and the shared account of one proxy."""

    def __init__(self, proxy: ProxyServer, *, events: EventLog | None = None) -> None:
        self.proxy = proxy
        self.clock = _ProxyClock(proxy.clock)
        cfg = proxy.config
        self.enabled = cfg.guard or cfg.redis_url is not None
        #: With ``--redis``: requests ask the shared account first (:meth:`admit`).
        self.shared = cfg.redis_url is not None
        self.rules = proxy.dialect.rules()
        self.events = events if events is not None else EventLog()
        self.metrics = Metrics(venue=proxy.dialect.name) if self.enabled else None
        self.series = SeriesStore() if self.enabled else None
        self.dashboard: DashboardServer | None = None
        self._ws_task: asyncio.Task[None] | None = None
        self._ws_closed = 0  # messages of streams closed since the last poll, not yet counted
        self.health = VenueHealth(self.rules, self.clock.monotonic())
        self.notify = Notifier(self.events, self.metrics)
        self._reporter = HealthReporter(self.health, self.notify, self.clock)
        self._fleets: dict[str, Fleet] = {}
        self._fleet_lock = asyncio.Lock()

    async def start(self) -> None:
        """Check that what the options need is there (``--redis`` needs the redis extra)."""
        if self.shared:
            try:
                import redis  # noqa: F401
            except ImportError:
                raise ValueError("--redis needs the redis extra: "
                                 "pip install 'venueguard[redis]'") from None
        if self.metrics is not None:
            self.metrics.set_venue_state(self.health.state.value)
            self._ws_task = asyncio.get_running_loop().create_task(self._ws_loop(),
                                                                   name="proxy-ws-metrics")
        cfg = self.proxy.config
        if cfg.dashboard_port is not None and self.metrics is not None:
            from venueguard.app.dashboard import create_dashboard_app, start_dashboard

            app = create_dashboard_app(self._state, self.metrics, series=self.series,
                                       events=self.events, allowed_hosts=[cfg.host])
            self.dashboard = await start_dashboard(app, host=cfg.host, port=cfg.dashboard_port)

    def _state(self) -> dict[str, object]:
        """The dashboard's ``/api/state``: the monitor's shape, from the proxy's metrics."""
        from venueguard.app.dashboard import state_from_metrics

        assert self.metrics is not None
        until = self.health.until
        now = self.clock.monotonic()
        wall_s = self.clock.wall_ms() / 1000
        until_iso = (iso_utc_ms(wall_s + (until - now))
                     if until is not None and until > now else None)
        return state_from_metrics(self.metrics, self.series, symbol=self.proxy.dialect.name,
                                  now_s=wall_s, extra={"venue_state": self.health.state.value,
                                                       "venue_state_until": until_iso})

    async def _ws_loop(self, every_s: float = 1.0) -> None:
        while True:
            self.poll_streams()
            await asyncio.sleep(every_s)

    def poll_streams(self) -> None:
        """Stream metrics (channel ``proxy``): messages forwarded from the venues, and the data
        age of the stalest open stream (what an alert on silent streams needs)."""
        metrics = self.metrics
        if metrics is None:
            return
        bridges = list(self.proxy.bridges.values())
        new, self._ws_closed = self._ws_closed, 0
        for bridge in bridges:
            new += bridge.messages - bridge.counted
            bridge.counted = bridge.messages
        if new > 0:
            metrics.ws_messages_total.labels(table="proxy").inc(new)
        if bridges:
            now = self.clock.monotonic()
            age = max(now - b.last_data_s for b in bridges)
            metrics.set_data_age("proxy", age, self.clock.wall_ms() / 1000)

    async def stop(self) -> None:
        task, self._ws_task = self._ws_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.dashboard is not None:
            await self.dashboard.close()
            self.dashboard = None
        fleets, self._fleets = list(self._fleets.values()), {}
        for fleet in fleets:
            await fleet.aclose()

    # -- answers -----------------------------------------------------------------------------
    def answered(self, method: str, path: str, response: web.Response,
                 latency_s: float | None) -> web.Response:
        """Classify the answer a client is about to get; returns it unchanged."""
        if not self.enabled:
            return response
        now = self.clock.monotonic()
        wall_ms = self.clock.wall_ms()
        body = response.body if isinstance(response.body, bytes) else b""
        verdict = classify(Outcome(status=response.status, headers=response.headers,
                                   body=body, wall_ms=wall_ms), self.rules)
        self._apply(method, path, verdict, now, str(response.status), latency_s,
                    ok=200 <= response.status < 300)
        return response

    def failed(self, method: str, path: str, exc: BaseException) -> None:
        """The upstream could not be reached or did not answer."""
        if not self.enabled:
            return
        transport, sent = _transport_of(exc)
        verdict = classify(Outcome(transport=transport, sent=sent), self.rules)
        self._apply(method, path, verdict, self.clock.monotonic(), "none", None, ok=False)

    def _apply(self, method: str, path: str, verdict: Classification, now: float, status: str,
               latency_s: float | None, *, ok: bool) -> None:
        before = (self.health.state, self.health.until)
        self.health.on_outcome(verdict, now, latency_s=latency_s)
        metrics = self.metrics
        if metrics is not None:
            metrics.observe_rest(method, path, status, latency_s)
        if self.series is not None:
            wall_s = self.clock.wall_ms() / 1000
            if status.isdigit():
                self.series.on_http_status(int(status), wall_s)
            if latency_s is not None:
                self.series.on_latency(latency_s, wall_s)
        if verdict.kind is not Kind.OK and not ok:
            if metrics is not None:
                metrics.rest_errors_total.labels(verdict.kind.value).inc()
            self.notify.log("rest.error", status=verdict.status, kind=verdict.kind.value,
                            endpoint=f"{method} {path}", message=verdict.message)
        after = (self.health.state, self.health.until)
        for fleet in self._fleets.values():
            if verdict.rate_limit is not None:
                fleet.on_rate_limit(verdict.rate_limit.limit, verdict.rate_limit.remaining)
            if after != before and after[0] in (VenueState.COOLDOWN, VenueState.BLOCKED):
                fleet.on_venue_state(after[0], after[1], verdict.kind, now)
        self._reporter.poll(now)

    # -- the shared account --------------------------------------------------------------------
    async def admit(self, request: web.Request, order_route: bool) -> web.Response | None:
        """None when the request may go upstream, else the answer refusing it here."""
        fleet = await self._fleet(next((request.headers[h] for h in _KEY_HEADERS
                                        if h in request.headers), None))
        now = self.clock.monotonic()
        self._reporter.poll(now)
        dialect = self.proxy.dialect
        if not self.health.allows_requests(now):
            until = self.health.until
            retry_s = 3600 if until is None else max(1, math.ceil(until - now))
            self.notify.log("proxy.refused", endpoint=f"{request.method} {request.path}",
                            state=self.health.state.value, retry_after_s=retry_s)
            return dialect.rate_limited(retry_s)
        wait = await fleet.reserve(order_route=order_route, first=True,
                                   max_wait_s=_MAX_FLEET_WAIT_S)
        if wait is None:
            self.notify.log("proxy.refused", endpoint=f"{request.method} {request.path}",
                            state="shared_limit", retry_after_s=math.ceil(_MAX_FLEET_WAIT_S))
            return dialect.rate_limited(math.ceil(_MAX_FLEET_WAIT_S))
        if wait > 0:
            await asyncio.sleep(wait)
        return None

    async def _fleet(self, api_key: str | None) -> Fleet:
        from venueguard.fleet import Fleet, FleetConfig

        tag = api_key or ""
        async with self._fleet_lock:
            fleet = self._fleets.get(tag)
            if fleet is None:
                cfg = self.proxy.config
                fleet = Fleet(FleetConfig(redis_url=cfg.redis_url,
                                          venue=self.proxy.dialect.name),
                              api_key=api_key, events=self.events, clock=self.clock)
                fleet.attach(self.health, self._reporter.poll)
                await fleet.start()
                self._fleets[tag] = fleet
            return fleet

    # -- streams ---------------------------------------------------------------------------------
    def ws_closed(self, bridge: Bridge) -> None:
        """A stream ended (after :meth:`ProxyServer.close_bridge` removed it)."""
        self._ws_closed += bridge.messages - bridge.counted
        bridge.counted = bridge.messages
        if bridge.silenced:
            threshold = self.proxy.config.ws_silence_s
            self.notify.log("ws.stale", reason="data_age", threshold_s=threshold,
                            connection=bridge.serial)
            if self.metrics is not None:
                self.metrics.ws_stale_total.labels(reason="data_age").inc()

    async def serve_metrics(self, request: web.Request) -> web.Response:
        if self.metrics is None:
            raise web.HTTPNotFound()
        return web.Response(body=self.metrics.render(),
                            content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})
