"""``venueguard chaos --fleet N``: N order runtimes on one account, members of one fleet.

Each seed starts one simulator (one account, one key) and N members sharing it through the
in-process fleet backend (:class:`~venueguard.fleet.backend.MemoryBackend`): each member has its
own market-data session, REST session (its requests reserved in the fleet's shared rate-limit
buckets, its retries drawn from the fleet's budget), journal and order runtime (its own
client-id prefix, ``own_prefix_only``: it keeps to its own orders; the dead man's switch is the
lease owner's), and trades its own moves while the seed's faults run. On a virtual-time loop
the whole fleet and the simulator run in one process, and a seed's trace (every member's
events, in member order) is a function of the seed.

Checked per member, as for one bot (:mod:`venueguard.app.chaos_seed`): 1 no intent twice at
the venue, 2 its table against the venue's orders of its prefix after the faults end, 4 its
consumer never handed stale data as fresh, 6 nothing unhandled, no task left, 7 its journal
replayed through the order state machine. And the fleet's own:

* no client id in two members: the venue holds each client id once (invariant 1), every one
  of the fleet's orders at the venue carries exactly one member's prefix, and no order sits in
  two members' tables;
* the account's position at the venue equals the sum of the members' positions (invariant 3,
  polled with invariant 2 until both hold or the grace runs out);
* one lease owner at a time: every member's role sampled through the run, never two owners at
  once (and some member owns it);
* the lease changes hands: most seeds plan a handover (:func:`~venueguard.app.chaos_plan.
  lease_cut_for`): while the faults run, the member holding the lease loses its fleet store
  (refused or hung), or its bot stops cleanly and starts again on its journal, for longer
  than the lease lives; it must stop acting as owner once its lease lapsed, and another
  member must take the lease within the lease's time to live plus a margin
  (:mod:`venueguard.app.chaos_lease`);
* once converged, while the fleet's orders rest at the venue, the owner's dead man's switch is
  armed, or counts them and so is being armed (each member publishes its resting orders to
  the fleet, as a bot under ``venueguard monitor`` does);
* invariant 5 over the account: the venue's requests against the members' logical requests,
  each member's retry bound summed.

Test-only switches break the fleet on purpose (``FLEET_BUGS``): ``shared-prefix`` gives every
member the same client-id prefix, as two bots configured alike would be; ``stale-owner`` makes
every member trust the last lease answer it got, so a member whose store went silent goes on
acting as owner.
"""

from __future__ import annotations

import asyncio
import io
import random
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from venueguard.app import chaos_checks as checks
from venueguard.app.chaos_lease import (
    LEASE_SAMPLE_S,
    CutStore,
    OwnerWatch,
    StaleOwnerFleet,
    cut_owner,
)
from venueguard.app.chaos_plan import LeaseCut, SeedPlan, lease_cut_for, member_moves
from venueguard.app.chaos_seed import (
    SYMBOL,
    ChaosConfig,
    SeedResult,
    _consume,
    _describe,
    _guarded,
    _leaves,
    _Probe,
    _replay_journal,
    _ResendsUnderNewClOrdId,
    _rules,
    _sample,
    _schedule,
    _scratch_dir,
    _trade,
    converge_by,
    note_truth,
    seed_end,
    seed_md_session,
    seed_rest_config,
    seed_sim,
    seed_start,
)
from venueguard.core.shared_reads import ShareConfig
from venueguard.fleet.backend import MemoryBackend
from venueguard.fleet.fleet import Fleet, FleetConfig
from venueguard.io.clock import monotonic
from venueguard.io.http_session import RestSession
from venueguard.io.journal import Journal
from venueguard.io.order_manager import OrderManagerConfig
from venueguard.io.orders_runtime import OrdersRuntime, RuntimeConfig
from venueguard.io.ws_session import MarketDataSession
from venueguard.sim.resolver import SimResolver
from venueguard.sim.testing import SimHandle
from venueguard.telemetry.events import EventLog
from venueguard.venues.bitmex.adapter import BitmexAdapter

__all__ = ["FLEET_BUGS", "LEASE_SAMPLE_S", "SHARE", "run_fleet_seed"]

#: Test-only fleet bugs (``VENUEGUARD_CHAOS_CLIENT_BUG``): the invariants must catch each.
FLEET_BUGS = frozenset({"shared-prefix", "stale-owner"})
_LEASE_TTL_S = 1.0        # scaled to the window: ownership can change within a seed
#: A cut outlasts the lease and a follower's renewal (a fifth of it), so the lease always
#: lapses before the cut member can rejoin (three good probes after the store is back).
_CUT_MIN_S, _CUT_MAX_S = _LEASE_TTL_S + 0.3, _LEASE_TTL_S + 1.0
#: Once converged, the owner's switch counts every member's resting orders within a status
#: exchange each way (0.25 s each here) and the switch's poll (0.5 s).
_ARM_BOUND_S = 1.5
#: The shared sweep scaled to the window as the reconciler is (its sweep every 0.5 s, 1 s in
#: safe mode, where the defaults sweep every 30 s and take an answer up to 10 s old): unscaled,
#: a member took another's answer for up to 10 s, older than the whole grace period, and a
#: fill its websocket missed waited that long.
SHARE = ShareConfig(max_age_s=0.25, max_wait_s=0.5, postpone_s=0.05, fills_lookback_s=3.0)


@dataclass(slots=True)
class _Member:
    index: int
    name: str                 # the fleet member id, e.g. m0
    cl_prefix: str            # its client-id prefix (``<cl_prefix>-...``)
    tag: str                  # its intents' text prefix (``chaos-<seed>-m0-``)
    log: io.StringIO
    events: EventLog
    run: _Sessions            # what its bot's current run opened
    plan: SeedPlan
    intents: dict[str, str] = field(default_factory=dict)
    runs: int = 1             # the bot's runs: a stopped member starts again on its journal
    stopping: asyncio.Event = field(default_factory=asyncio.Event)   # its trader's stop
    tasks: dict[str, asyncio.Task[Any]] = field(default_factory=dict)
    # what the runs before this one counted (sessions end with their run)
    past_logical: int = 0
    past_sent: int = 0
    past_reconnects: int = 0
    past_findings: list[checks.Violation] = field(default_factory=list)

    @property
    def logical_total(self) -> int:
        return self.past_logical + self.run.rest.logical_total

    @property
    def sent_total(self) -> int:
        return self.past_sent + self.run.rest.sent_total

    @property
    def fleet(self) -> Fleet:
        """What the lease watch samples (:mod:`venueguard.app.chaos_lease`)."""
        return self.run.fleet

    @property
    def store(self) -> CutStore:
        """Its view of the fleet's store, which the harness may cut."""
        return self.run.store


async def run_fleet_seed(seed: int, config: ChaosConfig) -> SeedResult:
    """One seed with ``config.fleet`` members on one account; never raises for a client
    failure (a violation), only for a broken harness."""
    cfg = config
    started = monotonic()
    plan, result = seed_start(seed, cfg)
    cut = _cut_for(seed, cfg)
    if _cut_for(seed, cfg) != cut and not result.violations:
        result.violations.append(checks.Violation(7, "the same seed drew a different plan"))
    scratch = _scratch_dir()
    members: list[_Member] = []
    try:
        async with seed_sim(seed, cfg) as sim:
            await _run_fleet(sim, plan, cut, cfg, result, scratch, started, members)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return seed_end(result, plan, cfg, "".join(m.log.getvalue() for m in members), scratch,
                    started, {"lease_cut": None if cut is None else cut.as_dict()})


def _cut_for(seed: int, cfg: ChaosConfig) -> LeaseCut | None:
    return lease_cut_for(seed, cfg.plan, min_duration_s=_CUT_MIN_S, max_duration_s=_CUT_MAX_S)


@dataclass(slots=True)
class _Sessions:
    """What one run of a member's bot opens: all of it ends when the bot stops."""

    store: CutStore
    fleet: Fleet
    rest: RestSession
    resolver: SimResolver
    md: MarketDataSession
    probe: _Probe
    journal: Journal
    runtime: OrdersRuntime

    async def halt(self) -> None:
        """The bot's trading side stops: its runtime (cleanly), then its market data."""
        await self.runtime.stop(clean=True)
        self.md.stop()

    async def close(self, result: SeedResult) -> None:
        """Its lease, sessions and journal close; the journal is replayed (invariant 7)."""
        await self.fleet.aclose()
        await self.rest.close()
        await self.resolver.close()
        _replay_journal(self.journal, self.runtime, result)
        self.journal.close()


def _sessions(i: int, run: int, cl_prefix: str, events: EventLog, sim: SimHandle,
              plan: SeedPlan, cfg: ChaosConfig, scratch: Path, backend: MemoryBackend
              ) -> _Sessions:
    seed, rules, n = plan.seed, _rules(), cfg.fleet
    name = f"m{i}"
    again = "" if run == 1 else f"/run{run}"     # a new run draws anew (its client ids too)
    store = CutStore(backend)
    fleet_config = FleetConfig(venue="bitmex", rest_limit=1_000_000, fleet_size=n,
                               lease_ttl_s=_LEASE_TTL_S, status_s=0.25)
    if cfg.client_bug == "stale-owner":
        fleet: Fleet = StaleOwnerFleet(fleet_config, api_key=sim.api_key, events=events,
                                       store=store, member=name)
    else:
        fleet = Fleet(fleet_config, api_key=sim.api_key, events=events, backend=store,
                      member=name)
    resolver = SimResolver(sim.base_url)
    rest_config = seed_rest_config(sim, plan, cfg, rules)
    rest_class = (_ResendsUnderNewClOrdId if cfg.client_bug == "resend-new-clordid"
                  else RestSession)
    # the fleet's shared buckets, bans and retry budget
    rest = rest_class(rest_config, events=events, resolver=resolver,
                      rng=random.Random(f"{seed}/{name}{again}"), fleet=fleet)
    probe, md = seed_md_session(sim, cfg, rules, events,
                                random.Random(f"{seed}/{name}/md{again}"))
    (scratch / name).mkdir(exist_ok=run > 1)
    journal = Journal.open(scratch / name / "journal.db")
    # one account, several bots: each keeps to its own prefix; the account's position is the
    # fleet's check (the sum), not any one member's
    manager = OrderManagerConfig(reconcile=replace(cfg.reconcile, check_position=False),
                                 cl_ord_prefix=cl_prefix, own_prefix_only=True,
                                 start_timeout_s=5.0, idle_wake_s=0.1)
    runtime = OrdersRuntime(BitmexAdapter(rest), journal, symbols=(SYMBOL,), md=md,
                            events=events, rng=random.Random(f"{seed}/{name}/orders{again}"),
                            config=RuntimeConfig(manager=manager), fleet=fleet)
    runtime.manager.share_sweeps(fleet, SHARE)
    # what a bot publishes to its fleet, as the monitor does (the runtime adds its resting
    # orders: the owner arms the switch for every member's)
    fleet.set_status(lambda: {"regime": runtime.safe.regime, "health": rest.health.state.value})
    return _Sessions(store, fleet, rest, resolver, md, probe, journal, runtime)


def _member(i: int, sim: SimHandle, plan: SeedPlan, cfg: ChaosConfig, scratch: Path,
            backend: MemoryBackend) -> _Member:
    name = f"m{i}"
    log = io.StringIO()
    events = EventLog(log, keep=200)
    cl_prefix = "vgfleet" if cfg.client_bug == "shared-prefix" else f"vgm{i}"
    run = _sessions(i, 1, cl_prefix, events, sim, plan, cfg, scratch, backend)
    member_plan = replace(plan, moves=member_moves(plan, i, cfg.plan))
    return _Member(i, name, cl_prefix, f"chaos-{plan.seed}-{name}-", log, events, run,
                   member_plan)


@dataclass(slots=True)
class _Fleet:
    """The members' tasks in the seed's task group, and one member's stop and restart (a bot
    shut down cleanly, then started again on its journal)."""

    group: asyncio.TaskGroup
    sim: SimHandle
    plan: SeedPlan
    cfg: ChaosConfig
    result: SeedResult
    scratch: Path
    backend: MemoryBackend
    members: list[_Member]
    trading: bool = True

    async def open(self, m: _Member) -> None:
        """Its fleet link, market data and the consumer's checks (invariant 4)."""
        await m.fleet.start()
        m.tasks["md"] = self.group.create_task(m.run.md.run(), name=f"{m.tag}md")
        m.tasks["consumer"] = self.group.create_task(_consume(m.run.probe.stream),
                                                     name=f"{m.tag}consumer")
        m.tasks["sampler"] = self.group.create_task(
            _sample(m.run.md, m.run.probe, self.cfg, self.result), name=f"{m.tag}sampler")

    async def go(self, m: _Member) -> None:
        """Synced (set-up, not under test), its order runtime starts."""
        await m.run.md.wait_synced(30.0)
        await m.run.runtime.start()
        m.tasks["runtime"] = self.group.create_task(m.run.runtime.run(), name=f"{m.tag}runtime")

    def trade(self, m: _Member) -> None:
        m.stopping = asyncio.Event()
        m.tasks["trader"] = self.group.create_task(_guarded(
            _trade(m.run.md, m.run.runtime, m.plan, self.cfg, m.intents, m.tag, m.stopping),
            f"{m.name} trader", self.result), name=f"{m.tag}trader")

    async def stop_trading(self) -> None:
        self.trading = False
        for m in self.members:
            m.stopping.set()
        for m in self.members:
            if "trader" in m.tasks:
                await m.tasks["trader"]

    async def stop(self, name: str) -> None:
        """The member's bot stops as on a clean shutdown: trading, then its runtime (the
        switch left to the next owner while others rest orders), its sessions, its lease."""
        [m] = [m for m in self.members if m.name == name]
        m.stopping.set()
        await m.tasks["trader"]
        await m.run.halt()
        m.tasks["sampler"].cancel()
        for key in ("runtime", "md", "consumer"):
            await m.tasks[key]
        await m.run.close(self.result)
        m.past_logical += m.run.rest.logical_total
        m.past_sent += m.run.rest.sent_total
        m.past_reconnects += m.run.md.attempt
        m.past_findings += m.run.probe.violations

    async def restart(self, name: str) -> None:
        """The member's bot starts again on its journal, and trades while the seed does."""
        [m] = [m for m in self.members if m.name == name]
        m.runs += 1
        m.run = _sessions(m.index, m.runs, m.cl_prefix, m.events, self.sim, self.plan,
                          self.cfg, self.scratch, self.backend)
        await self.open(m)
        await self.go(m)
        if self.trading:
            self.trade(m)


async def _run_fleet(sim: SimHandle, plan: SeedPlan, cut: LeaseCut | None, cfg: ChaosConfig,
                     result: SeedResult, scratch: Path, started: float,
                     members: list[_Member]) -> None:
    backend = MemoryBackend()
    members.extend(_member(i, sim, plan, cfg, scratch, backend) for i in range(cfg.fleet))
    prefix = f"chaos-{plan.seed}-"
    owners = OwnerWatch(members, _LEASE_TTL_S)
    watching: asyncio.Task[None] | None = None
    try:
        async with asyncio.TaskGroup() as group:
            bots = _Fleet(group, sim, plan, cfg, result, scratch, backend, members)
            for m in members:
                await bots.open(m)
            watching = group.create_task(owners.run(), name=f"{prefix}owners")
            try:
                for m in members:      # the first syncs are set-up, not under test
                    await bots.go(m)
                window_s = max(cfg.plan.window_s, plan.end_s)
                for m in members:
                    bots.trade(m)
                handover = group.create_task(
                    cut_owner(cut, members, owners, monotonic(), bots),
                    name=f"{prefix}handover")
                await _schedule(sim, plan)
                await asyncio.sleep(max(0.0, window_s - plan.end_s))
                await handover       # the cut outlasts the lease: trading goes on meanwhile
                await bots.stop_trading()
                await sim.clear_faults()
                await _converge(sim, members, cfg, result)
                result.violations.extend(await owners.check_switch(
                    lambda: _resting(sim, members), lambda name: _arming(members, name),
                    _ARM_BOUND_S))
                truth = await sim.truth()
                _final_checks(truth, members, cfg, result, prefix, monotonic() - started)
            finally:
                for m in members:
                    m.stopping.set()
                    await m.run.halt()
                    if "sampler" in m.tasks:
                        m.tasks["sampler"].cancel()
                if watching is not None:
                    watching.cancel()
    except Exception as exc:  # any escape is a finding of invariant 6
        for leaf in _leaves(exc):
            result.violations.append(checks.Violation(6, f"unhandled {_describe(leaf)}"))
    finally:
        for m in members:
            await m.run.close(result)
    owners.finish()
    result.violations.extend(owners.violations)
    for m in members:
        result.orders += len(m.intents)
        result.reconnects += m.past_reconnects + m.run.md.attempt
        result.violations.extend(m.past_findings + m.run.probe.violations)
    leftover = [t.get_name() for t in asyncio.all_tasks()
                if t.get_name().startswith(prefix) and not t.done()]
    if leftover:
        result.violations.append(checks.Violation(6, f"tasks still running: {leftover}"))


async def _resting(sim: SimHandle, members: list[_Member]) -> set[str]:
    """The fleet's orders open at the venue (their client ids)."""
    marks = tuple(m.cl_prefix + "-" for m in members)
    return {str(o.get("clOrdID")) for o in (await sim.truth()).get("orders", [])
            if str(o.get("clOrdID") or "").startswith(marks)
            and o.get("ordStatus") in checks.VENUE_OPEN}


def _arming(members: list[_Member], name: str) -> bool:
    """The member's switch is armed, or it counts orders resting and so is arming it (a
    request the venue or the local throttle refused is retried)."""
    dms = next(m.run.runtime.dms for m in members if m.name == name)
    return dms is not None and (dms.armed or dms.covered > 0)


def _member_truth(truth: Mapping[str, Any], member: _Member) -> dict[str, Any]:
    mark = member.cl_prefix + "-"
    return {"orders": [o for o in truth.get("orders", [])
                       if str(o.get("clOrdID") or "").startswith(mark)]}


def _fleet_found(truth: Mapping[str, Any], members: list[_Member]) -> list[checks.Violation]:
    """Invariants 2 (per member, on its own prefix) and 3 (the account's position against the
    members' sum), and no order in two members' tables."""
    found: list[checks.Violation] = []
    total = 0.0
    holders: dict[str, list[str]] = {}
    for m in members:
        manager = m.run.runtime.manager
        local = [checks.LocalOrder(o.cl_ord_id, o.order_id, o.state.value)
                 for o in manager.table.orders.values() if o.symbol == SYMBOL]
        found += [checks.Violation(v.invariant, f"{m.name}: {v.message}")
                  for v in checks.check_converged(_member_truth(truth, m), SYMBOL, local)]
        total += manager.position(SYMBOL)
        for order in manager.table.orders.values():
            key = order.order_id or order.cl_ord_id
            holders.setdefault(key, []).append(m.name)
    found += [checks.Violation(1, f"fleet: order {key} held by {', '.join(names)}")
              for key, names in sorted(holders.items()) if len(names) > 1]
    found += [checks.Violation(3, f"fleet: {v.message} (the members' sum)")
              for v in checks.check_position(truth, SYMBOL, round(total, 6))]
    return found


async def _converge(sim: SimHandle, members: list[_Member], cfg: ChaosConfig,
                    result: SeedResult) -> None:
    async def differences() -> list[checks.Violation]:
        return _fleet_found(await sim.truth(), members)

    def wake() -> None:
        for m in members:
            m.run.runtime.manager.wake()

    await converge_by(differences, wake, cfg, result)


def _final_checks(truth: Mapping[str, Any], members: list[_Member], cfg: ChaosConfig,
                  result: SeedResult, prefix: str, elapsed_s: float) -> None:
    result.violations.extend(checks.check_no_double(truth, SYMBOL, prefix))
    marks = tuple(m.cl_prefix + "-" for m in members)
    for row in truth.get("orders", []):
        cl = str(row.get("clOrdID") or "")
        if cl.startswith("vg") and sum(cl.startswith(mark) for mark in marks) != 1:
            result.violations.append(checks.Violation(
                1, f"fleet: venue order {cl} carries no single member's prefix"))
    result.requests = checks.api_requests(truth)
    note_truth(result, truth)
    logical = sum(m.logical_total for m in members)
    sent = sum(m.sent_total for m in members)
    result.logical = logical
    # each member's retry bound, summed (each has its own local budget under the fleet's)
    bound = sum(m.logical_total + checks.retry_bound(m.logical_total, elapsed_s, cfg.budget)
                for m in members)
    received = result.requests
    if received > sent:
        result.violations.append(checks.Violation(
            5, f"venue received {received} requests, the members say they sent {sent}"))
    if received > bound:
        result.violations.append(checks.Violation(
            5, f"{received} requests for {logical} logical ones exceeds the fleet's budget "
               f"bound {bound:.0f}"))
    if received > logical * cfg.max_attempts:
        result.violations.append(checks.Violation(
            5, f"{received} requests for {logical} logical ones exceeds {cfg.max_attempts} "
               f"attempts each"))
