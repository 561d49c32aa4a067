"""Which inter-arrival model decides staleness: measured on the trading day and a real capture.

Each model sees every channel's arrivals on the injected clock; a gap that reaches the model's
threshold (in force at the previous arrival) counts as a false stale, since none of these
streams ever died, and is not learned. All share the same rules around the model: phi 8, floor
1 s, maximum 120 s, the static threshold until 30 gaps over 30 s. The models:

- ``normal``: phi with a normal tail on the gaps (Akka's accrual detector), mean and standard
  deviation of the last 1,000 gaps;
- ``exponential``: phi with an exponential on the gaps (Cassandra's), mean of the last 1,000;
- ``learned``: venueguard's (:mod:`venueguard.core.freshness`): decayed gap histograms, a long
  and a recent one, with a peaks-over-threshold exponential tail.

Printed per model: false stale events over the whole day (three seeds; every public channel of
a liquid and a thin symbol, the session's static bounds, trades quiet as on a native session),
the same with trades watched too (60 s, as a guarded ccxt exchange watches them), on the
Binance capture looped ten times (the channels a guarded ccxt exchange watches, its static
bounds), and the median threshold of the liquid book during trading hours (how soon it would
catch a dead book).

    .venv/bin/python bench/freshness_models.py
"""

from __future__ import annotations

import math
import os
import statistics
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from statistics import NormalDist

import orjson

from venueguard.ccxt.streams import StreamConfig
from venueguard.core.freshness import ChannelFreshness, FreshnessConfig
from venueguard.core.liveness import DEFAULT_QUIET_CHANNELS
from venueguard.io.ws_session import default_liveness
from venueguard.sim.engine import Engine
from venueguard.sim.instruments import instruments_for
from venueguard.sim.scenario import MarketBurst, ScenarioRunner, load_scenario

PHI = 8.0
FLOOR_S, MAX_S = 1.0, 120.0
WARMUP, WARMUP_S = 30, 30.0
LIQUID = "orderBookL2:XBTUSD"


class Windowed:
    """A phi detector over the last 1,000 gaps with a fixed tail (normal or exponential)."""

    def __init__(self, static_s: float, tail: str) -> None:
        self.static_s = static_s
        self.tail = tail
        self.gaps: deque[float] = deque(maxlen=1000)
        self.first: float | None = None
        self.last: float | None = None
        self.threshold_s = static_s
        self.z = NormalDist().inv_cdf(1 - 10 ** -PHI)

    def on_arrival(self, now: float) -> bool:
        """Feed one arrival; True when its gap was a (false) stale."""
        last, self.last = self.last, now
        if last is None:
            return False
        gap = now - last
        if gap < 0.001:
            return False
        if gap >= self.threshold_s:
            return True
        self.gaps.append(gap)
        self.first = now if self.first is None else self.first
        if len(self.gaps) >= WARMUP and now - self.first >= WARMUP_S:
            mean = statistics.fmean(self.gaps)
            if self.tail == "normal":
                std = max(statistics.pstdev(self.gaps), 0.1 * mean)  # Akka's floor on std
                learned = mean + self.z * std
            else:
                learned = mean * PHI * math.log(10)
            self.threshold_s = min(max(learned, FLOOR_S), MAX_S)
        return False


class Learned:
    """venueguard's detector behind the same interface."""

    def __init__(self, static_s: float) -> None:
        self.detector = ChannelFreshness(FreshnessConfig(suspicion=PHI, floor_s=FLOOR_S,
                                                         max_s=MAX_S, warmup=WARMUP,
                                                         warmup_s=WARMUP_S), static_s)

    @property
    def threshold_s(self) -> float:
        return self.detector.threshold_s

    def on_arrival(self, now: float) -> bool:
        stalls = self.detector.stalls
        self.detector.on_arrival(now)
        return self.detector.stalls > stalls


Factory = Callable[[float], Windowed | Learned]
MODELS: dict[str, Factory] = {
    "normal": lambda s: Windowed(s, "normal"),
    "exponential": lambda s: Windowed(s, "exponential"),
    "learned": Learned,
}


def trading_day(seed: int) -> list[tuple[float, str]]:
    """(time, channel) of every published message of the compressed day (10 ms frames)."""
    scenario = load_scenario("trading-day")
    start = 1_795_435_200_000
    engine = Engine(instruments_for(("XBTUSD", "SOLUSDT")), seed=seed, rate_msgs_s=50.0,
                    start_ms=start, market_params=scenario.market_params(),
                    **scenario.engine_options())
    runner = ScenarioRunner(scenario)
    out: list[tuple[float, str]] = []
    for step in range(1, 72_001):
        now = step / 100.0
        for item in runner.due(now):
            if isinstance(item, MarketBurst):
                engine.burst(item.size, item.symbol, start + step * 10, item.move_pct)
        engine.advance(start + step * 10)
        out += [(now, c) for c in sorted({f"{u.table}:{u.symbol}"
                                          for u in engine.drain_updates()})]
    return out


def binance_looped() -> list[tuple[float, str]] | None:
    root = Path(__file__).resolve().parents[1]
    path = Path(os.environ.get("VENUEGUARD_BINANCE_FIXTURES",
                               root.parent / "shared" / "binance" / "fixtures"))
    path /= "BINANCE_FUTURES.ws"
    if not path.exists():
        return None
    kinds = {"depth@100ms": "orderbook", "bookTicker": "ticker", "aggTrade": "trades"}
    rows = []
    for line in path.read_text().splitlines()[1:]:
        received, _, body = line.partition(": ")
        symbol, _, stream = orjson.loads(body)["stream"].partition("@")
        if stream in kinds:  # what a guarded ccxt exchange watches (klines: not)
            rows.append((float(received), f"{kinds[stream]}:{symbol.upper()}"))
    t0, t1 = rows[0][0], rows[-1][0]
    period = t1 - t0 + 0.1
    return [(t - t0 + k * period, s) for k in range(10) for t, s in rows]


def run(events: list[tuple[float, str]], factory: Factory, static: Callable[[str], float | None]
        ) -> tuple[int, list[float]]:
    models: dict[str, Windowed | Learned] = {}
    stale = 0
    liquid: list[float] = []
    for now, channel in events:
        model = models.get(channel)
        if model is None:
            bound = static(channel)
            if bound is None:
                continue
            model = models[channel] = factory(bound)
        stale += model.on_arrival(now)
        if channel == LIQUID and 60 <= now <= 630:
            liquid.append(model.threshold_s)
    return stale, liquid


def main() -> None:
    session = default_liveness()
    day_static = session.max_age_for
    trades_watched = replace(session, quiet_channels=DEFAULT_QUIET_CHANNELS, channel_max_age_s={
        **session.channel_max_age_s, "trade": 60.0}).max_age_for
    guarded_static = StreamConfig().liveness().max_age_for
    days = [trading_day(seed) for seed in (1, 2, 3)]
    binance = binance_looped()
    print("phi 8, floor 1 s, max 120 s; false stale events (no stream ever died)")
    print(f"  {'model':<12} {'trading day x3':>15} {'+ trades watched':>17} {'Binance x10':>12} "
          f"{'liquid book threshold (median, trading hours)':>48}")
    for name, factory in MODELS.items():
        total = with_trades = 0
        thresholds: list[float] = []
        for events in days:
            stale, liquid = run(events, factory, day_static)
            total += stale
            thresholds += liquid
            with_trades += run(events, factory, trades_watched)[0]
        on_binance = "absent" if binance is None else str(run(binance, factory,
                                                              guarded_static)[0])
        print(f"  {name:<12} {total:>15} {with_trades:>17} {on_binance:>12} "
              f"{statistics.median(thresholds):>46.2f} s")


if __name__ == "__main__":
    main()
