"""A silent stream, caught: the simulator stops sending data (pongs continue) and the guarded
``watch_order_book`` notices within its bound, rebuilds the book and carries on.

    venueguard sim --port 8800 &
    python examples/stall_recovery.py --sim-url http://127.0.0.1:8800

Bare ccxt would wait on that stream until its keepalive gave up (about 90 s) or forever.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp
import ccxt.pro

from venueguard import EventLog, guard
from venueguard.ccxt import GuardConfig, StreamConfig
from venueguard.numbers import float_arg


async def main(sim_url: str, max_age_s: float) -> int:
    raw = ccxt.pro.bitmex()
    ws_url = sim_url.replace("http://", "ws://", 1) + "/realtime"
    raw.urls["api"] = {"public": sim_url, "private": sim_url, "ws": ws_url}
    events = EventLog()
    config = GuardConfig(streams=StreamConfig(max_age_s={"orderbook": max_age_s}))
    async with guard(raw, config, events=events) as exchange:
        await exchange.watch_order_book("BTC/USD:BTC")
        async with aiohttp.ClientSession() as http, http.post(
                f"{sim_url}/_sim/faults", json={"kind": "ws_stall", "duration_s": 30}) as resp:
            resp.raise_for_status()
        started = time.monotonic()
        seen: list[str] = []
        while "book.resynced" not in seen and time.monotonic() - started < 30:
            # an update already on its way when the stall began comes first; then the call
            # waits through the recovery and returns the rebuilt book
            book = await exchange.watch_order_book("BTC/USD:BTC")
            seen = [r["event"] for r in events.recent()]
        took = time.monotonic() - started
        path = " -> ".join(e for e in seen if e.startswith(("ws.", "book.")))
        print(f"stall noticed and book rebuilt in {took:.2f} s (bound {max_age_s:g} s): {path}")
        print(f"fresh book: {book['bids'][0][0]} / {book['asks'][0][0]}")
        async with aiohttp.ClientSession() as http, http.delete(f"{sim_url}/_sim/faults"):
            pass
    return 0 if "book.resynced" in seen else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim-url", default="http://127.0.0.1:8800")
    parser.add_argument("--max-age", type=float_arg(above=0, high=60), default=1.0)
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(args.sim_url.rstrip("/"), args.max_age)))
