"""`venueguard monitor --venue ccxt:bitmex --sim-url URL` against `venueguard sim`, as a user
runs them: two processes on loopback, ccxt 4.5.78's bitmex class guarded underneath."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

pytestmark = [pytest.mark.system, pytest.mark.slow]


async def test_monitor_runs_a_ccxt_venue_against_the_simulator(tmp_path: Path) -> None:
    sim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "venueguard", "sim", "--port", "0", "--rate", "50",
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert sim.stdout is not None
        line = (await asyncio.wait_for(sim.stdout.readline(), 60)).decode().strip()
        url = line.removeprefix("listening on ")
        monitor = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "venueguard", "monitor", "--venue", "ccxt:bitmex",
            "--sim-url", url, "--symbol", "XBTUSD", "--duration", "6", "--port", "0",
            "--log-format", "json", "--journal", str(tmp_path / "vg.db"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
        assert monitor.stdout is not None
        ready = json.loads(await asyncio.wait_for(monitor.stdout.readline(), 60))
        assert ready["event"] == "monitor.ready" and ready["venue"] == "ccxt:bitmex"
        await asyncio.sleep(3.0)
        async with aiohttp.ClientSession() as session, \
                session.get(ready["metrics_url"]) as response:
            metrics = await response.text()
        out, err = await asyncio.wait_for(monitor.communicate(), 60)
    finally:
        sim.terminate()
        await sim.wait()
    assert monitor.returncode == 0, err.decode()[-2000:]
    lines = [json.loads(x) for x in out.decode().splitlines() if x.startswith("{")]
    assert any(x["event"] == "monitor.stopped" and x["failures"] == [] for x in lines)
    # the guarded REST probe and the guarded book both reached the venue through ccxt
    assert re.search(r'venueguard_rest_requests_total\{[^}]*endpoint="fetch_ticker"[^}]*'
                     r'status="200"', metrics)
    best_bid = [x for x in metrics.splitlines() if x.startswith("venueguard_best_bid{")]
    assert best_bid and float(best_bid[0].split()[-1]) > 0
