"""``venueguard monitor --trade demo``: a small strategy that exercises the order machinery.

Every ``step_s`` it looks at the market-data book; only when the book is fresh does it place a
small post-only limit order a few ticks away from the mid price (never more than ``max_open`` at
once) and cancel the oldest one once it has rested ``order_ttl_s``. Everything goes through an
:class:`~venueguard.io.orders_runtime.OrdersRuntime`: journal first, one clOrdID per intent,
UNKNOWN resolved only by venue evidence, the dead man's switch armed while orders rest, and no
new orders while the regime is SAFE or RECOVERING (the runtime refuses them).

The monitor calls :func:`create_trader` with its context (imported only with ``--trade demo``),
runs :meth:`DemoTrader.run` among its tasks, and on shutdown awaits :meth:`DemoTrader.stop`:
one bulk cancel of the demo's symbol (in a fleet: of its own orders, by client id), then the
switch is disarmed. A crash does neither, and
the switch cancels everything at the venue when it runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from venueguard.app.account_watch import AccountWatch
from venueguard.core.orders import RandomLike
from venueguard.core.reconcile import ReconcileConfig
from venueguard.io import errors
from venueguard.io.clock import Clock
from venueguard.io.order_manager import OrderIntent, OrderManagerConfig, OrdersBlocked
from venueguard.io.orders_runtime import OrdersRuntime, RuntimeConfig
from venueguard.telemetry.events import EventLog
from venueguard.venues.bitmex.adapter import BitmexAdapter

if TYPE_CHECKING:
    from venueguard.app.monitor import MonitorContext

__all__ = ["DemoConfig", "DemoTrader", "create_trader"]


class BookLike(Protocol):
    """What the demo reads of a market-data book (``MarketDataSession.book(symbol)``)."""

    @property
    def is_fresh(self) -> bool: ...

    def mid(self) -> float | None: ...


#: How long a stop waits for the strategy's current round (a submit in flight) to finish.
STOP_WAIT_S = 15.0


@dataclass(frozen=True, slots=True)
class DemoConfig:
    step_s: float = 0.5
    max_open: int = 3
    order_ttl_s: float = 5.0
    min_offset_ticks: int = 2
    max_offset_ticks: int = 8
    lots: int = 1                   # order size in lots
    tick_size: float = 0.5          # used until the instrument says otherwise
    lot_size: int = 100


class DemoTrader:
    """See the module docstring. ``book`` returns the current book view (or None)."""

    def __init__(self, runtime: OrdersRuntime, book: Callable[[], BookLike | None], *,
                 symbol: str, clock: Clock, rng: RandomLike | None = None,
                 config: DemoConfig | None = None, events: EventLog | None = None,
                 rest: Any = None, account_watch: AccountWatch | None = None,
                 instrument: Mapping[str, object] | None = None) -> None:
        self.runtime = runtime
        self.instrument = instrument    # the row the monitor read at startup, if any
        self.account_watch = account_watch   # in a fleet: the owner's account check
        self.rest = rest                # the BitMEX REST session, for the instrument's sizes
        self.book = book
        self.symbol = symbol
        self.clock = clock
        self.config = config or DemoConfig()
        self.events = events if events is not None else runtime.events
        self._rng: RandomLike = rng if rng is not None else random.Random()
        self.tick_size = self.config.tick_size
        self.lot_size = self.config.lot_size
        self.paused: str | None = None
        self.skipped_stale = 0
        self.placed = 0
        self._stopping = False
        self._run_task: asyncio.Task[None] | None = None
        self._strategy_task: asyncio.Task[None] | None = None

    # ----------------------------------------------------------------- the Trader protocol
    async def run(self) -> None:
        """Reconcile the journal, then trade until :meth:`stop`."""
        self._run_task = asyncio.current_task()
        await self.runtime.start()
        await self._load_instrument()
        async with asyncio.TaskGroup() as group:
            group.create_task(self.runtime.run(), name="demo-orders")
            self._strategy_task = group.create_task(self._strategy(), name="demo-strategy")
            if self.account_watch is not None:
                group.create_task(self.account_watch.run(), name="demo-account")

    def pause(self, reason: str) -> None:
        if self.paused is None:
            self.events.emit("demo.paused", reason=reason)
        self.paused = reason

    def resume(self) -> None:
        if self.paused is not None:
            self.events.emit("demo.resumed")
        self.paused = None

    async def stop(self) -> None:
        """Cancel the demo's orders (ONE bulk cancel), then disarm the dead man's switch.

        The strategy's current round is let finish first: an order still in flight when the bulk
        cancel goes out could be accepted after it and be left resting with the switch disarmed.
        """
        self._stopping = True
        task = self._strategy_task
        if task is not None and not task.done():
            await asyncio.wait({task}, timeout=STOP_WAIT_S)
        manager = self.runtime.manager
        if manager.ready and (manager.open_orders() or manager.unknown_orders()):
            # in a fleet (own_prefix_only) this cancels the demo's own orders by client id
            await manager.cancel_all(self.symbol)
        await self.runtime.stop(clean=True)
        await manager.flush()

    def state(self) -> Mapping[str, object]:
        manager = self.runtime.manager
        return {"ready": manager.ready, "regime": self.runtime.regime, "paused": self.paused,
                "open_orders": len(manager.open_orders()),
                "unknown_orders": len(manager.unknown_orders()),
                "position": manager.position(self.symbol), "placed": self.placed,
                "skipped_stale": self.skipped_stale,
                "halted": manager.halted, "halts": list(manager.halt_history),
                "dms_armed": bool(self.runtime.dms and self.runtime.dms.armed),
                # in a fleet: sweeps answered by another member's read, reads made for the
                # fleet, sweeps postponed while another member read
                "shared_sweeps": None if manager.sweeps is None else {
                    "taken": manager.sweeps.taken, "read": manager.sweeps.read,
                    "postponed": manager.sweeps.postponed}}

    # ---------------------------------------------------------------------- the strategy
    async def _load_instrument(self) -> None:
        """The instrument's tick and lot sizes: from the row the monitor read at startup, or
        one request when there is none."""
        row: Mapping[str, object] = self.instrument or {}
        if not row and self.rest is not None:
            with contextlib.suppress(errors.VenueError, AttributeError):
                rows = await self.rest.request("GET", "/instrument",
                                               query={"symbol": self.symbol})
                if isinstance(rows, list) and rows and isinstance(rows[0], dict):
                    row = rows[0]
        tick, lot = row.get("tickSize"), row.get("lotSize")
        if isinstance(tick, int | float) and tick > 0:
            self.tick_size = float(tick)
        if isinstance(lot, int | float) and lot >= 1:
            self.lot_size = int(lot)

    async def _strategy(self) -> None:
        manager = self.runtime.manager
        while not self._stopping:
            if manager.ready:
                await self.step()
            await asyncio.sleep(self.config.step_s)

    async def step(self) -> None:
        """One round: cancel the oldest order past its time, maybe place one new order."""
        manager, cfg, now = self.runtime.manager, self.config, self.clock.monotonic()
        resting = sorted(manager.open_orders(), key=lambda o: o.created_at)
        if resting and now - resting[0].created_at >= cfg.order_ttl_s:
            await self.runtime.cancel(resting[0].cl_ord_id)
            return
        if self.paused is not None or len(resting) >= cfg.max_open:
            return
        book = self.book()
        mid = book.mid() if book is not None and book.is_fresh else None
        if mid is None:
            self.skipped_stale += 1
            return
        side = "Buy" if self._rng.random() < 0.5 else "Sell"
        span = cfg.max_offset_ticks - cfg.min_offset_ticks + 1
        ticks = cfg.min_offset_ticks + int(self._rng.random() * span) % span
        price = mid - ticks * self.tick_size if side == "Buy" else mid + ticks * self.tick_size
        price = round(price / self.tick_size) * self.tick_size
        try:
            await self.runtime.submit(OrderIntent(self.symbol, side, cfg.lots * self.lot_size,
                                                  price, post_only=True, text="venueguard demo"))
        except OrdersBlocked:
            return                          # refused (safe mode): logged as order.refused
        self.placed += 1


def create_trader(ctx: MonitorContext, config: DemoConfig | None = None) -> DemoTrader:
    """The monitor's hook: a demo trader on the monitor's sessions, journal and regime."""
    if ctx.rest is None:
        raise ValueError("the demo trader needs the monitor's REST session")
    symbol = ctx.config.symbol
    # the venue's visibility horizon (its rules file, ``[orders] visibility_horizon_s``)
    manager = OrderManagerConfig(reconcile=ReconcileConfig(
        acceptance_window_s=ctx.rest.rules.visibility_horizon_s))
    if ctx.fleet is not None:
        # one account, several bots: each keeps to the orders of its own clOrdID prefix,
        # stable across restarts (it is derived from the journal's path)
        digest = hashlib.sha256(str(ctx.config.journal.resolve()).encode()).hexdigest()
        # the venue's position is the account's (every bot's): the fleet checks it
        manager = replace(manager, cl_ord_prefix=f"vg{digest[:6]}", own_prefix_only=True,
                          reconcile=replace(manager.reconcile, check_position=False))
    runtime_config = RuntimeConfig(manager=manager)
    runtime = OrdersRuntime(BitmexAdapter(ctx.rest), ctx.journal, symbols=(symbol,),
                            md=ctx.market,
                            events=ctx.events, metrics=ctx.metrics, alerts=ctx.alerts,
                            clock=ctx.clock, config=runtime_config,
                            regime_source=lambda: ctx.regime(), fleet=ctx.fleet)
    market = ctx.market

    def book() -> BookLike | None:
        return market.book(symbol) if market is not None else None

    watch = None
    if ctx.fleet is not None:
        # the periodic sweep: one member reads the account's lists, the others take them
        runtime.manager.share_sweeps(ctx.fleet)
        watch = AccountWatch(ctx.fleet, runtime.manager, symbol=symbol, clock=ctx.clock,
                             events=ctx.events)
    return DemoTrader(runtime, book, symbol=symbol, clock=ctx.clock, config=config,
                      rest=ctx.rest, account_watch=watch, instrument=ctx.instrument)
