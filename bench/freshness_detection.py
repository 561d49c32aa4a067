"""How soon a dead liquid book is declared stale: learned freshness against the static threshold.

The simulator runs in its own process (``venueguard sim``, the ``calm`` scenario). Two market-data
sessions with the shipped defaults (``default_liveness()``: books 10 s, ping after 5 s, pong
within 5 s) watch the same ``orderBookL2:XBTUSD`` in the same run; one learns its freshness
(the default), the other keeps the static thresholds (``[freshness] learned = false``). Once the
learned one has warmed up, each round posts ``ws_stall`` (data stops, pongs go on) or
``ws_half_open`` (data and pongs stop, TCP stays open); it hits both connections at once.
Detection time = ``ws.stale`` time - the session's last accepted data; both sessions then
reconnect and resync before the next round.

    .venv/bin/python bench/freshness_detection.py                  # 5 rounds of each fault
    .venv/bin/python bench/freshness_detection.py --rounds 10 --rate 50
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import replace
from typing import Any

from _simproc import simulator, ws_url
from stall_detection import next_event, post_fault
from venueguard.core.backoff import BackoffConfig
from venueguard.core.freshness import FreshnessConfig
from venueguard.io import md_events as ev
from venueguard.io.ws_session import MarketDataSession, MdConfig, default_liveness

TOPIC = "orderBookL2:XBTUSD"
FAULTS = ("ws_stall", "ws_half_open")


def session(base_url: str, learned: bool) -> MarketDataSession:
    liveness = default_liveness()
    if not learned:
        liveness = replace(liveness, freshness=FreshnessConfig(enabled=False))
    return MarketDataSession(MdConfig(url=ws_url(base_url), topics=(TOPIC,), liveness=liveness,
                                      backoff=BackoffConfig(base_s=0.01, cap_s=0.05)))


async def learned_in_force(md: MarketDataSession, timeout_s: float) -> None:
    """Until the learned session's book channel uses its learned threshold."""
    deadline = time.monotonic() + timeout_s
    while True:
        detector = md.state.liveness.detector(TOPIC)
        if detector is not None and detector.learned:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("the learned model did not warm up")
        await asyncio.sleep(0.1)


async def one_round(base_url: str, sessions: dict[str, MarketDataSession], fault: str
                    ) -> dict[str, tuple[float, ev.Stale]]:
    for md in sessions.values():
        await md.wait_synced(15.0)
    await learned_in_force(sessions["learned"], 60.0)
    await asyncio.sleep(0.5)
    streams = {name: md.events() for name, md in sessions.items()}
    await post_fault(base_url, fault)

    async def watch(name: str) -> tuple[float, ev.Stale]:
        stale = await next_event(streams[name], ev.Stale, timeout_s=30.0)
        last = sessions[name].state.last_data_now
        assert last is not None
        await next_event(streams[name], ev.BookResynced, timeout_s=30.0)
        streams[name].close()
        return stale.at - last, stale

    names = list(sessions)
    results = await asyncio.gather(*(watch(name) for name in names))
    return dict(zip(names, results, strict=True))


def summary(values: list[float]) -> str:
    v = sorted(values)
    q1, _, q3 = statistics.quantiles(v, n=4) if len(v) > 1 else (v[0], v[0], v[0])
    return (f"median {statistics.median(v):6.2f} s   quartiles {q1:5.2f}-{q3:5.2f} s   "
            f"min {v[0]:6.2f} s   max {v[-1]:6.2f} s   (n={len(v)})")


async def main_async(args: argparse.Namespace) -> None:
    async with simulator("--rate", str(args.rate), "--scenario", "calm") as base_url:
        sessions = {"learned": session(base_url, True), "static": session(base_url, False)}
        for md in sessions.values():
            await md.__aenter__()
        try:
            await learned_in_force(sessions["learned"], 90.0)
            results: dict[tuple[str, str], list[tuple[float, ev.Stale]]] = {}
            for _ in range(args.rounds):
                for fault in FAULTS:
                    for name, got in (await one_round(base_url, sessions, fault)).items():
                        results.setdefault((fault, name), []).append(got)
        finally:
            for md in sessions.values():
                await md.__aexit__(None, None, None)
    print(f"simulator at {args.rate:g} msgs/s (calm), {TOPIC}, shipped defaults; "
          f"detection = ws.stale - last accepted data")
    for fault in FAULTS:
        for name in ("learned", "static"):
            got = results[(fault, name)]
            times = [t for t, _ in got]
            reasons = sorted({s.reason for _, s in got})
            thresholds = sorted({round(s.threshold_s or 0.0, 2) for _, s in got})
            phis = [s.suspicion for _, s in got if s.suspicion is not None]
            extra = f"   phi at stale {min(phis):.1f}-{max(phis):.1f}" if phis else ""
            print(f"  {fault:<13} {name:<8} {summary(times)}   reason {','.join(reasons)}   "
                  f"threshold {thresholds[0]:g}-{thresholds[-1]:g} s{extra}")
            print(f"  {'':<13} {'':<8} every round (s): "
                  + " ".join(f"{t:.2f}" for t in sorted(times)))
        learned = statistics.median(t for t, _ in results[(fault, "learned")])
        static = statistics.median(t for t, _ in results[(fault, "static")])
        print(f"  {fault:<13} static / learned median: {static / learned:.1f}x   "
              f"target learned <= 2 s (aim 1 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each fault")
    parser.add_argument("--rate", type=float, default=50.0, help="simulator msgs/s")
    args: Any = parser.parse_args()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
