"""The compressed trading day over sockets at real pace: false stale events, learned vs static.

``venueguard sim --scenario trading-day --symbols XBTUSD,SOLUSDT`` runs in its own process (24 h
in 12 minutes: sessions, a lull, bursts, a flash crash; a liquid and a thin symbol). Two
market-data sessions with the shipped defaults subscribe every public channel of both symbols
(books, quotes, trades, instruments); one learns its freshness, the other keeps the static
thresholds. The day has no venue fault, so every ``ws.stale`` is a false one. Every simulated
hour the learned thresholds of the book channels are printed.

    .venv/bin/python bench/freshness_day.py                 # the whole day, 12 minutes
    .venv/bin/python bench/freshness_day.py --minutes 3
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import replace

from _simproc import simulator, ws_url
from venueguard.core.freshness import FreshnessConfig
from venueguard.io import md_events as ev
from venueguard.io.ws_session import MarketDataSession, MdConfig, default_liveness

SYMBOLS = ("XBTUSD", "SOLUSDT")
TOPICS = tuple(f"{table}:{symbol}" for table in ("orderBookL2", "orderBookL2_25", "quote",
                                                   "trade", "instrument") for symbol in SYMBOLS)


def session(base_url: str, learned: bool) -> MarketDataSession:
    liveness = default_liveness()
    if not learned:
        liveness = replace(liveness, freshness=FreshnessConfig(enabled=False))
    return MarketDataSession(MdConfig(url=ws_url(base_url), topics=TOPICS, liveness=liveness))


async def count_stale(md: MarketDataSession, out: list[ev.Stale]) -> None:
    async for event in md.events():
        if isinstance(event, ev.Stale):
            out.append(event)


async def main_async(args: argparse.Namespace) -> None:
    async with simulator("--scenario", "trading-day", "--symbols", ",".join(SYMBOLS),
                         "--rate", "50") as base_url:
        learned, static = session(base_url, True), session(base_url, False)
        stale: dict[str, list[ev.Stale]] = {"learned": [], "static": []}
        async with learned, static, asyncio.TaskGroup() as group:
            watchers = [group.create_task(count_stale(learned, stale["learned"])),
                        group.create_task(count_stale(static, stale["static"]))]
            started = time.monotonic()
            end = started + args.minutes * 60.0
            while time.monotonic() < end:
                await asyncio.sleep(min(30.0, max(0.0, end - time.monotonic())))
                elapsed = time.monotonic() - started
                status = learned.state.liveness.status(time.monotonic())
                books = "  ".join(f"{c.split(':')[0][11:] or 'L2'}:{c.split(':')[1]} "
                                  f"{status.thresholds_s.get(c, float('nan')):6.2f}"
                                  for c in TOPICS if c.startswith("orderBookL2"))
                print(f"  {elapsed:5.0f} s (simulated {elapsed / 30.0:4.1f} h)  "
                      f"learned book thresholds (s): {books}", flush=True)
            for task in watchers:
                task.cancel()
    print(f"trading-day over sockets, {args.minutes:g} min ({args.minutes * 2:g} simulated h), "
          f"{len(TOPICS)} channels each")
    for name in ("learned", "static"):
        events = stale[name]
        by_channel: dict[str, int] = {}
        for event in events:
            by_channel[str(event.channel)] = by_channel.get(str(event.channel), 0) + 1
        print(f"  {name:<8} false ws.stale: {len(events)}   {by_channel or ''}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=12.0)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
