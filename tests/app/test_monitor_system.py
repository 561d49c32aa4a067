"""`venueguard monitor` as a user runs it: a subprocess with the embedded simulator (503-lesson)
on loopback, its dashboard and metrics while it runs, a clean exit, then a report from its journal.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

import aiohttp
import pytest

from venueguard.app import report

pytestmark = [pytest.mark.system, pytest.mark.slow]

CONTRACT_METRICS = (
    "venueguard_ws_messages_total", "venueguard_ws_reconnects_total",
    "venueguard_ws_last_data_age_seconds", "venueguard_ws_pong_age_seconds",
    "venueguard_rest_requests_total", "venueguard_rest_latency_seconds",
    "venueguard_rest_errors_total", "venueguard_retries_total",
    "venueguard_data_rejected_total", "venueguard_venue_state", "venueguard_regime",
    "venueguard_open_orders", "venueguard_phantom_orders_total", "venueguard_spread",
    "venueguard_best_bid", "venueguard_best_ask", "venueguard_position",
    "venueguard_ws_last_data_timestamp_seconds",
)


async def test_monitor_subprocess_runs_serves_and_leaves_a_reportable_journal(
        tmp_path: Path) -> None:
    journal = tmp_path / "run.db"
    stderr_path = tmp_path / "stderr.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VENUEGUARD_")}
    with stderr_path.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "venueguard", "monitor", "--duration", "8", "--port", "0",
            "--log-format", "json", "--journal", str(journal),
            stdout=asyncio.subprocess.PIPE, stderr=stderr, cwd=tmp_path, env=env)
        assert proc.stdout is not None
        records: list[dict[str, object]] = []
        try:
            async with asyncio.timeout(30):
                while not any(r["event"] == "monitor.ready" for r in records):
                    line = await proc.stdout.readline()
                    assert line, f"monitor exited early: {stderr_path.read_text()}"
                    records.append(json.loads(line))
            ready = next(r for r in records if r["event"] == "monitor.ready")
            dashboard_url, metrics_url = str(ready["dashboard_url"]), str(ready["metrics_url"])
            assert dashboard_url.startswith("http://127.0.0.1:") and dashboard_url.endswith("/")
            assert metrics_url == dashboard_url + "metrics"
            await asyncio.sleep(3.0)
            async with aiohttp.ClientSession() as http:
                async with http.get(metrics_url) as response:
                    assert response.status == 200
                    metrics_text = await response.text()
                async with http.get(dashboard_url + "api/state") as response:
                    state = await response.json()
            async with asyncio.timeout(30):
                rest = await proc.stdout.read()
                code = await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert code == 0, stderr_path.read_text()
    records += [json.loads(line) for line in rest.decode().splitlines() if line.strip()]
    assert all(isinstance(r.get("ts"), str) and str(r["ts"]).endswith("Z") for r in records)
    names = [r["event"] for r in records]
    for event in ("sim.started", "ws.connected", "ws.subscribed", "monitor.stopped"):
        assert event in names, event
    assert records[-1]["event"] == "monitor.stopped" and records[-1]["reason"] == "duration"
    for name in CONTRACT_METRICS:
        assert name in metrics_text, name
    assert ('venueguard_rest_requests_total{endpoint="/instrument",method="GET",status="200"}'
            in metrics_text)
    assert state["market"]["symbol"] == "XBTUSD" and state["market"]["best_bid"] is not None
    assert state["liveness"]["fresh"] is True
    assert state["snapshots"]["produced"] >= 2

    out = tmp_path / "report"
    assert report.run(argparse.Namespace(journal=str(journal), out=str(out))) == 0
    page = (out / "report.html").read_text()
    assert page.count("<tr data-symptom=") == 8
    assert "REST requests" in page
    assert (out / "timeline.png").stat().st_size > 20_000
