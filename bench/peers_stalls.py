"""Silent stalls: how long venueguard and ccxt take to notice, and to get fresh data again.

The simulator runs in its own process (``venueguard sim``). Each round opens a fresh venueguard
:class:`~venueguard.io.ws_session.MarketDataSession` (library defaults: text ping after 5 s of
silence, pong within 5 s, books must move within 10 s) and a fresh ccxt 4.5.78
``ccxt.pro.bitmex`` watching the same order book (URLs pointed at the simulator, its defaults),
waits until both receive data, then posts one fault that hits both connections:

* ``ws_stall``: data stops, pings are still answered (only a data-freshness check can see it);
* ``ws_half_open``: data and pongs stop, TCP stays open (a dead path).

Measured from the moment the fault is posted: seconds until the client reports the connection
dead (venueguard: ``ws.stale``; ccxt: ``watch_order_book`` raises), and seconds until fresh data
flows again (venueguard: the book rebuilt from a new partial; ccxt: the next ``watch_order_book``
after its error returns, which opens a new connection). Waits are capped (``--stall-cap-s``,
``--half-open-cap-s``); a client that has not noticed by then is reported as such.

    .venv/bin/python bench/peers_stalls.py                        # caps 60 s and 120 s
    .venv/bin/python bench/peers_stalls.py --stall-cap-s 30 --half-open-cap-s 100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from _simproc import simulator, ws_url
from peers_pipeline import CCXT_SYMBOL, TOPIC
from venueguard.io import md_events as ev
from venueguard.io.ws_session import MarketDataSession, MdConfig


@dataclass
class Outcome:
    detect_s: float | None = None
    fresh_s: float | None = None

    def text(self, cap_s: float) -> tuple[str, str]:
        detect = (f"{self.detect_s:.1f}" if self.detect_s is not None
                  else f"not detected within {cap_s:g} s")
        fresh = (f"{self.fresh_s:.1f}" if self.fresh_s is not None
                 else "-" if self.detect_s is None else f"not within {cap_s:g} s")
        return detect, fresh


async def post_fault(base_url: str, kind: str) -> float:
    async with aiohttp.ClientSession() as http, http.post(
            f"{base_url}/_sim/faults", json={"kind": kind}) as resp:
        resp.raise_for_status()
    return time.monotonic()


async def watch_venueguard(session: MarketDataSession, stream: Any, started: asyncio.Event,
                           fault_at: list[float], out: Outcome) -> None:
    async for event in stream:
        if not fault_at:
            if isinstance(event, ev.TopOfBook | ev.BookResynced):
                started.set()
            continue
        if isinstance(event, ev.Stale) and out.detect_s is None:
            out.detect_s = time.monotonic() - fault_at[0]
        elif isinstance(event, ev.BookResynced) and out.detect_s is not None:
            out.fresh_s = time.monotonic() - fault_at[0]
            return


async def watch_ccxt(exchange: Any, started: asyncio.Event, fault_at: list[float],
                     out: Outcome) -> None:
    while True:
        try:
            await exchange.watch_order_book(CCXT_SYMBOL)
        except Exception:  # ccxt reports a dead connection by raising from the watch
            if fault_at and out.detect_s is None:
                out.detect_s = time.monotonic() - fault_at[0]
            await asyncio.sleep(0.05)
            continue
        if not fault_at:
            started.set()
        elif out.detect_s is not None:
            out.fresh_s = time.monotonic() - fault_at[0]
            return


async def one_round(base_url: str, kind: str, cap_s: float) -> tuple[Outcome, Outcome]:
    import ccxt.pro as ccxt_pro

    session = MarketDataSession(MdConfig(url=ws_url(base_url), topics=(TOPIC,)))
    exchange = ccxt_pro.bitmex({"newUpdates": True})
    exchange.urls["api"] = {**exchange.urls["api"], "public": base_url, "private": base_url,
                            "ws": ws_url(base_url)}
    vg, cx = Outcome(), Outcome()
    vg_started, cx_started = asyncio.Event(), asyncio.Event()
    fault_at: list[float] = []
    stream = session.events()
    try:
        async with session:
            await exchange.load_markets()
            tasks = [asyncio.create_task(watch_venueguard(session, stream, vg_started, fault_at,
                                                          vg)),
                     asyncio.create_task(watch_ccxt(exchange, cx_started, fault_at, cx))]
            async with asyncio.timeout(30):
                await vg_started.wait()
                await cx_started.wait()
            await asyncio.sleep(1.0)
            fault_at.append(await post_fault(base_url, kind))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(cap_s):
                    await asyncio.gather(*tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await exchange.close()
    return vg, cx


async def main_async(args: argparse.Namespace) -> None:
    rows: list[tuple[str, str, float, Outcome]] = []
    async with simulator("--rate", str(args.rate), "--scenario", "calm") as base:
        for kind, cap in (("ws_stall", args.stall_cap_s), ("ws_half_open", args.half_open_cap_s)):
            vg, cx = await one_round(base, kind, cap)
            rows += [(kind, "venueguard (defaults)", cap, vg), (kind, "ccxt 4.5.78", cap, cx)]
    print(f"{'fault':<14} {'client':<24} {'detected after s':<32} {'fresh data again after s'}")
    for kind, client, cap, outcome in rows:
        detect, fresh = outcome.text(cap)
        print(f"{kind:<14} {client:<24} {detect:<32} {fresh}")
    for kind in ("ws_stall", "ws_half_open"):
        vg = next(o for k, c, _, o in rows if k == kind and c.startswith("venueguard"))
        cx = next(o for k, c, _, o in rows if k == kind and c.startswith("ccxt"))
        cap = args.stall_cap_s if kind == "ws_stall" else args.half_open_cap_s
        if vg.fresh_s is not None:
            other = cx.fresh_s if cx.fresh_s is not None else cap
            bound = "" if cx.fresh_s is not None else "at least "
            print(f"{kind}: venueguard has fresh data again {bound}{other / vg.fresh_s:.1f}x "
                  "sooner than ccxt")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=50.0, help="simulator msgs/s")
    parser.add_argument("--stall-cap-s", type=float, default=60.0)
    parser.add_argument("--half-open-cap-s", type=float, default=120.0)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
