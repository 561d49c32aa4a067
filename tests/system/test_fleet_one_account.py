"""Two ``venueguard monitor --trade demo`` bots on one key and one redis-server, with a Redis
outage in the middle: neither halts the other.

Regression: a bot compared the account's position with its own fills (a false position
mismatch), went to safe mode, and its ``DELETE /order/all`` took the other bot's orders. The
90 s runs with two and four bots are ``bench/fleet_demo.py`` (figures in docs/scaling.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("redis", reason="the redis extra is not installed")

from venueguard.fleet.testing import RedisServer, RedisUnavailable

pytestmark = [pytest.mark.system]

MEMBERS = 2
SECONDS = 24


def _events(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_two_demo_bots_on_one_account_never_halt_or_cancel_each_other(tmp_path: Path) -> None:
    try:
        server = RedisServer.start()
    except RedisUnavailable as exc:
        pytest.skip(str(exc))
    env = {k: v for k, v in os.environ.items() if not k.startswith("VENUEGUARD_")}
    sim = subprocess.Popen([sys.executable, "-m", "venueguard", "sim", "--scenario", "calm",
                            "--rate", "5", "--rest-limit", "60"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    logs = [tmp_path / f"m{i}.jsonl" for i in range(MEMBERS)]
    bots: list[subprocess.Popen[bytes]] = []
    try:
        assert sim.stdout is not None
        base = sim.stdout.readline().decode().split()[-1]
        for i, log in enumerate(logs):
            with log.open("wb") as out:
                bots.append(subprocess.Popen(
                    [sys.executable, "-m", "venueguard", "monitor", "--sim-url", base,
                     "--trade", "demo", "--redis", server.url, "--fleet-size", str(MEMBERS),
                     "--log-format", "json", "--port", "0",
                     "--journal", str(tmp_path / f"m{i}.db"), "--duration", str(SECONDS)],
                    stdout=out, stderr=subprocess.DEVNULL, env=env, cwd=tmp_path))
        time.sleep(SECONDS / 3)
        server.kill()                                   # the outage
        time.sleep(SECONDS / 4)
        server.restart()
        codes = [bot.wait(SECONDS + 40) for bot in bots]
        with urllib.request.urlopen(base + "/_sim/truth", timeout=5) as response:
            truth = json.load(response)
    finally:
        for bot in bots:
            if bot.poll() is None:
                bot.kill()
                bot.wait()
        sim.terminate()
        sim.wait(10)
        if sim.stdout is not None:
            sim.stdout.close()
        server.stop()
    records = [e for log in logs for e in _events(log)]
    responses: dict[str, int] = truth["responses"]
    assert codes == [0] * MEMBERS
    assert not [e for e in records if e["event"] == "reconcile.mismatch"
                and str(e.get("kind", "")).startswith(("position", "account"))]
    assert not [e for e in records if e["event"] in ("monitor.halted", "reconcile.halt")]
    assert not any(k.startswith("DELETE /api/v1/order/all") for k in responses)
    assert sum(n for k, n in responses.items() if k.endswith(" 429")) <= 1
    # both bots traded, each only its own orders (their client id prefixes differ)
    ids = [str(o.get("clOrdID") or "") for o in truth["orders"]]
    placed = [cl for cl in ids if cl.startswith("vg") and not cl.startswith("vgprobe-")]
    assert len({cl.split("-", 1)[0] for cl in placed}) == MEMBERS
