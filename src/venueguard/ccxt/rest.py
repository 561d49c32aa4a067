"""Every REST call of a guarded ccxt exchange runs through venueguard's request pipeline.

:class:`CcxtRest` is the native :class:`~venueguard.io.http_session.RestSession` pipeline with
ccxt doing the signing and the sending: the same gate (BLOCKED, COOLDOWN, rate-limit wait,
adaptive throttling), the same venue health with its response-time rules, the same retry
budget and jittered backoff, the same ``rest.error`` events and metrics. Only the verdict comes
from :func:`venueguard.venues.ccxt.classify.classify_call`, because ccxt hides the response
behind an exception: two hooks on the exchange object (``fetch`` and ``on_rest_response``)
record the status, headers, body and response time of each HTTP exchange of the call.

Call order::

    rest = CcxtRest(exchange, facts, config, events=..., metrics=...)
    result = await rest.call("fetch_ticker", lambda: exchange.fetch_ticker("BTC/USDT"),
                             idempotent=True)

Reads (``idempotent=True``) are retried after any retryable verdict, ambiguous ones included.
Writes are retried only after a verdict that proves nothing was processed (overload, rate
limit, a connection never made) and always with the same arguments (the same client order
id); an ambiguous write raises :class:`~venueguard.ccxt.errors.OrderUnknown`. A failure the
venue reported reaches the caller as the ccxt exception ccxt raised, with the verdict attached
as ``error.venueguard``; a call refused locally raises one of ``venueguard.ccxt.errors``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any, TypeVar

import ccxt

from venueguard.ccxt.errors import (
    OrderUnknown,
    RequestThrottled,
    RetryBudgetExhausted,
    VenueBlocked,
    VenueCoolingDown,
)
from venueguard.core.backoff import Backoff, RandomSource
from venueguard.core.classify import Classification
from venueguard.core.health import VenueState
from venueguard.core.kinds import Kind
from venueguard.io import errors
from venueguard.io.clock import SYSTEM_CLOCK, Clock
from venueguard.io.http_session import _NOT_ACCEPTED, RestConfig, RestSession
from venueguard.io.notify import HealthReporter, Notifier
from venueguard.telemetry.alerts import Alerts
from venueguard.telemetry.events import EventLog
from venueguard.telemetry.metrics import Metrics
from venueguard.venues.ccxt.classify import Reply, VenueFacts, classify_call

__all__ = ["CcxtRest", "VenueNotifier", "install_probe"]

T = TypeVar("T")


class _Probe:
    """What ccxt read during one attempt of one call (filled by the hooks). ``on_send`` is
    called as each request leaves, before its answer: a request in flight, or one whose call
    is cancelled, is counted as sent (the venue may have it)."""

    __slots__ = ("fetches", "latency_s", "method", "on_send", "reply")

    def __init__(self, on_send: Callable[[], None] | None = None) -> None:
        self.reply: Reply | None = None
        self.method = "none"  # the HTTP method of the last request sent
        self.latency_s: float | None = None
        self.fetches = 0
        self.on_send = on_send


_PROBE: ContextVar[_Probe | None] = ContextVar("venueguard_ccxt_probe", default=None)


def install_probe(exchange: Any, clock: Clock = SYSTEM_CLOCK) -> None:
    """Hook ``exchange.fetch`` and ``exchange.on_rest_response`` (instance attributes, once)."""
    if getattr(exchange, "_venueguard_probe", False):
        return
    fetch = exchange.fetch
    on_rest_response = exchange.on_rest_response
    monotonic = clock.monotonic

    async def probed_fetch(url: str, method: str = "GET", headers: Any = None,
                           body: Any = None) -> Any:
        probe = _PROBE.get()
        if probe is None:
            return await fetch(url, method, headers, body)
        probe.reply = None
        probe.method = str(method).upper()
        probe.fetches += 1
        if probe.on_send is not None:
            probe.on_send()
        started = monotonic()
        try:
            return await fetch(url, method, headers, body)
        finally:
            probe.latency_s = monotonic() - started

    def probed_on_rest_response(code: int, reason: str, url: str, method: str,
                                response_headers: Mapping[str, str], response_body: str,
                                request_headers: Any, request_body: Any) -> Any:
        probe = _PROBE.get()
        if probe is not None:
            probe.reply = Reply(code, response_headers, response_body)
        return on_rest_response(code, reason, url, method, response_headers, response_body,
                                request_headers, request_body)

    exchange.fetch = probed_fetch
    exchange.on_rest_response = probed_on_rest_response
    exchange._venueguard_probe = True


class VenueNotifier(Notifier):
    """A :class:`Notifier` whose event lines carry ``venue``."""

    def __init__(self, venue: str, events: EventLog | None = None,
                 metrics: Metrics | None = None, alerts: Alerts | None = None) -> None:
        super().__init__(events, metrics, alerts)
        self.venue = venue

    def log(self, event: str, **fields: object) -> None:
        self.events.emit(event, venue=self.venue, **fields)


class CcxtRest(RestSession):
    """The request pipeline for one ccxt exchange object (share one per exchange)."""

    def __init__(self, exchange: Any, facts: VenueFacts, config: RestConfig, *,
                 events: EventLog | None = None, metrics: Metrics | None = None,
                 alerts: Alerts | None = None, clock: Clock = SYSTEM_CLOCK,
                 rng: RandomSource | None = None, venue: str | None = None) -> None:
        super().__init__(config, events=events, metrics=metrics, alerts=alerts, clock=clock,
                         rng=rng)
        self.exchange = exchange
        self.facts = facts
        self.venue = venue or f"ccxt:{facts.exchange_id}"
        self.notify = VenueNotifier(self.venue, self.notify.events, metrics, alerts)
        self._reporter = HealthReporter(self.health, self.notify, clock)
        for secret in (getattr(exchange, "secret", None), getattr(exchange, "password", None),
                       getattr(exchange, "privateKey", None)):
            if isinstance(secret, str) and len(secret) >= 4:  # shorter ones cannot be told apart
                self.notify.events.register_secret(secret)
        # venueguard decides about retries; ccxt must not resend anything by itself
        exchange.options = {**(exchange.options or {}), "maxRetriesOnFailure": 0}
        install_probe(exchange, clock)
        #: the HTTP round trip of the last request sent (ccxt's own rate-limit wait and
        #: venueguard's gate excluded: what the venue took), None before the first
        self.last_latency_s: float | None = None

    async def close(self) -> None:
        """Nothing of its own to close: the exchange's connections belong to its owner."""

    async def call(self, endpoint: str, fn: Callable[[], Awaitable[T]], *, idempotent: bool,
                   cl_ord_id: str | None = None) -> T:
        """One logical call: ``fn`` is invoked once per attempt (same arguments each time)."""
        clock = self.clock
        start = clock.monotonic()
        deadline = start + self.config.timeouts.total_s
        backoff: Backoff | None = None
        self.logical_total += 1
        self.budget.on_request(start)
        attempt = 0
        while True:
            try:
                await self._gate(endpoint, deadline, first=attempt == 0)
            except errors.VenueError as refused:
                raise _local(refused) from None
            probe = _Probe(self._sent)
            token = _PROBE.set(probe)
            failure: ccxt.BaseError | None = None
            try:
                result = await fn()
            except ccxt.BaseError as exc:
                failure = exc
            finally:
                _PROBE.reset(token)
            cls = classify_call(failure, probe.reply, self.rules, clock.wall_ms())
            self._account(cls, probe, endpoint, failure is not None)
            if failure is None:
                return result
            failure.venueguard = cls
            now = clock.monotonic()
            if backoff is None:
                backoff = Backoff(self.config.backoff, self._rng)
            try:
                delay = self._retry_delay(cls, attempt, backoff, idempotent, now, endpoint,
                                          cl_ord_id)
            except errors.AmbiguousOutcome as unknown:
                raise OrderUnknown(str(unknown), cl_ord_id=cl_ord_id, kind=unknown.kind,
                                   status=unknown.status, endpoint=endpoint,
                                   venue_message=unknown.venue_message) from failure
            except errors.VenueError:
                raise failure from None
            if now + delay > deadline:
                raise failure
            attempt += 1
            self.retries_total += 1
            metrics = self.notify.metrics
            if metrics is not None:
                metrics.retries_total.inc()
                metrics.backoff_seconds_total.inc(delay)
            await asyncio.sleep(delay)

    def _sent(self) -> None:
        self.sent_total += 1

    def _account(self, cls: Classification, probe: _Probe, endpoint: str, failed: bool) -> None:
        """Feed the verdict to health, limiter and throttle; count it; log a failure."""
        clock = self.clock
        now = clock.monotonic()
        metrics = self.notify.metrics
        reply = probe.reply
        latency_s = None
        before = (self.health.state, self.health.until)
        if reply is not None:
            self.health.on_outcome(cls, now, latency_s=probe.latency_s)
            if cls.rate_limit is not None:
                self.limiter.on_headers(cls.rate_limit, now, clock.wall_ms() / 1000)
            status = str(reply.status)
            latency_s = probe.latency_s
            self.last_latency_s = latency_s
        else:
            if probe.fetches:  # sent, and no response came back
                self.health.on_outcome(cls, now)
            status = "none"
        kind = cls.kind
        if kind is Kind.RATE_LIMITED:
            self.limiter.on_retry_after(cls.retry_after_s or 1.0, now)
        if self.fleet is not None:  # processes sharing the account hear of limits and bans
            if cls.rate_limit is not None:
                self.fleet.on_rate_limit(cls.rate_limit.limit, cls.rate_limit.remaining)
            after = (self.health.state, self.health.until)
            if after != before and after[0] in (VenueState.COOLDOWN, VenueState.BLOCKED):
                self.fleet.on_venue_state(after[0], after[1], kind, now)
        if self.throttle is not None and kind not in _NOT_ACCEPTED and probe.fetches:
            self.throttle.on_accepted(now)
        if metrics is not None and probe.fetches:
            metrics.observe_rest(probe.method, endpoint, status, latency_s)
        if failed:
            if metrics is not None:
                metrics.rest_errors_total.labels(kind.value).inc()
            self.notify.log("rest.error", status=cls.status, kind=kind.value,
                            endpoint=endpoint, message=cls.message)
        self._reporter.poll(now)


def _local(refused: errors.VenueError) -> errors.VenueError:
    """The gate's refusal as an error that is also a ccxt exception (nothing was sent)."""
    text = str(refused)
    common: dict[str, Any] = {"kind": refused.kind, "status": refused.status,
                              "endpoint": refused.endpoint,
                              "venue_message": refused.venue_message}
    if isinstance(refused, errors.CoolingDown):
        return VenueCoolingDown(text, until=refused.until, **common)
    if isinstance(refused, errors.Blocked):
        return VenueBlocked(text, **common)
    if isinstance(refused, errors.Throttled):
        return RequestThrottled(text, **common)
    if isinstance(refused, errors.RateLimited):
        return RetryBudgetExhausted(text, **common)
    return refused
