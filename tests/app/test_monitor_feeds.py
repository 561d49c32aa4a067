"""The monitor with its real session adapters against an in-process simulator on loopback:
the probe's orders never rest, 503s under overload reach metrics and journal, latency of every
REST response is journalled, and the market input reflects the simulator's book."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from venueguard.app.monitor import Monitor, MonitorConfig
from venueguard.io.journal import Journal
from venueguard.sim.testing import running_sim
from venueguard.venues.bitmex import signing

pytestmark = pytest.mark.system


@pytest.mark.slow
async def test_monitor_on_the_simulator_probes_without_leaving_orders(tmp_path: Path) -> None:
    async with running_sim(scenario=None, seed=3) as sim:
        await sim.add_fault("overload_503", probability=0.5)
        out = io.StringIO()
        cfg = MonitorConfig(sim_url=sim.base_url, journal=tmp_path / "m.db", port=0,
                            log_format="json", duration_s=5.0, order_probe_interval_s=0.25,
                            probe_interval_s=1.0, api_key=signing.TEST_API_KEY,
                            api_secret=signing.TEST_API_SECRET)
        monitor = Monitor(cfg, stdout=out, stderr=io.StringIO())
        assert await asyncio.wait_for(monitor.run(), 30) == 0
        truth = await sim.truth()
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    names = {r["event"] for r in records}
    assert {"monitor.ready", "ws.connected", "ws.subscribed", "rest.error"} <= names
    probes = [o for o in truth["orders"] if str(o.get("clOrdID", "")).startswith("vgprobe-")]
    assert len(probes) >= 3  # some got through the 503s
    assert all(o["ordStatus"] == "Canceled" for o in probes), probes  # nothing left resting
    assert all(o["orderQty"] == 100 and o["execInst"] == "ParticipateDoNotInitiate"
               for o in probes)
    assert monitor.ticker is not None
    state = monitor.ticker.state(0.0)
    assert state["market"]["best_bid"] is not None  # type: ignore[index]
    assert state["api"]["errors_by_kind"].get("overloaded", 0) >= 1  # type: ignore[index,union-attr]
    with Journal.open(tmp_path / "m.db") as journal:
        latency = journal.read_samples(0, 2**62, kind="api", name="latency_ms")
        http_503 = journal.read_samples(0, 2**62, kind="api", name="http_503_total")
        bids = journal.read_samples(0, 2**62, kind="market", name="best_bid")
    endpoints = {s.labels["endpoint"] for s in latency}
    assert {"GET /instrument", "POST /order", "DELETE /order"} <= endpoints
    assert {s.labels["status"] for s in latency} >= {"200", "503"}
    assert http_503 and http_503[-1].value >= 1
    assert bids and all(b.value > 0 for b in bids)
