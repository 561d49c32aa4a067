"""Venue health: HEALTHY / DEGRADED / COOLDOWN(until) / BLOCKED, driven by the rule table.

Public API::

    class VenueState(Enum): HEALTHY, DEGRADED, COOLDOWN, BLOCKED    # .gauge -> 0..3
    class VenueHealth(rules=None, now=0.0):                          # one per venue
        on_outcome(verdict: Classification, now, *, latency_s=None) -> None
        on_latency(latency_s, now) -> None      # a response time with no verdict to report
        poll(now) -> list[HealthDecision]       # drain decisions; runs the timers
        next_deadline() -> float | None
        allows_requests(now) -> bool            # False in COOLDOWN (until passed) and BLOCKED
        reset(now, reason="reset") -> None      # the only way out of BLOCKED
        on_shared(state, until, reason, now)    # a cooldown/block another process saw
        state: VenueState; until: float | None; since: float   # until: end of the cooldown
    Decisions: StateChanged(state, previous, until, reason, at), Alert(tier, message, kind, at),
               RetryPending(reason, at), Disconnect(kind, reason, at), Resync(kind, reason, at)

Call order: feed every classified outcome (with its response time when there was a response);
call ``poll(now)`` after feeding and whenever ``next_deadline()`` passes; act on the decisions.

What the rules do here (see ``rules_default.toml``):
- ``block``: BLOCKED until :meth:`reset`; nothing else moves the state out of BLOCKED.
- ``cooldown``: COOLDOWN until ``now + cooldown_s`` (a later end extends it, never shortens).
- ``wait_retry_after``: COOLDOWN until ``now + retry_after_s`` (or the rule's ``min_delay_s``):
  the venue's limit is per account, so every request waits.
- ``disconnect`` / ``resync``: a :class:`Disconnect` / :class:`Resync` decision.
- ``retry_once``: an alert once the kind repeats more than ``max_retries`` times in a row.
- Any rule with ``alert`` raises an :class:`Alert` of that tier with the rule's message; the
  same kind and tier alert again only after ``[health] alert_repeat_s`` (no alert storms).
- Response-time rules: more than ``more_than`` responses slower than ``slower_than_s`` within
  ``window_s``, or an average slower than ``average.slower_than_s``, start a cooldown (slow
  responses that arrive during a cooldown are counted but do not extend it). When a cooldown
  ends the slow counters are halved (the oldest half dropped, latency samples too) and a
  :class:`RetryPending` asks the owner to retry the work held back during the cooldown; the
  state becomes DEGRADED.
- DEGRADED after ``degraded_after`` degrading kinds within ``degraded_window_s``; HEALTHY
  again after ``healthy_after_s`` without one.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

from venueguard.core.classify import Classification
from venueguard.core.kinds import Action, AlertTier, Kind
from venueguard.core.rules import RuleSet, default_rules

__all__ = [
    "Alert",
    "Disconnect",
    "HealthDecision",
    "Resync",
    "RetryPending",
    "StateChanged",
    "VenueHealth",
    "VenueState",
]

_MAX_SAMPLES = 100_000  # response times kept for the average (oldest dropped beyond)


class VenueState(enum.Enum):
    HEALTHY = "HEALTHY"
    DEGRADED = "DEGRADED"
    COOLDOWN = "COOLDOWN"
    BLOCKED = "BLOCKED"

    @property
    def gauge(self) -> int:
        """The ``venueguard_venue_state`` value: 0 HEALTHY, 1 DEGRADED, 2 COOLDOWN, 3 BLOCKED."""
        return _GAUGE[self]


_GAUGE = {VenueState.HEALTHY: 0, VenueState.DEGRADED: 1, VenueState.COOLDOWN: 2,
          VenueState.BLOCKED: 3}


@dataclass(frozen=True, slots=True)
class StateChanged:
    state: VenueState
    previous: VenueState
    until: float | None
    reason: str
    at: float


@dataclass(frozen=True, slots=True)
class Alert:
    tier: AlertTier
    message: str
    kind: Kind | None
    at: float


@dataclass(frozen=True, slots=True)
class RetryPending:
    """A cooldown ended: retry the work held back during it."""

    reason: str
    at: float


@dataclass(frozen=True, slots=True)
class Disconnect:
    kind: Kind
    reason: str
    at: float


@dataclass(frozen=True, slots=True)
class Resync:
    kind: Kind
    reason: str
    at: float


HealthDecision = StateChanged | Alert | RetryPending | Disconnect | Resync


def _halve(times: deque[float]) -> None:
    for _ in range(len(times) - len(times) // 2):
        times.popleft()


class VenueHealth:
    """Health of one venue. Times are monotonic seconds passed in, non-decreasing."""

    def __init__(self, rules: RuleSet | None = None, now: float = 0.0) -> None:
        self.rules = rules or default_rules()
        self.state = VenueState.HEALTHY
        self.until: float | None = None
        self._pending: list[HealthDecision] = []
        self._pending_at: float | None = None
        self._degrading: deque[float] = deque()
        self._last_degrading: float | None = None
        self._slow: list[deque[float]] = [deque() for _ in self.rules.response_time.counts]
        self._slow_pairs = list(zip(self.rules.response_time.counts, self._slow, strict=True))
        self._samples: deque[tuple[float, float]] = deque()
        self._sample_sum = 0.0
        self._streak_kind: Kind | None = None
        self._streak = 0
        self.since = now  # when the current state began
        self._alerted: dict[tuple[Kind | None, AlertTier], float] = {}
        self.suppressed_alerts = 0  # repeats swallowed by alert_repeat_s

    # --- feeds --------------------------------------------------------------------------------

    def on_outcome(
        self, verdict: Classification, now: float, *, latency_s: float | None = None
    ) -> None:
        """Apply the rule for ``verdict.kind``; ``latency_s`` feeds the response-time rules."""
        kind = verdict.kind
        rule = self.rules.rule(kind)
        if kind is self._streak_kind:
            self._streak += 1
        else:
            self._streak_kind, self._streak = kind, 1
        if latency_s is not None:
            self.on_latency(latency_s, now)
        if self.state is VenueState.BLOCKED:
            return
        action = rule.action
        if rule.alert is not None and action is not Action.RETRY_ONCE:
            self._alert(Alert(rule.alert, rule.message or kind.value, kind, now))
        if action is Action.RETRY_ONCE and self._streak > (rule.max_retries or 0):
            self._alert(Alert(rule.alert or AlertTier.WARNING,
                              f"{rule.message or kind.value}: {self._streak} in a row"
                              f" ({verdict.message[:120]})", kind, now))
        if action is Action.BLOCK:
            self._enter(VenueState.BLOCKED, None, f"{kind.value}: {rule.message}", now)
            return
        if action is Action.COOLDOWN:
            self._cooldown(now + rule.cooldown_s, f"{kind.value}: {rule.message}", now)
        elif action is Action.WAIT_RETRY_AFTER:
            wait_s = verdict.retry_after_s
            wait_s = rule.min_delay_s if wait_s is None else max(wait_s, 0.0)
            if wait_s > 0:
                self._cooldown(now + wait_s, f"{kind.value}: retry after {wait_s:g} s", now)
        elif action is Action.DISCONNECT:
            self._queue(Disconnect(kind, rule.message or kind.value, now), now)
        elif action is Action.RESYNC:
            self._queue(Resync(kind, rule.message or kind.value, now), now)
        if kind in self.rules.health.degrading_kinds:
            self._degraded_by(now)

    def on_latency(self, latency_s: float, now: float) -> None:
        """Record one response time and apply the response-time rules."""
        rt = self.rules.response_time
        self._expire(now)
        slow = False
        for rule, times in self._slow_pairs:
            if latency_s > rule.slower_than_s:
                times.append(now)
                slow = True
        samples = self._samples
        samples.append((now, latency_s))
        self._sample_sum += latency_s
        if len(samples) > _MAX_SAMPLES:
            self._sample_sum -= samples.popleft()[1]
        if self.state is VenueState.BLOCKED or self.state is VenueState.COOLDOWN:
            return  # responses still in flight when the cooldown began only count
        for rule, times in self._slow_pairs if slow else ():
            if len(times) > rule.more_than:
                self._cooldown(now + rule.cooldown_s,
                               f"{len(times)} responses slower than {rule.slower_than_s:g} s "
                               f"within {rt.window_s:g} s (more than {rule.more_than})", now)
                self._alert(Alert(AlertTier.WARNING, f"venue slow: {len(times)} responses "
                                  f"slower than {rule.slower_than_s:g} s", None, now))
        average = self.average_latency_s
        if (rt.average_slower_than_s is not None and average is not None
                and len(self._samples) >= rt.average_min_samples
                and average > rt.average_slower_than_s and rt.average_cooldown_s > 0):
            self._cooldown(now + rt.average_cooldown_s,
                           f"average response time {average:.1f} s > "
                           f"{rt.average_slower_than_s:g} s", now)
            self._alert(Alert(AlertTier.WARNING, f"venue slow: average response time "
                              f"{average:.1f} s", None, now))

    def on_shared(self, state: VenueState, until: float | None, reason: str,
                  now: float) -> None:
        """A cooldown (``until``) or block that another process sharing the account or IP saw;
        HEALTHY is an operator's reset there. A cooldown only ever extends, as a local one."""
        if state is VenueState.BLOCKED:
            if self.state is not VenueState.BLOCKED:
                self._enter(VenueState.BLOCKED, None, reason, now)
        elif state is VenueState.COOLDOWN and until is not None and until > now:
            if self.state is not VenueState.BLOCKED:
                self._cooldown(until, reason, now)
        elif state is VenueState.HEALTHY and self.state is VenueState.BLOCKED:
            self.reset(now, reason)

    def reset(self, now: float, reason: str = "reset") -> None:
        """Back to HEALTHY from any state, with cleared counters (the way out of BLOCKED)."""
        self._degrading.clear()
        self._last_degrading = None
        for times in self._slow:
            times.clear()
        self._samples.clear()
        self._sample_sum = 0.0
        self._streak_kind, self._streak = None, 0
        self._alerted.clear()
        self._enter(VenueState.HEALTHY, None, reason, now)

    # --- drains -------------------------------------------------------------------------------

    def poll(self, now: float) -> list[HealthDecision]:
        """Run the timers at ``now`` and return every decision queued since the last poll."""
        self._expire(now)
        if self.state is VenueState.COOLDOWN and self.until is not None and now >= self.until:
            rt = self.rules.response_time
            if rt.halve_after_cooldown:
                for times in self._slow:
                    _halve(times)
                for _ in range(len(self._samples) - len(self._samples) // 2):
                    self._sample_sum -= self._samples.popleft()[1]
            self._last_degrading = now
            self._enter(VenueState.DEGRADED, None, "cooldown ended", now)
            if rt.retry_pending_after_cooldown:
                self._queue(RetryPending("cooldown ended", now), now)
        elif (self.state is VenueState.DEGRADED and self._last_degrading is not None
              and now >= self._last_degrading + self.rules.health.healthy_after_s):
            self._enter(VenueState.HEALTHY, None,
                        f"no failures for {self.rules.health.healthy_after_s:g} s", now)
        out = self._pending
        self._pending = []
        self._pending_at = None
        return out

    def next_deadline(self) -> float | None:
        deadline = self._pending_at
        due: float | None = None
        if self.state is VenueState.COOLDOWN:
            due = self.until
        elif self.state is VenueState.DEGRADED and self._last_degrading is not None:
            due = self._last_degrading + self.rules.health.healthy_after_s
        if due is not None and (deadline is None or due < deadline):
            deadline = due
        return deadline

    def allows_requests(self, now: float) -> bool:
        if self.state is VenueState.BLOCKED:
            return False
        return not (self.state is VenueState.COOLDOWN and self.until is not None
                    and now < self.until)

    @property
    def average_latency_s(self) -> float | None:
        return self._sample_sum / len(self._samples) if self._samples else None

    def slow_counts(self) -> tuple[int, ...]:
        """Responses over each count rule's threshold currently in the window."""
        return tuple(len(times) for times in self._slow)

    # --- internals ----------------------------------------------------------------------------

    def _queue(self, decision: HealthDecision, now: float) -> None:
        self._pending.append(decision)
        if self._pending_at is None:
            self._pending_at = now

    def _alert(self, alert: Alert) -> None:
        """Queue ``alert`` unless the same kind raised one within ``alert_repeat_s``."""
        key = (alert.kind, alert.tier)
        last = self._alerted.get(key)
        if last is not None and alert.at < last + self.rules.health.alert_repeat_s:
            self.suppressed_alerts += 1
            return
        self._alerted[key] = alert.at
        self._queue(alert, alert.at)

    def _enter(self, state: VenueState, until: float | None, reason: str, now: float) -> None:
        previous = self.state
        if previous is state and until == self.until:
            return
        self.state = state
        self.until = until
        self.since = now
        self._queue(StateChanged(state, previous, until, reason, now), now)

    def _cooldown(self, until: float, reason: str, now: float) -> None:
        if self.state is VenueState.COOLDOWN and self.until is not None and until <= self.until:
            return
        self._enter(VenueState.COOLDOWN, until, reason, now)

    def _degraded_by(self, now: float) -> None:
        self._degrading.append(now)
        self._last_degrading = now
        self._expire(now)
        if (self.state is VenueState.HEALTHY
                and len(self._degrading) >= self.rules.health.degraded_after):
            self._enter(VenueState.DEGRADED, None,
                        f"{len(self._degrading)} failures within "
                        f"{self.rules.health.degraded_window_s:g} s", now)

    def _expire(self, now: float) -> None:
        edge = now - self.rules.health.degraded_window_s
        while self._degrading and self._degrading[0] <= edge:
            self._degrading.popleft()
        edge = now - self.rules.response_time.window_s
        for times in self._slow:
            while times and times[0] <= edge:
                times.popleft()
        samples = self._samples
        while samples and samples[0][0] <= edge:
            self._sample_sum -= samples.popleft()[1]
