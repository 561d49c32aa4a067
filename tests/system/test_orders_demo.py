"""The demo strategy (``venueguard monitor --trade demo``) against the simulator.

It places small post-only orders around the mid price only while the book is fresh, keeps at
most ``max_open`` of them, refuses to trade in safe mode, and on stop cancels its orders with one
bulk cancel and disarms the dead man's switch. The last test runs it inside the monitor.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from crash_worker import SYMBOL, eventually, runtime_config

from venueguard.app.demo import DemoConfig, DemoTrader
from venueguard.app.monitor import Monitor, MonitorConfig
from venueguard.core.dms import DmsConfig
from venueguard.io.http_session import RestConfig, RestSession
from venueguard.io.journal import Journal
from venueguard.io.order_manager import OrderIntent
from venueguard.io.orders_runtime import OrdersRuntime
from venueguard.io.ws_session import MarketDataSession, MdConfig
from venueguard.sim.testing import SimHandle, running_sim
from venueguard.telemetry.events import EventLog
from venueguard.venues.bitmex import signing
from venueguard.venues.bitmex.adapter import BitmexAdapter

pytestmark = pytest.mark.system


@pytest.fixture
async def sim() -> AsyncIterator[SimHandle]:
    async with running_sim(scenario=None, seed=21, rest_per_min=100_000,
                           rest_unauth_per_min=100_000, order_per_s=10_000) as handle:
        yield handle


async def test_demo_trades_around_mid_respects_safe_mode_and_cleans_up(
        sim: SimHandle, tmp_path: Path) -> None:
    events = EventLog()
    regime = {"now": "NORMAL"}
    md = MarketDataSession(MdConfig(url=sim.ws_url,
                                    topics=(f"orderBookL2:{SYMBOL}", "order", "execution",
                                            "position"),
                                    api_key=sim.api_key, api_secret=sim.api_secret),
                           events=events)
    journal = Journal.open(tmp_path / "demo.db")
    async with md, RestSession(RestConfig(base_url=sim.api_url, api_key=sim.api_key,
                                          api_secret=sim.api_secret), events=events) as rest:
        await md.wait_synced(10.0)
        runtime = OrdersRuntime(BitmexAdapter(rest), journal, symbols=(SYMBOL,), md=md,
                                events=events,
                                config=runtime_config(dms=DmsConfig(timeout_s=30.0,
                                                                    refresh_s=10.0)),
                                regime_source=lambda: regime["now"])
        trader = DemoTrader(runtime, lambda: md.book(SYMBOL), symbol=SYMBOL, clock=md.clock,
                            config=DemoConfig(step_s=0.05, max_open=2, order_ttl_s=0.4),
                            rest=rest)
        task = asyncio.create_task(trader.run())
        await eventually(lambda: trader.placed >= 6, timeout_s=15.0)
        manager = runtime.manager
        assert len(manager.open_orders()) <= 2
        mid = md.book(SYMBOL).mid()
        assert mid is not None
        for record in events.recent(event="order.intent"):
            price = float(str(record["price"]))
            assert abs(price - mid) <= 60 and price % 0.5 == 0
            assert record["post_only"] is True
        assert events.recent(event="order.acked")
        await eventually(lambda: manager.ws_rows.get("order", 0) > 0
                         and manager.ws_rows.get("execution", 0) > 0)   # private stream feeds
        # safe mode: the runtime refuses, nothing more is placed
        regime["now"] = "SAFE"
        await eventually(lambda: runtime.regime == "SAFE")
        placed = trader.placed
        await asyncio.sleep(0.5)
        assert trader.placed == placed
        regime["now"] = "NORMAL"
        await eventually(lambda: trader.placed > placed, timeout_s=10.0)
        await eventually(lambda: runtime.dms is not None and runtime.dms.armed)
        # the stop below must find an order resting (else it rightly sends no bulk cancel):
        # pause the demo, stop its time-outs, and rest one order far below the market
        trader.pause("test")
        trader.config = dataclasses.replace(trader.config, order_ttl_s=3600.0)
        far = round((mid - 40.0) * 2) / 2
        await runtime.submit(OrderIntent(SYMBOL, "Buy", 100, far, post_only=True))
        assert manager.open_orders()
        await trader.stop()
        await asyncio.wait_for(task, 10.0)
        truth = await sim.truth()
        assert sim.server.engine.cancel_at_ms is None         # disarmed on a clean stop
        assert not [r for r in truth["orders"] if r["ordStatus"] in ("New", "PartiallyFilled")]
        # one bulk cancel on entering SAFE, one at stop; never a cancel per order for them
        assert truth["requests"]["DELETE /api/v1/order/all"] == 2
        state = trader.state()
        assert state["open_orders"] == 0 and state["unknown_orders"] == 0
    journal.close()


@pytest.mark.slow
async def test_monitor_trade_demo_places_orders_and_stops_cleanly(tmp_path: Path) -> None:
    out = io.StringIO()
    config = MonitorConfig(trade="demo", duration_s=5.0, port=0, journal=tmp_path / "m.db",
                           scenario="calm", log_format="json", api_key=signing.TEST_API_KEY,
                           api_secret=signing.TEST_API_SECRET)
    monitor = Monitor(config, stdout=out, stderr=io.StringIO())
    code = await monitor.run()
    records = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    names = [r["event"] for r in records]
    assert code == 0, [r for r in records if r["event"] in ("monitor.task_failed", "alert")]
    assert "order.intent" in names and "order.acked" in names
    assert names.index("monitor.ready") < names.index("order.intent")
    assert "monitor.task_failed" not in names
    with Journal.open(tmp_path / "m.db") as journal:
        assert journal.unfinished_orders() == []          # the demo cancelled what it placed
