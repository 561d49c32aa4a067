"""Orders through a guarded ccxt exchange: never doubled, never forgotten, never guessed.

Public API::

    OrdersConfig(settle_s=10.0, lookup_interval_s=0.5, grace_s=5.0, reconcile_interval_s=5.0,
                 dms=DmsConfig(), safe_mode=SafeModeConfig(), regime=RegimeConfig(),
                 id_prefix="vg")
    class CcxtOrders(exchange, rest, facts, config, *, journal=None, clock, rng)
        await create(symbol, type, side, amount, price, params) -> ccxt order dict
        await edit(id, symbol, type, side, amount, price, params) -> ccxt order dict
        await cancel(id, symbol, params) -> ccxt order dict
        await cancel_all(symbol, params) / await cancel_all_after(timeout_ms, params)
        await on_orders(orders) / await on_trades(trades)   # from watch_orders / watch_my_trades
        state_of(client_id) -> str | None
        enter_safe_mode(reason) / refusal() -> str | None
        await aclose()

What ``create`` guarantees:

1. a client order id (the caller's, or a fresh one that fits the venue: letters and digits,
   at most ``client_id_len``) rides in the venue's own parameter (``venues/ccxt/venues.toml``);
2. the intent is written to the journal (fsync) BEFORE the request leaves (``order.intent``);
3. it is sent once; only an outcome proving nothing was processed (overload, rate limit, a
   connection never made) is resent, by the REST pipeline, with the SAME client id;
4. an ambiguous outcome (timeout, 502/504, a connection lost after the send, the venue's own
   "status unknown") makes the order UNKNOWN (``order.unknown``): it is never sent again. The
   venue is asked by client id (``fetch_order`` where the venue allows it, then
   ``fetch_open_orders``, ``fetch_closed_orders``, ``fetch_my_trades``) for up to ``settle_s``;
   found, the call returns the venue's order as if nothing had happened; proven absent (asked
   by client id after ``grace_s``), it raises ccxt's original error (never placed); otherwise
   it raises :class:`~venueguard.ccxt.errors.OrderUnknown` and a background task keeps asking.

An ambiguous ``edit`` is settled the same way: the venue is asked by client id until its order
carries the new price and size (applied: the call returns it), is closed (the amend is moot), or
still rests unchanged once ``grace_s`` has passed (not applied: ccxt's original error is raised);
without evidence in ``settle_s`` it raises :class:`~venueguard.ccxt.errors.OrderUnknown`.

Every transition goes through :class:`venueguard.core.orders.OrderTable` (fed the neutral
reports of :mod:`venueguard.venues.ccxt.reports`) and into the journal. The background task
also reconciles (open orders at the venue vs. believed open here: ``reconcile.mismatch``),
runs the dead man's switch where the venue has ccxt's ``cancelAllOrdersAfter``
(:class:`venueguard.core.dms.DeadMansSwitch`), and safe mode (:mod:`venueguard.core.safemode`,
driven by :mod:`venueguard.core.regime` over every REST outcome): new orders refused, one bulk
``cancel_all_orders``, a shorter switch.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ccxt

from venueguard.ccxt.errors import OrdersRefused, OrderUnknown
from venueguard.ccxt.rest import CcxtRest
from venueguard.core.backoff import RandomSource
from venueguard.core.dms import DeadMansSwitch, DmsConfig, Lapsed, SendCancelAllAfter
from venueguard.core.kinds import Kind
from venueguard.core.orders import (
    OPEN_STATES,
    ClOrdIdGenerator,
    NotFoundAtVenue,
    Order,
    OrderState,
    OrderTable,
    Transition,
)
from venueguard.core.regime import RegimeConfig, RegimeDetector
from venueguard.core.reports import OrderReport, normalize_side
from venueguard.core.safemode import (
    CancelAll,
    SafeAlert,
    SafeModeConfig,
    SafeModePolicy,
    SetSafeMode,
)
from venueguard.io import errors
from venueguard.io.clock import SYSTEM_CLOCK, Clock
from venueguard.io.journal import Journal
from venueguard.venues.ccxt.classify import VenueFacts
from venueguard.venues.ccxt.reports import client_id_of, fill_report, order_report

__all__ = ["CcxtOrders", "OrdersConfig"]

S = OrderState
_ID_CHARS = string.ascii_letters + string.digits
NOT_PROCESSED = frozenset({Kind.OVERLOADED, Kind.RATE_LIMITED, Kind.TRANSIENT_NETWORK, Kind.DNS,
                           Kind.EDGE_PROTECTION, Kind.FORBIDDEN, Kind.SOFTWARE_BANNED,
                           Kind.IP_BANNED})
_ABSENT = "absent"
_NOT_APPLIED = "not applied"


def _matches(shown: object, wanted: float | None) -> bool:
    """Whether a venue's value agrees with an amend's (nothing asked, or nothing shown, agrees)."""
    if wanted is None or not isinstance(shown, int | float) or isinstance(shown, bool):
        return True
    return abs(float(shown) - float(wanted)) <= 1e-9 * max(1.0, abs(float(wanted)))


@dataclass(frozen=True, slots=True)
class OrdersConfig:
    settle_s: float = 10.0
    lookup_interval_s: float = 0.5
    grace_s: float = 5.0  # absence sooner than this after the send is no evidence
    reconcile_interval_s: float = 5.0
    dms: DmsConfig | None = field(default_factory=DmsConfig)
    safe_mode: SafeModeConfig = field(default_factory=SafeModeConfig)
    regime: RegimeConfig | None = field(default_factory=RegimeConfig)
    id_prefix: str = "vg"


class CcxtOrders:
    """See the module docstring. One per guarded exchange."""

    def __init__(self, exchange: Any, rest: CcxtRest, facts: VenueFacts,
                 config: OrdersConfig | None = None, *, journal: Journal | None = None,
                 clock: Clock = SYSTEM_CLOCK, rng: RandomSource | None = None) -> None:
        self.exchange = exchange
        self.rest = rest
        self.facts = facts
        self.config = config or OrdersConfig()
        self.journal = journal
        self.clock = clock
        self.notify = rest.notify
        self._rng: RandomSource = rng or random.Random()
        self.table = OrderTable(ClOrdIdGenerator(self._rng, prefix="vg"))
        self._token = "".join(_ID_CHARS[int(self._rng.random() * 62) % 62] for _ in range(8))
        self._counter = 0
        has = getattr(exchange, "has", {}) or {}
        self.dms = (DeadMansSwitch(self.config.dms)
                    if self.config.dms is not None and has.get("cancelAllOrdersAfter") else None)
        self.safe = SafeModePolicy(self.config.safe_mode)
        now = clock.monotonic()
        self.regime = (RegimeDetector(self.config.regime, now)
                       if self.config.regime is not None else None)
        if self.regime is not None:
            rest.on_kind = self.regime.on_outcome
        self.symbols: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._refusal: str | None = None
        self._safe_pending: list[CancelAll] = []

    # ---- ids and state ------------------------------------------------------------------------

    def client_id_for(self, params: dict[str, Any]) -> str:
        """The caller's client id (ccxt's ``clientOrderId`` or the venue's own parameter, which
        is taken out of ``params``), else a fresh one."""
        given = params.pop("clientOrderId", None) or params.get(self.facts.client_id_param)
        return str(given or self.new_client_id())

    def new_client_id(self) -> str:
        """A fresh client id: ``<prefix><token><counter>``, letters and digits only."""
        self._counter += 1
        cl = f"{self.config.id_prefix}{self._token}{self._counter}"
        if len(cl) > self.facts.client_id_len:
            raise errors.ConfigError("client id prefix too long for this venue")
        return cl

    def state_of(self, client_id: str) -> str | None:
        order = self.table.orders.get(client_id)
        return order.state.value if order is not None else None

    def refusal(self) -> str | None:
        """Why new orders are refused now (safe mode), or None."""
        if self._refusal is not None:
            return self._refusal
        if not self.safe.orders_allowed:
            return f"safe mode ({self.safe.regime})"
        return None

    def enter_safe_mode(self, reason: str = "operator") -> None:
        """Refuse new orders until :meth:`leave_safe_mode`, after one bulk cancel."""
        self._refusal = f"safe mode: {reason}"
        self._ensure_task()
        self._apply_safe(self.safe.on_regime("SAFE", self.clock.monotonic()))

    def leave_safe_mode(self) -> None:
        self._refusal = None
        now = self.clock.monotonic()
        self._apply_safe(self.safe.on_regime("RECOVERING", now))
        self._apply_safe(self.safe.on_regime("NORMAL", now))

    # ---- order calls --------------------------------------------------------------------------

    async def create(self, symbol: str, order_type: str, side: str, amount: float,
                     price: float | None, params: dict[str, Any]) -> dict[str, Any]:
        self._ensure_task()
        reason = self.refusal()
        if reason is not None:
            self.notify.log("order.refused", symbol=symbol, reason=reason)
            raise OrdersRefused(f"create_order refused: {reason}", kind="refused")
        key = self.facts.client_id_param
        cl = self.client_id_for(params)
        params[key] = cl
        if cl in self.table.orders:
            raise errors.ConfigError(f"client order id {cl!r} was already used for an order")
        clock = self.clock
        now, wall_ms = clock.monotonic(), clock.wall_ms()
        order = Order(cl, symbol, normalize_side(side) or "Buy", float(amount), price, now,
                      wall_ms, state_since=now)
        self.table.restore(order)
        self.symbols.add(symbol)
        if self.journal is not None:
            await asyncio.to_thread(self.journal.record_intent, order,
                                    {"type": order_type, "venue": self.rest.venue})
        self.notify.log("order.intent", cl_ord_id=cl, symbol=symbol, side=order.side,
                        qty=order.qty, price=price, type=order_type)
        self.table.on_submitted(cl, now)
        self.notify.log("order.sent", cl_ord_id=cl)
        raw = self.exchange
        try:
            result = await self.rest.call(
                "create_order",
                lambda: raw.create_order(symbol, order_type, side, amount, price, params),
                idempotent=False, cl_ord_id=cl)
        except OrderUnknown as unknown:
            if self.table.orders[cl].state is S.PENDING_NEW:  # no venue evidence arrived yet
                self.table.on_ambiguous(cl, unknown.kind, clock.monotonic())
                self.notify.log("order.unknown", cl_ord_id=cl, kind=unknown.kind)
            await self._sync()
            found = await self._settle(cl, symbol)
            if found is None:
                raise
            if found == _ABSENT:
                raise unknown.__cause__ or unknown from None
            return found  # type: ignore[return-value]
        except errors.VenueguardError as refused:  # refused locally: nothing was sent
            self.table.on_rejected(cl, str(refused)[:200], not_processed=True,
                                   now=clock.monotonic())
            self.notify.log("order.rejected", cl_ord_id=cl, reason=str(refused)[:200])
            await self._sync()
            raise
        except ccxt.BaseError as failure:
            verdict = getattr(failure, "venueguard", None)
            kind = verdict.kind if verdict is not None else Kind.UNKNOWN
            now = clock.monotonic()
            if kind is Kind.DUPLICATE_CLORDID:  # it exists at the venue: look it up
                self.table.on_duplicate(cl, now)
                await self._sync()
                found = await self._settle(cl, symbol)
                if isinstance(found, dict):
                    return found
                raise
            self.table.on_rejected(cl, str(failure)[:200], not_processed=kind in NOT_PROCESSED,
                                   now=now)
            self.notify.log("order.rejected", cl_ord_id=cl, kind=kind.value,
                            reason=str(failure)[:200])
            await self._sync()
            raise
        self._on_answer(cl, result)
        await self._sync()
        return result  # type: ignore[no-any-return]

    async def edit(self, order_id: str, symbol: str, order_type: str, side: str,
                   amount: float | None, price: float | None,
                   params: dict[str, Any]) -> dict[str, Any]:
        raw = self.exchange
        reason = self.refusal()
        if reason is not None:
            self.notify.log("order.refused", symbol=symbol, reason=reason)
            raise OrdersRefused(f"edit_order refused: {reason}", kind="refused")
        order = self.table.find(None, order_id)
        cl = order.cl_ord_id if order is not None else None
        now = self.clock.monotonic()
        if order is not None and order.state in OPEN_STATES:
            self.table.on_amend_requested(order.cl_ord_id, amount, price, now)
        try:
            result = await self.rest.call(
                "edit_order",
                lambda: raw.edit_order(order_id, symbol, order_type, side, amount, price, params),
                idempotent=False, cl_ord_id=cl)
        except OrderUnknown as unknown:
            if cl is None:
                raise
            self.notify.log("order.amend_unknown", cl_ord_id=cl)
            await self._sync()
            settled = await self._settle_amend(cl, symbol, amount, price, now)
            if isinstance(settled, dict):
                return settled
            if settled == _NOT_APPLIED:
                raise unknown.__cause__ or unknown from None
            raise
        except ccxt.BaseError as failure:
            if order is not None and order.state is S.PENDING_AMEND:
                self.table.on_amend_rejected(order.cl_ord_id, str(failure)[:200],
                                             self.clock.monotonic())
                await self._sync()
            raise
        if order is not None and order.state is S.PENDING_AMEND:
            self.table.on_amended(order.cl_ord_id, amount, price, self.clock.monotonic())
        if cl is not None:
            self._on_answer(cl, result)
        await self._sync()
        return result  # type: ignore[no-any-return]

    async def cancel(self, order_id: str, symbol: str | None,
                     params: dict[str, Any]) -> dict[str, Any]:
        raw = self.exchange
        order = self.table.find(params.get("clientOrderId"), order_id)
        now = self.clock.monotonic()
        if order is not None and order.state in OPEN_STATES | {S.UNKNOWN}:
            with contextlib.suppress(Exception):
                self.table.on_cancel_requested(order.cl_ord_id, now)
        try:
            result = await self.rest.call(
                "cancel_order", lambda: raw.cancel_order(order_id, symbol, params),
                idempotent=False, cl_ord_id=order.cl_ord_id if order else None)
        except OrderUnknown:
            if order is None or symbol is None:
                raise
            await self._sync()
            found = await self._settle(order.cl_ord_id, symbol)
            if isinstance(found, dict):
                return found
            raise
        if order is not None:
            self._on_answer(order.cl_ord_id, result)
            if self.table.orders[order.cl_ord_id].state is S.CANCELED:
                self.notify.log("order.canceled", cl_ord_id=order.cl_ord_id)
        await self._sync()
        return result  # type: ignore[no-any-return]

    async def cancel_all(self, symbol: str | None, params: dict[str, Any]) -> Any:
        raw = self.exchange
        result = await self.rest.call("cancel_all_orders",
                                      lambda: raw.cancel_all_orders(symbol, params),
                                      idempotent=False)
        for row in result if isinstance(result, list) else []:
            if isinstance(row, Mapping):
                self._apply_report(order_report(row))
        await self._sync()
        return result

    async def cancel_all_after(self, timeout_ms: int, params: dict[str, Any]) -> Any:
        """Arm (``timeout_ms`` > 0) or disarm (0) the venue's switch, in milliseconds at the
        venue (see ``dms_endpoint`` in ``venues/ccxt/venues.toml``)."""
        raw = self.exchange
        endpoint = self.facts.dms_endpoint
        if endpoint:
            method = getattr(raw, endpoint)
            request = {**params, self.facts.dms_param: int(timeout_ms)}
            return await self.rest.call("cancel_all_orders_after", lambda: method(request),
                                        idempotent=True)
        return await self.rest.call("cancel_all_orders_after",
                                    lambda: raw.cancel_all_orders_after(timeout_ms, params),
                                    idempotent=True)

    # ---- venue evidence -----------------------------------------------------------------------

    async def on_orders(self, orders: Sequence[Mapping[str, Any]]) -> None:
        """Orders from ``watch_orders``: applied to known orders (unknown ones are left to
        reconciliation)."""
        for row in orders:
            self._apply_report(order_report(row))
        await self._sync()

    async def on_trades(self, trades: Sequence[Mapping[str, Any]]) -> None:
        """Our trades from ``watch_my_trades``: fills of known orders (once per trade id)."""
        now = self.clock.monotonic()
        for trade in trades:
            fill = fill_report(trade)
            if fill is not None and self.table.find(fill.client_id, fill.venue_id) is not None:
                self.table.on_fill_report(fill, now)
        await self._sync()

    def _on_answer(self, cl: str, result: Any) -> None:
        if not isinstance(result, Mapping):
            return
        report = order_report(result)
        if report.client_id != cl:
            report = _with_client(report, cl)
        state_before = self.table.orders[cl].state
        self._apply_report(report)
        if state_before is S.PENDING_NEW and self.table.orders[cl].state is not S.PENDING_NEW:
            self.notify.log("order.acked", cl_ord_id=cl, order_id=report.venue_id)
        if isinstance(result, dict) and not result.get("clientOrderId"):
            result["clientOrderId"] = cl  # the unified field, filled where ccxt left it empty
        self._resting_changed()

    def _apply_report(self, report: OrderReport) -> Transition | None:
        now = self.clock.monotonic()
        order = self.table.find(report.client_id, report.venue_id)
        if order is None:
            return None
        if report.status is None and report.venue_id and order.state is S.PENDING_NEW:
            return self.table.on_acked(order.cl_ord_id, report.venue_id, now)
        transition = self.table.on_order_report(report, now)
        if transition is not None and transition.to_state is S.FILLED:
            self.notify.log("order.filled", cl_ord_id=order.cl_ord_id)
        return transition

    async def _lookup(self, cl: str, symbol: str) -> dict[str, Any] | str | None:
        """The venue's order for ``cl``; ``_ABSENT`` when asked by client id and not there;
        None when the venue could not say."""
        raw, rest = self.exchange, self.rest
        query = self.facts.client_id_query
        absent_by_id = False
        try:
            if query.startswith("filter:"):
                rows = await rest.call("fetch_orders", lambda: raw.fetch_orders(
                    symbol, None, None, {"filter": {query.split(":", 1)[1]: cl}}),
                    idempotent=True)
                match = [row for row in rows if client_id_of(row) == cl]
                if match:
                    return match[0]  # type: ignore[no-any-return]
                absent_by_id = True
            elif query:
                with contextlib.suppress(ccxt.OrderNotFound):
                    found = await rest.call("fetch_order", lambda: raw.fetch_order(
                        None, symbol, {query: cl}), idempotent=True)
                    if isinstance(found, dict) and client_id_of(found) in (cl, None):
                        return found
                absent_by_id = True
            has = getattr(raw, "has", {}) or {}
            for method in ("fetch_open_orders", "fetch_closed_orders"):
                if not has.get(_camel(method)):
                    continue
                rows = await rest.call(method, functools.partial(getattr(raw, method), symbol),
                                       idempotent=True)
                for row in rows:
                    if client_id_of(row) == cl:
                        return row  # type: ignore[no-any-return]
            if has.get("fetchMyTrades"):
                trades = await rest.call("fetch_my_trades", lambda: raw.fetch_my_trades(symbol),
                                         idempotent=True)
                for trade in trades:
                    if client_id_of(trade) == cl and trade.get("order"):
                        return await rest.call(
                            "fetch_order", functools.partial(raw.fetch_order, trade["order"],
                                                             symbol), idempotent=True)
        except (ccxt.BaseError, errors.VenueguardError):
            return None
        return _ABSENT if absent_by_id else None

    async def _settle(self, cl: str, symbol: str, budget_s: float | None = None
                      ) -> dict[str, Any] | str | None:
        """Ask the venue about ``cl`` until it answers or ``budget_s`` passes."""
        clock = self.clock
        deadline = clock.monotonic() + (self.config.settle_s if budget_s is None else budget_s)
        while True:
            found = await self._lookup(cl, symbol)
            now = clock.monotonic()
            order = self.table.orders[cl]
            if isinstance(found, dict):
                await self._take_found(cl, found, kind="lookup",
                                       detail=f"venue shows {found.get('status')}")
                if not found.get("clientOrderId"):
                    found["clientOrderId"] = cl
                return found
            if found == _ABSENT and now - order.created_at >= self.config.grace_s:
                self.table.on_not_found(cl, NotFoundAtVenue(
                    now, grace_elapsed=True, definitive=True,
                    reason="looked up by client id after the grace period"), now)
                self.notify.log("reconcile.resolved", kind="absent", cl_ord_id=cl,
                                detail="not at the venue: never placed")
                await self._sync()
                return _ABSENT
            if now + self.config.lookup_interval_s > deadline:
                return None
            await asyncio.sleep(self.config.lookup_interval_s)

    async def _take_found(self, cl: str, found: dict[str, Any], *, kind: str,
                          detail: str) -> None:
        """The venue's answer to a lookup of ``cl`` becomes the order's state."""
        report = order_report(found)
        self._apply_report(report if report.client_id == cl else _with_client(report, cl))
        self.notify.log("reconcile.resolved", kind=kind, cl_ord_id=cl, detail=detail)
        self._resting_changed()
        await self._sync()

    async def _settle_amend(self, cl: str, symbol: str, amount: float | None,
                            price: float | None, sent_at: float) -> dict[str, Any] | str | None:
        """Ask the venue about an amend whose answer was lost, until it answers or ``settle_s``
        passes: the order carries the new price and size (applied), it is closed (the amend is
        moot), or, once ``grace_s`` has passed since the send, it still rests unchanged (not
        applied: ``_NOT_APPLIED``). None: no evidence in time; the order stays PENDING_AMEND."""
        clock = self.clock
        deadline = clock.monotonic() + self.config.settle_s
        while True:
            found = await self._lookup(cl, symbol)
            now = clock.monotonic()
            if isinstance(found, dict):
                applied = _matches(found.get("price"), price) and _matches(
                    found.get("amount"), amount)
                is_open = found.get("status") == "open"
                if applied or not is_open or now - sent_at >= self.config.grace_s:
                    pending = self.table.orders[cl].state is S.PENDING_AMEND
                    if applied and pending:
                        self.table.on_amended(cl, amount, price, now)
                    elif pending:
                        self.table.on_amend_rejected(
                            cl, "answer lost; the venue shows the order unchanged"
                            if is_open else "answer lost; the order closed first", now)
                    verdict = "applied" if applied else "not applied"
                    await self._take_found(
                        cl, found, kind="amend_lookup",
                        detail=f"amend {verdict}; venue shows {found.get('status')}")
                    return found if applied or not is_open else _NOT_APPLIED
            if now + self.config.lookup_interval_s > deadline:
                return None
            await asyncio.sleep(self.config.lookup_interval_s)

    # ---- background: settle, reconcile, dead man's switch, safe mode ---------------------------

    def _ensure_task(self) -> None:
        if self._task is None and not self._stopping:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        clock = self.clock
        next_reconcile = clock.monotonic() + self.config.reconcile_interval_s
        while not self._stopping:
            now = clock.monotonic()
            await self._regime_step(now)
            await self._dms_step(now)
            for order in self.table.in_states(frozenset({S.UNKNOWN})):
                await self._settle(order.cl_ord_id, order.symbol, budget_s=0.0)
            if now >= next_reconcile:
                next_reconcile = now + self.config.reconcile_interval_s
                await self._reconcile()
            await asyncio.sleep(0.25)

    async def _regime_step(self, now: float) -> None:
        if self.regime is None:
            return
        for change in self.regime.poll(now):
            self.notify.log("regime.changed", from_=change.from_.value, to=change.to.value,
                            reason=change.reason)
            self._apply_safe(self.safe.on_regime(change.to, now))
        self._apply_safe(self.safe.poll(now))
        while self._safe_pending:
            decision = self._safe_pending.pop(0)
            if isinstance(decision, CancelAll):
                ok = True
                try:
                    await self.cancel_all(decision.symbol, {})
                except (ccxt.BaseError, errors.VenueguardError):
                    ok = False
                self._apply_safe(self.safe.on_cancel_all_result(ok, self.clock.monotonic()))

    def _apply_safe(self, decisions: Sequence[Any]) -> None:
        for decision in decisions:
            if isinstance(decision, SetSafeMode):
                if self.dms is not None:
                    self.dms.set_safe_mode(decision.on, self.clock.monotonic())
            elif isinstance(decision, SafeAlert):
                self.notify.alert(decision.tier, decision.message, self.clock.monotonic())
            elif isinstance(decision, CancelAll):
                self._safe_pending.append(decision)

    def _resting_changed(self) -> None:
        if self.dms is not None:
            resting = len(self.table.in_states(OPEN_STATES | {S.UNKNOWN}))
            self.dms.on_resting(resting, self.clock.monotonic())

    async def _dms_step(self, now: float) -> None:
        dms = self.dms
        if dms is None:
            return
        for decision in dms.poll(now):
            if isinstance(decision, SendCancelAllAfter):
                try:
                    await self.cancel_all_after(decision.timeout_ms, {})
                except (ccxt.BaseError, errors.VenueguardError):
                    dms.on_failure(self.clock.monotonic())
                else:
                    dms.on_ack(decision.timeout_ms, self.clock.monotonic())
            elif isinstance(decision, Lapsed):
                self.notify.log("alert", tier="warning",
                                message="dead man's switch lapsed: the venue may have canceled")

    async def _reconcile(self) -> None:
        """Open orders at the venue vs. believed open here, per symbol traded."""
        raw = self.exchange
        if not (getattr(raw, "has", {}) or {}).get("fetchOpenOrders"):
            return
        for symbol in sorted(self.symbols):
            asked_at = self.clock.monotonic()
            try:
                rows = await self.rest.call("fetch_open_orders",
                                            functools.partial(raw.fetch_open_orders, symbol),
                                            idempotent=True)
            except (ccxt.BaseError, errors.VenueguardError):
                continue
            venue_open = set()
            for row in rows:
                report = order_report(row)
                order = self.table.find(report.client_id, report.venue_id)
                if order is None:
                    continue
                venue_open.add(order.cl_ord_id)
                self._apply_report(report)
            for order in self.table.in_states(OPEN_STATES):
                if (order.symbol == symbol and order.cl_ord_id not in venue_open
                        and asked_at - order.state_since >= self.config.grace_s):
                    self.notify.log("reconcile.mismatch", kind="open_locally_only",
                                    cl_ord_id=order.cl_ord_id)
                    await self._settle(order.cl_ord_id, symbol, budget_s=0.0)
        self._resting_changed()
        await self._sync()

    async def _sync(self) -> None:
        if self.journal is None:
            self.table.take_transitions()
            return
        await asyncio.to_thread(self.journal.sync, self.table)

    async def aclose(self) -> None:
        """Stop the background task; disarm the dead man's switch on a clean stop."""
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.dms is not None:
            final = self.dms.stop(self.clock.monotonic())
            if final is not None:
                with contextlib.suppress(ccxt.BaseError, errors.VenueguardError):
                    await self.cancel_all_after(final.timeout_ms, {})
        await self._sync()


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.title() for part in rest)


def _with_client(report: OrderReport, cl: str) -> OrderReport:
    return OrderReport(cl, report.venue_id, report.status, report.symbol, report.side,
                       report.qty, report.price, report.filled_qty, report.leaves_qty,
                       report.avg_price, report.ts_venue_ms, report.reason)

