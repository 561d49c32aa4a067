"""Book messages per second: decode alone, and decode + parse + book apply, on one core.

Generates a synthetic orderBookL2 stream (one symbol, ~1,000 levels, one row per message:
70% update, 15% insert, 15% delete, every message valid) in both BitMEX formats, encodes it as
the bytes a websocket delivers, and times each stage over the whole stream (best of N runs).
Peers measured in the same run: stdlib ``json`` decoding, and ccxt 4.5.78's BitMEX order-book
handler (``handle_order_book``, fed already-decoded messages, modern format only: it needs the
price on every row).

    .venv/bin/python bench/decode_book.py [--messages 200000] [--repeat 3] [--seed 7]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import time
from collections.abc import Callable
from typing import Any

import orjson

from venueguard.core.book import APPLIED
from venueguard.venues.bitmex.book import BookSet, LegacyIds
from venueguard.venues.bitmex.messages import TableMessage, decode
from venueguard.venues.bitmex.timefmt import format_ms, parse_ms

SYMBOL = "XBTUSD"
TICK = 0.5
LEGACY = LegacyIds(index=88, tick=TICK)
MID_TICKS = 60_000  # mid price 30,000
PEER = "ccxt 4.5.78 handle_order_book (decoded input, peer)"


def generate(n_messages: int, legacy: bool, seed: int) -> tuple[bytes, list[bytes]]:
    """(partial frame, delta frames) of a consistent synthetic stream."""
    rng = random.Random(seed)
    live: dict[str, dict[int, int]] = {"Buy": {}, "Sell": {}}  # side -> {ticks: id}
    next_id = [1_000_000]

    def new_id(ticks: int) -> int:
        if legacy:
            return LEGACY.level_id(ticks * TICK)
        next_id[0] += rng.randrange(1, 1_000)
        return next_id[0]

    def free_ticks(side: str) -> int:
        while True:  # 1,500 places per side, about a third of them taken
            offset = rng.randrange(1, 1_500)
            ticks = MID_TICKS - offset if side == "Buy" else MID_TICKS + offset
            if ticks not in live[side]:
                return ticks

    ts_ms = 1_700_000_000_000
    rows = []
    for side in ("Buy", "Sell"):
        for offset in range(1, 501):
            ticks = MID_TICKS - offset if side == "Buy" else MID_TICKS + offset
            level_id = live[side][ticks] = new_id(ticks)
            rows.append({"symbol": SYMBOL, "id": level_id, "side": side,
                         "size": rng.randrange(1, 100_000), "price": ticks * TICK,
                         "timestamp": format_ms(ts_ms)})
    partial = orjson.dumps({"table": "orderBookL2", "action": "partial",
                            "keys": ["symbol", "id", "side"], "filter": {"symbol": SYMBOL},
                            "data": rows})
    frames = []
    for _ in range(n_messages):
        ts_ms += rng.randrange(0, 3)
        side = rng.choice(("Buy", "Sell"))
        roll = rng.random()
        if roll < 0.15 or len(live[side]) < 50:
            ticks = free_ticks(side)
            level_id = live[side][ticks] = new_id(ticks)
            action, row = "insert", {"symbol": SYMBOL, "id": level_id, "side": side,
                                     "size": rng.randrange(1, 100_000), "price": ticks * TICK}
        else:
            ticks = rng.choice(list(live[side])) if roll < 0.30 else _near_top(rng, live[side],
                                                                               side)
            level_id = live[side][ticks]
            if roll < 0.30:
                del live[side][ticks]
                action, row = "delete", {"symbol": SYMBOL, "id": level_id, "side": side}
            else:
                action, row = "update", {"symbol": SYMBOL, "id": level_id, "side": side,
                                         "size": rng.randrange(1, 100_000)}
            if not legacy:
                row["price"] = ticks * TICK
        row["timestamp"] = format_ms(ts_ms)
        frames.append(orjson.dumps({"table": "orderBookL2", "action": action, "data": [row]}))
    return partial, frames


def _near_top(rng: random.Random, levels: dict[int, int], side: str) -> int:
    """Updates cluster near the top of book, as on a real venue."""
    best = max(levels) if side == "Buy" else min(levels)
    for _ in range(20):
        offset = int(rng.expovariate(1 / 10))
        ticks = best - offset if side == "Buy" else best + offset
        if ticks in levels:
            return ticks
    return best


def measure(stages: dict[str, tuple[Callable[[], object], int]], repeat: int
            ) -> dict[str, float]:
    """Best messages per CPU-second of each stage. Rounds interleave the stages, and CPU time
    (not wall time) is measured, so other load on the machine disturbs the ratios less."""
    best = {name: float("inf") for name in stages}
    for _ in range(repeat):
        for name, (run, _rounds) in stages.items():
            if _rounds <= 0:
                continue
            gc.collect()
            start = time.process_time()
            run()
            best[name] = min(best[name], time.process_time() - start)
        stages = {name: (run, rounds - 1) for name, (run, rounds) in stages.items()}
    return best


def each(function: Callable[[bytes], object], frames: list[bytes]) -> Callable[[], None]:
    """Call ``function`` on every frame, keeping no result (as a consumer loop would)."""
    def run() -> None:
        for frame in frames:
            function(frame)
    return run


def pipeline(partial: bytes, frames: list[bytes], parse_ts: bool) -> Callable[[], BookSet]:
    def run() -> BookSet:
        books = BookSet()
        first = decode(partial)
        assert isinstance(first, TableMessage)
        books.apply("partial", first.data, 0.0, first.filter)
        now = 0.0
        for frame in frames:
            msg = decode(frame)
            if type(msg) is TableMessage:
                if parse_ts:
                    parse_ms(msg.data[-1]["timestamp"])
                now += 1e-5
                for _, result in books.apply(msg.action, msg.data, now, msg.filter):
                    if result is not APPLIED:
                        raise AssertionError(result)
        return books
    return run


def ccxt_peer(partial: bytes, frames: list[bytes]) -> Callable[[], object] | None:
    try:
        import ccxt.pro
    except ImportError:
        return None
    decoded = [json.loads(f) for f in frames]
    first = json.loads(partial)

    class _Client:
        def resolve(self, *args: Any) -> None:
            pass

    def run() -> object:
        exchange = ccxt.pro.bitmex()
        client = _Client()
        try:
            exchange.handle_order_book(client, first)
            for msg in decoded:
                exchange.handle_order_book(client, msg)
        finally:
            asyncio.run(exchange.close())
        return exchange

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    n, repeat = args.messages, args.repeat
    print(f"synthetic orderBookL2 stream: {n:,} messages, one row each; best of {repeat} "
          "interleaved runs, per CPU-second on one core")
    stages: dict[str, tuple[Callable[[], object], int]] = {}
    sizes = {}
    for fmt in ("modern", "legacy"):
        partial, frames = generate(n, legacy=(fmt == "legacy"), seed=args.seed)
        sizes[fmt] = sum(map(len, frames)) / len(frames)
        if fmt == "modern":
            stages["json.loads (stdlib, peer)"] = (each(json.loads, frames), repeat)
            stages["orjson.loads"] = (each(orjson.loads, frames), repeat)
            stages["decode (venueguard messages)"] = (each(decode, frames), repeat)
            peer = ccxt_peer(partial, frames)
            if peer is not None:
                stages[PEER] = (peer, 1)
        stages[f"decode + book [{fmt}]"] = (pipeline(partial, frames, False), repeat)
        stages[f"decode + timestamp + book [{fmt}]"] = (pipeline(partial, frames, True), repeat)
    print(f"mean frame bytes: modern {sizes['modern']:.0f}, legacy {sizes['legacy']:.0f}")
    seconds = measure(stages, repeat)
    results = {name: n / secs for name, secs in seconds.items()}
    for name, rate in results.items():
        print(f"  {name:<55} {rate:>12,.0f} msgs/s")
    orjson_rate = results["orjson.loads"]
    full = results["decode + timestamp + book [modern]"]
    print("\nratios")
    print(f"  decode vs orjson.loads:                 "
          f"{results['decode (venueguard messages)'] / orjson_rate:.2f}x")
    print(f"  decode+timestamp+book vs orjson.loads:  {full / orjson_rate:.2f}x")
    print(f"  decode+timestamp+book vs stdlib json:   "
          f"{full / results['json.loads (stdlib, peer)']:.2f}x")
    if PEER in results:
        print(f"  decode+timestamp+book vs ccxt apply:    {full / results[PEER]:.1f}x")


if __name__ == "__main__":
    main()
