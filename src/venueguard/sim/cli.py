"""``venueguard sim``: run the simulator alone until SIGINT or SIGTERM.

The first line on stdout, flushed, is ``listening on http://HOST:PORT`` (tools and tests read the
port from it). REST is under ``/api/v1``, the websocket at ``/realtime``, the control API under
``/_sim``. Configuration errors (unknown scenario or symbol, malformed scenario or recording) are
reported on stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import math
import signal
import sys

from venueguard.cli import MAX_REPLAY_SPEED, MAX_REST_LIMIT, MAX_SIM_RATE
from venueguard.sim.binance import signing as binance_signing
from venueguard.sim.replayer import ReplayError
from venueguard.sim.scenario import ScenarioError, load_scenario
from venueguard.sim.server import SimConfig, SimServer
from venueguard.venues.bitmex import signing


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """Build the configuration; raises ValueError (or ScenarioError) with a readable message."""
    dialect = getattr(args, "dialect", "bitmex")
    binance = dialect == "binance-usdm"
    raw_symbols = args.symbols if args.symbols is not None else (
        "BTCUSDT" if binance else "XBTUSD")
    symbols = tuple(s.strip().upper() for s in str(raw_symbols).split(",") if s.strip())
    if not symbols:
        raise ValueError("--symbols needs at least one symbol")
    rate = float(args.rate)
    if not (math.isfinite(rate) and 0 < rate <= MAX_SIM_RATE):  # NaN fails every comparison
        raise ValueError(f"--rate must be a number greater than 0 and at most "
                         f"{MAX_SIM_RATE:.0f}, not {args.rate}")
    speed = float(args.replay_speed)
    if not (math.isfinite(speed) and 0 <= speed <= MAX_REPLAY_SPEED):
        raise ValueError(f"--replay-speed must be a number from 0 to {MAX_REPLAY_SPEED:.0f}, "
                         f"not {args.replay_speed}")
    if (args.api_key is None) != (args.api_secret is None):
        raise ValueError("--api-key and --api-secret go together")
    rest_limit = getattr(args, "rest_limit", None)
    if rest_limit is not None and not 1 <= rest_limit <= MAX_REST_LIMIT:
        raise ValueError(f"--rest-limit must be a whole number from 1 to {MAX_REST_LIMIT}, "
                         f"not {rest_limit}")
    extra = {} if rest_limit is None else {"rest_per_min": rest_limit}
    return SimConfig(
        **extra,
        host=args.host, port=args.port, seed=args.seed, symbols=symbols,
        rate_msgs_s=args.rate, book_format=args.book_format,
        scenario=load_scenario(args.scenario) if args.scenario else None,
        replay_path=args.replay, replay_speed=args.replay_speed,
        api_key=args.api_key or (binance_signing.TEST_API_KEY if binance
                                 else signing.TEST_API_KEY),
        api_secret=args.api_secret or (binance_signing.TEST_API_SECRET if binance
                                       else signing.TEST_API_SECRET),
        dialect=dialect,
    )


async def serve(config: SimConfig) -> None:
    server = SimServer(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    url = await server.start()
    # Everything alive now (modules, functions, the engine's start state) lives as long as the
    # process: leave it out of the collector's full passes, which otherwise stall the event loop
    # for tens of milliseconds at a time (docs/performance.md).
    gc.collect()
    gc.freeze()
    try:
        print(f"listening on {url}", flush=True)
        scenario = server.scenario_runner.scenario.name if server.scenario_runner else "none"
        print(f"REST {url}/api/v1  WS {server.ws_url}  control {url}/_sim  "
              f"scenario {scenario}  seed {config.seed}", flush=True)
        if server.binance is not None:
            ws_url = url.replace("http://", "ws://", 1)
            print(f"binance-usdm REST {url}/fapi  WS {ws_url}/ws  {ws_url}/stream",
                  flush=True)
        await stop.wait()
    finally:
        await server.stop()


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(args)
        asyncio.run(serve(config))
    except (ValueError, KeyError, ScenarioError, ReplayError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"venueguard sim: {message}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"venueguard sim: cannot listen: {exc}", file=sys.stderr)
        return 1
    return 0
