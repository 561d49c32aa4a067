"""``venueguard monitor --redis URL`` stops when told, against a real redis-server: by
``--duration``, by SIGINT and by SIGTERM at a random moment, each with exit 0 within a bound.

Regression: with redis-py dropping a cancellation (see tests/fleet/test_redis_cancel.py) the
probe task never ended and all three were ignored. bench/fleet_stop.py runs 20 of each.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("redis", reason="the redis extra is not installed")

from venueguard.fleet.testing import RedisServer, RedisUnavailable

pytestmark = [pytest.mark.system]

DURATION_S = 4.0
BOUND_S = 12.0          # from the start (duration) or the signal, generous for a loaded machine


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    try:
        server = RedisServer.start()
    except RedisUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()


def _monitor(url: str, tmp: Path, name: str, *extra: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VENUEGUARD_")}
    return subprocess.Popen(
        [sys.executable, "-m", "venueguard", "monitor", "--redis", url, "--fleet-size", "1",
         "--port", "0",
         "--log-format", "json", "--journal", str(tmp / f"{name}.db"), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=tmp)


def _wait_ready(proc: subprocess.Popen[bytes]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if b'"monitor.ready"' in line:
            return
    raise AssertionError("the monitor ended before monitor.ready")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_duration_sigint_and_sigterm_each_stop_a_fleet_monitor(
        tmp_path: Path, redis_server: RedisServer) -> None:
    rng = random.Random()
    started = time.monotonic()
    by_duration = _monitor(redis_server.url, tmp_path, "d", "--duration", str(DURATION_S))
    signalled = {sig: _monitor(redis_server.url, tmp_path, sig.name)
                 for sig in (signal.SIGINT, signal.SIGTERM)}
    procs = [by_duration, *signalled.values()]
    try:
        for sig, proc in signalled.items():
            _wait_ready(proc)
            time.sleep(rng.uniform(0.0, 2.0))
            proc.send_signal(sig)
            sent = time.monotonic()
            assert proc.wait(BOUND_S) == 0, sig.name
            assert time.monotonic() - sent <= BOUND_S
        assert by_duration.wait(max(0.1, DURATION_S + BOUND_S - (time.monotonic() - started))) \
            == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
