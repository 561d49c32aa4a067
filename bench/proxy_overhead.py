"""What does ``venueguard proxy`` cost a bot? Added REST latency and websocket throughput,
through the proxy against direct, measured in the same run.

- REST: ``venueguard sim`` in a child process, ``venueguard proxy`` in front of it in another;
  the client alternates one request direct and one through the proxy (``GET /api/v1/instrument``,
  keep-alive), so drift hits both alike; prints p50/p90/p99 of each, the added p50, and the
  proxy process's CPU time per forwarded request (what the proxy itself costs, whatever the
  machine's load does to the wall-clock figures).
- Websocket: a minimal server in a child process writes pre-framed BitMEX book updates as fast as
  the reader takes them (``bench/ws_libs.py``'s server); a picows client (the fastest reader
  measured there, so the client is not the limit) counts messages direct and through a proxy
  (``--dialect generic``, no faults). Prints messages per wall second for each and messages per
  CPU second of the proxy process (what one core of the proxy forwards).

    .venv/bin/python bench/proxy_overhead.py
    .venv/bin/python bench/proxy_overhead.py --requests 4000 --messages 500000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import aiohttp

from _simproc import simulator
from ws_libs import _server_main, read_picows

_TICKS = os.sysconf("SC_CLK_TCK")


@contextlib.asynccontextmanager
async def proxy_process(upstream: str, *args: str) -> AsyncIterator[tuple[str, int]]:
    """``venueguard proxy --upstream UPSTREAM ARGS``; yields (base URL, pid)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "venueguard", "proxy", "--upstream", upstream, *args,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"proxy did not start: {line!r}")
        yield line.removeprefix("listening on "), proc.pid
    finally:
        proc.terminate()
        await proc.wait()


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def rest(requests: int) -> None:
    async with simulator("--rate", "5") as sim, proxy_process(sim) as (proxy, pid):
        path = "/api/v1/instrument?symbol=XBTUSD"
        timings: dict[str, list[float]] = {"direct": [], "proxy": []}
        async with aiohttp.ClientSession() as session:
            for base in (sim, proxy):  # warm both connections
                for _ in range(50):
                    async with session.get(base + path) as resp:
                        await resp.read()
            cpu0 = cpu_s(pid)
            for _ in range(requests):
                for name, base in (("direct", sim), ("proxy", proxy)):
                    start = time.perf_counter()
                    async with session.get(base + path) as resp:
                        await resp.read()
                    timings[name].append((time.perf_counter() - start) * 1000)
            proxy_cpu_ms = (cpu_s(pid) - cpu0) * 1000 / requests
        print(f"REST GET /api/v1/instrument, {requests} requests each, keep-alive (ms)")
        for name, values in timings.items():
            print(f"  {name:7s} p50 {_pct(values, 0.5):.3f}  p90 {_pct(values, 0.9):.3f}  "
                  f"p99 {_pct(values, 0.99):.3f}")
        added = statistics.median(timings["proxy"]) - statistics.median(timings["direct"])
        print(f"  added by the proxy: p50 {added:.3f} ms (target <= 0.3 ms)")
        print(f"  proxy process CPU per forwarded request: {proxy_cpu_ms:.3f} ms "
              f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


async def websocket(messages: int, rounds: int) -> None:
    ctx = multiprocessing.get_context("spawn")
    print(f"websocket, {messages} book updates per round, {rounds} rounds, picows reader")
    results: dict[str, list[float]] = {"direct": [], "proxy": []}
    proxy_rates: list[float] = []
    for _ in range(rounds):
        for name in ("direct", "proxy"):
            parent, child = ctx.Pipe()
            server = ctx.Process(target=_server_main, args=(child, messages), daemon=True)
            server.start()
            try:
                port = parent.recv()
                upstream = f"http://127.0.0.1:{port}"
                if name == "direct":
                    start = time.perf_counter()
                    count = await read_picows(f"ws://127.0.0.1:{port}/realtime", False, 0.0)
                    results[name].append(count / (time.perf_counter() - start))
                    continue
                async with proxy_process(upstream, "--dialect", "generic") as (proxy, pid):
                    cpu0 = cpu_s(pid)
                    start = time.perf_counter()
                    url = proxy.replace("http://", "ws://", 1) + "/realtime"
                    count = await read_picows(url, False, 0.0)
                    results[name].append(count / (time.perf_counter() - start))
                    proxy_rates.append(count / max(cpu_s(pid) - cpu0, 1e-9))
            finally:
                server.terminate()
                server.join()
    for name, rates in results.items():
        print(f"  {name:7s} {statistics.median(rates):>10,.0f} msgs/s wall (median)")
    print(f"  proxy process: {statistics.median(proxy_rates):,.0f} msgs per CPU second "
          "(one core; target >= 100,000)")
    ratio = statistics.median(results["proxy"]) / statistics.median(results["direct"])
    print(f"  through the proxy / direct: {ratio:.2f}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    await rest(args.requests)
    await websocket(args.messages, args.rounds)


if __name__ == "__main__":
    asyncio.run(main())
