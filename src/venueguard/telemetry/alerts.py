"""Alert tiers, a router with pluggable sinks, and the liveness alert policies.

Tiers follow the third seed: ``info`` (log, no human needed), ``warning`` (log, watch closer),
``critical`` (act now). The :class:`Alerts` router delivers each alert to every sink; a sink that
fails never raises into the caller. Repeats of one alert (same ``key``) inside ``dedup_window_s``
are folded: the first goes out at once, the rest are counted, and when the window closes one
summary alert carries the count, so a storm of a hundred becomes one alert plus "x99".

Time is injected: every call takes ``now`` (monotonic seconds). Call :meth:`Alerts.poll` at
:meth:`Alerts.next_deadline` (or on any cadence) to release the summaries of closed windows.

Sinks: :class:`LogSink` (the ``alert`` event in the EventLog), :class:`WebhookSink` (JSON POST,
queued, in the background), :class:`MemorySink` (tests). Policies: :class:`LivenessAlerts`
(pong age, data gap, reconnects per hour, message rate) and :class:`ReconnectWatcher`
(3 consecutive failed reconnects -> critical alert and the pause signal).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import aiohttp
import orjson

from venueguard.telemetry.events import GLOBAL_REDACTOR, EventLog, Redactor, iso_utc_ms

if TYPE_CHECKING:
    from venueguard.telemetry.metrics import Metrics


class Tier(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


# What tier a reconnect failure category deserves (seed 002, failure-aware reconnection).
FAILURE_TIERS: Mapping[str, Tier] = {
    "transient_network": Tier.INFO,
    "server_overloaded": Tier.INFO,
    "rate_limited": Tier.WARNING,
    "symbol_not_found": Tier.WARNING,
    "unknown": Tier.WARNING,
    "auth_failed": Tier.CRITICAL,
}
# What tier a venue-health transition deserves (BLOCKED stops all trading: a human must look).
VENUE_STATE_TIERS: Mapping[str, Tier] = {
    "HEALTHY": Tier.INFO,
    "DEGRADED": Tier.WARNING,
    "COOLDOWN": Tier.WARNING,
    "BLOCKED": Tier.CRITICAL,
}


@dataclass(frozen=True, slots=True)
class Alert:
    tier: Tier
    message: str
    key: str
    wall_s: float
    repeats: int = 0  # occurrences folded into this alert (summaries only)
    fields: Mapping[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {"ts": iso_utc_ms(self.wall_s), "tier": self.tier.value, "message": self.message,
                "key": self.key, "repeats": self.repeats, **dict(self.fields)}


class AlertSink(Protocol):
    def send(self, alert: Alert) -> None: ...


class MemorySink:
    """Keeps delivered alerts in a bounded list (tests, the dashboard)."""

    def __init__(self, keep: int = 1000) -> None:
        self.alerts: deque[Alert] = deque(maxlen=keep)

    def send(self, alert: Alert) -> None:
        self.alerts.append(alert)


class LogSink:
    """Writes each alert as the ``alert`` event (``tier``, ``message``) into an EventLog."""

    def __init__(self, events: EventLog) -> None:
        self._events = events

    def send(self, alert: Alert) -> None:
        reserved = ("event", "tier", "message", "key", "repeats")
        extra = {k: v for k, v in alert.fields.items() if k not in reserved}
        self._events.emit("alert", tier=alert.tier.value, message=alert.message, key=alert.key,
                          repeats=alert.repeats, **extra)


class WebhookSink:
    """POSTs each alert as JSON to ``url`` from a background task.

    ``send`` only enqueues (never blocks, never raises); when the queue is full the oldest alert
    is dropped and counted. Must be used inside a running event loop; alerts sent without one
    are dropped and counted. Call ``await aclose()`` on shutdown (``send`` drops after it).
    Secrets (registered ones and secret-named fields) are redacted from the payload; the URL
    itself never reaches logs or counters. Outcomes are counted in ``sent``, ``failed`` and
    ``dropped``; ``last_error`` holds the exception class name or the HTTP status of the last
    failure.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5.0,
        max_queue: int = 256,
        headers: Mapping[str, str] | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        if timeout_s <= 0 or max_queue < 1:
            raise ValueError("timeout_s must be > 0 and max_queue >= 1")
        self._url = url
        self._timeout_s = timeout_s
        self._headers = {"Content-Type": "application/json", **dict(headers or {})}
        self._redactor = redactor or GLOBAL_REDACTOR
        self._queue: deque[bytes] = deque(maxlen=max_queue)
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._in_flight = False
        self._closed = False
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self.last_error: str | None = None

    def send(self, alert: Alert) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.dropped += 1
            return
        if self._closed:
            self.dropped += 1
            return
        body = self.body(alert)
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append(body)
        if self._task is None or self._task.done():
            self._wakeup = asyncio.Event()
            self._task = loop.create_task(self._run(), name="webhook-sink")
        assert self._wakeup is not None
        self._wakeup.set()

    def body(self, alert: Alert) -> bytes:
        """The request body for ``alert`` (generic JSON here; chat services override it)."""
        return orjson.dumps(self._redactor.redact(alert.to_dict()))

    async def drain(self, timeout_s: float = 5.0) -> bool:
        """Wait until the queue is empty and no POST is in flight; False on timeout."""
        loop = asyncio.get_running_loop()  # its clock: a virtual loop's time moves on its own
        deadline = loop.time() + timeout_s
        while self._queue or self._in_flight:
            if loop.time() >= deadline or self._task is None or self._task.done():
                return False
            await asyncio.sleep(0.01)
        return True

    async def aclose(self, drain_timeout_s: float = 2.0) -> None:
        """Deliver what is queued (up to ``drain_timeout_s``), then stop the task and session.

        Alerts sent afterwards are dropped and counted.
        """
        self._closed = True
        if self._task is not None and not self._task.done():
            await self.drain(drain_timeout_s)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        assert self._wakeup is not None
        while True:
            while not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            body = self._queue.popleft()
            self._in_flight = True
            try:
                await self._post(body)
            finally:
                self._in_flight = False

    async def _post(self, body: bytes) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        try:
            async with asyncio.timeout(self._timeout_s):
                async with self._session.post(self._url, data=body, headers=self._headers) as r:
                    await r.read()
                    if 200 <= r.status < 300:
                        self.sent += 1
                        return
                    self.failed += 1
                    self.last_error = f"HTTP {r.status}"
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            self.failed += 1
            self.last_error = type(exc).__name__


@dataclass(slots=True)
class _Window:
    opened_at: float
    first: Alert
    suppressed: int = 0


class Alerts:
    """Routes alerts to sinks with per-key dedup; ``now`` is monotonic seconds.

    ``fire`` delivers the first alert of a key and opens a window of ``dedup_window_s``; repeats
    inside it are counted, not delivered. ``poll(now)`` closes expired windows, delivering one
    summary per window that had repeats. Alerts below ``min_tier`` are dropped.
    """

    def __init__(
        self,
        sinks: list[AlertSink] | None = None,
        *,
        dedup_window_s: float = 60.0,
        min_tier: Tier = Tier.INFO,
        wall_clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
    ) -> None:
        self.sinks: list[AlertSink] = list(sinks or [])
        self.dedup_window_s = dedup_window_s
        self.min_tier = min_tier
        self._wall_clock = wall_clock
        self._metrics = metrics
        self._windows: dict[str, _Window] = {}
        self.sink_errors = 0

    def add_sink(self, sink: AlertSink) -> None:
        self.sinks.append(sink)

    def fire(self, tier: Tier | str, message: str, *, now: float, key: str | None = None,
             **fields: object) -> bool:
        """Raise an alert; True when delivered now, False when folded into a repeat count."""
        tier = Tier(tier)
        if _RANK[tier] < _RANK[self.min_tier]:
            return False
        key = key or f"{tier.value}:{message}"
        self.poll(now)
        window = self._windows.get(key)
        if window is not None:
            window.suppressed += 1
            if self._metrics is not None:
                self._metrics.alerts_suppressed_total.inc()
            return False
        alert = Alert(tier, message, key, self._wall_clock(), 0, dict(fields))
        self._windows[key] = _Window(now, alert)
        self._deliver(alert)
        return True

    def poll(self, now: float) -> None:
        """Close windows older than ``dedup_window_s``; deliver a summary where repeats occurred."""
        for key, window in list(self._windows.items()):
            if now - window.opened_at < self.dedup_window_s:
                continue
            del self._windows[key]
            if window.suppressed:
                first = window.first
                message = (f"{first.message} (repeated {window.suppressed} more times "
                           f"in {self.dedup_window_s:g} s)")
                self._deliver(Alert(first.tier, message, key, self._wall_clock(),
                                    window.suppressed, first.fields))

    def next_deadline(self) -> float | None:
        """When ``poll`` next has work (monotonic seconds), or None."""
        if not self._windows:
            return None
        return min(w.opened_at for w in self._windows.values()) + self.dedup_window_s

    def _deliver(self, alert: Alert) -> None:
        if self._metrics is not None:
            self._metrics.alerts_total.labels(tier=alert.tier.value).inc()
        for sink in self.sinks:
            try:
                sink.send(alert)
            except Exception:
                self.sink_errors += 1


_RANK = {Tier.INFO: 0, Tier.WARNING: 1, Tier.CRITICAL: 2}


@dataclass(frozen=True, slots=True)
class LivenessThresholds:
    """Seed 002's alert table; ``None`` disables a rule."""

    pong_warning_s: float | None = 15.0
    pong_critical_s: float | None = 30.0
    data_gap_warning_s: float | None = 20.0
    reconnects_per_hour_warning: int | None = 5
    min_msgs_per_s: float | None = 0.1
    low_rate_for_s: float = 10.0


class LivenessAlerts:
    """Edge-triggered liveness alerts: one alert on entering a bad state, none while it lasts.

    Feed ``on_sample`` on a cadence (e.g. every second) and ``on_reconnect`` per attempt.
    """

    def __init__(self, alerts: Alerts, thresholds: LivenessThresholds | None = None) -> None:
        self._alerts = alerts
        self._t = thresholds or LivenessThresholds()
        self._active: set[str] = set()
        self._low_rate_since: float | None = None
        self._reconnects: deque[float] = deque()

    @property
    def active(self) -> frozenset[str]:
        return frozenset(self._active)

    def on_sample(self, *, pong_age_s: float | None, data_age_s: float | None,
                  msgs_per_s: float | None, now: float) -> None:
        t = self._t
        pong = pong_age_s if pong_age_s is not None else 0.0
        self._edge("pong_critical", t.pong_critical_s is not None and pong > t.pong_critical_s,
                   Tier.CRITICAL, f"no pong for {pong:.1f} s: reconnect now", now)
        self._edge("pong_warning", t.pong_warning_s is not None and pong > t.pong_warning_s
                   and "pong_critical" not in self._active,
                   Tier.WARNING, f"no pong for {pong:.1f} s", now)
        gap = data_age_s if data_age_s is not None else 0.0
        self._edge("data_gap", t.data_gap_warning_s is not None and gap > t.data_gap_warning_s,
                   Tier.WARNING, f"no data for {gap:.1f} s: prepare to reconnect", now)
        floor = t.min_msgs_per_s
        low = floor is not None and msgs_per_s is not None and msgs_per_s < floor
        if not low:
            self._low_rate_since = None
        elif self._low_rate_since is None:
            self._low_rate_since = now
        since = self._low_rate_since
        sustained = since is not None and now - since >= t.low_rate_for_s
        self._edge("low_rate", sustained, Tier.WARNING,
                   f"message rate below {t.min_msgs_per_s} /s for {t.low_rate_for_s:g} s", now)

    def on_reconnect(self, now: float) -> None:
        self._reconnects.append(now)
        while self._reconnects and now - self._reconnects[0] > 3600.0:
            self._reconnects.popleft()
        limit = self._t.reconnects_per_hour_warning
        self._edge("reconnect_rate", limit is not None and len(self._reconnects) > limit,
                   Tier.WARNING, f"{len(self._reconnects)} reconnects in the last hour", now)

    def _edge(self, name: str, bad: bool, tier: Tier, message: str, now: float) -> None:
        if bad and name not in self._active:
            self._active.add(name)
            self._alerts.fire(tier, message, now=now, key=f"liveness.{name}", rule=name)
        elif not bad:
            self._active.discard(name)


class ReconnectWatcher:
    """After ``threshold`` consecutive failed reconnects: a critical alert and the pause signal.

    Call ``on_failed(now)`` per failed attempt and ``on_succeeded(now)`` once connected and
    resubscribed. ``on_pause(reason)`` runs once per pause; ``paused`` reads the flag. A
    success after failures raises an info alert; with ``resume_on_success`` it also clears the
    pause and calls ``on_resume()`` (otherwise call :meth:`resume` when the strategy may trade).
    """

    def __init__(
        self,
        alerts: Alerts,
        *,
        threshold: int = 3,
        on_pause: Callable[[str], None] | None = None,
        on_resume: Callable[[], None] | None = None,
        resume_on_success: bool = True,
    ) -> None:
        if threshold < 1:
            raise ValueError("threshold must be >= 1")
        self._alerts = alerts
        self.threshold = threshold
        self._on_pause = on_pause
        self._on_resume = on_resume
        self.resume_on_success = resume_on_success
        self.consecutive_failures = 0
        self.paused = False

    def on_failed(self, now: float, reason: str = "") -> None:
        self.consecutive_failures += 1
        if self.consecutive_failures >= self.threshold and not self.paused:
            self.paused = True
            detail = f" (last: {reason})" if reason else ""
            message = (f"{self.consecutive_failures} consecutive reconnects failed{detail}: "
                       "strategy paused")
            self._alerts.fire(Tier.CRITICAL, message, now=now, key="reconnect.failed",
                              failures=self.consecutive_failures)
            if self._on_pause is not None:
                self._on_pause(message)

    def on_succeeded(self, now: float) -> None:
        failures, self.consecutive_failures = self.consecutive_failures, 0
        if failures:
            self._alerts.fire(Tier.INFO, f"reconnected after {failures} failed attempts",
                              now=now, key="reconnect.recovered", failures=failures)
        if self.paused and self.resume_on_success:
            self.resume()

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            if self._on_resume is not None:
                self._on_resume()
