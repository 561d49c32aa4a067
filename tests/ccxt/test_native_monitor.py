"""`venueguard monitor --venue ccxt:bitmex` on a fast stream (`venueguard sim --rate 3000`): the
guarded book is served by venueguard's own session, so it never goes stale (ccxt 4.5.78's own
reader stalls after a few thousand messages there). A shorter run of
``bench/monitor_freshness.py --rate 3000 --seconds 60``."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

pytestmark = [pytest.mark.system, pytest.mark.slow]


async def test_ccxt_bitmex_at_3000_msgs_per_s_never_goes_stale(tmp_path: Path) -> None:
    sim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "venueguard", "sim", "--port", "0", "--rate", "3000",
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    ages: list[float] = []
    try:
        assert sim.stdout is not None
        url = (await asyncio.wait_for(sim.stdout.readline(), 60)).decode().strip()
        monitor = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "venueguard", "monitor", "--venue", "ccxt:bitmex",
            "--sim-url", url.removeprefix("listening on "), "--duration", "14", "--port", "0",
            "--log-format", "json", "--journal", str(tmp_path / "vg.db"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
        assert monitor.stdout is not None
        ready = json.loads(await asyncio.wait_for(monitor.stdout.readline(), 60))
        assert ready["event"] == "monitor.ready"
        await asyncio.sleep(3.0)  # load markets, first book
        async with aiohttp.ClientSession() as http:
            end = time.monotonic() + 8.0
            while time.monotonic() < end:
                async with http.get(ready["dashboard_url"].rstrip("/") + "/api/state") as resp:
                    age = ((await resp.json()).get("liveness") or {}).get("data_age_s")
                ages.append(float("inf") if age is None else float(age))
                await asyncio.sleep(0.2)
        out, err = await asyncio.wait_for(monitor.communicate(), 60)
    finally:
        sim.terminate()
        await sim.wait()
    assert monitor.returncode == 0, err.decode()[-2000:]
    lines = [json.loads(x) for x in out.decode().splitlines() if x.startswith("{")]
    assert [x for x in lines if x["event"] == "ws.stale"] == []
    assert len(ages) >= 20 and max(ages) <= 2.0
