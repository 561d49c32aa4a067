"""Liveness of one websocket connection: heartbeat, pong deadline, per-channel data freshness,
and checks on every message's server timestamp (stale, future, reordered, duplicate).

Public API::

    LivenessConfig(ping_after_s=5.0, pong_timeout_s=5.0, max_data_age_s=30.0,
                   channel_max_age_s={}, quiet_channels=DEFAULT_QUIET_CHANNELS,
                   max_ts_age_ms=30_000, future_tolerance_ms=5_000, reorder_window_ms=500,
                   duplicate_memory=4096, freshness=FreshnessConfig())
    class Liveness(config, now, models=None):          # one per connection; create on connect
        on_subscribed(channel, now) / on_unsubscribed(channel)
        on_inbound(now)                                # any frame (acks, welcome, pong text)
        on_pong(now)                                   # a pong (text "pong" or a pong frame)
        on_data(channel, now, *, ts_ms=None, wall_ms=None, key=None) -> Verdict
        check(channel, now, ts_ms, wall_ms, key) -> Verdict   # on_data, positional (hot path)
        poll(now) -> list[SendPing | StaleDecision | FreshDecision]    # drain decisions
        next_deadline() -> float | None                # when poll next has something to say
        status(now) -> LivenessStatus                  # healthy + why not
        counters: LivenessCounters                     # running totals for this connection
    Verdict: OK, MINOR_REORDER (both accepted), STALE, FUTURE, REORDER, DUPLICATE (rejected)

Call order: create on connect; call ``on_subscribed`` per topic after its ack; feed every frame
(``on_data`` for table rows, ``on_pong`` for pongs, ``on_inbound`` for anything else); after
feeding, and whenever ``next_deadline()`` passes, call ``poll(now)`` and act: ``SendPing`` ->
send the text ``ping`` (the ping counts as sent at that ``now``); ``StaleDecision`` -> the
connection is not trustworthy (``reason`` is ``data_age`` or ``pong_timeout``, the ``ws.stale``
event); ``FreshDecision`` -> a stalled channel delivers again.

Rules (common venue heartbeat advice: ping after 5 s of silence, expect pong within 5 s):
- A ping is due once ``now >= last_inbound + ping_after_s`` and no ping is outstanding.
- A pong timeout is flagged once ``now >= ping_sent + pong_timeout_s``. Any inbound frame
  answers the ping (the connection demonstrably delivers).
- A channel is stale once ``now >= last_fresh + max_age`` (exactly at the threshold, never
  before), flagged once per stall; quiet channels are never flagged. With
  ``freshness.enabled`` the threshold of each non-quiet channel is learned
  (:mod:`venueguard.core.freshness`): ``max_age`` is then the learned one, and the static one
  below only while the channel's model warms up. Pass the session's
  :class:`~venueguard.core.freshness.FreshnessModels` as ``models`` so that learning outlives
  the connection (creating a Liveness tells them a new connection started); without it each
  Liveness learns on its own. ``channel_max_age_s`` is
  looked up by the full channel (``TABLE:SYMBOL``, e.g. ``book:BTCUSD``), then by its table.
  Every threshold is the very sum :meth:`Liveness.next_deadline` returns, so a wake-up at the
  deadline always acts.
- Only accepted messages refresh a channel: stale, future, reordered and duplicate data does
  not count as fresh.
- Timestamp checks (need ``ts_ms`` and ``wall_ms``, epoch ms): FUTURE if
  ``ts_ms - wall_ms > future_tolerance_ms``; STALE if ``wall_ms - ts_ms > max_ts_age_ms``.
- Ordering per channel (needs ``ts_ms``): REORDER if more than ``reorder_window_ms`` older than
  the newest seen; MINOR_REORDER if older but within the window.
- DUPLICATE: the same ``(channel, ts_ms, key)`` was seen among the last ``duplicate_memory``
  signatures (only when ``key`` is given, e.g. a trade's id or a frame hash). The memory is
  kept per ``(channel, ts_ms)``, each signature numbered in order, so the usual message (the
  newest timestamp of its channel) costs one lookup in a small table of that millisecond.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field, fields

from venueguard.core.freshness import ChannelFreshness, FreshnessConfig, FreshnessModels

__all__ = [
    "DEFAULT_QUIET_CHANNELS",
    "FreshDecision",
    "Liveness",
    "LivenessConfig",
    "LivenessCounters",
    "LivenessDecision",
    "LivenessStatus",
    "SendPing",
    "StaleDecision",
    "Verdict",
]

#: Tables that can legitimately stay silent for long periods (private and rare public tables).
DEFAULT_QUIET_CHANNELS: frozenset[str] = frozenset({
    "order", "execution", "position", "margin", "wallet", "transact", "account", "affiliate",
    "privateNotifications", "publicNotifications", "announcement", "chat", "connected",
    "funding", "settlement", "insurance", "liquidation",
})


class Verdict(enum.Enum):
    """What the checks said about one data message. ``data.rejected`` reasons use the values."""

    OK = "ok"
    MINOR_REORDER = "minor_reorder"
    STALE = "stale"
    FUTURE = "future"
    REORDER = "reorder"
    DUPLICATE = "duplicate"

    @property
    def accepted(self) -> bool:
        """True when the message may be handed on as fresh."""
        return self is Verdict.OK or self is Verdict.MINOR_REORDER


@dataclass(frozen=True, slots=True)
class LivenessConfig:
    ping_after_s: float = 5.0
    pong_timeout_s: float = 5.0
    max_data_age_s: float = 30.0
    channel_max_age_s: Mapping[str, float] = field(default_factory=dict)
    quiet_channels: frozenset[str] = DEFAULT_QUIET_CHANNELS
    max_ts_age_ms: int = 30_000
    future_tolerance_ms: int = 5_000
    reorder_window_ms: int = 500
    duplicate_memory: int = 4096
    freshness: FreshnessConfig = field(default_factory=FreshnessConfig)

    def __post_init__(self) -> None:
        for name in ("ping_after_s", "pong_timeout_s", "max_data_age_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0")
        if self.duplicate_memory < 1:
            raise ValueError("duplicate_memory must be >= 1")

    def max_age_for(self, channel: str) -> float | None:
        """The freshness bound of ``channel`` in seconds; None for a quiet channel."""
        table = channel.split(":", 1)[0]
        found = self.channel_max_age_s.get(channel)
        if found is None:
            found = self.channel_max_age_s.get(table)
        if found is not None:
            return found
        if channel in self.quiet_channels or table in self.quiet_channels:
            return None
        return self.max_data_age_s


@dataclass(frozen=True, slots=True)
class SendPing:
    at: float


@dataclass(frozen=True, slots=True)
class StaleDecision:
    reason: str  # "data_age" | "pong_timeout"
    channel: str | None
    age_s: float
    at: float
    threshold_s: float | None = None  # the limit that was crossed
    suspicion: float | None = None  # phi of the silence, where the threshold was learned

    def limit_fields(self) -> dict[str, float]:
        """What a ``ws.stale`` event says about the limit: ``threshold_s`` and, where learned,
        ``suspicion`` (rounded for the log)."""
        out: dict[str, float] = {}
        if self.threshold_s is not None:
            out["threshold_s"] = round(self.threshold_s, 3)
        if self.suspicion is not None:
            out["suspicion"] = round(self.suspicion, 2)
        return out


@dataclass(frozen=True, slots=True)
class FreshDecision:
    channel: str
    at: float


LivenessDecision = SendPing | StaleDecision | FreshDecision

# Module constants: the per-message path reads these instead of attributes of the enum class.
_OK = Verdict.OK
_MINOR_REORDER = Verdict.MINOR_REORDER
_STALE = Verdict.STALE
_FUTURE = Verdict.FUTURE
_REORDER = Verdict.REORDER
_DUPLICATE = Verdict.DUPLICATE


@dataclass(slots=True)
class LivenessCounters:
    """Running totals for one connection."""

    messages: int = 0
    pings_sent: int = 0
    pongs: int = 0
    pong_timeouts: int = 0
    stalls: int = 0
    stale: int = 0
    future: int = 0
    reorder: int = 0
    minor_reorder: int = 0
    duplicate: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class LivenessStatus:
    """A snapshot saying whether the connection is healthy and, if not, why."""

    healthy: bool
    reasons: tuple[str, ...]
    silence_s: float
    pong_age_s: float | None  # since the last pong; None if none yet
    ping_outstanding_s: float | None  # how long the current ping has waited
    data_age_s: Mapping[str, float]  # per channel, since the last accepted message
    stalled: tuple[str, ...]
    counters: Mapping[str, int]
    thresholds_s: Mapping[str, float] = field(default_factory=dict)  # per watched channel
    suspicion: Mapping[str, float] = field(default_factory=dict)  # where learned: phi now


_NO_TS: object = object()  # no signature table cached on a channel yet (``None`` is a key)
_NO_MS = float("-inf")  # no server timestamp seen yet: every one is in order


class _Channel:
    __slots__ = ("arrived", "detector", "last_fresh", "last_ts_ms", "max_age", "sig_ts", "sigs",
                 "stalled")

    def __init__(self, max_age: float | None, now: float,
                 detector: ChannelFreshness | None) -> None:
        self.max_age = max_age  # the static bound (None: a quiet channel, never flagged)
        self.detector = detector  # the learned bound, where freshness is learned
        self.last_fresh = now
        self.last_ts_ms: float = _NO_MS  # the newest server timestamp seen
        self.arrived: float | None = None  # the ``now`` of the last accepted message
        self.stalled = False
        # the signature table of the last ``ts_ms`` this channel checked a key at (a cache of
        # Liveness._sigs[(channel, sig_ts)])
        self.sig_ts: object = _NO_TS
        self.sigs: dict[Hashable, int] = {}

    def limit(self) -> float | None:
        detector = self.detector
        return self.max_age if detector is None else detector.threshold_s


class Liveness:
    """Liveness state of one connection. All times are monotonic seconds passed in."""

    def __init__(self, config: LivenessConfig, now: float,
                 models: FreshnessModels | None = None) -> None:
        self.config = config
        if models is None and config.freshness.enabled:
            models = FreshnessModels(config.freshness)
        self.freshness = models if config.freshness.enabled else None
        if self.freshness is not None:
            self.freshness.on_connect(now)
        self.counters = LivenessCounters()
        self._last_inbound = now
        self._ping_sent: float | None = None
        self._pong_flagged = False
        self._last_pong: float | None = None
        self._channels: dict[str, _Channel] = {}
        # Duplicate memory: (channel, ts_ms) -> {key: number}; signatures are numbered 1, 2, ...
        # as they are first seen, and one is remembered while fewer than ``duplicate_memory``
        # newer ones followed it. Forgotten entries are dropped in bulk (``_forget``).
        self._sigs: dict[tuple[str, int | None], dict[Hashable, int]] = {}
        self._sig_count = 0
        self._sig_forget_at = config.duplicate_memory
        self._pending: list[LivenessDecision] = []
        self._pending_at: float | None = None
        self._memory = config.duplicate_memory
        self._future_ms = config.future_tolerance_ms  # the per-message checks read these
        self._stale_ms = config.max_ts_age_ms
        self._reorder_ms = config.reorder_window_ms

    # --- feeds --------------------------------------------------------------------------------

    def on_subscribed(self, channel: str, now: float) -> None:
        """Start watching ``channel``; its freshness clock starts at ``now``."""
        self._channels[channel] = self._new_channel(channel, now)

    def _new_channel(self, channel: str, now: float) -> _Channel:
        max_age = self.config.max_age_for(channel)
        models = self.freshness
        detector = None
        if models is not None and max_age is not None:
            detector = models.channel(channel, max_age)
        return _Channel(max_age, now, detector)

    def on_unsubscribed(self, channel: str) -> None:
        self._channels.pop(channel, None)

    def on_inbound(self, now: float) -> None:
        """Any frame arrived: the silence timer restarts and an outstanding ping is answered."""
        self._last_inbound = now
        self._ping_sent = None
        self._pong_flagged = False

    def on_pong(self, now: float) -> None:
        self.counters.pongs += 1
        self._last_pong = now
        self.on_inbound(now)

    def on_data(
        self,
        channel: str,
        now: float,
        *,
        ts_ms: int | None = None,
        wall_ms: int | None = None,
        key: Hashable = None,
    ) -> Verdict:
        """Check one data message of ``channel``; accepted messages refresh the channel."""
        return self.check(channel, now, ts_ms, wall_ms, key)

    def check(self, channel: str, now: float, ts_ms: int | None, wall_ms: int | None,
              key: Hashable) -> Verdict:
        """:meth:`on_data` with positional arguments: the same checks, for per-message callers."""
        self._last_inbound = now
        if self._ping_sent is not None:  # a ping is answered (no ping -> never pong-flagged)
            self._ping_sent = None
            self._pong_flagged = False
        counters = self.counters
        counters.messages += 1
        ch = self._channels.get(channel)
        if ch is None:
            ch = self._channels[channel] = self._new_channel(channel, now)
        if ts_ms is not None and wall_ms is not None:
            if ts_ms - wall_ms > self._future_ms:
                counters.future += 1
                return _FUTURE
            if wall_ms - ts_ms > self._stale_ms:
                counters.stale += 1
                return _STALE
        if key is not None:
            sigs = ch.sigs if ch.sig_ts == ts_ms else self._sig_table(ch, channel, ts_ms)
            count = self._sig_count + 1  # this signature's number, if it is a new one
            number = sigs.setdefault(key, count)
            if number != count:  # seen: a duplicate while remembered, else new again
                if count - number <= self._memory:
                    counters.duplicate += 1
                    return _DUPLICATE
                sigs[key] = count
            self._sig_count = count
            if count >= self._sig_forget_at:
                self._forget()
        verdict = _OK
        if ts_ms is not None:
            last = ch.last_ts_ms
            if ts_ms >= last:
                ch.last_ts_ms = ts_ms
            elif last - ts_ms > self._reorder_ms:
                counters.reorder += 1
                return _REORDER
            else:
                counters.minor_reorder += 1
                verdict = _MINOR_REORDER
        # The frames of one read share their ``now``: the channel is refreshed once per
        # instant (again, it would change nothing: it is fresh as of ``now`` already, and its
        # detector learns nothing from a gap under a millisecond).
        if ch.arrived != now:
            ch.arrived = ch.last_fresh = now
            detector = ch.detector
            if detector is not None:
                detector.on_arrival(now)
        if ch.stalled:
            ch.stalled = False
            self._pending.append(FreshDecision(channel, now))
            if self._pending_at is None:
                self._pending_at = now
        return verdict

    def _sig_table(self, ch: _Channel, channel: str, ts_ms: int | None) -> dict[Hashable, int]:
        """The signatures of ``channel`` at ``ts_ms`` (created empty), cached on the channel."""
        sigs = self._sigs.get((channel, ts_ms))
        if sigs is None:
            sigs = self._sigs[(channel, ts_ms)] = {}
        ch.sig_ts, ch.sigs = ts_ms, sigs
        return sigs

    def _forget(self) -> None:
        """Drop the signatures no longer remembered (every ``duplicate_memory`` new ones, so the
        memory holds at most twice that many entries and each costs O(1) to forget)."""
        floor = self._sig_count - self._memory  # numbers <= floor are forgotten
        self._sig_forget_at = self._sig_count + self._memory
        tables = self._sigs
        for where, sigs in list(tables.items()):
            if max(sigs.values(), default=floor) <= floor:
                del tables[where]
            elif min(sigs.values()) <= floor:
                tables[where] = {key: n for key, n in sigs.items() if n > floor}
        for ch in self._channels.values():
            ch.sig_ts = _NO_TS  # its cached table may be gone or replaced

    # --- drains -------------------------------------------------------------------------------

    def poll(self, now: float) -> list[LivenessDecision]:
        """Decisions due at ``now`` (and any queued ones), in order."""
        out = self._pending
        self._pending = []
        self._pending_at = None
        cfg = self.config
        if self._ping_sent is None:
            if now >= self._last_inbound + cfg.ping_after_s:
                self._ping_sent = now
                self.counters.pings_sent += 1
                out.append(SendPing(now))
        elif not self._pong_flagged and now >= self._ping_sent + cfg.pong_timeout_s:
            self._pong_flagged = True
            self.counters.pong_timeouts += 1
            out.append(StaleDecision("pong_timeout", None, now - self._ping_sent, now,
                             cfg.pong_timeout_s))
        for name, ch in self._channels.items():
            limit = ch.limit()
            if limit is not None and not ch.stalled and now >= ch.last_fresh + limit:
                ch.stalled = True
                self.counters.stalls += 1
                age = now - ch.last_fresh
                detector = ch.detector
                phi = detector.suspicion_at(age) if detector is not None and detector.learned \
                    else None
                out.append(StaleDecision("data_age", name, age, now, limit, phi))
        return out

    def next_deadline(self) -> float | None:
        """The earliest time at which :meth:`poll` will have a decision (None: nothing pending)."""
        deadline: float | None = self._pending_at
        if self._ping_sent is None:
            due = self._last_inbound + self.config.ping_after_s
        elif not self._pong_flagged:
            due = self._ping_sent + self.config.pong_timeout_s
        else:
            due = None
        if due is not None and (deadline is None or due < deadline):
            deadline = due
        for ch in self._channels.values():
            limit = ch.limit()
            if limit is not None and not ch.stalled:
                due = ch.last_fresh + limit
                if deadline is None or due < deadline:
                    deadline = due
        return deadline

    def status(self, now: float) -> LivenessStatus:
        """Whether the connection is healthy at ``now`` and, if not, why."""
        cfg = self.config
        reasons: list[str] = []
        outstanding = None if self._ping_sent is None else now - self._ping_sent
        if self._ping_sent is not None and now >= self._ping_sent + cfg.pong_timeout_s:
            reasons.append(f"pong_timeout: no answer {outstanding:.1f} s after ping "
                           f"(limit {cfg.pong_timeout_s:g} s)")
        ages: dict[str, float] = {}
        stalled: list[str] = []
        thresholds: dict[str, float] = {}
        suspicion: dict[str, float] = {}
        for name, ch in self._channels.items():
            age = now - ch.last_fresh
            ages[name] = age
            limit = ch.limit()
            if limit is not None:
                thresholds[name] = limit
            detector = ch.detector
            if detector is not None and detector.learned:
                suspicion[name] = detector.suspicion_at(age)
            if limit is not None and now >= ch.last_fresh + limit:
                stalled.append(name)
                reasons.append(f"data_age: {name} silent for {age:.1f} s "
                               f"(limit {limit:g} s)")
        return LivenessStatus(
            healthy=not reasons,
            reasons=tuple(reasons),
            silence_s=now - self._last_inbound,
            pong_age_s=None if self._last_pong is None else now - self._last_pong,
            ping_outstanding_s=outstanding,
            data_age_s=ages,
            stalled=tuple(stalled),
            counters=self.counters.as_dict(),
            thresholds_s=thresholds,
            suspicion=suspicion,
        )

    def limit_s(self, channel: str) -> float | None:
        """The silence after which ``channel`` is stale now (learned or static; None: quiet or
        not watched)."""
        ch = self._channels.get(channel)
        return None if ch is None else ch.limit()

    def detector(self, channel: str) -> ChannelFreshness | None:
        """The learned freshness of ``channel`` (None where static or not watched)."""
        ch = self._channels.get(channel)
        return None if ch is None else ch.detector

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(self._channels)
