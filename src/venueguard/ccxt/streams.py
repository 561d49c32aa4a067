"""The ``watch_*`` calls of a guarded ccxt pro exchange: fresh data or an explicit recovery.

Each guarded ``watch_order_book`` / ``watch_ticker`` / ``watch_trades`` call returns ccxt's own
result, and only once it passed these checks (per channel, e.g. ``orderbook:BTC/USDT``):

* freshness: no accepted update for the channel's threshold (counted from the later of the call
  and the last accepted update) means the stream is stale, whatever the socket says -- ccxt
  notices neither a venue that answers pings but sends no data nor its own reader stalling. The
  threshold is learned per channel (:mod:`venueguard.core.freshness`, ``freshness``) and is
  ``max_age_s`` of the channel's kind while it warms up, after a recovery, or with
  ``freshness.enabled`` false;
* server timestamps (where the venue sends one) through :class:`venueguard.core.liveness.Liveness`:
  stale, from the future, reordered, duplicated (trades by id);
* books: crossed, unsorted or non-positive top levels (:func:`venueguard.core.levels.check_levels`).

A rejected update is never returned (``data.rejected``). A stale stream or a rejected book is
recovered: the ccxt client connection carrying it is closed, its cached book dropped, and after
a jittered backoff (``ws.reconnecting``) the subscription is made again, which brings a fresh
snapshot; the first accepted book after that is announced as ``book.resynced``. A connection
ccxt reports lost is recovered the same way. Errors that a retry cannot fix (bad credentials,
unknown symbol, unsupported call) reach the caller as ccxt raised them.

``watch_orders`` / ``watch_my_trades`` are quiet channels: no freshness bound, but the same
recovery from lost connections.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ccxt

from venueguard.core.backoff import Backoff, BackoffConfig, RandomSource
from venueguard.core.freshness import FreshnessConfig
from venueguard.core.kinds import Kind
from venueguard.core.levels import check_levels
from venueguard.core.liveness import Liveness, LivenessConfig, Verdict
from venueguard.io.clock import SYSTEM_CLOCK, Clock, monotonic, wall_ns
from venueguard.io.notify import Notifier
from venueguard.venues.ccxt.classify import exception_kind

__all__ = ["CcxtStreams", "StreamConfig"]

_FATAL = frozenset({Kind.INVALID_CREDENTIALS, Kind.UNKNOWN_SYMBOL, Kind.BAD_REQUEST,
                    Kind.FORBIDDEN, Kind.NOT_FOUND, Kind.ORDER_REJECTED})
_ACCEPTED = (Verdict.OK, Verdict.MINOR_REORDER)
_REASONS = {Verdict.STALE: "stale", Verdict.FUTURE: "future", Verdict.REORDER: "reorder",
            Verdict.DUPLICATE: "duplicate"}


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """Freshness bounds per channel kind (``orderbook``, ``ticker``, ``trades``) and checks."""

    max_age_s: Mapping[str, float] = field(default_factory=lambda: {
        "orderbook": 5.0, "ticker": 15.0, "trades": 60.0})
    first_data_s: float = 15.0  # a new subscription (connect, auth, snapshot) may take longer
    max_ts_age_ms: int = 10_000
    future_tolerance_ms: int = 5_000
    reorder_window_ms: int = 500
    book_check_depth: int = 5
    backoff: BackoffConfig = field(default_factory=lambda: BackoffConfig(
        base_s=0.1, cap_s=5.0, reset_after_s=30.0))
    close_timeout_s: float = 2.0
    freshness: FreshnessConfig = field(default_factory=FreshnessConfig)

    def liveness(self) -> LivenessConfig:
        return LivenessConfig(ping_after_s=1e9, pong_timeout_s=1e9,
                              max_data_age_s=max(self.max_age_s.values(), default=30.0),
                              channel_max_age_s=dict(self.max_age_s),
                              quiet_channels=frozenset({"orders", "mytrades"}),
                              max_ts_age_ms=self.max_ts_age_ms,
                              future_tolerance_ms=self.future_tolerance_ms,
                              reorder_window_ms=self.reorder_window_ms,
                              freshness=self.freshness)


class _StaleError(Exception):
    """The channel's watchdog fired: no data within its bound."""


class _Channel:
    __slots__ = ("accepted", "backoff", "deadline", "fired", "kind", "last_fresh", "name",
                 "recovering", "symbol", "timer", "waiter")

    def __init__(self, name: str, kind: str, symbol: str, backoff: Backoff) -> None:
        self.name = name
        self.kind = kind
        self.symbol = symbol
        self.backoff = backoff
        self.last_fresh: float | None = None
        self.recovering = False
        self.accepted = 0
        self.deadline = 0.0  # loop time by which the current call must get data
        self.timer: asyncio.TimerHandle | None = None
        self.waiter: asyncio.Task[Any] | None = None
        self.fired = False


class CcxtStreams:
    """Guarded ``watch_*`` calls for one ccxt pro exchange object."""

    def __init__(self, exchange: Any, notify: Notifier, *, config: StreamConfig | None = None,
                 clock: Clock = SYSTEM_CLOCK, rng: RandomSource | None = None) -> None:
        self.exchange = exchange
        self.notify = notify
        self.config = config or StreamConfig()
        self.clock = clock
        self._rng: RandomSource = rng or random.Random()
        self.liveness = Liveness(self.config.liveness(), clock.monotonic())
        self._channels: dict[str, _Channel] = {}
        self._by_key: dict[tuple[str, str], _Channel] = {}
        # the process clocks' reads, bound once (hot path: no method lookup); the seam's, so a
        # virtual-time loop's clock is read while one runs; any other clock as given
        self._monotonic = (monotonic if clock is SYSTEM_CLOCK else clock.monotonic)
        self._wall_ms = _system_wall_ms if clock is SYSTEM_CLOCK else clock.wall_ms
        self._closing: set[asyncio.Task[None]] = set()
        self.recoveries = 0
        self.rejected = 0
        self.stale_events = 0
        self._flushed_at = clock.monotonic()

    # ---- what the guard calls ---------------------------------------------------------------

    async def watch(self, kind: str, symbol: str, method: Callable[..., Awaitable[Any]],
                    args: tuple[Any, ...] = (), kwargs: Mapping[str, Any] | None = None) -> Any:
        """One guarded ``watch_*`` call: ``kind`` is ``orderbook``, ``ticker``, ``trades``,
        ``orders`` or ``mytrades``; ``method(*args, **kwargs)`` is ccxt's own call (made once
        per attempt)."""
        key = (kind, symbol)
        channel = self._by_key.get(key)
        if channel is None:
            name = f"{kind}:{symbol}"
            channel = self._channels[name] = self._by_key[key] = _Channel(
                name, kind, symbol, Backoff(self.config.backoff, self._rng))
        max_age = self.config.max_age_s.get(kind)
        monotonic = self._monotonic
        kw = kwargs or {}
        while True:
            started = monotonic()
            wait_s = max_age or 0.0
            try:
                if max_age is None:
                    result = await method(*args, **kw)
                else:
                    if channel.last_fresh is None or channel.recovering:
                        wait_s = max(max_age, self.config.first_data_s)
                    else:
                        wait_s = self.liveness.limit_s(channel.name) or max_age
                    result = await self._watched(channel, wait_s, method(*args, **kw))
            except _StaleError:
                self._stale(channel, started, wait_s)
                await self._recover(channel, "data_age")
                continue
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                # ccxt cancelled its future (its client was closed under it): recover
                await self._recover(channel, "closed")
                continue
            except ccxt.BaseError as exc:
                if exception_kind(exc) in _FATAL:
                    raise
                self.notify.log("ws.disconnected", channel=channel.name, reason=str(exc)[:200])
                await self._recover(channel, "error")
                continue
            now = monotonic()
            out, reason = self._check(channel, result, now)
            if reason is not None:
                self._reject(channel, reason)
                if kind == "orderbook":  # the book may be wrong from here on: rebuild it
                    await self._recover(channel, reason)
                continue
            self._accept(channel, now)
            return out

    async def _watched(self, channel: _Channel, wait_s: float, call: Awaitable[Any]) -> Any:
        """Await ``call``; raise ``_StaleError`` if nothing comes within ``wait_s``.

        One timer per channel, moved lazily: each call only records its deadline, and the
        timer, when it fires early, re-arms itself for the latest deadline (cheaper than a
        timeout object per message)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        channel.deadline = deadline
        task = asyncio.current_task()
        channel.waiter = task
        timer = channel.timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            channel.timer = loop.call_at(deadline, self._on_timer, channel)
        try:
            return await call
        except asyncio.CancelledError:
            if channel.fired and task is not None:
                channel.fired = False
                if task.uncancel() == 0:
                    raise _StaleError from None
            raise
        finally:
            channel.waiter = None

    def _on_timer(self, channel: _Channel) -> None:
        channel.timer = None
        waiter = channel.waiter
        if waiter is None or waiter.done():
            return  # nobody is waiting: the next call arms a timer again
        loop = asyncio.get_running_loop()
        if loop.time() < channel.deadline:
            channel.timer = loop.call_at(channel.deadline, self._on_timer, channel)
            return
        channel.fired = True
        waiter.cancel()

    async def aclose(self) -> None:
        """Wait for the connection closes started by recoveries."""
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    def is_fresh(self, kind: str, symbol: str) -> bool:
        """Whether the channel delivered an accepted update within its bound, and is not in a
        recovery. Quiet channels (orders) are fresh while not recovering."""
        channel = self._channels.get(f"{kind}:{symbol}")
        if channel is None or channel.recovering:
            return False
        max_age = self.config.max_age_s.get(kind)
        if max_age is None:
            return True
        limit = self.liveness.limit_s(channel.name) or max_age
        return (channel.last_fresh is not None
                and self.clock.monotonic() - channel.last_fresh <= limit)

    # ---- checks ------------------------------------------------------------------------------

    def _check(self, channel: _Channel, result: Any, now: float) -> tuple[Any, str | None]:
        kind = channel.kind
        wall_ms = self._wall_ms()
        if kind == "orderbook":
            reason = check_levels(result["bids"], result["asks"], self.config.book_check_depth)
            if reason is not None:
                return result, reason
            ts = result.get("timestamp")
            verdict = self.liveness.check(channel.name, now, ts if isinstance(ts, int) else None,
                                          wall_ms, None)
            # deltas applied out of order leave wrong sizes behind: any step back is a reorder
            if verdict is Verdict.MINOR_REORDER:
                return result, "reorder"
            return result, None if verdict is Verdict.OK else _REASONS[verdict]
        if kind == "ticker":
            ts = result.get("timestamp")
            verdict = self.liveness.check(channel.name, now, ts if isinstance(ts, int) else None,
                                          wall_ms, None)
            return result, None if verdict in _ACCEPTED else _REASONS[verdict]
        if kind == "trades" and isinstance(result, list):
            kept = []
            reason = None
            for trade in result:
                ts = trade.get("timestamp")
                verdict = self.liveness.check(channel.name, now,
                                              ts if isinstance(ts, int) else None, wall_ms,
                                              trade.get("id"))
                if verdict in _ACCEPTED:
                    kept.append(trade)
                else:
                    reason = _REASONS[verdict]
                    self._reject(channel, reason)
            if not kept:
                return result, reason or "empty"
            if len(kept) != len(result):
                out = type(result)() if type(result) is list else []
                out.extend(kept)
                return out, None
            return result, None
        return result, None

    def _accept(self, channel: _Channel, now: float) -> None:
        channel.last_fresh = now
        channel.accepted += 1
        if channel.recovering:
            channel.recovering = False
            channel.backoff.on_success(now)
            self.notify.log("ws.subscribed", channel=channel.name)
            if channel.kind == "orderbook":
                self.notify.log("book.resynced", channel=channel.name, symbol=channel.symbol)
        metrics = self.notify.metrics
        if metrics is not None and now - self._flushed_at >= 1.0:
            self._flush(now)

    def _flush(self, now: float) -> None:
        metrics = self.notify.metrics
        if metrics is None:
            return
        self._flushed_at = now
        for channel in self._channels.values():
            if channel.accepted:
                metrics.ws_messages_total.labels(channel.kind).inc(channel.accepted)
                channel.accepted = 0
            if channel.last_fresh is not None:
                metrics.set_data_age(channel.name, now - channel.last_fresh,
                                     self._wall_ms() / 1000)
        status = self.liveness.status(now)
        for name, threshold in status.thresholds_s.items():
            metrics.set_freshness(name, threshold, status.suspicion.get(name))

    def _reject(self, channel: _Channel, reason: str) -> None:
        self.rejected += 1
        self.notify.log("data.rejected", channel=channel.name, reason=reason)
        if self.notify.metrics is not None:
            self.notify.metrics.data_rejected_total.labels(reason).inc()

    def _stale(self, channel: _Channel, started: float, threshold_s: float) -> None:
        self.stale_events += 1
        now = self.clock.monotonic()
        age = now - (channel.last_fresh if channel.last_fresh is not None else started)
        detector = self.liveness.detector(channel.name)
        extra = {"threshold_s": round(threshold_s, 3)}
        if detector is not None and detector.learned:
            extra["suspicion"] = round(detector.suspicion_at(age), 2)
        self.notify.log("ws.stale", reason="data_age", channel=channel.name,
                        age_s=round(age, 3), **extra)
        if self.notify.metrics is not None:
            self.notify.metrics.ws_stale_total.labels("data_age").inc()

    # ---- recovery ----------------------------------------------------------------------------

    async def _recover(self, channel: _Channel, reason: str) -> None:
        """Close the ccxt connection carrying ``channel``, drop its cached data, back off."""
        self.recoveries += 1
        channel.recovering = True
        detector = self.liveness.detector(channel.name)
        if detector is not None:  # a new subscription: re-warm, and the silence is not learned
            detector.on_connect(self.clock.monotonic())
        self._drop_connections(channel.symbol, reason)
        if channel.kind == "orderbook":
            books = getattr(self.exchange, "orderbooks", None)
            if isinstance(books, dict):
                books.pop(channel.symbol, None)
        now = self.clock.monotonic()
        delay = channel.backoff.next_delay_s(now)
        self.notify.log("ws.reconnecting", channel=channel.name, attempt=channel.backoff.attempt,
                        delay_s=round(delay, 3), reason=reason)
        metrics = self.notify.metrics
        if metrics is not None:
            metrics.ws_reconnects_total.inc()
        await asyncio.sleep(delay)

    def _drop_connections(self, symbol: str, reason: str) -> None:
        clients = getattr(self.exchange, "clients", None)
        if not isinstance(clients, dict) or not clients:
            return
        targets = [url for url, client in clients.items()
                   if any(symbol in str(key) for key in (getattr(client, "subscriptions", None)
                                                         or {}))]
        for url in targets or list(clients):
            client = clients.pop(url, None)
            if client is None:
                continue
            self.notify.log("ws.disconnected", url=url, reason=reason)
            if self.notify.metrics is not None:
                self.notify.metrics.ws_disconnects_total.inc()
            task = asyncio.get_running_loop().create_task(self._close_client(client, reason))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def _close_client(self, client: Any, reason: str) -> None:
        error = ccxt.NetworkError(f"venueguard closed the connection: {reason}")
        try:
            client.error = error
            client.reject(error)  # anything still waiting on this connection hears why
            async with asyncio.timeout(self.config.close_timeout_s):
                await client.close()
        except (TimeoutError, OSError, ccxt.BaseError, RuntimeError):
            transport = _transport_of(client)
            if transport is not None:
                transport.abort()


def _system_wall_ms() -> int:
    return wall_ns() // 1_000_000


def _transport_of(client: Any) -> Any:
    """The socket transport under a ccxt aiohttp client, to abort a close that hangs."""
    connection = getattr(client, "connection", None)
    response = getattr(connection, "_response", None)
    conn = getattr(response, "connection", None)
    return getattr(conn, "transport", None)
