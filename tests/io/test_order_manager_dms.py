"""DmsRunner: the dead man's switch policy pumped against a fake venue on a manual clock."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from venueguard.core.dms import DmsConfig
from venueguard.core.kinds import Kind
from venueguard.io import errors
from venueguard.io.clock import ManualClock
from venueguard.io.dms_runner import DmsRunner
from venueguard.telemetry.events import EventLog

CONFIG = DmsConfig(timeout_s=60.0, refresh_s=15.0, safe_timeout_s=15.0, safe_refresh_s=5.0,
                   retry_s=2.0)


class FakeVenue:
    def __init__(self) -> None:
        self.sent: list[int] = []
        self.fail = 0

    async def cancel_all_after(self, timeout_ms: int) -> dict[str, Any]:
        self.sent.append(timeout_ms)
        if self.fail:
            self.fail -= 1
            raise errors.TransportError("refused", kind=Kind.TRANSIENT_NETWORK)
        return {"now": "x", "cancelTime": timeout_ms}


async def until(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            if check():
                return
            await asyncio.sleep(0.005)


async def stop_task(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.002)


async def test_armed_while_resting_refreshed_shortened_in_safe_mode_disarmed_on_stop() -> None:
    clock, venue, resting = ManualClock(), FakeVenue(), [0]
    runner = DmsRunner(venue, resting=lambda: resting[0], config=CONFIG, clock=clock,
                       poll_s=0.005)
    task = asyncio.create_task(runner.run())
    await settle()
    assert venue.sent == []                        # nothing rests: nothing to arm
    resting[0] = 2
    runner.wake()
    await until(lambda: venue.sent == [60_000])
    assert runner.armed
    clock.advance(14.0)
    await settle()
    assert venue.sent == [60_000]                  # not yet due
    clock.advance(1.5)
    await until(lambda: venue.sent == [60_000, 60_000])   # refreshed every 15 s
    runner.set_safe_mode(True)
    await until(lambda: venue.sent[-1] == 15_000)  # shortened at once in safe mode
    clock.advance(5.5)
    await until(lambda: venue.sent[-2:] == [15_000, 15_000])
    assert await runner.stop(clean=True)
    assert venue.sent[-1] == 0 and not runner.armed
    count = len(venue.sent)
    clock.advance(100.0)
    await settle()
    assert len(venue.sent) == count                # stopped: nothing more
    await stop_task(task)


async def test_crash_stop_sends_nothing_and_leaves_it_armed() -> None:
    clock, venue = ManualClock(), FakeVenue()
    events = EventLog()
    runner = DmsRunner(venue, resting=lambda: 1, config=CONFIG, clock=clock, events=events,
                       poll_s=0.005)
    task = asyncio.create_task(runner.run())
    await until(lambda: venue.sent == [60_000])
    await runner.stop(clean=False)
    await stop_task(task)
    assert venue.sent == [60_000] and runner.armed
    assert [r["timeout_ms"] for r in events.recent(event="dms.armed")] == [60_000]


async def test_failed_arm_is_retried_after_retry_s() -> None:
    clock, venue = ManualClock(), FakeVenue()
    venue.fail = 1
    runner = DmsRunner(venue, resting=lambda: 1, config=CONFIG, clock=clock, poll_s=0.005)
    task = asyncio.create_task(runner.run())
    await until(lambda: venue.sent == [60_000])
    await settle()
    assert not runner.armed and venue.sent == [60_000]
    clock.advance(2.1)
    await until(lambda: runner.armed)
    assert venue.sent == [60_000, 60_000]
    await stop_task(task)
