"""The ``trading-day`` scenario: a compressed 24 h market, and learned freshness over all of it.

The day runs sans-I/O: the simulator's engine publishes the scenario's market (sessions, lull,
bursts, flash crash) on a virtual clock, and one connection's liveness checks (the market-data
session's defaults) watch every public channel of both symbols. No venue fault is scheduled, so
every ``ws.stale`` would be a false one. The same day over sockets at real pace is measured by
``bench/freshness_day.py`` (docs/performance.md, "Learned freshness").
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from venueguard.core.freshness import FreshnessConfig, FreshnessModels
from venueguard.core.liveness import (
    DEFAULT_QUIET_CHANNELS,
    Liveness,
    LivenessConfig,
    StaleDecision,
)
from venueguard.io.ws_session import default_liveness
from venueguard.sim.engine import Engine
from venueguard.sim.instruments import instruments_for
from venueguard.sim.scenario import (
    MarketBurst,
    ScenarioError,
    ScenarioRunner,
    load_scenario,
    parse_scenario,
)

SYMBOLS = ("XBTUSD", "SOLUSDT")
TABLES = ("orderBookL2", "orderBookL2_25", "quote", "trade", "instrument")
START_MS = 1_795_435_200_000
STEP_MS = 10


@dataclass
class Day:
    stale: list[StaleDecision]
    messages: dict[str, int]
    thresholds: dict[float, dict[str, float]]  # sampled every 30 s (one simulated hour)
    mids: dict[float, float]  # XBTUSD mid, every second


def run_day(config: LivenessConfig, seed: int, *, until_s: float = 720.0) -> Day:
    scenario = load_scenario("trading-day")
    engine = Engine(instruments_for(SYMBOLS), seed=seed, rate_msgs_s=50.0, start_ms=START_MS,
                    market_params=scenario.market_params(), **scenario.engine_options())
    runner = ScenarioRunner(scenario)
    models = FreshnessModels(config.freshness) if config.freshness.enabled else None
    live = Liveness(replace(config, ping_after_s=1e9, pong_timeout_s=1e9), 0.0, models)
    for table in TABLES:
        for symbol in SYMBOLS:
            live.on_subscribed(f"{table}:{symbol}", 0.0)
    day = Day([], {}, {}, {})
    for step in range(1, int(until_s * 1000 / STEP_MS) + 1):
        now_ms = START_MS + step * STEP_MS
        now = step * STEP_MS / 1000.0
        for item in runner.due(now):
            if isinstance(item, MarketBurst):
                engine.burst(item.size, item.symbol, now_ms, item.move_pct)
        engine.advance(now_ms)
        for channel in {f"{u.table}:{u.symbol}" for u in engine.drain_updates()}:
            day.messages[channel] = day.messages.get(channel, 0) + 1  # one frame per step
            live.on_data(channel, now)
        day.stale += [d for d in live.poll(now) if isinstance(d, StaleDecision)]
        if step % 3000 == 0:
            day.thresholds[now] = dict(live.status(now).thresholds_s)
        if step % 100 == 0:
            day.mids[now] = engine.markets["XBTUSD"].mid_price()
    return day


@pytest.mark.parametrize("seed", [1, 2])
def test_a_whole_day_on_every_channel_raises_no_false_stale(seed: int) -> None:
    day = run_day(default_liveness(), seed)
    assert day.stale == []
    assert set(day.messages) == {f"{t}:{s}" for t in TABLES for s in SYMBOLS}
    # and the liquid book was watched tightly through the trading hours ...
    hours = [s for t, s in day.thresholds.items() if 60 <= t <= 630]
    assert max(s["orderBookL2:XBTUSD"] for s in hours) <= 1.5
    # ... the thin one loosely, past the static 10 s that would have flagged it
    assert max(s["orderBookL2:SOLUSDT"] for s in day.thresholds.values()) > 20.0


def test_with_trades_watched_too_the_learned_thresholds_raise_no_false_stale() -> None:
    """The native session's defaults leave trades quiet; a guarded ccxt exchange watches them
    (60 s for ``watch_trades``). Watched so, the thin symbol's tape (a trade every few seconds
    of the run, silent for tens of seconds in the lull) raises nothing with learned freshness,
    nor does its rarely updated instrument row; the static bounds flag the tape."""
    base = default_liveness()
    watched = replace(base, quiet_channels=DEFAULT_QUIET_CHANNELS,
                      channel_max_age_s={**base.channel_max_age_s, "trade": 60.0})
    day = run_day(watched, 1)
    assert day.stale == []
    assert day.messages["trade:SOLUSDT"] < 720 / 5            # thin: under one per 5 s
    assert day.messages["instrument:SOLUSDT"] < 720 / 5       # rare: the mark every 15 s
    last = day.thresholds[720.0]
    assert last["trade:SOLUSDT"] > 60.0                       # widened past the static bound
    static = run_day(replace(watched, freshness=FreshnessConfig(enabled=False)), 1)
    assert "trade:SOLUSDT" in {s.channel for s in static.stale}


def test_the_static_thresholds_flag_the_thin_channels_on_the_same_day() -> None:
    static = replace(default_liveness(), freshness=FreshnessConfig(enabled=False))
    day = run_day(static, 1)
    flagged = {s.channel for s in day.stale}
    assert flagged and flagged <= {f"{t}:SOLUSDT" for t in TABLES}


def test_the_day_has_its_sessions_lull_bursts_and_flash_crash() -> None:
    scenario = load_scenario("trading-day")
    assert scenario.repeat_s == 720
    assert scenario.activity(405) / scenario.activity(660) > 20  # US open vs the lull
    assert scenario.activity(720 + 405) == scenario.activity(405)  # the day repeats
    crash = [b.burst for b in scenario.bursts if b.burst.move_pct < 0]
    assert crash and crash[0].symbol == "XBTUSD"
    day = run_day(default_liveness(), 1, until_s=500.0)
    before = day.mids[464.0]
    low = min(mid for t, mid in day.mids.items() if 465 <= t <= 470)
    assert low < before * 0.975                       # the crash
    assert day.mids[480.0] > low * 1.02              # and the rebound
    busy = day.messages["orderBookL2:XBTUSD"]
    thin = day.messages["orderBookL2:SOLUSDT"]
    assert busy > 15 * thin


def test_session_rates_and_burst_moves_are_checked_where_written() -> None:
    text = "[[session]]\nat_s = 10\nrate = 1\n[[session]]\nat_s = 5\nrate = 2\n"
    with pytest.raises(ScenarioError, match="time order"):
        parse_scenario(text, source="day.toml")
    with pytest.raises(ScenarioError, match=r"day.toml:1: 'rate' must be > 0"):
        parse_scenario("[[session]]\nat_s = 0\nrate = 0\n", source="day.toml")
    with pytest.raises(ScenarioError, match="move_pct"):
        parse_scenario("[[burst]]\nat_s = 1\nsize = 1\nmove_pct = -80\n", source="day.toml")
    with pytest.raises(ScenarioError, match=r"\[rates\]"):
        parse_scenario("[rates]\nXBTUSD = -1\n", source="day.toml")
    profile = parse_scenario("repeat_s = 100\nmark_interval_s = 2.5\n[rates]\nxbtusd = 0.5\n"
                             "[[session]]\nat_s = 10\nrate = 1\n"
                             "[[session]]\nat_s = 30\nrate = 3\n")
    assert [profile.activity(t) for t in (0, 10, 20, 30, 99, 120)] == [1, 1, 2, 3, 3, 2]
    assert profile.engine_options()["symbol_rates"] == {"XBTUSD": 0.5}
    assert profile.engine_options()["mark_interval_ms"] == 2500
    assert parse_scenario("").engine_options() == {}
