"""Eight ``venueguard monitor --trade demo`` processes on one API key, one simulator whose per-key
limit (``sim --rest-limit``) they would exceed alone, and one real redis-server.

One run, in phases (kept short for CI): contention (the venue's limit holds, at most one 429),
Redis killed and restarted (no crash, degraded once, rejoined), a ban (``forbidden_403``, the
first fault of the ``ban-hammer`` scenario, posted through the control API: every member stops
within 1 s of the first one seeing it), then the owner of the dead man's switch is killed
(another takes over within the lease; never two owners at once).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("redis", reason="the redis extra is not installed")

import itertools

from venueguard.fleet.rehearsal import event_lines
from venueguard.fleet.testing import RedisServer, RedisUnavailable

pytestmark = [pytest.mark.system, pytest.mark.slow]

MEMBERS = 8
REST_LIMIT = 60          # a minute: 8 demo bots want ~16 a second
LEASE_TTL_S = 5.0        # FleetConfig's default


def _ts(record: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(record["ts"]).replace("Z", "+00:00")).timestamp()


def _truth(base: str) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(base + "/_sim/truth", timeout=5) as response:
        return dict(json.load(response))


def _post_fault(base: str, body: dict[str, Any]) -> None:
    import urllib.request

    request = urllib.request.Request(base + "/_sim/faults", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"},
                                     method="POST")
    with urllib.request.urlopen(request, timeout=5):
        pass


def _requests_and_429(truth: dict[str, Any]) -> tuple[int, int]:
    responses: dict[str, int] = truth["responses"]
    total = sum(n for name, n in responses.items() if "/api/v1/" in name)
    limited = sum(n for name, n in responses.items() if name.endswith(" 429"))
    return total, limited


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


def _wait_for(predicate: Any, timeout_s: float, step_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return bool(predicate())


@pytest.mark.timeout(240)
def test_eight_monitors_share_one_key(tmp_path: Path, redis_server: RedisServer) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VENUEGUARD_")}
    sim = subprocess.Popen([sys.executable, "-m", "venueguard", "sim", "--scenario", "calm",
                            "--rate", "5", "--rest-limit", str(REST_LIMIT)],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    monitors: list[subprocess.Popen[bytes]] = []
    logs = [tmp_path / f"m{i}.jsonl" for i in range(MEMBERS)]
    try:
        assert sim.stdout is not None
        line = sim.stdout.readline().decode()
        assert line.startswith("listening on "), line
        base = line.split()[-1]
        for i in range(MEMBERS):
            with logs[i].open("wb") as out:
                monitors.append(subprocess.Popen(
                    [sys.executable, "-m", "venueguard", "monitor", "--sim-url", base,
                     "--trade", "demo", "--redis", redis_server.url, "--fleet-size", str(MEMBERS),
                     "--log-format", "json",
                     "--port", "0", "--journal", str(tmp_path / f"m{i}.db"),
                     "--duration", "120"],
                    stdout=out, stderr=subprocess.DEVNULL, env=env, cwd=tmp_path))
        assert _wait_for(lambda: all(any(e["event"] == "monitor.ready" for e in event_lines(p))
                                     for p in logs), 60, 0.25), "monitors did not start"
        started = time.time()

        # -- contention: 8 bots want ~16 requests a second; the key allows 1 -------------
        time.sleep(10)
        total, limited = _requests_and_429(_truth(base))
        elapsed = time.time() - started
        assert limited <= 1
        # everything the venue received since it started: within its burst + its rate
        # (the monitors' start-up included, so measured from the simulator's start)
        assert total <= REST_LIMIT + REST_LIMIT / 60 * (elapsed + 60) + 1
        assert all(m.poll() is None for m in monitors)

        # -- Redis killed and restarted ---------------------------------------------------
        redis_server.kill()
        time.sleep(3)
        redis_server.restart()
        assert _wait_for(lambda: all(
            any(e["event"] == "fleet.rejoined" for e in event_lines(p)) for p in logs), 20, 0.25)
        for path in logs:
            # said once per outage: every fleet.degraded is followed by a fleet.rejoined
            # (a loaded machine may add a short one for slow answers, > 20 ms)
            names = [e["event"] for e in event_lines(path)
                     if e["event"] in ("fleet.degraded", "fleet.rejoined")]
            assert names and names[-1] == "fleet.rejoined", path
            assert all(a != b for a, b in itertools.pairwise(names)), names
        assert all(m.poll() is None for m in monitors), "a monitor stopped"
        time.sleep(2)
        total_2, limited_2 = _requests_and_429(_truth(base))
        elapsed = time.time() - started
        # the fallback shares add up to the limit; a 429 or two at the seams at most
        assert limited_2 <= 1 + 1
        share = REST_LIMIT // MEMBERS
        assert total_2 <= REST_LIMIT + REST_LIMIT / 60 * (elapsed + 60) + share + 1

        # -- the ban: every member stops within 1 s of the first one seeing it ------------
        _post_fault(base, {"kind": "forbidden_403", "duration_s": 60})
        assert _wait_for(lambda: any(e["event"] == "rest.error" and e.get("kind") == "forbidden"
                                     for p in logs for e in event_lines(p)), 20, 0.1)
        time.sleep(1.5)
        first_ban = min(_ts(e) for p in logs for e in event_lines(p)
                        if e["event"] == "rest.error" and e.get("kind") == "forbidden")
        for path in logs:
            cooled = [_ts(e) for e in event_lines(path)
                      if e["event"] == "venue.state" and e.get("state") == "COOLDOWN"
                      and _ts(e) >= first_ban - 0.01]
            assert cooled and cooled[0] - first_ban <= 1.0, path
        stopped_at, _ = _requests_and_429(_truth(base))
        time.sleep(3)
        assert _requests_and_429(_truth(base))[0] == stopped_at   # nothing sent since

        # -- one owner; kill it and another takes over within the lease ---------------------
        def owners() -> list[int]:
            out = []
            for i, path in enumerate(logs):
                leases = [e for e in event_lines(path) if e["event"] == "fleet.lease"]
                if leases and leases[-1]["owner"] and monitors[i].poll() is None:
                    out.append(i)
            return out

        assert _wait_for(lambda: len(owners()) == 1, 10)
        owner = owners()[0]
        monitors[owner].send_signal(signal.SIGKILL)
        killed = time.time()
        monitors[owner].wait(10)
        assert _wait_for(lambda: len(owners()) == 1, LEASE_TTL_S + 3, 0.1)
        new_owner = owners()[0]
        assert new_owner != owner
        took = min(_ts(e) for e in event_lines(logs[new_owner])
                   if e["event"] == "fleet.lease" and e["owner"] and _ts(e) >= killed - 0.01)
        assert took - killed <= LEASE_TTL_S + 1.0
        # never two owners at once: owner intervals from every log do not overlap
        intervals = []
        for i, path in enumerate(logs):
            start = None
            for e in event_lines(path):
                if e["event"] == "fleet.lease":
                    if e["owner"] and start is None:
                        start = _ts(e)
                    elif not e["owner"] and start is not None:
                        intervals.append((start, _ts(e)))
                        start = None
            if start is not None:
                intervals.append((start, killed if i == owner else time.time()))
        intervals.sort()
        for (_, end), (nxt, _) in itertools.pairwise(intervals):
            assert nxt >= end - 0.05, intervals
    finally:
        for m in monitors:
            if m.poll() is None:
                m.send_signal(signal.SIGTERM)
        for m in monitors:
            try:
                m.wait(20)
            except subprocess.TimeoutExpired:
                m.kill()
        sim.terminate()
        sim.wait(10)
        if sim.stdout is not None:
            sim.stdout.close()
    alive = [i for i in range(MEMBERS) if i != owner]
    assert all(monitors[i].returncode == 0 for i in alive), \
        [(i, monitors[i].returncode) for i in alive]
