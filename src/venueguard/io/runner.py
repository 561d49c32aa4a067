"""Supervise long-lived tasks: every task ends or is watched, none dies silently.

Usage (call order)::

    runner = Runner(events=log)
    runner.add("market-data", md_session.run)            # a coroutine function, no arguments
    runner.add("dms", dms.run, restart=False)
    await runner.run()        # until stop(), or until a task fails for good
    runner.stop()             # from anywhere (e.g. a signal handler): every task is cancelled

Each task runs in one ``asyncio.TaskGroup``. A task that returns is done (logged ``task.done``);
:meth:`run` returns when every task is done.
A task that raises is logged (``task.failed`` with the exception type, never its arguments, which
may hold secrets) and, when ``restart`` is set and the exception is not a
:class:`~venueguard.io.errors.StreamError` or :class:`~venueguard.io.errors.ConfigError` (failures
whose rules say "do not retry"), restarted after a jittered backoff, at most ``max_restarts``
times in a row; past that, or for a non-restartable failure, :meth:`run` stops every task and
re-raises it. Cancellation always propagates.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from venueguard.core.backoff import Backoff, BackoffConfig, RandomSource
from venueguard.io.clock import SYSTEM_CLOCK, Clock
from venueguard.io.errors import ConfigError, StreamError
from venueguard.telemetry.events import EventLog

__all__ = ["Runner", "TaskSpec"]

_FINAL = (StreamError, ConfigError)


@dataclass(frozen=True, slots=True)
class TaskSpec:
    name: str
    factory: Callable[[], Awaitable[None]]
    restart: bool = True


class _Stop(Exception):
    """Raised inside the group to end it on request."""


class Runner:
    def __init__(self, *, events: EventLog | None = None, clock: Clock = SYSTEM_CLOCK,
                 backoff: BackoffConfig | None = None, max_restarts: int = 5,
                 rng: RandomSource | None = None) -> None:
        self.events = events if events is not None else EventLog()
        self.clock = clock
        self.backoff_config = backoff or BackoffConfig(base_s=0.5, cap_s=30.0)
        self.max_restarts = max_restarts
        self._rng = rng or random.Random()
        self._specs: list[TaskSpec] = []
        self._stop = asyncio.Event()
        self.restarts: dict[str, int] = {}
        self._active = 0

    def add(self, name: str, factory: Callable[[], Awaitable[None]], *,
            restart: bool = True) -> None:
        if any(spec.name == name for spec in self._specs):
            raise ConfigError(f"task {name!r} added twice")
        self._specs.append(TaskSpec(name, factory, restart))

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        """Run every task until :meth:`stop` or a failure that must not be retried."""
        try:
            async with asyncio.TaskGroup() as group:
                self._active = len(self._specs)
                if not self._specs:
                    return
                for spec in self._specs:
                    group.create_task(self._supervise(spec), name=spec.name)
                group.create_task(self._wait_stop())
        except* _Stop:
            pass
        except* Exception as failures:
            raise failures.exceptions[0] from None

    async def _wait_stop(self) -> None:
        await self._stop.wait()
        raise _Stop

    async def _supervise(self, spec: TaskSpec) -> None:
        backoff = Backoff(self.backoff_config, self._rng)
        while True:
            started = self.clock.monotonic()
            try:
                await spec.factory()
            except _FINAL as exc:
                self.events.emit("task.failed", task=spec.name, error=type(exc).__name__,
                                 final=True)
                raise
            except Exception as exc:
                count = self.restarts.get(spec.name, 0) + 1
                final = not spec.restart or count > self.max_restarts
                self.events.emit("task.failed", task=spec.name, error=type(exc).__name__,
                                 final=final)
                if final:
                    raise
                self.restarts[spec.name] = count
                backoff.on_success(started)
                delay = backoff.next_delay_s(self.clock.monotonic())
                self.events.emit("task.restarting", task=spec.name, attempt=count,
                                 delay_s=round(delay, 3))
                await asyncio.sleep(delay)
                continue
            self.events.emit("task.done", task=spec.name)
            self._active -= 1
            if self._active == 0:
                self._stop.set()  # everything finished: the run is over
            return
