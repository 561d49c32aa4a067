"""OrderManager.amend against the in-memory venue of test_order_manager: journal before the
PUT, the clOrdID kept, 503s not processed, ambiguous outcomes settled only by venue evidence,
definite refusals applied with the state the venue names, and safe mode refusing amends."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from test_order_manager import INTENT, FakeVenue, make

from venueguard.core.kinds import Kind
from venueguard.core.orders import OrderState
from venueguard.io import errors
from venueguard.io.clock import ManualClock
from venueguard.io.journal import Journal
from venueguard.io.order_manager import OrderManager, OrdersBlocked
from venueguard.telemetry.events import EventLog

S = OrderState


class AmendVenue(FakeVenue):
    """FakeVenue plus PUT /order by origClOrdID, with scripted failures."""

    def __init__(self) -> None:
        super().__init__()
        self.puts: list[dict[str, Any]] = []
        self.put_errors: list[BaseException] = []
        self.apply_before_error = True        # an ambiguous failure still amends the order
        self.on_put: Any = None

    async def amend_order(self, *, order_id: str | None = None,
                          orig_cl_ord_id: str | None = None, cl_ord_id: str | None = None,
                          order_qty: float | None = None, leaves_qty: float | None = None,
                          price: float | None = None, text: str | None = None
                          ) -> dict[str, Any]:
        self.puts.append({"orig": orig_cl_ord_id, "order_id": order_id, "cl": cl_ord_id,
                          "qty": order_qty, "price": price})
        if self.on_put is not None:
            self.on_put(orig_cl_ord_id)
        row = self.orders[str(orig_cl_ord_id)]
        if self.put_errors:
            exc = self.put_errors.pop(0)
            if isinstance(exc, errors.AmbiguousOutcome) and self.apply_before_error:
                self._apply(row, order_qty, price)
            raise exc
        self._apply(row, order_qty, price)
        return dict(row)

    @staticmethod
    def _apply(row: dict[str, Any], qty: float | None, price: float | None) -> None:
        if qty is not None:
            row["orderQty"] = int(qty)
            row["leavesQty"] = int(qty) - row["cumQty"]
        if price is not None:
            row["price"] = price


async def resting(tmp_path: Path, events: EventLog | None = None,
                  clock: ManualClock | None = None, **kwargs: Any
                  ) -> tuple[AmendVenue, OrderManager, ManualClock, str]:
    venue, clock = AmendVenue(), clock or ManualClock()
    manager = await make(tmp_path, venue, clock, events=events, **kwargs)
    order = await manager.submit(INTENT)
    assert order.state is S.NEW
    return venue, manager, clock, order.cl_ord_id


async def test_pending_amend_is_durable_before_the_put_and_keeps_the_clordid(
        tmp_path: Path) -> None:
    events = EventLog()
    venue, manager, _, cl = await resting(tmp_path, events)
    seen: list[tuple[str, str, object]] = []

    def check(orig: str) -> None:
        with Journal.open(tmp_path / "j.db") as other:      # a second connection
            seen.extend((h.kind, h.to_state, h.payload.get("price"))
                        for h in other.history(orig) if h.kind == "amend_requested")
    venue.on_put = check
    order = await manager.amend(cl, price=49_500.0)
    assert seen == [("amend_requested", "PENDING_AMEND", 49_500.0)]
    assert venue.puts == [{"orig": cl, "order_id": None, "cl": None, "qty": None,
                           "price": 49_500.0}]           # origClOrdID, no new clOrdID
    assert order.cl_ord_id == cl and order.state is S.NEW and order.price == 49_500.0
    kinds = [h.kind for h in manager.journal.history(cl)]
    assert kinds[-3:] == ["amend_requested", "amended", "venue_new"]
    (amended,) = events.recent(event="order.amended")
    assert amended["price"] == 49_500.0 and amended["via"] == "amended"
    assert [r["cl_ord_id"] for r in events.recent(event="order.amend_sent")] == [cl]


async def test_overload_then_success_amends_once_with_the_same_clordid(tmp_path: Path) -> None:
    """The REST session retries 503s within its budget; the manager sees one logical PUT."""
    venue, manager, _, cl = await resting(tmp_path)
    attempts: list[str] = []

    async def amend_order(**kwargs: Any) -> dict[str, Any]:
        attempts.append(kwargs["orig_cl_ord_id"])
        if len(attempts) == 1:                   # what the session does on a 503: resend
            attempts.append(kwargs["orig_cl_ord_id"])
        return await AmendVenue.amend_order(venue, **kwargs)
    venue.amend_order = amend_order  # type: ignore[method-assign]
    order = await manager.amend(cl, qty=200)
    assert attempts == [cl, cl] and venue.puts[0]["cl"] is None
    assert order.state is S.NEW and order.qty == 200 and order.cl_ord_id == cl
    assert list(manager.table.orders) == [cl]


@pytest.mark.parametrize("exc", [
    errors.Overloaded("503 gave up", kind=Kind.OVERLOADED, status=503),
    errors.BudgetExhausted("503s", kind=Kind.OVERLOADED),
])
async def test_final_overload_is_not_processed_and_the_order_rests_as_it_was(
        tmp_path: Path, exc: errors.VenueError) -> None:
    events = EventLog()
    venue, manager, _, cl = await resting(tmp_path, events)
    venue.put_errors.append(exc)
    order = await manager.amend(cl, price=49_500.0)
    assert order.state is S.NEW and order.price == 49_000.0
    (rejected,) = events.recent(event="order.amend_rejected")
    assert rejected["cl_ord_id"] == cl and rejected["state"] == "NEW"
    assert not events.recent(event="order.amend_unknown")
    assert [h.kind for h in manager.journal.history(cl)][-2:] == ["amend_requested",
                                                                  "amend_rejected"]
    again = await manager.amend(cl, price=49_500.0)   # a fresh amend is allowed after it
    assert again.price == 49_500.0 and len(venue.puts) == 2


async def test_ambiguous_amend_is_never_resent_and_a_later_row_settles_it(
        tmp_path: Path) -> None:
    events = EventLog()
    venue, manager, clock, cl = await resting(tmp_path, events)
    venue.put_errors.append(errors.AmbiguousOutcome("read timeout", kind=Kind.AMBIGUOUS_TIMEOUT))
    venue.apply_before_error = False              # the venue has not applied it yet
    order = await manager.amend(cl, price=49_500.0)
    assert order.state is S.PENDING_AMEND and order.price == 49_000.0
    assert [r["cl_ord_id"] for r in events.recent(event="order.amend_unknown")] == [cl]
    stale = dict(venue.orders[cl])                # a row from before the amend proves nothing
    manager.on_rows("order", "update", [stale])
    assert order.state is S.PENDING_AMEND
    venue.orders[cl]["price"] = 49_500.0          # the venue applies it; its row arrives
    clock.advance(0.1)
    manager.on_rows("order", "update", [{"orderID": f"oid-{cl}", "clOrdID": cl,
                                         "price": 49_500.0, "symbol": "XBTUSD"}])
    assert order.state is S.NEW and order.price == 49_500.0
    await manager.flush()
    assert len(venue.puts) == 1                   # never sent again
    (amended,) = events.recent(event="order.amended")
    assert amended["price"] == 49_500.0
    kinds = [h.kind for h in manager.journal.history(cl)]
    assert kinds[-4:] == ["ambiguous", "venue_new", "venue_info", "amended"]


async def test_ambiguous_amend_the_venue_did_not_apply_is_settled_by_the_lookup(
        tmp_path: Path) -> None:
    events = EventLog()
    venue, manager, clock, cl = await resting(tmp_path, events)
    venue.put_errors.append(errors.AmbiguousOutcome("502", kind=Kind.AMBIGUOUS_TIMEOUT,
                                                    status=502))
    venue.apply_before_error = False
    order = await manager.amend(cl, price=49_500.0)
    assert order.state is S.PENDING_AMEND
    for _ in range(5):                            # lookups by clOrdID until one settles it
        clock.advance(0.6)
        await manager.step()
    assert order.state is S.NEW and order.price == 49_000.0   # the venue's price
    assert len(venue.puts) == 1
    (rejected,) = events.recent(event="order.amend_rejected")
    assert rejected["price"] == 49_000.0


async def test_amend_of_an_order_that_filled_is_rejected_with_the_fill_applied(
        tmp_path: Path) -> None:
    events = EventLog()
    venue, manager, _, cl = await resting(tmp_path, events)
    venue.orders[cl].update(ordStatus="Filled", cumQty=100, leavesQty=0)
    venue.put_errors.append(errors.Rejected(
        "PUT /order: order_rejected (Invalid ordStatus: Filled)", kind=Kind.ORDER_REJECTED,
        status=400, venue_message="Invalid ordStatus: Filled"))
    order = await manager.amend(cl, price=49_500.0)
    assert order.state is S.FILLED and order.price == 49_000.0
    (rejected,) = events.recent(event="order.amend_rejected")
    assert "Invalid ordStatus: Filled" in str(rejected["reason"])
    kinds = [h.kind for h in manager.journal.history(cl)]
    assert kinds[-3:] == ["amend_requested", "amend_rejected", "venue_filled"]
    with pytest.raises(ValueError, match="FILLED"):
        await manager.amend(cl, price=49_600.0)   # nothing left to amend
    assert len(venue.puts) == 1


async def test_invalid_price_refusal_leaves_the_order_as_it_was(tmp_path: Path) -> None:
    venue, manager, _, cl = await resting(tmp_path)
    venue.put_errors.append(errors.Rejected("bad tick", kind=Kind.ORDER_REJECTED, status=400,
                                            venue_message="Invalid price tickSize"))
    order = await manager.amend(cl, price=49_500.3)
    assert order.state is S.NEW and order.price == 49_000.0


async def test_safe_mode_refuses_amends_like_new_orders(tmp_path: Path) -> None:
    events, refusal = EventLog(), [""]
    venue, manager, _, cl = await resting(tmp_path, events, refusal=lambda: refusal[0] or None)
    refusal[0] = "regime SAFE: no new orders"
    with pytest.raises(OrdersBlocked, match="SAFE"):
        await manager.amend(cl, price=49_500.0)
    assert venue.puts == []
    assert manager.table.orders[cl].state is S.NEW
    assert "amend_requested" not in [h.kind for h in manager.journal.history(cl)]
    (refused,) = events.recent(event="order.refused")
    assert refused["cl_ord_id"] == cl and refused["request"] == "amend"


async def test_malformed_amends_are_refused_before_anything_is_journaled(
        tmp_path: Path) -> None:
    venue, manager, _, cl = await resting(tmp_path)
    for kwargs, match in [({}, "price or a qty"), ({"price": -1.0}, "price > 0"),
                          ({"qty": 0}, "qty > 0"), ({"price": 49_000.0}, "already"),
                          ]:
        with pytest.raises(ValueError, match=match):
            await manager.amend(cl, **kwargs)
    with pytest.raises(ValueError, match="unknown"):
        await manager.amend("nope", price=1.0)
    assert venue.puts == []
    assert "amend_requested" not in [h.kind for h in manager.journal.history(cl)]


async def test_cancelled_amend_stays_pending_in_the_journal(tmp_path: Path) -> None:
    venue, manager, _, cl = await resting(tmp_path)
    gate, sent = asyncio.Event(), asyncio.Event()

    async def amend_order(**kwargs: Any) -> dict[str, Any]:
        sent.set()
        await gate.wait()
        raise AssertionError("unreachable")
    venue.amend_order = amend_order  # type: ignore[method-assign]
    task = asyncio.create_task(manager.amend(cl, price=49_500.0))
    await sent.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert manager.table.orders[cl].state is S.PENDING_AMEND
    with Journal.open(tmp_path / "j.db") as other:
        assert [h.kind for h in other.history(cl)][-2:] == ["amend_requested", "ambiguous"]


async def test_a_row_during_the_put_settles_it_and_the_failure_that_follows_changes_nothing(
        tmp_path: Path) -> None:
    events = EventLog()
    venue, manager, _, cl = await resting(tmp_path, events)
    venue.put_errors.append(errors.AmbiguousOutcome("read timeout", kind=Kind.AMBIGUOUS_TIMEOUT))

    def row_first(orig: str) -> None:             # the venue's row beats the lost answer
        manager.on_rows("order", "update", [dict(venue.orders[orig], orderQty=300,
                                                 leavesQty=300)])
    venue.on_put = row_first
    order = await manager.amend(cl, qty=300)
    assert order.state is S.NEW and order.qty == 300
    assert not events.recent(event="order.amend_unknown")
    assert [r["qty"] for r in events.recent(event="order.amended")] == [300]
    assert len(venue.puts) == 1


async def test_a_journal_failure_before_the_put_sends_nothing(tmp_path: Path) -> None:
    venue, manager, _, cl = await resting(tmp_path)

    def broken(items: Any) -> None:
        raise OSError("disk full")
    manager.journal.append_transitions = broken  # type: ignore[method-assign]
    with pytest.raises(OSError, match="disk full"):
        await manager.amend(cl, price=49_500.0)
    assert venue.puts == []
    assert manager.table.orders[cl].state is S.NEW
