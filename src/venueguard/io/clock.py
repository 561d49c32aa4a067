"""Clocks for the adapters, and a measure of event-loop lag.

The core reads no clock: adapters read one here and pass ``now`` (monotonic seconds) and
``wall_ms`` (epoch milliseconds, for comparing venue timestamps) in. Tests inject
:class:`ManualClock` and move it by hand.

:class:`LoopLag` answers "was this process busy?" so that a blocked event loop is not mistaken
for a dead venue: a timer that fires ``late_s`` after its deadline means the loop could not run
(frames may be sitting unread in the socket), so a session drains first and decides after.

Under a virtual-time loop (:class:`~venueguard.io.vloop.VirtualTimeLoop`) the process clocks
are the loop's: :func:`monotonic`, :func:`wall_ns`, :func:`wall_s` and :class:`SystemClock` read
the running loop's virtual time when it has one (it is a :class:`VirtualTime`), the system's
otherwise. Adapters read time through here, never through ``time`` directly, so a whole stack
runs on a simulated clock unchanged.

Public API::

    class Clock(Protocol): monotonic() -> float; wall_ms() -> int
    SYSTEM_CLOCK: Clock                    # the running loop's clocks (see above)
    monotonic() -> float; wall_ns() -> int; wall_s() -> float; virtual_time() -> bool
    class VirtualTime                      # marks a loop whose time() and wall_ns() are virtual
    ManualClock(start=1000.0, wall_ms=1_700_000_000_000)  # .advance(s), .set(s)
    LoopLag(clock=SYSTEM_CLOCK, interval_s=0.05, window=200)
        async run() -> None                # sample forever (run it in a TaskGroup; cancel to stop)
        on_wake(deadline, now) -> float    # record how late a timer fired; returns late_s
        last_s, max_s (recent window), samples
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "LoopLag", "ManualClock", "SystemClock", "VirtualTime",
           "monotonic", "virtual_time", "wall_ns", "wall_s"]

_running_loop = asyncio._get_running_loop
_system_monotonic = time.monotonic
_system_time_ns = time.time_ns


class VirtualTime:
    """Base of an event loop whose clocks are virtual: it has ``time()`` (monotonic seconds)
    and ``wall_ns()`` (epoch nanoseconds), and the functions below read them while it runs."""

    __slots__ = ()

    def time(self) -> float:
        raise NotImplementedError

    def wall_ns(self) -> int:
        raise NotImplementedError


def virtual_time() -> bool:
    """True when the running event loop keeps virtual time."""
    return isinstance(_running_loop(), VirtualTime)


def monotonic() -> float:
    """Monotonic seconds: the running virtual loop's, else the system's."""
    loop = _running_loop()
    if isinstance(loop, VirtualTime):
        return loop.time()
    return _system_monotonic()


def wall_ns() -> int:
    """Epoch nanoseconds: the running virtual loop's wall clock, else the system's."""
    loop = _running_loop()
    if isinstance(loop, VirtualTime):
        return loop.wall_ns()
    return _system_time_ns()


def wall_s() -> float:
    """Epoch seconds (see :func:`wall_ns`)."""
    seconds, ns = divmod(wall_ns(), 1_000_000_000)   # exact to the nanosecond, unlike ns / 1e9
    return seconds + ns / 1e9


class Clock(Protocol):
    """Where adapters read time."""

    def monotonic(self) -> float: ...

    def wall_ms(self) -> int: ...


class SystemClock:
    """The process clocks (a virtual-time loop's while one runs)."""

    __slots__ = ()

    def monotonic(self) -> float:
        return monotonic()

    def wall_ms(self) -> int:
        return wall_ns() // 1_000_000


SYSTEM_CLOCK: Clock = SystemClock()


class ManualClock:
    """A clock that moves only when told to; wall time moves with it."""

    __slots__ = ("_mono", "_mono0", "_wall0_ms")

    def __init__(self, start: float = 1000.0, wall_ms: int = 1_700_000_000_000) -> None:
        self._mono = start
        self._mono0 = start
        self._wall0_ms = wall_ms

    def monotonic(self) -> float:
        return self._mono

    def wall_ms(self) -> int:
        return self._wall0_ms + round((self._mono - self._mono0) * 1000)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a monotonic clock does not go back")
        self._mono += seconds

    def set(self, monotonic: float) -> None:
        if monotonic < self._mono:
            raise ValueError("a monotonic clock does not go back")
        self._mono = monotonic


class LoopLag:
    """How late the event loop runs timers: a sampler task plus the sessions' own wake-ups."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK, interval_s: float = 0.05,
                 window: int = 200) -> None:
        if not interval_s > 0:
            raise ValueError("interval_s must be > 0")
        self.clock = clock
        self.interval_s = interval_s
        self._recent: deque[float] = deque(maxlen=max(1, window))
        self.last_s = 0.0
        self.samples = 0

    def on_wake(self, deadline: float, now: float) -> float:
        """Record a timer meant for ``deadline`` that ran at ``now``; returns how late it was."""
        late = max(0.0, now - deadline)
        self.last_s = late
        self._recent.append(late)
        self.samples += 1
        return late

    @property
    def max_s(self) -> float:
        """The largest lag among the recent samples (0 before any)."""
        return max(self._recent, default=0.0)

    async def run(self) -> None:
        """Sample forever: sleep ``interval_s`` and record the overshoot."""
        clock = self.clock
        while True:
            deadline = clock.monotonic() + self.interval_s
            await asyncio.sleep(self.interval_s)
            self.on_wake(deadline, clock.monotonic())
