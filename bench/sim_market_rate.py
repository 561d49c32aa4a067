"""Simulator market generation rate: messages per second the engine produces on one core.

Runs the seeded market process of one instrument at a high configured rate and counts what
``Engine.drain_updates()`` returns: every message, and the ``orderBookL2`` messages alone (one row
each, as the venue sends them). Variants: modern and legacy book formats, with and without the
derived ``orderBookL2_25`` stream, and with each message serialised to websocket text the way the
server does (``orjson.dumps`` of ``{"table", "action", "data"}``). The stdlib ``json`` encoder is
measured on the same messages as a reference.

Figures are CPU seconds of this process (``time.process_time``), best of ``--repeat`` runs, so
that other processes on a shared machine disturb them less; wall-clock rates are printed too.

    .venv/bin/python bench/sim_market_rate.py [--seconds 3] [--rate 300000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import orjson

from venueguard.sim.engine import Engine, Update

T0 = 1_700_000_000_000


def orjson_encode(u: Update) -> bytes:
    return orjson.dumps({"table": u.table, "action": u.action, "data": u.rows})


def json_encode(u: Update) -> bytes:
    return json.dumps({"table": u.table, "action": u.action, "data": u.rows},
                      separators=(",", ":")).encode()


def run_once(
    *, book_format: str, l2_25: bool, sim_seconds: float, rate: float,
    encode: Callable[[Update], bytes] | None,
) -> tuple[int, int, float, float]:
    """(all messages, orderBookL2 messages, cpu seconds, wall seconds) for one run."""
    engine = Engine(["XBTUSD"], seed=1, rate_msgs_s=rate, start_ms=T0, book_format=book_format,
                    publish_l2_25=l2_25)
    total = book = 0
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    now = T0
    end = T0 + int(sim_seconds * 1000)
    while now < end:
        now += 20  # a server tick every 20 ms of simulated time
        engine.advance(now)
        updates = engine.drain_updates()
        total += len(updates)
        for u in updates:
            if u.table == "orderBookL2":
                book += 1
        if encode is not None:
            for u in updates:
                encode(u)
    return total, book, time.process_time() - cpu0, time.perf_counter() - wall0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="simulated seconds per run")
    parser.add_argument("--rate", type=float, default=300_000.0, help="configured msgs/s")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"simulated {args.seconds:g} s at a configured {args.rate:,.0f} events/s, "
          f"best of {args.repeat} (CPU time)")
    print(f"{'variant':44} {'all msgs/s':>12} {'L2 msgs/s':>12} {'wall L2/s':>12}")
    cases: list[tuple[str, str, bool, Callable[[Update], bytes] | None]] = [
        ("modern, L2 only", "modern", False, None),
        ("legacy, L2 only", "legacy", False, None),
        ("modern, L2 + L2_25", "modern", True, None),
        ("modern, L2 only + orjson text", "modern", False, orjson_encode),
        ("modern, L2 + L2_25 + orjson text", "modern", True, orjson_encode),
        ("reference: modern, L2 only + stdlib json text", "modern", False, json_encode),
    ]
    results: dict[str, float] = {}
    for name, fmt, l25, encode in cases:
        best: tuple[int, int, float, float] | None = None
        for _ in range(args.repeat):
            run = run_once(book_format=fmt, l2_25=l25, sim_seconds=args.seconds, rate=args.rate,
                           encode=encode)
            if best is None or run[2] < best[2]:
                best = run
        assert best is not None
        total, book, cpu_s, wall_s = best
        results[name] = book / cpu_s
        print(f"{name:44} {total / cpu_s:>12,.0f} {book / cpu_s:>12,.0f} "
              f"{book / wall_s:>12,.0f}")
    base = results["modern, L2 only + orjson text"]
    ref = results["reference: modern, L2 only + stdlib json text"]
    print(f"orjson vs stdlib json, generation + text: {base / ref:.2f}x")
    print(f"target: >= 50,000 L2 msgs/s with serialisation -> "
          f"{'met' if base >= 50_000 else 'NOT met'} ({base:,.0f})")


if __name__ == "__main__":
    main()
