"""Simulator fan-out in both dialects: messages delivered per server CPU-second.

One ``venueguard sim`` process per dialect, same seed, same instrument (BTCUSDT), same market
rate; N websocket subscribers each take the instrument's book, trade and quote streams:
- BitMEX: ``/realtime`` with ``orderBookL2:BTCUSDT``, ``trade:BTCUSDT``, ``quote:BTCUSDT``;
- Binance USDⓈ-M: ``/stream?streams=btcusdt@depth@100ms/btcusdt@aggTrade/btcusdt@bookTicker``.
The server's CPU time is read from ``/proc/PID/stat`` over the measured window; the figures are
messages (and bytes, and book level changes) delivered to all subscribers per server CPU-second,
and per fan-out CPU-second: the server's CPU minus what it spends over an equal window with no
subscriber (the market process alone).
Binance batches book changes into one depth event per 100 ms, so it sends fewer, larger messages
for the same market; the level changes per CPU-second compare the work done for the same book.

    .venv/bin/python bench/sim_fanout_dialects.py [--subscribers 10] [--seconds 5] [--rate 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass

import aiohttp
import orjson

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


@dataclass
class Count:
    msgs: int = 0
    bytes: int = 0
    levels: int = 0


def levels_of(frame: dict[str, object]) -> int:
    data = frame.get("data", frame)
    if isinstance(data, list):  # BitMEX: rows
        return len(data) if frame.get("table") == "orderBookL2" else 0
    if isinstance(data, dict) and data.get("e") == "depthUpdate":
        b, a = data.get("b"), data.get("a")
        return (len(b) if isinstance(b, list) else 0) + (len(a) if isinstance(a, list) else 0)
    return 0


async def subscriber(url: str, subscribe: str | None, count: Count, stop: asyncio.Event,
                     measuring: asyncio.Event) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(
            url, max_msg_size=0) as ws:
        if subscribe is not None:
            await ws.send_str(subscribe)
        while not stop.is_set():
            try:
                msg = await ws.receive(timeout=0.5)
            except TimeoutError:
                continue
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            if measuring.is_set():
                count.msgs += 1
                count.bytes += len(msg.data)
                count.levels += levels_of(orjson.loads(msg.data))


async def run_dialect(dialect: str, n: int, seconds: float,
                      rate: float) -> tuple[Count, float, float]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "venueguard", "sim", "--port", "0", "--dialect", dialect,
        "--symbols", "BTCUSDT", "--rate", str(rate), "--scenario", "calm", "--seed", "7",
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().strip()
        base = line.removeprefix("listening on ").replace("http://", "ws://", 1)
        if dialect == "bitmex":
            url, sub = f"{base}/realtime", orjson.dumps({"op": "subscribe", "args": [
                "orderBookL2:BTCUSDT", "trade:BTCUSDT", "quote:BTCUSDT"]}).decode()
        else:
            url, sub = (f"{base}/stream?streams=btcusdt@depth@100ms/btcusdt@aggTrade/"
                        "btcusdt@bookTicker", None)
        await asyncio.sleep(1.0)
        idle0 = cpu_s(proc.pid)
        await asyncio.sleep(seconds)  # the market alone: the engine's share of the CPU
        idle = cpu_s(proc.pid) - idle0
        count, stop, measuring = Count(), asyncio.Event(), asyncio.Event()
        tasks = [asyncio.create_task(subscriber(url, sub, count, stop, measuring))
                 for _ in range(n)]
        await asyncio.sleep(1.5)  # connected, partials sent
        cpu0, wall0 = cpu_s(proc.pid), time.perf_counter()
        measuring.set()
        await asyncio.sleep(seconds)
        measuring.clear()
        server_cpu = cpu_s(proc.pid) - cpu0
        wall = time.perf_counter() - wall0
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        idle *= wall / seconds
        print(f"  {dialect:13} wall {wall:.1f} s, server CPU {server_cpu:.2f} s "
              f"({server_cpu / wall:.0%} of a core; {idle:.2f} s of it without subscribers)")
        return count, server_cpu, max(1e-6, server_cpu - idle)
    finally:
        proc.terminate()
        await proc.wait()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=2000.0, help="market events/s")
    args = parser.parse_args()
    print(f"{args.subscribers} subscribers, {args.seconds:g} s, market rate {args.rate:g}/s")
    results = {}
    for dialect in ("bitmex", "binance-usdm"):
        results[dialect] = await run_dialect(dialect, args.subscribers, args.seconds, args.rate)
    print(f"{'dialect':14} {'msgs/CPU-s':>11} {'fan-out msgs/CPU-s':>19} {'MB/CPU-s':>9} "
          f"{'levels/CPU-s':>13} {'msgs':>9} {'avg bytes':>10}")
    for dialect, (count, cpu, fan) in results.items():
        cpu = max(cpu, 1e-6)
        print(f"{dialect:14} {count.msgs / cpu:>11,.0f} {count.msgs / fan:>19,.0f} "
              f"{count.bytes / cpu / 1e6:>9.2f} {count.levels / cpu:>13,.0f} {count.msgs:>9,} "
              f"{count.bytes / max(1, count.msgs):>10.0f}")
    (bm, bm_cpu, bm_fan), (bn, bn_cpu, bn_fan) = results["bitmex"], results["binance-usdm"]
    print(f"binance-usdm / bitmex: msgs per server CPU-s "
          f"{bn.msgs / bn_cpu / (bm.msgs / bm_cpu):.2f}x, per fan-out CPU-s "
          f"{bn.msgs / bn_fan / (bm.msgs / bm_fan):.2f}x, level changes per server CPU-s "
          f"{bn.levels / bn_cpu / max(1e-9, bm.levels / bm_cpu):.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
