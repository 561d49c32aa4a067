"""Reconnect-to-resynced time on loopback: from a dropped connection to a rebuilt book.

The simulator runs in its own process; each round posts ``ws_drop`` (the transport is cut without
a close frame) and measures, from the session's own events, the time from the start of the
reconnect (the end of the backoff delay) to ``book.resynced`` (target <= 250 ms), and from the
drop being noticed to ``book.resynced`` (includes the jittered backoff, base 10 ms here).
Rounds stay well under the 60-opens-per-hour connection limit.

    .venv/bin/python bench/reconnect_resync.py               # 10 rounds
    .venv/bin/python bench/reconnect_resync.py --rounds 30 --rate 1000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stall_detection import measure_reconnects, simulator, summary


async def main_async(args: argparse.Namespace) -> None:
    async with simulator(args.rate) as base_url:
        from_connect, from_drop = await measure_reconnects(base_url, args.rounds)
    print(f"simulator at {args.rate:g} msgs/s per symbol")
    print(f"  reconnect start -> book.resynced:   {summary(from_connect)}   target <= 250 ms")
    print(f"  drop noticed -> book.resynced:      {summary(from_drop)}   (includes backoff)")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--rate", type=float, default=200.0, help="simulator msgs/s per symbol")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
