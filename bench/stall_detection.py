"""How long after the freshness threshold a silent stream is declared stale.

The simulator runs in its own process (``venueguard sim``); the market-data session connects to it
over loopback. Each round posts ``ws_stall`` (data stops, pongs are still answered, so only the
data-freshness check can see it) and measures ``ws.stale`` time - last accepted data - freshness
threshold (target <= 0.1 s); the session then reconnects and resyncs before the next round.
``bench/reconnect_resync.py`` reuses this module's helpers for the reconnect measurement.

    .venv/bin/python bench/stall_detection.py                 # 10 rounds, threshold 1 s
    .venv/bin/python bench/stall_detection.py --rounds 20 --threshold 0.5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
from typing import Any

import aiohttp

from _simproc import simulator as sim_process
from venueguard.core.backoff import BackoffConfig
from venueguard.core.liveness import DEFAULT_QUIET_CHANNELS, LivenessConfig
from venueguard.io import md_events as ev
from venueguard.io.ws_session import MarketDataSession, MdConfig

TOPIC = "orderBookL2:XBTUSD"


def simulator(rate: float) -> contextlib.AbstractAsyncContextManager[str]:
    """A calm ``venueguard sim`` at ``rate`` msgs/s in a child process; yields its base URL."""
    return sim_process("--rate", str(rate), "--scenario", "calm")


async def post_fault(base_url: str, kind: str, **params: Any) -> None:
    async with aiohttp.ClientSession() as http, http.post(
            f"{base_url}/_sim/faults", json={"kind": kind, **params}) as resp:
        resp.raise_for_status()


def session_for(base_url: str, threshold_s: float) -> MarketDataSession:
    liveness = LivenessConfig(ping_after_s=threshold_s, pong_timeout_s=5.0,
                              max_data_age_s=threshold_s,
                              quiet_channels=DEFAULT_QUIET_CHANNELS | {"trade", "quote"})
    ws_url = base_url.replace("http://", "ws://", 1) + "/realtime"
    return MarketDataSession(MdConfig(url=ws_url, topics=(TOPIC,), liveness=liveness,
                                      backoff=BackoffConfig(base_s=0.01, cap_s=0.05)))


async def next_event(stream: Any, kind: type, timeout_s: float = 10.0) -> Any:
    async with asyncio.timeout(timeout_s):
        async for event in stream:
            if isinstance(event, kind):
                return event
    raise RuntimeError(f"session ended before {kind.__name__}")


async def measure_stalls(base_url: str, rounds: int, threshold_s: float) -> list[float]:
    late: list[float] = []
    session = session_for(base_url, threshold_s)
    async with session:
        for _ in range(rounds):
            await session.wait_synced(10.0)
            await asyncio.sleep(0.3)
            stream = session.events()
            await post_fault(base_url, "ws_stall")
            stale = await next_event(stream, ev.Stale)
            last_data = session.state.last_data_now
            assert stale.reason == "data_age" and last_data is not None
            late.append(stale.at - last_data - threshold_s)
            await next_event(stream, ev.BookResynced)
            stream.close()
    return late


async def measure_reconnects(base_url: str, rounds: int) -> tuple[list[float], list[float]]:
    from_connect: list[float] = []
    from_drop: list[float] = []
    session = session_for(base_url, 5.0)
    async with session:
        for _ in range(rounds):
            await session.wait_synced(10.0)
            await asyncio.sleep(0.3)
            stream = session.events()
            await post_fault(base_url, "ws_drop")
            dropped = await next_event(stream, ev.Disconnected)
            again = await next_event(stream, ev.Reconnecting)
            synced = await next_event(stream, ev.BookResynced)
            from_connect.append(synced.at - (again.at + again.delay_s))
            from_drop.append(synced.at - dropped.at)
            stream.close()
    return from_connect, from_drop


def summary(values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    return (f"median {statistics.median(ms):7.1f} ms   max {ms[-1]:7.1f} ms   "
            f"min {ms[0]:7.1f} ms   (n={len(ms)})")


async def main_async(args: argparse.Namespace) -> None:
    async with simulator(args.rate) as base_url:
        late = await measure_stalls(base_url, args.rounds, args.threshold)
    print(f"simulator at {args.rate:g} msgs/s per symbol, freshness threshold {args.threshold:g} s")
    print(f"  stall detected past the threshold:  {summary(late)}   target <= 100 ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threshold", type=float, default=1.0, help="freshness threshold, s")
    parser.add_argument("--rate", type=float, default=200.0, help="simulator msgs/s per symbol")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
