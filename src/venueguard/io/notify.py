"""Where sessions report: the event log, the metrics and the alert router, each optional.

Sessions call :meth:`Notifier.log` for event-log lines (names in ``docs/events.md``) and
:meth:`Notifier.alert` for alerts; with an :class:`~venueguard.telemetry.alerts.Alerts` router the
alert goes through its dedup and sinks, otherwise it is written as an ``alert`` event line.
``metrics`` is a :class:`~venueguard.telemetry.metrics.Metrics` or None (nothing measured).
"""

from __future__ import annotations

from venueguard.core.health import (
    Alert,
    Disconnect,
    Resync,
    RetryPending,
    StateChanged,
    VenueHealth,
)
from venueguard.io.clock import Clock
from venueguard.telemetry.alerts import Alerts
from venueguard.telemetry.events import EventLog, iso_utc_ms
from venueguard.telemetry.metrics import Metrics

__all__ = ["HealthReporter", "Notifier"]


class Notifier:
    def __init__(self, events: EventLog | None = None, metrics: Metrics | None = None,
                 alerts: Alerts | None = None) -> None:
        self.events = events if events is not None else EventLog()
        self.metrics = metrics
        self.alerts = alerts

    def log(self, event: str, **fields: object) -> None:
        self.events.emit(event, **fields)

    def alert(self, tier: str, message: str, now: float, *, key: str | None = None) -> None:
        if self.alerts is not None:
            self.alerts.fire(tier, message, now=now, key=key)
        else:
            self.events.emit("alert", tier=tier, message=message)


class HealthReporter:
    """Drains a :class:`~venueguard.core.health.VenueHealth` and reports its decisions.

    ``venue.state`` lines carry ``until`` as an ISO wall-clock time (the end of a cooldown).
    """

    def __init__(self, health: VenueHealth, notify: Notifier, clock: Clock) -> None:
        self.health = health
        self.notify = notify
        self.clock = clock

    def poll(self, now: float) -> None:
        for decision in self.health.poll(now):
            if isinstance(decision, StateChanged):
                until = None
                if decision.until is not None:
                    wall_s = self.clock.wall_ms() / 1000 + (decision.until - now)
                    until = iso_utc_ms(wall_s)
                self.notify.log("venue.state", state=decision.state.value, until=until,
                                previous=decision.previous.value, reason=decision.reason)
                if self.notify.metrics is not None:
                    self.notify.metrics.set_venue_state(decision.state.value)
            elif isinstance(decision, Alert):
                self.notify.alert(decision.tier.value, decision.message, now,
                                  key=f"venue:{decision.kind.value if decision.kind else ''}")
            elif isinstance(decision, RetryPending):
                self.notify.log("venue.retry_pending", reason=decision.reason)
            elif isinstance(decision, Disconnect | Resync):
                self.notify.log("venue.action", action=type(decision).__name__.lower(),
                                kind=decision.kind.value, reason=decision.reason)
