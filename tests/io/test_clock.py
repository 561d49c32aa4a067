"""Clocks and the event-loop lag measure."""

from __future__ import annotations

import asyncio
import time

import pytest

from venueguard.io.clock import SYSTEM_CLOCK, LoopLag, ManualClock


def test_manual_clock_moves_only_when_told_and_wall_follows() -> None:
    clock = ManualClock(start=10.0, wall_ms=1_000_000)
    assert clock.monotonic() == 10.0 and clock.wall_ms() == 1_000_000
    clock.advance(1.5)
    assert clock.monotonic() == 11.5 and clock.wall_ms() == 1_001_500
    clock.set(12.0)
    assert clock.wall_ms() == 1_002_000
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.set(11.0)


def test_system_clock_reads_both_clocks() -> None:
    assert abs(SYSTEM_CLOCK.wall_ms() / 1000 - time.time()) < 1.0
    first = SYSTEM_CLOCK.monotonic()
    assert SYSTEM_CLOCK.monotonic() >= first


def test_loop_lag_records_how_late_a_timer_fired() -> None:
    lag = LoopLag(ManualClock(), interval_s=0.05, window=3)
    assert lag.max_s == 0.0
    assert lag.on_wake(deadline=5.0, now=5.25) == pytest.approx(0.25)
    assert lag.on_wake(deadline=6.0, now=5.9) == 0.0  # early is not negative lag
    assert lag.max_s == pytest.approx(0.25) and lag.last_s == 0.0
    for _ in range(3):  # the window forgets old samples
        lag.on_wake(1.0, 1.01)
    assert lag.max_s == pytest.approx(0.01)
    with pytest.raises(ValueError):
        LoopLag(interval_s=0)


async def test_loop_lag_sampler_sees_a_blocked_loop() -> None:
    lag = LoopLag(interval_s=0.01)
    task = asyncio.get_running_loop().create_task(lag.run())
    await asyncio.sleep(0.03)
    time.sleep(0.15)  # noqa: ASYNC251 - block the loop on purpose, as a busy handler would
    await asyncio.sleep(0.03)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert lag.samples >= 2
    assert lag.max_s >= 0.1
