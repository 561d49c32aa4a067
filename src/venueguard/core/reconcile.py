"""Reconciler: merges websocket rows and REST snapshots into the order table, asks the venue
for what is missing, and never lets a timer decide what only the venue can say.

Shape (sans-I/O)::

    rec = Reconciler(table, ReconcileConfig(), start_wall_ms=wall_ms)
    rec.start(now)                        # after a restart: every unfinished order is looked up
    loop:
        for decision in rec.poll(now, wall_ms): execute it (see below)
        sleep until rec.next_deadline() or the next websocket row

Every venue fact arrives as a neutral report (:mod:`venueguard.core.reports`) built by the
venue's adapter. What to call with each input (``asked_at`` is the monotonic time the request was
*sent*; absence counts as evidence only for orders that changed at least a grace period before
it, or, for orders restored from the journal, were created that long before in wall time):

* websocket order updates -> ``on_order_reports``; fills -> ``on_fill_reports``;
  the answers to a cancel or a bulk cancel -> ``on_cancel_reports``.
* ``QueryOrders``       -> the venue's orders by client id    -> ``on_order_lookup``
* ``FetchOpenOrders``   -> the venue's complete open list     -> ``on_open_orders``
* ``FetchOrderHistory`` -> every order since a time           -> ``on_order_history``
* ``FetchExecutions``   -> every fill since a time            -> ``on_fill_reports``
* ``FetchPosition``     -> the venue's position               -> ``on_position``
* ``ResendCancel``      -> if still PENDING_CANCEL: ``on_cancel_requested``, cancel by client
  id (by venue id for an ``adopted`` order) -> ``on_cancel_reports``
* ``Mismatch`` -> event ``reconcile.mismatch`` (kinds ``phantom_*`` also add to
  ``phantom_orders_total``); ``Resolved`` -> ``reconcile.resolved``; ``Alert`` -> ``alert``;
  ``Halt`` -> a critical alert, safe mode, and a non-zero exit for the process.

Settling by absence: an UNKNOWN order looked up by its client id at least
``acceptance_window_s`` after it became UNKNOWN, and not found, was never accepted: it is
closed as REJECTED with that reason. A cancel the venue refuses because it has no such order is
absence evidence too (so cancels of an order the venue does not have stop).

Decisions of one ``poll`` are executed in order; an answer may settle an order before a later
decision about it runs, so check its state first. A failed lookup needs no callback: an
unanswered question is asked again after ``query_interval_s``. Lookups are budgeted
(``budget_queries`` per ``budget_interval_s``, fewer in safe mode); mismatches, resolutions and
alerts are never held back.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from venueguard.core.orders import (
    OPEN_STATES,
    UNFINISHED_STATES,
    VENUE_KINDS,
    Ambiguous,
    AmendRejected,
    NotFoundAtVenue,
    Order,
    OrderState,
    OrderTable,
    Transition,
    snapshot_of,
)
from venueguard.core.reports import FillReport, OrderReport, RefusalReport

S = OrderState
#: Ordinary on an eventually consistent venue (an open row delayed past the cancel): no report.
_QUIET_ANOMALIES = frozenset({"stale_open_row"})


@dataclass(frozen=True, slots=True)
class ReconcileConfig:
    visibility_grace_s: float = 5.0      # an acked order may be missing from lookups this long
    #: The visibility horizon: an UNKNOWN order not found (by its client id, or in the complete
    #: order history) this long after it became UNKNOWN was never accepted; absence seen sooner
    #: is no evidence. It must cover the latest moment the venue may still accept the request
    #: (the REST session signs requests to expire after ``expires_s``, 10 s by default) plus
    #: the longest the venue may hide an accepted order: the venue's rules file says
    #: (``[orders] visibility_horizon_s``, 60 s by default).
    acceptance_window_s: float = 60.0
    unknown_first_query_s: float = 0.5   # first lookup of a fresh UNKNOWN
    query_interval_s: float = 5.0        # re-ask an unanswered or unresolved order this often
    unknown_window_s: float = 60.0       # then: critical alert + full order history check
    sweep_interval_s: float = 30.0       # open orders + position
    safe_sweep_interval_s: float = 60.0
    position_grace_s: float = 10.0       # executions may lag the position this long
    #: Fetch the venue's position and compare it with the executions. False for a venue
    #: without positions (e.g. spot), and when several bots share the account: the venue then
    #: reports the account's position, the sum of every bot's, so this bot neither fetches nor
    #: compares it (the fleet compares the account's with the members' sum).
    check_position: bool = True
    budget_queries: int = 10             # lookups per budget interval
    safe_budget_queries: int = 3
    budget_interval_s: float = 10.0
    history_margin_ms: int = 5_000
    max_ids_per_query: int = 20
    #: A PENDING_AMEND whose answer was lost, still shown unchanged by the venue this long
    #: after the request, was not applied (None: ``query_interval_s``).
    amend_grace_s: float | None = None


# ------------------------------------------------------------------------------ decisions
@dataclass(frozen=True, slots=True)
class QueryOrders:
    """Look these orders up. Adopted orders without a client id have local ids
    ``venue:<venue id>``: query those by venue id (``by_order_id``), the rest by client id; answer
    with all of ``cl_ord_ids`` in ``on_order_lookup``."""
    cl_ord_ids: tuple[str, ...]

    @property
    def by_cl_ord_id(self) -> tuple[str, ...]:
        return tuple(i for i in self.cl_ord_ids if not i.startswith("venue:"))

    @property
    def by_order_id(self) -> tuple[str, ...]:
        return tuple(i[len("venue:"):] for i in self.cl_ord_ids if i.startswith("venue:"))


@dataclass(frozen=True, slots=True)
class FetchOpenOrders:
    symbol: str | None = None


@dataclass(frozen=True, slots=True)
class FetchOrderHistory:
    symbol: str | None
    start_wall_ms: int


@dataclass(frozen=True, slots=True)
class FetchExecutions:
    """``sweep``: the executions of the periodic sweep (right after its ``FetchOpenOrders``);
    False: a fill is known to be missing (an answer only a fresh request gives). Not part of
    equality: the same request either way."""
    symbol: str | None
    start_wall_ms: int
    sweep: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True)
class FetchPosition:
    symbol: str


@dataclass(frozen=True, slots=True)
class ResendCancel:
    """Cancel by this client id again (its earlier cancel got no answer)."""
    cl_ord_id: str


@dataclass(frozen=True, slots=True)
class Mismatch:
    kind: str
    cl_ord_id: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class Resolved:
    kind: str
    cl_ord_id: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class Alert:
    tier: str                            # info | warning | critical
    message: str


@dataclass(frozen=True, slots=True)
class Halt:
    """The venue and the journal disagree after reconciliation (a position that does not
    match once every fill was fetched): raise a critical alert, enter safe mode, exit non-zero."""
    reason: str


@dataclass(frozen=True, slots=True)
class StartupCounts:
    """How the orders unfinished at ``start`` stand: ``resolved`` by venue evidence,
    ``unresolved`` still without it; ``adopted``: venue orders unknown locally, taken over."""
    journaled: int
    resolved: int
    unresolved: int
    adopted: int


Lookup = QueryOrders | FetchOpenOrders | FetchOrderHistory | FetchExecutions | FetchPosition
Decision = Lookup | ResendCancel | Mismatch | Resolved | Alert | Halt


class Reconciler:
    """Keeps ``table`` consistent with the venue; see the module docstring for the call order."""

    def __init__(self, table: OrderTable, config: ReconcileConfig | None = None, *,
                 start_wall_ms: int, exec_since_ms: int | None = None,
                 symbols: Iterable[str] = ()) -> None:
        """``start_wall_ms``: since when the journal covers this account (``Journal.created_ms``;
        a position mismatch fetches every execution since then). ``exec_since_ms``: the
        ``exec_watermark_ms`` saved before a restart (default ``start_wall_ms``)."""
        self.table = table
        self.config = config or ReconcileConfig()
        self._start_wall_ms = start_wall_ms
        self._exec_since_ms = start_wall_ms if exec_since_ms is None else exec_since_ms
        self._symbols = set(symbols)
        self._safe = False
        self._out: list[Decision] = []
        self._asked: dict[str, float] = {}         # client id -> when last looked up
        self._answered: set[str] = set()
        self._suspects: set[str] = set()           # open locally, missing from the open list
        self._alerted: set[str] = set()
        self._history_asked: dict[str, float] = {}
        self._startup: set[str] = set()
        self._evidence: set[str] = set()           # orders settled by venue evidence
        self._restored: set[str] = set()           # orders loaded from the journal
        self._spent: deque[float] = deque()         # times of budgeted lookups
        self._last_sweep: float | None = None
        self._exec_asked: float | None = None
        self._need_execs_from_ms: int | None = None
        self._pos_bad_since: dict[str, float] = {}
        self._pos_alerted: set[str] = set()
        self._pos_asked: dict[str, float] = {}
        self._pos_ask_local: dict[str, tuple[float, int]] = {}   # position and mark when asked
        self._last_sweep_wall_ms: int | None = None
        self._prev_sweep_wall_ms: int | None = None
        self._cancel_resent: dict[str, float] = {}
        self._sweep_execs_from_ms: int | None = None
        self.phantoms = 0                 # phantom orders found, both ways (a counter)
        self.adopted = 0
        self.venue_open: int | None = None  # open orders in the venue's last list (metrics)

    # ------------------------------------------------------------------------- control
    def start(self, now: float) -> None:
        """Call once after ``Journal.load_table``, before sending anything new. A PENDING_NEW
        from before the restart may or may not have been sent: it becomes UNKNOWN. Every
        unfinished order is then looked up by client id; ``ready`` turns True once each has had
        an answer."""
        self._restored = set(self.table.orders)
        for order in self.table.in_states(frozenset({S.PENDING_NEW})):
            self.table.apply(order.cl_ord_id, Ambiguous("restart: send outcome unknown"), now)
        self._startup = {o.cl_ord_id for o in self.table.in_states(UNFINISHED_STATES)}
        for cl_ord_id in self._startup:
            self._asked.pop(cl_ord_id, None)

    @property
    def exec_watermark_ms(self) -> int:
        """Wall time up to which the periodic sweeps have fetched executions: save it (e.g.
        ``Journal.set_meta``) and pass it back as ``exec_since_ms`` after a restart."""
        return self._exec_since_ms if self._last_sweep_wall_ms is None else self._last_sweep_wall_ms

    @property
    def ready(self) -> bool:
        """True once every order unfinished at ``start`` has been answered for by the venue."""
        return self._startup <= self._answered

    def startup_counts(self) -> StartupCounts:
        """Resolved, unresolved and adopted counts for the orders unfinished at ``start``."""
        resolved = sum(1 for cl in self._startup if cl in self._evidence
                       and self.table.orders[cl].state is not S.UNKNOWN)
        return StartupCounts(len(self._startup), resolved, len(self._startup) - resolved,
                             self.adopted)

    def set_safe_mode(self, on: bool) -> None:
        """Lower the lookup budget and the sweep rate while the regime is SAFE/RECOVERING."""
        self._safe = on

    # ----------------------------------------------------------------------- venue facts
    def on_order_reports(self, reports: Sequence[OrderReport], now: float,
                         wall_ms: int) -> None:
        """Order updates (websocket, or the answer to one of our requests)."""
        for report in reports:
            self._on_report(report, now, wall_ms)

    def on_fill_reports(self, reports: Sequence[FillReport], now: float, wall_ms: int) -> None:
        """Fills from the websocket or a fetch (duplicates are ignored). Raises ``OrderError``
        for a fill without exec id, qty or price (the ones before it are applied)."""
        for report in reports:
            order = self.table.find(report.client_id, report.venue_id)
            if order is None:
                if not report.symbol or not (report.venue_id or report.client_id):
                    continue
                if report.client_id is None and self._in_doubt(report.symbol):
                    continue        # maybe ours: fetched again once our orders show their ids
                order = self._adopt(report, now, wall_ms)
            self._note(self.table.on_fill_report(report, now))
        if self._need_execs_from_ms is not None and not self._missing_execs():
            self._need_execs_from_ms = None

    def on_cancel_reports(self, reports: Sequence[OrderReport | RefusalReport], now: float,
                          wall_ms: int | None = None, *, asked_at: float | None = None) -> None:
        """The answers to a cancel or a bulk cancel, refusals included. A refusal saying the
        venue has no such order is absence evidence, as if the order were looked up."""
        asked = now if asked_at is None else asked_at
        for report in reports:
            if isinstance(report, OrderReport):
                self._note(self.table.on_order_report(report, now))
                continue
            order = self.table.find(report.client_id, report.venue_id)
            if order is None:
                continue
            if report.not_found:
                self._absent(order, asked, now, wall_ms, "cancel refused: " + report.reason)
            else:
                self._note(self.table.on_refusal_report(report, now))

    def on_order_lookup(self, cl_ord_ids: Sequence[str], reports: Sequence[OrderReport],
                        now: float, wall_ms: int, *, asked_at: float | None = None) -> None:
        """Answer to ``QueryOrders``: the reports found, and absence for every id not among
        them."""
        asked = now if asked_at is None else asked_at
        seen = {self._on_report(report, now, wall_ms) for report in reports}
        for cl_ord_id in cl_ord_ids:
            self._answered.add(cl_ord_id)
            self._suspects.discard(cl_ord_id)
            order = self.table.orders.get(cl_ord_id)
            if order is None or cl_ord_id in seen:
                continue
            self._absent(order, asked, now, wall_ms, "not found by client id")

    def on_open_orders(self, reports: Sequence[OrderReport], now: float, wall_ms: int, *,
                       asked_at: float | None = None, symbol: str | None = None) -> None:
        """Answer to ``FetchOpenOrders``: the venue's complete list of open orders."""
        asked = now if asked_at is None else asked_at
        seen = {self._on_report(report, now, wall_ms) for report in reports}
        self.venue_open = len(reports)
        for order in self.table.in_states(OPEN_STATES):
            if symbol not in (None, order.symbol) or order.cl_ord_id in seen:
                continue
            if self._grace_elapsed(order, asked, wall_ms):
                self._suspects.add(order.cl_ord_id)     # confirm by client id before closing

    def on_order_history(self, reports: Sequence[OrderReport], now: float, wall_ms: int, *,
                         start_wall_ms: int, complete: bool,
                         asked_at: float | None = None) -> None:
        """Answer to ``FetchOrderHistory``: every order since ``start_wall_ms``. Only a
        ``complete`` list, asked after the long window, resolves an UNKNOWN as never placed."""
        asked = now if asked_at is None else asked_at
        seen = {self._on_report(report, now, wall_ms) for report in reports}
        if not complete:
            return
        for order in self.table.in_states(frozenset({S.UNKNOWN})):
            if (order.cl_ord_id in seen or order.exists_at_venue
                    or order.created_wall_ms < start_wall_ms
                    or asked - order.state_since < max(self.config.unknown_window_s,
                                                       self.config.acceptance_window_s)):
                continue
            self._answered.add(order.cl_ord_id)
            event = NotFoundAtVenue(asked, grace_elapsed=True, definitive=True,
                                    reason="absent from the venue's complete order history")
            if self._note(self.table.on_not_found(order.cl_ord_id, event, now)):
                self._out.append(Resolved("unknown_not_placed", order.cl_ord_id,
                                          "absent from the venue's complete order history"))

    def on_position(self, symbol: str, venue_qty: float, now: float) -> None:
        """Answer to ``FetchPosition`` (or a position update): compare with the executions
        applied locally. The venue's figure agrees when it equals any value the local position
        took between the question and the answer (executions applied meanwhile are on their
        way, not a difference). A difference asks for every fill since the journal began
        (``FetchExecutions``, ahead of the next position lookup); one still there
        ``position_grace_s`` later raises ``Halt`` (cleared when the positions agree again:
        ``Resolved("position")``). Ignored unless ``check_position``."""
        if not self.config.check_position:
            return
        local = self.table.position(symbol)
        seen = [local]
        if (asked := self._pos_ask_local.pop(symbol, None)) is not None:
            at_ask, mark = asked
            seen = [at_ask, *self.table.positions_since(symbol, mark), local]
        if venue_qty in seen:
            if self._pos_bad_since.pop(symbol, None) is not None and symbol in self._pos_alerted:
                self._pos_alerted.discard(symbol)
                self._out.append(Resolved("position", None, f"{symbol} {local}"))
            return
        since = self._pos_bad_since.setdefault(symbol, now)
        if self._need_execs_from_ms is None:
            self._need_execs_from_ms = self._earliest_ms()
        if now - since >= self.config.position_grace_s and symbol not in self._pos_alerted:
            self._pos_alerted.add(symbol)
            nearest = min(seen, key=lambda qty: abs(qty - venue_qty))
            detail = f"{symbol} local {nearest} venue {venue_qty}"
            self._out.append(Mismatch("position", None, detail))
            self._out.append(Alert("critical", "position mismatch after reconciliation: "
                                   + detail))
            self._out.append(Halt("position mismatch: " + detail))

    @property
    def position_mismatches(self) -> frozenset[str]:
        """Symbols whose position mismatch survived reconciliation and is not resolved."""
        return frozenset(self._pos_alerted)

    def postpone_sweep(self, now: float, delay_s: float) -> None:
        """The sweep just polled (its ``FetchOpenOrders`` and ``FetchExecutions(sweep=True)``,
        if that was polled with it) is not made now: it is due again ``delay_s`` after
        ``now``, the executions watermark stays where it was, and the lookup budget is as if
        it had not been polled."""
        interval = self.config.safe_sweep_interval_s if self._safe else self.config.sweep_interval_s
        self._last_sweep = now + delay_s - interval
        self._last_sweep_wall_ms = self._prev_sweep_wall_ms
        # nothing was asked: the lookup budget gets back what the sweep took of it
        refund = 1 if self._sweep_execs_from_ms is not None else 2
        for _ in range(min(refund, len(self._spent))):
            self._spent.pop()
        self._sweep_execs_from_ms = None

    def sweep_asked_at(self, wall_ms: int) -> None:
        """The sweep just polled was answered by executions asked at ``wall_ms`` (earlier than
        the poll: a fleet member's shared answer): the watermark is that time, not the poll's."""
        if self._last_sweep_wall_ms is not None:
            self._last_sweep_wall_ms = min(self._last_sweep_wall_ms, wall_ms)

    # -------------------------------------------------------------------------- draining
    def poll(self, now: float, wall_ms: int) -> list[Decision]:
        """Everything to do now: reports first, then budgeted lookups."""
        out, self._out = self._out, []
        cfg = self.config
        for order in self.table.in_states(frozenset({S.UNKNOWN})):
            age = now - order.state_since
            if age >= cfg.unknown_window_s and order.cl_ord_id not in self._alerted:
                self._alerted.add(order.cl_ord_id)
                out.append(Alert("critical", f"order {order.cl_ord_id} UNKNOWN for {age:.0f} s "
                                 "without venue evidence; it stays UNKNOWN"))
                out.append(Mismatch("unknown_unresolved", order.cl_ord_id, f"{age:.0f} s"))
        while self._has_budget(now) and (lookup := self._next_lookup(now, wall_ms)) is not None:
            self._spent.append(now)
            out.append(lookup)
            self._mark_asked(lookup, now)
        return out

    def next_deadline(self) -> float | None:
        """The earliest time ``poll`` has something new to do (None: only new facts matter)."""
        cfg, times, unbudgeted = self.config, [], []
        for order in self.table.in_states(UNFINISHED_STATES):
            times.append(self._query_due(order))
            if order.state is S.UNKNOWN and order.cl_ord_id not in self._alerted:
                unbudgeted.append(order.state_since + cfg.unknown_window_s)
            if order.state is S.UNKNOWN and not order.exists_at_venue:
                asked = self._history_asked.get(order.cl_ord_id)
                times.append(order.state_since + cfg.unknown_window_s if asked is None
                             else asked + cfg.query_interval_s)
        times.append(self._sweep_due())
        if self._sweep_execs_from_ms is not None:
            times.append(-1e18)
        times.extend(self._position_due().values())
        if self._need_execs_from_ms is not None:
            times.append(-1e18 if self._exec_asked is None
                         else self._exec_asked + cfg.query_interval_s)
        valid = [t for t in times if t is not None]
        due = min(valid) if valid else None
        if due is not None and len(self._spent) >= self._budget():
            due = max(due, self._spent[0] + cfg.budget_interval_s)
        candidates = [t for t in (due, *unbudgeted) if t is not None]
        return min(candidates) if candidates else None

    # ------------------------------------------------------------------------- internals
    def _budget(self) -> int:
        return self.config.safe_budget_queries if self._safe else self.config.budget_queries

    def _has_budget(self, now: float) -> bool:
        while self._spent and now - self._spent[0] >= self.config.budget_interval_s:
            self._spent.popleft()
        return len(self._spent) < self._budget()

    def _query_due(self, order: Order) -> float | None:
        """When this order next needs a lookup by client id (None: it does not)."""
        cfg, cl = self.config, order.cl_ord_id
        asked = self._asked.get(cl)
        startup = cl in self._startup and cl not in self._answered
        if order.state is S.UNKNOWN or startup:
            first = order.state_since + (0.0 if startup else cfg.unknown_first_query_s)
            return first if asked is None else max(first, asked + cfg.query_interval_s)
        if cl in self._startup and cl not in self._evidence:
            # restored, answered, but not settled yet (absent inside the grace): ask again
            return order.state_since if asked is None else asked + cfg.query_interval_s
        if cl in self._suspects or order.state in (S.PENDING_CANCEL, S.PENDING_AMEND):
            base = order.state_since + (0.0 if cl in self._suspects else cfg.query_interval_s)
            return base if asked is None else max(base, asked + cfg.query_interval_s)
        return None

    def _sweep_due(self) -> float:
        interval = self.config.safe_sweep_interval_s if self._safe else self.config.sweep_interval_s
        return -1e18 if self._last_sweep is None else self._last_sweep + interval

    def _next_lookup(self, now: float, wall_ms: int) -> Lookup | None:
        cfg = self.config
        due = sorted((o for o in self.table.in_states(UNFINISHED_STATES)
                      if (t := self._query_due(o)) is not None and t <= now),
                     key=lambda o: o.state_since)
        if due:
            return QueryOrders(tuple(o.cl_ord_id for o in due[: cfg.max_ids_per_query]))
        for order in self.table.in_states(frozenset({S.UNKNOWN})):
            asked = self._history_asked.get(order.cl_ord_id)
            if (now - order.state_since >= cfg.unknown_window_s and not order.exists_at_venue
                    and (asked is None or now - asked >= cfg.query_interval_s)):
                self._history_asked[order.cl_ord_id] = now
                return FetchOrderHistory(None, order.created_wall_ms - cfg.history_margin_ms)
        if self._missing_execs() and self._need_execs_from_ms is None:
            self._need_execs_from_ms = self._earliest_ms()
        if self._need_execs_from_ms is not None and (
                self._exec_asked is None or now - self._exec_asked >= cfg.query_interval_s):
            self._exec_asked = now
            return FetchExecutions(None, self._need_execs_from_ms)
        if self._sweep_due() <= now:
            # Each sweep also fetches the executions since the previous one: a fill missed on
            # the websocket shows even when unrelated misses happen to net out in the position.
            self._last_sweep = now
            since = self.exec_watermark_ms
            self._sweep_execs_from_ms = min(
                [since, *(o.created_wall_ms for o in self.table.in_states(UNFINISHED_STATES))]
            ) - cfg.history_margin_ms
            self._prev_sweep_wall_ms, self._last_sweep_wall_ms = self._last_sweep_wall_ms, wall_ms
            return FetchOpenOrders(None)
        if self._sweep_execs_from_ms is not None:
            start, self._sweep_execs_from_ms = self._sweep_execs_from_ms, None
            return FetchExecutions(None, start, sweep=True)
        return self._position_lookup(now)

    def _position_due(self) -> dict[str, float]:
        """Per symbol, when its position should next be fetched: after every sweep, and every
        ``query_interval_s`` while it disagrees with the executions, and once more when its
        ``position_grace_s`` ends (that answer decides ``Halt``)."""
        cfg = self.config
        due: dict[str, float] = {}
        if not cfg.check_position:
            return due
        for symbol in self._symbols | {o.symbol for o in self.table.orders.values()}:
            asked = self._pos_asked.get(symbol)
            since = self._pos_bad_since.get(symbol)
            if asked is None or (self._last_sweep is not None and asked < self._last_sweep):
                due[symbol] = -1e18
            elif since is not None:
                grace_end = since + cfg.position_grace_s
                due[symbol] = asked + cfg.query_interval_s if asked >= grace_end else min(
                    asked + cfg.query_interval_s, grace_end)
        return due

    def _position_lookup(self, now: float) -> Lookup | None:
        for symbol, due in sorted(self._position_due().items()):
            if due <= now:
                self._pos_asked[symbol] = now
                self._pos_ask_local[symbol] = (self.table.position(symbol),
                                               self.table.position_mark(symbol))
                return FetchPosition(symbol)
        return None

    def _mark_asked(self, lookup: Lookup, now: float) -> None:
        if isinstance(lookup, QueryOrders):
            for cl_ord_id in lookup.cl_ord_ids:
                self._asked[cl_ord_id] = now

    def _in_doubt(self, symbol: str) -> bool:
        """Whether an order of ours in ``symbol`` may be at the venue under a venue id not
        known yet: a fill naming only a venue id may be its, so it is not adopted meanwhile
        (the order's report, once found, shows the fill missing and the executions are
        fetched again). A PENDING_NEW order whose request was answered "not processed" (or
        not sent yet) is not at the venue: it holds nothing back."""
        return any(o.symbol == symbol and o.order_id is None and not o.adopted
                   and (o.state is S.UNKNOWN or o.in_flight)
                   for o in self.table.in_states(frozenset({S.PENDING_NEW, S.UNKNOWN})))

    def _missing_execs(self) -> bool:
        return any(o.venue_cum_qty > o.cum_qty or (o.state is S.FILLED and o.cum_qty < o.qty)
                   for o in self.table.orders.values())

    def _earliest_ms(self) -> int:
        stamps = [o.created_wall_ms for o in self.table.orders.values()]
        return min([self._start_wall_ms, *stamps]) - self.config.history_margin_ms

    def _on_report(self, report: OrderReport, now: float, wall_ms: int) -> str | None:
        """Apply one order report (adopting an unknown order); returns its local client id."""
        order = self.table.find(report.client_id, report.venue_id)
        if order is None:
            if report.status is None or not report.symbol:
                return None                       # a sparse update about an order we never saw
            return self._adopt(report, now, wall_ms).cl_ord_id
        self._note(self.table.apply(order.cl_ord_id, snapshot_of(report), now))
        self._check_stuck_request(order, report, now)
        return order.cl_ord_id

    def _check_stuck_request(self, order: Order, report: OrderReport, now: float) -> None:
        """A cancel or amend whose answer was lost, while the venue still shows the order open.
        A cancel is sent again (idempotent, exempt from load shedding); an amend is settled by
        the row, which already set the venue's quantity and price on the order."""
        if report.status is None or not report.status.is_open:
            return
        if order.state is S.PENDING_AMEND:
            grace = self.config.amend_grace_s
            if now - order.state_since >= (self.config.query_interval_s if grace is None
                                           else grace):
                self._note(self.table.apply(order.cl_ord_id, AmendRejected(
                    "amend outcome unknown: the venue's row is authoritative"), now))
            return
        if order.state is not S.PENDING_CANCEL:
            return
        last = self._cancel_resent.get(order.cl_ord_id, order.state_since)
        if now - last >= self.config.query_interval_s:
            self._cancel_resent[order.cl_ord_id] = now
            self._out.append(ResendCancel(order.cl_ord_id))

    def _adopt(self, report: OrderReport | FillReport, now: float, wall_ms: int) -> Order:
        order = self.table.adopt(report, now, wall_ms)
        self.adopted += 1
        if order.state in OPEN_STATES:
            self.phantoms += 1
            self._out.append(Mismatch("phantom_venue", order.cl_ord_id,
                                      f"open at the venue, unknown locally ({order.order_id})"))
        self._out.append(Resolved("adopted", order.cl_ord_id, order.state.value))
        return order

    def _note(self, transition: Transition | None) -> Transition | None:
        """Turn what a venue fact did into reports."""
        if transition is None:
            return None
        cl, before, after = transition.cl_ord_id, transition.from_state, transition.to_state
        if transition.anomaly and transition.anomaly not in _QUIET_ANOMALIES:
            if transition.anomaly == "phantom_local":
                self.phantoms += 1
            self._out.append(Mismatch(transition.anomaly, cl, f"{before.value} {transition.kind}"))
            self._out.append(Resolved(transition.anomaly, cl, f"now {after.value}"))
        if before is S.UNKNOWN and after is not S.UNKNOWN\
                and transition.kind != "absent_definitive":
            self._out.append(Resolved("unknown", cl, f"venue shows {after.value}"))
        if before is not after:
            self._answered.add(cl)
            self._suspects.discard(cl)
        if transition.kind in VENUE_KINDS and transition.kind != "absent_in_grace":
            self._evidence.add(cl)
        return transition

    def _grace_elapsed(self, order: Order, asked: float, wall_ms: int | None) -> bool:
        """Whether absence seen at ``asked`` is evidence: the order changed a grace period
        before, or (restored from the journal) was created that long before in wall time."""
        grace = self.config.visibility_grace_s
        if asked - order.state_since >= grace:
            return True
        return (wall_ms is not None and order.cl_ord_id in self._restored
                and order.state is not S.UNKNOWN
                and wall_ms - order.created_wall_ms >= grace * 1000)

    def _absent(self, order: Order, asked: float, now: float, wall_ms: int | None,
                reason: str) -> None:
        """The venue did not show ``order`` (a lookup by client id, or a cancel refused as
        not found). UNKNOWN past the acceptance window: never accepted."""
        if order.state is S.UNKNOWN:
            waited = asked - order.state_since
            if waited >= self.config.acceptance_window_s and not order.exists_at_venue:
                event = NotFoundAtVenue(asked, grace_elapsed=True, definitive=True,
                                        reason=f"never accepted: {reason} {waited:.0f} s after "
                                        "its outcome became unknown")
                if self._note(self.table.on_not_found(order.cl_ord_id, event, now)):
                    self._out.append(Resolved("unknown_not_accepted", order.cl_ord_id,
                                              event.reason))
                return
        elapsed = self._grace_elapsed(order, asked, wall_ms)
        self._note(self.table.on_not_found(order.cl_ord_id,
                                           NotFoundAtVenue(asked, elapsed, reason=reason), now))
