"""Chaos seeds in virtual time: each seed on a fresh virtual-time loop, seeds spread over processes.

A seed runs its whole stack (simulator, sessions, order runtime) in one
:class:`~venueguard.io.vloop.VirtualTimeLoop`, over the loop's in-memory network: no socket, no
sleeping, and a history that depends on the seed and the configuration alone. Each seed gets a
fresh loop (same virtual start, same wall epoch, ports handed out from the same first one), so a
seed replays the same whether it runs first or ten-thousandth, here or in another process.

Seeds are spread over ``workers`` processes (one process: in this one); results come back in
seed order. The event loop's unretrieved errors count against the seed that left them
(invariant 6); each worker samples its resident memory after its first seed and every
:data:`RSS_EVERY` seeds after, for the run's memory check.

Public API::

    run_seed_virtual(seed, config) -> SeedResult
    iter_virtual(seeds, config, *, workers=1, keep_trace=False)
        -> Iterator[tuple[SeedResult, RssSample | None]]      # in seed order
    RssSample(pid, first, rss_mb)
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing import resource_tracker
from typing import Any

from venueguard.app import chaos_checks as checks
from venueguard.app.chaos_seed import ChaosConfig, SeedResult, run_seed
from venueguard.io.vloop import run_virtual

__all__ = ["RSS_EVERY", "RssSample", "iter_virtual", "rss_mb", "run_seed_virtual", "seed_run"]

RSS_EVERY = 200


@dataclass(frozen=True, slots=True)
class RssSample:
    pid: int
    first: bool           # taken after the worker's first seed (the baseline)
    rss_mb: float


def rss_mb() -> float:
    """Current resident set size (MB); the peak where /proc is missing."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def run_seed_virtual(seed: int, config: ChaosConfig) -> SeedResult:
    """One seed on a fresh virtual-time loop; unretrieved loop errors are its violations."""

    async def main() -> SeedResult:
        loop = asyncio.get_running_loop()
        unretrieved: list[str] = []

        def on_loop_error(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            unretrieved.append(str(context.get("exception") or context.get("message")))

        loop.set_exception_handler(on_loop_error)
        result = await seed_run(seed, config)
        result.violations.extend(
            checks.Violation(6, f"event loop saw an unretrieved error: {text}")
            for text in unretrieved)
        return result

    return run_virtual(main())


async def seed_run(seed: int, config: ChaosConfig) -> SeedResult:
    """One seed of ``config.venue``: the native stack, a guarded ccxt bot
    (:mod:`venueguard.app.chaos_ccxt`), or a fleet of native members on one account
    (:mod:`venueguard.app.chaos_fleet`, ``config.fleet`` >= 2)."""
    if config.fleet >= 2:
        from venueguard.app.chaos_fleet import run_fleet_seed
        return await run_fleet_seed(seed, config)
    if config.venue == "sim":
        return await run_seed(seed, config)
    from venueguard.app.chaos_ccxt import run_ccxt_seed
    return await run_ccxt_seed(seed, config, config.venue)


_done_here = 0


def _work(job: tuple[int, ChaosConfig, bool]) -> tuple[SeedResult, RssSample | None]:
    global _done_here
    seed, config, keep_trace = job
    cpu0 = time.process_time()
    result = run_seed_virtual(seed, config)
    result.cpu_s = time.process_time() - cpu0
    if not keep_trace:
        result.trace = ""            # the digest is enough; traces cross the pipe on request
    _done_here += 1
    sample = None
    if _done_here == 1 or _done_here % RSS_EVERY == 0:
        gc.collect()
        sample = RssSample(os.getpid(), _done_here == 1, rss_mb())
    return result, sample


def iter_virtual(seeds: Sequence[int], config: ChaosConfig, *, workers: int = 1,
                 keep_trace: bool = False) -> Iterator[tuple[SeedResult, RssSample | None]]:
    """Run ``seeds`` in virtual time over ``workers`` processes; yield results in seed order."""
    jobs = ((seed, config, keep_trace) for seed in seeds)
    if workers <= 1 or len(seeds) <= 1:
        for job in jobs:
            yield _work(job)
        return
    # forkserver: workers fork from a clean server process that imported the stack once (a
    # plain fork could copy a lock some thread of the caller holds; spawn imports per worker)
    context: Any
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
    else:
        context = multiprocessing.get_context("spawn")
    with contextlib.ExitStack() as stack:
        with _stop_signals_held():
            pool = context.Pool(workers, initializer=_start_worker)
            stack.callback(pool.terminate)   # in place before a held signal is let through
        # one seed per message: a seed takes about a tenth of a second, its message a few
        # microseconds, and rows (and an interrupted run's summary) follow the seeds as they end
        yield from pool.imap(_work, jobs, chunksize=1)


_STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


@contextlib.contextmanager
def _stop_signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM held back (pending, not lost) while the worker pool starts.

    A stop that lands while the pool is starting would leave the parent before its workers had
    read their start-up state (each would print a traceback: the pool's semaphores gone), and a
    Ctrl-C would reach the forkserver while it imports the stack (another traceback). Held, the
    signal is acted on once the pool exists and can be terminated. The processes started
    meanwhile inherit the held mask (each worker lets SIGTERM through in :func:`_start_worker`)
    and SIGINT ignored: Ctrl-C reaches the whole process group, and the parent alone answers it
    (a blocked signal stays pending whatever its disposition, on Linux).
    """
    if not hasattr(signal, "pthread_sigmask") \
            or threading.current_thread() is not threading.main_thread():
        yield
        return
    # multiprocessing's resource tracker, started with the pool's first semaphore, unblocks
    # SIGINT and SIGTERM once it runs: started first, it leaves the held mask alone
    resource_tracker.ensure_running()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _start_worker() -> None:
    """Pool initializer: a worker leaves Ctrl-C to the parent, which terminates the pool, and
    lets SIGTERM through (held since its start; a pending one ends it now)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
