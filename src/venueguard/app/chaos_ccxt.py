"""``venueguard chaos --venue ccxt:bitmex|ccxt:binanceusdm``: the seeds through a guarded ccxt bot.

Each seed starts its own simulator (the BitMEX dialect, or Binance USD-M for
``ccxt:binanceusdm``), wraps ccxt's class with ``guard()`` on a journal of its own, and trades
through ccxt's unified calls (``watch_order_book``, served by venueguard's own market-data
session, then ``create_order`` and ``cancel_order``) while the seed's faults run, the websocket
kinds included. The checks are those of :mod:`venueguard.app.chaos_seed`: 1 no client id and
no intent twice at the venue, 2 and 3 the guard's order table and position against the venue
after the faults end, 4 every book the guard hands the bot no older than the staleness bound
(its venue timestamp against the simulator's clock, judged by
:func:`~venueguard.app.chaos_checks.stale_by_ms`; a stale stream must be withheld, never
returned), 5 what reached the venue against the guard's logical requests (every request the
venue counted, less those the market-data sessions sent themselves, counted on their side: the
guard's set-up requests are checked too), 6 nothing unhandled, 7 the journal replayed through
the order state machine. ``dns_failure`` needs a resolver seam ccxt does not offer and is not
drawn.

On a virtual-time loop (the default of ``venueguard chaos``) the seed runs in one process over
the loop's in-memory network: ccxt's HTTP and websocket clients connect through the loop, and
the guarded object reads ccxt's clock through the clock seam (:mod:`venueguard.ccxt.clock`).
The seed's trace (the plan, the guard's events, the outcome; the scratch directory's name
replaced by ``$SCRATCH``) and its digest are then a function of the seed.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import random
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from venueguard.app import chaos_checks as checks
from venueguard.app.chaos_plan import DEFAULT_KINDS, SeedPlan
from venueguard.app.chaos_seed import (
    SIM_LIMITS,
    ChaosConfig,
    SeedResult,
    _describe,
    _leaves,
    _schedule,
    _scratch_dir,
    converge,
    note_truth,
    seed_end,
    seed_start,
)
from venueguard.io.clock import monotonic, wall_ns

__all__ = ["BOOK_WAIT_S", "CCXT_KINDS", "CCXT_VENUES", "BookCheck", "raw_exchange", "read_book",
           "run_ccxt_seed", "ws_opened"]

#: The fault kinds a guarded ccxt bot meets: REST and orders, and the websocket kinds (both
#: dialects of the simulator apply every one of them to their streams).
CCXT_KINDS: tuple[str, ...] = (
    "overload_503", "rate_limit_429", "forbidden_403", "cloudflare_522", "latency",
    "timeout_after_accept", "bad_gateway_after_accept", "delayed_visibility", "late_fill",
    "cancel_race", *(k for k in DEFAULT_KINDS if k.startswith("ws_")))


@dataclass(frozen=True, slots=True)
class _Venue:
    name: str
    ccxt_id: str
    symbol: str           # ccxt's unified symbol
    venue_symbol: str     # the simulator's
    lot: float
    tick: float
    dialect: str


CCXT_VENUES = {
    "ccxt:bitmex": _Venue("ccxt:bitmex", "bitmex", "BTC/USD:BTC", "XBTUSD", 100, 0.5, "bitmex"),
    "ccxt:binanceusdm": _Venue("ccxt:binanceusdm", "binanceusdm", "BTC/USDT:USDT", "BTCUSDT",
                               0.003, 0.1, "binance-usdm"),
}


#: The longest the trader waits for a book: a stale stream is withheld (the call waits), and
#: a withheld book must not hold the trader up beyond its pace.
BOOK_WAIT_S = 0.5


@dataclass(slots=True)
class BookCheck:
    """Invariant 4 on what the guard hands the bot: each book ``watch_order_book`` returns is
    judged by its venue timestamp against the simulator's clock (the native seeds' judgment,
    :func:`~venueguard.app.chaos_checks.stale_by_ms`); a book withheld (the wait ran out) or
    refused with the guard's error is no data, and fine."""

    bound_ms: int
    clock_ms: Callable[[], int] = field(default=lambda: wall_ns() // 1_000_000)
    checked: int = 0
    withheld: int = 0
    violations: list[checks.Violation] = field(default_factory=list)

    def served(self, book: Mapping[str, Any]) -> None:
        self.checked += 1
        stamp = book.get("timestamp")
        if not isinstance(stamp, int):
            self._violate(f"watch_order_book served a book without the venue's timestamp "
                          f"({stamp!r})")
            return
        age_ms = checks.stale_by_ms(stamp, self.clock_ms(), self.bound_ms)
        if age_ms is not None:
            self._violate(f"watch_order_book served a book {age_ms} ms old (bound "
                          f"{self.bound_ms} ms)")

    def _violate(self, message: str) -> None:
        if len(self.violations) < 3:       # the first few tell the story
            self.violations.append(checks.Violation(4, message))


def raw_exchange(venue_name: str, base_url: str) -> Any:
    """ccxt's class for ``venue_name`` (a key of ``CCXT_VENUES``) with the simulator's test
    key, pointed at the simulator at ``base_url`` (REST and websocket: ccxt's ``pro`` class,
    whose ``watch_order_book`` the guard serves from its own session); ccxt's own rate limiter
    off (the guard's budget and throttle set the pace)."""
    import ccxt.pro as ccxt_pro

    from venueguard.sim.binance import signing as binance_signing
    from venueguard.sim.binance.testing import point_ccxt
    from venueguard.venues.bitmex import signing as bitmex_signing

    if CCXT_VENUES[venue_name].ccxt_id == "bitmex":
        raw: Any = ccxt_pro.bitmex({"apiKey": bitmex_signing.TEST_API_KEY,
                                    "secret": bitmex_signing.TEST_API_SECRET})
        ws_url = base_url.replace("http://", "ws://", 1) + "/realtime"
        raw.urls["api"] = {**raw.urls["api"], "public": base_url, "private": base_url,
                           "ws": ws_url}
    else:
        raw = ccxt_pro.binanceusdm({"apiKey": binance_signing.TEST_API_KEY,
                                    "secret": binance_signing.TEST_API_SECRET})
        point_ccxt(raw, base_url)
    raw.enableRateLimit = False
    return raw


def _guarded(venue_name: str, base_url: str, journal: Path, cfg: ChaosConfig,
             events: Any, seed: int) -> Any:
    from venueguard.ccxt import GuardConfig, OrdersConfig, StreamConfig, guard
    from venueguard.core.backoff import BackoffConfig
    from venueguard.core.dms import DmsConfig
    from venueguard.io.http_session import Timeouts

    raw = raw_exchange(venue_name, base_url)
    raw.timeout = 300                     # the read timeout: a held answer is ambiguous soon
    config = GuardConfig(
        timeouts=Timeouts(total_s=1.5),
        backoff=BackoffConfig(base_s=0.05, cap_s=0.5, reset_after_s=0.0), budget=cfg.budget,
        max_attempts=cfg.max_attempts, rules_text=_SCALED,
        # the stream bounds of the native seeds: book data age and the venue timestamp's age
        streams=StreamConfig(max_age_s={"orderbook": cfg.liveness.max_data_age_s},
                             max_ts_age_ms=cfg.liveness.max_ts_age_ms),
        # the reconciler scaled to the window exactly as on the native path (lookup budgets in
        # and out of safe mode included)
        orders=OrdersConfig(settle_s=0.5, reconcile=cfg.reconcile, start_timeout_s=5.0,
                            dms=DmsConfig(timeout_s=60.0, refresh_s=15.0)))
    return guard(raw, config, events=events, journal=journal, rng=random.Random(seed))


_SCALED = """
[kinds.forbidden]
cooldown_s = 0.5
[kinds.edge_protection]
cooldown_s = 0.5
"""


async def run_ccxt_seed(seed: int, config: ChaosConfig, venue_name: str) -> SeedResult:
    """One seed through ccxt's class for ``venue_name`` (a key of ``CCXT_VENUES``)."""
    from venueguard.sim.testing import running_sim

    venue = CCXT_VENUES[venue_name]
    cfg = replace(config, kinds=config.kinds or CCXT_KINDS)
    started = monotonic()
    log = io.StringIO()
    plan, result = seed_start(seed, cfg)
    scratch = _scratch_dir()
    limits: dict[str, Any] = {"scenario": cfg.scenario, "seed": seed,
                              "rate_msgs_s": cfg.rate_msgs_s, **SIM_LIMITS}
    try:
        if venue.dialect == "bitmex":
            async with running_sim(**limits) as sim:
                await _run(sim, venue, plan, cfg, result, scratch, started, 1, log)
        else:
            from venueguard.sim.binance.limits import Limits
            from venueguard.sim.binance.testing import running_binance_sim
            async with running_binance_sim(**limits) as bsim:
                bsim.venue.configure(limits=Limits(weight_per_min=10_000_000,
                                                   orders_per_10s=1_000_000,
                                                   orders_per_min=10_000_000))
                per_unit = bsim.venue.symbols[venue.venue_symbol].per_unit
                await _run(bsim, venue, plan, cfg, result, scratch, started, per_unit, log)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return seed_end(result, plan, cfg, log.getvalue(), scratch, started)


async def _run(sim: Any, venue: _Venue, plan: SeedPlan, cfg: ChaosConfig, result: SeedResult,
               scratch: Path, started: float, per_unit: int, log: io.StringIO) -> None:
    from venueguard.io.journal import Journal
    from venueguard.telemetry.events import EventLog

    events = EventLog(log, keep=200)
    prefix = f"chaos-{plan.seed}-"
    exchange = _guarded(venue.name, sim.base_url, scratch / "journal.db", cfg, events,
                        plan.seed)
    placed: list[str] = []
    books = BookCheck(cfg.liveness.max_ts_age_ms + round(cfg.freshness_slack_s * 1000))
    stop = asyncio.Event()
    try:
        try:
            await _set_up(exchange)
            async with asyncio.TaskGroup() as group:
                trader = group.create_task(_trade(exchange, venue, plan, cfg, placed, books,
                                                  stop),
                                           name=f"{prefix}trader")
                await _schedule(sim, plan)
                await asyncio.sleep(max(0.0, max(cfg.plan.window_s, plan.end_s) - plan.end_s))
                stop.set()
                await trader
            await sim.clear_faults()
            await converge(sim, exchange.orders.runtime.manager, cfg, result,
                           symbol=venue.symbol, venue_symbol=venue.venue_symbol,
                           per_unit=per_unit)
            truth = await sim.truth()
            result.violations.extend(checks.check_no_double(truth, venue.venue_symbol, prefix))
            note_truth(result, truth)
            result.reconnects = max(0, ws_opened(truth) - 1)   # one stream: the book's
            rest = exchange.rest
            own = exchange.native.rest_requests_total if exchange.native is not None else 0
            result.logical, result.requests = rest.logical_total, _requests(truth, own)
            result.violations.extend(_budget(result.requests, rest, cfg,
                                             monotonic() - started))
        finally:
            stop.set()
            await exchange.close()
    except Exception as exc:  # any escape is a finding of invariant 6
        for leaf in _leaves(exc):
            result.violations.append(checks.Violation(6, f"unhandled {_describe(leaf)}"))
    result.orders = len(placed)
    result.fresh_samples = books.checked
    result.violations.extend(books.violations)
    runtime = exchange.orders.runtime
    if runtime is not None:
        with Journal.open(scratch / "journal.db") as journal:
            for order in list(runtime.manager.table.orders.values()):
                history = [(h.from_state, h.to_state, h.payload)
                           for h in journal.history(order.cl_ord_id)]
                spec = {"cl_ord_id": order.cl_ord_id, "symbol": order.symbol,
                        "side": order.side, "qty": order.qty, "price": order.price,
                        "adopted": order.adopted}
                result.violations.extend(checks.replay_transitions(spec, history))
    leftover = [t.get_name() for t in asyncio.all_tasks()
                if t.get_name().startswith(prefix) and not t.done()]
    if leftover:
        result.violations.append(checks.Violation(6, f"tasks still running: {leftover}"))


async def _set_up(exchange: Any) -> None:
    """Markets and the journal's reconciliation: set-up, not under test (a loaded machine may
    need a few tries at a 300 ms read timeout)."""
    import ccxt

    async with asyncio.timeout(30.0):
        while True:
            try:
                await exchange.load_markets()
                await exchange.start_orders()
                return
            except ccxt.BaseError:
                await asyncio.sleep(0.2)


async def _trade(exchange: Any, venue: _Venue, plan: SeedPlan, cfg: ChaosConfig,
                 placed: list[str], books: BookCheck, stop: asyncio.Event) -> None:
    """Place and cancel small orders around the mid of the book ``watch_order_book`` hands the
    bot, only while it hands one (a withheld book means no trade this step)."""
    import ccxt

    moves = iter(plan.moves)
    while not stop.is_set():
        book = await read_book(exchange, venue.symbol, books)
        if book is None or not book["bids"] or not book["asks"]:
            await _pause(stop, cfg.step_s / 2)
            continue
        mid = (book["bids"][0][0] + book["asks"][0][0]) / 2
        move = next(moves, None)
        if move is None:
            return
        runtime = exchange.orders.runtime
        open_orders = runtime.manager.open_orders() if runtime is not None else []
        if open_orders and (len(open_orders) >= 3 or move.cancel_roll < 0.35):
            target = open_orders[min(len(open_orders) - 1, int(move.pick * len(open_orders)))]
            with contextlib.suppress(ccxt.BaseError):
                await exchange.cancel_order(target.order_id or "", venue.symbol,
                                            {"clientOrderId": target.cl_ord_id})
        else:
            buy = move.side == "Buy"
            towards = move.offset_ticks * venue.tick
            offset = towards if move.crossing == buy else -towards
            price = round(round((mid + offset) / venue.tick) * venue.tick, 6)
            placed.append(f"{move.side} {price}")
            with contextlib.suppress(ccxt.BaseError):
                await exchange.create_order(venue.symbol, "limit", move.side.lower(),
                                            venue.lot, price)
        await _pause(stop, cfg.step_s)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()


async def read_book(exchange: Any, symbol: str, books: BookCheck) -> Mapping[str, Any] | None:
    """The guard's next book for ``symbol``, checked (invariant 4); None when the guard withheld
    it for ``BOOK_WAIT_S`` or raised its error."""
    import ccxt

    try:
        async with asyncio.timeout(BOOK_WAIT_S):
            book: Mapping[str, Any] = await exchange.watch_order_book(symbol, 5)
    except (TimeoutError, ccxt.BaseError):
        books.withheld += 1
        return None
    books.served(book)
    return book


def _requests(truth: Mapping[str, Any], streams: int) -> int:
    """Requests the guard's REST session sent the venue on either dialect's API: every request
    the venue counted there (control routes excluded), less the ``streams`` requests the
    market-data sessions sent themselves (counted on their side: Binance's ``exchangeInfo``
    and depth snapshots). The guard's own set-up requests (its markets, the journal's
    reconciliation) count like any other."""
    counts: Mapping[str, int] = truth.get("requests", {})
    api = sum(int(n) for key, n in counts.items() if " /api/v1" in key or " /fapi/" in key)
    return api - streams


def ws_opened(truth: Mapping[str, Any]) -> int:
    """Websocket connections the venue accepted (either dialect's hub)."""
    binance = truth.get("binance")
    if isinstance(binance, Mapping):
        return int(binance.get("ws_opened_total", 0))
    return int(truth.get("ws", {}).get("opened_total", 0))


def _budget(requests: int, rest: Any, cfg: ChaosConfig,
            elapsed_s: float) -> list[checks.Violation]:
    api_only = {"requests": {"GET /api/v1": requests}}
    return checks.check_budget(api_only, logical=rest.logical_total, sent=rest.sent_total,
                               duration_s=elapsed_s, budget=cfg.budget,
                               max_attempts=cfg.max_attempts)
