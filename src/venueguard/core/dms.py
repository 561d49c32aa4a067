"""Dead man's switch policy (a venue's cancel-all-after timer).

While orders rest at the venue the switch is armed with ``timeout_s`` and refreshed every
``refresh_s``; if this process dies or loses the venue, the refreshes stop and the venue cancels
everything when the timer runs out. That is the point of it, so a crash sends nothing: only
``stop()`` (a clean shutdown) disarms with timeout 0. Safe mode shortens the timer.

Call order::

    dms.on_resting(count, now)          # whenever the number of resting orders changes
    for d in dms.poll(now): send cancel-all-after(d.timeout_ms) (REST or websocket), then
        dms.on_ack(d.timeout_ms, now)  or  dms.on_failure(now)
    sleep until dms.next_deadline()
    on clean stop: d = dms.stop(now); if d: send it (timeout_ms == 0)

``Lapsed`` is reported once when the last acknowledged timer ran out without a refresh: the venue
has probably canceled every order, so the reconciler should sweep.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DmsConfig:
    timeout_s: float = 60.0
    refresh_s: float = 15.0
    safe_timeout_s: float = 15.0
    safe_refresh_s: float = 5.0
    retry_s: float = 2.0                 # resend after a failure or an unanswered request

    def __post_init__(self) -> None:
        for timeout, refresh in ((self.timeout_s, self.refresh_s),
                                 (self.safe_timeout_s, self.safe_refresh_s)):
            if timeout < 5.0:
                raise ValueError("a timeout of at least 5 s is advised (venue rate limits)")
            if not 0 < refresh < timeout:
                raise ValueError("refresh must be positive and shorter than the timeout")
        if self.retry_s <= 0:
            raise ValueError("retry_s must be positive")


@dataclass(frozen=True, slots=True)
class SendCancelAllAfter:
    timeout_ms: int                      # 0 disarms


@dataclass(frozen=True, slots=True)
class Lapsed:
    expired_at: float


DmsDecision = SendCancelAllAfter | Lapsed


class DeadMansSwitch:
    def __init__(self, config: DmsConfig | None = None) -> None:
        self.config = config or DmsConfig()
        self._resting = 0
        self._safe = False
        self._acked_timeout_ms = 0           # what the venue last confirmed (0: not armed)
        self._acked_at: float | None = None
        self._sent_at: float | None = None   # an unanswered request
        self._retry_at: float | None = None
        self._lapse_reported = True
        self._stopped = False

    @property
    def safe_mode(self) -> bool:
        return self._safe

    @property
    def armed(self) -> bool:
        return self._acked_timeout_ms > 0

    @property
    def resting(self) -> int:
        """The resting orders last reported (``on_resting``): while above 0 and not stopped,
        the switch is armed, or a request to arm it is due or awaited."""
        return self._resting

    @property
    def expires_at(self) -> float | None:
        """When the venue will cancel everything unless refreshed (None when disarmed)."""
        if not self.armed or self._acked_at is None:
            return None
        return self._acked_at + self._acked_timeout_ms / 1000.0

    def _want_ms(self) -> int:
        return int(1000 * (self.config.safe_timeout_s if self._safe else self.config.timeout_s))

    def _refresh_s(self) -> float:
        return self.config.safe_refresh_s if self._safe else self.config.refresh_s

    # ---------------------------------------------------------------------------- facts
    def on_resting(self, count: int, now: float) -> None:
        """How many orders rest at the venue (or may: UNKNOWN and in-flight count too)."""
        self._resting = max(0, count)

    def set_safe_mode(self, on: bool, now: float) -> None:
        """Shorten (or restore) the timer; the next ``poll`` re-arms with the new value."""
        self._safe = on

    def on_ack(self, timeout_ms: int, now: float) -> None:
        self._acked_timeout_ms, self._acked_at = timeout_ms, now
        self._sent_at = self._retry_at = None
        self._lapse_reported = timeout_ms == 0

    def on_failure(self, now: float) -> None:
        self._sent_at, self._retry_at = None, now + self.config.retry_s

    def stop(self, now: float) -> SendCancelAllAfter | None:
        """Clean shutdown: disarm so resting orders survive the restart (None if not armed)."""
        self._stopped = True
        return SendCancelAllAfter(0) if self.armed or self._sent_at is not None else None

    # ------------------------------------------------------------------------ decisions
    def _due(self) -> float | None:
        if self._stopped or self._resting == 0:
            return None
        if self._sent_at is not None:
            return self._sent_at + self.config.retry_s   # unanswered: ask again
        if self._retry_at is not None:
            return self._retry_at
        if self._acked_at is None or self._acked_timeout_ms != self._want_ms():
            return float("-inf")                         # not armed, or the wrong timer
        return self._acked_at + self._refresh_s()

    def poll(self, now: float) -> list[DmsDecision]:
        out: list[DmsDecision] = []
        expires = self.expires_at
        if expires is not None and now >= expires and not self._lapse_reported:
            self._lapse_reported = True
            out.append(Lapsed(expires))
        due = self._due()
        if due is not None and now >= due:
            self._sent_at, self._retry_at = now, None
            out.append(SendCancelAllAfter(self._want_ms()))
        return out

    def next_deadline(self) -> float | None:
        times = [t for t in (self._due(), None if self._lapse_reported else self.expires_at)
                 if t is not None]
        return min(times) if times else None
