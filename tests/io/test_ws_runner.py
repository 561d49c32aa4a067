"""The task runner that supervises sessions: restarts, final failures, stop."""

from __future__ import annotations

import asyncio

import pytest

from venueguard.core.backoff import BackoffConfig
from venueguard.core.kinds import Kind
from venueguard.io.errors import ConfigError, StreamError
from venueguard.io.runner import Runner
from venueguard.telemetry.events import EventLog

FAST = BackoffConfig(base_s=0.001, cap_s=0.002)


async def test_a_crashing_task_is_restarted_then_finishes() -> None:
    log = EventLog()
    runs: list[int] = []

    async def flaky() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError("secret-should-not-appear")

    runner = Runner(events=log, backoff=FAST)
    runner.add("flaky", flaky)
    await asyncio.wait_for(runner.run(), 5)
    assert len(runs) == 3 and runner.restarts["flaky"] == 2
    assert [r["event"] for r in log.recent()][-1] == "task.done"
    assert "secret-should-not-appear" not in str(log.recent())


async def test_no_retry_failure_stops_everything_and_is_raised() -> None:
    log = EventLog()
    cancelled = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(60)
        finally:
            cancelled.set()

    async def refused() -> None:
        raise StreamError("auth refused", kind=Kind.INVALID_CREDENTIALS)

    runner = Runner(events=log, backoff=FAST)
    runner.add("md", forever)
    runner.add("auth", refused)
    with pytest.raises(StreamError):
        await asyncio.wait_for(runner.run(), 5)
    assert cancelled.is_set()
    assert log.recent(event="task.failed")[0]["final"] is True


async def test_restarts_are_bounded() -> None:
    async def always() -> None:
        raise RuntimeError

    runner = Runner(events=EventLog(), backoff=FAST, max_restarts=2)
    runner.add("bad", always)
    with pytest.raises(RuntimeError):
        await asyncio.wait_for(runner.run(), 5)
    assert runner.restarts["bad"] == 2


async def test_stop_ends_the_run() -> None:
    runner = Runner(events=EventLog())
    runner.add("sleeper", lambda: asyncio.sleep(60))
    task = asyncio.get_running_loop().create_task(runner.run())
    await asyncio.sleep(0.01)
    runner.stop()
    await asyncio.wait_for(task, 5)
    with pytest.raises(ConfigError):
        runner.add("sleeper", lambda: asyncio.sleep(1))
