"""One chaos seed: the whole client stack against its own simulator, faults from the seed's plan.

What runs, all in the caller's event loop (a virtual-time loop and its in-memory network, see
:mod:`venueguard.app.chaos_virtual`, or a real loop on loopback sockets); every clock is read
through :mod:`venueguard.io.clock`, so on a virtual loop the run is a function of the seed:

* a simulator (:func:`venueguard.sim.testing.running_sim`) seeded with the seed, limits raised;
* a :class:`~venueguard.io.ws_session.MarketDataSession` on the book and the private tables,
  with an instrumented connector (every frame passes a probe before the session) and a consumer
  that samples the book's health;
* a :class:`~venueguard.io.http_session.RestSession` (through the simulator's resolver seam, so
  ``dns_failure`` works) and an :class:`~venueguard.io.orders_runtime.OrdersRuntime` (order
  manager, journal on tmpfs, dead man's switch, safe mode) fed by the session's private rows;
* a trader placing and cancelling small orders around the mid while the book is fresh;
* the fault schedule, posted through ``POST /_sim/faults`` at its times.

After the window every fault is cleared (``DELETE /_sim/faults``), trading stops, and the
invariants are checked (:mod:`venueguard.app.chaos_checks`); 2 and 3 are polled until they hold
or ``grace_s`` runs out. Thresholds are scaled down to the window (sub-second heartbeats and
reconcile intervals), which the design allows: every one is a configuration value.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import itertools
import random
import shutil
import tempfile
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp.abc import AbstractResolver

from venueguard.app import chaos_checks as checks
from venueguard.app.chaos_plan import PlanConfig, SeedPlan, plan_for
from venueguard.core.backoff import BackoffConfig
from venueguard.core.budget import BudgetConfig
from venueguard.core.liveness import DEFAULT_QUIET_CHANNELS, LivenessConfig
from venueguard.core.reconcile import ReconcileConfig
from venueguard.core.rules import RuleSet, parse_rules
from venueguard.io import errors
from venueguard.io import md_events as ev
from venueguard.io.clock import monotonic, wall_ns
from venueguard.io.http_session import RestConfig, RestSession
from venueguard.io.journal import Journal
from venueguard.io.order_manager import (
    OrderIntent,
    OrderManager,
    OrderManagerConfig,
    OrdersBlocked,
)
from venueguard.io.orders_runtime import OrdersRuntime, RuntimeConfig
from venueguard.io.rest_transport import Timeouts
from venueguard.io.ws_session import MarketDataSession, MdConfig
from venueguard.io.ws_transport import WsConnection, WsHandler, connect_picows
from venueguard.sim.resolver import SimResolver
from venueguard.sim.testing import SimHandle, running_sim
from venueguard.telemetry.events import EventLog
from venueguard.venues.bitmex.adapter import BitmexAdapter
from venueguard.venues.bitmex.rules import bitmex_rules
from venueguard.venues.bitmex.timefmt import parse_ms_or_none

__all__ = ["CLIENT_BUGS", "SIM_LIMITS", "ChaosConfig", "RestFactory", "SeedResult", "converge",
           "note_truth", "run_seed", "seed_end", "seed_sim", "seed_start"]

SYMBOL = "XBTUSD"
TICK = 0.5
LOT = 100
MARKET_TABLES = frozenset({"orderBookL2", "orderBookL2_25", "trade", "quote", "instrument"})
CHECKS = 7

#: Cooldowns scaled to the window (the defaults are minutes; the classification is unchanged).
SCALED_RULES = """
[kinds.dns]
cooldown_s = 0.3
[kinds.forbidden]
cooldown_s = 0.5
[kinds.edge_protection]
cooldown_s = 0.5
"""

RestFactory = Callable[[RestConfig, EventLog, AbstractResolver, random.Random], RestSession]


def _rest(config: RestConfig, events: EventLog, resolver: AbstractResolver,
          rng: random.Random) -> RestSession:
    return RestSession(config, events=events, resolver=resolver, rng=rng)


class _ResendsUnderNewClOrdId(RestSession):
    """A client bug on purpose: after a timeout it places the order again under a NEW clOrdID
    (the mistake invariant 1 exists to catch); switched on by
    ``VENUEGUARD_CHAOS_CLIENT_BUG=resend-new-clordid``."""

    async def place_order(self, symbol: str, side: str, order_qty: float,
                          price: float | None = None, **kw: Any) -> dict[str, Any]:
        try:
            return await super().place_order(symbol, side, order_qty, price, **kw)
        except errors.AmbiguousOutcome:
            # a new id, derived from the first so the seed still replays byte for byte
            kw["cl_ord_id"] = f"{kw.get('cl_ord_id') or 'vg'}-again"[-36:]
            return await super().place_order(symbol, side, order_qty, price, **kw)


def _resends(config: RestConfig, events: EventLog, resolver: AbstractResolver,
             rng: random.Random) -> RestSession:
    return _ResendsUnderNewClOrdId(config, events=events, resolver=resolver, rng=rng)


#: Client bugs a chaos run can switch on to show that the invariants catch them (test-only).
CLIENT_BUGS: dict[str, RestFactory] = {"resend-new-clordid": _resends}


@dataclass(frozen=True, slots=True)
class ChaosConfig:
    plan: PlanConfig = field(default_factory=PlanConfig)
    kinds: tuple[str, ...] | None = None       # restrict the fault kinds drawn
    scenario: str | None = None                # a simulator scenario running underneath
    venue: str = "sim"                         # or ccxt:bitmex / ccxt:binanceusdm (chaos_ccxt)
    client_bug: str | None = None              # a key of CLIENT_BUGS: a broken client on purpose
    fleet: int = 0                             # >= 2: that many members on one account
    rate_msgs_s: float = 40.0
    grace_s: float = 8.0                       # convergence allowed after the faults end
    step_s: float = 0.08                       # trader pace
    sample_s: float = 0.02                     # consumer health sampling
    freshness_slack_s: float = 0.15            # timer and loop slack on the freshness check
    budget: BudgetConfig = field(default_factory=lambda: BudgetConfig(
        ratio=0.2, min_per_s=1.0, window_s=2.0))
    max_attempts: int = 4
    liveness: LivenessConfig = field(default_factory=lambda: LivenessConfig(
        ping_after_s=0.25, pong_timeout_s=0.25, max_data_age_s=0.6,
        quiet_channels=DEFAULT_QUIET_CHANNELS | {"trade"}, max_ts_age_ms=1500,
        future_tolerance_ms=1000))
    reconcile: ReconcileConfig = field(default_factory=lambda: ReconcileConfig(
        visibility_grace_s=1.5, unknown_first_query_s=0.05, query_interval_s=0.2,
        unknown_window_s=3.0, sweep_interval_s=0.5, safe_sweep_interval_s=1.0,
        # the visibility horizon: above the plan's longest delayed_visibility (1 s)
        acceptance_window_s=3.0, position_grace_s=1.5, budget_queries=40, safe_budget_queries=10,
        budget_interval_s=1.0, history_margin_ms=2_000))


@dataclass(slots=True)
class SeedResult:
    seed: int
    faults: list[str]
    orders: int
    violations: list[checks.Violation]
    duration_s: float
    requests: int = 0
    logical: int = 0
    fresh_samples: int = 0
    reconnects: int = 0
    fault_hits: dict[str, int] = field(default_factory=dict)
    truth_digest: str = ""                     # the venue's final state, canonical JSON hashed
    trace: str = ""                            # the seed's event log and outcome, JSON lines
    digest: str = ""                           # sha256 of ``trace`` (16 hex digits)
    cpu_s: float = 0.0                         # CPU the seed took (virtual time; not traced)

    @property
    def ok(self) -> bool:
        return not self.violations

    def failed_invariants(self) -> list[int]:
        return sorted({v.invariant for v in self.violations})


class _Probe:
    """Consumer-side instrument for invariant 4 (sees each frame before the session does)."""

    def __init__(self, max_ts_age_ms: int, clock_ms: Callable[[], int]) -> None:
        self.max_ts_age_ms = max_ts_age_ms
        self.clock_ms = clock_ms
        self.stream: Any = None            # the consumer's EventStream
        self.last_data_at: float | None = None
        self.violations: list[checks.Violation] = []

    def wrap(self, inner: WsHandler) -> WsHandler:
        return _ProbedHandler(self, inner)

    def _stale_ms(self, payload: bytes) -> tuple[str | None, int | None]:
        """The frame's table and, when beyond the bound, its age (invariant 4's judgment)."""
        if not payload.startswith(b"{"):
            return None, None
        try:
            msg = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return None, None
        table = msg.get("table") if isinstance(msg, dict) else None
        if not isinstance(table, str) or msg.get("action") == "partial":
            return table if isinstance(table, str) else None, None
        stamps = [r.get("timestamp") for r in msg.get("data") or [] if isinstance(r, dict)]
        newest = max((s for s in stamps if isinstance(s, str)), default=None)
        if newest is None or table not in MARKET_TABLES:
            return table, None
        stale = checks.stale_by_ms(parse_ms_or_none(newest), self.clock_ms(), self.max_ts_age_ms)
        return table, stale

    def on_text(self, inner: WsHandler, payload: bytes) -> None:
        table, age_ms = self._stale_ms(payload)
        queue = self.stream.queue if self.stream is not None else None
        before = len(queue) if queue is not None else 0
        inner.on_text(payload)
        if age_ms is None:
            if table is not None:
                self.last_data_at = monotonic()
            return
        if queue is None:
            return
        if len(queue) == queue.maxlen:
            return
        for event in itertools.islice(queue, before, None):
            if isinstance(event, ev.TopOfBook | ev.TableData):
                self.violations.append(checks.Violation(
                    4, f"{table} data {age_ms} ms old (bound {self.max_ts_age_ms} ms) reached "
                       f"the consumer as {type(event).__name__}"))
                return


class _ProbedHandler:
    """A connection's frame handler with the probe in front of it."""

    __slots__ = ("_inner", "_probe")

    def __init__(self, probe: _Probe, inner: WsHandler) -> None:
        self._probe = probe
        self._inner = inner

    def on_text(self, payload: bytes) -> None:
        self._probe.on_text(self._inner, payload)

    def on_pong_frame(self) -> None:
        self._inner.on_pong_frame()

    def on_closed(self) -> None:
        self._inner.on_closed()


def _rules() -> RuleSet:
    return parse_rules(SCALED_RULES, "<chaos scaled rules>", base=bitmex_rules())


def _scratch_dir() -> Path:
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() else None
    return Path(tempfile.mkdtemp(prefix="venueguard-chaos-", dir=base))


#: The simulator's own limits in a seed, far above what a seed asks: its rate limits, bans and
#: refusals are the seed's faults, never the venue's ordinary limits.
SIM_LIMITS: dict[str, Any] = {"rest_per_min": 1_000_000, "rest_unauth_per_min": 1_000_000,
                              "order_per_s": 100_000}


def seed_sim(seed: int, cfg: ChaosConfig) -> contextlib.AbstractAsyncContextManager[SimHandle]:
    """The BitMEX simulator of a native or fleet seed (its market process is the seed's)."""
    return running_sim(scenario=cfg.scenario, seed=seed, rate_msgs_s=cfg.rate_msgs_s,
                       ws_opens_per_hour=1_000_000, **SIM_LIMITS)


def seed_start(seed: int, cfg: ChaosConfig) -> tuple[SeedPlan, SeedResult]:
    """The seed's plan and its empty result; the plan is drawn twice, and a second draw that
    differs is a violation of invariant 7 (the seed would not replay)."""
    plan = plan_for(seed, cfg.plan, cfg.kinds)
    result = SeedResult(seed, plan.kinds(), 0, [], 0.0)
    if plan_for(seed, cfg.plan, cfg.kinds).digest() != plan.digest():
        result.violations.append(checks.Violation(7, "the same seed drew a different plan"))
    return plan, result


def seed_end(result: SeedResult, plan: SeedPlan, cfg: ChaosConfig, events: str,
             scratch: Path, started: float, extra: Mapping[str, object] | None = None
             ) -> SeedResult:
    """The seed's duration, trace and digest. The scratch directory's random name (in journal
    paths) is not the seed's history: the trace says ``$SCRATCH``."""
    result.duration_s = monotonic() - started
    result.trace = _trace(plan, cfg, events.replace(str(scratch), "$SCRATCH"), result, extra)
    result.digest = hashlib.sha256(result.trace.encode()).hexdigest()[:16]
    return result


def note_truth(result: SeedResult, truth: Mapping[str, Any]) -> None:
    """What the venue's truth says of every seed: its fault hits and its digest."""
    result.fault_hits = {str(k): int(v) for k, v in truth.get("fault_hits", {}).items()}
    result.truth_digest = hashlib.sha256(
        orjson.dumps(truth, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


async def run_seed(seed: int, config: ChaosConfig | None = None, *,
                   rest_factory: RestFactory | None = None) -> SeedResult:
    """Run one seed and check every invariant; never raises for a client failure (it is a
    violation of invariant 6), only for a broken harness.

    ``result.trace`` is the seed's history: the plan, every event the client stack logged
    (stamped by the process clocks) and the outcome; ``result.digest`` hashes it. On a
    virtual-time loop both are a function of the seed and the configuration alone."""
    cfg = config or ChaosConfig()
    if rest_factory is None:
        rest_factory = CLIENT_BUGS[cfg.client_bug] if cfg.client_bug else _rest
    started = monotonic()
    plan, result = seed_start(seed, cfg)
    scratch = _scratch_dir()
    log = io.StringIO()
    try:
        async with seed_sim(seed, cfg) as sim:
            await _run_stack(sim, plan, cfg, result, scratch, rest_factory, started, log)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return seed_end(result, plan, cfg, log.getvalue(), scratch, started)


def _trace(plan: SeedPlan, cfg: ChaosConfig, events: str, result: SeedResult,
           extra: Mapping[str, object] | None = None) -> str:
    head = {"seed": plan.seed, "plan": plan.digest(), "faults": result.faults,
            "scenario": cfg.scenario, "client_bug": cfg.client_bug, **(extra or {})}
    tail = {"seed": plan.seed, "orders": result.orders, "requests": result.requests,
            "logical": result.logical, "reconnects": result.reconnects,
            "fresh_samples": result.fresh_samples, "fault_hits": dict(sorted(
                result.fault_hits.items())), "truth": result.truth_digest,
            "duration_s": round(result.duration_s, 6),
            "violations": [str(v) for v in result.violations]}
    return (orjson.dumps(head).decode() + "\n" + events
            + orjson.dumps(tail).decode() + "\n")



def seed_rest_config(sim: SimHandle, plan: SeedPlan, cfg: ChaosConfig,
                     rules: RuleSet) -> RestConfig:
    """A seed's REST session settings: the simulator's key, short timeouts, the seed's budget."""
    port = sim.base_url.rsplit(":", 1)[1]
    return RestConfig(
        base_url=f"http://sim.venueguard.test:{port}/api/v1", api_key=sim.api_key,
        api_secret=sim.api_secret, timeouts=Timeouts(connect_s=0.5, sock_read_s=0.3,
                                                     total_s=1.5),
        backoff=BackoffConfig(base_s=0.05, cap_s=0.5, reset_after_s=0.0), budget=cfg.budget,
        max_attempts=cfg.max_attempts, rules=rules,
        # name lookups happen on new connections only: open one per request so dns_failure bites
        keepalive="dns_failure" not in plan.kinds())


def seed_md_session(sim: SimHandle, cfg: ChaosConfig, rules: RuleSet, events: EventLog,
                    rng: random.Random) -> tuple[_Probe, MarketDataSession]:
    """A seed's market-data session (the book and the private tables) and the probe that
    checks what it hands its consumer."""
    probe = _Probe(cfg.liveness.max_ts_age_ms, lambda: wall_ns() // 1_000_000)

    async def connector(url: str, handler: WsHandler, headers: Mapping[str, str],
                        timeout_s: float) -> WsConnection:
        return await connect_picows(url, probe.wrap(handler), headers, timeout_s)

    md = MarketDataSession(MdConfig(
        url=sim.ws_url, topics=(f"orderBookL2:{SYMBOL}", "order", "execution", "position"),
        api_key=sim.api_key, api_secret=sim.api_secret, liveness=cfg.liveness,
        backoff=BackoffConfig(base_s=0.05, cap_s=0.5, reset_after_s=2.0),
        connect_timeout_s=1.0, subscribe_timeout_s=1.0, max_opens_per_hour=1_000_000,
        rules=rules), events=events, connector=connector, rng=rng)
    probe.stream = md.events()
    return probe, md


async def _run_stack(sim: SimHandle, plan: SeedPlan, cfg: ChaosConfig, result: SeedResult,
                     scratch: Path, rest_factory: RestFactory, started: float,
                     log: io.StringIO) -> None:
    seed, rules = plan.seed, _rules()
    events = EventLog(log, keep=200)
    resolver = SimResolver(sim.base_url)
    rest = rest_factory(seed_rest_config(sim, plan, cfg, rules), events, resolver,
                        random.Random(seed))
    probe, md = seed_md_session(sim, cfg, rules, events, random.Random(seed + 1))
    journal = Journal.open(scratch / "journal.db")
    runtime = OrdersRuntime(BitmexAdapter(rest), journal, symbols=(SYMBOL,), md=md,
                            events=events, rng=random.Random(seed + 2), config=RuntimeConfig(
                                manager=OrderManagerConfig(reconcile=cfg.reconcile,
                                                           start_timeout_s=5.0,
                                                           idle_wake_s=0.1)))
    intents: dict[str, str] = {}
    prefix = f"chaos-{seed}-"
    stop_trading = asyncio.Event()
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(md.run(), name=f"{prefix}md")
            group.create_task(_consume(probe.stream), name=f"{prefix}consumer")
            sampler = group.create_task(_sample(md, probe, cfg, result), name=f"{prefix}sampler")
            try:
                # the first sync is set-up, not under test: a loaded machine may need a while
                await md.wait_synced(30.0)
                await runtime.start()
                group.create_task(runtime.run(), name=f"{prefix}runtime")
                window_s = max(cfg.plan.window_s, plan.end_s)
                trader = group.create_task(
                    _guarded(_trade(md, runtime, plan, cfg, intents, prefix, stop_trading),
                             "trader", result), name=f"{prefix}trader")
                await _schedule(sim, plan)
                await asyncio.sleep(max(0.0, window_s - plan.end_s))
                stop_trading.set()
                await trader
                await sim.clear_faults()
                await converge(sim, runtime.manager, cfg, result)
                _final_checks(await sim.truth(), rest, cfg, result, prefix,
                              monotonic() - started)
            finally:
                stop_trading.set()
                await runtime.stop(clean=True)
                md.stop()
                sampler.cancel()
    except Exception as exc:  # any escape is a finding of invariant 6
        for leaf in _leaves(exc):
            result.violations.append(checks.Violation(6, f"unhandled {_describe(leaf)}"))
        if not any(v.invariant == 1 for v in result.violations):  # what reached the venue
            with contextlib.suppress(Exception):
                await asyncio.sleep(1.0)      # requests in flight land first
                truth = await sim.truth()
                result.violations.extend(checks.check_no_double(truth, SYMBOL, prefix))
    finally:
        await rest.close()
        await resolver.close()
        _replay_journal(journal, runtime, result)
        journal.close()
    result.orders = len(intents)
    result.reconnects = md.attempt
    result.violations.extend(probe.violations)
    leftover = [t.get_name() for t in asyncio.all_tasks()
                if t.get_name().startswith(prefix) and not t.done()]
    if leftover:
        result.violations.append(checks.Violation(6, f"tasks still running: {leftover}"))


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


def _describe(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


async def _guarded(work: Any, name: str, result: SeedResult) -> None:
    """Run ``work``; an exception is recorded (invariant 6) and the seed goes on to its checks."""
    try:
        await work
    except Exception as exc:
        result.violations.append(checks.Violation(6, f"{name}: unhandled {_describe(exc)}"))


async def _consume(stream: Any) -> None:
    async for _ in stream:
        pass


async def _sample(md: MarketDataSession, probe: _Probe, cfg: ChaosConfig,
                  result: SeedResult) -> None:
    """Invariant 4, consumer side: a book marked fresh must have data newer than its bound."""
    view = md.book(SYMBOL)
    bound = md.book_max_age_s + cfg.freshness_slack_s
    while True:
        await asyncio.sleep(cfg.sample_s)
        if not view.is_fresh:
            continue
        result.fresh_samples += 1
        last = probe.last_data_at
        age = float("inf") if last is None else monotonic() - last
        if age > bound:
            probe.violations.append(checks.Violation(
                4, f"book marked fresh with its last data {age:.2f} s old (bound {bound:.2f} s)"))
            return


async def _schedule(sim: SimHandle, plan: SeedPlan) -> None:
    t0 = monotonic()
    for fault in plan.faults:
        await asyncio.sleep(max(0.0, t0 + fault.start_s - monotonic()))
        body = fault.body()
        kind = str(body.pop("kind"))
        await sim.add_fault(kind, **body)
    await asyncio.sleep(max(0.0, t0 + plan.end_s - monotonic()))


async def _trade(md: MarketDataSession, runtime: OrdersRuntime, plan: SeedPlan,
                 cfg: ChaosConfig, intents: dict[str, str], prefix: str,
                 stop: asyncio.Event) -> None:
    """Place and cancel small orders around the mid, only while the book is fresh."""
    view = md.book(SYMBOL)
    moves = iter(plan.moves)
    while not stop.is_set():
        mid = view.mid() if view.is_fresh else None
        if mid is None:
            await asyncio.sleep(cfg.step_s / 2)
            continue
        move = next(moves, None)
        if move is None:
            return
        open_orders = runtime.manager.open_orders()
        if open_orders and (len(open_orders) >= 3 or move.cancel_roll < 0.35):
            target = open_orders[min(len(open_orders) - 1, int(move.pick * len(open_orders)))]
            await runtime.cancel(target.cl_ord_id)
        else:
            towards = move.offset_ticks * TICK
            buy = move.side == "Buy"
            offset = towards if move.crossing == buy else -towards
            price = round((mid + offset) / TICK) * TICK
            tag = f"{prefix}{len(intents) + 1}"
            with contextlib.suppress(OrdersBlocked):
                order = await runtime.submit(OrderIntent(SYMBOL, move.side, LOT, price,
                                                         post_only=not move.crossing, text=tag))
                intents[tag] = order.cl_ord_id
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(cfg.step_s):
                await stop.wait()


async def converge(sim: Any, manager: OrderManager, cfg: ChaosConfig, result: SeedResult, *,
                   symbol: str = SYMBOL, venue_symbol: str = SYMBOL, per_unit: int = 1) -> None:
    """Invariants 2 and 3: poll until they hold, or report what still differs after grace.

    ``symbol`` is the order runtime's name of the instrument, ``venue_symbol`` the simulator's;
    the simulator counts ``per_unit`` contracts per unit of the runtime's quantity."""
    async def differences() -> list[checks.Violation]:
        truth = await sim.truth()
        local = [checks.LocalOrder(o.cl_ord_id, o.order_id, o.state.value)
                 for o in manager.table.orders.values() if o.symbol == symbol]
        position = round(manager.position(symbol) * per_unit, 6)
        return (checks.check_converged(truth, venue_symbol, local)
                + checks.check_position(truth, venue_symbol, position))

    await converge_by(differences, manager.wake, cfg, result)


async def converge_by(differences: Callable[[], Awaitable[list[checks.Violation]]],
                      wake: Callable[[], None], cfg: ChaosConfig, result: SeedResult) -> None:
    """Poll ``differences`` every 0.1 s, waking the runtime(s) between polls, until it finds
    none; what it still finds after the grace period becomes the seed's violations."""
    deadline = monotonic() + cfg.grace_s
    while True:
        found = await differences()
        if not found:
            return
        if monotonic() >= deadline:
            result.violations.extend(
                checks.Violation(v.invariant, f"{v.message} after {cfg.grace_s:g} s grace")
                for v in found)
            return
        wake()
        await asyncio.sleep(0.1)


def _final_checks(truth: Mapping[str, Any], rest: RestSession, cfg: ChaosConfig,
                  result: SeedResult, prefix: str, elapsed_s: float) -> None:
    result.violations.extend(checks.check_no_double(truth, SYMBOL, prefix))
    result.requests = checks.api_requests(truth)
    note_truth(result, truth)
    result.logical = rest.logical_total
    result.violations.extend(checks.check_budget(
        truth, logical=rest.logical_total, sent=rest.sent_total,
        duration_s=elapsed_s, budget=cfg.budget, max_attempts=cfg.max_attempts))


def _replay_journal(journal: Journal, runtime: OrdersRuntime, result: SeedResult) -> None:
    """Invariant 7: every journaled order's events, replayed, take the journaled transitions."""
    for order in list(runtime.manager.table.orders.values()):
        history = [(h.from_state, h.to_state, h.payload)
                   for h in journal.history(order.cl_ord_id)]
        spec = {"cl_ord_id": order.cl_ord_id, "symbol": order.symbol, "side": order.side,
                "qty": order.qty, "price": order.price, "adopted": order.adopted}
        result.violations.extend(checks.replay_transitions(spec, history))
