"""Runs the dead man's switch policy (:mod:`venueguard.core.dms`) against the venue.

While orders rest, ``POST /order/cancelAllAfter`` is armed (60 s by default) and refreshed (every
15 s); safe mode shortens it. A clean :meth:`DmsRunner.stop` disarms it (timeout 0) so resting
orders survive a planned restart; a crash sends nothing, so the venue cancels everything when the
timer runs out. That is the point of the switch.

Call order::

    runner = DmsRunner(rest, resting=manager.resting_count, config=DmsConfig(), events=...)
    run runner.run() in a task           # until cancelled
    runner.set_safe_mode(True)           # shorten (and back)
    await runner.stop(clean=True)        # disarm (False: leave it armed, as a crash would)

With ``fleet=`` (processes sharing one account, whose switch is the account's): only the
member holding the owner lease sends ``cancelAllAfter``, armed while any member has orders
resting; the others send nothing. A clean stop disarms only when no other member has orders
resting and the shared store answers; otherwise the switch is left to the next owner.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Protocol

from venueguard.core.dms import DeadMansSwitch, DmsConfig, Lapsed, SendCancelAllAfter
from venueguard.io import errors
from venueguard.io.clock import SYSTEM_CLOCK, Clock
from venueguard.io.fleet_link import DmsLink, Role
from venueguard.telemetry.events import EventLog

__all__ = ["DmsRest", "DmsRunner"]


class DmsRest(Protocol):
    async def cancel_all_after(self, timeout_ms: int) -> dict[str, Any]: ...


class DmsRunner:
    """See the module docstring. ``resting`` counts orders that rest or may rest."""

    def __init__(self, rest: DmsRest, *, resting: Callable[[], int],
                 config: DmsConfig | None = None, events: EventLog | None = None,
                 clock: Clock = SYSTEM_CLOCK, on_lapsed: Callable[[], None] | None = None,
                 poll_s: float = 0.5, fleet: DmsLink | None = None) -> None:
        self.rest = rest
        self.config = config
        self.fleet = fleet
        self._role = Role.OWNER if fleet is None else fleet.role()
        self.dms = DeadMansSwitch(config)
        self.events = events if events is not None else EventLog()
        self.clock = clock
        self._resting = resting
        self._on_lapsed = on_lapsed
        self._poll_s = poll_s
        self._wake = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self.sent: list[int] = []            # every timeout_ms sent, in order (0 = disarm)

    @property
    def armed(self) -> bool:
        return self.dms.armed

    @property
    def covered(self) -> int:
        """The resting orders the switch counted at its last poll (with a fleet, the owner's
        count holds every live member's): above 0, it is armed or being armed."""
        return self.dms.resting

    def set_safe_mode(self, on: bool) -> None:
        self.dms.set_safe_mode(on, self.clock.monotonic())
        self._wake.set()

    def wake(self) -> None:
        """Call when the number of resting orders may have changed."""
        self._wake.set()

    async def run(self) -> None:
        """Arm, refresh and re-arm as the policy says, until cancelled."""
        while True:
            now = self.clock.monotonic()
            if not self._follow_fleet(now):
                await self._sleep(self._poll_s)
                continue
            resting = self._resting()
            if self.fleet is not None and self._role is Role.OWNER:
                resting += self.fleet.others_resting()
            self.dms.on_resting(resting, now)
            for decision in self.dms.poll(now):
                if isinstance(decision, SendCancelAllAfter):
                    await self._send(decision.timeout_ms)
                elif isinstance(decision, Lapsed):
                    self.events.emit("dms.lapsed", expired_at=round(decision.expired_at, 3))
                    if self._on_lapsed is not None:
                        self._on_lapsed()
            deadline = self.dms.next_deadline()
            delay = self._poll_s if deadline is None else min(
                self._poll_s, deadline - self.clock.monotonic())
            await self._sleep(delay)

    async def _sleep(self, delay: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, delay)):
                await self._wake.wait()

    def _follow_fleet(self, now: float) -> bool:
        """True when this process runs the switch now (no fleet, the owner, or alone)."""
        if self.fleet is None:
            return True
        role = self.fleet.role()
        if role is not self._role:
            self.events.emit("dms.role", role=role.value, previous=self._role.value)
            if role is Role.FOLLOWER:
                # the owner arms for the account now; forget what this process armed
                safe = self.dms.safe_mode
                self.dms = DeadMansSwitch(self.config)
                self.dms.set_safe_mode(safe, now)
            self._role = role
        return role is not Role.FOLLOWER

    async def _send(self, timeout_ms: int) -> bool:
        async with self._send_lock:
            self.sent.append(timeout_ms)
            try:
                await self.rest.cancel_all_after(timeout_ms)
            except errors.VenueError as exc:
                self.dms.on_failure(self.clock.monotonic())
                self.events.emit("dms.failed", timeout_ms=timeout_ms, kind=exc.kind.value)
                return False
            self.dms.on_ack(timeout_ms, self.clock.monotonic())
            self.events.emit("dms.armed" if timeout_ms else "dms.disarmed",
                             timeout_ms=timeout_ms)
            return True

    async def stop(self, *, clean: bool) -> bool:
        """Stop the policy. ``clean``: disarm at the venue (True when it acknowledged); else
        send nothing and leave the switch armed, exactly as a crash would."""
        decision = self.dms.stop(self.clock.monotonic())
        self._wake.set()
        if clean and decision is not None and self.fleet is not None and (
                self.fleet.role() is not Role.OWNER or self.fleet.others_resting() > 0):
            # others may rest orders under this switch: leave it to the next owner
            self.events.emit("dms.left_armed", reason="other members rely on the switch")
            return True
        if not clean or decision is None:
            return not clean or not self.dms.armed
        return await self._send(decision.timeout_ms)
