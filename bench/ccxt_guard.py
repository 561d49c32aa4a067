"""What guarding a ccxt exchange costs and what it catches (ccxt 4.5.78's bitmex class).

Three measurements, each against the same peer in the same run:

1. **CPU per book message**: a ``venueguard sim`` process streams ``orderBookL2`` at ``--rate``
   msgs/s; bare ccxt and guarded ccxt each read it through ``watch_order_book`` for
   ``--seconds`` on a fresh connection (shorter than ccxt's read stall), rounds alternating.
   Client CPU-seconds (``time.process_time``) per websocket message ccxt handled in that
   window (counted by the same wrapper in both); the figure is the median over rounds of
   guarded / bare - 1.
2. **Time added per REST call**: ``fetch_ticker`` of ccxt's real class, its HTTP exchange
   replaced by a canned answer (so the network is not in the figure); bare and guarded calls
   interleaved; p50 and p90 of each, and the difference of the p50s.
3. **Stall detection**: ``ws_stall`` posted to the simulator (data stops, pongs continue).
   The guarded stream's ``ws.stale`` time minus the last delivered book minus its threshold;
   bare ccxt is given ``--bare-wait`` seconds to raise anything from ``watch_order_book``.

    .venv/bin/python bench/ccxt_guard.py
    .venv/bin/python bench/ccxt_guard.py --rounds 6 --rate 1000 --seconds 1.5 --calls 3000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import aiohttp
import ccxt.pro as ccxt_pro
import orjson

from _simproc import simulator
from venueguard.ccxt import GuardConfig, StreamConfig, guard
from venueguard.telemetry.events import EventLog

SYMBOL = "BTC/USD:BTC"


def bitmex(base_url: str) -> Any:
    raw = ccxt_pro.bitmex({"enableRateLimit": False})
    ws = base_url.replace("http://", "ws://", 1) + "/realtime"
    raw.urls["api"] = {**raw.urls["api"], "public": base_url, "private": base_url, "ws": ws}
    return raw


def count_messages(raw: Any) -> list[int]:
    """Count the websocket messages ccxt handles (the same wrapper on bare and guarded)."""
    counter = [0]
    handle = raw.handle_message

    def counted(client: Any, message: Any) -> Any:
        counter[0] += 1
        return handle(client, message)

    raw.handle_message = counted
    return counter


async def read_for(exchange: Any, counter: list[int], seconds: float) -> tuple[float, int, int]:
    """CPU seconds, messages handled and books delivered while reading for ``seconds``."""
    await exchange.watch_order_book(SYMBOL)
    books = 0
    start_messages = counter[0]
    cpu0, end = time.process_time(), time.monotonic() + seconds
    while time.monotonic() < end:
        await exchange.watch_order_book(SYMBOL)
        books += 1
    return time.process_time() - cpu0, counter[0] - start_messages, books


async def cpu_per_message(base_url: str, rounds: int, seconds: float) -> None:
    ratios, rows = [], []
    for i in range(rounds * 2):
        guarded = i % 2 == 1
        raw = bitmex(base_url)
        counter = count_messages(raw)
        await raw.load_markets()
        exchange: Any = guard(raw, GuardConfig(streams=StreamConfig(
            max_age_s={"orderbook": 5.0}))) if guarded else raw
        try:
            cpu, messages, books = await read_for(exchange, counter, seconds)
        finally:
            await exchange.close()
        rows.append((guarded, cpu, messages, books))
        if guarded:
            bare_cpu, bare_messages = rows[-2][1], rows[-2][2]
            ratios.append((cpu / max(messages, 1)) / (bare_cpu / max(bare_messages, 1)))
    for guarded, cpu, messages, books in rows:
        print(f"  {'guarded' if guarded else 'bare   '} {messages:6d} messages {books:6d} books "
              f"{cpu * 1e6 / max(messages, 1):8.1f} us CPU per message")
    added = statistics.median(ratios) - 1
    print(f"CPU per book message, guarded vs bare ccxt: {added * 100:+.1f}% "
          f"(median of {len(ratios)} pairs; target <= +10%)")


def canned(exchange: Any, body: Any) -> None:
    text = orjson.dumps(body).decode()
    headers = {"Content-Type": "application/json"}

    async def fetch(url: str, method: str = "GET", headers_in: Any = None,
                    body_in: Any = None) -> Any:
        exchange.on_rest_response(200, "OK", url, method, headers, text, headers_in, body_in)
        return orjson.loads(text)

    exchange.fetch = fetch


async def rest_overhead(calls: int) -> None:
    ticker = [{"symbol": "XBTUSD", "timestamp": "2026-01-01T00:00:00.000Z", "lastPrice": 50000.5,
               "bidPrice": 50000, "askPrice": 50001, "volume": 10, "turnover": 100}]
    markets = await _markets()
    bare = ccxt_pro.bitmex({"enableRateLimit": False})
    raw = ccxt_pro.bitmex({"enableRateLimit": False})
    for exchange in (bare, raw):
        exchange.set_markets(markets)
        canned(exchange, ticker)
    guarded = guard(raw, GuardConfig(throttle=None), events=EventLog())
    times: dict[str, list[float]] = {"bare": [], "guarded": []}
    clock = time.perf_counter
    for i in range(calls * 2):
        which = "guarded" if i % 2 else "bare"
        target = guarded if which == "guarded" else bare
        started = clock()
        await target.fetch_ticker(SYMBOL)
        times[which].append(clock() - started)
    await bare.close()
    await guarded.close()
    p50 = {k: statistics.median(v) * 1e6 for k, v in times.items()}
    p90 = {k: statistics.quantiles(v, n=10)[-1] * 1e6 for k, v in times.items()}
    print(f"REST fetch_ticker: bare p50 {p50['bare']:.1f} us (p90 {p90['bare']:.1f}), guarded "
          f"p50 {p50['guarded']:.1f} us (p90 {p90['guarded']:.1f}); added at p50 "
          f"{p50['guarded'] - p50['bare']:.1f} us (target <= 50 us)")


async def _markets() -> Any:
    async with simulator("--rate", "1", "--scenario", "calm") as base_url:
        raw = bitmex(base_url)
        try:
            return list((await raw.load_markets()).values())
        finally:
            await raw.close()


async def stall_detection(base_url: str, rounds: int, threshold_s: float, bare_wait_s: float
                          ) -> None:
    late = []
    for _ in range(rounds):
        events = EventLog()
        stale = asyncio.Event()
        stale_at: list[float] = []

        def on_record(record: Any, stale: asyncio.Event = stale,
                      stale_at: list[float] = stale_at) -> None:
            if record["event"] == "ws.stale" and not stale_at:
                stale_at.append(time.monotonic())
                stale.set()

        events.subscribe(on_record)
        exchange = guard(bitmex(base_url), GuardConfig(streams=StreamConfig(
            max_age_s={"orderbook": threshold_s})), events=events)
        try:
            await exchange.watch_order_book(SYMBOL)
            await _post(base_url, {"kind": "ws_stall", "duration_s": 60})
            last = time.monotonic()
            while not stale.is_set():
                book = asyncio.ensure_future(exchange.watch_order_book(SYMBOL))
                flagged = asyncio.ensure_future(stale.wait())
                done, _ = await asyncio.wait({book, flagged},
                                             return_when=asyncio.FIRST_COMPLETED)
                if book in done and not stale.is_set():
                    last = time.monotonic()
                for task in (book, flagged):
                    task.cancel()
                await asyncio.gather(book, flagged, return_exceptions=True)
            late.append(stale_at[0] - last - threshold_s)
        finally:
            await _delete(base_url)
            await exchange.close()
    print(f"stall detection, guarded: declared {statistics.median(late) * 1000:.0f} ms after the "
          f"threshold (median of {rounds}; max {max(late) * 1000:.0f} ms; target <= 100 ms)")
    bare = bitmex(base_url)
    try:
        await bare.watch_order_book(SYMBOL)
        await _post(base_url, {"kind": "ws_stall", "duration_s": 60})
        started = time.monotonic()
        try:
            async with asyncio.timeout(bare_wait_s):
                while True:
                    await bare.watch_order_book(SYMBOL)
                    started = time.monotonic()
        except TimeoutError:
            print(f"stall detection, bare ccxt: nothing raised {bare_wait_s:.0f} s after the "
                  f"last book (it never notices a stream that answers pings)")
        except Exception as exc:  # report whatever ccxt raises
            print(f"stall detection, bare ccxt: {type(exc).__name__} after "
                  f"{time.monotonic() - started:.1f} s")
    finally:
        await _delete(base_url)
        await bare.close()


async def _post(base_url: str, fault: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as http, http.post(f"{base_url}/_sim/faults",
                                                          json=fault) as resp:
        resp.raise_for_status()


async def _delete(base_url: str) -> None:
    async with aiohttp.ClientSession() as http, http.delete(f"{base_url}/_sim/faults"):
        pass


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rate", type=float, default=800.0)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--threshold", type=float, default=1.0)
    parser.add_argument("--bare-wait", type=float, default=20.0)
    args = parser.parse_args()
    await rest_overhead(args.calls)
    async with simulator("--rate", str(args.rate), "--scenario", "calm") as base_url:
        await cpu_per_message(base_url, args.rounds, args.seconds)
    async with simulator("--rate", "50", "--scenario", "calm") as base_url:
        await stall_detection(base_url, args.rounds, args.threshold, args.bare_wait)


if __name__ == "__main__":
    asyncio.run(main())
