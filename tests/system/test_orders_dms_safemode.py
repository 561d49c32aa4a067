"""The dead man's switch and safe mode against the simulator, over real sockets.

Dead man's switch: armed while orders rest, refreshed, disarmed on a clean stop, left armed by a
crash so that the venue cancels everything when it runs out. Safe mode: entering SAFE sends
exactly one ``DELETE /order/all`` and no new order reaches the venue until NORMAL again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from crash_worker import SYMBOL, eventually, open_runtime, resting_buy, runtime_config, venue_rows

from venueguard.core.dms import DmsConfig
from venueguard.core.orders import OrderState
from venueguard.core.regime import RegimeConfig
from venueguard.io.order_manager import OrderIntent, OrdersBlocked
from venueguard.io.orders_runtime import RuntimeConfig
from venueguard.sim.testing import SimHandle, running_sim
from venueguard.telemetry.events import EventLog
from venueguard.telemetry.metrics import Metrics

pytestmark = [pytest.mark.system, pytest.mark.virtual_time]
S = OrderState
CAA = "POST /api/v1/order/cancelAllAfter"
CANCEL_ALL = "DELETE /api/v1/order/all"
POST = "POST /api/v1/order"


@pytest.fixture
async def sim() -> AsyncIterator[SimHandle]:
    async with running_sim(scenario=None, seed=11, rest_per_min=100_000,
                           rest_unauth_per_min=100_000, order_per_s=10_000) as handle:
        yield handle


def dms_config() -> RuntimeConfig:
    # the shortest timer BitMEX advises (5 s), refreshed every second
    return runtime_config(dms=DmsConfig(timeout_s=5.0, refresh_s=1.0, safe_timeout_s=5.0,
                                        safe_refresh_s=0.5))


async def test_dms_armed_while_resting_refreshed_and_disarmed_on_clean_stop(
        sim: SimHandle, tmp_path: Path) -> None:
    engine = sim.server.engine
    async with open_runtime(sim.base_url, tmp_path / "j.db", seed=1,
                            config=dms_config()) as runtime:
        assert runtime.dms is not None
        await asyncio.sleep(0.3)
        assert engine.cancel_at_ms is None              # nothing rests: nothing armed
        order = await runtime.submit(await resting_buy(sim))
        await eventually(lambda: runtime.dms is not None and runtime.dms.armed)
        first = engine.cancel_at_ms
        assert first is not None
        sent = (await sim.truth())["requests"][CAA]
        await eventually(lambda: engine.cancel_at_ms is not None and engine.cancel_at_ms > first,
                         timeout_s=4.0)                 # refreshed: the deadline moved on
        assert (await sim.truth())["requests"][CAA] > sent
        assert runtime.dms.sent[0] == 5000
        await runtime.stop(clean=True)
        assert engine.cancel_at_ms is None              # disarmed at the venue
        assert runtime.dms.sent[-1] == 0
        truth = await sim.truth()
    assert [r["ordStatus"] for r in venue_rows(truth, order.cl_ord_id)] == ["New"]


async def test_crash_leaves_dms_armed_and_the_venue_cancels(
        sim: SimHandle, tmp_path: Path) -> None:
    engine = sim.server.engine
    async with open_runtime(sim.base_url, tmp_path / "j.db", seed=2,
                            config=dms_config()) as runtime:
        order = await runtime.submit(await resting_buy(sim))
        await eventually(lambda: runtime.dms is not None and runtime.dms.armed)
        await runtime.stop(clean=False)                 # what a crash sends: nothing
        assert runtime.dms is not None and 0 not in runtime.dms.sent
    assert engine.cancel_at_ms is not None
    rows = await eventually(lambda: [r for r in sim.server.engine.truth()["orders"]
                                     if r["clOrdID"] == order.cl_ord_id
                                     and r["ordStatus"] == "Canceled"], timeout_s=10.0)
    assert len(rows) == 1


def safe_config() -> RuntimeConfig:
    base = runtime_config()
    # scores are failures per minute over a 2 s window: three 503s in it score about 90
    regime = RegimeConfig(cautious_enter=20.0, cautious_exit=5.0, safe_enter=60.0,
                          safe_exit=20.0, min_dwell_s=1.0, eval_interval_s=0.1, window_s=2.0,
                          bucket_s=1.0)
    return RuntimeConfig(manager=base.manager, dms=None, regime=regime, regime_poll_s=0.1)


async def test_safe_mode_one_bulk_cancel_and_no_new_orders(
        sim: SimHandle, tmp_path: Path) -> None:
    events, metrics = EventLog(), Metrics()
    async with open_runtime(sim.base_url, tmp_path / "j.db", seed=3, events=events,
                            metrics=metrics, config=safe_config()) as runtime:
        resting = [await runtime.submit(await resting_buy(sim, ticks=40 + i)) for i in range(3)]
        assert all(o.state is S.NEW for o in resting)
        await sim.add_fault("overload_503", probability=1.0, duration_s=3.5)
        shed = await runtime.submit(await resting_buy(sim))   # 503s: the outage regime
        assert shed.state is S.REJECTED
        await eventually(lambda: runtime.regime == "SAFE", timeout_s=5.0)
        posts_at_safe = (await sim.truth())["requests"][POST]
        await eventually(lambda: all(o.state is S.CANCELED for o in resting), timeout_s=5.0)
        with pytest.raises(OrdersBlocked):
            await runtime.submit(await resting_buy(sim))
        assert events.recent(event="order.refused")
        await asyncio.sleep(0.5)                          # more time in SAFE: nothing more
        truth = await sim.truth()
        assert truth["requests"][CANCEL_ALL] == 1         # ONE bulk cancel, never a storm
        assert truth["requests"].get("DELETE /api/v1/order", 0) == 0
        assert truth["requests"][POST] == posts_at_safe   # no new orders reached the venue
        changes = [(r["from"], r["to"]) for r in events.recent(event="regime.changed")]
        assert ("NORMAL", "SAFE") in changes or ("CAUTIOUS", "SAFE") in changes
        assert metrics.current_state("regime") in ("SAFE", "RECOVERING")
        # the fault is over: RECOVERING, then NORMAL, and orders flow again
        await eventually(lambda: runtime.regime == "NORMAL", timeout_s=10.0)
        changes = [(r["from"], r["to"]) for r in events.recent(event="regime.changed")]
        assert changes[-2:] == [("SAFE", "RECOVERING"), ("RECOVERING", "NORMAL")]
        again = await runtime.submit(OrderIntent(SYMBOL, "Buy", 100, resting[0].price or 1.0))
        assert again.state is S.NEW
        truth = await sim.truth()
        assert truth["requests"][CANCEL_ALL] == 1
