"""Guarding everything behind the proxy (``--guard``, ``--ws-silence-s``, ``--redis``).

- Every answer a client gets is classified by the dialect's rule table (the monitor's
  classifier), and the venue health follows it, with the monitor's events (``rest.error``,
  ``venue.state``, ``ws.stale``) and metrics (``venueguard_rest_requests_total``,
  ``venueguard_rest_latency_seconds``, ``venueguard_rest_errors_total``,
  ``venueguard_venue_state``, ``venueguard_ws_stale_total``...) served at ``/metrics``. Endpoints
  are ``METHOD path`` without the query string (Binance signs in the query). With a dashboard
  port, the monitor's live dashboard (503s per minute, latency, errors by kind, venue state, the
  event list) is served there, on its own port since every path of the proxy's belongs to the
  venue. With a journal (``--journal``), the monitor's recorder writes the events and the
  per-second samples ``venueguard report`` reads (:mod:`venueguard.proxy.recording`).
- Health is per account (:mod:`venueguard.proxy.accounts`): the API key a request carries,
  hashed, or the ``public`` account without one. A cooldown or ban of key A is A's; one of the
  egress IP is every account's. Events name the account by its hash (``account``), never the key.
- With ``--redis`` the proxies and bots on one account share its limits, cooldowns and bans
  (:mod:`venueguard.fleet`): a request the account's shared buckets cannot fit, or sent while
  its account is cooling down or blocked (seen by any member), is refused here with the
  dialect's 429 and never reaches the venue; a cooldown or block this proxy sees is published
  to the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import ssl
from typing import TYPE_CHECKING

from aiohttp import web

from venueguard.core.classify import Classification, Outcome, Transport, classify
from venueguard.core.health import VenueState
from venueguard.core.kinds import Kind
from venueguard.core.regime import RegimeDetector
from venueguard.io.journal import JournalError
from venueguard.io.notify import Notifier
from venueguard.proxy.accounts import Account, Accounts, key_of
from venueguard.sim.clock import SimClock
from venueguard.telemetry.events import EventLog, iso_utc_ms
from venueguard.telemetry.metrics import Metrics
from venueguard.telemetry.series import SeriesStore

if TYPE_CHECKING:
    from venueguard.app.dashboard import DashboardServer
    from venueguard.fleet import Fleet
    from venueguard.proxy.recording import ProxyJournal
    from venueguard.proxy.server import ProxyServer
    from venueguard.proxy.ws import Bridge

__all__ = ["Guard"]

_MAX_FLEET_WAIT_S = 5.0
_QUOTE_MAX_AGE_S = 5.0  # an older top of book is not recorded as the market's


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
        self.notify = Notifier(self.events, self.metrics)
        #: Each account's health and fleet link, by the hash of its API key.
        self.accounts = Accounts(venue=proxy.dialect.name, rules=self.rules, events=self.events,
                                 metrics=self.metrics, clock=self.clock)
        self.accounts.on_evict = self._evicted
        self._closing: set[asyncio.Task[None]] = set()
        self._fleet_lock = asyncio.Lock()
        self.journal: ProxyJournal | None = None
        #: The outage regime over every answer (the venue's, not one account's), as the
        #: monitor's: ``regime.changed`` events, ``venueguard_regime`` and the journal's series.
        self.regime = RegimeDetector(now=self.clock.monotonic())
        #: The first symbol whose top of book went through, and its latest (bid, ask, when):
        #: the spread the journal records (the report draws one market).
        self.quoted_symbol: str | None = None
        self._quote: tuple[float, float, float] | None = None

    async def start(self) -> None:
        """Check that what the options need is there (``--redis`` needs the redis extra)."""
        if self.shared:
            try:
                import redis  # noqa: F401
            except ImportError:
                raise ValueError("--redis needs the redis extra: "
                                 "pip install 'venueguard[redis]'") from None
        cfg = self.proxy.config
        if cfg.journal is not None and self.metrics is not None:
            from venueguard.proxy.recording import ProxyJournal

            try:
                self.journal = ProxyJournal.open(cfg.journal, events=self.events,
                                                 clock=self.clock, symbol=self.proxy.dialect.name)
            except (JournalError, OSError) as exc:
                raise ValueError(f"journal {exc}") from exc
        if self.metrics is not None:
            self.metrics.set_venue_state(VenueState.HEALTHY.value)
            self._ws_task = asyncio.get_running_loop().create_task(self._tick_loop(),
                                                                   name="proxy-guard-tick")
        if cfg.dashboard_port is not None and self.metrics is not None:
            from venueguard.app.dashboard import create_dashboard_app, start_dashboard

            app = create_dashboard_app(self._state, self.metrics, series=self.series,
                                       events=self.events, allowed_hosts=[cfg.host])
            self.dashboard = await start_dashboard(app, host=cfg.host, port=cfg.dashboard_port)

    def _state(self) -> dict[str, object]:
        """The dashboard's ``/api/state``: the monitor's shape, from the proxy's metrics."""
        from venueguard.app.dashboard import state_from_metrics

        assert self.metrics is not None
        worst = self.accounts.worst()
        until = worst.health.until if worst is not None else None
        now = self.clock.monotonic()
        wall_s = self.clock.wall_ms() / 1000
        until_iso = (iso_utc_ms(wall_s + (until - now))
                     if until is not None and until > now else None)
        state = worst.health.state if worst is not None else VenueState.HEALTHY
        return state_from_metrics(self.metrics, self.series, symbol=self.proxy.dialect.name,
                                  now_s=wall_s, extra={
                                      "venue_state": state.value, "venue_state_until": until_iso,
                                      "venue_state_account": worst.tag if worst else None,
                                      "accounts": len(self.accounts)})

    async def _tick_loop(self, every_s: float = 1.0) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(every_s)

    async def tick(self) -> None:
        """Once a second: stream metrics, the accounts' timers, and the journal's samples."""
        data_age_s = self.poll_streams()
        now = self.clock.monotonic()
        self.accounts.poll(now)
        for change in self.regime.poll(now):
            self.notify.log("regime.changed", from_=change.from_.value, to=change.to.value,
                            reason=change.reason, score=round(change.score, 2),
                            intensity=round(change.intensity, 2))
            if self.metrics is not None:
                self.metrics.set_regime(change.to.value)
        if self.journal is not None and self.metrics is not None:
            worst = self.accounts.worst()
            state = worst.health.state if worst is not None else VenueState.HEALTHY
            await self.journal.tick(self.clock.wall_ms() / 1000, self.metrics, state.value,
                                    self.regime.regime.gauge, data_age_s,
                                    self.quoted_symbol, self._fresh_quote(now))

    def poll_streams(self) -> float | None:
        """Stream metrics (channel ``proxy``): messages forwarded from the venues, and the data
        age of the stalest open stream (what an alert on silent streams needs), returned (None
        without open streams)."""
        metrics = self.metrics
        if metrics is None:
            return None
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
            return age
        return None

    def on_quote(self, symbol: str, bid: float, ask: float) -> None:
        """A venue's best bid and ask for ``symbol`` went through (see
        :meth:`venueguard.proxy.ws.Bridge.watch_quotes`): the monitor's market gauges, and the
        journal's spread for the first symbol seen."""
        metrics = self.metrics
        if metrics is not None:
            metrics.best_bid.labels(symbol=symbol).set(bid)
            metrics.best_ask.labels(symbol=symbol).set(ask)
            metrics.spread.labels(symbol=symbol).set(ask - bid)
        if self.quoted_symbol is None:
            self.quoted_symbol = symbol
        if symbol == self.quoted_symbol:
            self._quote = (bid, ask, self.clock.monotonic())

    def _fresh_quote(self, now: float) -> tuple[float, float] | None:
        quote = self._quote
        if quote is None or now - quote[2] > _QUOTE_MAX_AGE_S:
            return None
        return quote[0], quote[1]

    async def stop(self) -> None:
        task, self._ws_task = self._ws_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.journal is not None:
            try:
                await self.tick()  # the last second's samples
            finally:
                journal, self.journal = self.journal, None
                await journal.close()
        if self.dashboard is not None:
            await self.dashboard.close()
            self.dashboard = None
        while self._closing:  # fleets being joined (to publish) or closed (evicted)
            with contextlib.suppress(Exception):
                await self._closing.pop()
        for account in self.accounts.all():
            fleet, account.fleet = account.fleet, None
            if fleet is not None:
                await fleet.aclose()

    def _poll_account(self, account: Account, now: float) -> None:
        self.accounts.poll(now, account)

    def _evicted(self, account: Account) -> None:
        fleet, account.fleet = account.fleet, None
        if fleet is not None:
            task = asyncio.get_running_loop().create_task(fleet.aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    # -- answers -----------------------------------------------------------------------------
    def answered(self, request: web.Request, response: web.Response,
                 latency_s: float | None) -> web.Response:
        """Classify the answer a client is about to get; returns it unchanged."""
        if not self.enabled:
            return response
        method, path = request.method, request.path
        now = self.clock.monotonic()
        wall_ms = self.clock.wall_ms()
        body = response.body if isinstance(response.body, bytes) else b""
        verdict = classify(Outcome(status=response.status, headers=response.headers,
                                   body=body, wall_ms=wall_ms), self.rules)
        self._apply(request, method, path, verdict, now, str(response.status), latency_s,
                    ok=200 <= response.status < 300)
        return response

    def failed(self, request: web.Request, exc: BaseException) -> None:
        """The upstream could not be reached or did not answer."""
        if not self.enabled:
            return
        transport, sent = _transport_of(exc)
        verdict = classify(Outcome(transport=transport, sent=sent), self.rules)
        self._apply(request, request.method, request.path, verdict, self.clock.monotonic(),
                    "none", None, ok=False)

    def _apply(self, request: web.Request, method: str, path: str, verdict: Classification,
               now: float, status: str, latency_s: float | None, *, ok: bool) -> None:
        key = key_of(request.headers, self.proxy.dialect.key_headers)
        account = self.accounts.account(self.accounts.tag_for(key))
        health = account.health
        before = (health.state, health.until)
        health.on_outcome(verdict, now, latency_s=latency_s)
        metrics = self.metrics
        if metrics is not None:
            metrics.observe_rest(method, path, status, latency_s)
        if self.series is not None:
            wall_s = self.clock.wall_ms() / 1000
            if status.isdigit():
                self.series.on_http_status(int(status), wall_s)
            if latency_s is not None:
                self.series.on_latency(latency_s, wall_s)
                if self.journal is not None and status.isdigit():
                    self.journal.on_request(f"{method} {path}", int(status), latency_s, wall_s)
        if verdict.kind is not Kind.OK and not ok:
            self.regime.on_outcome(verdict.kind, now)
            if metrics is not None:
                metrics.rest_errors_total.labels(verdict.kind.value).inc()
            self.notify.log("rest.error", status=verdict.status, kind=verdict.kind.value,
                            endpoint=f"{method} {path}", message=verdict.message,
                            account=account.tag)
        after = (health.state, health.until)
        entered = after != before and after[0] in (VenueState.COOLDOWN, VenueState.BLOCKED)
        fleet = account.fleet
        if fleet is not None:
            if verdict.rate_limit is not None:
                fleet.on_rate_limit(verdict.rate_limit.limit, verdict.rate_limit.remaining)
            if entered:
                fleet.on_venue_state(after[0], after[1], verdict.kind, now)
        elif entered and self.shared:  # refused before it joined (an edge page): join, tell
            task = asyncio.get_running_loop().create_task(
                self._publish(account.tag, key, after[0], after[1], verdict.kind, now))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        self.accounts.poll(now, account)
        if entered:
            self.accounts.entered(account, after[0], after[1], verdict.kind, now)

    # -- the shared account --------------------------------------------------------------------
    async def admit(self, request: web.Request, order_route: bool) -> web.Response | None:
        """None when the request may go upstream, else the answer refusing it here."""
        account, fleet = await self._fleet(request)
        now = self.clock.monotonic()
        self.accounts.poll(now, account)
        dialect = self.proxy.dialect
        health = account.health
        endpoint = f"{request.method} {request.path}"
        if not health.allows_requests(now):
            until = health.until
            retry_s = 3600 if until is None else max(1, math.ceil(until - now))
            self.notify.log("proxy.refused", endpoint=endpoint, state=health.state.value,
                            retry_after_s=retry_s, account=account.tag)
            return dialect.rate_limited(retry_s)
        wait = await fleet.reserve(order_route=order_route, first=True,
                                   max_wait_s=_MAX_FLEET_WAIT_S)
        if wait is None:
            self.notify.log("proxy.refused", endpoint=endpoint, state="shared_limit",
                            retry_after_s=math.ceil(_MAX_FLEET_WAIT_S), account=account.tag)
            return dialect.rate_limited(math.ceil(_MAX_FLEET_WAIT_S))
        if wait > 0:
            await asyncio.sleep(wait)
        return None

    async def _publish(self, tag: str, key: str | None, state: VenueState,
                       until: float | None, kind: Kind, now: float) -> None:
        _, fleet = await self._join(tag, key)
        fleet.on_venue_state(state, until, kind, now)

    async def _fleet(self, request: web.Request) -> tuple[Account, Fleet]:
        """The request's account and its fleet link (joined on the account's first request)."""
        key = key_of(request.headers, self.proxy.dialect.key_headers)
        return await self._join(self.accounts.tag_for(key), key)

    async def _join(self, tag: str, key: str | None) -> tuple[Account, Fleet]:
        from venueguard.fleet import Fleet, FleetConfig

        account = self.accounts.account(tag)
        if account.fleet is not None:
            return account, account.fleet
        async with self._fleet_lock:
            account = self.accounts.account(tag)  # may have been evicted and made anew
            if account.fleet is None:
                cfg = self.proxy.config
                fleet = Fleet(FleetConfig(redis_url=cfg.redis_url,
                                          venue=self.proxy.dialect.name),
                              api_key=key, events=self.events, clock=self.clock)
                fleet.attach(account.health, functools.partial(self._poll_account, account))
                await fleet.start()
                account.fleet = fleet
                if self.accounts.get(tag) is not account:  # evicted while joining
                    self._evicted(account)
                    return account, fleet
            return account, account.fleet

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
