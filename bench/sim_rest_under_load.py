"""Simulator REST latency while it fans out market data to websocket subscribers.

A simulator runs in a child process at ``--rate`` market messages per second. Another child
process opens ``--subscribers`` websocket connections (``orderBookL2``, ``trade`` and ``quote``
of XBTUSD) and reads everything as fast as it can. Meanwhile this process sends one
``GET /api/v1/instrument`` every ``--interval-ms`` and records each response time. Printed per
simulator variant: REST p50 / p99 / max, the messages the subscribers received per second, and
the fan-out efficiency: messages delivered per CPU-second of the simulator process (its user +
system time from ``/proc``, so Linux only).

Variants, measured in the same run:
- ``current``: the simulator of this checkout;
- ``baseline``: with ``--baseline-ref REF`` (a git commit or branch of this repository), the
  simulator's sources at REF, extracted with ``git archive`` into a temporary directory;
- ``idle``: this checkout with no subscriber, for the floor of REST latency on this machine;
- ``--variant NAME=SRC_DIR`` (repeatable): any other source tree (a directory holding the
  ``venueguard`` package), e.g. an experiment.

    .venv/bin/python bench/sim_rest_under_load.py [--rate 2000] [--subscribers 20]
        [--seconds 20] [--baseline-ref main] [--dialect bitmex|binance-usdm]

``--dialect binance-usdm`` measures the Binance dialect instead: subscribers on the combined
stream ``/stream?streams=btcusdt@depth@100ms/btcusdt@aggTrade/btcusdt@bookTicker`` and
``GET /fapi/v1/time`` as the probe (every 50 ms: within the request-weight limit).

The target: p99 <= 50 ms with 20 subscribers at full rate. The machine is shared: read the
ratios between variants, which come from one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOPICS = ("orderBookL2:XBTUSD", "trade:XBTUSD", "quote:XBTUSD")

_SERVE = """
import asyncio, sys
from venueguard.sim.cli import serve
from venueguard.sim.server import SimConfig

extra = {} if sys.argv[2] == "bitmex" else {"dialect": sys.argv[2], "symbols": ("BTCUSDT",)}
asyncio.run(serve(SimConfig(seed=7, rate_msgs_s=float(sys.argv[1]), scenario=None,
                            rest_per_min=1_000_000, rest_unauth_per_min=1_000_000,
                            ws_opens_per_hour=100_000, **extra)))
"""
BINANCE_STREAMS = "btcusdt@depth@100ms/btcusdt@aggTrade/btcusdt@bookTicker"


# ------------------------------------------------------------------ subscriber child process
async def _subscribe(url: str, count: int, dialect: str) -> None:
    import aiohttp

    received = [0] * count
    ready = asyncio.Event()
    subscribed = 0

    async def one(index: int, session: aiohttp.ClientSession) -> None:
        nonlocal subscribed
        if dialect == "bitmex":
            target = f"{url}/realtime?" + "&".join(f"subscribe={t}" for t in TOPICS)
        else:
            target = f"{url}/stream?streams={BINANCE_STREAMS}"
        async with session.ws_connect(target, compress=0, max_msg_size=0) as ws:
            subscribed += 1
            if subscribed == count:
                ready.set()
            async for msg in ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    break
                received[index] += 1

    async with aiohttp.ClientSession() as session, asyncio.TaskGroup() as group:
        for i in range(count):
            group.create_task(one(i, session))
        await ready.wait()
        print("ready", flush=True)
        while True:
            await asyncio.sleep(0.25)
            print(f"{time.monotonic():.3f} {sum(received)}", flush=True)


# ------------------------------------------------------------------------------- measuring
@dataclass
class Result:
    name: str
    latencies_ms: list[float]
    errors: int
    delivered_per_s: float
    server_cpu_s: float
    delivered: int

    def row(self) -> str:
        lat = sorted(self.latencies_ms)
        p50 = statistics.median(lat) if lat else float("nan")
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan")
        top = lat[-1] if lat else float("nan")
        per_cpu = self.delivered / self.server_cpu_s if self.server_cpu_s > 0 else 0.0
        return (f"{self.name:<10} {len(lat):>6} {self.errors:>4} {p50:>8.1f} {p99:>8.1f} "
                f"{top:>8.1f} {self.delivered_per_s:>10.0f} {self.server_cpu_s:>7.2f} "
                f"{per_cpu:>10.0f}")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.asynccontextmanager
async def _child(args: list[str], env: dict[str, str] | None = None
                 ) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(*args, stdout=subprocess.PIPE,
                                                stderr=subprocess.DEVNULL, env=env)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()


async def measure(name: str, src: Path, args: argparse.Namespace, subscribers: int) -> Result:
    env = {**os.environ, "PYTHONPATH": str(src)}
    async with _child([sys.executable, "-c", _SERVE, str(args.rate), args.dialect],
                      env) as server:
        assert server.stdout is not None
        line = (await asyncio.wait_for(server.stdout.readline(), 60)).decode().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"{name}: simulator did not start: {line!r}")
        base = line.removeprefix("listening on ")
        latest = [0.0, 0]
        sub_cm = (_child([sys.executable, __file__, "--subscribe-child", base.replace(
            "http://", "ws://", 1), "--subscribers", str(subscribers),
            "--dialect", args.dialect])
            if subscribers else None)
        async with contextlib.AsyncExitStack() as stack:
            reader: asyncio.Task[None] | None = None
            if sub_cm is not None:
                sub = await stack.enter_async_context(sub_cm)
                assert sub.stdout is not None
                out = sub.stdout
                first = (await asyncio.wait_for(out.readline(), 60)).decode().strip()
                if first != "ready":
                    raise RuntimeError(f"{name}: subscribers did not start: {first!r}")

                async def follow() -> None:
                    while line := await out.readline():
                        stamp, total = line.decode().split()
                        latest[:] = [float(stamp), int(total)]

                reader = asyncio.create_task(follow())
            await asyncio.sleep(args.warmup)
            result = await _rest_loop(name, base, args, server.pid, latest)
            if reader is not None:
                reader.cancel()
            return result


async def _rest_loop(name: str, base: str, args: argparse.Namespace, pid: int,
                     latest: list[float | int]) -> Result:
    import aiohttp

    url = (f"{base}/api/v1/instrument?symbol=XBTUSD" if args.dialect == "bitmex"
           else f"{base}/fapi/v1/time")
    latencies: list[float] = []
    errors = 0
    stamp0, count0 = float(latest[0]), int(latest[1])
    cpu0 = _cpu_s(pid)
    interval_s = args.interval_ms / 1000
    async with aiohttp.ClientSession() as session:
        end = time.perf_counter() + args.seconds
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            try:
                async with session.get(url) as resp:
                    await resp.read()
                    ok = resp.status == 200
            except aiohttp.ClientError:
                ok = False
            elapsed = time.perf_counter() - t0
            if ok:
                latencies.append(elapsed * 1000)
            else:
                errors += 1
            await asyncio.sleep(max(0.0, interval_s - elapsed))
    await asyncio.sleep(0.3)  # one more report from the subscribers
    cpu = _cpu_s(pid) - cpu0
    stamp1, count1 = float(latest[0]), int(latest[1])
    delivered = count1 - count0
    rate = delivered / (stamp1 - stamp0) if stamp1 > stamp0 else 0.0
    return Result(name, latencies, errors, rate, cpu, delivered)


def _extract(ref: str, into: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "src"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


async def main(args: argparse.Namespace) -> None:
    variants: list[tuple[str, Path, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.baseline_ref:
            variants.append(("baseline", _extract(args.baseline_ref, Path(tmp)),
                             args.subscribers))
        for spec in args.variant:
            name, _, path = spec.partition("=")
            variants.append((name, Path(path), args.subscribers))
        variants.append(("current", REPO / "src", args.subscribers))
        variants.append(("idle", REPO / "src", 0))
        streams = ", ".join(TOPICS) if args.dialect == "bitmex" else BINANCE_STREAMS
        probe = "GET /instrument" if args.dialect == "bitmex" else "GET /fapi/v1/time"
        print(f"{args.dialect}: market rate {args.rate:g} msgs/s, {args.subscribers} subscribers "
              f"({streams}), one {probe} every {args.interval_ms:g} ms for "
              f"{args.seconds:g} s" + (f"; baseline = {args.baseline_ref}"
                                       if args.baseline_ref else ""))
        print(f"{'variant':<10} {'reqs':>6} {'errs':>4} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'max ms':>8} {'msgs/s':>10} {'sim cpu':>7} {'msgs/cpu-s':>10}")
        results = []
        for name, src, subs in variants:
            result = await measure(name, src, args, subs)
            results.append(result)
            print(result.row(), flush=True)
    by_name = {r.name: r for r in results}
    cur = by_name["current"]
    if "baseline" in by_name:
        base = by_name["baseline"]
        p99 = sorted(cur.latencies_ms)[int(len(cur.latencies_ms) * 0.99)]
        p99_base = sorted(base.latencies_ms)[int(len(base.latencies_ms) * 0.99)]
        eff = (cur.delivered / cur.server_cpu_s) / max(1e-9, base.delivered / base.server_cpu_s)
        print(f"current vs baseline: REST p99 {p99_base / max(p99, 1e-9):.1f}x lower; "
              f"fan-out msgs per simulator CPU-second {eff:.2f}x")
    print(json.dumps({r.name: {"p50_ms": statistics.median(r.latencies_ms),
                               "msgs_per_s": round(r.delivered_per_s)} for r in results}))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=2000.0, help="market messages per second")
    parser.add_argument("--subscribers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--interval-ms", type=float, default=None,
                        help="between REST probes (default 20 ms; 50 ms for binance-usdm)")
    parser.add_argument("--dialect", choices=("bitmex", "binance-usdm"), default="bitmex")
    parser.add_argument("--baseline-ref", default=None,
                        help="also measure the simulator of this git ref")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=SRC_DIR",
                        help="also measure the simulator of another source tree")
    parser.add_argument("--subscribe-child", metavar="WS_BASE", help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    ARGS = parse_args()
    if ARGS.subscribe_child:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_subscribe(ARGS.subscribe_child, ARGS.subscribers, ARGS.dialect))
    else:
        if ARGS.interval_ms is None:
            ARGS.interval_ms = 20.0 if ARGS.dialect == "bitmex" else 50.0
        asyncio.run(main(ARGS))
