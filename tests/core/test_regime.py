"""Outage regime: NORMAL / CAUTIOUS / SAFE / RECOVERING with hysteresis and a minimum dwell."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from venueguard.core.kinds import ORDER_ANSWER_KINDS, Kind
from venueguard.core.regime import Regime, RegimeChange, RegimeConfig, RegimeDetector

CONFIG = RegimeConfig(min_dwell_s=120.0)


def errors(detector: RegimeDetector, kind: Kind, n: int, start: float, spread_s: float = 1.0
           ) -> None:
    for i in range(n):
        detector.on_outcome(kind, start + spread_s * i / max(n, 1))


def run(detector: RegimeDetector, start: float, end: float, step: float = 1.0
        ) -> list[RegimeChange]:
    out: list[RegimeChange] = []
    t = start
    while t <= end:
        out += detector.poll(t)
        t += step
    return out


def test_gauges() -> None:
    assert [r.gauge for r in Regime] == [0, 1, 2, 3]


def test_503s_make_it_cautious_at_once() -> None:
    detector = RegimeDetector(CONFIG)
    errors(detector, Kind.OVERLOADED, 4, 10.0)
    assert detector.poll(11.0) == []
    detector.on_outcome(Kind.OVERLOADED, 11.5)
    (change,) = detector.poll(12.0)
    assert (change.from_, change.to) == (Regime.NORMAL, Regime.CAUTIOUS)
    assert "cautious_enter 5" in change.reason and change.score == pytest.approx(5.0)


def test_storm_goes_straight_to_safe() -> None:
    detector = RegimeDetector(CONFIG)
    errors(detector, Kind.OVERLOADED, 30, 0.0, spread_s=20.0)
    (change,) = detector.poll(20.0)
    assert change.to is Regime.SAFE and "safe_enter 30" in change.reason


@pytest.mark.parametrize("answer", sorted(ORDER_ANSWER_KINDS, key=lambda k: k.value))
def test_answers_about_one_order_are_not_failures(answer: Kind) -> None:
    """A runtime asking about an order in doubt hears "no such order" many times a minute
    until the order shows (a Binance lookup by client id answers 400 -2013): that is the
    answer it asked for, and it must not push the regime to SAFE, where lookups are rationed."""
    detector = RegimeDetector(CONFIG)
    errors(detector, answer, 200, 0.0, spread_s=30.0)
    assert detector.score(30.0) == 0.0
    assert detector.poll(30.0) == [] and detector.regime is Regime.NORMAL
    assert detector.buckets()[-1].nok == 200
    errors(detector, Kind.BAD_REQUEST, 60, 31.0, spread_s=5.0)   # other failures still count
    assert detector.score(36.0) == pytest.approx(30.0)
    assert [c.to for c in detector.poll(36.0)] == [Regime.SAFE]


def test_timeouts_weigh_more_than_other_errors() -> None:
    detector = RegimeDetector(CONFIG)
    errors(detector, Kind.AMBIGUOUS_TIMEOUT, 3, 0.0)
    assert detector.score(1.0) == pytest.approx(6.0)
    errors(detector, Kind.FORBIDDEN, 4, 1.0)
    detector.on_outcome(Kind.OK, 1.5)
    assert detector.score(2.0) == pytest.approx(8.0)


def test_hysteresis_holds_cautious_between_exit_and_enter() -> None:
    detector = RegimeDetector(CONFIG)
    errors(detector, Kind.OVERLOADED, 6, 0.0)
    assert [c.to for c in detector.poll(1.0)] == [Regime.CAUTIOUS]
    # from now on three 503s a minute: below enter (5), above exit (2)
    for minute in range(1, 10):
        errors(detector, Kind.OVERLOADED, 3, minute * 60.0, spread_s=59.0)
        assert run(detector, minute * 60.0 + 59.0, minute * 60.0 + 59.0) == []
    assert detector.regime is Regime.CAUTIOUS


def test_back_to_normal_only_after_the_dwell() -> None:
    detector = RegimeDetector(CONFIG)
    errors(detector, Kind.OVERLOADED, 6, 0.0)
    detector.poll(1.0)
    changes = run(detector, 2.0, 400.0)
    assert [(c.from_, c.to) for c in changes] == [(Regime.CAUTIOUS, Regime.NORMAL)]
    assert changes[0].at == pytest.approx(121.0)  # calm from ~61 s, dwell ends 120 s after entry
    assert "cautious_exit 2" in changes[0].reason


def test_safe_recovering_normal_cycle() -> None:
    detector = RegimeDetector(CONFIG)
    errors(detector, Kind.OVERLOADED, 40, 0.0, spread_s=30.0)
    changes = run(detector, 30.0, 1000.0)
    assert [(c.from_, c.to) for c in changes] == [
        (Regime.NORMAL, Regime.SAFE), (Regime.SAFE, Regime.RECOVERING),
        (Regime.RECOVERING, Regime.NORMAL)]
    safe, recovering, normal = changes
    assert recovering.at == pytest.approx(safe.at + 120.0)
    assert normal.at == pytest.approx(recovering.at + 120.0)
    assert "safe_exit 10" in recovering.reason


def test_relapse_while_recovering_returns_to_safe() -> None:
    detector = RegimeDetector(CONFIG)
    errors(detector, Kind.OVERLOADED, 40, 0.0, spread_s=30.0)
    run(detector, 30.0, 160.0)
    assert detector.regime is Regime.RECOVERING
    errors(detector, Kind.OVERLOADED, 12, 170.0)  # above safe_exit, below safe_enter: holds
    assert detector.poll(172.0) == [] and detector.regime is Regime.RECOVERING
    errors(detector, Kind.OVERLOADED, 25, 173.0)
    assert [c.to for c in detector.poll(175.0)] == [Regime.SAFE]


def test_market_intensity_alone_means_cautious() -> None:
    detector = RegimeDetector(CONFIG)
    detector.on_intensity(3.5, 0.0)
    (change,) = detector.poll(0.0)
    assert change.to is Regime.CAUTIOUS and "intensity 3.50" in change.reason
    detector.on_intensity(2.5, 130.0)  # between exit (2) and enter (3): holds
    assert detector.poll(130.0) == []
    detector.on_intensity(1.0, 140.0)
    assert [c.to for c in detector.poll(140.0)] == [Regime.NORMAL]


def test_sliding_window_weights_the_previous_minute() -> None:
    detector = RegimeDetector(CONFIG)
    errors(detector, Kind.OVERLOADED, 10, 0.0)  # bucket [0, 60)
    assert detector.score(60.0) == pytest.approx(10.0)
    assert detector.score(90.0) == pytest.approx(5.0)  # half of the bucket still inside
    assert detector.score(120.0) == 0.0


def test_buckets_are_per_minute_and_bounded() -> None:
    detector = RegimeDetector(RegimeConfig(history_buckets=3))
    for minute in range(5):
        detector.on_outcome(Kind.OVERLOADED, minute * 60.0)
        detector.on_outcome(Kind.AMBIGUOUS_TIMEOUT, minute * 60.0 + 1)
        detector.on_outcome(Kind.OK, minute * 60.0 + 2)
        detector.on_intensity(minute, minute * 60.0 + 3)
    buckets = detector.buckets()
    assert [b.start_s for b in buckets] == [120.0, 180.0, 240.0]
    assert [(b.n503, b.ntimeout, b.nother, b.nok) for b in buckets] == [(1, 1, 0, 1)] * 3
    assert buckets[-1].intensity_max == 4.0


def test_next_deadline() -> None:
    detector = RegimeDetector(RegimeConfig(eval_interval_s=5.0))
    assert detector.next_deadline() is None
    detector.on_outcome(Kind.OVERLOADED, 10.0)
    detector.poll(10.0)
    assert detector.next_deadline() == 15.0
    detector.on_intensity(9.0, 11.0)
    detector.poll(11.0)
    assert detector.regime is Regime.CAUTIOUS and detector.next_deadline() == 16.0


@pytest.mark.parametrize(
    "kwargs",
    [{"cautious_exit": 5.0}, {"safe_exit": 40.0}, {"cautious_enter": 31.0, "cautious_exit": 2.0},
     {"intensity_exit": 3.0}, {"bucket_s": 0.0}, {"history_buckets": 1}],
)
def test_bad_config_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RegimeConfig(**kwargs)  # type: ignore[arg-type]


@given(st.lists(st.tuples(st.floats(0.0, 90.0), st.integers(0, 40), st.floats(0.0, 6.0)),
                max_size=40))
def test_property_downward_moves_respect_the_dwell(steps: list[tuple[float, int, float]]) -> None:
    detector = RegimeDetector(CONFIG)
    now = 0.0
    entered = 0.0
    for gap, n503, intensity in steps:
        now += gap
        errors(detector, Kind.OVERLOADED, n503, now)
        detector.on_intensity(intensity, now)
        for change in detector.poll(now):
            down = (change.from_, change.to) in {(Regime.CAUTIOUS, Regime.NORMAL),
                                                 (Regime.SAFE, Regime.RECOVERING),
                                                 (Regime.RECOVERING, Regime.NORMAL)}
            if down:
                assert now >= entered + CONFIG.min_dwell_s
            entered = now
