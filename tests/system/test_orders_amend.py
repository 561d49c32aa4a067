"""Amends against the simulator over real sockets, checked against the venue's ground truth
(``/_sim/truth``): PUT /order by origClOrdID keeps the order's clOrdID, and an amend whose answer
is lost (``timeout_after_accept``) is never sent again but converges to the venue's price."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from crash_worker import eventually, open_runtime, resting_buy, runtime_config, venue_rows

from venueguard.core.orders import OrderState
from venueguard.sim.testing import SimHandle, running_sim
from venueguard.telemetry.events import EventLog

pytestmark = [pytest.mark.system, pytest.mark.virtual_time]
S = OrderState
PUT = "PUT /api/v1/order"


@pytest.fixture
async def sim() -> AsyncIterator[SimHandle]:
    async with running_sim(scenario=None, seed=11, rest_per_min=100_000,
                           rest_unauth_per_min=100_000, order_per_s=10_000) as handle:
        yield handle


async def test_amend_keeps_clordid_and_an_unanswered_amend_is_not_resent(
        sim: SimHandle, tmp_path: Path) -> None:
    events = EventLog()
    config = runtime_config(query_interval_s=1.5)   # first lookup after the read timeout
    async with open_runtime(sim.base_url, tmp_path / "j.db", seed=21, events=events,
                            config=config, read_timeout_s=0.5) as runtime:
        order = await runtime.submit(await resting_buy(sim, ticks=40))
        assert order.state is S.NEW
        cl, first_price = order.cl_ord_id, order.price
        assert first_price is not None

        # 1. a plain amend: the venue shows the new price under the same clOrdID
        moved = first_price - 2.0
        await runtime.amend(cl, price=moved)
        truth = await sim.truth()
        (row,) = venue_rows(truth, cl)
        assert row["price"] == moved and row["ordStatus"] == "New"
        assert order.state is S.NEW and order.price == moved and order.cl_ord_id == cl
        assert truth["requests"][PUT] == 1
        assert [r["cl_ord_id"] for r in events.recent(event="order.amended")] == [cl]

        # 2. the venue applies the amend but the answer never comes: not resent, converges
        target = moved - 2.0
        await sim.add_fault("timeout_after_accept", probability=1.0, duration_s=1.0)
        await runtime.amend(cl, price=target)
        assert order.state is S.PENDING_AMEND              # a timeout proves nothing
        assert [r["cl_ord_id"] for r in events.recent(event="order.amend_unknown")] == [cl]
        await eventually(lambda: order.state is S.NEW, timeout_s=10.0)
        truth = await sim.truth()
        (row,) = venue_rows(truth, cl)
        assert order.price == row["price"] == target        # the venue's price, found by lookup
        assert truth["fault_hits"]["timeout_after_accept"] == 1
        await eventually(lambda: runtime.manager.venue_open == 1, timeout_s=5.0)
        truth = await sim.truth()
        assert truth["requests"][PUT] == 2                  # one PUT per amend, never resent
        assert len(venue_rows(truth, cl)) == 1
        assert truth["clOrdID_attempts"][cl] == 1
        kinds = [h.kind for h in runtime.manager.journal.history(cl)]
        assert kinds.count("amend_requested") == 2 and "ambiguous" in kinds
