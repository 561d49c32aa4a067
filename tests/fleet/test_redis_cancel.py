"""Regression: a task cancelled while it awaits a Redis call ends, cancelled, within a second.

redis-py (every release measured, 5.2 to 8.2, on CPython 3.11) writes through
``asyncio.wait_for`` when a ``socket_timeout`` is set, and that ``wait_for`` drops a
cancellation arriving as the write completes: the monitor's probe then kept running after its
TaskGroup cancelled it, and ``--duration``, SIGINT and SIGTERM were ignored. The backend runs
every call detached (see venueguard.fleet.redis_backend); this test cancels each call at many
moments and fails on a single lost or late cancellation.

The installed client is checked here; each other release is checked the same way in a
subprocess when ``VENUEGUARD_REDIS_CLIENTS`` lists directories holding one (os.pathsep
separated; make one with ``pip install --target DIR 'redis==X.Y.Z'``), one per supported
major range (5, 6, 7, 8).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.fleet.cancel_probe import losses

from venueguard.fleet.redis_backend import RedisBackend, detached
from venueguard.fleet.testing import RedisServer

SRC = Path(__file__).resolve().parents[2] / "src"
PROBE = Path(__file__).with_name("cancel_probe.py")
CLIENT_DIRS = [d for d in os.environ.get("VENUEGUARD_REDIS_CLIENTS", "").split(os.pathsep) if d]


def _assert_all_cancelled(result: dict[str, dict[str, int]]) -> None:
    for call, counts in result.items():
        assert counts["lost"] == 0 and counts["hung"] == 0, (call, counts)
        assert counts["cancelled"] >= 5, (call, counts)   # the cancels did land mid-call


async def test_every_call_of_the_installed_client_honours_a_cancel(
        redis_server: RedisServer) -> None:
    _assert_all_cancelled(await losses(redis_server.url))


@pytest.mark.parametrize("client_dir", CLIENT_DIRS or [None])
def test_every_call_honours_a_cancel_on_each_listed_client_release(
        redis_server: RedisServer, client_dir: str | None) -> None:
    if client_dir is None:
        pytest.skip("VENUEGUARD_REDIS_CLIENTS lists no other redis client releases "
                    "(pip install --target DIR 'redis==X.Y.Z'; the installed one is checked "
                    "by the test above)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([client_dir, str(SRC)]))
    out = subprocess.run([sys.executable, str(PROBE), redis_server.url], env=env,
                         capture_output=True, text=True, timeout=120, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    _assert_all_cancelled(report["losses"])


async def test_a_call_that_swallows_its_cancel_does_not_hold_its_caller() -> None:
    """The failure itself, without Redis: a call that ignores cancellation (as the client
    does when the cancel lands at the wrong moment) still releases a cancelled caller."""
    release = asyncio.Event()

    async def swallowing() -> str:
        while True:
            try:
                await release.wait()
                return "done"
            except asyncio.CancelledError:
                continue          # the bug: the cancellation is dropped

    running: set[asyncio.Task[object]] = set()
    caller = asyncio.create_task(detached(swallowing(), running))
    await asyncio.sleep(0.01)
    caller.cancel()
    done, _ = await asyncio.wait({caller}, timeout=1.0)
    assert done and caller.cancelled()
    assert len(running) == 1              # the call itself is left to finish, tracked
    release.set()
    await asyncio.sleep(0.01)
    assert not running


async def test_close_is_bounded_with_a_call_in_flight(redis_server: RedisServer) -> None:
    backend = RedisBackend(redis_server.url, venue="probe", account="close")
    await backend.ping()
    # a call that would wait for ever (no socket timeout: callers bound their calls)
    blocked = asyncio.create_task(backend._run(backend.client.blpop(["vg:never"], timeout=0)))
    await asyncio.sleep(0.05)
    async with asyncio.timeout(3.0):
        await backend.aclose()
    done, _ = await asyncio.wait({blocked}, timeout=1.0)
    assert done and blocked.cancelled()
    assert not backend.running
