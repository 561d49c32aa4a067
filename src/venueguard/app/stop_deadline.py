"""A bound on how long a stop may take, whatever a library does with a cancellation.

Once armed (a stop was asked for), it cancels again, every ``recancel_s``, each task of
``prefix`` that is still being cancelled: a task that swallowed one cancellation (a client
library's bug) gets another. If the process is still alive ``deadline_s`` after the stop
request, a watchdog thread (it needs no event loop: a loop that is stuck cannot run it) writes
one line naming the tasks that did not end and exits the process with code 1. Data stays safe:
the journal survives a hard exit, and a dead man's switch left armed cancels at the venue.

Call order: ``deadline = StopDeadline(...)``; ``deadline.arm()`` from the event loop on the
stop request (more calls do nothing); ``deadline.disarm(keep_watchdog=True)`` when the run's
coroutine ends (its loop will not run the re-cancels again) and ``deadline.disarm()`` once the
event loop has closed. With ``exit_process=None`` (a monitor run inside another program)
there is no watchdog: only the re-cancels.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Callable
from typing import TextIO

__all__ = ["StopDeadline"]


class StopDeadline:
    """See the module docstring. ``on_slow(names)`` reports tasks cancelled again."""

    def __init__(self, deadline_s: float, *, recancel_s: float = 2.0, prefix: str = "monitor-",
                 on_slow: Callable[[list[str]], None] | None = None,
                 exit_process: Callable[[int], None] | None = os._exit,
                 stderr: TextIO | None = None) -> None:
        if not deadline_s > 0 or not recancel_s > 0:
            raise ValueError("deadline_s and recancel_s must be > 0")
        self.deadline_s = deadline_s
        self.recancel_s = recancel_s
        self.prefix = prefix
        self.on_slow = on_slow
        self._exit = exit_process
        self._stderr = stderr
        self._armed = False
        self._timer: threading.Timer | None = None
        self._handle: asyncio.TimerHandle | None = None
        self.stuck: list[str] = []      # the names of the tasks cancelled again, last round
        self.recancelled = 0

    @property
    def armed(self) -> bool:
        return self._armed

    def arm(self) -> None:
        if self._armed:
            return
        self._armed = True
        if self._exit is not None:
            timer = self._timer = threading.Timer(self.deadline_s, self._overrun)
            timer.daemon = True
            timer.start()
        loop = asyncio.get_running_loop()
        self._handle = loop.call_later(self.recancel_s, self._recancel, loop)

    def disarm(self, *, keep_watchdog: bool = False) -> None:
        if self._timer is not None and not keep_watchdog:
            self._timer.cancel()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _recancel(self, loop: asyncio.AbstractEventLoop) -> None:
        stuck = [t for t in asyncio.all_tasks(loop)
                 if t.get_name().startswith(self.prefix) and not t.done() and t.cancelling()]
        self.stuck = sorted(t.get_name() for t in stuck)
        for task in stuck:
            task.cancel()
        self.recancelled += len(stuck)
        if stuck and self.on_slow is not None:
            self.on_slow(self.stuck)
        self._handle = loop.call_later(self.recancel_s, self._recancel, loop)

    def _overrun(self) -> None:
        names = ", ".join(self.stuck) or "none named"
        stream = self._stderr or sys.stderr
        try:
            stream.write(f"venueguard: did not stop within {self.deadline_s:g} s of the stop "
                         f"request (tasks still ending: {names}); exiting\n")
            stream.flush()
        finally:
            if self._exit is not None:
                self._exit(1)
