"""Restart against a venue that forgot our orders: settled by evidence, few cancels, counted,
and a position that still disagrees halts trading.

Regression tests for a restart after SIGKILL against a venue that had forgotten the journaled
orders: orders stayed NEW for good, one order got 43 cancel requests, the startup event counted
unresolved orders as reconciled, and a position mismatch (local 300, venue 0) ended in exit 0.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from test_order_manager import INTENT, FakeVenue, config, make

from venueguard.core.kinds import Kind
from venueguard.core.orders import ClOrdIdGenerator, OrderState, OrderTable
from venueguard.core.reports import FillReport
from venueguard.io import errors
from venueguard.io.clock import ManualClock
from venueguard.io.journal import Journal
from venueguard.io.order_manager import OrdersBlocked
from venueguard.io.orders_runtime import OrdersRuntime, RuntimeConfig
from venueguard.telemetry.events import EventLog
from venueguard.venues.bitmex.adapter import BitmexAdapter

S = OrderState


class CountingVenue(FakeVenue):
    def __init__(self) -> None:
        super().__init__()
        self.cancels: list[str] = []
        self.position = 0

    async def cancel_orders(self, order_ids: object = (), cl_ord_ids: object = (),
                            text: str | None = None) -> list[dict[str, object]]:
        self.cancels.extend(cl_ord_ids)  # type: ignore[arg-type]
        return await super().cancel_orders(cl_ord_ids=cl_ord_ids)  # type: ignore[arg-type]

    async def get_positions(self) -> list[dict[str, object]]:
        return [{"symbol": "XBTUSD", "currentQty": self.position}]


def journal_before_crash(path: Path, clock: ManualClock) -> dict[str, str]:
    """A journal as a killed process left it a minute ago: one order acked (NEW), one whose
    request was in flight (PENDING_NEW), one filled for 300 (position baseline 0)."""
    table = OrderTable(ClOrdIdGenerator(random.Random(5)))
    wall = clock.wall_ms() - 60_000
    names: dict[str, str] = {}
    with Journal.open(path) as journal:
        journal.set_meta("position_baseline:XBTUSD", "0")
        for name in ("acked", "in_flight", "filled"):
            order = table.new_order("XBTUSD", "Buy", 300, 49_000.0, now=0.0, wall_ms=wall)
            journal.record_intent(order)
            table.on_submitted(order.cl_ord_id, 0.0)
            names[name] = order.cl_ord_id
        table.on_acked(names["acked"], "o-acked", 0.1)
        table.on_acked(names["filled"], "o-filled", 0.1)
        table.on_fill_report(FillReport("x1", names["filled"], "o-filled", 300, 49_000.0,
                                        leaves_qty=0), 0.2)
        journal.sync(table)
    return names


async def test_cancels_of_an_order_the_venue_does_not_have_stop_after_three(
        tmp_path: Path) -> None:
    venue, clock, events = CountingVenue(), ManualClock(), EventLog()
    manager = await make(tmp_path, venue, clock, events=events)
    order = await manager.submit(INTENT)
    assert order.state is S.NEW
    venue.orders.clear()                          # the venue forgot it (restarted empty)
    for _ in range(40):                           # a strategy cancelling it every 0.5 s
        clock.advance(0.5)
        await manager.cancel(order.cl_ord_id)
        await manager.step()
    assert order.state is S.CANCELED
    assert len(venue.cancels) == 3, venue.cancels
    kinds = [h.kind for h in manager.journal.history(order.cl_ord_id)]
    assert kinds.count("cancel_requested") == 3
    assert kinds[-1] == "absent"                  # closed by the venue's word, not a timer
    (held,) = events.recent(event="order.cancel_held")
    assert held["cl_ord_id"] == order.cl_ord_id and held["refusals"] == 3


async def test_cancels_that_never_reached_the_venue_do_not_count(tmp_path: Path) -> None:
    venue, clock = CountingVenue(), ManualClock()
    manager = await make(tmp_path, venue, clock)
    order = await manager.submit(INTENT)
    real_cancel = super(CountingVenue, venue).cancel_orders       # without counting again
    failures = [errors.Overloaded("503", kind=Kind.OVERLOADED) for _ in range(4)]

    async def overloaded(order_ids: object = (), cl_ord_ids: object = (),
                         text: str | None = None) -> list[dict[str, object]]:
        venue.cancels.extend(cl_ord_ids)  # type: ignore[arg-type]
        if failures:
            raise failures.pop()
        return await real_cancel(order_ids, cl_ord_ids, text)

    venue.cancel_orders = overloaded  # type: ignore[method-assign]
    for _ in range(5):
        clock.advance(2.0)
        await manager.cancel(order.cl_ord_id)
    assert len(venue.cancels) == 5 and order.state is S.CANCELED


async def test_an_unanswered_cancel_is_resent_no_faster_than_the_query_interval(
        tmp_path: Path) -> None:
    venue, clock = CountingVenue(), ManualClock()
    manager = await make(tmp_path, venue, clock)
    order = await manager.submit(INTENT)

    async def timeout(order_ids: object = (), cl_ord_ids: object = (),
                      text: str | None = None) -> list[dict[str, object]]:
        venue.cancels.extend(cl_ord_ids)  # type: ignore[arg-type]
        raise errors.AmbiguousOutcome("read timeout", kind=Kind.AMBIGUOUS_TIMEOUT)

    venue.cancel_orders = timeout  # type: ignore[method-assign]
    for _ in range(10):                           # asked every 0.25 s for 2.5 s
        clock.advance(0.25)
        await manager.cancel(order.cl_ord_id)
    assert order.state is S.PENDING_CANCEL
    assert len(venue.cancels) == 3                # at 0.25, 1.25 and 2.25 s


async def test_restart_settles_forgotten_orders_and_counts_them(tmp_path: Path) -> None:
    venue, clock, events = CountingVenue(), ManualClock(), EventLog()
    names = journal_before_crash(tmp_path / "j.db", clock)
    venue.position = 300                          # the venue kept the fill
    foreign = venue._row("by-hand")               # and holds an order placed by hand
    venue.orders["by-hand"] = foreign
    manager = await make(tmp_path, venue, clock, events=events)
    assert manager.ready
    table = manager.table
    assert table.orders[names["acked"]].state is S.CANCELED      # absent, created 60 s ago
    assert table.orders[names["in_flight"]].state is S.UNKNOWN   # inside the acceptance window
    (startup,) = [e for e in events.recent(event="reconcile.resolved")
                  if e["kind"] == "startup"]
    assert (startup["journaled"], startup["resolved"], startup["unresolved"],
            startup["adopted"]) == (2, 1, 1, 1)
    assert "1 resolved, 1 unresolved" in str(startup["detail"])
    horizon = manager.config.reconcile.acceptance_window_s
    for _ in range(int(horizon) - 5):             # lookups by client id keep finding nothing
        clock.advance(1.0)
        await manager.step()
    unknown = table.orders[names["in_flight"]]
    assert unknown.state is S.UNKNOWN             # absence inside the visibility horizon
    for _ in range(10):
        clock.advance(1.0)
        await manager.step()
    assert unknown.state is S.REJECTED
    assert manager.journal.history(unknown.cl_ord_id)[-1].payload["reason"].startswith(
        "never accepted: not found by client id")
    left = {o.cl_ord_id for o in table.in_states(frozenset({S.NEW, S.UNKNOWN, S.PENDING_NEW}))}
    assert left == {"by-hand"}                    # only the adopted order, open at the venue
    assert manager.halted is None and venue.posts == []


async def test_a_position_mismatch_that_survives_reconciliation_halts_trading(
        tmp_path: Path) -> None:
    venue, clock, events = CountingVenue(), ManualClock(), EventLog()
    journal_before_crash(tmp_path / "j.db", clock)          # local 300; the venue shows 0
    runtime = OrdersRuntime(
        BitmexAdapter(venue), Journal.open(tmp_path / "j.db"), symbols=("XBTUSD",),
        events=events, clock=clock, rng=random.Random(1),
        config=RuntimeConfig(manager=config(), dms=None),
        regime_source=lambda: "NORMAL")
    await runtime.start()
    manager = runtime.manager
    for _ in range(12):
        clock.advance(1.0)
        await manager.step()
    assert manager.halted == "position mismatch: XBTUSD local 300 venue 0"
    alerts = [e for e in events.recent(event="alert") if e["tier"] == "critical"]
    assert any("position mismatch" in str(a["message"]) for a in alerts)
    assert [e["reason"] for e in events.recent(event="reconcile.halt")] == [manager.halted]
    with pytest.raises(OrdersBlocked, match="position mismatch"):
        await runtime.submit(INTENT)
    assert runtime.regime == "SAFE" and venue.posts == []
    venue.position = 300                                    # the venue agrees again
    for _ in range(15):                                     # (lookups are budgeted)
        clock.advance(1.0)
        await manager.step()
    assert manager.halted is None
    assert manager.halt_history == ["position mismatch: XBTUSD local 300 venue 0"]
    manager.journal.close()


async def test_a_runtime_stopped_before_its_task_first_ran_returns_at_once(
        tmp_path: Path) -> None:
    # regression: ``stop`` right after ``start`` (a ccxt bot's close() just after
    # start_orders()) came before ``run`` had started its loops; they then started after their
    # cancellation and ran until the closer's 10 s wait gave up
    venue, clock = CountingVenue(), ManualClock()
    runtime = OrdersRuntime(
        BitmexAdapter(venue), Journal.open(tmp_path / "j.db"), symbols=("XBTUSD",),
        events=EventLog(), clock=clock, rng=random.Random(1),
        config=RuntimeConfig(manager=config(), dms=None), regime_source=lambda: "NORMAL")
    await runtime.start()
    task = asyncio.get_running_loop().create_task(runtime.run())
    await runtime.stop(clean=True)               # before the task's first step
    async with asyncio.timeout(5.0):             # generous: it returns in the same turn
        await task
    assert not runtime.manager.table.orders
