"""The order runtime: the order manager, the dead man's switch and safe mode, run together.

Pieces (each usable alone):

* :class:`~venueguard.io.order_manager.OrderManager` — journal, table, reconciler,
  submit/amend/cancel;
* :class:`~venueguard.io.dms_runner.DmsRunner` — ``cancelAllAfter`` while orders rest;
* :class:`~venueguard.core.safemode.SafeModePolicy` driven by the regime: either a
  :class:`~venueguard.core.regime.RegimeDetector` owned here (fed with every ``rest.error`` of the
  event log and with :meth:`OrdersRuntime.on_intensity`; it emits ``regime.changed``), or an
  external ``regime_source`` callable returning the regime's name (the monitor's detector).

In SAFE: no new orders and no amends (``submit`` and ``amend`` raise
:class:`~venueguard.io.order_manager.OrdersBlocked` and log ``order.refused``), ONE bulk cancel,
the dead man's switch shortened and the reconciler on its low budget, until the regime is NORMAL
again (via RECOVERING). A position mismatch that survives reconciliation (the manager's
``halted``) holds the runtime in SAFE whatever the regime says, until the positions agree.

Call order::

    runtime = OrdersRuntime(BitmexAdapter(rest), journal, symbols=("XBTUSD",), events=...)
    await runtime.start()                  # restart reconciliation (nothing sent before it)
    task = asyncio.create_task(runtime.run())
    runtime.on_rows(topic, action, rows)   # private websocket messages, or pass ``md=`` (a
                                           # MarketDataSession subscribed to the adapter's
                                           # private topics) and run() consumes its events
    await runtime.submit(intent); await runtime.cancel(cl_ord_id)
    await runtime.amend(cl_ord_id, price=..., qty=...)   # see OrderManager.amend
    await runtime.stop(clean=True)         # disarms the switch; then await task
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from venueguard.core.dms import DmsConfig
from venueguard.core.kinds import Kind
from venueguard.core.orders import Order, RandomLike
from venueguard.core.regime import RegimeConfig, RegimeDetector
from venueguard.core.safemode import (
    CancelAll,
    SafeAlert,
    SafeDecision,
    SafeModeConfig,
    SafeModePolicy,
    SetSafeMode,
    regime_name,
)
from venueguard.io.clock import SYSTEM_CLOCK, Clock
from venueguard.io.dms_runner import DmsRunner
from venueguard.io.fleet_link import DmsLink, Role
from venueguard.io.journal import Journal
from venueguard.io.md_events import MdEvent, TableData
from venueguard.io.order_manager import OrderIntent, OrderManager, OrderManagerConfig
from venueguard.telemetry.alerts import Alerts
from venueguard.telemetry.events import EventLog
from venueguard.telemetry.metrics import Metrics
from venueguard.venues.base import VenueAdapter

__all__ = ["OrdersRuntime", "PrivateStream", "RuntimeConfig"]


class PrivateStream(Protocol):
    """A market-data session subscribed (with auth) to the private tables."""

    def events(self) -> Any: ...   # an async iterator of md_events.MdEvent


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    manager: OrderManagerConfig = field(default_factory=OrderManagerConfig)
    dms: DmsConfig | None = field(default_factory=DmsConfig)   # None: no dead man's switch
    safe: SafeModeConfig = field(default_factory=SafeModeConfig)
    regime: RegimeConfig = field(default_factory=RegimeConfig)
    regime_poll_s: float = 1.0
    #: Arm the switch while a new order's request is in flight (it may rest already). False:
    #: once an order rests or is UNKNOWN, for a venue client that queues every request behind
    #: a rate limiter (ccxt's), where an arm sent with the order delays the order itself.
    dms_arms_in_flight: bool = True


class OrdersRuntime:
    """See the module docstring."""

    def __init__(self, venue: VenueAdapter, journal: Journal, *, symbols: Sequence[str],
                 md: PrivateStream | None = None, events: EventLog | None = None,
                 metrics: Metrics | None = None, alerts: Alerts | None = None,
                 clock: Clock = SYSTEM_CLOCK, rng: RandomLike | None = None,
                 config: RuntimeConfig | None = None,
                 regime_source: Callable[[], str] | None = None,
                 fleet: DmsLink | None = None) -> None:
        self.config = cfg = config or RuntimeConfig()
        self.fleet = fleet   # processes sharing the account: one sends the bulk actions
        self.events = events if events is not None else EventLog()
        self.metrics = metrics
        self.alerts = alerts
        self.clock = clock
        self.md = md
        self.manager = OrderManager(venue, journal, symbols=symbols, events=self.events,
                                    metrics=metrics, alerts=alerts, clock=clock, rng=rng,
                                    config=cfg.manager, refusal=self._refusal)
        self.manager.on_halt = self._on_halt
        self._private = frozenset(venue.private_topics(symbols))
        resting = (self.manager.resting_count if cfg.dms_arms_in_flight
                   else self._resting_after_ack)
        if fleet is not None:  # counted as this member's switch counts them: the owner's arms
            fleet.publish_resting(resting)
        self.dms = (DmsRunner(venue, resting=resting, config=cfg.dms,
                              events=self.events, clock=clock, on_lapsed=self.manager.wake,
                              fleet=fleet)
                    if cfg.dms is not None else None)
        self.safe = SafeModePolicy(cfg.safe, symbol=symbols[0] if len(symbols) == 1 else None)
        self._source = regime_source
        self.detector = (RegimeDetector(cfg.regime, now=clock.monotonic())
                         if regime_source is None else None)
        if self.detector is not None:
            self.events.subscribe(self._on_event)
        self._forced: str | None = None     # an operator's safe mode (enter_safe_mode)
        self._queued: list[SafeDecision] = []
        self._wake = asyncio.Event()
        self._aux: list[asyncio.Task[None]] = []
        self._stopped = False
        self.cancel_all_sent = 0

    def _resting_after_ack(self) -> int:
        return len(self.manager.open_orders()) + len(self.manager.unknown_orders())

    # ---------------------------------------------------------------------------- facts
    def on_intensity(self, value: float) -> None:
        """Market intensity (~1 normal, higher in bursts) for the owned regime detector."""
        if self.detector is not None:
            self.detector.on_intensity(value, self.clock.monotonic())

    def _on_event(self, record: dict[str, object]) -> None:
        if record.get("event") != "rest.error" or self.detector is None:
            return
        try:
            kind = Kind(str(record.get("kind")))
        except ValueError:
            kind = Kind.UNKNOWN
        self.detector.on_outcome(kind, self.clock.monotonic())

    def on_rows(self, topic: str, action: str, rows: list[Any]) -> None:
        """A private websocket message (one of the adapter's ``private_topics``)."""
        if topic in self._private:
            self.manager.on_rows(topic, action, rows)
            if self.dms is not None:
                self.dms.wake()

    # -------------------------------------------------------------------------- control
    async def start(self) -> None:
        await self.manager.start()

    @property
    def regime(self) -> str:
        return self.safe.regime

    def enter_safe_mode(self, reason: str = "operator") -> None:
        """SAFE whatever the regime says (one bulk cancel, no new orders) until
        :meth:`leave_safe_mode`."""
        self._forced = reason
        self._sync_regime(self.clock.monotonic())

    def leave_safe_mode(self) -> None:
        self._forced = None
        self._sync_regime(self.clock.monotonic())

    async def submit(self, intent: OrderIntent) -> Order:
        try:
            return await self.manager.submit(intent)
        finally:
            if self.dms is not None:
                self.dms.wake()

    async def amend(self, cl_ord_id: str, *, price: float | None = None,
                    qty: int | None = None) -> Order:
        """:meth:`OrderManager.amend` (refused like a new order while the regime is SAFE)."""
        try:
            return await self.manager.amend(cl_ord_id, price=price, qty=qty)
        finally:
            if self.dms is not None:
                self.dms.wake()

    async def cancel(self, cl_ord_id: str) -> None:
        await self.manager.cancel(cl_ord_id)
        if self.dms is not None:
            self.dms.wake()

    async def run(self) -> None:
        """Everything, supervised in one TaskGroup, until :meth:`stop`."""
        if self._stopped:
            # stopped before this task first ran (a close right after a start): the loops
            # below would start after their cancellation and run for good
            await self.manager.run()          # returns at once, after flushing the journal
            return
        async with asyncio.TaskGroup() as group:
            group.create_task(self.manager.run(), name="orders-manager")
            self._aux.append(group.create_task(self._regime_loop(), name="orders-regime"))
            if self.dms is not None:
                self._aux.append(group.create_task(self.dms.run(), name="orders-dms"))
            if self.md is not None:
                self._aux.append(group.create_task(self._private_rows(), name="orders-ws"))

    async def stop(self, *, clean: bool) -> None:
        """Stop. ``clean``: disarm the dead man's switch; otherwise leave it armed (as a crash
        does). Open orders are left as they are (cancel them first if wanted)."""
        if self._stopped:
            return
        self._stopped = True
        self.manager.stop()
        if self.dms is not None:
            await self.dms.stop(clean=clean)
        for task in self._aux:
            task.cancel()
        if self.detector is not None:
            self.events.unsubscribe(self._on_event)

    # ---------------------------------------------------------------------------- loops
    async def _private_rows(self) -> None:
        assert self.md is not None
        stream = self.md.events()
        async for event in stream:
            self._on_md_event(event)

    def _on_md_event(self, event: MdEvent) -> None:
        if isinstance(event, TableData):
            self.on_rows(event.table, event.action, event.rows)

    def _refusal(self) -> str | None:
        """Asked by ``submit`` before anything is journaled: the regime is read now."""
        self._sync_regime(self.clock.monotonic())
        if self.safe.orders_allowed:
            return None
        halted = self.manager.halted or self._forced
        if halted is not None:
            return f"regime {self.safe.regime}: {halted}"
        return f"regime {self.safe.regime}: no new orders"

    def _on_halt(self, reason: str) -> None:
        self._sync_regime(self.clock.monotonic())

    def _sync_regime(self, now: float) -> None:
        if self.detector is not None:
            for change in self.detector.poll(now):
                self.events.emit("regime.changed", from_=change.from_.value, to=change.to.value,
                                 reason=change.reason, score=round(change.score, 2))
                if self.metrics is not None:
                    self.metrics.set_regime(change.to.value)
            name = self.detector.regime.value
        else:
            assert self._source is not None
            try:
                name = regime_name(self._source())
            except ValueError:
                return               # an empty or unknown name: keep the last regime
        if self.manager.halted is not None or self._forced is not None:
            name = "SAFE"            # the venue and the journal disagree, or an operator said
        if name != self.safe.regime:
            self._queued.extend(self.safe.on_regime(name, now))
            self._wake.set()

    async def _regime_loop(self) -> None:
        while True:
            now = self.clock.monotonic()
            self._sync_regime(now)
            queued, self._queued = self._queued + self.safe.poll(now), []
            for decision in queued:
                await self._execute(decision)
            self._wake.clear()
            delay = self.config.regime_poll_s
            deadline = self.safe.next_deadline()
            if deadline is not None:
                delay = min(delay, deadline - self.clock.monotonic())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, delay)):
                    await self._wake.wait()

    async def _execute(self, decision: SafeDecision) -> None:
        match decision:
            case CancelAll(symbol=symbol, attempt=attempt) if (
                    self.fleet is not None and self.fleet.role() is Role.FOLLOWER
                    and not self.manager.config.own_prefix_only):
                # the owner's one bulk cancel covers the account (its regime is ours or worse)
                self.events.emit("safemode.cancel_all_left", symbol=symbol,
                                 reason="another member owns the account's bulk actions")
                self._queued.extend(self.safe.on_cancel_all_result(True,
                                                                   self.clock.monotonic()))
            case CancelAll(symbol=symbol, attempt=attempt):
                self.cancel_all_sent += 1
                self.events.emit("safemode.cancel_all", symbol=symbol, attempt=attempt)
                ok = await self.manager.cancel_all(symbol)
                self._queued.extend(self.safe.on_cancel_all_result(ok, self.clock.monotonic()))
            case SetSafeMode(on=on):
                self.events.emit("safemode.changed", on=on, regime=self.safe.regime)
                if self.dms is not None:
                    self.dms.set_safe_mode(on)
                self.manager.reconciler.set_safe_mode(on)
            case SafeAlert(tier=tier, message=message):
                self.manager.alert(tier, message, key="safemode")
