"""How fresh the monitor's market data stays on a fast stream: ``venueguard monitor --venue V``
against ``venueguard sim --rate R``, two processes on loopback, as a user runs them.

Prints the ``ws.stale`` events the monitor logged and the worst data age it showed (its
``/api/state`` sampled every 0.2 s), for each venue given. Usage::

    .venv/bin/python bench/monitor_freshness.py --rate 3000 --seconds 60 --venue ccxt:bitmex
    .venv/bin/python bench/monitor_freshness.py --rate 3000 --seconds 60 \\
        --venue ccxt:bitmex --native off          # ccxt's own reader under the guard
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp


async def run(venue: str, rate: float, seconds: float, native: bool) -> dict[str, object]:
    env = dict(os.environ)
    if not native:
        env["VENUEGUARD_NATIVE_STREAMS"] = "0"
    sim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "venueguard", "sim", "--port", "0", "--rate", str(rate),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    ages: list[float] = []
    try:
        assert sim.stdout is not None
        url = (await asyncio.wait_for(sim.stdout.readline(), 60)).decode().strip()
        url = url.removeprefix("listening on ")
        with tempfile.TemporaryDirectory() as tmp:
            monitor = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "venueguard", "monitor", "--venue", venue, "--sim-url",
                url, "--duration", str(seconds + 5), "--port", "0", "--log-format", "json",
                "--journal", str(Path(tmp) / "vg.db"), stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, cwd=tmp, env=env)
            assert monitor.stdout is not None
            ready = json.loads(await asyncio.wait_for(monitor.stdout.readline(), 60))
            lines: list[dict[str, object]] = [ready]

            async def read() -> None:
                assert monitor.stdout is not None
                async for raw in monitor.stdout:
                    if raw.startswith(b"{"):
                        lines.append(json.loads(raw))

            reader = asyncio.get_running_loop().create_task(read())
            state_url = ready["dashboard_url"].rstrip("/") + "/api/state"  # type: ignore[union-attr]
            await asyncio.sleep(5.0)  # connect, load markets, first book
            async with aiohttp.ClientSession() as http:
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    async with http.get(state_url) as resp:
                        state = await resp.json()
                    age = (state.get("liveness") or {}).get("data_age_s")
                    ages.append(float("inf") if age is None else float(age))
                    await asyncio.sleep(0.2)
            await asyncio.wait_for(monitor.wait(), 60)
            await reader
    finally:
        sim.terminate()
        await sim.wait()
    stale = [x for x in lines if x.get("event") == "ws.stale"]
    return {"venue": venue, "native": native, "rate": rate, "seconds": seconds,
            "stale_events": len(stale), "worst_data_age_s": max(ages) if ages else None,
            "samples": len(ages)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venue", action="append", default=None)
    parser.add_argument("--rate", type=float, default=3000.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--native", choices=["on", "off"], default="on")
    args = parser.parse_args()
    for venue in args.venue or ["ccxt:bitmex"]:
        print(json.dumps(asyncio.run(run(venue, args.rate, args.seconds, args.native == "on"))))


if __name__ == "__main__":
    main()
