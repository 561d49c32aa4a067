"""Fleet on Redis: latency added per request, and fleet throughput against the venue's limit.

Starts its own redis-server (loopback, free port, no persistence) and prints:

1. the latency one request pays for its shared rate-limit slot (one Lua script, one round trip)
   with Redis on loopback: p50 / p99 over many calls, next to the in-process backend measured in
   the same run (target: p99 <= 1 ms);
2. fleet throughput: 8 members (each its own connection) sending as fast as the shared bucket
   lets them at a venue whose per-key bucket (the simulator's TokenBucket, the same refill rule)
   allows LIMIT a minute; accepted requests as a fraction of what the venue's limit allows over
   the run (target >= 95%), and the venue's refusals (429s);
3. useful order throughput under a shared limit: ``--demo-bots`` ``venueguard monitor --trade
   demo`` processes on one key against ``sim --rest-limit 60`` for ``--demo-seconds`` (see
   bench/fleet_demo.py): orders placed, 429s, and how many of the limit's requests carry
   orders (place, cancel, amend) rather than reads (target: >= 20 orders in 60 s, <= one 429).

    .venv/bin/python bench/fleet_redis.py [--calls 5000] [--limit 600] [--seconds 20]
                                          [--demo-bots 4] [--demo-seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from venueguard.fleet import Fleet, FleetConfig, MemoryBackend
from venueguard.fleet.testing import RedisServer
from venueguard.sim.ratelimit import TokenBucket
from venueguard.telemetry.events import EventLog


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def latency(fleet: Fleet, calls: int) -> list[float]:
    out = []
    for _ in range(calls):
        start = time.perf_counter()
        wait = await fleet.reserve(order_route=False, first=True, max_wait_s=60.0)
        out.append(time.perf_counter() - start)
        assert wait is not None
    return out


async def throughput(url: str, limit: int, seconds: float, members: int) -> tuple[int, int]:
    venue = TokenBucket.full(limit, limit / 60.0, time.monotonic())
    # the venue's bucket is spent when the fleet starts (the conservative case)
    venue.tokens = 0.0
    fleets = [Fleet(FleetConfig(redis_url=url, rest_limit=limit, slow_ms=200.0),
                    api_key="bench", events=EventLog()) for _ in range(members)]
    for fleet in fleets:
        await fleet.start()
    accepted = refused = 0
    end = time.monotonic() + seconds

    async def member(fleet: Fleet) -> None:
        nonlocal accepted, refused
        while time.monotonic() < end:
            wait = await fleet.reserve(order_route=False, first=True,
                                       max_wait_s=end - time.monotonic())
            if wait is None:
                return
            await asyncio.sleep(wait)
            await asyncio.sleep(0.0005)            # loopback to the venue
            if venue.take(time.monotonic()):
                accepted += 1
            else:
                refused += 1

    await asyncio.gather(*(member(f) for f in fleets))
    for fleet in fleets:
        await fleet.aclose()
    return accepted, refused


async def main(args: argparse.Namespace) -> None:
    server = RedisServer.start()
    try:
        shared = Fleet(FleetConfig(redis_url=server.url, rest_limit=10_000_000,
                                   slow_ms=1000.0), api_key="bench", events=EventLog())
        await shared.start()
        local = Fleet(FleetConfig(rest_limit=10_000_000), api_key="bench", events=EventLog(),
                      backend=MemoryBackend())
        await local.start()
        await latency(shared, 200)                                 # warm up
        redis_lat = await latency(shared, args.calls)
        memory_lat = await latency(local, args.calls)
        await shared.aclose()
        await local.aclose()
        print(f"latency added per request, {args.calls} calls:")
        for name, lat in (("redis (loopback)", redis_lat), ("in-process", memory_lat)):
            print(f"  {name:18s} p50 {pct(lat, 0.5) * 1e3:7.3f} ms   "
                  f"p99 {pct(lat, 0.99) * 1e3:7.3f} ms   mean "
                  f"{statistics.fmean(lat) * 1e3:7.3f} ms")
        print(f"  redis p99 / in-process p99: "
              f"{pct(redis_lat, 0.99) / max(pct(memory_lat, 0.99), 1e-9):.0f}x   "
              f"(target p99 <= 1 ms: {'met' if pct(redis_lat, 0.99) <= 0.001 else 'NOT met'})")
        accepted, refused = await throughput(server.url, args.limit, args.seconds,
                                             args.members)
        allowed = args.limit / 60.0 * args.seconds
        print(f"fleet throughput: {args.members} members, venue limit {args.limit}/min, "
              f"{args.seconds:g} s from a spent bucket: {accepted} accepted of {allowed:.0f} "
              f"allowed = {accepted / allowed:.1%} (target >= 95%), {refused} refused (429)")
    finally:
        server.stop()
    if args.demo_bots > 0:
        from fleet_demo import run  # bench/ is the script's own folder

        demo = run(args.demo_bots, args.demo_seconds, 60, outage=False, redis=True)
        print(f"useful order throughput: {args.demo_bots} demo bots, limit 60/min, "
              f"{args.demo_seconds:g} s: {demo['orders_placed']} orders placed, "
              f"{demo['requests']} requests, {demo['useful_share']:.0%} of them order writes, "
              f"{demo['429']} x 429 (target >= 20 orders in 60 s, <= 1 x 429)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--limit", type=int, default=600)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--demo-bots", type=int, default=4, help="0: skip")
    parser.add_argument("--demo-seconds", type=float, default=60.0)
    asyncio.run(main(parser.parse_args()))
