"""The order manager: the asyncio side of order-state integrity.

It owns one :class:`~venueguard.core.orders.OrderTable` and one
:class:`~venueguard.core.reconcile.Reconciler`, writes every intent and every transition to the
:class:`~venueguard.io.journal.Journal`, and talks to the venue through a REST session
(:class:`~venueguard.io.http_session.RestSession` or anything shaped like :class:`OrderRest`).

Call order::

    manager = OrderManager(rest, journal, symbols=("XBTUSD",), events=..., metrics=...)
    await manager.start()          # journal -> table; every unfinished intent is looked up by
                                   # clOrdID, open orders and recent executions are fetched;
                                   # returns once reconciled (``ready``) or after start_timeout_s
    run manager.run() in a task    # lookups, sweeps, journal writes, until stop()
    order = await manager.submit(OrderIntent("XBTUSD", "Buy", 100, 50_000.0))
    await manager.amend(order.cl_ord_id, price=50_100.0)   # and/or qty= (the new orderQty)
    await manager.cancel(order.cl_ord_id)
    manager.on_rows(table, action, rows)   # websocket order / execution / position rows
    manager.stop(); await the run task

What ``submit`` guarantees:

1. the intent is committed (fsync) to the journal BEFORE the request leaves (``order.intent``);
2. it is sent once with the clOrdID generated for it (``order.sent``); the REST session retries a
   503 (not processed) with the SAME clOrdID within its budget;
3. the outcome goes through the table: 200 -> ``order.acked``; a definite refusal, or a failure
   that proves nothing was processed -> REJECTED (``order.rejected``); a timeout, 502, 504 or a
   connection lost after the send -> UNKNOWN (``order.unknown``). An UNKNOWN order is never sent
   again: only venue evidence (the lookup by clOrdID, the websocket rows, the open orders, the
   order history) resolves it, through the reconciler.

What ``amend`` guarantees (PUT /order by ``origClOrdID``; the order keeps its clOrdID):

1. PENDING_AMEND with the requested values is committed to the journal BEFORE the request leaves
   (``order.amend_sent`` once it does);
2. a 503 is retried by the REST session within its budget; a final overload, or any failure that
   proves nothing was processed, is ``amend_rejected``: the order rests as it was;
3. a definite refusal is ``amend_rejected``; when the venue names the order's state
   (``Invalid ordStatus: Filled``) that state is applied too, and the reconciler fetches what the
   order did (its executions);
4. an ambiguous outcome (timeout, 502, 504, connection lost) is NEVER resent: the order stays
   PENDING_AMEND (``order.amend_unknown``) until venue evidence settles its price and quantity: a
   row showing the requested values (websocket or lookup) settles it as amended at once; the
   reconciler's lookup by clOrdID settles it with whatever the venue shows otherwise.

Nothing is sent before ``start`` has reconciled, nor while ``refusal()`` (set by the runtime's
safe mode) gives a reason: ``submit`` and ``amend`` then raise :class:`OrdersBlocked` and log
``order.refused``. Cancels are never refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from venueguard.core import orders as o
from venueguard.core.orders import (
    OPEN_STATES,
    ClOrdIdGenerator,
    Order,
    OrderState,
    OrderTable,
    RandomLike,
    Transition,
)
from venueguard.core.reconcile import (
    Alert,
    Decision,
    FetchExecutions,
    FetchOpenOrders,
    FetchOrderHistory,
    FetchPosition,
    Mismatch,
    QueryOrders,
    ReconcileConfig,
    Reconciler,
    Resolved,
)
from venueguard.io import errors
from venueguard.io.clock import SYSTEM_CLOCK, Clock
from venueguard.io.journal import Journal
from venueguard.io.order_queries import (
    amend_reject_status,
    history_pages,
    usable_executions,
    venue_qty,
)
from venueguard.io.order_reports import OrderReports
from venueguard.telemetry.alerts import Alerts
from venueguard.telemetry.events import EventLog
from venueguard.telemetry.metrics import Metrics

__all__ = ["NotReady", "OrderIntent", "OrderManager", "OrderManagerConfig", "OrderRest",
           "OrdersBlocked"]

Row = dict[str, Any]
S = OrderState
#: Failure kinds after which the venue certainly did not process the request.
NOT_PROCESSED_KINDS = frozenset({"overloaded", "rate_limited", "transient_network", "dns",
                                 "edge_protection", "forbidden", "software_banned", "ip_banned",
                                 "cooldown", "blocked", "throttled"})
_NOT_SENT = (errors.Overloaded, errors.RateLimited, errors.CoolingDown, errors.Blocked,
             errors.Throttled, errors.TransportError, errors.AuthError)


class OrdersBlocked(Exception):
    """``submit`` or ``amend`` refused: nothing was journaled or sent (safe mode, stopping, not
    reconciled)."""


class NotReady(OrdersBlocked):
    """The journal has not been reconciled with the venue yet."""


class OrderRest(Protocol):
    """The REST calls the manager makes (``RestSession`` has them)."""

    async def place_order(self, symbol: str, side: str, order_qty: float,
                          price: float | None = None, *, cl_ord_id: str | None = None,
                          ord_type: str | None = None, time_in_force: str | None = None,
                          exec_inst: str | None = None, text: str | None = None,
                          **extra: Any) -> dict[str, Any]: ...

    async def amend_order(self, *, order_id: str | None = None,
                          orig_cl_ord_id: str | None = None, cl_ord_id: str | None = None,
                          order_qty: float | None = None, leaves_qty: float | None = None,
                          price: float | None = None,
                          text: str | None = None) -> dict[str, Any]: ...

    async def cancel_orders(self, order_ids: Sequence[str] = (), cl_ord_ids: Sequence[str] = (),
                            text: str | None = None) -> list[dict[str, Any]]: ...

    async def cancel_all(self, symbol: str | None = None, filter: Mapping[str, Any] | None = None,
                         text: str | None = None) -> list[dict[str, Any]]: ...

    async def get_orders(self, symbol: str | None = None, filter: Mapping[str, Any] | None = None,
                         count: int = 100, reverse: bool = False) -> list[dict[str, Any]]: ...

    async def get_positions(self) -> list[dict[str, Any]]: ...

    async def request(self, verb: str, path: str, *, query: Mapping[str, Any] | None = None,
                      body: Mapping[str, Any] | None = None, idempotent: bool | None = None,
                      cl_ord_id: str | None = None, endpoint: str | None = None) -> Any: ...


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """What a strategy wants: a limit order (post-only by default)."""

    symbol: str
    side: str                      # Buy | Sell
    qty: int
    price: float
    post_only: bool = True
    text: str | None = None


@dataclass(frozen=True, slots=True)
class OrderManagerConfig:
    reconcile: ReconcileConfig = field(default_factory=ReconcileConfig)
    cl_ord_prefix: str = "vg"
    #: Rows whose clOrdID starts with one of these belong to someone else (the health probe).
    ignore_prefixes: tuple[str, ...] = ("vgprobe-",)
    #: Several processes on one account (a fleet): rows of clOrdIDs not made here (without
    #: ``<cl_ord_prefix>-``) are another member's and are ignored too.
    own_prefix_only: bool = False
    start_timeout_s: float = 30.0
    page_count: int = 50           # rows per page of order and execution history
    max_pages: int = 100
    idle_wake_s: float = 1.0       # the loop wakes at least this often


class OrderManager:
    """See the module docstring. One per account; not thread-safe (one event loop)."""

    def __init__(self, rest: OrderRest, journal: Journal, *, symbols: Sequence[str],
                 events: EventLog | None = None, metrics: Metrics | None = None,
                 alerts: Alerts | None = None, clock: Clock = SYSTEM_CLOCK,
                 rng: RandomLike | None = None, config: OrderManagerConfig | None = None,
                 refusal: Callable[[], str | None] | None = None) -> None:
        self.rest = rest
        self.journal = journal
        self.symbols = tuple(symbols)
        self.events = events if events is not None else EventLog()
        self.metrics = metrics
        self.alerts = alerts
        self.clock = clock
        self.config = config or OrderManagerConfig()
        self.refusal: Callable[[], str | None] = refusal or (lambda: None)
        self._rng: RandomLike = rng if rng is not None else random.Random()
        self.table = OrderTable(ClOrdIdGenerator(self._rng, prefix=self.config.cl_ord_prefix))
        self.reconciler = Reconciler(self.table, self.config.reconcile,
                                     start_wall_ms=clock.wall_ms(), symbols=self.symbols)
        self._pending: list[tuple[Transition, Order]] = []
        #: Amends not settled yet: clOrdID -> requested (qty, price).
        self._amends: dict[str, tuple[int | None, float | None]] = {}
        self._write_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()
        self._stopping = False
        self._started = False
        self.reports = OrderReports(self.events, metrics)
        self.venue_open: int | None = None
        self.submitted_total = 0
        self._baselines_done = False
        self.ws_rows: dict[str, int] = {}          # private websocket rows seen, by table

    # ------------------------------------------------------------------------------ state
    @property
    def ready(self) -> bool:
        """True once every intent found unfinished in the journal has venue evidence."""
        return self._ready.is_set()

    async def wait_ready(self, timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            await self._ready.wait()

    def open_orders(self) -> list[Order]:
        return self.table.in_states(OPEN_STATES)

    def unknown_orders(self) -> list[Order]:
        return self.table.in_states(frozenset({S.UNKNOWN}))

    def resting_count(self) -> int:
        """Orders that rest, or may: open, UNKNOWN, and PENDING_NEW (a request in flight)."""
        return len(self.table.in_states(OPEN_STATES | {S.UNKNOWN, S.PENDING_NEW}))

    def position(self, symbol: str) -> int:
        return self.table.position(symbol)

    # ------------------------------------------------------------------------------ start
    async def start(self) -> None:
        """Load the journal and reconcile it with the venue before anything new is sent.

        Returns when reconciled or after ``start_timeout_s`` (``ready`` stays False until the
        venue answers; ``run`` keeps trying). Call once, before ``run``.
        """
        if self._started:
            raise RuntimeError("OrderManager.start called twice")
        self._started = True
        now = self.clock.monotonic()
        self.table = await asyncio.to_thread(self._load_table, now)
        self.reconciler = Reconciler(self.table, self.config.reconcile,
                                     start_wall_ms=self.clock.wall_ms(), symbols=self.symbols)
        self.reports.acked = {cl for cl, o in self.table.orders.items() if o.exists_at_venue}
        self.reconciler.start(now)
        self._drain()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.config.start_timeout_s):
                for attempt in itertools.count():
                    if await self._set_baselines():
                        break
                    await asyncio.sleep(min(2.0, 0.25 * 2 ** attempt))
                with contextlib.suppress(errors.VenueError):
                    await self._fetch_executions(self._earliest_unfinished_ms())
                await self.step()
                while not self._check_ready():
                    await self._sleep_until_due(0.2)
                    await self.step()
        await self.flush()

    def _load_table(self, now: float) -> OrderTable:
        """The journal's orders, with a clOrdID generator whose session token no journaled id
        uses (a restarted process must never reuse a clOrdID, whatever its RNG)."""
        while True:
            ids = ClOrdIdGenerator(self._rng, prefix=self.config.cl_ord_prefix)
            token = ids.next().rsplit("-", 1)[0]
            table = self.journal.load_table(ids, now)
            if not any(cl.rsplit("-", 1)[0] == token for cl in table.orders):
                return table

    async def _set_baselines(self) -> bool:
        """Remember the position held before our first journaled order (once per symbol);
        False when the venue could not be asked."""
        known = {k.split(":", 1)[1] for k, _ in self.journal.meta_items("position_baseline:")}
        missing = [s for s in self.symbols if s not in known
                   and not any(order.symbol == s for order in self.table.orders.values())]
        if not missing:
            self._baselines_done = True
            return True
        try:
            rows = await self.rest.get_positions()
        except errors.VenueError:
            return False
        for symbol in missing:
            qty = venue_qty(rows, symbol)
            await asyncio.to_thread(self.journal.set_meta, f"position_baseline:{symbol}", str(qty))
            self.table.set_position_baseline(symbol, qty)
        self._baselines_done = True
        return True

    def _earliest_unfinished_ms(self) -> int | None:
        stamps = [order.created_wall_ms for order in self.table.in_states(o.UNFINISHED_STATES)]
        return min(stamps) - self.config.reconcile.history_margin_ms if stamps else None

    def _check_ready(self) -> bool:
        if self.reconciler.ready and not self._ready.is_set():
            self._ready.set()
            self.events.emit("reconcile.resolved", kind="startup", cl_ord_id=None,
                             detail=f"{len(self.table.orders)} journaled orders reconciled")
        return self._ready.is_set()

    # ------------------------------------------------------------------------------- loop
    async def run(self) -> None:
        """Lookups, sweeps and journal writes until ``stop``. Run it in a TaskGroup."""
        try:
            while not self._stopping:
                if not self._baselines_done:
                    await self._set_baselines()
                await self.step()
                self._check_ready()
                await self._sleep_until_due(self.config.idle_wake_s)
        finally:
            await asyncio.shield(self.flush())

    def stop(self) -> None:
        """Ask ``run`` to return after its current step; ``submit`` refuses from now on."""
        self._stopping = True
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    async def _sleep_until_due(self, cap_s: float) -> None:
        deadline = self.reconciler.next_deadline()
        delay = cap_s if deadline is None else min(cap_s, deadline - self.clock.monotonic())
        if delay <= 0:
            await asyncio.sleep(0)
            return
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._wake.wait()

    async def step(self) -> None:
        """One round of the loop: execute the reconciler's decisions, write the journal."""
        now, wall_ms = self.clock.monotonic(), self.clock.wall_ms()
        for decision in self.reconciler.poll(now, wall_ms):
            await self._execute(decision)
        self._drain()
        await self.flush()

    async def _execute(self, decision: Decision) -> None:
        match decision:
            case Mismatch(kind=kind, cl_ord_id=cl, detail=detail):
                self.events.emit("reconcile.mismatch", kind=kind, cl_ord_id=cl, detail=detail)
                if self.metrics is not None:
                    self.metrics.reconcile_mismatches_total.labels(kind=kind).inc()
            case Resolved(kind=kind, cl_ord_id=cl, detail=detail):
                self.events.emit("reconcile.resolved", kind=kind, cl_ord_id=cl, detail=detail)
            case Alert(tier=tier, message=message):
                self.alert(tier, message, key=f"reconcile:{message[:60]}")
            case _:
                try:
                    await self._lookup(decision)
                except errors.VenueError:
                    pass                                  # asked again after an interval
                except o.OrderError as exc:               # a venue row the table cannot use
                    self.events.emit("reconcile.bad_row", source=type(decision).__name__,
                                     error=str(exc)[:200])

    async def _lookup(self, decision: Decision) -> None:
        rec, clock = self.reconciler, self.clock
        asked = clock.monotonic()
        match decision:
            case QueryOrders(cl_ord_ids=ids):
                rows = await self.rest.get_orders(filter={"clOrdID": list(ids)},
                                                  count=max(100, len(ids)))
                rec.on_order_lookup(ids, self._ours(rows), clock.monotonic(), clock.wall_ms(),
                                    asked_at=asked)
            case FetchOpenOrders(symbol=symbol):
                rows = self._ours(await self.rest.get_orders(symbol, {"open": True},
                                                             count=500))
                self.venue_open = len(rows)
                rec.on_open_orders(rows, clock.monotonic(), clock.wall_ms(), asked_at=asked,
                                   symbol=symbol)
            case FetchOrderHistory(symbol=symbol, start_wall_ms=start_ms):
                rows, complete = await history_pages(
                    self.rest, "/order", symbol, start_ms, page_count=self.config.page_count,
                    max_pages=self.config.max_pages)
                rec.on_order_history(self._ours(rows), clock.monotonic(), clock.wall_ms(),
                                     start_wall_ms=start_ms, complete=complete, asked_at=asked)
            case FetchExecutions(start_wall_ms=start_ms):
                await self._fetch_executions(start_ms)
            case FetchPosition(symbol=symbol):
                qty = venue_qty(await self.rest.get_positions(), symbol)
                rec.on_position(symbol, qty, clock.monotonic())
        self._drain()

    async def _fetch_executions(self, start_ms: int | None) -> None:
        if start_ms is None:
            return
        rows, _ = await history_pages(self.rest, "/execution/tradeHistory", None, start_ms,
                                      page_count=self.config.page_count,
                                      max_pages=self.config.max_pages)
        trades = self._executions([r for r in self._ours(rows) if r.get("execType") == "Trade"])
        self.reconciler.on_execution_rows(trades, self.clock.monotonic(), self.clock.wall_ms())
        self._drain()

    def _executions(self, rows: Sequence[Row]) -> list[Row]:
        """Execution rows the table can apply; the others are reported and skipped."""
        good, bad = usable_executions(rows)
        for row in bad:
            self.events.emit("reconcile.bad_row", source="execution",
                             error="trade without execID, lastQty or lastPx",
                             exec_id=str(row.get("execID"))[:64])
        return good

    def _ours(self, rows: Sequence[Row]) -> list[Row]:
        prefixes = self.config.ignore_prefixes
        rows = [r for r in rows if isinstance(r, dict) and not (
            isinstance(cl := r.get("clOrdID"), str) and cl and cl.startswith(prefixes))]
        if self.config.own_prefix_only:
            mine = self.config.cl_ord_prefix + "-"
            rows = [r for r in rows if str(r.get("clOrdID") or "").startswith(mine)]
        return rows

    # ------------------------------------------------------------------------- websocket
    def on_rows(self, table: str, action: str, rows: Sequence[Row]) -> None:
        """Private websocket rows (``order``, ``execution``, ``position``); others are ignored.
        A ``partial`` of the order table is the venue's complete list of open orders. Rows the
        table cannot use are reported (``reconcile.bad_row``); nothing here raises."""
        try:
            self._on_rows(table, action, rows)
        except o.OrderError as exc:
            self.events.emit("reconcile.bad_row", source=table, error=str(exc)[:200])
        self._drain()
        self._wake.set()

    def _on_rows(self, table: str, action: str, rows: Sequence[Row]) -> None:
        now, wall_ms, rec = self.clock.monotonic(), self.clock.wall_ms(), self.reconciler
        mine = self._ours(rows)
        self.ws_rows[table] = self.ws_rows.get(table, 0) + len(rows)
        if table == "order":
            if action == "partial":
                self.venue_open = sum(1 for r in mine if r.get("ordStatus") in ("New",
                                                                                 "PartiallyFilled"))
                rec.on_open_orders(mine, now, wall_ms, asked_at=now)
            else:
                rec.on_ws_order_rows(mine, now, wall_ms)
        elif table == "execution":
            rec.on_execution_rows(self._executions(mine), now, wall_ms)
        elif table == "position":
            for row in mine:
                qty, symbol = row.get("currentQty"), row.get("symbol")
                if isinstance(qty, int) and not isinstance(qty, bool) and symbol in self.symbols:
                    rec.on_position(str(symbol), qty, now)

    # ------------------------------------------------------------------------------ orders
    async def submit(self, intent: OrderIntent) -> Order:
        """Journal, send once, and apply the outcome; returns the order (in any state).

        Raises :class:`OrdersBlocked` (nothing journaled or sent) when not ready, stopping, or
        refused by safe mode; ``ValueError`` for a malformed intent.
        """
        self._admit(intent)
        now, table = self.clock.monotonic(), self.table
        order = table.new_order(intent.symbol, intent.side, intent.qty, intent.price,
                                now=now, wall_ms=self.clock.wall_ms())
        cl = order.cl_ord_id
        params = {"post_only": intent.post_only, "text": intent.text}
        try:
            async with self._write_lock:
                await asyncio.to_thread(self.journal.record_intent, order, params)
        except BaseException:
            del table.orders[cl]        # never sent: forget it
            raise
        self.events.emit("order.intent", cl_ord_id=cl, symbol=intent.symbol, side=intent.side,
                         qty=intent.qty, price=intent.price, post_only=intent.post_only)
        table.on_submitted(cl, now)
        self.submitted_total += 1
        self.events.emit("order.sent", cl_ord_id=cl, attempt=order.send_count)
        if self.metrics is not None:
            self.metrics.order_attempts_total.inc()
        try:
            row = await self.rest.place_order(
                intent.symbol, intent.side, intent.qty, intent.price, cl_ord_id=cl,
                ord_type="Limit", exec_inst="ParticipateDoNotInitiate" if intent.post_only
                else None, text=intent.text)
        except asyncio.CancelledError:
            self._outcome_unknown(cl, "cancelled while in flight")
            self._flush_while_unwinding()
            raise
        except BaseException as exc:
            self._on_send_failure(cl, exc)
            await self.flush()
            if not isinstance(exc, errors.VenueError):
                raise
            return order
        now = self.clock.monotonic()
        order_id = row.get("orderID")
        if isinstance(order_id, str) and order_id and row.get("clOrdID") in (cl, None):
            table.on_acked(cl, order_id, now)
            self.reconciler.on_ws_order_rows([row], now, self.clock.wall_ms())
        else:                                     # a 200 that is not this order's row
            self._own(cl, o.Ambiguous("answer without the order's row"))
        self._drain()
        self._wake.set()
        await self.flush()
        return order

    def _admit(self, intent: OrderIntent) -> None:
        if intent.side not in ("Buy", "Sell") or intent.qty <= 0 or not intent.price > 0:
            raise ValueError("an intent needs side Buy|Sell, qty > 0 and price > 0")
        reason = ("stopping" if self._stopping else
                  "not reconciled with the venue yet" if not self.ready else self.refusal())
        if reason is None:
            return
        self.events.emit("order.refused", symbol=intent.symbol, side=intent.side,
                         qty=intent.qty, price=intent.price, reason=reason)
        raise (NotReady if not self.ready else OrdersBlocked)(reason)

    def _on_send_failure(self, cl: str, exc: BaseException) -> None:
        """Map a failed POST /order onto the table: not processed, refused, or UNKNOWN."""
        reason = _reason(exc)
        if isinstance(exc, errors.DuplicateClOrdID):
            self._own(cl, o.DuplicateClOrdID())  # it exists: the lookup finds it
        elif isinstance(exc, errors.AmbiguousOutcome):
            self._own(cl, o.Ambiguous(f"{exc.kind} {exc.status or ''}".strip()))
        elif isinstance(exc, errors.Rejected) and not isinstance(exc, _NOT_SENT):
            self._own(cl, o.Rejected(reason, not_processed=False))
        elif isinstance(exc, _NOT_SENT) or (isinstance(exc, errors.BudgetExhausted)
                                            and exc.kind in NOT_PROCESSED_KINDS):
            if self._own(cl, o.Rejected(reason, not_processed=True)):
                self._own(cl, o.Withdrawn("not processed: " + reason))
        else:                                     # anything else may have been processed
            self._own(cl, o.Ambiguous(type(exc).__name__))
        self._drain()
        self._wake.set()

    def _outcome_unknown(self, cl: str, reason: str) -> None:
        self._own(cl, o.Ambiguous(reason))
        self._drain()

    def _own(self, cl: str, event: o.Event) -> bool:
        """Apply the outcome of our own request, unless venue evidence that arrived while it
        was in flight (a websocket row, a lookup) already moved the order on: the venue's word
        wins over what our request's failure suggests. True when applied."""
        order = self.table.orders[cl]
        if (order.state, o.event_kind(event)) not in o.TRANSITIONS:
            return False
        return self.table.apply(cl, event, self.clock.monotonic()) is not None

    async def cancel(self, cl_ord_id: str) -> None:
        """Cancel one order by clOrdID (open or UNKNOWN); the rows decide its state."""
        order = self.table.orders.get(cl_ord_id)
        if order is None or order.state not in OPEN_STATES | {S.UNKNOWN}:
            return
        now = self.clock.monotonic()
        self.table.on_cancel_requested(cl_ord_id, now)
        self._drain()
        if self.metrics is not None:
            self.metrics.cancel_attempts_total.inc()
        try:
            rows = await self.rest.cancel_orders(cl_ord_ids=[cl_ord_id])
        except errors.VenueError as exc:
            if isinstance(exc, errors.AmbiguousOutcome | errors.BudgetExhausted):
                self._own(cl_ord_id, o.Ambiguous(_reason(exc)))
            elif order.state is S.PENDING_CANCEL:
                self._own(cl_ord_id, o.CancelRejected(_reason(exc)))
        else:
            self.reconciler.on_cancel_rows(self._ours(rows), self.clock.monotonic())
        self._drain()
        self._wake.set()
        await self.flush()

    async def amend(self, cl_ord_id: str, *, price: float | None = None,
                    qty: int | None = None) -> Order:
        """Amend a resting order's price and/or quantity (``qty`` is the new orderQty, filled
        part included); returns the order in whatever state the outcome left it.

        Journals PENDING_AMEND, then sends ONE ``PUT /order`` by ``origClOrdID`` (the clOrdID is
        kept); the outcomes are listed in the module docstring. Raises :class:`OrdersBlocked`
        (nothing journaled or sent) when not ready, stopping or refused by safe mode, and
        ``ValueError`` for an unknown clOrdID, an order that is not NEW or PARTIALLY_FILLED
        (for example an amend already pending) or an amend that changes nothing.
        """
        order = self._admit_amend(cl_ord_id, price, qty)
        cl, table = order.cl_ord_id, self.table
        table.on_amend_requested(cl, qty, price, self.clock.monotonic())
        self._amends[cl] = (qty, price)
        self._drain()
        try:
            await self.flush()                    # durable BEFORE the request leaves
        except BaseException:
            self._own(cl, o.AmendRejected("not sent: journal write failed"))
            self._drain()
            raise
        self.events.emit("order.amend_sent", cl_ord_id=cl, qty=qty, price=price)
        by_order_id = cl.startswith("venue:")    # adopted without a clOrdID
        try:
            row = await self.rest.amend_order(
                order_id=order.order_id if by_order_id else None,
                orig_cl_ord_id=None if by_order_id else cl, order_qty=qty, price=price)
        except asyncio.CancelledError:
            self._own(cl, o.Ambiguous("cancelled while in flight"))
            self._drain()
            self._flush_while_unwinding()
            raise
        except BaseException as exc:
            self._on_amend_failure(cl, exc)
            await self.flush()
            if not isinstance(exc, errors.VenueError):
                raise
            return order
        now = self.clock.monotonic()
        if row.get("clOrdID") == cl or (order.order_id is not None
                                        and row.get("orderID") == order.order_id):
            self._own(cl, o.Amended(qty, price))  # then the row: the venue's exact values
            self.reconciler.on_ws_order_rows([row], now, self.clock.wall_ms())
        else:                                     # a 200 that is not this order's row
            self._own(cl, o.Ambiguous("answer without the order's row"))
        self._drain()
        self._wake.set()
        await self.flush()
        return order

    def _admit_amend(self, cl_ord_id: str, price: float | None, qty: int | None) -> Order:
        order = self.table.orders.get(cl_ord_id)
        if order is None:
            raise ValueError(f"amend: unknown clOrdID {cl_ord_id!r}")
        if price is None and qty is None:
            raise ValueError("amend needs a price or a qty")
        if (price is not None and not price > 0) or (qty is not None and (
                isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0)):
            raise ValueError("amend needs price > 0 and an integer qty > 0")
        if order.state not in (S.NEW, S.PARTIALLY_FILLED):
            raise ValueError(f"amend: {cl_ord_id} is {order.state.value}, not NEW or "
                             "PARTIALLY_FILLED")
        if _matches(order, qty, price):
            raise ValueError(f"amend: {cl_ord_id} already has that price and quantity")
        reason = ("stopping" if self._stopping else
                  "not reconciled with the venue yet" if not self.ready else self.refusal())
        if reason is None:
            return order
        self.events.emit("order.refused", cl_ord_id=cl_ord_id, request="amend",
                         symbol=order.symbol, side=order.side, qty=qty, price=price,
                         reason=reason)
        raise (NotReady if not self.ready else OrdersBlocked)(reason)

    def _on_amend_failure(self, cl: str, exc: BaseException) -> None:
        """Map a failed PUT /order: not processed or refused (the order rests as it was, plus
        any state the venue named), or unknown (left PENDING_AMEND for the evidence)."""
        refused = isinstance(exc, errors.Rejected) and not isinstance(exc, _NOT_SENT)
        not_processed = isinstance(exc, _NOT_SENT) or (isinstance(exc, errors.BudgetExhausted)
                                                       and exc.kind in NOT_PROCESSED_KINDS)
        if refused or not_processed:
            if self._own(cl, o.AmendRejected(_reason(exc))) and refused:
                assert isinstance(exc, errors.VenueError)
                status = amend_reject_status(exc.venue_message)
                if status is not None:            # "Invalid ordStatus: Filled": apply it
                    self._own(cl, o.VenueSnapshot(ord_status=status))
        else:                                     # anything else may have been processed
            label = (f"{exc.kind} {exc.status or ''}".strip()
                     if isinstance(exc, errors.VenueError) else type(exc).__name__)
            if self._own(cl, o.Ambiguous(label)):
                self.events.emit("order.amend_unknown", cl_ord_id=cl, reason=label)
        self._drain()
        self._wake.set()

    def _settle_amends(self) -> None:
        """An amend whose requested values a venue row now shows took effect: settle it.
        Amends that left PENDING_AMEND otherwise are forgotten here."""
        for cl, (qty, price) in list(self._amends.items()):
            order = self.table.orders[cl]
            if order.state is S.PENDING_AMEND and _matches(order, qty, price):
                self.table.on_amended(cl, qty, price, self.clock.monotonic())
            if order.state is not S.PENDING_AMEND:
                del self._amends[cl]

    async def cancel_all(self, symbol: str | None = None) -> bool:
        """ONE ``DELETE /order/all``; True when the venue answered. The rows are evidence."""
        try:
            rows = await self.rest.cancel_all(symbol)
        except errors.VenueError:
            return False
        self.reconciler.on_cancel_rows(self._ours(rows), self.clock.monotonic())
        self._drain()
        self._wake.set()
        await self.flush()
        return True

    # ---------------------------------------------------------------- journal and reports
    def _drain(self) -> None:
        """Queue the table's new transitions for the journal and report each one."""
        if self._amends:
            self._settle_amends()
        for transition in self.table.take_transitions():
            order = self.table.orders[transition.cl_ord_id]
            self._pending.append((transition, order))
            self.reports.on_transition(transition, order)
        self.reports.gauges(self.table, self.symbols, phantoms=self.reconciler.phantoms,
                            venue_open=self.venue_open)

    def _flush_while_unwinding(self) -> None:
        """Journal what is queued in one short synchronous write while a cancellation unwinds
        (no await may run then); on failure the items stay queued for the next flush."""
        items = self._take_pending()
        try:
            self.journal.append_transitions(items)
        except Exception:
            self._pending[:0] = items

    def _take_pending(self) -> list[tuple[Transition, Order]]:
        items, self._pending = self._pending, []
        return items

    async def flush(self) -> None:
        """Append every queued transition to the journal (one transaction, in order)."""
        async with self._write_lock:
            items = self._take_pending()
            if items:
                await asyncio.to_thread(self.journal.append_transitions, items)

    def alert(self, tier: str, message: str, *, key: str) -> None:
        if self.alerts is not None:
            self.alerts.fire(tier, message, now=self.clock.monotonic(), key=key)
        else:
            self.events.emit("alert", tier=tier, message=message)


def _matches(order: Order, qty: int | None, price: float | None) -> bool:
    """True when the order shows every requested value."""
    return ((qty is None or order.qty == qty)
            and (price is None or (order.price is not None
                                   and math.isclose(order.price, price, rel_tol=1e-12))))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, errors.VenueError):
        text = exc.venue_message or exc.kind
        return f"{exc.kind}: {text}"[:200] if text != exc.kind else exc.kind
    return type(exc).__name__
