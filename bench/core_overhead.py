"""Cost of the sans-I/O core per decision: microseconds per classified outcome and per liveness
update, measured with timeit. Target: under 5 us each on the machine running it.

Run: .venv/bin/python bench/core_overhead.py
"""

from __future__ import annotations

import random
import timeit
from collections.abc import Callable

from venueguard.core.classify import Outcome, Transport, classify
from venueguard.core.health import VenueHealth
from venueguard.core.liveness import Liveness, LivenessConfig
from venueguard.core.rules import default_rules
from venueguard.venues.bitmex import errors as bx

TARGET_US = 5.0


def per_call_us(fn: Callable[[], object], number: int) -> float:
    """Best of five runs of ``number`` calls, in microseconds per call."""
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def main() -> int:
    rules = default_rules()
    headers = {"Content-Type": "application/json", "x-ratelimit-limit": "120",
               "x-ratelimit-remaining": "97", "x-ratelimit-reset": "1700000000"}
    outcomes = {
        "200 ok + rate-limit headers": Outcome(status=200, headers=headers, body=[]),
        "503 overloaded (decoded JSON)": Outcome(
            status=503, body=bx.rest_error_body(bx.OVERLOADED)),
        "400 invalid ordStatus (decoded)": Outcome(
            status=400, body=bx.rest_error_body(bx.invalid_ord_status_text("Filled"))),
        "429 with headers (raw bytes)": Outcome(
            status=429, headers={**headers, "Retry-After": "1"},
            body=b'{"error":{"message":"Rate limit exceeded, retry in 1 seconds.",'
                 b'"name":"RateLimitError"}}'),
        "502 HTML page": Outcome(status=502, body=bx.BAD_GATEWAY_HTML),
        "read timeout after send": Outcome(transport=Transport.READ_TIMEOUT, sent=True),
    }
    results: list[tuple[str, float]] = []
    for label, outcome in outcomes.items():
        results.append((f"classify: {label}",
                        per_call_us(lambda o=outcome: classify(o, rules), 20_000)))

    rng = random.Random(1)
    texts = [f"Invalid price: {rng.random()}" for _ in range(10_000)]
    cold = iter(texts * 100)
    results.append(("classify: unseen text each call (no memo hit)",
                    per_call_us(lambda: classify(Outcome(status=400, body={"error": {
                        "message": next(cold), "name": "HTTPError"}}), rules), 10_000)))

    health = VenueHealth(rules)
    ok = classify(Outcome(status=200, body=[]), rules)
    clock = iter(range(10**9))
    results.append(("health.on_outcome(ok, latency)",
                    per_call_us(lambda: health.on_outcome(ok, next(clock) * 0.001,
                                                          latency_s=0.05), 20_000)))

    live = Liveness(LivenessConfig(), 0.0)
    for channel in ("orderBookL2:XBTUSD", "trade:XBTUSD", "quote:XBTUSD", "order"):
        live.on_subscribed(channel, 0.0)
    tick = iter(range(10**9))

    def update_plain() -> None:
        n = next(tick)
        live.on_data("orderBookL2:XBTUSD", n * 1e-4)

    def update_checked() -> None:
        n = next(tick)
        live.on_data("orderBookL2:XBTUSD", n * 1e-4, ts_ms=1_700_000_000_000 + n,
                     wall_ms=1_700_000_000_050 + n, key=n)

    def update_and_poll() -> None:
        n = next(tick)
        now = n * 1e-4
        live.on_data("trade:XBTUSD", now, ts_ms=1_700_000_000_000 + n,
                     wall_ms=1_700_000_000_050 + n, key=n)
        live.poll(now)

    results.append(("liveness.on_data (no timestamp)", per_call_us(update_plain, 50_000)))
    results.append(("liveness.on_data (timestamp + order + duplicate checks)",
                    per_call_us(update_checked, 50_000)))
    results.append(("liveness.on_data + poll (4 channels)", per_call_us(update_and_poll, 50_000)))

    width = max(len(label) for label, _ in results)
    print(f"{'operation':<{width}}  us/call  vs target {TARGET_US:g} us")
    worst = 0.0
    for label, us in results:
        worst = max(worst, us)
        print(f"{label:<{width}}  {us:7.2f}  {us / TARGET_US:5.2f}x {'ok' if us < TARGET_US else 'OVER'}")
    print(f"worst: {worst:.2f} us/call ({'within' if worst < TARGET_US else 'over'} the target)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
