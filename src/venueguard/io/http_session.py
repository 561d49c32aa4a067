"""The BitMEX REST session: classify every outcome, never amplify an outage, never double an order.

Usage (call order)::

    async with RestSession(RestConfig(base_url=..., api_key=..., api_secret=...),
                           events=EventLog(), metrics=Metrics()) as rest:
        order = await rest.place_order("XBTUSD", "Buy", 100, price=50_000.0, cl_ord_id="a1")
        try:
            await rest.place_order(...)
        except AmbiguousOutcome as unknown:           # timeout/502/504 after the send
            row = await rest.find_order(unknown.cl_ord_id)   # evidence, never a resend

One logical request runs this pipeline until it returns or raises (io/errors.py):

1. gate: BLOCKED -> ``Blocked``; COOLDOWN ending after the deadline -> ``CoolingDown(until)``
   (a shorter one, such as a 429's Retry-After, is waited out); the ``x-ratelimit-*`` limiter's
   wait; adaptive throttling on first attempts (``Throttled``: nothing sent);
2. send, signed afresh (``api-expires`` = now + ``expires_s``) over the SAME body bytes, so a
   retried ``POST /order`` differs only in ``api-expires`` and ``api-signature``;
3. classify (core) -> venue health (core; latency feeds the response-time rules) -> action:
   2xx returns the decoded JSON; an ambiguous outcome on a non-idempotent request raises
   ``AmbiguousOutcome(cl_ord_id)``; retryable kinds (503 overload: >= 0.5 s later, 429: after
   Retry-After, network errors, ambiguous idempotent reads and cancels) retry with backoff if
   the retry budget grants it and the deadline (``Timeouts.total_s``) allows; everything else
   raises its typed error at once (``Rejected``, ``AuthError``, ``CoolingDown``, ``Blocked``...).

Requests sent on the wire, logical requests and retries are counted (``sent_total``,
``logical_total``, ``retries_total``), so "requests <= (1 + budget) x logical" can be checked.
Venue health moves on every request; call :meth:`RestSession.poll` at the returned deadline to
see a cooldown end while idle, and :meth:`RestSession.reset_venue` to leave BLOCKED.

Step 2 goes through a :class:`~venueguard.io.rest_transport.RestTransport`: aiohttp by default
(``resolver`` and ``RestConfig.keepalive`` configure it), or any other given as ``transport=``,
such as :class:`~venueguard.io.rest_transport.MemoryTransport`, which answers each request from a
function in this process, so every outcome above can be scripted without a socket.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson
from aiohttp.abc import AbstractResolver

from venueguard.core.backoff import Backoff, BackoffConfig, RandomSource
from venueguard.core.budget import BudgetConfig, RetryBudget
from venueguard.core.classify import Action, Classification, Kind, Outcome, Transport, classify
from venueguard.core.health import VenueHealth, VenueState
from venueguard.core.kinds import NOT_PROCESSED_KINDS
from venueguard.core.rules import RuleSet
from venueguard.core.throttle import AdaptiveThrottle, ThrottleConfig
from venueguard.io import errors
from venueguard.io.clock import SYSTEM_CLOCK, Clock
from venueguard.io.fleet_link import FleetLink, Rank
from venueguard.io.http_transport import AiohttpTransport
from venueguard.io.notify import HealthReporter, Notifier
from venueguard.io.ratelimit import RestRateLimiter
from venueguard.io.rest_transport import RawResponse, RestTransport, Timeouts, TransportFailure
from venueguard.telemetry.alerts import Alerts
from venueguard.telemetry.events import EventLog
from venueguard.telemetry.metrics import Metrics
from venueguard.venues.bitmex.rules import bitmex_rules
from venueguard.venues.bitmex.signing import auth_headers

__all__ = ["RestConfig", "RestSession", "Timeouts"]

_RETRY_ACTIONS = frozenset({Action.RETRY, Action.BACKOFF, Action.WAIT_RETRY_AFTER,
                            Action.RETRY_ONCE})
#: Outcomes adaptive throttling does not count as accepted: not processed, or no answer.
_NOT_ACCEPTED = NOT_PROCESSED_KINDS | {Kind.AMBIGUOUS_TIMEOUT}
_AUTH_KINDS = frozenset({Kind.INVALID_CREDENTIALS, Kind.NONCE_EXPIRED})
_FINAL_ERRORS: Mapping[Kind, type[errors.VenueError]] = {
    Kind.OVERLOADED: errors.Overloaded,
    Kind.RATE_LIMITED: errors.RateLimited,
    Kind.TRANSIENT_NETWORK: errors.TransportError,
    Kind.DNS: errors.DnsError,
    Kind.DUPLICATE_CLORDID: errors.DuplicateClOrdID,
}


@dataclass(frozen=True, slots=True)
class RestConfig:
    """Settings of one REST session (shared, immutable)."""

    base_url: str  # ends with /api/v1
    api_key: str | None = None
    api_secret: str | None = None
    expires_s: int = 10  # api-expires = now + expires_s
    timeouts: Timeouts = field(default_factory=Timeouts)
    backoff: BackoffConfig = field(default_factory=lambda: BackoffConfig(
        base_s=0.25, cap_s=5.0, reset_after_s=0.0))
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    throttle: ThrottleConfig | None = field(default_factory=ThrottleConfig)
    throttle_min_requests: int = 10  # below this many requests in its window it never refuses
    max_attempts: int = 5
    rate_limit_reserve: int = 1
    keepalive: bool = True
    rules: RuleSet | None = None

    def __post_init__(self) -> None:
        if (self.api_key is None) != (self.api_secret is None):
            raise errors.ConfigError("api_key and api_secret go together")
        if self.max_attempts < 1:
            raise errors.ConfigError("max_attempts must be >= 1")


class RestSession:
    """See the module docstring. Share one per venue (health, budget and limits are per venue)."""

    def __init__(self, config: RestConfig, *, events: EventLog | None = None,
                 metrics: Metrics | None = None, alerts: Alerts | None = None,
                 clock: Clock = SYSTEM_CLOCK, rng: RandomSource | None = None,
                 resolver: AbstractResolver | None = None,
                 transport: RestTransport | None = None,
                 health: VenueHealth | None = None,
                 fleet: FleetLink | None = None) -> None:
        self.config = config
        self.clock = clock
        self.rules = config.rules or bitmex_rules()
        self.notify = Notifier(events, metrics, alerts)
        if config.api_secret:
            self.notify.events.register_secret(config.api_secret)  # never logged, even by mistake
        self._rng: RandomSource = rng or random.Random()
        self._transport: RestTransport = transport or AiohttpTransport(
            resolver=resolver, keepalive=config.keepalive)
        self.health = health or VenueHealth(self.rules, clock.monotonic())
        self.budget = RetryBudget(config.budget)
        self.throttle = (AdaptiveThrottle(config.throttle, self._rng)
                         if config.throttle is not None else None)
        self.limiter = RestRateLimiter(config.rate_limit_reserve)
        self._reporter = HealthReporter(self.health, self.notify, clock)
        #: Processes sharing this account (venueguard.fleet): buckets, bans, retry budget.
        self.fleet = fleet
        if fleet is not None:
            fleet.attach(self.health, self._reporter.poll)
        if metrics is not None:
            metrics.set_venue_state(self.health.state.value)
        parts = urlsplit(config.base_url)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._prefix = parts.path.rstrip("/")
        self.sent_total = 0
        self.logical_total = 0
        self.retries_total = 0

    async def __aenter__(self) -> RestSession:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        await self._transport.close()

    def poll(self) -> float | None:
        """Run venue-health timers now (a cooldown that ended is reported even while idle);
        returns when to call again (monotonic seconds), or None when nothing is pending."""
        self._reporter.poll(self.clock.monotonic())
        return self.health.next_deadline()

    def reset_venue(self, reason: str = "operator reset") -> None:
        """Leave BLOCKED (or any state) by an explicit decision; the only way out of BLOCKED.
        With a fleet, every member leaves it too."""
        now = self.clock.monotonic()
        self.health.reset(now, reason)
        self._reporter.poll(now)
        if self.fleet is not None:
            self.fleet.on_reset(reason)

    # ---- the pipeline ---------------------------------------------------------------------------

    async def request(self, verb: str, path: str, *, query: Mapping[str, Any] | None = None,
                      body: Mapping[str, Any] | None = None, idempotent: bool | None = None,
                      cl_ord_id: str | None = None, endpoint: str | None = None) -> Any:
        """One logical request (``path`` under the base, e.g. ``/order``); returns decoded JSON.

        ``idempotent`` defaults to True for GET and DELETE: only idempotent requests are
        retried after an ambiguous outcome.
        """
        verb = verb.upper()
        idempotent = verb in ("GET", "DELETE") if idempotent is None else idempotent
        endpoint = endpoint or f"{verb} {path}"
        try:
            path_qs = self._prefix + path + (f"?{_encode_query(query)}" if query else "")
            payload = orjson.dumps(dict(body)) if body is not None else b""
        except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
            raise errors.ConfigError(f"{endpoint}: request cannot be encoded as JSON") from exc
        clock = self.clock
        start = clock.monotonic()
        deadline = start + self.config.timeouts.total_s
        backoff = Backoff(self.config.backoff, self._rng)
        self.logical_total += 1
        self.budget.on_request(start)
        attempt = 0
        order_route = verb != "GET" and path.startswith("/order")
        rank = (Rank.CANCEL if order_route and verb == "DELETE"
                else Rank.WRITE if order_route else Rank.READ)
        while True:
            await self._wait_turn(endpoint, deadline)
            if self.fleet is not None:
                await self._fleet_gate(endpoint, deadline, first=attempt == 0,
                                       order_route=order_route, rank=rank)
            # last: the throttle counts what it lets through as sent; a request the fleet's
            # limit refused (nothing sent) counted there was never accepted, and drove the
            # throttle to refuse nearly all, a member starting in a squeeze for its window
            self._throttle_check(endpoint, first=attempt == 0)
            response = await self._send(verb, path_qs, payload, endpoint, deadline)
            cls = self._observe(response, endpoint)
            if cls.kind is Kind.OK or (isinstance(response, RawResponse)
                                       and 200 <= response.status < 300):
                return _decode_json(response, endpoint)
            now = clock.monotonic()
            delay = self._retry_delay(cls, attempt, backoff, idempotent, now, endpoint, cl_ord_id)
            if now + delay > deadline:
                raise errors.BudgetExhausted(
                    f"{endpoint}: deadline of {self.config.timeouts.total_s:g} s reached "
                    f"after {attempt + 1} attempts ({cls.kind.value})",
                    kind=cls.kind, status=cls.status, endpoint=endpoint,
                    venue_message=cls.message)
            if self.fleet is not None and not await self.fleet.try_retry(self.config.budget):
                raise errors.BudgetExhausted(f"{endpoint}: the fleet's retry budget is spent",
                                             kind=cls.kind, status=cls.status,
                                             endpoint=endpoint, venue_message=cls.message)
            attempt += 1
            self.retries_total += 1
            if self.notify.metrics is not None:
                self.notify.metrics.retries_total.inc()
                self.notify.metrics.backoff_seconds_total.inc(delay)
            await asyncio.sleep(delay)

    async def _gate(self, endpoint: str, deadline: float, *, first: bool) -> None:
        """Wait for this attempt's turn (health, local limiter), then the adaptive throttle."""
        await self._wait_turn(endpoint, deadline)
        self._throttle_check(endpoint, first=first)

    async def _wait_turn(self, endpoint: str, deadline: float) -> None:
        clock = self.clock
        while True:
            now = clock.monotonic()
            self._reporter.poll(now)
            health = self.health
            if health.state is VenueState.BLOCKED:
                raise errors.Blocked(f"{endpoint}: venue BLOCKED; nothing is sent until reset",
                                     kind=Kind.BLOCKED, endpoint=endpoint)
            wait = 0.0
            if not health.allows_requests(now):
                until = health.until if health.until is not None else now
                if until > deadline:
                    raise errors.CoolingDown(
                        f"{endpoint}: venue cooling down for {until - now:.1f} s",
                        until=until, kind=Kind.COOLDOWN, endpoint=endpoint)
                wait = until - now
            wait = max(wait, self.limiter.delay_s(now))
            if wait <= 0:
                break
            if now + wait > deadline:
                raise errors.RateLimited(f"{endpoint}: rate limit wait {wait:.1f} s exceeds the "
                                         "deadline", retry_after_s=wait, kind=Kind.RATE_LIMITED,
                                         endpoint=endpoint)
            await asyncio.sleep(wait)

    def _throttle_check(self, endpoint: str, *, first: bool) -> None:
        throttle = self.throttle
        now = self.clock.monotonic()
        if (first and throttle is not None and not throttle.should_send(now)
                and throttle.requests(now) >= self.config.throttle_min_requests):
            raise errors.Throttled(f"{endpoint}: refused locally by adaptive throttling",
                                   kind=Kind.THROTTLED, endpoint=endpoint)

    async def _fleet_gate(self, endpoint: str, deadline: float, *, first: bool,
                          order_route: bool, rank: Rank) -> None:
        """Take this attempt's slot in the fleet's buckets, wait for it, then look at the
        venue's health again: a ban another member saw meanwhile stops it here."""
        assert self.fleet is not None
        now = self.clock.monotonic()
        wait = await self.fleet.reserve(order_route=order_route, first=first,
                                        max_wait_s=max(0.0, deadline - now), rank=rank)
        if wait is None:
            raise errors.RateLimited(f"{endpoint}: the fleet's rate limit has no slot before "
                                     "the deadline", retry_after_s=None, kind=Kind.RATE_LIMITED,
                                     endpoint=endpoint)
        if wait > 0:
            await asyncio.sleep(wait)
        now = self.clock.monotonic()
        self._reporter.poll(now)
        if self.health.state is VenueState.BLOCKED:
            raise errors.Blocked(f"{endpoint}: venue BLOCKED; nothing is sent until reset",
                                 kind=Kind.BLOCKED, endpoint=endpoint)
        if not self.health.allows_requests(now):
            until = self.health.until if self.health.until is not None else now
            raise errors.CoolingDown(f"{endpoint}: venue cooling down for {until - now:.1f} s",
                                     until=until, kind=Kind.COOLDOWN, endpoint=endpoint)

    async def _send(self, verb: str, path_qs: str, payload: bytes, endpoint: str,
                    deadline: float) -> RawResponse | Outcome:
        headers = {"accept": "application/json"}
        if payload:
            headers["content-type"] = "application/json"
        cfg = self.config
        if cfg.api_key is not None and cfg.api_secret is not None:
            expires = self.clock.wall_ms() // 1000 + cfg.expires_s
            headers.update(auth_headers(cfg.api_key, cfg.api_secret, verb, path_qs, expires,
                                        payload))
        remaining = max(0.001, deadline - self.clock.monotonic())
        timeouts = cfg.timeouts
        self.sent_total += 1
        try:
            async with asyncio.timeout(remaining):  # a trickling response cannot outlive it
                return await self._transport.send(
                    verb, self._origin + path_qs, headers, payload or None,
                    connect_s=min(timeouts.connect_s, remaining),
                    sock_read_s=min(timeouts.sock_read_s, remaining))
        except TransportFailure as failure:
            return failure.outcome
        except TimeoutError:
            # the deadline cut the exchange short; whether it was sent is unknown: ambiguous
            return Outcome(transport=Transport.READ_TIMEOUT, sent=True)

    def _observe(self, response: RawResponse | Outcome, endpoint: str) -> Classification:
        now = self.clock.monotonic()
        metrics = self.notify.metrics
        before = (self.health.state, self.health.until)
        if isinstance(response, RawResponse):
            wall_ms = self.clock.wall_ms()
            cls = classify(Outcome(status=response.status, headers=response.headers,
                                   body=response.body, wall_ms=wall_ms), self.rules)
            self.health.on_outcome(cls, now, latency_s=response.latency_s)
            self.limiter.on_headers(cls.rate_limit, now, wall_ms / 1000)
            status = str(response.status)
            latency_s: float | None = response.latency_s
        else:
            cls = classify(response, self.rules)
            self.health.on_outcome(cls, now)
            status = "none"
            latency_s = None
        if cls.kind is Kind.RATE_LIMITED:
            self.limiter.on_retry_after(cls.retry_after_s or 1.0, now)
        if self.fleet is not None:
            if cls.rate_limit is not None:
                self.fleet.on_rate_limit(cls.rate_limit.limit, cls.rate_limit.remaining)
            after = (self.health.state, self.health.until)
            if after != before and after[0] in (VenueState.COOLDOWN, VenueState.BLOCKED):
                self.fleet.on_venue_state(after[0], after[1], cls.kind, now)
        if self.throttle is not None and cls.kind not in _NOT_ACCEPTED:
            self.throttle.on_accepted(now)
        if metrics is not None:
            method, _, path = endpoint.partition(" ")
            if not path:  # a caller-chosen endpoint name without a method
                method, path = "", endpoint
            metrics.observe_rest(method, path, status, latency_s)
        if cls.kind is not Kind.OK and not (isinstance(response, RawResponse)
                                            and 200 <= response.status < 300):
            if metrics is not None:
                metrics.rest_errors_total.labels(cls.kind.value).inc()
            self.notify.log("rest.error", status=cls.status, kind=cls.kind.value,
                            endpoint=endpoint, message=cls.message)
        self._reporter.poll(now)
        return cls

    def _retry_delay(self, cls: Classification, attempt: int, backoff: Backoff, idempotent: bool,
                     now: float, endpoint: str, cl_ord_id: str | None) -> float:
        """The delay before the next attempt, or raise the typed error for this outcome."""
        kind, action = cls.kind, cls.action
        common: dict[str, Any] = {"kind": kind, "status": cls.status,
                                  "endpoint": endpoint, "venue_message": cls.message}
        text = f"{endpoint}: {kind.value}" + (f" ({cls.message})" if cls.message else "")
        if cls.ambiguous:
            if not idempotent:
                # rest.ambiguous, not order.unknown: the order layer owns the order's state
                self.notify.log("rest.ambiguous", endpoint=endpoint, cl_ord_id=cl_ord_id,
                                kind=kind.value)
                raise errors.AmbiguousOutcome(f"{text}: outcome unknown, look it up",
                                              cl_ord_id=cl_ord_id, **common)
            action = Action.RETRY
        if kind is Kind.DUPLICATE_CLORDID:
            raise errors.DuplicateClOrdID(text, cl_ord_id=cl_ord_id, **common)
        if action is Action.BLOCK:
            raise errors.Blocked(text, **common)
        if action is Action.COOLDOWN:
            until = self.health.until if self.health.until is not None else now
            raise errors.CoolingDown(text, until=until, **common)
        if kind in _AUTH_KINDS:
            raise errors.AuthError(text, **common)
        rule = cls.rule(self.rules)
        limit = 1 if action is Action.RETRY_ONCE else rule.max_retries
        if action not in _RETRY_ACTIONS or limit == 0:
            raise errors.Rejected(text, **common)
        error_type = _FINAL_ERRORS.get(kind, errors.VenueError)
        if (limit is not None and attempt >= limit) or attempt + 1 >= self.config.max_attempts:
            raise self._final(error_type, f"{text}: gave up after {attempt + 1} attempts",
                              cls, common)
        if not self.budget.try_retry(now):
            raise errors.BudgetExhausted(f"{text}: retry budget exhausted", **common)
        delay = backoff.next_delay_s(now, factor=rule.delay_factor, min_s=rule.min_delay_s)
        if action is Action.WAIT_RETRY_AFTER:
            delay = max(delay, cls.retry_after_s or rule.min_delay_s)
        return delay

    @staticmethod
    def _final(error_type: type[errors.VenueError], text: str, cls: Classification,
               common: dict[str, Any]) -> errors.VenueError:
        if error_type is errors.RateLimited:
            return errors.RateLimited(text, retry_after_s=cls.retry_after_s, **common)
        if error_type is errors.DuplicateClOrdID:
            return errors.DuplicateClOrdID(text, **common)
        return error_type(text, **common)

    # ---- convenience ----------------------------------------------------------------------------

    async def place_order(self, symbol: str, side: str, order_qty: float,
                          price: float | None = None, *, cl_ord_id: str | None = None,
                          ord_type: str | None = None, time_in_force: str | None = None,
                          exec_inst: str | None = None, text: str | None = None,
                          **extra: Any) -> dict[str, Any]:
        """POST /order. ``cl_ord_id`` is generated when not given; it is kept across retries."""
        cl_ord_id = cl_ord_id or new_cl_ord_id()
        body = _drop_none({"symbol": symbol, "side": side, "orderQty": order_qty,
                           "price": price, "clOrdID": cl_ord_id, "ordType": ord_type,
                           "timeInForce": time_in_force, "execInst": exec_inst, "text": text,
                           **extra})
        row = await self.request("POST", "/order", body=body, idempotent=False,
                                 cl_ord_id=cl_ord_id)
        return _as_row(row, "POST /order")

    async def amend_order(self, *, order_id: str | None = None, orig_cl_ord_id: str | None = None,
                          cl_ord_id: str | None = None, order_qty: float | None = None,
                          leaves_qty: float | None = None, price: float | None = None,
                          text: str | None = None) -> dict[str, Any]:
        """PUT /order (not idempotent: an ambiguous outcome raises AmbiguousOutcome)."""
        if order_id is None and orig_cl_ord_id is None:
            raise errors.ConfigError("amend_order needs order_id or orig_cl_ord_id")
        body = _drop_none({"orderID": order_id, "origClOrdID": orig_cl_ord_id,
                           "clOrdID": cl_ord_id, "orderQty": order_qty, "leavesQty": leaves_qty,
                           "price": price, "text": text})
        row = await self.request("PUT", "/order", body=body, idempotent=False,
                                 cl_ord_id=orig_cl_ord_id or cl_ord_id)
        return _as_row(row, "PUT /order")

    async def cancel_orders(self, order_ids: Sequence[str] = (), cl_ord_ids: Sequence[str] = (),
                            text: str | None = None) -> list[dict[str, Any]]:
        """DELETE /order; rows of orders that could not be canceled carry an ``error`` field."""
        if not order_ids and not cl_ord_ids:
            raise errors.ConfigError("cancel_orders needs order_ids or cl_ord_ids")
        body = _drop_none({"orderID": list(order_ids) or None,
                           "clOrdID": list(cl_ord_ids) or None, "text": text})
        return _as_rows(await self.request("DELETE", "/order", body=body), "DELETE /order")

    async def cancel_all(self, symbol: str | None = None, filter: Mapping[str, Any] | None = None,
                         text: str | None = None) -> list[dict[str, Any]]:
        body = _drop_none({"symbol": symbol, "filter": dict(filter) if filter else None,
                           "text": text})
        return _as_rows(await self.request("DELETE", "/order/all", body=body),
                        "DELETE /order/all")

    async def cancel_all_after(self, timeout_ms: int) -> dict[str, Any]:
        """Dead man's switch: cancel everything after ``timeout_ms`` (0 disarms)."""
        result = await self.request("POST", "/order/cancelAllAfter", body={"timeout": timeout_ms},
                                    idempotent=True)
        return result if isinstance(result, dict) else {"result": result}

    async def get_orders(self, symbol: str | None = None, filter: Mapping[str, Any] | None = None,
                         count: int = 100, reverse: bool = False) -> list[dict[str, Any]]:
        query = _drop_none({"symbol": symbol, "filter": dict(filter) if filter else None,
                            "count": count, "reverse": reverse or None})
        return _as_rows(await self.request("GET", "/order", query=query), "GET /order")

    async def get_open_orders(self, symbol: str | None = None) -> list[dict[str, Any]]:
        return await self.get_orders(symbol, {"open": True}, count=500)

    async def find_order(self, cl_ord_id: str) -> dict[str, Any] | None:
        """The venue's row for ``cl_ord_id`` (GET /order filter clOrdID), or None if not visible.

        None is not proof of absence: order existence is eventually consistent; ask again later.
        """
        rows = await self.get_orders(filter={"clOrdID": cl_ord_id}, count=10)
        for row in rows:
            if row.get("clOrdID") == cl_ord_id:
                return row
        return None

    async def get_positions(self) -> list[dict[str, Any]]:
        return _as_rows(await self.request("GET", "/position"), "GET /position")

    async def get_executions(self, symbol: str | None = None,
                             filter: Mapping[str, Any] | None = None,
                             count: int = 100) -> list[dict[str, Any]]:
        query = _drop_none({"symbol": symbol, "filter": dict(filter) if filter else None,
                            "count": count})
        return _as_rows(await self.request("GET", "/execution/tradeHistory", query=query),
                        "GET /execution/tradeHistory")

    async def get_book_l2(self, symbol: str, depth: int = 25) -> list[dict[str, Any]]:
        return _as_rows(await self.request("GET", "/orderBook/L2",
                                           query={"symbol": symbol, "depth": depth}),
                        "GET /orderBook/L2")

    async def get_instruments(self, active_only: bool = False) -> list[dict[str, Any]]:
        path = "/instrument/active" if active_only else "/instrument"
        return _as_rows(await self.request("GET", path), f"GET {path}")


def new_cl_ord_id() -> str:
    """A fresh clOrdID (36 chars max on BitMEX)."""
    return "vg-" + uuid.uuid4().hex[:30]


def _encode_query(query: Mapping[str, Any]) -> str:
    return urlencode({k: v if isinstance(v, str) else orjson.dumps(v).decode()
                      for k, v in query.items()})


def _drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _decode_json(response: RawResponse | Outcome, endpoint: str) -> Any:
    if not isinstance(response, RawResponse):
        raise errors.TransportError(f"{endpoint}: no response", endpoint=endpoint)
    if not response.body:
        return None
    try:
        return orjson.loads(response.body)
    except orjson.JSONDecodeError as exc:
        raise errors.VenueError(f"{endpoint}: response body is not JSON", kind=Kind.BAD_RESPONSE,
                                status=response.status, endpoint=endpoint) from exc


def _as_row(value: Any, endpoint: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise errors.VenueError(f"{endpoint}: expected an object", kind=Kind.BAD_RESPONSE,
                                endpoint=endpoint)
    return value


def _as_rows(value: Any, endpoint: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        raise errors.VenueError(f"{endpoint}: expected a list of objects", kind=Kind.BAD_RESPONSE,
                                endpoint=endpoint)
    return value
