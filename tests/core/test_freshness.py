"""Learned freshness: each channel's threshold from its own inter-arrival model, on plain floats."""

from __future__ import annotations

import random
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from venueguard.core.freshness import ChannelFreshness, FreshnessConfig, FreshnessModels
from venueguard.core.liveness import Liveness, LivenessConfig, StaleDecision

STATIC = 10.0


def feed(detector: ChannelFreshness, start: float, gaps: list[float]) -> float:
    """Arrivals ``gaps`` apart after ``start``; returns the time of the last one."""
    now = start
    detector.on_arrival(now)
    for gap in gaps:
        now += gap
        detector.on_arrival(now)
    return now


def poisson(rate_per_s: float, count: int, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [rng.expovariate(rate_per_s) for _ in range(count)]


def test_static_threshold_until_enough_gaps_over_enough_time() -> None:
    detector = ChannelFreshness(FreshnessConfig(warmup=100, warmup_s=30.0), STATIC)
    detector.on_connect(0.0)
    now = feed(detector, 0.0, [0.02] * 200)          # 200 gaps, but only 4 s of them
    assert (detector.learned, detector.threshold_s, detector.suspicion(now)) == (
        False, STATIC, None)
    now = feed(detector, now + 0.02, [0.02] * 1600)  # past 30 s
    assert detector.learned
    assert detector.threshold_s == 1.0               # a 50/s stream: the floor
    assert detector.suspicion(now) == pytest.approx(0.0, abs=0.01)
    assert detector.suspicion(now + 1.0) is not None
    assert detector.suspicion(now + 1.0) >= 8.0  # type: ignore[operator]


def test_warmup_counts_gaps_not_only_time() -> None:
    detector = ChannelFreshness(FreshnessConfig(warmup=100, warmup_s=1.0), STATIC)
    feed(detector, 0.0, [0.5] * 99)
    assert not detector.learned
    detector.on_arrival(49.5 + 0.5)
    assert detector.learned


def test_while_warming_a_channel_is_never_flagged_for_a_silence_it_has_shown() -> None:
    detector = ChannelFreshness(FreshnessConfig(warmup=1000, max_s=60.0), STATIC)
    now = feed(detector, 0.0, [2.0, 9.0, 1.0])      # a 9 s gap, under the static 10 s
    assert not detector.learned
    assert detector.threshold_s == pytest.approx(2 * 9.0, rel=0.5)  # margin x longest shown
    assert detector.threshold_s > STATIC
    detector.on_arrival(now + 15.0)                  # so 15 s is no stall while warming
    assert detector.stalls == 0
    fresh = ChannelFreshness(FreshnessConfig(warmup=1000), STATIC)
    feed(fresh, 0.0, [0.5] * 20)
    assert fresh.threshold_s == STATIC                # short gaps never tighten the fallback


def test_thin_channel_threshold_widens_past_the_static_one_but_not_past_max() -> None:
    cfg = FreshnessConfig(max_s=60.0)
    detector = ChannelFreshness(cfg, STATIC)
    feed(detector, 0.0, poisson(1 / 2.0, 400))        # a trade every 2 s on average
    assert detector.learned
    assert STATIC < detector.threshold_s <= cfg.max_s
    capped = ChannelFreshness(FreshnessConfig(max_s=12.0), STATIC)
    feed(capped, 0.0, poisson(1 / 2.0, 400))
    assert capped.threshold_s == 12.0


def test_a_static_bound_below_the_floor_is_the_floor() -> None:
    detector = ChannelFreshness(FreshnessConfig(floor_s=1.0), 0.6)  # e.g. a tight test venue
    feed(detector, 0.0, [0.01] * 4000)
    assert detector.learned and detector.threshold_s == 0.6
    default = ChannelFreshness(FreshnessConfig(floor_s=1.0), STATIC)
    feed(default, 0.0, [0.01] * 4000)
    assert default.threshold_s == 1.0


def test_distribution_shift_to_quiet_hours_widens_and_back_to_busy_tightens() -> None:
    cfg = FreshnessConfig(floor_s=0.05, half_life_s=60.0)
    detector = ChannelFreshness(cfg, STATIC)
    now = feed(detector, 0.0, poisson(20.0, 2000, seed=2))   # busy: 20/s for 100 s
    busy = detector.threshold_s
    assert 0.05 < busy < 3.0
    rng = random.Random(3)
    while True:  # quiet hours come over two minutes: the rate falls tenfold
        elapsed = now - 100.0
        if elapsed > 120.0:
            break
        now += rng.expovariate(20.0 * 10 ** (-elapsed / 120.0))
        detector.on_arrival(now)
    now = feed(detector, now + 0.05, poisson(2.0, 200, seed=3))  # quiet: 2/s for 100 s
    quiet = detector.threshold_s
    assert quiet > 3 * busy
    assert detector.stalls == 0                        # the shift itself raised nothing
    feed(detector, now + 0.05, poisson(20.0, 12_000, seed=4))   # busy again for 10 min
    assert detector.threshold_s < quiet / 2


def test_stall_right_after_a_burst_is_caught_by_the_calm_threshold() -> None:
    cfg = FreshnessConfig(floor_s=0.05)
    detector = ChannelFreshness(cfg, STATIC)
    models = FreshnessModels(cfg)
    live = Liveness(LivenessConfig(max_data_age_s=STATIC, ping_after_s=1e6,
                                   pong_timeout_s=1e6, freshness=cfg), 0.0, models)
    channel = "orderBookL2:XBTUSD"
    live.on_subscribed(channel, 0.0)
    now = 0.0
    for gap in poisson(20.0, 1200, seed=5):           # 60 s calm
        now += gap
        live.on_data(channel, now)
        detector.on_arrival(now)
    calm = detector.threshold_s
    for gap in poisson(400.0, 2000, seed=6):          # 5 s burst
        now += gap
        live.on_data(channel, now)
    learned = models.channel(channel, STATIC)
    assert learned.threshold_s <= calm                # the burst tightened, never widened
    assert live.next_deadline() == pytest.approx(now + learned.threshold_s)
    assert live.poll(now + learned.threshold_s - 1e-6) == []
    stale = live.poll(now + learned.threshold_s)
    assert len(stale) == 1 and isinstance(stale[0], StaleDecision)
    assert stale[0].threshold_s == learned.threshold_s < 2.0
    assert stale[0].suspicion is not None and stale[0].suspicion >= cfg.suspicion - 1e-9


def test_a_stall_is_never_learned() -> None:
    detector = ChannelFreshness(FreshnessConfig(), STATIC)
    now = feed(detector, 0.0, poisson(50.0, 3000))
    before = detector.threshold_s
    assert detector.threshold_s == 1.0
    now += 5.0                                         # a 5 s silence: a stall at 1 s
    detector.on_arrival(now)
    assert detector.stalls == 1
    feed(detector, now, poisson(50.0, 500, seed=9))
    assert detector.threshold_s == before             # it did not teach long silences


def test_a_recent_stall_is_not_forgotten_through_a_reconnect_and_a_burst() -> None:
    """A stall, the reconnect after it, then a burst: the burst tightens, the stall taught
    nothing, so the same silence once more is stale again, and well within it."""
    cfg = FreshnessConfig(rewarm=20)
    detector = ChannelFreshness(cfg, STATIC)
    now = feed(detector, 0.0, poisson(50.0, 3000))      # 60 s at 50/s
    calm = detector.threshold_s
    assert detector.suspicion_at(5.0) >= cfg.suspicion   # a 5 s silence is a stall
    now += 5.0
    detector.on_arrival(now)                             # ... that ended without a reconnect
    detector.on_connect(now + 0.5)                       # and one that ended with one
    now = feed(detector, now + 1.0, poisson(400.0, 2000, seed=7))   # 5 s burst
    now = feed(detector, now + 0.02, poisson(50.0, 500, seed=8))    # 10 s calm
    assert detector.stalls == 1 and detector.learned
    assert detector.threshold_s <= calm < 5.0
    assert detector.suspicion_at(5.0) >= cfg.suspicion   # the same silence is a stall again


def test_memory_stays_constant_however_long_the_channel_lives() -> None:
    detector = ChannelFreshness(FreshnessConfig(), STATIC)
    now = feed(detector, 0.0, poisson(50.0, 5000))
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for rate, seed in ((500.0, 11), (5.0, 12), (50.0, 13)):   # 150,000 more gaps
            now = feed(detector, now + 0.01, poisson(rate, 50_000, seed=seed))
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename")
                if stat.traceback[0].filename.endswith("freshness.py"))
    # the bins' floats (a few KB), not a window: 150,000 gaps kept would take over a megabyte
    assert grown < 16_000
    assert detector.learned_gaps > 100_000  # (gaps under 1 ms are one arrival)


def test_reconnect_falls_back_to_static_then_keeps_what_it_learned() -> None:
    cfg = FreshnessConfig(rewarm=20)
    detector = ChannelFreshness(cfg, STATIC)
    now = feed(detector, 0.0, poisson(50.0, 3000))
    assert detector.threshold_s == 1.0
    detector.on_connect(now + 3.0)
    assert (detector.learned, detector.threshold_s) == (False, STATIC)
    # the silence of the reconnect itself (and the image after it) is not a gap
    now = feed(detector, now + 4.0, [0.02] * 19)
    assert detector.stalls == 0 and not detector.learned
    detector.on_arrival(now + 0.02)
    assert (detector.learned, detector.threshold_s) == (True, 1.0)  # no full warm-up again


def test_liveness_tells_its_models_a_connection_started() -> None:
    cfg = FreshnessConfig()
    models = FreshnessModels(cfg)
    live = Liveness(LivenessConfig(freshness=cfg), 0.0, models)
    live.on_subscribed("orderBookL2:XBTUSD", 0.0)
    now = 0.0
    for gap in poisson(50.0, 3000):
        now += gap
        live.on_data("orderBookL2:XBTUSD", now)
    assert dict(models.items())["orderBookL2:XBTUSD"].learned
    Liveness(LivenessConfig(freshness=cfg), now + 1.0, models)
    assert not dict(models.items())["orderBookL2:XBTUSD"].learned


def test_quiet_channels_get_no_model_and_static_mode_stays_available() -> None:
    live = Liveness(LivenessConfig(), 0.0)
    live.on_subscribed("funding:XBTUSD", 0.0)
    live.on_subscribed("order", 0.0)
    live.on_subscribed("orderBookL2:XBTUSD", 0.0)
    assert live.freshness is not None
    assert [name for name, _ in live.freshness.items()] == ["orderBookL2:XBTUSD"]
    static = Liveness(LivenessConfig(freshness=FreshnessConfig(enabled=False)), 0.0)
    assert static.freshness is None
    static.on_subscribed("orderBookL2:XBTUSD", 0.0)
    now = 0.0
    for gap in poisson(50.0, 3000):
        now += gap
        static.on_data("orderBookL2:XBTUSD", now)
    assert static.next_deadline() == pytest.approx(min(now + 30.0, now + 5.0))
    assert static.poll(now + 29.9) != [] and static.status(now + 29.9).stalled == ()
    assert static.status(now + 30.0).stalled == ("orderBookL2:XBTUSD",)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"suspicion": 0.0}, "suspicion"),
    ({"floor_s": 0.0}, "floor_s"),
    ({"floor_s": 5.0, "max_s": 2.0}, "floor_s"),
    ({"warmup": 0}, "warmup"),
    ({"half_life_s": 0.0}, "half_life_s"),
    ({"tail_fraction": 1.0}, "tail_fraction"),
    ({"margin": 0.5}, "margin"),
])
def test_bad_config_is_refused_with_its_name(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FreshnessConfig(**kwargs)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.just(0.0) | st.floats(min_value=0.002, max_value=30.0), min_size=1,
                max_size=400),
       st.floats(min_value=0.05, max_value=2.0), st.floats(min_value=2.0, max_value=90.0))
def test_threshold_is_static_or_clamped_and_suspicion_grows_with_silence(
        gaps: list[float], floor_s: float, max_s: float) -> None:
    cfg = FreshnessConfig(floor_s=floor_s, max_s=max_s, warmup=20, warmup_s=1.0)
    detector = ChannelFreshness(cfg, STATIC)
    now = 0.0
    detector.on_arrival(now)
    for gap in gaps:
        now += gap
        detector.on_arrival(now)
        if detector.learned:
            assert floor_s <= detector.threshold_s <= max_s
        else:  # the static one, or wider where the channel showed longer gaps
            assert STATIC <= detector.threshold_s <= max(STATIC, max_s)
    # messages less than a millisecond apart are one arrival
    assert detector.learned_gaps + detector.stalls == sum(1 for gap in gaps if gap > 0)
    phis = [detector.suspicion_at(s) for s in (0.0, 0.001, 0.1, 1.0, 10.0, 100.0)]
    assert phis == sorted(phis)
