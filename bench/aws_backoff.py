"""The AWS "Exponential Backoff and Jitter" contention simulation, run with venueguard's backoff.

Model (simulated time, seeded; nothing sleeps): ``--clients`` clients start together and each
must write one row once, with optimistic concurrency. A write carries the row version the client
last saw (0 at the start); the venue applies it only if the row is still at that version, and
its answer carries the current version either way. A client whose write lost waits the delay
from its own :class:`venueguard.core.backoff.Backoff` (base 5 ms, cap 2000 ms, doubling), then
writes again. Every network hop (request and response) takes ``|Normal(10 ms, 2 ms)|``. A call
is one write request; the completion time is when the last client learns its write succeeded.

Strategies: exponential without jitter, full jitter, equal jitter, decorrelated jitter. Each is
run ``--runs`` times (seeds 1..runs) and averaged, then compared with the published finding
that full jitter needs fewer than half the calls of exponential backoff without jitter.

    .venv/bin/python bench/aws_backoff.py                  # 100 clients, 20 runs
    .venv/bin/python bench/aws_backoff.py --clients 50 --runs 50
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics

from venueguard.core.backoff import Backoff, BackoffConfig, Jitter

BASE_S = 0.005
CAP_S = 2.0
HOP_MEAN_S = 0.010
HOP_SD_S = 0.002


def simulate(clients: int, jitter: Jitter, seed: int) -> tuple[int, float]:
    """One contention run; returns (calls, completion time in seconds)."""
    net = random.Random(f"net/{seed}")
    draws = random.Random(f"backoff/{seed}/{jitter.value}")
    config = BackoffConfig(base_s=BASE_S, cap_s=CAP_S, jitter=jitter, reset_after_s=0.0)
    backoffs = [Backoff(config, draws) for _ in range(clients)]
    known = [0] * clients
    version = 0
    calls = 0
    done_at = 0.0

    def hop() -> float:
        return abs(net.gauss(HOP_MEAN_S, HOP_SD_S))

    # (time, order, client, kind): "write" reaches the row, "answer" reaches the client
    events: list[tuple[float, int, int, str, bool]] = []
    order = 0
    for client in range(clients):
        calls += 1
        heapq.heappush(events, (hop(), order, client, "write", False))
        order += 1
    while events:
        now, _, client, kind, won = heapq.heappop(events)
        if kind == "write":
            won = known[client] == version
            if won:
                version += 1
            known[client] = version
            heapq.heappush(events, (now + hop(), order, client, "answer", won))
        elif won:
            done_at = max(done_at, now)
        else:
            delay = backoffs[client].next_delay_s(now)
            calls += 1
            heapq.heappush(events, (now + delay + hop(), order, client, "write", False))
        order += 1
    return calls, done_at


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    names = {Jitter.NONE: "exponential, no jitter", Jitter.FULL: "full jitter",
             Jitter.EQUAL: "equal jitter", Jitter.DECORRELATED: "decorrelated jitter"}
    results: dict[Jitter, tuple[float, float]] = {}
    for jitter in names:
        runs = [simulate(args.clients, jitter, seed) for seed in range(1, args.runs + 1)]
        results[jitter] = (statistics.fmean(c for c, _ in runs),
                           statistics.fmean(t for _, t in runs))
    none_calls, none_time = results[Jitter.NONE]
    print(f"{args.clients} clients, one optimistic-concurrency write each; base 5 ms, cap "
          f"2000 ms, hops |N(10 ms, 2 ms)|; mean of {args.runs} seeded runs")
    print(f"{'strategy':<26} {'calls':>9} {'vs none':>8} {'completion ms':>14} {'vs none':>8}")
    for jitter, name in names.items():
        calls, done = results[jitter]
        print(f"{name:<26} {calls:>9.0f} {calls / none_calls:>8.2f} {done * 1000:>14.0f} "
              f"{done / none_time:>8.2f}")
    ratio = results[Jitter.FULL][0] / none_calls
    verdict = "agrees with" if ratio < 0.5 else "does NOT reproduce"
    print(f"full jitter / no jitter calls = {ratio:.2f}: {verdict} the published finding "
          "(full jitter needs fewer than half the calls)")


if __name__ == "__main__":
    main()
