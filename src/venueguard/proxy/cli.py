"""``venueguard proxy``: run the proxy until SIGINT or SIGTERM.

The first line on stdout, flushed, is ``listening on http://HOST:PORT`` (as ``venueguard sim``).
Configuration errors (a malformed upstream URL, an unknown scenario) are reported on stderr with
exit status 2.

The proxy runs on uvloop where it is installed (a dependency on Linux and macOS): its event loop
and socket writes are most of what a forwarded request costs (docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Coroutine
from typing import Any

from venueguard.proxy.server import ProxyConfig, ProxyServer
from venueguard.sim.scenario import ScenarioError, load_scenario
from venueguard.telemetry.events import EventLog

#: Where a guarding proxy journals unless told otherwise (the monitor's is ./venueguard.db).
DEFAULT_JOURNAL = "venueguard-proxy.db"


def config_from_args(args: argparse.Namespace) -> ProxyConfig:
    """Build the configuration; raises ValueError (or ScenarioError) with a readable message."""
    if not args.upstream:
        raise ValueError("--upstream URL is required (the venue's REST origin)")
    if args.no_journal and args.journal:
        raise ValueError("--journal and --no-journal contradict each other")
    journal = None if args.no_journal else (
        args.journal or (DEFAULT_JOURNAL if args.guard else None))
    return ProxyConfig(
        upstream=args.upstream, ws_upstream=args.ws_upstream, dialect=args.dialect,
        host=args.host, port=args.port,
        scenario=load_scenario(args.scenario) if args.scenario else None, seed=args.seed,
        guard=args.guard, ws_silence_s=args.ws_silence_s, redis_url=args.redis,
        dashboard_port=args.dashboard_port, journal=journal)


async def serve(config: ProxyConfig, events: EventLog) -> None:
    proxy = ProxyServer(config, events=events)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    url = await proxy.start()
    if config.host not in ("127.0.0.1", "::1", "localhost"):
        print(f"venueguard proxy: listening on {config.host}, beyond loopback: anyone who can "
              "reach it can trade with the keys the bots send and can post faults",
              file=sys.stderr, flush=True)
    try:
        print(f"listening on {url}", flush=True)
        scenario = proxy.scenario_runner.scenario.name if proxy.scenario_runner else "none"
        print(f"upstream {proxy.upstream_base}  ws {proxy.ws_upstream_base}  dialect "
              f"{config.dialect}  control {url}/_sim/faults  scenario {scenario}"
              + (f"  metrics {url}/metrics" if config.guard else "")
              + (f"  dashboard {proxy.guard.dashboard.url}" if proxy.guard.dashboard else "")
              + (f"  journal {proxy.guard.journal.path}" if proxy.guard.journal else ""),
              flush=True)
        await stop.wait()
    finally:
        await proxy.stop()


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(args)
        events = EventLog(sys.stdout, fmt=args.log_format)
        _run(serve(config, events))
    except (ValueError, ScenarioError) as exc:
        print(f"venueguard proxy: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"venueguard proxy: cannot listen: {exc}", file=sys.stderr)
        return 1
    return 0


def _run(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop when it is installed, else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)
