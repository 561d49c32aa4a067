"""OrderManager against an in-memory venue: how each REST outcome lands in the order table.

Time is a ManualClock moved by hand; the venue is a fake REST session whose answers each test
scripts. The journal is a real SQLite file (checked from a second connection where durability
matters).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from venueguard.core.kinds import Kind
from venueguard.core.orders import OrderState
from venueguard.core.reconcile import ReconcileConfig
from venueguard.io import errors
from venueguard.io.clock import ManualClock
from venueguard.io.journal import Journal
from venueguard.io.order_manager import (
    NotReady,
    OrderIntent,
    OrderManager,
    OrderManagerConfig,
    OrdersBlocked,
)
from venueguard.telemetry.events import EventLog
from venueguard.telemetry.metrics import Metrics
from venueguard.venues.bitmex.adapter import BitmexAdapter

S = OrderState
INTENT = OrderIntent("XBTUSD", "Buy", 100, 49_000.0)


class FakeVenue:
    """Just enough of a REST session: orders by clOrdID, scripted POST failures."""

    def __init__(self) -> None:
        self.orders: dict[str, dict[str, Any]] = {}
        self.posts: list[str] = []
        self.post_errors: list[BaseException] = []
        self.accept_before_error = True       # an ambiguous failure still places the order
        self.visible = True
        self.on_post: Any = None
        self.block: asyncio.Event | None = None
        self.posted = asyncio.Event()

    def _row(self, cl: str, status: str = "New") -> dict[str, Any]:
        return {"orderID": f"oid-{cl}", "clOrdID": cl, "symbol": "XBTUSD", "side": "Buy",
                "orderQty": 100, "price": 49_000.0, "ordStatus": status, "cumQty": 0,
                "leavesQty": 100}

    async def place_order(self, symbol: str, side: str, order_qty: float,
                          price: float | None = None, *, cl_ord_id: str | None = None,
                          **extra: Any) -> dict[str, Any]:
        assert cl_ord_id is not None
        self.posts.append(cl_ord_id)
        self.posted.set()
        if self.on_post is not None:
            self.on_post(cl_ord_id)
        if self.block is not None:
            await self.block.wait()
        if self.post_errors:
            exc = self.post_errors.pop(0)
            if isinstance(exc, errors.AmbiguousOutcome | errors.DuplicateClOrdID) \
                    and self.accept_before_error:
                self.orders[cl_ord_id] = self._row(cl_ord_id)
            raise exc
        self.orders[cl_ord_id] = row = self._row(cl_ord_id)
        return row

    async def cancel_orders(self, order_ids: Sequence[str] = (),
                            cl_ord_ids: Sequence[str] = (), text: str | None = None
                            ) -> list[dict[str, Any]]:
        out = []
        for cl in cl_ord_ids:
            row = self.orders.get(cl)
            if row is None:
                out.append({"clOrdID": cl, "error": "Unable to cancel order: Not found"})
            else:
                row["ordStatus"] = "Canceled"
                out.append(dict(row))
        return out

    async def cancel_all(self, symbol: str | None = None, filter: Mapping[str, Any] | None = None,
                         text: str | None = None) -> list[dict[str, Any]]:
        return await self.cancel_orders(cl_ord_ids=[
            cl for cl, r in self.orders.items() if r["ordStatus"] == "New"])

    async def get_orders(self, symbol: str | None = None,
                         filter: Mapping[str, Any] | None = None, count: int = 100,
                         reverse: bool = False) -> list[dict[str, Any]]:
        if not self.visible:
            return []
        flt = dict(filter or {})
        rows = [dict(r) for r in self.orders.values()]
        if "clOrdID" in flt:
            rows = [r for r in rows if r["clOrdID"] in flt["clOrdID"]]
        if flt.get("open"):
            rows = [r for r in rows if r["ordStatus"] in ("New", "PartiallyFilled")]
        return rows

    async def get_positions(self) -> list[dict[str, Any]]:
        return [{"symbol": "XBTUSD", "currentQty": 0}]

    async def request(self, verb: str, path: str, *, query: Mapping[str, Any] | None = None,
                      **kwargs: Any) -> Any:
        if path == "/order":
            return await self.get_orders()
        return []


def config() -> OrderManagerConfig:
    return OrderManagerConfig(reconcile=ReconcileConfig(
        unknown_first_query_s=0.5, query_interval_s=1.0, visibility_grace_s=5.0,
        unknown_window_s=60.0), start_timeout_s=2.0)


async def make(tmp_path: Path, venue: FakeVenue, clock: ManualClock, *,
               events: EventLog | None = None, seed: int = 1,
               refusal: Any = None, cfg: OrderManagerConfig | None = None) -> OrderManager:
    manager = OrderManager(BitmexAdapter(venue), Journal.open(tmp_path / "j.db"),
                           symbols=("XBTUSD",), events=events or EventLog(), metrics=Metrics(),
                           clock=clock, rng=random.Random(seed), config=cfg or config(),
                           refusal=refusal)
    await manager.start()
    return manager


async def test_intent_is_durable_before_the_request_leaves(tmp_path: Path) -> None:
    venue, seen = FakeVenue(), []

    def check(cl: str) -> None:
        with Journal.open(tmp_path / "j.db") as other:      # a second connection
            seen.extend(o.cl_ord_id for o in other.unfinished_orders())
    venue.on_post = check
    manager = await make(tmp_path, venue, ManualClock())
    order = await manager.submit(INTENT)
    assert seen == [order.cl_ord_id]
    assert order.state is S.NEW
    kinds = [h.kind for h in manager.journal.history(order.cl_ord_id)]
    assert kinds[0] == "intent" and "submitted" in kinds and "venue_new" in kinds


async def test_ambiguous_outcome_is_unknown_and_resolved_by_lookup_never_resent(
        tmp_path: Path) -> None:
    venue, clock, events = FakeVenue(), ManualClock(), EventLog()
    venue.post_errors.append(errors.AmbiguousOutcome("read timeout", kind=Kind.AMBIGUOUS_TIMEOUT))
    venue.visible = False
    slow = replace(config(), reconcile=replace(config().reconcile, acceptance_window_s=120.0))
    manager = await make(tmp_path, venue, clock, events=events, cfg=slow)
    order = await manager.submit(INTENT)
    assert order.state is S.UNKNOWN
    assert [r["cl_ord_id"] for r in events.recent(event="order.unknown")] == [order.cl_ord_id]
    for _ in range(30):                          # a minute of lookups finding nothing yet,
        clock.advance(1.9)                       # inside a venue's (slow) acceptance window
        await manager.step()
        assert order.state is S.UNKNOWN          # no timer ever decides
    venue.visible = True
    clock.advance(1.0)
    await manager.step()
    assert order.state is S.NEW
    assert venue.posts == [order.cl_ord_id]      # sent exactly once


@pytest.mark.parametrize(("exc", "state", "unknown"), [
    (errors.Overloaded("503", kind=Kind.OVERLOADED), S.REJECTED, False),
    (errors.Throttled("local", kind=Kind.THROTTLED), S.REJECTED, False),
    (errors.CoolingDown("cool", until=5.0, kind=Kind.COOLDOWN), S.REJECTED, False),
    (errors.TransportError("refused", kind=Kind.TRANSIENT_NETWORK), S.REJECTED, False),
    (errors.BudgetExhausted("503s", kind=Kind.OVERLOADED), S.REJECTED, False),
    (errors.Rejected("bad price", kind=Kind.ORDER_REJECTED, venue_message="Invalid price"),
     S.REJECTED, False),
    (errors.BudgetExhausted("5xx", kind=Kind.SERVER_ERROR), S.UNKNOWN, True),
    (errors.VenueError("not json", kind=Kind.BAD_RESPONSE), S.UNKNOWN, True),
    (errors.DuplicateClOrdID("dup", kind=Kind.DUPLICATE_CLORDID), S.NEW, True),
])
async def test_each_failure_maps_to_a_definite_or_unknown_state(
        tmp_path: Path, exc: errors.VenueError, state: OrderState, unknown: bool) -> None:
    venue, clock, events = FakeVenue(), ManualClock(), EventLog()
    venue.post_errors.append(exc)
    manager = await make(tmp_path, venue, clock, events=events)
    order = await manager.submit(INTENT)
    clock.advance(1.0)
    await manager.step()                         # a lookup, where one is due
    assert order.state is state
    assert bool(events.recent(event="order.unknown")) is unknown
    assert venue.posts == [order.cl_ord_id]


async def test_not_processed_is_journaled_as_overloaded_then_withdrawn(tmp_path: Path) -> None:
    venue = FakeVenue()
    venue.post_errors.append(errors.Overloaded("503", kind=Kind.OVERLOADED))
    manager = await make(tmp_path, venue, ManualClock())
    order = await manager.submit(INTENT)
    kinds = [h.kind for h in manager.journal.history(order.cl_ord_id)]
    assert kinds == ["intent", "submitted", "overloaded", "withdrawn"]


async def test_refused_intent_is_neither_journaled_nor_sent(tmp_path: Path) -> None:
    venue, events = FakeVenue(), EventLog()
    manager = await make(tmp_path, venue, ManualClock(), events=events,
                         refusal=lambda: "regime SAFE: no new orders")
    with pytest.raises(OrdersBlocked, match="SAFE"):
        await manager.submit(INTENT)
    assert venue.posts == [] and manager.journal.unfinished_orders() == []
    assert events.recent(event="order.refused")[0]["reason"] == "regime SAFE: no new orders"


async def test_nothing_is_sent_before_the_journal_is_reconciled(tmp_path: Path) -> None:
    venue = FakeVenue()
    manager = OrderManager(BitmexAdapter(venue), Journal.open(tmp_path / "j.db"),
                           symbols=("XBTUSD",), clock=ManualClock(), rng=random.Random(1),
                           config=config())
    with pytest.raises(NotReady):
        await manager.submit(INTENT)
    assert venue.posts == []


async def test_cancelled_send_leaves_the_order_unknown_in_the_journal(tmp_path: Path) -> None:
    venue = FakeVenue()
    venue.block = asyncio.Event()
    manager = await make(tmp_path, venue, ManualClock())
    task = asyncio.create_task(manager.submit(INTENT))
    await venue.posted.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (order,) = manager.table.orders.values()
    assert order.state is S.UNKNOWN
    with Journal.open(tmp_path / "j.db") as other:
        assert [o.state for o in other.unfinished_orders()] == [S.UNKNOWN]


async def test_restart_looks_up_every_unfinished_intent_before_ready(tmp_path: Path) -> None:
    venue, clock = FakeVenue(), ManualClock()
    venue.block = asyncio.Event()                # the first process dies mid-send
    first = await make(tmp_path, venue, clock, seed=1)
    task = asyncio.create_task(first.submit(INTENT))
    await venue.posted.wait()
    venue.orders[venue.posts[0]] = venue._row(venue.posts[0])   # the venue did accept it
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    first.journal.close()
    venue.block = None
    events = EventLog()
    second = await make(tmp_path, venue, clock, events=events, seed=1)
    assert second.ready
    (order,) = second.table.orders.values()
    assert order.state is S.NEW and order.cl_ord_id == venue.posts[0]
    fresh = await second.submit(INTENT)          # same seed: still a clOrdID never used
    assert fresh.cl_ord_id != order.cl_ord_id
    assert len(set(venue.posts)) == len(venue.posts) == 2


async def test_websocket_rows_adopt_unknown_venue_orders_and_skip_probe_orders(
        tmp_path: Path) -> None:
    venue, events = FakeVenue(), EventLog()
    manager = await make(tmp_path, venue, ManualClock(), events=events)
    row = venue._row("manual-7")
    probe = venue._row("vgprobe-1")
    manager.on_rows("order", "insert", [row, probe])
    assert manager.table.orders["manual-7"].adopted
    assert "vgprobe-1" not in manager.table.orders
    await manager.step()
    kinds = [r["kind"] for r in events.recent(event="reconcile.mismatch")]
    assert kinds == ["phantom_venue"]
    assert manager.metrics is not None
    assert manager.metrics.phantom_orders_total._value.get() == 1
    mismatches = manager.metrics.snapshot()["reconcile_mismatches_total"]
    assert isinstance(mismatches, dict)
    assert mismatches["kind=phantom_venue"] == 1 and mismatches["kind=position"] == 0


async def test_cancel_rows_decide_the_state(tmp_path: Path) -> None:
    venue, events = FakeVenue(), EventLog()
    manager = await make(tmp_path, venue, ManualClock(), events=events)
    order = await manager.submit(INTENT)
    await manager.cancel(order.cl_ord_id)
    assert order.state is S.CANCELED
    assert [r["cl_ord_id"] for r in events.recent(event="order.canceled")] == [order.cl_ord_id]
    assert manager.metrics is not None
    assert manager.metrics.cancel_confirms_total._value.get() == 1


async def test_venue_evidence_during_a_failed_send_wins_over_the_failure(tmp_path: Path) -> None:
    """Regression: a websocket row that arrives while POST /order is in flight moves the order
    on; the ambiguous failure that follows must neither raise nor push it back to UNKNOWN."""
    venue, events = FakeVenue(), EventLog()
    venue.block = asyncio.Event()
    venue.post_errors.append(errors.AmbiguousOutcome("read timeout", kind=Kind.AMBIGUOUS_TIMEOUT))
    manager = await make(tmp_path, venue, ManualClock(), events=events)
    task = asyncio.create_task(manager.submit(INTENT))
    await venue.posted.wait()
    cl = venue.posts[0]
    manager.on_rows("order", "insert", [venue._row(cl, "Filled") | {"cumQty": 100,
                                                                     "leavesQty": 0}])
    venue.block.set()
    order = await task
    assert order.state is S.FILLED
    assert not events.recent(event="order.unknown")


async def test_ambiguous_cancel_of_an_order_that_filled_meanwhile_keeps_the_fill(
        tmp_path: Path) -> None:
    venue = FakeVenue()
    manager = await make(tmp_path, venue, ManualClock())
    order = await manager.submit(INTENT)

    async def cancel_orders(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        manager.on_rows("order", "update", [venue._row(order.cl_ord_id, "Filled")
                                            | {"cumQty": 100, "leavesQty": 0}])
        raise errors.AmbiguousOutcome("timeout", kind=Kind.AMBIGUOUS_TIMEOUT)
    venue.cancel_orders = cancel_orders  # type: ignore[method-assign]
    await manager.cancel(order.cl_ord_id)
    assert order.state is S.FILLED


async def test_an_answer_that_is_not_the_orders_row_is_unknown(tmp_path: Path) -> None:
    venue, clock = FakeVenue(), ManualClock()
    manager = await make(tmp_path, venue, clock)

    async def place_order(*args: Any, cl_ord_id: str | None = None,
                          **kwargs: Any) -> dict[str, Any]:
        assert cl_ord_id is not None
        venue.posts.append(cl_ord_id)
        venue.orders[cl_ord_id] = venue._row(cl_ord_id)
        return {"error": "unexpected"}
    venue.place_order = place_order  # type: ignore[method-assign]
    order = await manager.submit(INTENT)
    assert order.state is S.UNKNOWN
    clock.advance(1.0)
    await manager.step()
    assert order.state is S.NEW and venue.posts == [order.cl_ord_id]


async def test_malformed_private_rows_are_reported_and_skipped(tmp_path: Path) -> None:
    venue, events = FakeVenue(), EventLog()
    manager = await make(tmp_path, venue, ManualClock(), events=events)
    order = await manager.submit(INTENT)
    good = {"execType": "Trade", "execID": "e-1", "clOrdID": order.cl_ord_id,
            "orderID": order.order_id, "symbol": "XBTUSD", "side": "Buy", "lastQty": 100,
            "lastPx": 49_000.0, "leavesQty": 0, "ordStatus": "Filled", "cumQty": 100}
    bad = dict(good, execID="e-2", lastQty="lots")
    manager.on_rows("execution", "insert", [bad, "not a row", good])  # type: ignore[list-item]
    assert order.state is S.FILLED and manager.position("XBTUSD") == 100
    (report,) = events.recent(event="reconcile.bad_row")
    assert report["exec_id"] == "e-2"
