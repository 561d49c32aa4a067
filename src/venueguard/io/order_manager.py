"""The order manager: the asyncio side of order-state integrity.

It owns one :class:`~venueguard.core.orders.OrderTable` and one
:class:`~venueguard.core.reconcile.Reconciler`, writes every intent and every transition to the
:class:`~venueguard.io.journal.Journal`, and talks to the venue through a
:class:`~venueguard.venues.base.VenueAdapter` (for BitMEX,
``BitmexAdapter(rest)`` from :mod:`venueguard.venues.bitmex.adapter`), which hands back
venue-neutral reports.

Call order::

    manager = OrderManager(BitmexAdapter(rest), journal, symbols=("XBTUSD",), events=...)
    await manager.start()          # journal -> table; every unfinished intent is looked up by
                                   # client id, open orders and recent executions are fetched;
                                   # returns once reconciled (``ready``) or after start_timeout_s
    run manager.run() in a task    # lookups, sweeps, journal writes, until stop()
    order = await manager.submit(OrderIntent("XBTUSD", "Buy", 100, 50_000.0))
    await manager.amend(order.cl_ord_id, price=50_100.0)   # and/or qty= (the new total qty)
    await manager.cancel(order.cl_ord_id)
    manager.on_rows(topic, action, rows)   # a private websocket message (read by the adapter)
    manager.stop(); await the run task

What ``submit`` guarantees:

1. the intent is committed (fsync) to the journal BEFORE the request leaves (``order.intent``);
2. it is sent once with the client id generated for it (``order.sent``); the REST session
   retries an overload (not processed) with the SAME client id within its budget;
3. the outcome goes through the table: 200 -> ``order.acked``; a definite refusal, or a failure
   that proves nothing was processed -> REJECTED (``order.rejected``); a timeout, 502, 504 or a
   connection lost after the send -> UNKNOWN (``order.unknown``). An UNKNOWN order is never sent
   again: only venue evidence (the lookup by client id, the websocket updates, the open orders,
   the order history) resolves it, through the reconciler; an UNKNOWN order the venue does not
   have when looked up by client id after the acceptance window was never accepted (REJECTED).

``amend`` is described in :mod:`venueguard.io.order_amend`. Cancels are never refused by safe
mode. A cancel is resent for an order already PENDING_CANCEL at most every ``query_interval_s``,
and once the venue has refused ``max_cancel_refusals`` cancels of one order none is sent again:
only the reconciler's lookups settle it (a cancel refused because the venue has no such order
is evidence already).

Nothing is sent before ``start`` has reconciled, nor while ``refusal()`` (set by the runtime's
safe mode) gives a reason: ``submit`` and ``amend`` then raise :class:`OrdersBlocked` and log
``order.refused``. A position that still disagrees with the venue after reconciliation sets
``halted`` (a critical alert; the runtime enters safe mode and the monitor exits non-zero).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

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
    Halt,
    Mismatch,
    QueryOrders,
    ReconcileConfig,
    Reconciler,
    ResendCancel,
    Resolved,
)
from venueguard.core.reports import FillReport, OrderReport, PositionReport, RefusalReport
from venueguard.core.shared_reads import ShareConfig
from venueguard.io import errors
from venueguard.io.clock import SYSTEM_CLOCK, Clock
from venueguard.io.journal import Journal
from venueguard.io.order_amend import OrderAmends
from venueguard.io.order_outcomes import NOT_SENT, failure_reason, not_processed
from venueguard.io.order_reports import OrderReports
from venueguard.io.order_sweeps import SharedSweeps, SweepOutcome, SweepShare
from venueguard.telemetry.alerts import Alerts
from venueguard.telemetry.events import EventLog
from venueguard.telemetry.metrics import Metrics
from venueguard.venues.base import StreamBatch, VenueAdapter

__all__ = ["NotReady", "OrderIntent", "OrderManager", "OrderManagerConfig", "OrdersBlocked"]

S = OrderState


class _HasClientId(Protocol):
    @property
    def client_id(self) -> str | None: ...


R = TypeVar("R", bound=_HasClientId)


class OrdersBlocked(errors.VenueguardError):
    """``submit`` or ``amend`` refused: nothing was journaled or sent (safe mode, stopping, not
    reconciled)."""


class NotReady(OrdersBlocked):
    """The journal has not been reconciled with the venue yet."""


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """What a strategy wants: a limit order (post-only by default; ``price`` None: market).

    ``cl_ord_id``: the caller's own client id (one the journal already holds gets that order
    back: nothing is sent twice); None: a fresh one. ``extra``: venue-specific fields the
    adapter passes on (a ccxt order's ``type`` and ``params``)."""

    symbol: str
    side: str                      # Buy | Sell
    qty: float
    price: float | None
    post_only: bool = True
    text: str | None = None
    cl_ord_id: str | None = None
    extra: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class OrderManagerConfig:
    reconcile: ReconcileConfig = field(default_factory=ReconcileConfig)
    cl_ord_prefix: str = "vg"
    #: Orders whose client id starts with one of these belong to someone else (the probe).
    ignore_prefixes: tuple[str, ...] = ("vgprobe-",)
    #: Several processes on one account (a fleet): orders whose client ids were not made here
    #: (without ``<cl_ord_prefix>-``) are another member's and are ignored too.
    own_prefix_only: bool = False
    start_timeout_s: float = 30.0
    idle_wake_s: float = 1.0       # the loop wakes at least this often
    #: Cancels of one order the venue may refuse; then only lookups settle it.
    max_cancel_refusals: int = 3


class OrderManager:
    """See the module docstring. One per account; not thread-safe (one event loop)."""

    def __init__(self, venue: VenueAdapter, journal: Journal, *, symbols: Sequence[str],
                 events: EventLog | None = None, metrics: Metrics | None = None,
                 alerts: Alerts | None = None, clock: Clock = SYSTEM_CLOCK,
                 rng: RandomLike | None = None, config: OrderManagerConfig | None = None,
                 refusal: Callable[[], str | None] | None = None) -> None:
        self.venue = venue
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
        self._write_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()
        self._stopping = False
        self._started = False
        self.reports = OrderReports(self.events, metrics)
        self.amends = OrderAmends(self)
        self.venue_open: int | None = None
        self.submitted_total = 0
        self._baselines_done = False
        self.ws_rows: dict[str, int] = {}          # private websocket rows seen, by topic
        self.cancel_requests: dict[str, int] = {}  # cancel requests sent, by client id
        self._cancel_refusals: dict[str, int] = {}
        self._cancel_sent_at: dict[str, float] = {}
        self.on_halt: Callable[[str], None] | None = None
        self._halts: dict[str, str] = {}
        #: Every halt reason seen in this run, resolved or not (for the exit code).
        self.halt_history: list[str] = []
        self.started_wall_ms: int | None = None    # when ``start`` loaded the journal
        #: In a fleet: the periodic sweep shared with the other members (``share_sweeps``).
        self.sweeps: SharedSweeps | None = None

    def share_sweeps(self, share: SweepShare, config: ShareConfig | None = None) -> SharedSweeps:
        """Share the periodic sweep with the other members of a fleet (see
        :mod:`venueguard.io.order_sweeps`); only for ``own_prefix_only`` (each member keeps
        its own orders of the account's lists). Call before ``start``."""
        if not self.config.own_prefix_only:
            raise ValueError("a shared sweep needs own_prefix_only (one account, several bots)")
        self.sweeps = SharedSweeps(self, share, config)
        return self.sweeps

    # ------------------------------------------------------------------------------ state
    @property
    def ready(self) -> bool:
        """True once every intent found unfinished in the journal has venue evidence."""
        return self._ready.is_set()

    @property
    def halted(self) -> str | None:
        """Why the venue and the journal still disagree after reconciliation (a position
        mismatch), or None. Cleared when the positions agree again."""
        live = self.reconciler.position_mismatches
        reasons = [reason for symbol, reason in sorted(self._halts.items()) if symbol in live]
        return "; ".join(reasons) or None

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

    def position(self, symbol: str) -> float:
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
        self.started_wall_ms = self.clock.wall_ms()
        self.reconciler = Reconciler(self.table, self.config.reconcile,
                                     start_wall_ms=self.started_wall_ms, symbols=self.symbols)
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
        """The journal's orders, with a client id generator whose session token no journaled
        id uses (a restarted process must never reuse a client id, whatever its RNG)."""
        while True:
            ids = ClOrdIdGenerator(self._rng, prefix=self.config.cl_ord_prefix)
            token = ids.next().rsplit("-", 1)[0]
            table = self.journal.load_table(ids, now)
            if not any(cl.rsplit("-", 1)[0] == token for cl in table.orders):
                return table

    async def _set_baselines(self) -> bool:
        """Remember the position held before our first journaled order (once per symbol);
        False when the venue could not be asked."""
        if not self.config.reconcile.check_position:
            self._baselines_done = True
            return True
        known = {k.split(":", 1)[1] for k, _ in self.journal.meta_items("position_baseline:")}
        missing = [s for s in self.symbols if s not in known
                   and not any(order.symbol == s for order in self.table.orders.values())]
        if not missing:
            self._baselines_done = True
            return True
        try:
            positions = await self.venue.positions()
        except errors.VenueError:
            return False
        for symbol in missing:
            qty = _position_of(positions, symbol)
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
            counts = self.reconciler.startup_counts()
            self.events.emit("reconcile.resolved", kind="startup", cl_ord_id=None,
                             detail=f"{counts.journaled} unfinished journaled orders: "
                             f"{counts.resolved} resolved, {counts.unresolved} unresolved; "
                             f"{counts.adopted} adopted",
                             journaled=counts.journaled, resolved=counts.resolved,
                             unresolved=counts.unresolved, adopted=counts.adopted)
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
        decisions = self.reconciler.poll(now, wall_ms)
        sweep_execs = next((d for d in decisions if isinstance(d, FetchExecutions) and d.sweep),
                           None)
        skip: Decision | None = None           # the sweep's executions, when shared
        for decision in decisions:
            if decision is skip:
                continue
            if isinstance(decision, FetchOpenOrders) and self.sweeps is not None:
                outcome = await self._shared_sweep(decision, sweep_execs)
                if outcome is SweepOutcome.DONE:
                    skip = sweep_execs
                if outcome is not SweepOutcome.OWN:
                    continue
            await self._execute(decision)
        self._drain()
        await self.flush()

    async def _shared_sweep(self, decision: FetchOpenOrders,
                            execs: FetchExecutions | None) -> SweepOutcome:
        assert self.sweeps is not None
        try:
            return await self.sweeps.sweep(decision.symbol,
                                           None if execs is None else execs.start_wall_ms)
        except o.OrderError as exc:               # a report the table cannot use
            self.events.emit("reconcile.bad_row", source="shared sweep", error=str(exc)[:200])
            return SweepOutcome.ORDERS

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
            case Halt(reason=reason):
                for symbol in self.reconciler.position_mismatches:
                    self._halts.setdefault(symbol, reason)
                self.halt_history.append(reason)
                self.events.emit("reconcile.halt", reason=reason)
                if self.on_halt is not None:
                    self.on_halt(reason)
            case ResendCancel(cl_ord_id=cl):
                if self.table.orders[cl].state is S.PENDING_CANCEL:
                    await self.cancel(cl)
            case _:
                try:
                    await self._lookup(decision)
                except errors.VenueError:
                    pass                                  # asked again after an interval
                except o.OrderError as exc:               # a report the table cannot use
                    self.events.emit("reconcile.bad_row", source=type(decision).__name__,
                                     error=str(exc)[:200])

    async def _lookup(self, decision: Decision) -> None:
        rec, clock, venue = self.reconciler, self.clock, self.venue
        asked = clock.monotonic()
        match decision:
            case QueryOrders(cl_ord_ids=ids) as query:
                found = await venue.orders_by_client_id(query.by_cl_ord_id, query.by_order_id)
                rec.on_order_lookup(ids, self.ours(found), clock.monotonic(), clock.wall_ms(),
                                    asked_at=asked)
            case FetchOpenOrders(symbol=symbol):
                found = self.ours(await venue.open_orders(symbol))
                self.venue_open = len(found)
                rec.on_open_orders(found, clock.monotonic(), clock.wall_ms(), asked_at=asked,
                                   symbol=symbol)
            case FetchOrderHistory(symbol=symbol, start_wall_ms=start_ms):
                found, complete = await venue.order_history(symbol, start_ms)
                rec.on_order_history(self.ours(found), clock.monotonic(), clock.wall_ms(),
                                     start_wall_ms=start_ms, complete=complete, asked_at=asked)
            case FetchExecutions(start_wall_ms=start_ms):
                await self._fetch_executions(start_ms)
            case FetchPosition(symbol=symbol):
                qty = _position_of(await venue.positions(), symbol)
                rec.on_position(symbol, qty, clock.monotonic())
        self._drain()

    async def _fetch_executions(self, start_ms: int | None) -> None:
        if start_ms is None:
            return
        fills, unreadable = await self.venue.fills_since(start_ms)
        self.report_unreadable("execution", unreadable)
        self.reconciler.on_fill_reports(self.ours(fills), self.clock.monotonic(),
                                        self.clock.wall_ms())
        self._drain()

    def report_unreadable(self, source: str, items: Sequence[Any]) -> None:
        for fields in items:
            self.events.emit("reconcile.bad_row", source=source, **dict(fields))

    def ours(self, reports: Sequence[R]) -> list[R]:
        """Reports about our orders (those of other tools, by client id prefix, are not)."""
        return [r for r in reports if self._is_ours(r.client_id)]

    def _is_ours(self, client_id: str | None) -> bool:
        """Not another tool's order (by client id prefix) and, in a fleet, made here."""
        if client_id and client_id.startswith(self.config.ignore_prefixes):
            return False
        return not self.config.own_prefix_only or (client_id or "").startswith(
            self.config.cl_ord_prefix + "-")

    # ------------------------------------------------------------------------- websocket
    def on_rows(self, topic: str, action: str, rows: Sequence[Any]) -> None:
        """A private websocket message (read by the venue adapter); other topics give
        nothing. Reports the table cannot use are reported (``reconcile.bad_row``); nothing
        here raises."""
        self.ws_rows[topic] = self.ws_rows.get(topic, 0) + len(rows)
        self.on_stream(topic, self.venue.read_private(topic, action, rows))

    def on_stream(self, source: str, batch: StreamBatch) -> None:
        """Apply one private message's reports, in order (``source`` labels bad rows)."""
        self.report_unreadable(source, batch.unreadable)
        now, wall_ms, rec = self.clock.monotonic(), self.clock.wall_ms(), self.reconciler
        try:
            if batch.complete_open_list:
                orders = self.ours([r for r in batch.reports if isinstance(r, OrderReport)])
                self.venue_open = sum(1 for r in orders if r.status is not None
                                      and r.status.is_open)
                rec.on_open_orders(orders, now, wall_ms, asked_at=now)
            else:
                for report in batch.reports:
                    self._on_stream_report(report, now, wall_ms)
        except o.OrderError as exc:
            self.events.emit("reconcile.bad_row", source=source, error=str(exc)[:200])
        self._drain()
        self._wake.set()

    def _on_stream_report(self, report: OrderReport | FillReport | PositionReport, now: float,
                          wall_ms: int) -> None:
        rec = self.reconciler
        if isinstance(report, PositionReport):
            if report.symbol in self.symbols:
                rec.on_position(report.symbol, report.qty, now)
        elif self._is_ours(report.client_id):
            if isinstance(report, OrderReport):
                rec.on_order_reports([report], now, wall_ms)
            else:
                rec.on_fill_reports([report], now, wall_ms)

    # ------------------------------------------------------------------------------ orders
    async def submit(self, intent: OrderIntent) -> Order:
        """Journal, send once, and apply the outcome; returns the order (in any state).

        Raises :class:`OrdersBlocked` (nothing journaled or sent) when not ready, stopping, or
        refused by safe mode; ``ValueError`` for a malformed intent. An intent whose client id
        the table already holds returns that order (sent once, whatever is asked again).
        """
        if intent.cl_ord_id is not None and intent.cl_ord_id in self.table.orders:
            return self.table.orders[intent.cl_ord_id]
        self._admit(intent)
        now, table = self.clock.monotonic(), self.table
        order = table.new_order(intent.symbol, intent.side, intent.qty, intent.price, now=now,
                                wall_ms=self.clock.wall_ms(), cl_ord_id=intent.cl_ord_id)
        cl = order.cl_ord_id
        params: dict[str, object] = {"post_only": intent.post_only, "text": intent.text}
        if intent.extra is not None:
            params["type"] = str(intent.extra.get("type"))
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
            report = await self.venue.place_order(cl, intent.symbol, intent.side, intent.qty,
                                                  intent.price, post_only=intent.post_only,
                                                  text=intent.text, extra=intent.extra)
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
        if report.venue_id and report.client_id in (cl, None):
            table.on_acked(cl, report.venue_id, now)
            self.reconciler.on_order_reports([report], now, self.clock.wall_ms())
        else:                                     # an answer that is not this order's
            self.own(cl, o.Ambiguous("answer without the order's row"))
        self._drain()
        self._wake.set()
        await self.flush()
        return order

    def refused(self, **fields: object) -> str | None:
        """Why a new request must not be sent now (logged as ``order.refused``), or None."""
        reason = ("stopping" if self._stopping else
                  "not reconciled with the venue yet" if not self.ready else self.refusal())
        if reason is not None:
            self.events.emit("order.refused", **fields, reason=reason)
        return reason

    def blocked(self, reason: str) -> OrdersBlocked:
        return (NotReady if not self.ready else OrdersBlocked)(reason)

    def _admit(self, intent: OrderIntent) -> None:
        if intent.side not in ("Buy", "Sell") or not intent.qty > 0 or (
                intent.price is not None and not intent.price > 0):
            raise ValueError("an intent needs side Buy|Sell, qty > 0 and price > 0 (or None)")
        reason = self.refused(symbol=intent.symbol, side=intent.side, qty=intent.qty,
                              price=intent.price)
        if reason is not None:
            raise self.blocked(reason)

    def _on_send_failure(self, cl: str, exc: BaseException) -> None:
        """Map a failed order request onto the table: not processed, refused, or UNKNOWN."""
        reason = failure_reason(exc)
        if isinstance(exc, errors.DuplicateClOrdID):
            self.own(cl, o.ClOrdIDTaken())  # it exists: the lookup finds it
        elif isinstance(exc, errors.AmbiguousOutcome):
            self.own(cl, o.Ambiguous(f"{exc.kind.value} {exc.status or ''}".strip()))
        elif isinstance(exc, errors.Rejected) and not isinstance(exc, NOT_SENT):
            self.own(cl, o.OrderRejected(reason, not_processed=False))
        elif not_processed(exc):
            if self.own(cl, o.OrderRejected(reason, not_processed=True)):
                self.own(cl, o.Withdrawn("not processed: " + reason))
        else:                                     # anything else may have been processed
            self.own(cl, o.Ambiguous(type(exc).__name__))
        self._drain()
        self._wake.set()

    def _outcome_unknown(self, cl: str, reason: str) -> None:
        self.own(cl, o.Ambiguous(reason))
        self._drain()

    def own(self, cl: str, event: o.Event) -> bool:
        """Apply the outcome of our own request, unless venue evidence that arrived while it
        was in flight (a websocket update, a lookup) already moved the order on: the venue's
        word wins over what our request's failure suggests. True when applied."""
        order = self.table.orders[cl]
        if (order.state, o.event_kind(event)) not in o.TRANSITIONS:
            return False
        return self.table.apply(cl, event, self.clock.monotonic()) is not None

    async def cancel(self, cl_ord_id: str) -> None:
        """Cancel one order by client id (open or UNKNOWN); the answers decide its state.
        Sends nothing once the venue refused ``max_cancel_refusals`` cancels of this order, nor
        for an order already PENDING_CANCEL whose last cancel left less than
        ``query_interval_s`` ago (the reconciler's lookups settle those)."""
        order = self.table.orders.get(cl_ord_id)
        if order is None or order.state not in OPEN_STATES | {S.UNKNOWN}:
            return
        now = self.clock.monotonic()
        last = self._cancel_sent_at.get(cl_ord_id)
        if (self._cancel_refusals.get(cl_ord_id, 0) >= self.config.max_cancel_refusals
                or (order.state is S.PENDING_CANCEL and last is not None
                    and now - last < self.config.reconcile.query_interval_s)):
            self._wake.set()
            return
        self.cancel_requests[cl_ord_id] = self.cancel_requests.get(cl_ord_id, 0) + 1
        self._cancel_sent_at[cl_ord_id] = now
        self.table.on_cancel_requested(cl_ord_id, now)
        self._drain()
        if self.metrics is not None:
            self.metrics.cancel_attempts_total.inc()
        by_venue_id = cl_ord_id.startswith("venue:") and order.order_id is not None
        try:
            reports = await self.venue.cancel_orders(
                [] if by_venue_id else [cl_ord_id],
                [order.order_id] if by_venue_id and order.order_id else [])
        except errors.VenueError as exc:
            if isinstance(exc, errors.AmbiguousOutcome | errors.BudgetExhausted):
                self.own(cl_ord_id, o.Ambiguous(failure_reason(exc)))
            else:
                if not not_processed(exc):               # the venue refused it
                    self._count_cancel_refusal(cl_ord_id)
                if order.state is S.PENDING_CANCEL:
                    self.own(cl_ord_id, o.CancelRejected(failure_reason(exc)))
        else:
            if any(isinstance(r, RefusalReport) for r in reports):
                self._count_cancel_refusal(cl_ord_id)
            self.reconciler.on_cancel_reports(self.ours(reports), self.clock.monotonic(),
                                              self.clock.wall_ms(), asked_at=now)
        self._drain()
        self._wake.set()
        await self.flush()

    def _count_cancel_refusal(self, cl_ord_id: str) -> None:
        refusals = self._cancel_refusals[cl_ord_id] = self._cancel_refusals.get(cl_ord_id, 0) + 1
        if refusals == self.config.max_cancel_refusals:
            self.events.emit("order.cancel_held", cl_ord_id=cl_ord_id, refusals=refusals,
                             reason="the venue refused every cancel; lookups settle it")

    async def amend(self, cl_ord_id: str, *, price: float | None = None,
                    qty: float | None = None) -> Order:
        """Amend a resting order's price and/or quantity: see :mod:`venueguard.io.order_amend`."""
        return await self.amends.amend(cl_ord_id, price=price, qty=qty)

    async def cancel_all(self, symbol: str | None = None) -> bool:
        """ONE bulk cancel; True when the venue answered. The answers are evidence. With
        ``own_prefix_only`` (an account shared with other bots) it cancels this bot's own
        unfinished orders by client id, in one request, never the account's."""
        now = self.clock.monotonic()
        try:
            if self.config.own_prefix_only:
                ids = [order.cl_ord_id for order in self.table.in_states(o.UNFINISHED_STATES)
                       if (symbol is None or order.symbol == symbol)
                       and self._is_ours(order.cl_ord_id)]
                reports = await self.venue.cancel_orders(ids) if ids else []
            else:
                reports = await self.venue.cancel_all(symbol)
        except errors.VenueError:
            return False
        await self._apply_cancel_reports(reports, now)
        return True

    async def cancel_account(self, symbol: str | None = None
                             ) -> list[OrderReport | RefusalReport] | None:
        """ONE account-wide bulk cancel: every bot's orders on the account, for an account-level
        reason only (the caller names it). This bot's answers are applied as evidence; all of
        them are returned, so the caller can say whose orders it took. None: no answer."""
        now = self.clock.monotonic()
        try:
            reports = await self.venue.cancel_all(symbol)
        except errors.VenueError:
            return None
        await self._apply_cancel_reports(reports, now)
        return reports

    async def _apply_cancel_reports(self, reports: Sequence[OrderReport | RefusalReport],
                                    asked_at: float) -> None:
        self.reconciler.on_cancel_reports(self.ours(reports), self.clock.monotonic(),
                                          self.clock.wall_ms(), asked_at=asked_at)
        self._drain()
        self._wake.set()
        await self.flush()

    # ---------------------------------------------------------------- journal and reports
    def _drain(self) -> None:
        """Queue the table's new transitions for the journal and report each one."""
        self.amends.settle()
        for transition in self.table.take_transitions():
            order = self.table.orders[transition.cl_ord_id]
            self._pending.append((transition, order))
            self.reports.on_transition(transition, order)
        self.reports.gauges(self.table, self.symbols, phantoms=self.reconciler.phantoms,
                            venue_open=self.venue_open)

    def drain(self) -> None:
        self._drain()

    def _flush_while_unwinding(self) -> None:
        """Journal what is queued in one short synchronous write while a cancellation unwinds
        (no await may run then); on failure the items stay queued for the next flush."""
        items = self._take_pending()
        try:
            self.journal.append_transitions(items)
        except Exception:
            self._pending[:0] = items

    def flush_while_unwinding(self) -> None:
        self._flush_while_unwinding()

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


def _position_of(positions: Sequence[PositionReport], symbol: str) -> float:
    """The venue's position in ``symbol`` (0 when it reports none)."""
    for position in positions:
        if position.symbol == symbol:
            return position.qty
    return 0
