"""The compressed trading day over sockets at real pace: false stale events, learned vs static.

``venueguard sim --scenario trading-day --symbols XBTUSD,SOLUSDT`` runs in its own process (24 h
in 12 minutes: sessions, a lull, bursts, a flash crash; a liquid and a thin symbol, instrument
rows that carry the mark every 15 s). Market-data sessions subscribe every public channel of
both symbols (books, quotes, trades, instruments):

- ``learned``: the shipped defaults (learned freshness; trades are a quiet channel);
- ``static``: the same with ``[freshness] learned = false``;
- ``learned+trades``: learned, with trades watched too (a 60 s static bound, as a guarded ccxt
  exchange watches ``watch_trades``), so the thin symbol's tape is judged as well.

The day has no venue fault, so every ``ws.stale`` is a false one. Every simulated hour the
learned book thresholds are printed; at the end, per channel of each learned session: the gaps
its model learned, the stalls it saw, and the range of its threshold over the day (sampled
every 5 s), so the run shows every channel was watched.

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
from venueguard.core.liveness import DEFAULT_QUIET_CHANNELS
from venueguard.io import md_events as ev
from venueguard.io.ws_session import MarketDataSession, MdConfig, default_liveness

SYMBOLS = ("XBTUSD", "SOLUSDT")
TOPICS = tuple(f"{table}:{symbol}" for table in ("orderBookL2", "orderBookL2_25", "quote",
                                                   "trade", "instrument") for symbol in SYMBOLS)
SESSIONS = ("learned", "static", "learned+trades")


def session(base_url: str, name: str) -> MarketDataSession:
    liveness = default_liveness()
    if name == "static":
        liveness = replace(liveness, freshness=FreshnessConfig(enabled=False))
    elif name == "learned+trades":
        liveness = replace(liveness, quiet_channels=DEFAULT_QUIET_CHANNELS,
                           channel_max_age_s={**liveness.channel_max_age_s, "trade": 60.0})
    return MarketDataSession(MdConfig(url=ws_url(base_url), topics=TOPICS, liveness=liveness))


async def count_stale(md: MarketDataSession, out: list[ev.Stale]) -> None:
    async for event in md.events():
        if isinstance(event, ev.Stale):
            out.append(event)


def sample(md: MarketDataSession, ranges: dict[str, tuple[float, float]]) -> None:
    status = md.state.liveness.status(time.monotonic())
    for channel, threshold in status.thresholds_s.items():
        low, high = ranges.get(channel, (threshold, threshold))
        ranges[channel] = (min(low, threshold), max(high, threshold))


async def main_async(args: argparse.Namespace) -> None:
    async with simulator("--scenario", "trading-day", "--symbols", ",".join(SYMBOLS),
                         "--rate", "50") as base_url:
        sessions = {name: session(base_url, name) for name in SESSIONS}
        stale: dict[str, list[ev.Stale]] = {name: [] for name in SESSIONS}
        ranges: dict[str, dict[str, tuple[float, float]]] = {name: {} for name in SESSIONS}
        async with asyncio.TaskGroup() as group:
            for md in sessions.values():
                await md.__aenter__()
            watchers = [group.create_task(count_stale(md, stale[name]))
                        for name, md in sessions.items()]
            try:
                started = time.monotonic()
                end = started + args.minutes * 60.0
                next_print = started + 30.0
                while (now := time.monotonic()) < end:
                    await asyncio.sleep(min(5.0, max(0.0, end - now)))
                    for name, md in sessions.items():
                        sample(md, ranges[name])
                    if time.monotonic() >= next_print:
                        next_print += 30.0
                        elapsed = time.monotonic() - started
                        limits = sessions["learned"].state.liveness.status(
                            time.monotonic()).thresholds_s
                        books = "  ".join(f"{c.split(':')[0][11:] or 'L2'}:{c.split(':')[1]} "
                                          f"{limits.get(c, float('nan')):6.2f}"
                                          for c in TOPICS if c.startswith("orderBookL2"))
                        print(f"  {elapsed:5.0f} s (simulated {elapsed / 30.0:4.1f} h)  "
                              f"learned book thresholds (s): {books}", flush=True)
                detectors = {name: {c: sessions[name].state.liveness.detector(c)
                                    for c in TOPICS} for name in SESSIONS}
            finally:
                for task in watchers:
                    task.cancel()
                for md in sessions.values():
                    await md.__aexit__(None, None, None)
    print(f"trading-day over sockets, {args.minutes:g} min ({args.minutes * 2:g} simulated h), "
          f"{len(TOPICS)} channels each")
    for name in SESSIONS:
        by_channel: dict[str, int] = {}
        for event in stale[name]:
            by_channel[str(event.channel)] = by_channel.get(str(event.channel), 0) + 1
        print(f"  {name:<15} false ws.stale: {len(stale[name])}   {by_channel or ''}")
    for name in ("learned", "learned+trades"):
        print(f"  {name}: per channel, gaps learned / stalls / threshold range over the day (s)")
        for channel in TOPICS:
            detector = detectors[name][channel]
            if detector is None:
                print(f"    {channel:<24} quiet (never flagged)")
                continue
            low, high = ranges[name].get(channel, (float("nan"), float("nan")))
            print(f"    {channel:<24} {detector.learned_gaps:7d} / {detector.stalls:2d}   "
                  f"{low:7.2f} - {high:7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=12.0)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
