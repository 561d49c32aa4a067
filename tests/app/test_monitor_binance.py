"""`venueguard monitor --venue binance-usdm --sim-url URL` against `venueguard sim --dialect
binance-usdm`, as a user runs them: two processes on loopback, the native Binance session (no
ccxt imported by the monitor)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from venueguard.app.monitor import StartupError, config_from_args
from venueguard.cli import build_parser

pytestmark = [pytest.mark.system, pytest.mark.slow]


async def test_monitor_runs_the_native_binance_session(tmp_path: Path) -> None:
    sim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "venueguard", "sim", "--dialect", "binance-usdm", "--port", "0",
        "--rate", "100", stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert sim.stdout is not None
        line = (await asyncio.wait_for(sim.stdout.readline(), 60)).decode().strip()
        url = line.removeprefix("listening on ")
        monitor = await asyncio.create_subprocess_exec(
            sys.executable, "-X", "importtime", "-m", "venueguard", "monitor",
            "--venue", "binance-usdm", "--sim-url", url, "--duration", "6", "--port", "0",
            "--log-format", "json", "--journal", str(tmp_path / "vg.db"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
        assert monitor.stdout is not None
        ready = json.loads(await asyncio.wait_for(monitor.stdout.readline(), 60))
        assert ready["event"] == "monitor.ready" and ready["venue"] == "binance-usdm"
        await asyncio.sleep(3.0)
        async with aiohttp.ClientSession() as session, \
                session.get(ready["metrics_url"]) as response:
            metrics = await response.text()
        out, err = await asyncio.wait_for(monitor.communicate(), 60)
    finally:
        sim.terminate()
        await sim.wait()
    assert monitor.returncode == 0, err.decode()[-2000:]
    assert " ccxt" not in err.decode().replace("venueguard.ccxt", "")  # -X importtime lines
    lines = [json.loads(x) for x in out.decode().splitlines() if x.startswith("{")]
    assert any(x["event"] == "monitor.stopped" and x["failures"] == [] for x in lines)
    assert any(x["event"] == "ws.subscribed" and x["topic"] == "btcusdt@depth@100ms"
               for x in lines)
    best_bid = [x for x in metrics.splitlines() if x.startswith("venueguard_best_bid{")]
    assert best_bid and 'symbol="BTCUSDT"' in best_bid[0] and float(best_bid[0].split()[-1]) > 0
    assert 'endpoint="/fapi/v1/time",method="GET",status="200"' in metrics


def test_binance_venues_refuse_trading_and_default_to_btcusdt() -> None:
    parser = build_parser()
    args = parser.parse_args(["monitor", "--venue", "binance-usdm-testnet"])
    config = config_from_args(args, {})
    assert config.symbol == "BTCUSDT" and config.is_binance and not config.is_sim
    args = parser.parse_args(["monitor", "--venue", "binance-usdm", "--trade", "demo"])
    with pytest.raises(StartupError, match="watch only"):
        config_from_args(args, {})
    args = parser.parse_args(["monitor", "--venue", "bitmex", "--sim-url",
                              "http://127.0.0.1:1"])
    with pytest.raises(StartupError, match="--sim-url needs"):
        config_from_args(args, {})
