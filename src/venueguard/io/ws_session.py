"""The market-data session: a websocket that never dies silently nor passes stale as fresh.

One loop (connect, subscribe, pump, watchdog, reconnect and resync) for every venue; the venue's
parts are a few methods a subclass replaces (:meth:`MarketDataSession._make_state`, the
pipeline of :class:`~venueguard.io.md_pipeline.MdPipeline` shape;
:meth:`MarketDataSession._start_session`, :meth:`MarketDataSession._on_control`,
:meth:`MarketDataSession._send_ping`, :meth:`MarketDataSession._default_rules`). This class
speaks BitMEX; :class:`~venueguard.io.binance_session.BinanceMarketDataSession` speaks Binance
USDⓈ-M through the same loop.

Usage (call order)::

    session = MarketDataSession(MdConfig(url=..., topics=("orderBookL2:XBTUSD", "trade:XBTUSD")),
                                events=EventLog(), metrics=Metrics())
    async with session:                      # starts run() in a task; leaving stops it
        await session.wait_synced(10.0)      # every book topic has its partial
        book = session.book("XBTUSD")        # BookView: .is_fresh, .age_s, .best_bid() ...
        async for ev in session.events():    # typed events (venueguard.io.md_events)
            ...

or ``await session.run()`` in your own TaskGroup and ``session.stop()`` to end it. ``run()``
returns after ``stop()``, and raises :class:`~venueguard.io.errors.StreamError` when a failure
rule says not to retry (bad credentials, a private topic refused, a ban); everything else is
retried forever with jittered backoff, within the connection-rate limit.

What one connection does: open (waiting out the 60-opens-per-hour window), authenticate
(``authKeyExpires``) when credentials are set, subscribe every topic, then pump frames through
:class:`~venueguard.io.md_state.MdState` while a watchdog sleeps until the liveness deadline:
text ``ping`` plus a protocol ping after ``ping_after_s`` of silence, ``ws.stale`` on a missed
pong or a silent channel. A stale connection, a book gap or a rejected book delta ends the
connection; the next one resubscribes every topic and rebuilds every book from its partial
(``book.resynced``). Before declaring a channel stale the watchdog checks how late it woke: if the
event loop itself was blocked past ``lag_tolerance_s``, it first lets pending frames in and then
decides, so a busy process is not mistaken for a dead venue.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from venueguard.core.backoff import Backoff, BackoffConfig, RandomSource
from venueguard.core.classify import Action, Classification, Kind, Outcome, classify
from venueguard.core.liveness import (
    DEFAULT_QUIET_CHANNELS,
    FreshDecision,
    LivenessConfig,
    SendPing,
    StaleDecision,
)
from venueguard.core.rules import RuleSet
from venueguard.core.trades import TapeConfig, TradeTape
from venueguard.io import md_events as ev
from venueguard.io.clock import SYSTEM_CLOCK, Clock, LoopLag, SystemClock, virtual_time
from venueguard.io.errors import StreamError
from venueguard.io.fleet_link import OpenGate
from venueguard.io.md_pipeline import MdPipeline
from venueguard.io.md_state import MdSink, MdState, MdStateConfig
from venueguard.io.md_views import BookView, EventStream
from venueguard.io.notify import Notifier
from venueguard.io.ratelimit import OpenRateLimiter
from venueguard.io.ws_transport import ConnectFailed, WsConnection, WsConnector, connect_picows
from venueguard.telemetry.alerts import Alerts
from venueguard.telemetry.events import EventLog
from venueguard.telemetry.metrics import Metrics
from venueguard.venues.bitmex.book import Increments, LegacyIds
from venueguard.venues.bitmex.messages import CommandAck, ErrorFrame, Message, SubscribeAck
from venueguard.venues.bitmex.rules import bitmex_rules
from venueguard.venues.bitmex.topics import BOOK_L2_TABLES, auth_op, encode, subscribe_op

__all__ = ["BookView", "EventStream", "MarketDataSession", "MdConfig", "default_liveness"]

_time_ns = time.time_ns
_FATAL_ACTIONS = frozenset({Action.DISCONNECT, Action.FAIL, Action.BLOCK})


def default_liveness() -> LivenessConfig:
    """BitMEX's heartbeat advice (5 s + 5 s); books must move within 10 s; trades may be quiet."""
    return LivenessConfig(ping_after_s=5.0, pong_timeout_s=5.0, max_data_age_s=10.0,
                          channel_max_age_s={"quote": 30.0, "instrument": 60.0},
                          quiet_channels=DEFAULT_QUIET_CHANNELS | {"trade"})


@dataclass(frozen=True, slots=True)
class MdConfig:
    """Settings of one market-data session (shared, immutable)."""

    url: str
    topics: tuple[str, ...]
    api_key: str | None = None
    api_secret: str | None = None
    auth_expires_s: int = 60  # authKeyExpires horizon
    liveness: LivenessConfig = field(default_factory=default_liveness)
    book_max_age_s: float | None = None  # default: liveness.max_data_age_s
    backoff: BackoffConfig = field(default_factory=lambda: BackoffConfig(
        base_s=0.25, cap_s=30.0, reset_after_s=60.0))
    connect_timeout_s: float = 10.0
    subscribe_timeout_s: float = 10.0
    max_opens_per_hour: int = 60
    lag_tolerance_s: float = 0.05
    metrics_interval_s: float = 1.0
    # A protocol ping at least this often even while data flows (None: never). Liveness pings
    # only after silence, so on a busy stream no pong would ever be seen and the pong age
    # (metric ws_pong_age_seconds, the dashboard) would stay unknown. The pong counts as
    # inbound traffic; data freshness is still judged per channel.
    keepalive_ping_s: float | None = 10.0
    event_queue_max: int = 100_000
    tape: TapeConfig = field(default_factory=TapeConfig)
    legacy_ids: Mapping[str, LegacyIds] = field(default_factory=dict)
    rules: RuleSet | None = None
    check_timestamps: bool = True  # False when replaying recorded data (old timestamps)
    # tick/lot per symbol, checked on every book row (also learned from `instrument` rows)
    increments: Mapping[str, Increments] = field(default_factory=dict)
    # reconnect before the venue's own connection lifetime ends (None: no limit)
    max_connection_age_s: float | None = None
    rest_url: str | None = None  # REST base, for venues whose books start from a REST snapshot

    def __post_init__(self) -> None:
        if self.keepalive_ping_s is not None and not self.keepalive_ping_s > 0:
            raise ValueError("keepalive_ping_s must be > 0 (or None)")
        if not self.topics:
            raise ValueError("at least one topic is needed")
        if (self.api_key is None) != (self.api_secret is None):
            raise ValueError("api_key and api_secret go together")


class _ConnectionEnded(Exception):
    def __init__(self, reason: str, classification: Classification | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.classification = classification


class MarketDataSession:
    """See the module docstring. One instance = one logical feed, across reconnects."""

    def __init__(self, config: MdConfig, *, events: EventLog | None = None,
                 metrics: Metrics | None = None, alerts: Alerts | None = None,
                 clock: Clock = SYSTEM_CLOCK, connector: WsConnector = connect_picows,
                 rng: RandomSource | None = None, lag: LoopLag | None = None,
                 opens: OpenGate | None = None) -> None:
        self.config = config
        self.shared_opens = opens  # the connection budget shared per egress IP (a fleet)
        self.clock = clock
        self.notify = Notifier(events, metrics, alerts)
        if config.api_secret:
            self.notify.events.register_secret(config.api_secret)  # never logged, even by mistake
        self.rules = config.rules or self._default_rules()
        self.book_max_age_s = config.book_max_age_s or config.liveness.max_data_age_s
        self._connector = connector
        self._backoff = Backoff(config.backoff, rng or random.Random())
        self._opens = OpenRateLimiter(config.max_opens_per_hour, 3600.0)
        self.lag = lag or LoopLag(clock)
        self._sink = MdSink(log=self.notify.log, on_rejected=self._on_rejected)
        self.state: MdPipeline = self._make_state()
        self.failed_topics: dict[str, str] = {}
        self.live = False  # connected, subscribed and not stale
        self.attempt = 0
        self.connected_at: float | None = None
        self.disconnected_at: float | None = None
        self._conn: WsConnection | None = None
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._queues: list[EventStream] = []
        self.events_dropped = 0
        self._unknown_streak = 0
        self._pending_acks: set[str] = set()
        self._authed = False
        self._table_flushed: dict[str, int] = {}
        self._closed_conn = False
        self._own_lag = lag is None
        self._serial = 0  # connection number; frames of an older connection are ignored
        # called after every frame is taken in (e.g. to wake readers waiting for new data)
        self.on_data: Callable[[], None] | None = None

    # ---- the venue's parts (a session of another venue overrides these) -------------------------

    def _default_rules(self) -> RuleSet:
        return bitmex_rules()

    def _make_state(self) -> MdPipeline:
        config = self.config
        return MdState(MdStateConfig(
            liveness=config.liveness, book_max_age_s=self.book_max_age_s, tape=config.tape,
            legacy_ids=config.legacy_ids, check_timestamps=config.check_timestamps,
            increments=config.increments), self._sink)

    def _send_ping(self, conn: WsConnection) -> None:
        """BitMEX's heartbeat: the text ``ping`` (answered by ``pong``) and a protocol ping."""
        conn.send_text(b"ping")
        conn.send_ping()

    # ---- public API ---------------------------------------------------------------------------

    async def __aenter__(self) -> MarketDataSession:
        self._task = asyncio.get_running_loop().create_task(self.run())
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
        if self._task is not None:
            task, self._task = self._task, None
            if exc_type is not None:
                with contextlib.suppress(StreamError):
                    await task
            else:
                await task

    def stop(self) -> None:
        """Ask :meth:`run` to return: the connection is closed, nothing is retried."""
        self._stopping = True
        self._wake.set()
        if self._conn is not None:
            self._conn.abort()

    def book(self, symbol: str, table: str = "orderBookL2") -> BookView:
        if table not in BOOK_L2_TABLES:
            raise ValueError(f"{table} is not a level-2 book table")
        return BookView(self, table, symbol)

    def trades(self, symbol: str) -> TradeTape | None:
        return self.state.tapes.get(symbol)

    def quote(self, symbol: str) -> Mapping[str, Any] | None:
        return self.state.quotes.get(symbol)

    @property
    def synced(self) -> bool:
        """Live, and every subscribed book topic has its book rebuilt from a partial."""
        if not self.live:
            return False
        for topic in self.config.topics:
            table, _, symbol = topic.partition(":")
            if table in BOOK_L2_TABLES and topic not in self.failed_topics:
                books = self.state.books[table].books
                targets = [books.get(symbol)] if symbol else list(books.values())
                if not targets or not all(b is not None and b.valid for b in targets):
                    return False
        return True

    async def wait_synced(self, timeout_s: float) -> None:
        """Until :attr:`synced` (raises TimeoutError after ``timeout_s``)."""
        async with asyncio.timeout(timeout_s):
            while not self.synced:
                if self._closed.is_set():
                    raise StreamError("market-data session is not running")
                await asyncio.sleep(0.005)

    def events(self) -> EventStream:
        """Every event from this call on, in order, until the session stops (bounded queue).

        Use as ``async for event in session.events()``; events are buffered from the moment
        this is called, so create the stream before triggering what it should observe.
        """
        stream = EventStream(self, self.config.event_queue_max)
        self._queues.append(stream)
        self._sink.push = self._push
        return stream

    def _drop_stream(self, stream: EventStream) -> None:
        if stream in self._queues:
            self._queues.remove(stream)
        if not self._queues:
            self._sink.push = None

    def send(self, op: Mapping[str, object]) -> bool:
        """Send a command on the current connection (e.g. cancelAllAfter); False if none."""
        if self._conn is None or not self.live:
            return False
        self._conn.send_text(encode(op))
        return True

    # ---- the loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, and reconnect, until :meth:`stop` or a no-retry failure (StreamError)."""
        self._closed.clear()
        try:
            async with asyncio.TaskGroup() as group:
                lag_task = group.create_task(self.lag.run()) if self._own_lag else None
                try:
                    await self._loop()
                finally:
                    if lag_task is not None:
                        lag_task.cancel()
        except* StreamError as failure:
            raise failure.exceptions[0] from None
        finally:
            self.live = False
            self._closed.set()
            for stream in self._queues:
                stream.ready.set()

    async def _loop(self) -> None:
        while not self._stopping:
            classification: Classification | None = None
            try:
                await self._connection()
                reason = "stopped"
            except _ConnectionEnded as ended:
                reason, classification = ended.reason, ended.classification
            if self._stopping:
                return
            delay = self._delay_for(reason, classification)
            self.attempt += 1
            now = self.clock.monotonic()
            self.notify.log("ws.reconnecting", attempt=self.attempt, delay_s=round(delay, 3),
                            reason=reason)
            self._push(ev.Reconnecting(now, self.attempt, delay, reason))
            if self.notify.metrics is not None:
                self.notify.metrics.ws_reconnects_total.inc()
            await self._sleep(delay)

    async def _sleep(self, delay_s: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, delay_s)):
                while not self._stopping:
                    await self._wake.wait()
                    self._wake.clear()

    def _delay_for(self, reason: str, cls: Classification | None) -> float:
        now = self.clock.monotonic()
        if cls is None:
            self._unknown_streak = 0
            return self._backoff.next_delay_s(now)
        rule = cls.rule(self.rules)
        action = cls.action
        if action in _FATAL_ACTIONS or rule.max_retries == 0:
            self._fail(cls, reason)
        if action is Action.RETRY_ONCE:
            self._unknown_streak += 1
            if self._unknown_streak >= 2:
                self.notify.alert("critical", f"websocket keeps failing ({reason})", now)
        else:
            self._unknown_streak = 0
        if rule.alert is not None and rule.message:
            self.notify.alert(rule.alert.value, rule.message, now)
        delay = self._backoff.next_delay_s(now, factor=rule.delay_factor, min_s=rule.min_delay_s)
        if action is Action.WAIT_RETRY_AFTER:
            delay = max(delay, cls.retry_after_s or rule.min_delay_s)
        elif action is Action.COOLDOWN:
            delay = max(delay, rule.cooldown_s)
        return delay

    def _fail(self, cls: Classification, reason: str) -> None:
        now = self.clock.monotonic()
        rule = cls.rule(self.rules)
        tier = rule.alert.value if rule.alert is not None else "critical"
        message = rule.message or f"websocket stopped: {cls.kind.value}"
        self.notify.alert(tier, message, now)
        self.notify.log("ws.failed", kind=cls.kind.value, reason=reason)
        self._push(ev.SessionFailed(now, cls.kind.value, message))
        raise StreamError(f"market-data session stopped: {cls.kind.value} ({reason})",
                          kind=cls.kind, status=cls.status, venue_message=cls.message)

    async def _connection(self) -> None:
        clock = self.clock
        wait = self._opens.delay_s(clock.monotonic())
        if wait > 0:
            self.notify.log("ws.rate_limited", wait_s=round(wait, 3))
            await self._sleep(wait)
            if self._stopping:
                return
        while self.shared_opens is not None:
            wait = await self.shared_opens.ws_open_wait(self.config.max_opens_per_hour, 3600.0)
            if wait <= 0:
                break
            self.notify.log("ws.rate_limited", wait_s=round(wait, 3), shared=True)
            await self._sleep(min(wait, 60.0))
            if self._stopping:
                return
        self._opens.on_open(clock.monotonic())
        self.state.begin(clock.monotonic())
        try:
            self._serial += 1
            handler = _Frames(self, self._serial)
            conn = await self._connector(self.config.url, handler, {},
                                         self.config.connect_timeout_s)
        except ConnectFailed as failed:
            cls = classify(failed.outcome, self.rules)
            self.notify.log("ws.connect_failed", kind=cls.kind, status=cls.status)
            raise _ConnectionEnded(f"connect failed: {cls.kind.value}", cls) from None
        self._conn = conn
        self._closed_conn = False
        now = clock.monotonic()
        self.state.begin(now)
        self.connected_at = now
        self.notify.log("ws.connected", url=self.config.url, attempt=self.attempt)
        if self.notify.metrics is not None and self.disconnected_at is not None:
            self.notify.metrics.ws_reconnect_seconds.observe(now - self.disconnected_at)
        self._push(ev.Connected(now, self.attempt))
        try:
            self._start_session(conn)
            await self._watch(conn)
        finally:
            self.live = False
            self._conn = None
            conn.abort()
            self.disconnected_at = clock.monotonic()
            if self.notify.metrics is not None:
                self.notify.metrics.ws_disconnects_total.inc()

    def _start_session(self, conn: WsConnection) -> None:
        self._authed = self.config.api_key is None
        self._pending_acks = {t for t in self.config.topics if t not in self.failed_topics}
        self.state.expect(self._pending_acks)
        if not self._authed:
            assert self.config.api_key is not None and self.config.api_secret is not None
            expires = self.clock.wall_ms() // 1000 + self.config.auth_expires_s
            conn.send_text(encode(auth_op(self.config.api_key, self.config.api_secret, expires)))
        else:
            conn.send_text(encode(subscribe_op(sorted(self._pending_acks))))

    async def _watch(self, conn: WsConnection) -> None:
        clock, state, cfg = self.clock, self.state, self.config
        subscribe_deadline = clock.monotonic() + cfg.subscribe_timeout_s
        next_tick = clock.monotonic()
        next_keepalive = next_tick + min(1.0, cfg.keepalive_ping_s or 0.0)  # first one soon
        age_limit = (None if cfg.max_connection_age_s is None
                     else clock.monotonic() + cfg.max_connection_age_s)
        while True:
            now = clock.monotonic()
            if self._stopping:
                self._end("stopped")
            if age_limit is not None and now >= age_limit:
                self._end("connection age limit")  # the venue would close it: reconnect first
            if self._closed_conn:
                self._closed_conn = False
                self._end("closed by peer")
            for msg in state.take_control():
                self._on_control(conn, msg, now)
            if state.resync_reason is not None:
                self._end(f"resync: {state.resync_reason}")
            if self._pending_acks and now >= subscribe_deadline:
                self._end("subscribe timeout")
            if now >= next_tick:
                self._tick(now)
                next_tick = now + cfg.metrics_interval_s
            if cfg.keepalive_ping_s is not None and now >= next_keepalive:
                conn.send_ping()  # the pong arrives through on_pong_frame
                next_keepalive = now + cfg.keepalive_ping_s
            deadline = min(d for d in (state.liveness.next_deadline(), next_tick,
                                       subscribe_deadline if self._pending_acks else None,
                                       age_limit)
                           if d is not None)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, deadline - clock.monotonic())):
                    await self._wake.wait()
                    continue
            now = clock.monotonic()
            if self.lag.on_wake(deadline, now) > cfg.lag_tolerance_s:
                for _ in range(3):  # the loop was busy: let frames already received in first
                    await asyncio.sleep(0)
                now = clock.monotonic()
            for decision in state.liveness.poll(now):
                if isinstance(decision, SendPing):
                    self._send_ping(conn)
                elif isinstance(decision, StaleDecision):
                    self._on_stale(decision)
                elif isinstance(decision, FreshDecision):
                    self._push(ev.Fresh(now, decision.channel))

    def _end(self, reason: str, cls: Classification | None = None) -> None:
        now = self.clock.monotonic()
        self.live = False
        self.notify.log("ws.disconnected", reason=reason)
        self._push(ev.Disconnected(now, reason))
        raise _ConnectionEnded(reason, cls)

    def _on_stale(self, decision: StaleDecision) -> None:
        self.live = False
        self.notify.log("ws.stale", reason=decision.reason, channel=decision.channel,
                        age_s=round(decision.age_s, 3), **decision.limit_fields())
        self._push(ev.Stale(decision.at, decision.reason, decision.channel, decision.age_s,
                            decision.threshold_s, decision.suspicion))
        if self.notify.metrics is not None:
            self.notify.metrics.ws_stale_total.labels(decision.reason).inc()
        self._end(f"stale: {decision.reason}")

    def _on_control(self, conn: WsConnection, msg: Message, now: float) -> None:
        if isinstance(msg, SubscribeAck):
            if msg.success:
                self._subscribed(msg.topic, now)
            else:
                self._refused(msg.topic, Outcome(status=400, body={"error": msg.error or ""}),
                              now)
        elif isinstance(msg, CommandAck) and msg.op in ("authKeyExpires", "authKey"):
            if msg.success:
                self._authed = True
                conn.send_text(encode(subscribe_op(sorted(self._pending_acks))))
            else:
                self._end("auth refused", classify(Outcome(
                    status=401, body={"status": 401, "error": msg.error or ""}), self.rules))
        elif isinstance(msg, ErrorFrame):
            outcome = Outcome(status=msg.status, body={"status": msg.status, "error": msg.error,
                                                       "meta": dict(msg.meta)})
            request = msg.request or {}
            op = request.get("op")
            args = request.get("args")
            if op == "subscribe" and self._pending_acks:
                topics = args if isinstance(args, list) else [args]
                cls = classify(outcome, self.rules)
                if cls.kind is Kind.ALREADY_SUBSCRIBED:
                    for topic in topics:
                        if isinstance(topic, str):
                            self._subscribed(topic, now)
                    return
                if cls.kind in (Kind.UNKNOWN_SYMBOL, Kind.BAD_REQUEST) and len(topics) == 1:
                    self._refused(str(topics[0]), outcome, now)
                    return
            self._end(f"error frame {msg.status}", classify(outcome, self.rules))

    def _subscribed(self, topic: str, now: float) -> None:
        if topic not in self._pending_acks:
            return
        self._pending_acks.discard(topic)
        self.state.on_subscribed(topic, now)
        self.notify.log("ws.subscribed", topic=topic)
        self._push(ev.Subscribed(now, topic))
        if not self._pending_acks:
            self.live = True
            self._backoff.on_success(now)

    def _refused(self, topic: str, outcome: Outcome, now: float) -> None:
        cls = classify(outcome, self.rules)
        rule = cls.rule(self.rules)
        if cls.kind is Kind.INVALID_CREDENTIALS or rule.action not in (Action.FAIL, Action.WARN):
            self._end(f"subscribe {topic} refused", cls)
        self.failed_topics[topic] = cls.message
        self._pending_acks.discard(topic)
        self.notify.log("ws.topic_failed", topic=topic, kind=cls.kind.value, message=cls.message)
        self.notify.alert("warning", f"topic {topic} refused: {cls.message}", now)
        self._push(ev.TopicFailed(now, topic, cls.kind.value, cls.message))
        if not self._pending_acks:
            self.live = True

    # ---- frames (called by the transport, synchronously) ----------------------------------------

    def _on_pong_frame(self) -> None:
        self.state.liveness.on_pong(self.clock.monotonic())

    def _on_closed(self) -> None:
        self._closed_conn = True
        self._wake.set()

    # ---- telemetry -------------------------------------------------------------------------------

    def _push(self, event: ev.MdEvent) -> None:
        for stream in self._queues:
            queue = stream.queue
            if len(queue) == queue.maxlen:
                self.events_dropped += 1
            queue.append(event)
            stream.ready.set()

    def _on_rejected(self, reason: str) -> None:
        if self.notify.metrics is not None:
            self.notify.metrics.data_rejected_total.labels(reason).inc()

    def _tick(self, now: float) -> None:
        metrics = self.notify.metrics
        if metrics is None:
            return
        status = self.state.liveness.status(now)
        wall_now_s = self.clock.wall_ms() / 1000.0
        for channel, age in status.data_age_s.items():
            metrics.set_data_age(channel, age, wall_now_s)
        for channel, threshold in status.thresholds_s.items():
            metrics.set_freshness(channel, threshold, status.suspicion.get(channel))
        if status.pong_age_s is not None:
            metrics.ws_pong_age_seconds.set(status.pong_age_s)
        if self.connected_at is not None:
            metrics.ws_connection_age_seconds.set(now - self.connected_at)
        metrics.event_loop_lag_seconds.set(self.lag.max_s)
        for table, count in self.state.table_counts.items():
            done = self._table_flushed.get(table, 0)
            if count > done:
                metrics.ws_messages_total.labels(table).inc(count - done)
                self._table_flushed[table] = count
        for books in self.state.books.values():
            for symbol, book in books.books.items():
                if not book.valid:
                    continue
                bid, ask = book.best_bid(), book.best_ask()
                if bid is not None:
                    metrics.best_bid.labels(symbol).set(bid[0])
                if ask is not None:
                    metrics.best_ask.labels(symbol).set(ask[0])
                spread = book.spread()
                if spread is not None:
                    metrics.spread.labels(symbol).set(spread)


class _Frames:
    """The transport handler of one connection; silent once a newer connection exists.

    ``on_texts`` (every text frame of one read; ``on_text``: one frame) is the hot path:
    everything it calls is bound once, per connection, and with the system clock the time is
    read straight from :mod:`time` (the same clocks :class:`~venueguard.io.clock.SystemClock`
    reads, one call less each), unless the connection was opened on a virtual-time loop, whose
    clocks the system clock reads. The frames of one read arrived together: they are fed with
    one ``now`` and one ``wall_ms``.
    """

    __slots__ = ("_monotonic", "_on_frames", "_serial", "_session", "_wake", "_wall_ms")

    def __init__(self, session: MarketDataSession, serial: int) -> None:
        self._session = session
        self._serial = serial
        self._on_frames = session.state.on_frames
        clock = session.clock
        system = type(clock) is SystemClock and not virtual_time()
        self._monotonic = time.monotonic if system else clock.monotonic
        self._wall_ms = None if system else clock.wall_ms
        self._wake = session._wake.set

    def on_text(self, payload: bytes) -> None:
        self.on_texts((payload,))

    def on_texts(self, payloads: Sequence[bytes]) -> None:
        session = self._session
        if self._serial != session._serial:
            return
        wall_ms = self._wall_ms
        if self._on_frames(payloads, self._monotonic(),
                           _time_ns() // 1_000_000 if wall_ms is None else wall_ms()):
            self._wake()  # a control frame or a resync needs the watchdog
        on_data = session.on_data
        if on_data is not None:
            on_data()

    def on_pong_frame(self) -> None:
        if self._serial == self._session._serial:
            self._session._on_pong_frame()

    def on_closed(self) -> None:
        if self._serial == self._session._serial:
            self._session._on_closed()
