"""One account, several bots (``own_prefix_only``): each keeps to the orders it placed.

Regression: two demo bots on one key halted each other: a bot compared the account's position
with its own fills (a false ``reconcile.mismatch kind=position``), went to safe mode, and the
bulk cancel of safe mode (``DELETE /order/all``) took the other bot's orders too.
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

from test_order_manager import INTENT, FakeVenue, config, make

from venueguard.app.account_watch import AccountWatch, owner_of
from venueguard.core.account_position import AccountCheckConfig
from venueguard.core.orders import ClOrdIdGenerator, OrderState, OrderTable
from venueguard.core.reconcile import FetchPosition, Reconciler
from venueguard.io.clock import ManualClock
from venueguard.io.fleet_link import Role
from venueguard.io.order_manager import OrderManagerConfig
from venueguard.telemetry.events import EventLog

S = OrderState


def shared(prefix: str) -> OrderManagerConfig:
    base = config()
    return replace(base, cl_ord_prefix=prefix, own_prefix_only=True,
                   reconcile=replace(base.reconcile, check_position=False))


async def test_bulk_cancel_takes_only_this_bots_orders(tmp_path: Path) -> None:
    venue, clock = FakeVenue(), ManualClock()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    mine = await make(tmp_path / "a", venue, clock, cfg=shared("vgaaaaaa"))
    theirs = await make(tmp_path / "b", venue, clock, cfg=shared("vgbbbbbb"), seed=2)
    a = await mine.submit(INTENT)
    b = await theirs.submit(INTENT)
    assert await mine.cancel_all("XBTUSD")
    assert venue.orders[a.cl_ord_id]["ordStatus"] == "Canceled"
    assert venue.orders[b.cl_ord_id]["ordStatus"] == "New"     # the neighbour's order rests
    assert mine.table.orders[a.cl_ord_id].state is S.CANCELED
    assert await mine.cancel_all("XBTUSD")                       # nothing left: no request


async def test_a_neighbours_orders_and_the_accounts_position_raise_nothing(
        tmp_path: Path) -> None:
    venue, clock, events = FakeVenue(), ManualClock(), EventLog()
    (tmp_path / "a").mkdir()
    manager = await make(tmp_path / "a", venue, clock, events=events, cfg=shared("vgaaaaaa"))
    async def account_position() -> list[dict[str, object]]:
        return [{"symbol": "XBTUSD", "currentQty": 200}]     # the neighbour's fills

    venue.get_positions = account_position  # type: ignore[method-assign]
    neighbour = venue._row("vgbbbbbb-1-00000001")
    manager.on_rows("order", "insert", [neighbour])
    manager.on_rows("position", "update", [{"symbol": "XBTUSD", "currentQty": 200}])
    for _ in range(5):
        clock.advance(15.0)
        await manager.step()
    assert "vgbbbbbb-1-00000001" not in manager.table.orders
    assert events.recent(event="reconcile.mismatch") == []
    assert manager.halted is None and manager.halt_history == []


def test_a_shared_account_position_is_neither_fetched_nor_compared() -> None:
    cfg = replace(config().reconcile, check_position=False)
    table = OrderTable(ClOrdIdGenerator(random.Random(1)))
    rec = Reconciler(table, cfg, start_wall_ms=0, symbols=("XBTUSD",))
    rec.on_position("XBTUSD", 200, 0.0)
    rec.on_position("XBTUSD", 200, 60.0)
    decisions = rec.poll(60.0, 60_000)
    assert not any(isinstance(d, FetchPosition) for d in decisions)
    assert rec.position_mismatches == frozenset()
    alone = Reconciler(OrderTable(ClOrdIdGenerator(random.Random(1))),
                       replace(cfg, check_position=True), start_wall_ms=0,
                       symbols=("XBTUSD",))
    assert any(isinstance(d, FetchPosition) for d in alone.poll(0.0, 0))


class OwnerFleet:
    """The fleet as the account watch sees it: a role and the members' published positions."""

    def __init__(self) -> None:
        self.role_now = Role.OWNER
        self.positions: dict[str, float] = {}

    def role(self) -> Role:
        return self.role_now

    def member_positions(self, symbol: str, *, newer_than_wall_s: float | None = None
                         ) -> dict[str, float] | None:
        return dict(self.positions)      # records always fresh here


async def test_only_an_account_level_mismatch_cancels_the_account_and_says_whose(
        tmp_path: Path) -> None:
    venue, clock, events = FakeVenue(), ManualClock(), EventLog()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    mine = await make(tmp_path / "a", venue, clock, events=events, cfg=shared("vgaaaaaa"))
    theirs = await make(tmp_path / "b", venue, clock, cfg=shared("vgbbbbbb"), seed=2)
    a = await mine.submit(INTENT)
    b = await theirs.submit(INTENT)
    account = {"qty": 0}

    async def positions() -> list[dict[str, object]]:
        return [{"symbol": "XBTUSD", "currentQty": account["qty"]}]

    venue.get_positions = positions  # type: ignore[method-assign]
    fleet = OwnerFleet()
    fleet.positions = {"a": 0.0, "b": 0.0}
    watch = AccountWatch(fleet, mine, symbol="XBTUSD", clock=clock, events=events,
                         config=AccountCheckConfig(grace_s=10.0))
    await watch.check_once()
    account["qty"] = 200                        # b filled 200 ...
    clock.advance(5.0)
    await watch.check_once()
    fleet.positions = {"a": 0.0, "b": 200.0}    # ... and says so: nothing to do
    for _ in range(4):
        clock.advance(5.0)
        await watch.check_once()
    assert watch.account_cancels == 0
    assert venue.orders[b.cl_ord_id]["ordStatus"] == "New"
    account["qty"] = 300                        # a fill nobody owns
    for _ in range(3):
        clock.advance(5.0)
        await watch.check_once()
    assert watch.account_cancels == 1
    [mismatch] = events.recent(event="reconcile.mismatch")
    assert mismatch["kind"] == "account_position" and "unexplained +100" in mismatch["detail"]
    [cancel] = events.recent(event="orders.account_cancel")
    assert cancel["taken"] == {"vgaaaaaa": 1, "vgbbbbbb": 1}
    assert "account position mismatch" in cancel["reason"]
    assert venue.orders[a.cl_ord_id]["ordStatus"] == "Canceled"
    assert venue.orders[b.cl_ord_id]["ordStatus"] == "Canceled"
    assert mine.table.orders[a.cl_ord_id].state is S.CANCELED


def test_owner_of_reads_the_client_id_prefix() -> None:
    assert owner_of("vg1a2b3c-17-00ab") == "vg1a2b3c"
    assert owner_of("manual") == "other"
    assert owner_of(None) == "other"


async def test_a_bot_sharing_the_account_takes_no_position_baseline(tmp_path: Path) -> None:
    venue, asked = FakeVenue(), []

    async def positions() -> list[dict[str, object]]:
        asked.append(1)
        return [{"symbol": "XBTUSD", "currentQty": 500}]     # the other bots' position

    venue.get_positions = positions  # type: ignore[method-assign]
    (tmp_path / "a").mkdir()
    manager = await make(tmp_path / "a", venue, ManualClock(), cfg=shared("vgaaaaaa"))
    assert asked == []
    assert manager.position("XBTUSD") == 0            # its own fills only


async def test_fills_while_the_read_waits_its_turn_are_no_mismatch(tmp_path: Path) -> None:
    """Regression: the members' positions were read before the venue's (which can wait for
    seconds under the shared limit), so fills meanwhile looked unexplained."""
    venue, clock, events = FakeVenue(), ManualClock(), EventLog()
    (tmp_path / "a").mkdir()
    mine = await make(tmp_path / "a", venue, clock, events=events, cfg=shared("vgaaaaaa"))
    fleet = OwnerFleet()
    fleet.positions = {"a": 0.0, "b": 0.0}
    account = {"qty": 0}

    calls = {"n": 0}

    async def positions() -> list[dict[str, object]]:
        calls["n"] += 1
        if calls["n"] > 1:                          # b fills while the read waits ...
            account["qty"] += 100
            fleet.positions = {"a": 0.0, "b": float(account["qty"])}   # ... and says so
        return [{"symbol": "XBTUSD", "currentQty": account["qty"]}]

    venue.get_positions = positions  # type: ignore[method-assign]
    watch = AccountWatch(fleet, mine, symbol="XBTUSD", clock=clock, events=events,
                         config=AccountCheckConfig(grace_s=10.0))
    for _ in range(6):
        await watch.check_once()
        clock.advance(10.0)
    assert events.recent(event="reconcile.mismatch") == []
    assert watch.account_cancels == 0


async def test_a_fill_on_its_way_when_the_check_starts_is_not_taken_as_the_reference(
        tmp_path: Path) -> None:
    """Regression (3 bots at 120 a minute): the first sample came while a fill had reached
    the venue but not yet its member (difference +100); taken as the reference, every later
    sample (difference 0) looked like an unexplained -100, and the account was cancelled."""
    venue, clock, events = FakeVenue(), ManualClock(), EventLog()
    (tmp_path / "a").mkdir()
    mine = await make(tmp_path / "a", venue, clock, events=events, cfg=shared("vgaaaaaa"))

    async def positions() -> list[dict[str, object]]:
        return [{"symbol": "XBTUSD", "currentQty": 100}]

    venue.get_positions = positions  # type: ignore[method-assign]
    fleet = OwnerFleet()
    fleet.positions = {"a": 0.0, "b": 0.0}              # b's fill is on its way
    watch = AccountWatch(fleet, mine, symbol="XBTUSD", clock=clock, events=events,
                         config=AccountCheckConfig(grace_s=10.0))
    await watch.check_once()
    fleet.positions = {"a": 0.0, "b": 100.0}            # ... and has arrived
    for _ in range(8):
        clock.advance(10.0)
        await watch.check_once()
    assert events.recent(event="reconcile.mismatch") == []
    assert watch.account_cancels == 0
    # the check runs: a fill nobody owns is still found, once the reference is settled
    venue.get_positions = lambda: _qty(300)  # type: ignore[method-assign, assignment]
    for _ in range(3):
        clock.advance(10.0)
        await watch.check_once()
    assert watch.account_cancels == 1


async def _qty(qty: float) -> list[dict[str, object]]:
    return [{"symbol": "XBTUSD", "currentQty": qty}]
