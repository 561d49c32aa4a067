"""The venue as the agent meets it: the simulator's engine plus the contract's faults, in-process.

:class:`SimVenue` owns one :class:`~venueguard.sim.engine.Engine` (one symbol), the simulator's
:class:`~venueguard.sim.faults.FaultBook` and scenario runners, the venue's REST token buckets,
venueguard's venue health and regime detector (fed with every answer, as the client feeds them),
the agent's order table and its market-data feed. Time is simulated: step ``k`` is at
``k * step_ms`` after the start; nothing reads a clock, every draw comes from seeded streams.

One step (:meth:`SimVenue.step`): scheduled faults start, the agent's action is checked by the
client (refused in COOLDOWN or BLOCKED) and sent; requests whose delay has passed reach the venue,
where the contract's faults decide their fate; the engine runs to the next step; its private rows
reach the order table (or are held: late fills, an UNKNOWN order's evidence, a dead connection);
the feed ticks. What happened is in :attr:`SimVenue.effects` (per action) and
:attr:`SimVenue.events` (per step), in the vocabulary of docs/gym.md.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from venueguard.core.classify import Classification
from venueguard.core.health import VenueHealth, VenueState
from venueguard.core.kinds import AMBIGUOUS_KINDS, Kind
from venueguard.core.orders import CancelRejected, NotFoundAtVenue, OrderState
from venueguard.core.regime import RegimeDetector
from venueguard.gym.contract import Contract
from venueguard.gym.delivery import PrivateRows, Row
from venueguard.gym.feed import Feed
from venueguard.gym.gates import Gates
from venueguard.gym.slots import AgentOrders
from venueguard.gym.spaces import ActionKind
from venueguard.sim.engine import Engine
from venueguard.sim.faults import KINDS, Fault, FaultBook, FaultRequest, Scope, parse_fault
from venueguard.sim.model import SimError, Update
from venueguard.sim.scenario import MarketBurst, Scenario, ScenarioRunner, load_scenario
from venueguard.venues.bitmex.reports import apply_cancel_row, apply_order_row
from venueguard.venues.bitmex.rules import bitmex_rules

__all__ = ["START_MS", "SimVenue"]

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: simulated wall time of step 0
SETTLEMENT_SCALE: Mapping[str, float] = {"XBt": 1e8, "USDt": 1e6}
_SCOPES: tuple[Scope, ...] = ("rest", "ws", "orders")
Effect = dict[str, object]

_CANCELABLE = frozenset({OrderState.NEW, OrderState.PARTIALLY_FILLED, OrderState.PENDING_AMEND,
                         OrderState.PENDING_CANCEL, OrderState.UNKNOWN})
_AMENDABLE = frozenset({OrderState.NEW, OrderState.PARTIALLY_FILLED})
_AWAITING = frozenset({OrderState.PENDING_NEW, OrderState.UNKNOWN, OrderState.PENDING_CANCEL,
                       OrderState.PENDING_AMEND})
_OPEN_STATUSES = frozenset({"New", "PartiallyFilled"})
_ACTION_KINDS: tuple[ActionKind, ...] = tuple(ActionKind)  # by value: cheaper than ActionKind(v)
_ACTION_NAMES = {ActionKind.PLACE: "place", ActionKind.AMEND: "amend",
                 ActionKind.CANCEL: "cancel", ActionKind.CANCEL_ALL: "cancel_all"}


@functools.lru_cache(maxsize=32)
def _scenario(name: str) -> Scenario:
    return load_scenario(name)


@dataclass(slots=True)
class Request:
    ident: int
    action: str  # place | amend | cancel | cancel_all
    targets: tuple[str, ...]  # clOrdIDs the request is about
    params: dict[str, object]
    sent_step: int
    raced: bool = False  # a cancel that lost the race: the order filled first


class SimVenue:
    """One episode's venue (module docstring). Build a new one for every reset."""

    def __init__(self, *, symbol: str, seed: int, contract: Contract, step_ms: int,
                 rate_msgs_s: float, burstiness: float, slots: int, max_offset: int,
                 max_lots: int) -> None:
        self.contract = contract
        self.symbol = symbol
        self.step_ms = step_ms
        self.step_s = step_ms / 1000.0
        self._intensity_every = max(1, round(1000 / step_ms))
        self.max_offset = max_offset
        self.max_lots = max_lots
        self.engine = Engine([symbol], seed=seed, rate_msgs_s=rate_msgs_s, start_ms=START_MS,
                             publish_l2_25=False, publish_l2=False, burstiness=burstiness,
                             slice_ms=step_ms, publish_positions=False)
        self.market = self.engine.markets[symbol]
        self.spec = self.engine.spec(symbol)
        self.scale = SETTLEMENT_SCALE.get(self.spec.settl_currency, 1.0)
        self.faults = FaultBook(seed)
        self.runners = [ScenarioRunner(_scenario(name)) for name in contract.scenarios]
        self.gates = Gates(self._active, lambda: self.market.intensity(self.engine.now_ms),
                           rate_limit=contract.rate_limit)
        self.rules = bitmex_rules()
        self.health = VenueHealth(self.rules, now=0.0)
        self.regime = RegimeDetector(now=0.0)
        self.orders = AgentOrders(slots, seed)
        self.feed = Feed(self.market.book, symbol, stale_after_s=contract.stale_after_s,
                         reconnect_steps=contract.reconnect_steps,
                         resync_steps=contract.resync_steps, step_s=self.step_s)
        self.step_index = 0
        self.in_flight: list[tuple[int, Request]] = []
        self.rows = PrivateRows(self.orders.table)
        self.effects: list[Effect] = []
        self.events: list[dict[str, object]] = []
        self.stats: dict[str, int] = dict.fromkeys(
            ("actions", "placed", "placed_qty", "accepted", "rejected", "refused", "unknown",
             "late_fills", "evidence", "reconnects"), 0)
        self._allowed = {kind: contract.allows_kind(kind) for kind in KINDS}
        self._serial = 0
        self._hit_new_connections = False
        self._ws_noise = False
        self._kinds_on: frozenset[str] = frozenset()
        self._next_expiry = math.inf  # when the first active fault ends
        self._verdicts: dict[tuple[Kind, int | None], Classification] = {}

    # ------------------------------------------------------------------------------ time
    @property
    def now_s(self) -> float:
        return self.step_index * self.step_s

    def inject(self, raw: Mapping[str, object]) -> str:
        """Start a fault now, as ``POST /_sim/faults`` does; returns its id."""
        return self._add_fault(parse_fault(dict(raw))).id

    def clear_faults(self) -> None:
        self.faults.clear()
        self._faults_changed()

    def _add_fault(self, request: FaultRequest) -> Fault:
        fault = self.faults.add(request, self.now_s)
        if fault.scope == "ws":
            self.feed.on_fault(fault, self.step_index, stale_on=self.contract.stale_data,
                               gap_on=self.contract.gap)
        if self.contract.allows_kind(fault.kind):
            self.events.append({"event": "fault", "kind": fault.kind, "id": fault.id})
        self._faults_changed()
        return fault

    def _faults_changed(self) -> None:
        """Recompute what the per-step paths need to know about the active faults."""
        allowed = self._allowed
        active = [f for scope in _SCOPES for f in self.faults.of_scope(scope, self.now_s)]
        self._kinds_on = frozenset(f.kind for f in active if allowed[f.kind])
        self._next_expiry = min((f.until_s for f in active if f.until_s is not None),
                                default=math.inf)
        ws = self.faults.of_scope("ws", self.now_s)
        self._hit_new_connections = self.contract.stale_data and any(
            f.kind in ("ws_stall", "ws_half_open") and f.new_connections for f in ws)
        self._ws_noise = any(f.kind in ("ws_reorder", "ws_duplicate") for f in ws)

    def _active(self, kind: str) -> Fault | None:
        if kind not in self._kinds_on:  # exact: refreshed whenever a fault starts or ends
            return None
        return self.faults.first(kind, self.now_s)

    # ------------------------------------------------------------------------------ step
    def step(self, action: Sequence[int]) -> None:
        """Run one step with ``action`` ([kind, side, offset, size, slot])."""
        self.effects = []
        self.events = []
        self.orders.release_finished()
        now_s = self.now_s
        faults = self.faults
        if now_s >= self._next_expiry and faults.expire(now_s):
            self._faults_changed()
        for runner in self.runners:
            for request in runner.due(now_s):
                if isinstance(request, MarketBurst):  # a scheduled market burst
                    if request.symbol in (None, self.symbol):
                        self.engine.burst(request.size, self.symbol, self.engine.now_ms)
                else:
                    self._add_fault(request)
        deadline = self.health.next_deadline()
        if deadline is not None and deadline <= now_s:
            self.health.poll(now_s)
        kind = action[0]
        if kind:
            self._act(_ACTION_KINDS[kind], action, now_s)
        if self.in_flight:
            self._deliver_due()
        self.step_index += 1
        self.engine.advance(START_MS + self.step_index * self.step_ms)
        self._route(self.engine.drain_updates())
        self._after_advance()

    def _after_advance(self) -> None:
        step = self.step_index
        now_s = self.now_s
        rows = self.rows
        if rows.late:
            released = rows.release_late(step, now_s, delivering=self.feed.delivering)
            if released:
                self.stats["late_fills"] += released
                self.events.append({"event": "late_fill", "executions": released})
        if rows.evidence_at:
            for cl in rows.due_evidence(step):
                self._settle(cl, now_s)
        if step % self._intensity_every == 0:  # market intensity once a simulated second
            self.regime.on_intensity(self.market.intensity(self.engine.now_ms), now_s)
        deadline = self.regime.next_deadline()
        if deadline is not None and deadline <= now_s:
            self.regime.poll(now_s)
        feed = self.feed
        reconnects = feed.reconnects
        came_back = feed.tick(step, now_s, hit_again=self._hit_new_connections,
                              regime=self.regime.regime._value_,
                              venue_state=self.health.state._value_)
        if feed.reconnects != reconnects:
            self.stats["reconnects"] += 1
            self.events.append({"event": "stale", "data_age_s": round(feed.data_age_s(now_s), 3)})
        if came_back:
            self.events.append({"event": "resync"})
            rows.flush_queued(now_s)
        table = self.orders.table
        for transition in table.take_transitions():
            if transition.to_state is OrderState.UNKNOWN and (
                    transition.from_state is not OrderState.UNKNOWN):
                self.stats["unknown"] += 1

    # ------------------------------------------------------------------------ the client
    def _effect(self, action: str, result: str, reason: str = "", **extra: object) -> Effect:
        effect: Effect = {"action": action, "result": result, "reason": reason,
                          "step": self.step_index, **extra}
        self.effects.append(effect)
        if result in ("accepted", "rejected", "refused"):
            self.stats[result] += 1
        return effect

    def _client_refusal(self, now_s: float) -> str | None:
        state = self.health.state
        if state is VenueState.BLOCKED and self.contract.ban:
            return "blocked"
        if (state is VenueState.COOLDOWN and self.contract.cooldown
                and not self.health.allows_requests(now_s)):
            return "cooldown"
        return None

    def _act(self, kind: ActionKind, action: Sequence[int], now_s: float) -> None:
        name = _ACTION_NAMES[kind]
        self.stats["actions"] += 1
        refusal = self._client_refusal(now_s)
        if refusal is not None:
            self._effect(name, "refused", refusal)
            return
        _, side_i, offset_i, size_i, slot = action
        table = self.orders.table
        if kind is ActionKind.PLACE:
            self._place("Buy" if side_i == 0 else "Sell", offset_i - self.max_offset,
                        size_i + 1, now_s)
        elif kind is ActionKind.AMEND:
            order = self.orders.at(slot)
            if order is None or order.state not in _AMENDABLE:
                self._effect(name, "refused", "not_amendable", slot=slot)
                return
            tick = self._price_tick(order.side, offset_i - self.max_offset)
            if tick is None:
                self._effect(name, "refused", "no_data", slot=slot)
                return
            qty = (size_i + 1) * self.spec.lot_size
            price = self.spec.price(tick)
            table.on_amend_requested(order.cl_ord_id, qty, price, now_s)
            self._send(Request(self._next(), name, (order.cl_ord_id,),
                               {"origClOrdID": order.cl_ord_id, "orderQty": qty,
                                "price": price}, self.step_index))
        elif kind is ActionKind.CANCEL:
            order = self.orders.at(slot)
            if order is None or order.state not in _CANCELABLE:
                self._effect(name, "refused", "not_cancelable", slot=slot)
                return
            table.on_cancel_requested(order.cl_ord_id, now_s)
            self._send(Request(self._next(), name, (order.cl_ord_id,), {}, self.step_index))
        else:
            targets = tuple(o.cl_ord_id for o in self.orders.live() if o.state in _CANCELABLE)
            for cl in targets:
                table.on_cancel_requested(cl, now_s)
            self._send(Request(self._next(), name, targets, {}, self.step_index))

    def _next(self) -> int:
        self._serial += 1
        return self._serial

    def _price_tick(self, side: str, offset: int) -> int | None:
        feed = self.feed
        if feed.bid_tick is None or feed.ask_tick is None:
            return None
        tick = feed.bid_tick - offset if side == "Buy" else feed.ask_tick + offset
        return tick if tick > 0 else None

    def _place(self, side: str, offset: int, lots: int, now_s: float) -> None:
        slot = self.orders.free_slot()
        if slot is None:
            self._effect("place", "refused", "no_slot")
            return
        tick = self._price_tick(side, offset)
        if tick is None:
            self._effect("place", "refused", "no_data")
            return
        qty = lots * self.spec.lot_size
        price = self.spec.price(tick)
        order = self.orders.new(slot, self.symbol, side, qty, price, now_s)
        cl = order.cl_ord_id
        self.orders.table.on_submitted(cl, now_s)
        params: dict[str, object] = {"symbol": self.symbol, "side": side, "orderQty": qty,
                                     "price": price, "ordType": "Limit", "clOrdID": cl}
        if self.contract.post_only:
            params["execInst"] = "ParticipateDoNotInitiate"
        self._send(Request(self._next(), "place", (cl,), params, self.step_index))

    def _send(self, request: Request) -> None:
        delay = 0
        contract = self.contract
        if contract.ack_delay:
            delay = contract.ack_steps
            fault = self._active("latency")
            if fault is not None:
                ms = float(fault.params["ms"])
                jitter = float(fault.params["jitter_ms"])
                if jitter > 0:
                    ms += fault.rng.uniform(-jitter, jitter)
                delay += math.ceil(max(0.0, ms) / self.step_ms)
        if delay == 0:
            self._arrive(request)
            return
        self.in_flight.append((self.step_index + delay, request))
        self._effect(request.action, "in_flight", "", delay_steps=delay,
                     cl_ord_id=request.targets[0] if len(request.targets) == 1 else "")

    def _deliver_due(self) -> None:
        step = self.step_index
        due = [r for at, r in self.in_flight if at <= step]
        if due:
            self.in_flight = [(at, r) for at, r in self.in_flight if at > step]
            for request in due:
                self._arrive(request)

    # ------------------------------------------------------------------------- the venue
    def _verdict(self, kind: Kind, status: int | None, retry_after_s: float | None = None,
                 message: str = "") -> Classification:
        if retry_after_s is None and not message:
            cached = self._verdicts.get((kind, status))
            if cached is not None:
                return cached
        verdict = Classification(kind, self.rules.rule(kind).action, kind in AMBIGUOUS_KINDS,
                                 status, retry_after_s, message)
        if retry_after_s is None and not message:
            self._verdicts[(kind, status)] = verdict
        return verdict

    def _outcome(self, verdict: Classification) -> None:
        now_s = self.now_s
        self.health.on_outcome(verdict, now_s)
        self.regime.on_outcome(verdict.kind, now_s)

    def _arrive(self, request: Request) -> None:
        """The request reaches the edge, then the venue; the contract's faults decide."""
        refusal = self.gates.before(request.action, self.now_s)
        if refusal is not None:
            self._outcome(self._verdict(refusal.kind, refusal.status, refusal.retry_after_s))
            self._rejected(request, refusal.reason, not_processed=True,
                           retry_after_s=refusal.retry_after_s)
            return
        try:
            result = self._engine_call(request)
        except SimError as exc:
            self._outcome(self._verdict(Kind.ORDER_REJECTED, exc.status))
            self._rejected(request, "invalid", not_processed=False, message=exc.message)
            return
        lost = self.gates.lost_answer()
        if lost is not None:
            self._outcome(self._verdict(Kind.AMBIGUOUS_TIMEOUT, lost[1]))
            self._ambiguous(request, lost[0])
            return
        self._outcome(self._verdict(Kind.OK, 200))
        self._accepted(request, result)

    def _engine_call(self, request: Request) -> list[Row]:
        engine = self.engine
        now_ms = engine.now_ms
        action = request.action
        if action == "place":
            row = engine.place_order(request.params, now_ms)
            self.stats["placed"] += 1
            qty = request.params["orderQty"]
            self.stats["placed_qty"] += qty if isinstance(qty, int) else 0
            return [row]
        if action == "amend":
            return [engine.amend_order(request.params, now_ms)]
        if action == "cancel":
            fault = self._active("cancel_race")
            if fault is not None and fault.roll() and engine.fill_resting(
                    [], list(request.targets), now_ms):
                request.raced = True
            return engine.cancel_orders([], list(request.targets), None, now_ms)
        return engine.cancel_all(self.symbol, None, None, now_ms)

    def _rejected(self, request: Request, reason: str, *, not_processed: bool,
                  retry_after_s: float | None = None, message: str = "") -> None:
        table = self.orders.table
        now_s = self.now_s
        for cl in request.targets:
            state = table.orders[cl].state
            if request.action == "place":
                table.on_rejected(cl, reason, not_processed=not_processed, now=now_s)
                if state is OrderState.PENDING_NEW and table.orders[cl].state is (
                        OrderState.PENDING_NEW):
                    table.on_withdrawn(cl, f"{reason}: not retried", now_s)
            elif request.action == "amend":
                if state is OrderState.PENDING_AMEND:
                    table.on_amend_rejected(cl, reason, now_s)
            elif state in (OrderState.PENDING_CANCEL, OrderState.UNKNOWN):
                table.apply(cl, CancelRejected(reason), now_s)
        extra: dict[str, object] = {}
        if retry_after_s is not None:
            extra["retry_after_s"] = retry_after_s
        if message:
            extra["message"] = message[:120]
        self._effect(request.action, "rejected", reason, sent_step=request.sent_step,
                     cl_ord_id=request.targets[0] if len(request.targets) == 1 else "", **extra)

    def _ambiguous(self, request: Request, reason: str) -> None:
        table = self.orders.table
        now_s = self.now_s
        delay = self.contract.evidence_steps
        fault = self._active("delayed_visibility")
        if fault is not None:
            delay += math.ceil(float(fault.params["delay_s"]) / self.step_s)
        for cl in request.targets:
            if table.orders[cl].state in _AWAITING:
                table.on_ambiguous(cl, reason, now_s)
            self.rows.hold(cl, self.step_index + delay + 1)
        self._effect(request.action, "unknown", reason, sent_step=request.sent_step,
                     cl_ord_id=request.targets[0] if len(request.targets) == 1 else "",
                     evidence_in_steps=delay)

    def _accepted(self, request: Request, rows: list[Row]) -> None:
        table = self.orders.table
        now_s = self.now_s
        action = request.action
        reason = ""
        result = "accepted"
        if action == "amend":
            params = request.params
            qty, price = params["orderQty"], params["price"]
            table.on_amended(request.targets[0], qty if isinstance(qty, int) else None,
                             price if isinstance(price, float) else None, now_s)
        for row in rows:
            if action in ("place", "amend"):
                apply_order_row(table, row, now_s)
                if row.get("ordStatus") == "Canceled":
                    result, reason = "rejected", "post_only"
            else:
                apply_cancel_row(table, row, now_s)
                if "error" in row and action == "cancel":
                    result = "rejected"
                    reason = "filled_first" if request.raced else "not_open"
        self._effect(action, result, reason, sent_step=request.sent_step,
                     cl_ord_id=request.targets[0] if len(request.targets) == 1 else "")

    # --------------------------------------------------------------------- private rows
    def _route(self, updates: list[Update]) -> None:
        top = trades = volume = 0
        delivering = self.feed.delivering
        book = self.market.book
        # the engine counts level changes instead of building orderBookL2 rows nobody reads
        book_changes = book.unpublished_changes
        book.unpublished_changes = 0
        any_data = book_changes > 0
        for update in updates:
            if update.private:
                table = update.table
                if table == "order" or table == "execution":
                    self._private(table == "execution", update.rows)
            elif delivering:
                any_data = True
                table = update.table
                if table == "quote":
                    top += 1
                elif table == "trade":
                    for row in update.rows:
                        trades += 1
                        size = row.get("size")
                        volume += size if isinstance(size, int) else 0
        if delivering:
            self.feed.on_public(top, trades, volume, any_data)
            if self._ws_noise:
                self._noise(updates, book_changes)

    def _noise(self, updates: list[Update], book_changes: int) -> None:
        """Messages a reordering or duplicating feed spoils: each public message (an
        ``orderBookL2`` change included) is rolled for."""
        public = sum(1 for u in updates if not u.private) + book_changes
        for kind in ("ws_reorder", "ws_duplicate"):
            fault = self.faults.first(kind, self.now_s)
            if fault is not None:
                self.feed.on_rejected(sum(1 for _ in range(public) if fault.roll()))

    def _private(self, is_exec: bool, rows: list[Row]) -> None:
        late_steps = None
        if is_exec:
            fault = self._active("late_fill")
            if fault is not None:
                late_steps = max(1, math.ceil(float(fault.params["delay_s"]) / self.step_s))
        self.rows.on_rows(is_exec, rows, step=self.step_index, now_s=self.now_s,
                          late_steps=late_steps, delivering=self.feed.delivering)

    def _settle(self, cl: str, now_s: float) -> None:
        """Evidence for an UNKNOWN order: its withheld rows, then a lookup by clOrdID."""
        self.rows.release_held(cl, now_s)
        table = self.orders.table
        order = table.orders[cl]
        if order.state in (OrderState.UNKNOWN, OrderState.PENDING_AMEND,
                           OrderState.PENDING_CANCEL):
            rows = self.engine.get_orders(filter={"clOrdID": cl})
            if not rows:
                if order.state is OrderState.UNKNOWN:
                    table.on_not_found(cl, NotFoundAtVenue(now_s, grace_elapsed=True,
                                                           definitive=True), now_s)
            else:
                row = rows[0]
                if order.state is OrderState.PENDING_AMEND:  # the venue's row says what stands
                    table.on_amend_rejected(cl, "answer lost", now_s)
                elif (order.state is OrderState.PENDING_CANCEL
                      and row.get("ordStatus") in _OPEN_STATUSES):
                    table.apply(cl, CancelRejected("answer lost; still open"), now_s)
                apply_order_row(table, row, now_s)
        self.stats["evidence"] += 1
        self.events.append({"event": "evidence", "cl_ord_id": cl,
                            "state": table.orders[cl].state.value})

    # ------------------------------------------------------------------------- the truth
    def equity(self) -> float:
        """Realised plus unrealised PnL at the mid, in settlement currency (venue's truth)."""
        pos = self.engine.account.positions.get(self.symbol)
        if pos is None:
            return 0.0
        mid = self.market.mid_price()
        value = self.spec.value(pos.qty, mid) - pos.cost if pos.qty else 0.0
        return (pos.realised_gross - pos.comm + value) / self.scale

    def venue_position(self) -> int:
        pos = self.engine.account.positions.get(self.symbol)
        return 0 if pos is None else pos.qty

    def filled_qty(self) -> int:
        pos = self.engine.account.positions.get(self.symbol)
        return 0 if pos is None else pos.exec_buy_qty + pos.exec_sell_qty


