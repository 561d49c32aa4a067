"""The periodic sweep shared by the members of a fleet (``OrderManager.share_sweeps``): one
member reads the account's open orders and executions, the others take that answer within
the freshness bound; only each member's own orders count; a row asked before an order changed
is not evidence about it; a member postpones while another reads, never longer than the bound,
and never at its start; with the store away each member sweeps by itself.

Managers on one fake account share one in-process fleet; time is a ManualClock.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from test_order_manager import INTENT, FakeVenue, config

from venueguard.core.orders import OrderState
from venueguard.core.reconcile import QueryOrders, ResendCancel
from venueguard.core.shared_reads import ShareConfig, SweepSnapshot, decode
from venueguard.fleet import Fleet, FleetConfig
from venueguard.fleet.backend import MemoryBackend
from venueguard.io.clock import ManualClock
from venueguard.io.journal import Journal
from venueguard.io.order_manager import OrderManager, OrderManagerConfig
from venueguard.io.order_sweeps import SWEEP
from venueguard.telemetry.events import EventLog
from venueguard.venues.bitmex.adapter import BitmexAdapter

S = OrderState
SWEEP_S = 30.0
SHARE = ShareConfig(max_age_s=10.0, max_wait_s=15.0, postpone_s=1.0, fills_lookback_s=70.0)


class Account(FakeVenue):
    """One account's orders and executions; counts the sweep's requests."""

    def __init__(self) -> None:
        super().__init__()
        self.open_reads = 0
        self.exec_reads = 0
        self.by_id_reads = 0
        self.exec_starts: list[str] = []
        self.execs: list[dict[str, Any]] = []

    async def get_orders(self, symbol: str | None = None, filter: Any = None, count: int = 100,
                         reverse: bool = False) -> list[dict[str, Any]]:
        flt = dict(filter or {})
        if flt.get("open"):
            self.open_reads += 1
        if "clOrdID" in flt:
            self.by_id_reads += 1
        return await super().get_orders(symbol, filter, count, reverse)

    async def request(self, verb: str, path: str, *, query: Any = None, **kwargs: Any) -> Any:
        if path == "/execution/tradeHistory":
            self.exec_reads += 1
            self.exec_starts.append(str((query or {}).get("startTime")))
            return [dict(r) for r in self.execs] if not (query or {}).get("start") else []
        return await super().request(verb, path, query=query, **kwargs)

    def fill(self, cl: str, exec_id: str) -> None:
        row = self.orders[cl]
        row.update(ordStatus="Filled", cumQty=100, leavesQty=0)
        self.execs.append({"execID": exec_id, "orderID": row["orderID"], "clOrdID": cl,
                           "symbol": "XBTUSD", "side": "Buy", "lastQty": 100,
                           "lastPx": 49_000.0, "execType": "Trade", "leavesQty": 0,
                           "orderQty": 100, "transactTime": "2023-11-14T22:13:30.000Z"})


def fleet(clock: ManualClock, backend: MemoryBackend) -> Fleet:
    return Fleet(FleetConfig(), clock=clock, backend=backend)


async def member(tmp_path: Path, venue: Account, clock: ManualClock, share: Fleet,
                 prefix: str, *, seed: int) -> OrderManager:
    (tmp_path / prefix).mkdir()
    base = config()
    cfg: OrderManagerConfig = replace(
        base, cl_ord_prefix=prefix, own_prefix_only=True,
        reconcile=replace(base.reconcile, check_position=False, sweep_interval_s=SWEEP_S))
    manager = OrderManager(BitmexAdapter(venue), Journal.open(tmp_path / prefix / "j.db"),
                           symbols=("XBTUSD",), events=EventLog(), clock=clock,
                           rng=random.Random(seed), config=cfg)
    manager.share_sweeps(share, SHARE)
    await manager.start()
    return manager


async def two(tmp_path: Path) -> tuple[Account, ManualClock, OrderManager, OrderManager]:
    venue, clock = Account(), ManualClock()
    backend = MemoryBackend(clock)
    a = await member(tmp_path, venue, clock, fleet(clock, backend), "vgaaaaaa", seed=1)
    b = await member(tmp_path, venue, clock, fleet(clock, backend), "vgbbbbbb", seed=2)
    return venue, clock, a, b


async def test_one_read_answers_both_sweeps_and_each_keeps_its_own_orders(
        tmp_path: Path) -> None:
    venue, clock, a, b = await two(tmp_path)
    # b started at the moment of a's first question: a's answer serves b's start too
    assert (venue.open_reads, venue.exec_reads) == (1, 1)
    assert b.sweeps is not None and b.sweeps.taken == 1
    oa = await a.submit(INTENT)
    ob = await b.submit(INTENT)
    venue.fill(ob.cl_ord_id, "e-b-1")                  # a fill b's websocket missed
    clock.advance(SWEEP_S + 0.1)
    await a.step()                                     # a's sweep: reads and publishes
    assert (venue.open_reads, venue.exec_reads) == (2, 2)
    assert a.sweeps is not None and a.sweeps.read == 2
    clock.advance(2.0)
    await b.step()                                     # b's sweep: a's answer, 2 s old
    assert (venue.open_reads, venue.exec_reads) == (2, 2)
    assert b.sweeps.taken == 2
    assert b.table.orders[ob.cl_ord_id].state is S.FILLED     # from the shared executions
    assert oa.cl_ord_id not in b.table.orders and ob.cl_ord_id not in a.table.orders
    assert a.venue_open == 1 and b.venue_open == 0
    assert a.table.orders[oa.cl_ord_id].state is S.NEW


async def test_an_answer_older_than_the_bound_is_not_taken(tmp_path: Path) -> None:
    venue, clock, a, b = await two(tmp_path)
    clock.advance(SWEEP_S + 0.1)
    await a.step()
    clock.advance(SHARE.max_age_s + 0.5)               # b's sweep due, a's answer too old
    await b.step()
    assert b.sweeps is not None and b.sweeps.taken == 1 and b.sweeps.read == 1
    assert venue.open_reads == 3


async def test_a_row_asked_before_the_members_cancel_is_not_evidence(tmp_path: Path) -> None:
    """b cancels after a's question, and the cancel's answer is lost (PENDING_CANCEL): the
    shared row still shows the order open, but it was asked before the cancel, so b does not
    take it for a cancel the venue did not get (no resend on it); its own lookup settles it."""
    _venue, clock, a, b = await two(tmp_path)
    ob = await b.submit(INTENT)
    clock.advance(SWEEP_S + 0.1)
    await a.step()                                     # the answer shows ob open
    clock.advance(0.5)
    b.table.on_cancel_requested(ob.cl_ord_id, clock.monotonic())   # sent, answer lost
    b.drain()
    clock.advance(6.0)                                 # past query_interval_s
    sweep = b.sweeps
    assert sweep is not None
    await sweep.sweep(None, None)
    assert sweep.taken == 2                            # its start, and this
    decisions = b.reconciler.poll(clock.monotonic(), clock.wall_ms())
    assert not any(isinstance(d, ResendCancel) for d in decisions)
    assert any(isinstance(d, QueryOrders) and ob.cl_ord_id in d.cl_ord_ids for d in decisions)
    assert b.table.orders[ob.cl_ord_id].state is S.PENDING_CANCEL


async def test_an_order_missing_from_an_answer_asked_before_its_ack_is_not_suspected(
        tmp_path: Path) -> None:
    venue, clock, a, b = await two(tmp_path)
    clock.advance(SWEEP_S + 0.1)
    await a.step()                                     # asked before b's order
    clock.advance(0.5)
    ob = await b.submit(INTENT)
    clock.advance(SHARE.max_age_s - 1.0)               # 9 s later: the answer is 9.5 s old
    await b.step()
    assert b.sweeps is not None and b.sweeps.taken == 2      # its start, and this
    for _ in range(3):
        clock.advance(2.0)
        await b.step()
    assert venue.by_id_reads == 0                       # never suspected
    assert b.table.orders[ob.cl_ord_id].state is S.NEW


async def test_a_member_postpones_while_another_reads_then_asks_itself(
        tmp_path: Path) -> None:
    venue, clock, a, b = await two(tmp_path)
    assert a.sweeps is not None and b.sweeps is not None
    clock.advance(SWEEP_S + 0.1)
    assert await a.sweeps.share.claim_read(SWEEP, 20.0)   # a's read is waiting its turn
    reads = venue.open_reads
    await b.step()
    assert b.sweeps.postponed == 1 and venue.open_reads == reads     # nothing asked
    for _ in range(int(SHARE.max_wait_s / SHARE.postpone_s) + 2):
        clock.advance(SHARE.postpone_s)
        await b.step()
    assert b.sweeps.postponed == int(SHARE.max_wait_s / SHARE.postpone_s)  # the bound
    assert venue.open_reads == reads + 1 and b.sweeps.read == 1          # then itself


async def test_a_start_never_waits_and_never_takes_an_answer_from_before_it(
        tmp_path: Path) -> None:
    venue, clock = Account(), ManualClock()
    backend = MemoryBackend(clock)
    a = await member(tmp_path, venue, clock, fleet(clock, backend), "vgaaaaaa", seed=1)
    assert a.sweeps is not None and a.sweeps.read == 1        # published at its start
    clock.advance(1.0)                                        # b starts after that question
    b = await member(tmp_path, venue, clock, fleet(clock, backend), "vgbbbbbb", seed=2)
    assert b.sweeps is not None and b.sweeps.taken == 0 and b.sweeps.read == 1
    clock.advance(1.0)
    assert await a.sweeps.share.claim_read(SWEEP, 20.0)       # a read in flight as c starts
    reads = venue.open_reads
    c = await member(tmp_path, venue, clock, fleet(clock, backend), "vgcccccc", seed=3)
    assert c.sweeps is not None and c.sweeps.postponed == 0 and c.sweeps.taken == 0
    assert venue.open_reads == reads + 1 and c.ready          # asked itself at once


async def test_with_the_store_away_each_member_sweeps_alone(tmp_path: Path) -> None:
    venue, clock, a, b = await two(tmp_path)
    assert b.sweeps is not None
    b_fleet = b.sweeps.share
    assert isinstance(b_fleet, Fleet)
    b_fleet._degrade("test: the store is away")
    clock.advance(SWEEP_S + 0.1)
    await a.step()
    clock.advance(1.0)
    reads = venue.open_reads
    await b.step()
    assert venue.open_reads == reads + 1 and b.sweeps.taken == 1 and b.sweeps.read == 0


async def test_the_published_record_reads_back_whole(tmp_path: Path) -> None:
    venue, clock, a, _b = await two(tmp_path)
    oa = await a.submit(INTENT)
    venue.fill(oa.cl_ord_id, "e-a-1")
    clock.advance(SWEEP_S + 0.1)
    await a.step()
    assert a.sweeps is not None
    raw = await a.sweeps.share.shared_read(SWEEP)
    snap = decode(raw)
    assert isinstance(snap, SweepSnapshot)
    assert [r.client_id for r in snap.orders] == []            # filled: no longer open
    assert [f.exec_id for f in snap.fills] == ["e-a-1"]
    assert snap.fills_from_ms is not None and snap.fills_asked_wall_ms == snap.asked_wall_ms
    assert snap.fills_from_ms <= snap.asked_wall_ms - SHARE.fills_lookback_s * 1000


def test_share_config_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        ShareConfig(max_age_s=0)
    with pytest.raises(ValueError):
        ShareConfig(postpone_s=-1)


async def test_a_shared_sweep_needs_own_prefix_only(tmp_path: Path) -> None:
    manager = OrderManager(BitmexAdapter(Account()), Journal.open(tmp_path / "j.db"),
                           symbols=("XBTUSD",), clock=ManualClock(), config=config())
    with pytest.raises(ValueError):
        manager.share_sweeps(fleet(ManualClock(), MemoryBackend()))
    manager.journal.close()
    await asyncio.sleep(0)
