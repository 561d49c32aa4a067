"""Regime edges: config bounds and messages, the exact signal thresholds, every transition's
reason text, sums over several full buckets, and when the detector asks to be polled."""

from __future__ import annotations

import re

import pytest

from venueguard.core.kinds import Kind
from venueguard.core.regime import Regime, RegimeChange, RegimeConfig, RegimeDetector, Signal


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cautious_exit": 5.0}, "each exit threshold must be below its enter threshold"),
        ({"safe_exit": 30.0}, "each exit threshold must be below its enter threshold"),
        ({"cautious_enter": 31.0}, "cautious_enter must be <= safe_enter"),
        ({"intensity_exit": 3.0}, "intensity_exit must be below intensity_enter"),
        ({"bucket_s": 0.0}, "bucket_s, window_s and eval_interval_s must be > 0"),
        ({"window_s": 0.0}, "bucket_s, window_s and eval_interval_s must be > 0"),
        ({"eval_interval_s": 0.0}, "bucket_s, window_s and eval_interval_s must be > 0"),
        ({"history_buckets": 1}, "history_buckets must be >= 2"),
    ],
)
def test_config_errors_say_which_rule(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        RegimeConfig(**kwargs)  # type: ignore[arg-type]


def test_limit_values_are_valid() -> None:
    config = RegimeConfig(cautious_enter=30.0, safe_enter=30.0, bucket_s=0.5, window_s=0.5,
                          eval_interval_s=0.5, history_buckets=2)
    detector = RegimeDetector(config)
    detector.on_outcome(Kind.OVERLOADED, 0.1)
    assert detector.score(0.1) == 60.0 / 0.5          # one 503 per half second
    assert detector.poll(0.1)[0].to is Regime.SAFE


@pytest.mark.parametrize(
    ("score", "intensity", "signal"),
    [(30.0, 0.0, Signal.SEVERE), (10.0, 0.0, Signal.ELEVATED), (10.01, 0.0, Signal.HIGH),
     (5.0, 0.0, Signal.ELEVATED), (0.0, 3.0, Signal.ELEVATED), (0.0, 2.99, Signal.MILD),
     (2.0, 0.0, Signal.CALM), (2.01, 0.0, Signal.MILD), (0.0, 2.0, Signal.CALM)],
)
def test_signal_thresholds(score: float, intensity: float, signal: Signal) -> None:
    """enter thresholds are inclusive (>=), exit thresholds exclusive (>)."""
    assert RegimeDetector().signal(score, intensity) is signal


def test_every_transition_has_its_reason_and_readings() -> None:
    detector = RegimeDetector(RegimeConfig(min_dwell_s=10.0))
    detector.on_intensity(3.5, 0.0)
    assert detector.poll(1.0) == [RegimeChange(
        Regime.NORMAL, Regime.CAUTIOUS, "market intensity 3.50 >= 3", 0.0, 3.5, 1.0)]
    for i in range(6):
        detector.on_outcome(Kind.OVERLOADED, 2.0 + i / 10)
    detector.on_intensity(0.5, 2.0)
    assert detector.poll(3.0) == []                    # already CAUTIOUS
    detector.on_outcome(Kind.AMBIGUOUS_TIMEOUT, 3.0)
    for i in range(12):
        detector.on_outcome(Kind.AMBIGUOUS_TIMEOUT, 3.0 + i / 100)
    assert detector.poll(4.0) == [RegimeChange(
        Regime.CAUTIOUS, Regime.SAFE, "score 32.0/min >= safe_enter 30", 32.0, 0.5, 4.0)]
    assert detector.poll(130.0) == [RegimeChange(
        Regime.SAFE, Regime.RECOVERING, "score 0.0/min <= safe_exit 10 after 10 s in SAFE",
        0.0, 0.5, 130.0)]
    assert detector.poll(140.0) == [RegimeChange(
        Regime.RECOVERING, Regime.NORMAL,
        "score 0.0/min <= cautious_exit 2 and intensity 0.50 <= 2", 0.0, 0.5, 140.0)]


def test_errors_make_it_cautious_with_the_score_as_reason() -> None:
    detector = RegimeDetector()
    for i in range(5):
        detector.on_outcome(Kind.OVERLOADED, 1.0 + i / 10)
    (change,) = detector.poll(2.0)
    assert change.reason == "score 5.0/min >= cautious_enter 5"


def test_a_window_of_several_buckets_sums_every_full_bucket() -> None:
    detector = RegimeDetector(RegimeConfig(bucket_s=60.0, window_s=180.0))
    for minute in range(3):
        for _ in range(3):
            detector.on_outcome(Kind.OVERLOADED, 60.0 * minute + 1.0)
    assert detector.score(180.0) == pytest.approx(9.0 * 60.0 / 180.0)


def test_intensity_is_kept_as_given_and_never_negative() -> None:
    detector = RegimeDetector()
    assert detector.intensity == 0.0
    detector.on_intensity(0.5, 1.0)
    assert detector.intensity == 0.5
    detector.on_intensity(-2.0, 2.0)
    assert detector.intensity == 0.0
    assert detector.buckets()[-1].intensity_max == 0.5


def test_ok_outcomes_are_counted() -> None:
    detector = RegimeDetector()
    for t in (1.0, 2.0, 3.0):
        detector.on_outcome(Kind.OK, t)
    assert detector.buckets()[-1].nok == 3


def test_idle_detector_asks_for_no_poll() -> None:
    """Calm intensity at the exit threshold, or a minute of successes, needs no polling."""
    detector = RegimeDetector(RegimeConfig(intensity_exit=0.5, intensity_enter=1.0))
    assert detector.next_deadline() is None
    detector.on_intensity(0.5, 1.0)
    detector.on_outcome(Kind.OK, 2.0)
    assert detector.next_deadline() is None


@pytest.mark.parametrize("kind", [Kind.OVERLOADED, Kind.AMBIGUOUS_TIMEOUT, Kind.BAD_REQUEST])
def test_any_failure_in_the_last_minute_asks_for_a_poll(kind: Kind) -> None:
    """Before the first poll the period counts from creation time (default 0)."""
    detector = RegimeDetector(RegimeConfig(eval_interval_s=5.0))
    detector.on_outcome(kind, 1.0)
    assert detector.next_deadline() == 5.0
    later = RegimeDetector(RegimeConfig(eval_interval_s=5.0), now=100.0)
    later.on_outcome(kind, 101.0)
    assert later.next_deadline() == 105.0


def test_a_regime_other_than_normal_keeps_polling_without_failures() -> None:
    detector = RegimeDetector(RegimeConfig(eval_interval_s=5.0))
    detector.on_intensity(9.0, 0.0)
    detector.poll(1.0)
    detector.on_intensity(0.0, 1.0)
    assert detector.regime is Regime.CAUTIOUS
    assert detector.next_deadline() == 6.0
    safe = RegimeDetector(RegimeConfig(eval_interval_s=5.0))
    for _ in range(30):
        safe.on_outcome(Kind.OVERLOADED, 1.0)
    safe.poll(2.0)
    safe.on_outcome(Kind.OK, 61.0)                     # a new minute without failures
    assert safe.regime is Regime.SAFE and safe.next_deadline() == 7.0


def test_a_bucket_starting_exactly_at_the_window_edge_counts_whole() -> None:
    """0.1 s buckets: the bucket of 0.1 * 3 starts exactly at the edge of the window ending at
    0.4, so it counts fully (no partial weight that rounds to 0.9999999999999998)."""
    detector = RegimeDetector(RegimeConfig(bucket_s=0.1, window_s=0.1, eval_interval_s=0.1))
    detector.on_outcome(Kind.OVERLOADED, 0.1 * 3)
    assert detector.buckets()[-1].start_s == 0.4 - 0.1
    assert detector.score(0.4) == 600.0
