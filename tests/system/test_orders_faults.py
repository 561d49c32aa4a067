"""Order-state integrity against the simulator's order faults, over real sockets.

Each test names the fault it exercises and checks the venue's ground truth (``/_sim/truth``):
an intent reaches the venue at most once, an UNKNOWN order is resolved only by venue evidence,
grace periods hold, and positions converge with the venue.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from crash_worker import (
    SYMBOL,
    best,
    eventually,
    open_runtime,
    resting_buy,
    runtime_config,
    venue_position,
    venue_rows,
)

from venueguard.core.orders import ClOrdIdGenerator, Order, OrderState, OrderTable
from venueguard.io.clock import wall_s
from venueguard.io.journal import Journal
from venueguard.io.order_manager import OrderIntent
from venueguard.io.orders_runtime import OrdersRuntime
from venueguard.sim.testing import SimHandle, running_sim
from venueguard.telemetry.events import EventLog
from venueguard.telemetry.metrics import Metrics

pytestmark = [pytest.mark.system, pytest.mark.virtual_time]
S = OrderState


@pytest.fixture
async def sim() -> AsyncIterator[SimHandle]:
    async with running_sim(scenario=None, seed=5, rest_per_min=100_000,
                           rest_unauth_per_min=100_000, order_per_s=10_000) as handle:
        yield handle


@pytest.mark.parametrize("fault", ["timeout_after_accept", "bad_gateway_after_accept"])
async def test_accepted_but_unanswered_order_is_unknown_then_found_never_resent(
        sim: SimHandle, tmp_path: Path, fault: str) -> None:
    events = EventLog()
    async with open_runtime(sim.base_url, tmp_path / "j.db", seed=1, events=events,
                            read_timeout_s=0.5) as runtime:
        intent = await resting_buy(sim)
        await sim.add_fault(fault, probability=1.0, duration_s=2.0)
        order = await runtime.submit(intent)
        assert order.state is S.UNKNOWN                  # a timeout or a 502 proves nothing
        assert events.recent(event="order.unknown")
        await eventually(lambda: order.state is S.NEW)    # the lookup by clOrdID found it
        truth = await sim.truth()
        rows = venue_rows(truth, order.cl_ord_id)
        assert [r["ordStatus"] for r in rows] == ["New"]
        assert truth["clOrdID_attempts"][order.cl_ord_id] == 1   # never POSTed again
        assert truth["fault_hits"][fault] == 1
        assert order.order_id == rows[0]["orderID"]
        resolved = await eventually(lambda: [
            r for r in events.recent(event="reconcile.resolved")
            if r.get("cl_ord_id") == order.cl_ord_id])
        assert resolved[0]["kind"] == "unknown"
        history = [h.kind for h in runtime.manager.journal.history(order.cl_ord_id)]
        assert history[:3] == ["intent", "submitted", "ambiguous"]


async def test_overload_503_retries_same_clordid_and_places_once(
        sim: SimHandle, tmp_path: Path) -> None:
    metrics = Metrics()
    async with open_runtime(sim.base_url, tmp_path / "j.db", seed=2, metrics=metrics) as runtime:
        intent = await resting_buy(sim)
        before = (await sim.truth())["requests"].get("POST /api/v1/order", 0)
        await sim.add_fault("overload_503", probability=1.0, duration_s=0.4)
        order = await runtime.submit(intent)
        truth = await sim.truth()
    posts = truth["requests"]["POST /api/v1/order"] - before
    assert order.state is S.NEW
    assert posts >= 2                                    # shed at least once, then retried
    assert truth["fault_hits"]["overload_503"] == posts - 1
    assert len(venue_rows(truth, order.cl_ord_id)) == 1  # one order at the venue for the intent
    assert metrics.order_attempts_total._value.get() == 1  # one logical send, same clOrdID


async def test_overload_until_retries_run_out_is_not_processed_and_rejected(
        sim: SimHandle, tmp_path: Path) -> None:
    events = EventLog()
    async with open_runtime(sim.base_url, tmp_path / "j.db", seed=3, events=events) as runtime:
        intent = await resting_buy(sim)
        await sim.add_fault("overload_503", probability=1.0, duration_s=30.0)
        order = await runtime.submit(intent)
        truth = await sim.truth()
    assert order.state is S.REJECTED                      # a 503 is a definite "not processed"
    assert not venue_rows(truth, order.cl_ord_id)
    assert [r["cl_ord_id"] for r in events.recent(event="order.rejected")] == [order.cl_ord_id]
    assert not events.recent(event="order.unknown")


async def test_delayed_visibility_grace_period_no_false_phantom(
        sim: SimHandle, tmp_path: Path) -> None:
    events, metrics = EventLog(), Metrics()
    async with open_runtime(sim.base_url, tmp_path / "j.db", seed=4, events=events,
                            metrics=metrics, read_timeout_s=0.5) as runtime:
        intent = await resting_buy(sim)
        await sim.add_fault("delayed_visibility", delay_s=2.5, duration_s=5.0)
        await sim.add_fault("timeout_after_accept", probability=1.0, duration_s=0.3)
        order = await runtime.submit(intent)
        assert order.state is S.UNKNOWN
        _, _, listed = await sim.request("GET", "/order", query={"filter": {"open": True}})
        assert not [r for r in listed if r["clOrdID"] == order.cl_ord_id]   # hidden for now
        sweeps = (await sim.truth())["requests"]["GET /api/v1/order"]
        await asyncio.sleep(1.5)                          # lookups run, the venue hides it
        assert order.state is S.UNKNOWN                   # no evidence: still UNKNOWN
        assert (await sim.truth())["requests"]["GET /api/v1/order"] >= sweeps + 2
        await eventually(lambda: order.state is S.NEW, timeout_s=8.0)
        await eventually(lambda: runtime.manager.venue_open == 1, timeout_s=5.0)
    assert metrics.phantom_orders_total._value.get() == 0
    assert not [r for r in events.recent(event="reconcile.mismatch")
                if str(r.get("kind", "")).startswith("phantom")]


async def test_late_fill_position_converges_with_venue(sim: SimHandle, tmp_path: Path) -> None:
    async with open_runtime(sim.base_url, tmp_path / "j.db", seed=5) as runtime:
        _, ask = await best(sim)
        await sim.add_fault("late_fill", delay_s=1.5, duration_s=10.0)
        order = await runtime.submit(OrderIntent(SYMBOL, "Buy", 100, ask + 50.0,
                                                 post_only=False))
        assert order.state is S.FILLED                  # the order row says so at once
        assert runtime.manager.position(SYMBOL) == 0    # but its executions are not out yet
        truth = await sim.truth()
        assert venue_position(truth) == 100
        await eventually(lambda: runtime.manager.position(SYMBOL) == 100, timeout_s=8.0)
        assert order.cum_qty == 100 and order.exec_ids


async def test_cancel_race_resolves_to_the_fill(sim: SimHandle, tmp_path: Path) -> None:
    events = EventLog()
    async with open_runtime(sim.base_url, tmp_path / "j.db", seed=6, events=events) as runtime:
        order = await runtime.submit(await resting_buy(sim, ticks=4))
        assert order.state is S.NEW
        await sim.add_fault("cancel_race", probability=1.0, duration_s=5.0)
        await runtime.cancel(order.cl_ord_id)
        truth = await sim.truth()
        assert [r["ordStatus"] for r in venue_rows(truth, order.cl_ord_id)] == ["Filled"]
        assert order.state is S.FILLED                  # the venue's truth, not our request
        await eventually(lambda: runtime.manager.position(SYMBOL) == venue_position(truth))
        assert not events.recent(event="order.canceled")


async def test_venue_order_unknown_locally_is_adopted_and_journaled(
        sim: SimHandle, tmp_path: Path) -> None:
    events, metrics = EventLog(), Metrics()
    async with open_runtime(sim.base_url, tmp_path / "j.db", seed=7, events=events,
                            metrics=metrics) as runtime:
        intent = await resting_buy(sim)
        status, _, row = await sim.request("POST", "/order", {
            "symbol": SYMBOL, "side": "Sell", "orderQty": 100, "price": intent.price + 400,
            "clOrdID": "elsewhere-1", "execInst": "ParticipateDoNotInitiate"})
        assert status == 200 and row["ordStatus"] == "New"
        adopted: Order = await eventually(
            lambda: runtime.manager.table.orders.get("elsewhere-1"), timeout_s=5.0)
        assert adopted.adopted and adopted.state is S.NEW and adopted.order_id == row["orderID"]
        mismatch = await eventually(lambda: [r for r in events.recent(event="reconcile.mismatch")
                                             if r["kind"] == "phantom_venue"])
        assert mismatch[0]["cl_ord_id"] == "elsewhere-1"
        assert metrics.phantom_orders_total._value.get() == 1
        await runtime.manager.flush()
    with Journal.open(tmp_path / "j.db") as journal:
        assert [h.kind for h in journal.history("elsewhere-1")][:1] == ["venue_new"]


async def test_restart_reconciles_journal_before_sending(sim: SimHandle, tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    async with open_runtime(sim.base_url, path, seed=8, read_timeout_s=0.3) as runtime:
        intent = await resting_buy(sim)
        await sim.add_fault("timeout_after_accept", probability=1.0, duration_s=1.0)
        lost = await runtime.submit(intent)
        assert lost.state is S.UNKNOWN
        runtime.manager.stop()                          # dies before any lookup answers
    events = EventLog()
    async with open_runtime(sim.base_url, path, seed=9, events=events) as again:
        assert again.manager.ready
        restored = again.manager.table.orders[lost.cl_ord_id]
        assert restored.state is S.NEW                  # found by clOrdID during start
        names = [r["event"] for r in events.recent()]
        assert "order.intent" not in names              # nothing new was sent before that
        truth = await sim.truth()
        assert truth["clOrdID_attempts"][lost.cl_ord_id] == 1
        assert isinstance(again, OrdersRuntime)


# real time: the history is paged by timestamp, and in virtual time the 120 orders placed back
# to back all carry the same millisecond
@pytest.mark.slow
@pytest.mark.real_time
async def test_intent_never_sent_stays_unknown_until_the_full_history_proves_it_absent(
        sim: SimHandle, tmp_path: Path) -> None:
    """A crash between journaling an intent and sending it: only the venue's complete order
    history (several pages here), asked after the long window, may call it never placed."""
    for i in range(120):                              # more history than one page holds
        status, _, _ = await sim.request("POST", "/order", {
            "symbol": SYMBOL, "side": "Buy", "orderQty": 100, "price": 30_000.0 + i,
            "clOrdID": f"other-{i}", "execInst": "ParticipateDoNotInitiate"})
        assert status == 200
    with Journal.open(tmp_path / "j.db") as journal:
        table = OrderTable(ClOrdIdGenerator(random.Random(3)))
        lost = table.new_order(SYMBOL, "Buy", 100, 30_000.0, now=0.0,
                               wall_ms=int(wall_s() * 1000))
        journal.record_intent(lost)                   # durable, then the process died
    events = EventLog()
    config = runtime_config(unknown_window_s=2.0)
    async with open_runtime(sim.base_url, tmp_path / "j.db", seed=10, events=events,
                            config=config) as runtime:
        order = runtime.manager.table.orders[lost.cl_ord_id]
        assert order.state is S.UNKNOWN               # a restart cannot know: look it up
        await asyncio.sleep(1.0)
        assert order.state is S.UNKNOWN               # not found is no proof within the window
        await eventually(lambda: order.state is S.REJECTED, timeout_s=8.0)
        resolved = await eventually(lambda: [r for r in events.recent(event="reconcile.resolved")
                                             if r.get("kind") == "unknown_not_placed"])
        assert resolved[0]["cl_ord_id"] == lost.cl_ord_id
        assert any(r["tier"] == "critical" for r in events.recent(event="alert"))
        assert len(runtime.manager.table.orders) == 121   # the others were adopted, flagged
        assert all(o.adopted for o in runtime.manager.table.orders.values() if o is not order)
