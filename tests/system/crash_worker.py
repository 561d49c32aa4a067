"""A trading process to kill, plus what the order system tests share (the stack builder
:func:`open_runtime`, test timings, polling and simulator helpers).

Run modes (with the project's virtualenv python):

* ``crash_worker.py trade BASE_URL JOURNAL SEED`` — reconcile the journal with the simulator,
  print ``ready PID``, then place and cancel small orders forever, printing ``order PID CLORDID``
  after each placement. It is meant to be killed with SIGKILL.
* ``crash_worker.py zygote`` — import everything once, then for each stdin line
  ``spawn BASE_URL JOURNAL SEED`` fork a ``trade`` child and print ``spawned PID``; print
  ``exited PID STATUS`` when a child ends; ``quit`` ends it. Forking a warm process makes fifty
  crash/restart rounds affordable (a cold interpreter start costs about a second here).

Every output line is one ``write`` (shorter than PIPE_BUF), so lines from the zygote and its
children never interleave mid-line.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from zygote_kit import say, serve

from venueguard.core.dms import DmsConfig
from venueguard.core.kinds import Kind
from venueguard.core.reconcile import ReconcileConfig
from venueguard.io.errors import VenueError
from venueguard.io.http_session import RestConfig, RestSession
from venueguard.io.journal import Journal
from venueguard.io.order_manager import OrderIntent, OrderManagerConfig, OrdersBlocked
from venueguard.io.orders_runtime import OrdersRuntime, RuntimeConfig
from venueguard.io.rest_transport import Timeouts
from venueguard.sim.testing import SimHandle
from venueguard.telemetry.events import EventLog
from venueguard.telemetry.metrics import Metrics
from venueguard.venues.bitmex import signing
from venueguard.venues.bitmex.adapter import BitmexAdapter

SYMBOL = "XBTUSD"
TICK = 0.5
LOT = 100


def fast_reconcile(**overrides: Any) -> ReconcileConfig:
    """Reconciler timings for tests: short intervals, a grace and a visibility horizon longer
    than the simulator's ``delayed_visibility`` default (3 s), a budget that never starves a
    test."""
    values: dict[str, Any] = {"visibility_grace_s": 4.0, "acceptance_window_s": 5.0,
                              "unknown_first_query_s": 0.05,
                              "query_interval_s": 0.25, "sweep_interval_s": 1.0,
                              "safe_sweep_interval_s": 2.0, "position_grace_s": 5.0,
                              "budget_queries": 40, "safe_budget_queries": 10,
                              "budget_interval_s": 1.0, "unknown_window_s": 4.0}
    values.update(overrides)
    return ReconcileConfig(**values)


def runtime_config(*, dms: DmsConfig | None = None, **reconcile: Any) -> RuntimeConfig:
    return RuntimeConfig(manager=OrderManagerConfig(reconcile=fast_reconcile(**reconcile),
                                                    start_timeout_s=20.0, idle_wake_s=0.2),
                         dms=dms)


def rest_session(base_url: str, *, read_timeout_s: float = 1.0, events: EventLog | None = None,
                 metrics: Metrics | None = None) -> RestSession:
    config = RestConfig(base_url=base_url.rstrip("/") + "/api/v1",
                        api_key=signing.TEST_API_KEY, api_secret=signing.TEST_API_SECRET,
                        timeouts=Timeouts(connect_s=1.0, sock_read_s=read_timeout_s,
                                          total_s=max(3.0, 3 * read_timeout_s)),
                        throttle=None)
    return RestSession(config, events=events, metrics=metrics, rng=random.Random(7))


@asynccontextmanager
async def open_runtime(base_url: str, journal_path: Path | str, *, seed: int,
                       config: RuntimeConfig | None = None, events: EventLog | None = None,
                       metrics: Metrics | None = None, read_timeout_s: float = 1.0,
                       regime_source: Callable[[], str] | None = None, md: Any = None,
                       ) -> AsyncIterator[OrdersRuntime]:
    """A started runtime (journal reconciled) whose ``run`` task goes until the block ends.
    Leaving the block stops it WITHOUT disarming (call ``stop(clean=True)`` first for that)."""
    events = events if events is not None else EventLog()
    journal = Journal.open(journal_path)
    try:
        async with rest_session(base_url, read_timeout_s=read_timeout_s, events=events,
                                metrics=metrics) as rest:
            runtime = OrdersRuntime(BitmexAdapter(rest), journal, symbols=(SYMBOL,),
                                    events=events,
                                    metrics=metrics, rng=random.Random(seed),
                                    config=config or runtime_config(), md=md,
                                    regime_source=regime_source)
            await runtime.start()
            task = asyncio.create_task(runtime.run())
            try:
                yield runtime
            finally:
                await runtime.stop(clean=False)
                await task
    finally:
        journal.close()


# ---------------------------------------------------------------- helpers for the system tests
async def eventually(check: Callable[[], Any], timeout_s: float = 10.0,
                     interval_s: float = 0.02) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy."""
    async with asyncio.timeout(timeout_s):
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
            await asyncio.sleep(interval_s)


async def best(sim: SimHandle) -> tuple[float, float]:
    _, _, rows = await sim.request("GET", "/orderBook/L2", signed=False,
                                   query={"symbol": SYMBOL, "depth": 1})
    bid = max(r["price"] for r in rows if r["side"] == "Buy")
    ask = min(r["price"] for r in rows if r["side"] == "Sell")
    return bid, ask


async def resting_buy(sim: SimHandle, ticks: int = 40) -> OrderIntent:
    bid, _ = await best(sim)
    return OrderIntent(SYMBOL, "Buy", 100, bid - ticks * 0.5)


def venue_rows(truth: dict[str, Any], cl_ord_id: str) -> list[dict[str, Any]]:
    return [r for r in truth["orders"] if r.get("clOrdID") == cl_ord_id]


def venue_position(truth: dict[str, Any]) -> int:
    return next((int(p["currentQty"]) for p in truth["positions"] if p["symbol"] == SYMBOL), 0)


# ------------------------------------------------------------------------------ the worker
async def _mid(runtime: OrdersRuntime) -> float:
    rest: Any = runtime.manager.venue.rest   # the BitmexAdapter's session
    rows = await rest.get_book_l2(SYMBOL, 1)
    bids = [r["price"] for r in rows if r.get("side") == "Buy"]
    asks = [r["price"] for r in rows if r.get("side") == "Sell"]
    if not bids or not asks:
        raise VenueError("empty book", kind=Kind.BAD_RESPONSE)
    return (max(bids) + min(asks)) / 2


async def trade(base_url: str, journal_path: str, seed: int | str) -> None:
    """Reconcile, then place and cancel orders until killed."""
    seed = int(seed)
    rng = random.Random(seed)
    config = runtime_config(dms=DmsConfig(timeout_s=60.0, refresh_s=15.0))
    async with open_runtime(base_url, journal_path, seed=seed, config=config,
                            read_timeout_s=0.4) as runtime:
        if not runtime.manager.ready:
            await runtime.manager.wait_ready(30.0)
        say(f"ready {os.getpid()}")
        mid = await _mid(runtime)
        for step in range(1_000_000):
            if step % 10 == 9:
                try:
                    mid = await _mid(runtime)
                except VenueError:
                    pass
            open_orders = runtime.manager.open_orders()
            if len(open_orders) >= 3 or (open_orders and rng.random() < 0.35):
                await runtime.cancel(rng.choice(open_orders).cl_ord_id)
                continue
            side = rng.choice(("Buy", "Sell"))
            crossing = rng.random() < 0.15           # takes liquidity: fills move the position
            offset = rng.randint(1, 6) * TICK * (-1 if crossing else 1)
            price = mid - offset if side == "Buy" else mid + offset
            price = round(price / TICK) * TICK
            try:
                order = await runtime.submit(OrderIntent(SYMBOL, side, LOT, price,
                                                         post_only=not crossing))
            except OrdersBlocked:
                await asyncio.sleep(0.05)
                continue
            say(f"order {os.getpid()} {order.cl_ord_id}")
            await asyncio.sleep(rng.uniform(0.0, 0.03))


if __name__ == "__main__":
    if sys.argv[1:2] == ["zygote"]:
        serve(trade, 3)
    elif sys.argv[1:2] == ["trade"] and len(sys.argv) == 5:
        asyncio.run(trade(sys.argv[2], sys.argv[3], sys.argv[4]))
    else:
        sys.exit("usage: crash_worker.py zygote | trade BASE_URL JOURNAL SEED")
