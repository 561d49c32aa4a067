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

from venueguard.core.book import APPLIED, BookSet, LegacyIds
from venueguard.venues.bitmex.messages import TableMessage, decode
from venueguard.venues.bitmex.timefmt import format_ms, parse_ms

SYMBOL = "XBTUSD"
TICK = 0.5
LEGACY = LegacyIds(index=88, tick=TICK)
MID_TICKS = 60_000  # mid price 30,000


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
        while True:
            offset = int(rng.expovariate(1 / 40)) + 1
            ticks = MID_TICKS - offset if side == "Buy" else MID_TICKS + offset
            if ticks not in live[side]:
                return ticks

    ts_ms = 1_700_000_000_000
    rows = []
    for side in ("Buy", "Sell"):
        for _ in range(500):
            ticks = free_ticks(side)
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
    ordered = sorted(levels, reverse=(side == "Buy"))
    return ordered[min(int(rng.expovariate(1 / 10)), len(ordered) - 1)]


def timed(run: Callable[[], object], frames: int, repeat: int) -> float:
    """Best messages/s over ``repeat`` runs."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return frames / best


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
                for _, result in books.apply(msg.action.value, msg.data, now, msg.filter):
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
    print(f"synthetic orderBookL2 stream: {n:,} messages, one row each, best of {repeat}")
    results: dict[str, float] = {}
    for fmt in ("modern", "legacy"):
        partial, frames = generate(n, legacy=(fmt == "legacy"), seed=args.seed)
        size = sum(map(len, frames)) / len(frames)
        print(f"\n[{fmt}] mean frame {size:.0f} bytes")
        if fmt == "modern":
            results["json.loads (stdlib, peer)"] = timed(
                lambda: [json.loads(f) for f in frames], n, repeat)
            results["orjson.loads"] = timed(lambda: [orjson.loads(f) for f in frames], n, repeat)
            results["decode (venueguard messages)"] = timed(
                lambda: [decode(f) for f in frames], n, repeat)
        results[f"decode + book [{fmt}]"] = timed(pipeline(partial, frames, False), n, repeat)
        results[f"decode + timestamp + book [{fmt}]"] = timed(
            pipeline(partial, frames, True), n, repeat)
        if fmt == "modern":
            peer = ccxt_peer(partial, frames)
            if peer is not None:
                results["ccxt 4.5.78 handle_order_book (decoded input, peer)"] = timed(
                    peer, n, 1)
        for name, rate in results.items():
            if name.endswith(f"[{fmt}]") or fmt == "modern" and "[" not in name:
                print(f"  {name:<55} {rate:>12,.0f} msgs/s")
    orjson_rate = results["orjson.loads"]
    full = results["decode + timestamp + book [modern]"]
    print("\nratios")
    print(f"  decode vs orjson.loads:                 "
          f"{results['decode (venueguard messages)'] / orjson_rate:.2f}x")
    print(f"  decode+timestamp+book vs orjson.loads:  {full / orjson_rate:.2f}x")
    print(f"  decode+timestamp+book vs stdlib json:   "
          f"{full / results['json.loads (stdlib, peer)']:.2f}x")
    peer_name = "ccxt 4.5.78 handle_order_book (decoded input, peer)"
    if peer_name in results:
        print(f"  decode+timestamp+book vs ccxt apply:    {full / results[peer_name]:.1f}x")


if __name__ == "__main__":
    main()
