"""A guarded ccxt bot to kill (ccxt's bitmex or binanceusdm class, against the simulator).

Run modes (with the project's virtualenv python):

* ``ccxt_crash_worker.py trade DIALECT BASE_URL SEED`` — ``guard()`` the exchange (its default
  journal: ``VENUEGUARD_STATE_DIR``), reconcile, print ``ready PID JOURNALED RESOLVED UNRESOLVED
  ADOPTED``, then place and cancel small orders through ccxt's unified calls forever, printing
  ``order PID CLIENT_ID`` after each ``create_order`` that returned or raised ``OrderUnknown``.
  It is meant to be killed with SIGKILL.
* ``ccxt_crash_worker.py zygote`` — import everything once, then for each stdin line
  ``spawn DIALECT BASE_URL SEED`` fork a ``trade`` child and print ``spawned PID``; print
  ``exited PID STATUS`` when a child ends; ``quit`` ends it.

Every output line is one ``write`` (shorter than PIPE_BUF), so lines never interleave.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys

import ccxt
from zygote_kit import say, serve

from venueguard.app.chaos_ccxt import CCXT_VENUES, raw_exchange
from venueguard.ccxt import GuardConfig, GuardedExchange, OrdersConfig, OrderUnknown, guard
from venueguard.core.dms import DmsConfig
from venueguard.io.http_session import Timeouts
from venueguard.telemetry.events import EventLog

#: the simulator's symbol per class (its ccxt symbol, lot and tick: chaos_ccxt.CCXT_VENUES)
DIALECTS = {v.ccxt_id: v for v in CCXT_VENUES.values()}


def config() -> GuardConfig:
    """Short bounds; a grace and a visibility horizon longer than the simulator's
    ``delayed_visibility`` in flaky-acks (3 s)."""
    return GuardConfig(
        timeouts=Timeouts(total_s=3.0),
        orders=OrdersConfig(settle_s=1.0, lookup_interval_s=0.1, grace_s=4.0,
                            reconcile_interval_s=0.5, visibility_horizon_s=5.0,
                            start_timeout_s=20.0,
                            dms=DmsConfig(timeout_s=60.0, refresh_s=15.0)))


def exchange_for(dialect: str, base_url: str, *, events: EventLog | None = None,
                 read_timeout_ms: int = 400) -> GuardedExchange:
    raw = raw_exchange(f"ccxt:{dialect}", base_url)
    raw.timeout = read_timeout_ms
    return guard(raw, config(), events=events or EventLog())


async def _mid(exchange: GuardedExchange, symbol: str) -> float:
    book = await exchange.fetch_order_book(symbol, 5)
    return float(book["bids"][0][0] + book["asks"][0][0]) / 2


async def trade(dialect: str, base_url: str, seed: int | str) -> None:
    """Reconcile, then place and cancel orders until killed."""
    seed = int(seed)
    rng = random.Random(seed)
    d = DIALECTS[dialect]
    events = EventLog()
    async with exchange_for(dialect, base_url, events=events) as exchange:
        while True:
            try:
                await exchange.start_orders()
                break
            except ccxt.BaseError:
                await asyncio.sleep(0.2)
        runtime = exchange.orders.runtime
        assert runtime is not None
        await runtime.manager.wait_ready(60.0)
        startup = [e for e in events.recent(event="reconcile.resolved")
                   if e.get("kind") == "startup"][-1]
        say(f"ready {os.getpid()} {startup['journaled']} {startup['resolved']} "
             f"{startup['unresolved']} {startup['adopted']}")
        mid = await _mid(exchange, d.symbol)
        for step in range(1_000_000):
            if step % 10 == 9:
                try:
                    mid = await _mid(exchange, d.symbol)
                except ccxt.BaseError:
                    pass
            resting = list(runtime.manager.open_orders())
            if len(resting) >= 3 or (resting and rng.random() < 0.35):
                victim = rng.choice(resting)
                try:
                    await exchange.cancel_order(victim.order_id or "", d.symbol,
                                                {"clientOrderId": victim.cl_ord_id})
                except ccxt.BaseError:
                    pass
                continue
            side = rng.choice(("buy", "sell"))
            crossing = rng.random() < 0.15           # takes liquidity: fills move the position
            offset = rng.randint(2, 12) * d.tick * (-1 if crossing else 1)
            price = mid - offset if side == "buy" else mid + offset
            price = round(round(price / d.tick) * d.tick, 6)
            try:
                order = await exchange.create_order(d.symbol, "limit", side, d.lot, price)
                say(f"order {os.getpid()} {order['clientOrderId']}")
            except OrderUnknown as unknown:
                say(f"order {os.getpid()} {unknown.cl_ord_id}")
            except ccxt.BaseError:
                await asyncio.sleep(0.05)
            await asyncio.sleep(rng.uniform(0.0, 0.03))


if __name__ == "__main__":
    if sys.argv[1:2] == ["zygote"]:
        serve(trade, 3)
    elif sys.argv[1:2] == ["trade"] and len(sys.argv) == 5:
        asyncio.run(trade(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    else:
        raise SystemExit(__doc__)
