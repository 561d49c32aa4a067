"""Orders through a guarded ccxt exchange, on venueguard's one order runtime.

Public API::

    OrdersConfig(settle_s=10.0, lookup_interval_s=0.5, grace_s=5.0, reconcile_interval_s=5.0,
                 dms=DmsConfig(), safe_mode=SafeModeConfig(), regime=RegimeConfig(),
                 id_prefix="vg", visibility_horizon_s=None, start_timeout_s=30.0,
                 reconcile=None)
    class CcxtOrders(exchange, rest, facts, config, *, journal=DEFAULT_JOURNAL, clock, rng)
        await start()                                     # journal -> table, restart reconcile
        await create(symbol, type, side, amount, price, params) -> ccxt order dict
        await edit(id, symbol, type, side, amount, price, params) -> ccxt order dict
        await cancel(id, symbol, params) -> ccxt order dict
        await cancel_all(symbol, params) / await cancel_all_after(timeout_ms, params)
        on_rows("orders" | "mytrades", rows)      # from watch_orders / watch_my_trades
        state_of(client_id) -> str | None
        enter_safe_mode(reason) / leave_safe_mode() / refusal() -> str | None
        await aclose()

The policy is not here (the docs' ccxt page says what each call guarantees): every order call
runs on :class:`~venueguard.io.orders_runtime.OrdersRuntime` through
:class:`~venueguard.venues.ccxt.adapter.CcxtAdapter`. This module translates ccxt's arguments
into an :class:`~venueguard.io.order_manager.OrderIntent`, and the order's state back into
ccxt's answer: the venue's order dict, ccxt's own exception, or
:class:`~venueguard.ccxt.errors.OrderUnknown` when venue evidence has not settled the order
within ``settle_s`` (the runtime keeps asking).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import string
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Final

import ccxt

from venueguard.ccxt.errors import OrdersRefused, OrderUnknown
from venueguard.ccxt.rest import CcxtRest
from venueguard.core.backoff import RandomSource
from venueguard.core.dms import DmsConfig
from venueguard.core.health import VenueState
from venueguard.core.kinds import Kind
from venueguard.core.orders import OPEN_STATES, Order, OrderState
from venueguard.core.reconcile import ReconcileConfig
from venueguard.core.regime import RegimeConfig
from venueguard.core.reports import normalize_side
from venueguard.core.safemode import SafeModeConfig
from venueguard.io import errors
from venueguard.io.clock import SYSTEM_CLOCK, Clock
from venueguard.io.journal import Journal
from venueguard.io.journal_lock import JournalLock
from venueguard.io.order_amend import matches
from venueguard.io.order_manager import OrderIntent, OrderManagerConfig, OrdersBlocked
from venueguard.io.orders_runtime import OrdersRuntime, RuntimeConfig
from venueguard.venues.ccxt.adapter import CcxtAdapter, venue_failure
from venueguard.venues.ccxt.classify import VenueFacts

__all__ = ["DEFAULT_JOURNAL", "STATE_DIR_ENV", "CcxtOrders", "OrdersConfig", "default_journal",
           "state_dir"]

S = OrderState
_ID_CHARS: Final = string.ascii_letters + string.digits
_SETTLING: Final = frozenset({S.PENDING_NEW, S.UNKNOWN})
_AMENDING: Final = frozenset({S.PENDING_AMEND})
#: Where default journals live: ``$VENUEGUARD_STATE_DIR``, else ``$XDG_STATE_HOME/venueguard``,
#: else ``~/.local/state/venueguard``.
STATE_DIR_ENV: Final = "VENUEGUARD_STATE_DIR"


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT_JOURNAL"


#: ``guard(exchange, journal=DEFAULT_JOURNAL)``: the default journal of the exchange's account.
DEFAULT_JOURNAL: Final = _Default()


def state_dir() -> Path:
    """The directory of default journals (see ``STATE_DIR_ENV``)."""
    given = os.environ.get(STATE_DIR_ENV)
    if given:
        return Path(given).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "state"
    return base / "venueguard"


def default_journal(exchange_id: str, api_key: str | None) -> Path:
    """``<state dir>/ccxt-<exchange id>-<account>.db``; the account is a digest of the API key
    (never the key itself), ``public`` without one."""
    account = (hashlib.sha256(api_key.encode()).hexdigest()[:12] if api_key else "public")
    safe_id = "".join(ch for ch in exchange_id if ch.isalnum() or ch in "-_") or "exchange"
    return state_dir() / f"ccxt-{safe_id}-{account}.db"


@dataclass(frozen=True, slots=True)
class OrdersConfig:
    settle_s: float = 10.0              # how long an order call waits for venue evidence
    lookup_interval_s: float = 0.5      # how often an order in doubt is asked about
    grace_s: float = 5.0                # an acked order may be missing from queries this long
    reconcile_interval_s: float = 5.0   # open orders, executions and position sweeps
    dms: DmsConfig | None = field(default_factory=DmsConfig)
    safe_mode: SafeModeConfig = field(default_factory=SafeModeConfig)
    regime: RegimeConfig | None = field(default_factory=RegimeConfig)
    id_prefix: str = "vg"
    #: None: the venue's rules file (``[orders] visibility_horizon_s``, 60 s by default).
    visibility_horizon_s: float | None = None
    start_timeout_s: float = 30.0       # restart reconciliation, before new orders are refused
    #: The reconciler's whole configuration, in place of the one derived from the fields above
    #: and the visibility horizon (None). The position is checked only where ccxt can fetch it.
    reconcile: ReconcileConfig | None = None


class CcxtOrders:
    """See the module docstring. One per guarded exchange; ``journal`` is a
    :class:`~venueguard.io.journal.Journal`, a path, ``DEFAULT_JOURNAL`` or None/False (no
    journal: a crash forgets the orders in doubt; said in the event log)."""

    def __init__(self, exchange: Any, rest: CcxtRest, facts: VenueFacts,
                 config: OrdersConfig | None = None, *, journal: object = DEFAULT_JOURNAL,
                 clock: Clock = SYSTEM_CLOCK, rng: RandomSource | None = None) -> None:
        self.exchange = exchange
        self.rest = rest
        self.facts = facts
        self.config = config or OrdersConfig()
        self.clock = clock
        self.notify = rest.notify
        self.events = rest.notify.events
        self._rng: RandomSource = rng or random.Random()
        self._token = "".join(_ID_CHARS[int(self._rng.random() * 62) % 62] for _ in range(8))
        self._counter = 0
        self.journal: Journal | None = journal if isinstance(journal, Journal) else None
        self._journal_path: Path | None = (Path(journal) if isinstance(journal, str | Path)
                                           else None)
        self._journal_off = journal is None or journal is False
        self._owned: Journal | None = None
        self._held = contextlib.ExitStack()   # what the owned journal holds: lock, scratch dir
        self.adapter = CcxtAdapter(exchange, rest, facts)
        self.runtime: OrdersRuntime | None = None
        self._task: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()
        self._forced: str | None = None
        self._closed = False
        self._changed = asyncio.Event()       # set by every event: an order may have moved
        self.events.subscribe(self._on_event)

    # ---- ids and state ------------------------------------------------------------------------

    def client_id_for(self, params: dict[str, Any]) -> str:
        """The caller's client id (ccxt's ``clientOrderId`` or the venue's own parameter, both
        taken out of ``params``), else a fresh one."""
        given = params.pop("clientOrderId", None) or params.pop(self.facts.client_id_param, None)
        return str(given or self.new_client_id())

    def new_client_id(self) -> str:
        """A fresh client id: ``<prefix><token><counter>``, letters and digits only, never one
        the journal holds."""
        while True:
            self._counter += 1
            cl = f"{self.config.id_prefix}{self._token}{self._counter}"
            if len(cl) > self.facts.client_id_len:
                raise errors.ConfigError("client id prefix too long for this venue")
            if self.runtime is None or cl not in self.runtime.manager.table.orders:
                return cl

    def state_of(self, client_id: str) -> str | None:
        order = None if self.runtime is None else self.runtime.manager.table.orders.get(client_id)
        return order.state.value if order is not None else None

    @property
    def dms(self) -> Any:
        """The dead man's switch runner (None before the first order call, or without one)."""
        return None if self.runtime is None else self.runtime.dms

    def refusal(self) -> str | None:
        """Why new orders are refused now (safe mode), or None."""
        if self.runtime is None:
            return None if self._forced is None else f"safe mode: {self._forced}"
        return self.runtime.manager.refusal()

    def enter_safe_mode(self, reason: str = "operator") -> None:
        """Refuse new orders until :meth:`leave_safe_mode`, after one bulk cancel."""
        self._forced = reason
        if self.runtime is not None:
            self.runtime.enter_safe_mode(f"safe mode: {reason}")

    def leave_safe_mode(self) -> None:
        self._forced = None
        if self.runtime is not None:
            self.runtime.leave_safe_mode()

    def _runtime_ended(self, task: asyncio.Task[None]) -> None:
        """The runtime ends only on close; anything else is a bug worth an alert (and new
        orders are refused from then on: nothing reconciles them any more)."""
        if task.cancelled() or self._closed:
            return
        error = task.exception()
        self._forced = "the order runtime stopped"
        self.notify.alert("critical", f"order runtime stopped: {error!r}"[:300],
                          self.clock.monotonic())
        if self.runtime is not None:
            self.runtime.manager.stop()

    def _on_event(self, record: Mapping[str, object]) -> None:
        self._changed.set()

    # ---- the runtime ----------------------------------------------------------------------------

    def journal_path(self) -> Path | None:
        """The journal file this exchange uses (None: no journal, or one given open)."""
        if self.journal is not None or self._journal_off:
            return None
        return self._journal_path or default_journal(
            self.facts.exchange_id, getattr(self.exchange, "apiKey", None) or None)

    def journal_exists(self) -> bool:
        path = self.journal_path()
        return path is not None and path.exists()

    def _runtime_config(self) -> RuntimeConfig:
        cfg, has = self.config, self.adapter.has
        positions = bool(has.get("fetchPositions"))      # checked only where ccxt can fetch it
        if cfg.reconcile is not None:
            reconcile = replace(cfg.reconcile,
                                check_position=cfg.reconcile.check_position and positions)
        else:
            horizon = (cfg.visibility_horizon_s if cfg.visibility_horizon_s is not None
                       else self.facts.rules.visibility_horizon_s)
            step = cfg.lookup_interval_s
            reconcile = ReconcileConfig(
                visibility_grace_s=cfg.grace_s, acceptance_window_s=horizon,
                unknown_first_query_s=min(step, 0.5), query_interval_s=step,
                sweep_interval_s=cfg.reconcile_interval_s,
                safe_sweep_interval_s=2 * cfg.reconcile_interval_s,
                unknown_window_s=max(horizon, 60.0), amend_grace_s=cfg.grace_s,
                budget_queries=max(10, int(4 * 10.0 / max(step, 0.05))),
                budget_interval_s=10.0, check_position=positions)
        manager = OrderManagerConfig(
            reconcile=reconcile, cl_ord_prefix=cfg.id_prefix, start_timeout_s=cfg.start_timeout_s,
            idle_wake_s=min(1.0, max(reconcile.query_interval_s, 0.05)))
        return RuntimeConfig(manager=manager,
                             dms=cfg.dms if has.get("cancelAllOrdersAfter") else None,
                             safe=cfg.safe_mode, regime=cfg.regime or RegimeConfig(),
                             dms_arms_in_flight=False)

    def _open_journal(self) -> Journal:
        """The journal given, else the one opened here (once: a start that failed keeps it)."""
        if self.journal is not None:
            return self.journal
        if self._owned is not None:
            return self._owned
        held = self._held
        if self._journal_off:
            scratch = held.enter_context(tempfile.TemporaryDirectory(
                prefix="venueguard-", ignore_cleanup_errors=True))
            path = Path(scratch) / "orders.db"
        else:
            path = self.journal_path() or Path("venueguard-orders.db")
            path.parent.mkdir(parents=True, exist_ok=True)
        held.callback(JournalLock.acquire(path).release)     # one process per journal
        try:
            self._owned = held.enter_context(Journal.open(path))
        except BaseException:
            held.close()
            raise
        return self._owned

    async def start(self) -> OrdersRuntime:
        """Open the journal and reconcile it with the venue (once); the runtime."""
        if self._closed:
            raise OrdersRefused("order calls refused: the exchange was closed", kind=Kind.REFUSED)
        async with self._starting:
            if self.runtime is not None:
                return self.runtime
            journal = await asyncio.to_thread(self._open_journal)
            self.notify.log("orders.journal", path=None if self._journal_off
                            else str(journal.path), durable=not self._journal_off)
            if self._journal_off:
                self.notify.alert("warning", "orders are not journaled (journal=False): a crash "
                                  "forgets every order in doubt", self.clock.monotonic())
            symbols = await asyncio.to_thread(journal.unsettled_symbols)
            self.adapter.symbols.update(symbols)
            runtime = OrdersRuntime(self.adapter, journal, symbols=symbols, events=self.events,
                                    metrics=self.notify.metrics, alerts=self.notify.alerts,
                                    clock=self.clock, rng=self._rng,
                                    config=self._runtime_config(),
                                    regime_source=(lambda: "NORMAL")
                                    if self.config.regime is None else None)
            manager = runtime.manager

            def symbol_of(cl: str) -> str | None:
                order = manager.table.orders.get(cl)
                return order.symbol if order is not None else None

            self.adapter.symbol_of = symbol_of
            if self._forced is not None:
                runtime.enter_safe_mode(f"safe mode: {self._forced}")
            await self._reconcile_first(runtime)
            self._task = asyncio.get_running_loop().create_task(runtime.run(),
                                                                name="ccxt-orders-runtime")
            self._task.add_done_callback(self._runtime_ended)
            self.runtime = runtime
            return runtime

    async def _reconcile_first(self, runtime: OrdersRuntime) -> None:
        """``runtime.start()``, given up at once (and raised, as ccxt's own error or one of
        ``venueguard.ccxt.errors``: nothing was sent) when the venue cannot be asked now: it
        refuses our credentials, or it is cooling down or blocked. The next call tries again."""
        self.adapter.last_failure = self.adapter.last_venue_failure = None
        task = asyncio.get_running_loop().create_task(runtime.start())
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=0.05)
                failure = self.adapter.last_failure
                if failure is not None and not task.done() and (
                        isinstance(failure, errors.AuthError | errors.CoolingDown | errors.Blocked)
                        or isinstance(venue_failure(failure), errors.AuthError)
                        or self.rest.health.state in (VenueState.COOLDOWN, VenueState.BLOCKED)):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                    raise _ccxt_error(self.adapter.last_venue_failure or failure)
        finally:
            if not task.done():
                task.cancel()
        task.result()

    # ---- order calls --------------------------------------------------------------------------

    async def create(self, symbol: str, order_type: str, side: str, amount: float,
                     price: float | None, params: dict[str, Any]) -> dict[str, Any]:
        order_side = normalize_side(side)
        if order_side is None:                # refused before anything is journaled or sent
            raise ccxt.InvalidOrder(f"create_order: side must be buy or sell, not {side!r}")
        runtime = await self.start()
        cl = self.client_id_for(params)
        intent = OrderIntent(symbol, order_side, amount, price,
                             post_only=False, cl_ord_id=cl,
                             extra={"type": order_type, "params": params})
        try:
            order = await runtime.submit(intent)
        except OrdersBlocked as blocked:
            raise OrdersRefused(f"create_order refused: {blocked}", kind=Kind.REFUSED) from None
        except ValueError as bad:
            raise ccxt.InvalidOrder(f"create_order: {bad}") from None
        await self._settled(order, _SETTLING)
        return self._answer(order, "create_order")

    async def edit(self, order_id: str, symbol: str, order_type: str, side: str,
                   amount: float | None, price: float | None,
                   params: dict[str, Any]) -> dict[str, Any]:
        runtime = await self.start()
        order = runtime.manager.table.find(params.get("clientOrderId"), order_id)
        if order is None or order.state not in (S.NEW, S.PARTIALLY_FILLED):
            return await self._own_call("edit_order", order_id, symbol, order_type, side, amount,
                                        price, params)
        cl = order.cl_ord_id
        qty = None if amount is None or amount == order.qty else amount
        new_price = None if price is None or price == order.price else price
        if qty is None and new_price is None:
            return self._row(order)
        self.adapter.amend_extra[cl] = {"type": order_type, "side": side, "params": params}
        try:
            await runtime.amend(cl, price=new_price, qty=qty)  # type: ignore[arg-type]
        except OrdersBlocked as blocked:
            raise OrdersRefused(f"edit_order refused: {blocked}", kind=Kind.REFUSED) from None
        except ValueError as bad:
            raise ccxt.InvalidOrder(f"edit_order: {bad}") from None
        failure = self.adapter.failures.get(cl)
        settling = order.state in _AMENDING       # the answer was lost, the order in doubt
        if isinstance(failure, errors.AmbiguousOutcome) and not settling:
            # venue evidence settled it while the answer was lost: say the answer was lost
            self.notify.log("order.amend_unknown", cl_ord_id=cl, reason=failure.kind.value)
        if settling:
            await self._settled(order, _AMENDING)
            if order.state in _AMENDING:
                raise self._unknown(cl, failure, "edit_order")
        applied = matches(order, qty, new_price)
        if settling or isinstance(failure, errors.AmbiguousOutcome):
            self.notify.log("reconcile.resolved", kind="amend_lookup", cl_ord_id=cl,
                            detail=f"amend {'applied' if applied else 'not applied'}; "
                            f"venue shows {order.state.value}")
        if not applied and (order.state in OPEN_STATES if settling else failure is not None):
            raise _ccxt_error(failure) if failure is not None else ccxt.InvalidOrder(
                f"edit_order: {cl} rests unchanged")
        return self._row(order)

    async def cancel(self, order_id: str, symbol: str | None,
                     params: dict[str, Any]) -> dict[str, Any]:
        runtime = await self.start()
        order = runtime.manager.table.find(params.get("clientOrderId"), order_id)
        if order is None or order.state not in OPEN_STATES | {S.UNKNOWN}:
            return await self._own_call("cancel_order", order_id, symbol, params)
        cl = order.cl_ord_id
        self.adapter.failures.pop(cl, None)
        await runtime.cancel(cl)
        failure = self.adapter.failures.get(cl)
        if failure is None:
            return self._row(order)
        if isinstance(failure, errors.AmbiguousOutcome):
            await self._settled(order, frozenset({S.PENDING_CANCEL, S.UNKNOWN}))
            if order.state in (S.PENDING_CANCEL, S.UNKNOWN):
                raise self._unknown(cl, failure, "cancel_order")
            return self._row(order)
        raise _ccxt_error(failure)

    async def cancel_all(self, symbol: str | None, params: dict[str, Any]) -> Any:
        runtime = await self.start()
        self.adapter.last_failure = None
        if await runtime.manager.cancel_all(symbol):
            return self.adapter.last_bulk
        failure = self.adapter.last_failure
        raise _ccxt_error(failure) if failure is not None else ccxt.ExchangeError(
            "cancel_all_orders failed")

    async def cancel_all_after(self, timeout_ms: int, params: dict[str, Any]) -> Any:
        try:
            return await self.adapter.cancel_all_after(timeout_ms)
        except errors.VenueguardError as exc:
            raise _ccxt_error(exc) from None

    async def _own_call(self, method: str, *args: Any) -> dict[str, Any]:
        """ccxt's own call and answer: the order is not ours, or not open here."""
        answer: dict[str, Any] = await self.rest.call(
            method, partial(getattr(self.exchange, method), *args), idempotent=False)
        return answer

    # ---- venue evidence -----------------------------------------------------------------------

    def on_rows(self, topic: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """What ``watch_orders`` (``orders``) or ``watch_my_trades`` (``mytrades``) returned
        (before the first order call: nothing to apply)."""
        if self.runtime is not None:
            self.runtime.on_rows(topic, "update", list(rows))

    # ---- answers in ccxt's shapes -------------------------------------------------------------

    async def _settled(self, order: Order, waiting: frozenset[OrderState]) -> None:
        """Wait up to ``settle_s`` for venue evidence to move ``order`` out of ``waiting``."""
        deadline = self.clock.monotonic() + self.config.settle_s
        while order.state in waiting:
            left = deadline - self.clock.monotonic()
            if left <= 0:
                return
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(left, 0.25)):
                    await self._changed.wait()

    def _answer(self, order: Order, call: str) -> dict[str, Any]:
        cl = order.cl_ord_id
        failure = self.adapter.failures.get(cl)
        if order.state in _SETTLING:
            raise self._unknown(cl, failure, call)
        if order.state is S.REJECTED and not order.exists_at_venue:
            if failure is not None:
                raise _ccxt_error(failure)
            raise ccxt.InvalidOrder(f"{call}: {cl} was refused")
        return self._row(order)

    def _unknown(self, cl: str, failure: BaseException | None, call: str) -> OrderUnknown:
        if isinstance(failure, OrderUnknown):
            return failure
        return OrderUnknown(f"{call}: outcome unknown; {cl} stays UNKNOWN until the venue says",
                            cl_ord_id=cl, kind=Kind.AMBIGUOUS_TIMEOUT)

    def _row(self, order: Order) -> dict[str, Any]:
        """The venue's last word on ``order`` (a ccxt dict), else one made from the table."""
        row = self.adapter.rows.get(order.cl_ord_id)
        if row is not None:
            return row
        status = {S.FILLED: "closed", S.CANCELED: "canceled", S.REJECTED: "rejected"}.get(
            order.state, "open")
        return {"id": order.order_id, "clientOrderId": order.cl_ord_id, "symbol": order.symbol,
                "side": order.side.lower(), "amount": order.qty, "price": order.price,
                "filled": order.cum_qty, "status": status, "info": {}}

    async def aclose(self, *, clean: bool = True) -> None:
        """Stop the runtime and close the journal. ``clean``: disarm the dead man's switch;
        False leaves it armed, as a crash does."""
        if self._closed:
            return
        self._closed = True                 # the table stays readable (``state_of``)
        self.events.unsubscribe(self._on_event)
        runtime, task = self.runtime, self._task
        self._task = None
        if runtime is not None:
            await runtime.stop(clean=clean)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 10.0)
        self._owned = None
        await asyncio.to_thread(self._held.close)   # the journal, its lock, a scratch dir


def _ccxt_error(failure: BaseException) -> BaseException:
    """The exception a ccxt bot expects: ccxt's own behind a mapped one, else ``failure`` (one
    of ``venueguard.ccxt.errors``, ccxt exceptions too)."""
    cause = failure.__cause__
    found: BaseException = failure
    if isinstance(cause, ccxt.BaseError) and (not isinstance(failure, ccxt.BaseError)
                                              or isinstance(failure, OrderUnknown)):
        found = cause
    return found
