"""``venueguard chaos``: seeded fault schedules over the whole client stack, invariants checked.

    venueguard chaos --seeds 200                 # seeds 1..200, in virtual time
    venueguard chaos --first-seed 37 --seeds 1   # replay one seed (same digest, same trace)
    venueguard chaos --seeds 20 --trace run.jsonl          # every seed's history, JSON lines
    venueguard chaos --seeds 50 --sockets        # real sockets and the real clock
    venueguard chaos --seeds 50 --venue ccxt:binanceusdm   # through a guarded ccxt bot
    venueguard chaos --seeds 50 --fleet 3        # three bots, one account, one fleet

Each seed runs :func:`venueguard.app.chaos_seed.run_seed` (its own simulator, market-data
session, REST session and order runtime; faults drawn from the seed) and is checked against
every invariant of ``docs/invariants.md``.

By default (:func:`run_chaos_virtual`) every seed runs in virtual time
(:mod:`venueguard.app.chaos_virtual`): the whole stack in one process on a simulated clock over
an in-memory network, a fresh loop per seed, seeds spread over ``--workers`` processes. A seed's
history (its trace: the plan, the event log, the outcome) is then a function of the seed alone;
each row prints its digest, ``--trace FILE`` writes the traces in seed order, and a failing seed
replays to the same failure and the same digest.

``--sockets`` (:func:`run_chaos`) runs the seeds on loopback sockets and the real clock,
several at once in one event loop (``VENUEGUARD_CHAOS_CONCURRENCY``, default 8), rows printed as
seeds finish.
After the last seed the resident memory growth since the first wave (per worker process in
virtual time) is checked (invariant 6) and so is the event loop's record of exceptions nobody
retrieved.

``--venue ccxt:bitmex|ccxt:binanceusdm`` runs each seed through ccxt's class of that venue
under ``guard()`` instead (:mod:`venueguard.app.chaos_ccxt`), against the matching dialect; in
virtual time too (the guarded object reads ccxt's clock through the clock seam, and ccxt's
HTTP and websocket clients connect over the loop's in-memory network), or with ``--sockets``.

``--fleet N`` (N >= 2) runs N order runtimes as members of one fleet on one account
(:mod:`venueguard.app.chaos_fleet`): each member's invariants, and the fleet's (no client id in
two members, the account's position equal to the members' sum, one lease owner at a time, the
lease handed over when its owner loses the fleet's store, the owner's switch armed).

``--scenario NAME|PATH`` runs that simulator scenario under every seed (its market shape, and
those of its scheduled faults that fall inside the seed's few seconds) on top of the seed's
random faults.

What is checked, over which layers (see :mod:`venueguard.app.chaos_checks`): 1 against the
venue's orders (per clOrdID and per intent); 2 and 3 the order runtime's table and position
against the venue, polled after the faults end; 4 the market-data session, from a probe in front
of it and a consumer sampling its book's health; 5 the REST session's logical requests against
the venue's request counters; 6 every task of the seed, the event loop's unretrieved errors and
the process's RSS; 7 the plan drawn twice and the journal replayed through the order state
machine.

Exit status: 0 when every invariant held for every seed, 1 on any violation (each is printed
with the command that replays its seed), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

from venueguard.app.chaos_checks import Violation
from venueguard.app.chaos_fleet import FLEET_BUGS
from venueguard.app.chaos_seed import (
    CHECKS,
    CLIENT_BUGS,
    ChaosConfig,
    RestFactory,
    SeedResult,
    run_seed,
)
from venueguard.app.chaos_virtual import RssSample, iter_virtual, rss_mb
from venueguard.numbers import NumberError, read_int

__all__ = ["ChaosReport", "exit_code", "replay_command", "run", "run_chaos", "run_chaos_virtual"]

DEFAULT_CONCURRENCY = 8
#: A test-only switch: the name of a client bug (``CLIENT_BUGS``) to run the seeds with.
CLIENT_BUG_ENV = "VENUEGUARD_CHAOS_CLIENT_BUG"
RSS_GROWTH_LIMIT_MB = 64.0
_FAULT_COL = 44


@dataclass(slots=True)
class ChaosReport:
    results: list[SeedResult] = field(default_factory=list)
    general: list[Violation] = field(default_factory=list)   # not tied to one seed
    wall_s: float = 0.0
    rss_growth_mb: float | None = None
    cpu_s: float | None = None                  # CPU of the seeds (virtual time only)
    interrupted: bool = False                   # stopped (Ctrl-C, SIGTERM) before the last seed

    @property
    def failed(self) -> list[SeedResult]:
        return [r for r in self.results if not r.ok]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.general


def _row(done: int, total: int, r: SeedResult) -> str:
    faults = f"{len(r.faults)} " + ",".join(r.faults)
    if len(faults) > _FAULT_COL:
        faults = faults[:_FAULT_COL - 3] + "..."
    passed = CHECKS - len(r.failed_invariants())
    verdict = "ok" if r.ok else "FAIL " + ",".join(map(str, r.failed_invariants()))
    return (f"{done:>4}/{total:<4} {r.seed:>7}  {faults:<{_FAULT_COL}} {r.orders:>6}  "
            f"{passed}/{CHECKS}     {verdict:<10} {r.duration_s:>6.1f}  {r.digest}")


def _header() -> str:
    return (f"{'done':>9} {'seed':>7}  {'faults':<{_FAULT_COL}} {'orders':>6}  {'checks':<9} "
            f"{'verdict':<10} {'dur s':>6}  digest")


def replay_command(seed: int, scenario: str | None = None, venue: str = "sim", *,
                   sockets: bool = False, client_bug: str | None = None,
                   kinds: Sequence[str] | None = None, fleet: int = 0) -> str:
    """The one command that runs ``seed`` again as it ran."""
    extra = f" --scenario {scenario}" if scenario else ""
    extra += f" --kinds {','.join(kinds)}" if kinds else ""
    extra += f" --venue {venue}" if venue != "sim" else ""
    extra += f" --fleet {fleet}" if fleet >= 2 else ""
    extra += " --sockets" if sockets else ""
    env = f"{CLIENT_BUG_ENV}={client_bug} " if client_bug else ""
    return f"{env}venueguard chaos --first-seed {seed} --seeds 1{extra}"


async def run_chaos(seeds: Sequence[int], config: ChaosConfig | None = None, *,
                    concurrency: int = DEFAULT_CONCURRENCY, out: TextIO | None = None,
                    rest_factory: RestFactory | None = None,
                    stop_signals: Sequence[signal.Signals] = ()) -> ChaosReport:
    """Run ``seeds`` (``concurrency`` at a time), printing the table; returns the report.

    Any of ``stop_signals`` stops the run: the seeds in flight are cancelled and the ones done
    get their summary (``report.interrupted``), as in virtual time."""
    cfg = config or ChaosConfig()
    out = out if out is not None else sys.stdout
    report = ChaosReport()
    loop = asyncio.get_running_loop()
    unretrieved: list[str] = []
    previous = loop.get_exception_handler()

    def on_loop_error(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        unretrieved.append(str(context.get("exception") or context.get("message")))

    loop.set_exception_handler(on_loop_error)
    started = time.monotonic()
    warm_rss: list[float] = []
    total = len(seeds)
    print(f"venueguard chaos ({_label(cfg)}): {total} seed(s) from {seeds[0] if seeds else '-'}, "
          f"{max(1, concurrency)} at a time; window {cfg.plan.window_s:g} s, "
          f"grace {cfg.grace_s:g} s", file=out, flush=True)
    print(_header(), file=out, flush=True)

    async def one(seed: int) -> None:
        kwargs = {"rest_factory": rest_factory} if rest_factory is not None else {}
        if cfg.fleet >= 2:
            from venueguard.app.chaos_fleet import run_fleet_seed
            result = await run_fleet_seed(seed, cfg)
        elif cfg.venue == "sim":
            result = await run_seed(seed, cfg, **kwargs)
        else:
            from venueguard.app.chaos_ccxt import run_ccxt_seed
            result = await run_ccxt_seed(seed, cfg, cfg.venue)
        report.results.append(result)
        if len(report.results) == min(total, max(1, concurrency)):
            gc.collect()
            warm_rss.append(rss_mb())
        print(_row(len(report.results), total, result), file=out, flush=True)

    # ``concurrency`` workers take the seeds one by one: a task per seed up front (100,000 of
    # them waiting on a semaphore) took minutes to cancel on Ctrl-C
    pending = iter(seeds)

    stopping = False

    async def worker() -> None:
        for seed in pending:  # one shared iterator: each seed is taken once
            if stopping:  # a stop came: no new seed, even if a seed's code ate the cancel
                return
            await one(seed)

    task = asyncio.current_task()

    def stop() -> None:
        nonlocal stopping
        if not stopping and task is not None:
            stopping = True
            task.cancel()

    installed = []
    for signum in stop_signals:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop)
            installed.append(signum)
    try:
        async with asyncio.TaskGroup() as group:
            for i in range(max(1, min(concurrency, total))):
                group.create_task(worker(), name=f"chaos-worker-{i}")
    except asyncio.CancelledError:
        if not stopping or task is None:
            raise
        task.uncancel()  # our own stop, not the caller's: the seeds done get their summary
        report.interrupted = True
        print(f"interrupted after {len(report.results)} of {total} seed(s)", file=out)
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
        loop.set_exception_handler(previous)
    report.wall_s = time.monotonic() - started
    if warm_rss and total > concurrency:
        gc.collect()
        report.rss_growth_mb = rss_mb() - warm_rss[0]
        if report.rss_growth_mb > RSS_GROWTH_LIMIT_MB:
            report.general.append(Violation(6, f"resident memory grew {report.rss_growth_mb:.1f}"
                                               f" MB after the first wave (limit "
                                               f"{RSS_GROWTH_LIMIT_MB:g} MB)"))
    report.general.extend(Violation(6, f"event loop saw an unretrieved error: {text}")
                          for text in unretrieved)
    _summary(report, cfg, out, sockets=True)
    return report


def run_chaos_virtual(seeds: Sequence[int], config: ChaosConfig | None = None, *,
                      workers: int = 1, out: TextIO | None = None,
                      trace: TextIO | None = None) -> ChaosReport:
    """Run ``seeds`` in virtual time over ``workers`` processes, printing the table (rows in
    seed order, each with its digest); ``trace`` receives every seed's trace in seed order."""
    cfg = config or ChaosConfig()
    out = out if out is not None else sys.stdout
    report = ChaosReport()
    started = time.monotonic()
    total = len(seeds)
    workers = max(1, min(workers, total))
    print(f"venueguard chaos ({_label(cfg)}, virtual time): {total} seed(s) from "
          f"{seeds[0] if seeds else '-'}, {workers} worker process(es); window "
          f"{cfg.plan.window_s:g} s, grace {cfg.grace_s:g} s", file=out, flush=True)
    print(_header(), file=out, flush=True)
    baseline: dict[int, float] = {}
    latest: dict[int, float] = {}
    report.cpu_s = 0.0
    try:
        for result, sample in iter_virtual(seeds, cfg, workers=workers,
                                           keep_trace=trace is not None):
            report.results.append(result)
            report.cpu_s += result.cpu_s
            if trace is not None:
                trace.write(result.trace)
                result.trace = ""
            if isinstance(sample, RssSample):
                (baseline if sample.first else latest)[sample.pid] = sample.rss_mb
            print(_row(len(report.results), total, result), file=out, flush=True)
    except KeyboardInterrupt:           # the seeds done so far still get their summary
        report.interrupted = True
        print(f"interrupted after {len(report.results)} of {total} seed(s)", file=out)
    report.wall_s = time.monotonic() - started
    growth = [latest[pid] - baseline[pid] for pid in latest if pid in baseline]
    if growth:
        report.rss_growth_mb = max(growth)
        if report.rss_growth_mb > RSS_GROWTH_LIMIT_MB:
            report.general.append(Violation(6, f"resident memory grew {report.rss_growth_mb:.1f}"
                                               f" MB in a worker after its first seed (limit "
                                               f"{RSS_GROWTH_LIMIT_MB:g} MB)"))
    _summary(report, cfg, out, sockets=False)
    return report


def _summary(report: ChaosReport, cfg: ChaosConfig, out: TextIO, *, sockets: bool) -> None:
    n = len(report.results)
    orders = sum(r.orders for r in report.results)
    requests = sum(r.requests for r in report.results)
    logical = sum(r.logical for r in report.results)
    ratio = f"{requests / logical:.2f}" if logical else "-"
    hits: Counter[str] = Counter()
    for r in report.results:
        hits.update(r.fault_hits)
    reconnects = sum(r.reconnects for r in report.results)
    fresh = sum(r.fresh_samples for r in report.results)
    rss = "" if report.rss_growth_mb is None else f", RSS growth {report.rss_growth_mb:+.1f} MB"
    rate = f", {n * 60 / report.wall_s:.0f} seeds/min" if report.wall_s > 0 else ""
    if report.cpu_s and n:
        rate += f", CPU {report.cpu_s:.1f} s ({report.cpu_s / n * 1000:.0f} ms per seed)"
    print(f"\n{n} seed(s), {orders} orders, {requests} REST requests for {logical} logical "
          f"({ratio} per logical), {reconnects} websocket reconnects, {fresh} fresh books "
          f"checked, wall {report.wall_s:.1f} s{rate}{rss}", file=out)
    if hits:
        print("fault hits at the venue: " + ", ".join(f"{k} {v}" for k, v in sorted(hits.items())),
              file=out)
    for result in sorted(report.failed, key=lambda r: r.seed):
        command = replay_command(result.seed, cfg.scenario, cfg.venue, sockets=sockets,
                                 client_bug=cfg.client_bug, kinds=cfg.kinds, fleet=cfg.fleet)
        print(f"seed {result.seed} FAILED (faults: {', '.join(result.faults)}); replay with: "
              f"{command}", file=out)
        for violation in result.violations:
            print(f"  {violation}", file=out)
    for violation in report.general:
        print(f"run: {violation}", file=out)
    verdict = "all invariants held" if report.ok else (
        f"VIOLATIONS in {len(report.failed)} seed(s)"
        + (f" and {len(report.general)} run-wide" if report.general else ""))
    if report.interrupted:
        verdict += f" (interrupted: {n} of the seeds asked for ran)"
    print(verdict, file=out, flush=True)


def _label(cfg: ChaosConfig) -> str:
    return f"{cfg.venue}, fleet of {cfg.fleet}" if cfg.fleet >= 2 else cfg.venue


def exit_code(report: ChaosReport) -> int:
    """0 when every invariant held, 1 otherwise; 130 when interrupted with none broken."""
    if not report.ok:
        return 1
    return 130 if report.interrupted else 0


def run(args: argparse.Namespace) -> int:
    """Entry point of ``venueguard chaos`` (see the module docstring)."""
    seeds_n, first = int(args.seeds), int(args.first_seed)
    if seeds_n < 1:
        print("venueguard chaos: --seeds must be >= 1", file=sys.stderr)
        return 2
    try:
        concurrency = read_int(os.environ.get("VENUEGUARD_CHAOS_CONCURRENCY",
                                              str(DEFAULT_CONCURRENCY)), low=1, high=256)
    except NumberError as exc:
        print(f"venueguard chaos: VENUEGUARD_CHAOS_CONCURRENCY {exc}", file=sys.stderr)
        return 2
    fleet = int(getattr(args, "fleet", None) or 0)
    venue = getattr(args, "venue", None) or "sim"
    if fleet and venue != "sim":
        print("venueguard chaos: --fleet runs native members (--venue sim)", file=sys.stderr)
        return 2
    client_bug = os.environ.get(CLIENT_BUG_ENV) or None
    if client_bug is not None and venue != "sim":
        print(f"venueguard chaos: {CLIENT_BUG_ENV} breaks the native client; it does not apply "
              f"to --venue {venue}", file=sys.stderr)
        return 2
    bugs = set(CLIENT_BUGS) | (FLEET_BUGS if fleet else set())
    if client_bug is not None and client_bug not in bugs:
        print(f"venueguard chaos: {CLIENT_BUG_ENV}={client_bug!r} is none of "
              f"{', '.join(sorted(bugs))}", file=sys.stderr)
        return 2
    config = ChaosConfig(venue=venue, client_bug=client_bug, fleet=fleet)
    if config.venue != "sim":
        try:
            import ccxt  # noqa: F401
        except ImportError:
            print("venueguard chaos: --venue ccxt:... needs ccxt (pip install "
                  "'venueguard[ccxt]')", file=sys.stderr)
            return 2
    kinds_arg = getattr(args, "kinds", None)
    if kinds_arg:
        kinds = tuple(k.strip() for k in str(kinds_arg).split(",") if k.strip())
        try:
            replace(config.plan, kinds=kinds)      # validates the names
        except ValueError as exc:
            print(f"venueguard chaos: --kinds {kinds_arg!r}: {exc}", file=sys.stderr)
            return 2
        config = replace(config, kinds=kinds)
    scenario = getattr(args, "scenario", None)
    if scenario:
        from venueguard.sim.scenario import load_scenario
        try:
            load_scenario(scenario)
        except (OSError, ValueError) as exc:
            print(f"venueguard chaos: scenario {scenario!r}: {exc}", file=sys.stderr)
            return 2
        config = replace(config, scenario=scenario)
    seeds = range(first, first + seeds_n)
    if getattr(args, "sockets", False):
        report = asyncio.run(run_chaos(seeds, config, concurrency=concurrency,
                                       stop_signals=(signal.SIGINT, signal.SIGTERM)))
        return exit_code(report)
    workers = getattr(args, "workers", None) or default_workers()
    trace_path = getattr(args, "trace", None)
    try:
        trace = open(trace_path, "w", encoding="utf-8") if trace_path else None  # noqa: SIM115
    except OSError as exc:
        print(f"venueguard chaos: --trace {trace_path}: {exc}", file=sys.stderr)
        return 2
    previous = signal.signal(signal.SIGTERM, _interrupt)   # as Ctrl-C: summary, then exit
    try:
        report = run_chaos_virtual(seeds, config, workers=workers, trace=trace)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if trace is not None:
            trace.close()
    return exit_code(report)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def default_workers() -> int:
    """Worker processes for virtual-time seeds: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
