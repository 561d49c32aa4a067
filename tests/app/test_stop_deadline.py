"""The stop deadline: a task that swallows its cancellation is cancelled again, and a process
that still has not stopped at the deadline is ended (here: a recorded exit)."""

from __future__ import annotations

import asyncio
import io
import threading

import pytest

from venueguard.app.stop_deadline import StopDeadline


async def _swallows(times: int, log: list[str]) -> None:
    left = times
    while True:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            if left == 0:
                log.append("ended")
                raise
            left -= 1           # a library that drops a cancellation
            log.append("swallowed")


async def test_a_task_that_swallowed_its_cancel_is_cancelled_again() -> None:
    slow: list[list[str]] = []
    deadline = StopDeadline(30.0, recancel_s=0.05, on_slow=slow.append, exit_process=None)
    log: list[str] = []
    task = asyncio.create_task(_swallows(1, log), name="monitor-probe")
    await asyncio.sleep(0)
    task.cancel()
    deadline.arm()
    done, _ = await asyncio.wait({task}, timeout=2.0)
    deadline.disarm()
    assert done and task.cancelled()
    assert log == ["swallowed", "ended"]
    assert slow == [["monitor-probe"]]


async def test_other_tasks_are_left_alone() -> None:
    deadline = StopDeadline(30.0, recancel_s=0.02, exit_process=None)
    other = asyncio.create_task(asyncio.sleep(0.2), name="user-task")
    deadline.arm()
    await asyncio.sleep(0.1)
    deadline.disarm()
    assert not other.cancelled()
    await other


async def test_past_the_deadline_the_process_is_ended_with_code_1() -> None:
    exited = threading.Event()
    codes: list[int] = []

    def fake_exit(code: int) -> None:
        codes.append(code)
        exited.set()

    err = io.StringIO()
    # no re-cancel before the deadline: the task stays stuck
    deadline = StopDeadline(0.3, recancel_s=60.0, exit_process=fake_exit, stderr=err)
    log: list[str] = []
    task = asyncio.create_task(_swallows(3, log), name="monitor-probe")
    await asyncio.sleep(0)
    deadline.stuck = ["monitor-probe"]   # as a re-cancel round would have recorded
    task.cancel()
    deadline.arm()
    deadline.arm()                       # once only
    await asyncio.get_running_loop().run_in_executor(None, exited.wait, 5.0)
    deadline.disarm()
    assert codes == [1]
    assert "did not stop within 0.3 s" in err.getvalue()
    assert "monitor-probe" in err.getvalue()
    while not task.done():               # end the test's own stuck task
        task.cancel()
        await asyncio.sleep(0)
    assert task.cancelled()


async def test_a_stop_on_time_never_exits() -> None:
    codes: list[int] = []
    deadline = StopDeadline(0.2, exit_process=codes.append)
    deadline.arm()
    deadline.disarm()
    await asyncio.sleep(0.4)
    assert codes == []


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="must be > 0"):
        StopDeadline(0.0)
