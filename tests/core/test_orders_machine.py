"""Hypothesis state machine: the order table, the reconciler and the journal against a model venue.

Random interleavings of submits (ack, 503, timeouts before/after acceptance, rejects), retries,
venue fills and cancels, our cancels and amends (some ambiguous), websocket rows delivered late
or dropped, REST snapshots with visibility delays, foreign orders, crashes (unsynced transitions
lost) and clean restarts that rebuild the table from the journal. Checked (docs/invariants.md):

* no clOrdID ever reaches the venue twice, and every intent has its own clOrdID;
* UNKNOWN never becomes REJECTED without venue evidence (and nothing REJECTED exists at the venue);
* after convergence: every venue order is known locally with the venue's state, nothing is open
  locally that is not open at the venue, nothing stays UNKNOWN, and positions agree.
"""

from __future__ import annotations

import itertools
import os
import random
import shutil
import tempfile
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from bitmex_rows import cancels, executions, on_order_row, orders, ws_orders
from venueguard.core.orders import (
    OPEN_STATES,
    ClOrdIdGenerator,
    OrderState,
    OrderTable,
    Transition,
)
from venueguard.core.reconcile import (
    Decision,
    FetchExecutions,
    FetchOpenOrders,
    FetchOrderHistory,
    FetchPosition,
    QueryOrders,
    ReconcileConfig,
    Reconciler,
    ResendCancel,
)
from venueguard.io.journal import Journal

S = OrderState
SYMBOL = "XBTUSD"
GRACE_S = 5.0
CFG = ReconcileConfig(visibility_grace_s=GRACE_S, unknown_first_query_s=0.5, query_interval_s=3.0,
                      unknown_window_s=30.0, sweep_interval_s=10.0, position_grace_s=5.0,
                      budget_queries=200, budget_interval_s=10.0, max_ids_per_query=50)
STATUS = {"New": S.NEW, "PartiallyFilled": S.PARTIALLY_FILLED, "Filled": S.FILLED,
          "Canceled": S.CANCELED}
TMP_ROOT = "/dev/shm" if Path("/dev/shm").is_dir() else None


class DuplicateClOrdID(Exception):
    pass


@dataclass
class VOrder:
    cl: str
    order_id: str
    side: str
    qty: int
    visible_at: float
    cum: int = 0
    status: str = "New"


class ModelVenue:
    """Ground truth. GET /order shows an order only ``visible_at`` after it was accepted."""

    def __init__(self) -> None:
        self.orders: dict[str, VOrder] = {}
        self.posts: Counter[str] = Counter()
        self.duplicate_posts = 0
        self.execs: list[dict[str, object]] = []
        self.position = 0
        self._ids = itertools.count(1)

    def row(self, o: VOrder) -> dict[str, object]:
        return {"clOrdID": o.cl if not o.cl.startswith("venue:") else "", "orderID": o.order_id,
                "symbol": SYMBOL, "side": o.side, "orderQty": o.qty, "price": 100.0,
                "ordStatus": o.status, "cumQty": o.cum, "leavesQty": o.qty - o.cum
                if o.status in ("New", "PartiallyFilled") else 0}

    def post(self, cl: str, side: str, qty: int, now: float, delay_s: float,
             accept: bool) -> dict[str, object] | None:
        self.posts[cl] += 1
        if cl in self.orders:
            self.duplicate_posts += 1
            raise DuplicateClOrdID(cl)
        if not accept:
            return None
        order = VOrder(cl, f"oid-{next(self._ids)}", side, qty, now + delay_s)
        self.orders[cl] = order
        return self.row(order)

    def open(self) -> list[VOrder]:
        return [o for o in self.orders.values() if o.status in ("New", "PartiallyFilled")]

    def fill(self, o: VOrder, qty: int, wall_ms: int) -> dict[str, object]:
        o.cum += qty
        o.status = "Filled" if o.cum == o.qty else "PartiallyFilled"
        self.position += qty if o.side == "Buy" else -qty
        row = {**self.row(o), "execType": "Trade", "execID": f"x{next(self._ids)}",
               "lastQty": qty, "lastPx": 100.0, "ts_ms": wall_ms}
        self.execs.append(row)
        return row

    def cancel(self, cl: str) -> dict[str, object]:
        o = self.orders.get(cl)
        if o is None:
            return {"clOrdID": cl, "error": "Unable to cancel order: Not found"}
        if o.status not in ("New", "PartiallyFilled"):
            return {**self.row(o), "error": f"Unable to cancel order due to existing state: "
                                            f"{o.status}"}
        o.status = "Canceled"
        return self.row(o)

    def visible(self, now: float) -> list[VOrder]:
        return [o for o in self.orders.values() if o.visible_at <= now]


class OrdersMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="vg-machine-", dir=TMP_ROOT))
        self.path = self.dir / "journal.db"
        self.venue = ModelVenue()
        self.now = 0.0
        self.ws: deque[tuple[str, list[dict[str, object]]]] = deque()
        self.restarts = 0
        self.intent_ids: list[str] = []
        self.journal = Journal.open(self.path, wall_clock=lambda: 1_700_000_000 + self.now)
        self.table = OrderTable(ClOrdIdGenerator(random.Random(0)))
        self.rec = Reconciler(self.table, CFG, start_wall_ms=self.journal.created_ms,
                              symbols=[SYMBOL])

    def wall_ms(self) -> int:
        return 1_700_000_000_000 + int(self.now * 1000)

    # ------------------------------------------------------------------ client actions
    def send(self, cl: str, outcome: str, delay_s: float) -> None:
        order = self.table.orders[cl]
        self.table.on_submitted(cl, self.now)
        accept = outcome in ("ack", "timeout_accepted")
        try:
            row = self.venue.post(cl, order.side, order.qty, self.now, delay_s, accept) \
                if outcome != "timeout_lost" else None
        except DuplicateClOrdID:
            self.table.on_duplicate(cl, self.now)
            return
        if row is not None:
            self.ws.append(("order", [row]))
        if outcome == "ack":
            assert row is not None
            on_order_row(self.table, row, self.now)
        elif outcome == "overload":
            self.table.on_rejected(cl, "The system is currently overloaded.", not_processed=True,
                                   now=self.now)
        elif outcome == "reject":
            self.table.on_rejected(cl, "Invalid price tickSize", not_processed=False,
                                   now=self.now)
        else:
            self.table.on_ambiguous(cl, outcome, self.now)

    @precondition(lambda self: self.rec.ready)
    @rule(outcome=st.sampled_from(["ack", "ack", "overload", "timeout_accepted", "timeout_lost",
                                   "reject"]),
          side=st.sampled_from(["Buy", "Sell"]), qty=st.integers(1, 5),
          delay_s=st.floats(0.0, GRACE_S - 1.0))
    def submit(self, outcome: str, side: str, qty: int, delay_s: float) -> None:
        order = self.table.new_order(SYMBOL, side, qty, 100.0, now=self.now, wall_ms=self.wall_ms())
        assert order.cl_ord_id not in self.intent_ids
        self.intent_ids.append(order.cl_ord_id)
        self.journal.record_intent(order)            # durable before the request
        self.send(order.cl_ord_id, outcome, delay_s)

    def retryable(self) -> list[str]:
        return sorted(o.cl_ord_id for o in self.table.orders.values()
                      if o.state is S.PENDING_NEW and not o.in_flight and not o.exists_at_venue)

    @precondition(lambda self: bool(self.retryable()))
    @rule(data=st.data(), outcome=st.sampled_from(["ack", "overload", "timeout_accepted"]),
          delay_s=st.floats(0.0, GRACE_S - 1.0))
    def retry_after_503(self, data: st.DataObject, outcome: str, delay_s: float) -> None:
        self.send(data.draw(st.sampled_from(self.retryable())), outcome, delay_s)

    def cancellable(self) -> list[str]:
        return sorted(o.cl_ord_id for o in self.table.orders.values()
                      if o.state in (S.NEW, S.PARTIALLY_FILLED))

    @precondition(lambda self: bool(self.cancellable()))
    @rule(data=st.data(), outcome=st.sampled_from(["answered", "lost_after", "lost_before"]))
    def cancel(self, data: st.DataObject, outcome: str) -> None:
        cl = data.draw(st.sampled_from(self.cancellable()))
        self.table.on_cancel_requested(cl, self.now)
        if outcome == "lost_before":
            self.table.on_ambiguous(cl, "timeout", self.now)
            return
        row = self.venue.cancel(cl)
        if "error" not in row:
            self.ws.append(("order", [row]))
        if outcome == "answered":
            self.rec.on_cancel_reports(cancels([row]), self.now, self.wall_ms(),
                                       asked_at=self.now)
        else:
            self.table.on_ambiguous(cl, "timeout", self.now)

    @precondition(lambda self: bool(self.cancellable()))
    @rule(data=st.data(), extra=st.integers(1, 4),
          outcome=st.sampled_from(["answered", "lost_after", "lost_before", "503"]))
    def amend(self, data: st.DataObject, extra: int, outcome: str) -> None:
        cl = data.draw(st.sampled_from(self.cancellable()))
        order = self.table.orders[cl]
        new_qty = order.cum_qty + extra
        self.table.on_amend_requested(cl, new_qty, None, self.now)
        if outcome == "503":
            self.table.on_amend_rejected(cl, "The system is currently overloaded.", self.now)
            return
        if outcome == "lost_before":
            self.table.on_ambiguous(cl, "timeout", self.now)
            return
        v = self.venue.orders[cl]
        if v.status in ("New", "PartiallyFilled") and new_qty > v.cum:
            v.qty = new_qty
            row = {**self.venue.row(v), "ordStatus": v.status}
            self.ws.append(("order", [row]))
            if outcome == "answered":
                self.table.on_amended(cl, new_qty, None, self.now)
                ws_orders(self.rec, [row], self.now, self.wall_ms())
            else:
                self.table.on_ambiguous(cl, "timeout", self.now)
        elif outcome == "answered":                 # "Invalid ordStatus" or below cumQty
            self.table.on_amend_rejected(cl, "Invalid leavesQty", self.now)
        else:
            self.table.on_ambiguous(cl, "timeout", self.now)

    # ------------------------------------------------------------------- venue actions
    @precondition(lambda self: bool(self.venue.open()))
    @rule(data=st.data(), part=st.floats(0.0, 1.0))
    def venue_fill(self, data: st.DataObject, part: float) -> None:
        o = data.draw(st.sampled_from(sorted(self.venue.open(), key=lambda v: v.order_id)))
        row = self.venue.fill(o, max(1, round((o.qty - o.cum) * part)), self.wall_ms())
        self.ws.append(("exec", [row]))
        self.ws.append(("order", [self.venue.row(o)]))

    @precondition(lambda self: bool(self.venue.open()))
    @rule(data=st.data())
    def venue_cancels(self, data: st.DataObject) -> None:   # e.g. the dead man's switch fired
        o = data.draw(st.sampled_from(sorted(self.venue.open(), key=lambda v: v.order_id)))
        self.ws.append(("order", [self.venue.cancel(o.cl)]))

    @rule(qty=st.integers(1, 3))
    def foreign_order(self, qty: int) -> None:      # placed by hand on the venue's website
        oid = f"foreign-{len(self.venue.orders)}"
        self.venue.orders["venue:" + oid] = VOrder("venue:" + oid, oid, "Sell", qty, self.now)

    @precondition(lambda self: bool(self.ws))
    @rule(drop=st.booleans())
    def deliver_ws(self, drop: bool) -> None:
        table, rows = self.ws.popleft()
        if drop:
            return                                     # lost with a dropped connection
        if table == "order":
            ws_orders(self.rec, rows, self.now, self.wall_ms())
        else:
            executions(self.rec, rows, self.now, self.wall_ms())

    # ------------------------------------------------------------- time and restarts
    @rule(dt=st.floats(0.1, 20.0))
    def tick(self, dt: float) -> None:
        self.now += dt
        self.reconcile_step()

    @rule()
    def flush(self) -> None:
        self.sync()

    @rule(crash=st.booleans())
    def restart(self, crash: bool) -> None:
        if crash:
            self.check(self.table.take_transitions())   # lost: never reached the journal
        else:
            self.sync()
        self.journal.close()
        self.ws.clear()                                   # the connection went with the process
        self.restarts += 1
        self.journal = Journal.open(self.path, wall_clock=lambda: 1_700_000_000 + self.now)
        self.table = self.journal.load_table(
            ClOrdIdGenerator(random.Random(self.restarts)), self.now)
        saved = dict(self.journal.meta_items("exec_watermark_ms"))
        self.rec = Reconciler(self.table, CFG, start_wall_ms=self.journal.created_ms,
                              exec_since_ms=int(saved.get("exec_watermark_ms",
                                                          self.journal.created_ms)),
                              symbols=[SYMBOL])
        self.rec.start(self.now)

    def reconcile_step(self) -> None:
        for decision in self.rec.poll(self.now, self.wall_ms()):
            self.execute(decision)
        self.sync()

    def execute(self, d: Decision) -> None:
        now, wall = self.now, self.wall_ms()
        visible = self.venue.visible(now)
        if isinstance(d, QueryOrders):
            rows = [self.venue.row(o) for o in visible if o.cl in d.cl_ord_ids]
            self.rec.on_order_lookup(d.cl_ord_ids, orders(rows), now, wall, asked_at=now)
        elif isinstance(d, FetchOpenOrders):
            rows = [self.venue.row(o) for o in visible if o.status in ("New", "PartiallyFilled")]
            self.rec.on_open_orders(orders(rows), now, wall, asked_at=now)
        elif isinstance(d, FetchOrderHistory):
            rows = [self.venue.row(o) for o in visible]
            self.rec.on_order_history(orders(rows), now, wall, start_wall_ms=d.start_wall_ms,
                                      complete=True, asked_at=now)
        elif isinstance(d, FetchExecutions):
            rows = [e for e in self.venue.execs if int(str(e["ts_ms"])) >= d.start_wall_ms]
            executions(self.rec, rows, now, wall)
        elif isinstance(d, FetchPosition):
            self.rec.on_position(d.symbol, self.venue.position, now)
        elif isinstance(d, ResendCancel):
            if self.table.orders[d.cl_ord_id].state is not S.PENDING_CANCEL:
                return                      # settled meanwhile by another answer of this poll
            self.table.on_cancel_requested(d.cl_ord_id, now)
            self.rec.on_cancel_reports(cancels([self.venue.cancel(d.cl_ord_id)]), now, wall,
                                       asked_at=now)

    def sync(self) -> None:
        transitions = self.table.take_transitions()
        self.check(transitions)
        self.journal.append_transitions((t, self.table.orders[t.cl_ord_id]) for t in transitions)
        self.journal.set_meta("exec_watermark_ms", str(self.rec.exec_watermark_ms))

    def check(self, transitions: list[Transition]) -> None:
        """UNKNOWN -> REJECTED only on venue evidence, and only for what the venue never had."""
        for t in transitions:
            if t.from_state is S.UNKNOWN and t.to_state is S.REJECTED:
                assert t.kind in ("absent_definitive", "venue_rejected"), t
                assert t.cl_ord_id not in self.venue.orders, t

    # -------------------------------------------------------------------- invariants
    @invariant()
    def no_clordid_twice_at_the_venue(self) -> None:
        assert self.venue.duplicate_posts == 0
        assert len(set(self.intent_ids)) == len(self.intent_ids)

    @invariant()
    def rejected_orders_never_exist_at_the_venue(self) -> None:
        for order in self.table.orders.values():
            if order.state is S.REJECTED:
                assert order.cl_ord_id not in self.venue.orders, order

    @invariant()
    def local_executions_are_real(self) -> None:
        real = {str(e["execID"]) for e in self.venue.execs}
        for order in self.table.orders.values():
            assert order.exec_ids <= real

    def teardown(self) -> None:
        try:
            self.converge()
        finally:
            self.journal.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def converge(self) -> None:
        """Faults end: the feed is delivered and time passes; the reconciler does the rest."""
        while self.ws:
            self.deliver_ws(drop=False)
        end = self.now + 3 * CFG.unknown_window_s
        while self.now < end:
            self.now += 1.0
            self.reconcile_step()
        for v in self.venue.orders.values():
            row = self.venue.row(v)
            local = self.table.find(str(row["clOrdID"]) or None, str(row["orderID"]))
            if local is None and v.cl.startswith("venue:") and v.cum == 0 and v not in \
                    self.venue.open():
                continue              # someone else's order, closed unfilled before we saw it
            assert local is not None, f"venue order {v.cl} unknown locally"
            assert local.state is STATUS[v.status], (local, v)
            assert local.cum_qty == v.cum, (local, v)
            if v.status in ("New", "PartiallyFilled"):
                assert local.qty == v.qty, (local, v)
        local_open = {o.cl_ord_id for o in self.table.orders.values() if o.state in OPEN_STATES}
        assert local_open == {v.cl for v in self.venue.open()}
        assert not [o for o in self.table.orders.values() if o.state is S.UNKNOWN]
        assert self.table.position(SYMBOL) == self.venue.position


# VENUEGUARD_MACHINE_EXAMPLES=2000 runs a deeper search (the default keeps the suite fast).
OrdersMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("VENUEGUARD_MACHINE_EXAMPLES", "100")),
    stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestOrdersMachine = OrdersMachine.TestCase
