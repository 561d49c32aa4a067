"""A sweep's shared answer as data: when a member may take it, what its executions cover,
which rows are still evidence, and its record (a record that is not one whole is refused);
and the reconciler's side: a postponed sweep and a sweep answered earlier than it was polled."""

from __future__ import annotations

import json
import random

import pytest

from venueguard.core.orders import ClOrdIdGenerator, OrderTable
from venueguard.core.reconcile import (
    FetchExecutions,
    FetchOpenOrders,
    ReconcileConfig,
    Reconciler,
)
from venueguard.core.reports import FillReport, OrderReport, OrderStatus
from venueguard.core.shared_reads import (
    ShareConfig,
    SweepSnapshot,
    covers,
    decode,
    encode,
    still_evidence,
    usable,
)

ROW = OrderReport("vgaaaaaa-1-00000001", "oid-1", OrderStatus.NEW, "XBTUSD", "Buy", 100.0,
                  49_000.0, 0.0, 100.0, None, 1_700_000_000_000, None)
FILL = FillReport("e-1", "vgaaaaaa-1-00000001", "oid-1", 100.0, 49_000.0, "XBTUSD", "Buy",
                  0.0, 0.01, "XBt", "maker", 1_700_000_000_000, 100.0)
SNAP = SweepSnapshot(None, 1_000_000, 1_004_000, (ROW,), 900_000, 1_000_500, (FILL,))
CFG = ShareConfig(max_age_s=10.0)


def test_usable_within_the_bound_from_its_answer_for_the_symbol_and_after_a_start() -> None:
    # asked at 1_000_000, answered at 1_004_000 (the read waited its turn 4 s)
    assert usable(SNAP, symbol=None, now_wall_ms=1_014_000, config=CFG)
    assert not usable(SNAP, symbol=None, now_wall_ms=1_014_001, config=CFG)      # too old
    assert not usable(SNAP, symbol="XBTUSD", now_wall_ms=1_005_000, config=CFG)  # symbol
    assert not usable(SNAP, symbol=None, now_wall_ms=1_003_999, config=CFG)      # ahead
    assert usable(SNAP, symbol=None, now_wall_ms=1_005_000, config=CFG,
                  not_before_wall_ms=1_000_000)
    assert not usable(SNAP, symbol=None, now_wall_ms=1_005_000, config=CFG,
                      not_before_wall_ms=1_000_001)              # asked before the start
    backwards = SweepSnapshot(None, 1_004_001, 1_004_000, ())
    assert not usable(backwards, symbol=None, now_wall_ms=1_005_000, config=CFG)


def test_executions_cover_only_from_their_start_and_rows_only_before_a_change() -> None:
    assert covers(SNAP, 900_000) and covers(SNAP, 950_000)
    assert not covers(SNAP, 899_999)
    assert not covers(SweepSnapshot(None, 1_000_000, 1_000_000, (ROW,)), 950_000)  # none
    assert still_evidence(10.0, 10.0) and still_evidence(9.0, 10.0)
    assert not still_evidence(10.5, 10.0)


def test_the_record_reads_back_and_anything_else_is_refused() -> None:
    assert decode(encode(SNAP)) == SNAP
    assert decode(encode(SweepSnapshot("XBTUSD", 5, 6, ()))) == SweepSnapshot("XBTUSD", 5, 6, ())
    doc = json.loads(encode(SNAP))
    assert decode(None) is None and decode(b"not json") is None and decode(b"[]") is None
    for broken in (
        {**doc, "asked_wall_ms": 1.5},
        {**doc, "answered_wall_ms": None},
        {**doc, "symbol": 3},
        {**doc, "fills_from_ms": "x"},
        {**doc, "orders": [{**doc["orders"][0], "qty": "100"}]},
        {**doc, "orders": [{**doc["orders"][0], "status": "nonsense"}]},
        {**doc, "orders": [{k: v for k, v in doc["orders"][0].items() if k != "price"}]},
        {**doc, "fills": [{**doc["fills"][0], "exec_id": None}]},
        {**doc, "fills": [{**doc["fills"][0], "ts_venue_ms": 1.5}]},
        {k: v for k, v in doc.items() if k != "fills"},
    ):
        assert decode(json.dumps(broken)) is None
    with pytest.raises(ValueError):
        ShareConfig(fills_lookback_s=-1)
    with pytest.raises(ValueError):
        ShareConfig(max_wait_s=-1)


def _reconciler() -> Reconciler:
    cfg = ReconcileConfig(sweep_interval_s=30.0, budget_queries=4, check_position=False)
    rec = Reconciler(OrderTable(ClOrdIdGenerator(random.Random(1), prefix="vg")), cfg,
                     start_wall_ms=1_000_000, symbols=("XBTUSD",))
    rec.start(100.0)
    return rec


def test_a_postponed_sweep_is_due_again_later_and_costs_no_budget() -> None:
    rec = _reconciler()
    first = rec.poll(100.0, 1_000_000)
    assert FetchOpenOrders(None) in first
    assert any(isinstance(d, FetchExecutions) and d.sweep for d in first)
    due = 130.0
    polled = rec.poll(due, 1_030_000)
    assert FetchOpenOrders(None) in polled
    rec.postpone_sweep(due, 1.0)
    assert rec.next_deadline() == pytest.approx(due + 1.0)
    assert rec.poll(due + 0.5, 1_030_500) == []
    for k in range(3):                 # postponed again and again: the budget (4) holds
        t = due + 1.0 + k
        assert FetchOpenOrders(None) in rec.poll(t, 1_031_000 + k * 1000)
        rec.postpone_sweep(t, 1.0)
    again = rec.poll(due + 4.0, 1_034_000)
    assert FetchOpenOrders(None) in again
    execs = [d for d in again if isinstance(d, FetchExecutions)]
    # the watermark did not move while the sweep was postponed: the executions reach back
    # to the previous sweep (at 1_000_000) less the margin
    assert execs and execs[0].sweep and execs[0].start_wall_ms == 1_000_000 - 5_000


def test_a_sweep_answered_before_its_poll_moves_the_watermark_back() -> None:
    rec = _reconciler()
    rec.poll(100.0, 1_000_000)
    rec.poll(130.0, 1_030_000)
    rec.sweep_asked_at(1_022_000)          # a member's answer, asked 8 s earlier
    assert rec.exec_watermark_ms == 1_022_000
    rec.sweep_asked_at(1_040_000)          # never forward
    assert rec.exec_watermark_ms == 1_022_000
