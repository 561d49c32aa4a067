"""The failure-mode playbook evaluated on hand-built recordings (pure)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import pytest

from venueguard.core.playbook import (
    PLAYBOOK,
    Event,
    Finding,
    Recording,
    Sample,
    Series,
    Verdict,
    bucket_size_s,
    correlation,
    evaluate,
    increments,
    percentile,
)

T0 = 1_700_000_000.0


def samples(key: tuple[str, str], points: Iterable[tuple[float, float]]) -> list[Sample]:
    return [Sample(T0 + t, key[0], key[1], v) for t, v in points]


def ev(t: float, name: str, **fields: object) -> Event:
    return Event(T0 + t, name, fields)


def by_key(findings: list[Finding]) -> dict[str, Finding]:
    return {f.symptom.key: f for f in findings}


def calm_run(seconds: int = 120) -> list[Sample]:
    out: list[Sample] = []
    out += samples(Series.SPREAD, ((t, 0.5) for t in range(seconds)))
    out += samples(Series.DATA_AGE_S, ((t, 0.1) for t in range(seconds)))
    out += samples(Series.REQUESTS_TOTAL, ((t, t // 5) for t in range(seconds)))
    out += samples(Series.RETRIES_TOTAL, ((t, 0) for t in range(seconds)))
    out += samples(Series.HTTP_503_TOTAL, ((t, 0) for t in range(seconds)))
    out += samples(Series.SNAPSHOTS_TOTAL, ((t, t) for t in range(seconds)))
    out += samples(Series.SNAPSHOTS_MISSING_TOTAL, ((t, 0) for t in range(seconds)))
    out += samples(Series.RECONNECTS_TOTAL, ((t, 0) for t in range(seconds)))
    out += samples(Series.LATENCY_MS, ((t, 40.0) for t in range(0, seconds, 5)))
    out += samples(Series.POSITION, ((t, 0) for t in range(seconds)))
    return out


def test_the_playbook_has_eight_distinct_symptoms() -> None:
    assert len(PLAYBOOK) == 8
    assert len({s.key for s in PLAYBOOK}) == 8
    assert all(s.symptom and s.likely_cause and s.first_check for s in PLAYBOOK)


def test_empty_recording_is_no_data_everywhere() -> None:
    findings = evaluate(Recording([], []))
    assert [f.symptom for f in findings] == list(PLAYBOOK)
    assert all(f.verdict is Verdict.NO_DATA for f in findings)
    assert all(f.evidence for f in findings)


def test_a_calm_monitor_run_sees_nothing_and_says_why() -> None:
    found = by_key(evaluate(Recording(calm_run(), [])))
    for key in ("ws_frozen", "snapshots_stalled", "spread_with_503", "unexplained_position",
                "retry_cascade", "backtest_vs_live"):
        assert found[key].verdict is Verdict.NOT_SEEN, key
        assert found[key].first_seen_ts is None
    # Without orders, the order symptoms cannot be judged.
    assert found["orders_missing"].verdict is Verdict.NO_DATA
    assert found["cancel_then_fill"].verdict is Verdict.NO_DATA
    assert "0 retries for 23 requests sent" in found["retry_cascade"].evidence[0]


def test_spread_jumping_with_503s_is_seen_with_numbers() -> None:
    recorded = [s for s in calm_run(600) if (s.kind, s.name) not in
                {Series.SPREAD, Series.HTTP_503_TOTAL}]
    # 503s only in minutes 3 and 7, and the spread widens exactly then.
    errors, total = [], 0
    spread = []
    for t in range(600):
        hot = t // 60 in (3, 7)
        if hot and t % 4 == 0:
            total += 1
        errors.append((t, total))
        spread.append((t, 3.0 if hot else 0.5))
    recorded += samples(Series.HTTP_503_TOTAL, errors) + samples(Series.SPREAD, spread)
    found = by_key(evaluate(Recording(recorded, [])))
    f = found["spread_with_503"]
    assert f.verdict is Verdict.SEEN
    assert "503s in 2 of 10 buckets of 60 s (30 in all)" in f.evidence[0]
    assert "x6.00" in f.evidence[1]
    assert f.first_seen_ts is not None and f.first_seen_ts >= T0 + 150
    # The 503s also break the "venue always accepts" assumption.
    assert found["backtest_vs_live"].verdict is Verdict.SEEN
    assert any("HTTP 503" in e for e in found["backtest_vs_live"].evidence)


def test_503s_without_a_spread_change_are_not_the_spread_symptom() -> None:
    recorded = [s for s in calm_run(600) if (s.kind, s.name) != Series.HTTP_503_TOTAL]
    recorded += samples(Series.HTTP_503_TOTAL, ((t, t // 30) for t in range(600)))
    f = by_key(evaluate(Recording(recorded, [])))["spread_with_503"]
    assert f.verdict is Verdict.NOT_SEEN


def test_frozen_websocket_from_stale_events_and_data_age() -> None:
    recorded = [s for s in calm_run() if (s.kind, s.name) not in
                {Series.DATA_AGE_S, Series.RECONNECTS_TOTAL}]
    recorded += samples(Series.DATA_AGE_S, ((t, 8.0 if 40 <= t < 50 else 0.1) for t in range(120)))
    recorded += samples(Series.RECONNECTS_TOTAL, ((t, 1 if t >= 50 else 0) for t in range(120)))
    events = [ev(45, "ws.stale", reason="data_age")]
    f = by_key(evaluate(Recording(recorded, events)))["ws_frozen"]
    assert f.verdict is Verdict.SEEN
    assert "1 stale detections (data_age 1); 1 reconnects" in f.evidence[0]
    assert "max data age 8.0 s (10 seconds above 5 s)" in f.evidence[1]
    assert f.first_seen_ts == T0 + 40


def test_missing_snapshots_above_the_ratio_are_seen() -> None:
    recorded = [s for s in calm_run() if s.kind != "snapshot"]
    produced = [(t, min(t, 60) + max(0, t - 80)) for t in range(120)]  # stalls for 20 s
    missing = [(t, max(0, min(t, 80) - 60)) for t in range(120)]
    recorded += samples(Series.SNAPSHOTS_TOTAL, produced)
    recorded += samples(Series.SNAPSHOTS_MISSING_TOTAL, missing)
    f = by_key(evaluate(Recording(recorded, [])))["snapshots_stalled"]
    assert f.verdict is Verdict.SEEN
    assert "99 snapshots taken, 20 missing (16.8%)" in f.evidence[0]
    assert "20.0 s" in f.evidence[1]
    assert f.first_seen_ts == T0 + 61


def test_orders_that_never_show_up() -> None:
    events = [
        ev(1, "order.sent", cl_ord_id="a"), ev(1.2, "order.acked", cl_ord_id="a"),
        ev(2, "order.sent", cl_ord_id="b"), ev(9, "order.acked", cl_ord_id="b"),  # acked 7 s late
        ev(3, "order.sent", cl_ord_id="c"), ev(4, "order.unknown", cl_ord_id="c"),
        ev(118.5, "order.sent", cl_ord_id="d"),  # too close to the end to judge
    ]
    f = by_key(evaluate(Recording(calm_run(), events)))["orders_missing"]
    assert f.verdict is Verdict.SEEN
    assert "4 orders sent, 1 went UNKNOWN, 1 more not acked within 2 s" in f.evidence[0]
    assert f.first_seen_ts == T0 + 2


def test_orders_all_acked_promptly_are_not_seen() -> None:
    events = [ev(1, "order.sent", cl_ord_id="a"), ev(1.5, "order.acked", cl_ord_id="a")]
    f = by_key(evaluate(Recording(calm_run(), events)))["orders_missing"]
    assert f.verdict is Verdict.NOT_SEEN


def test_fill_after_cancel_is_seen() -> None:
    events = [ev(5, "order.canceled", cl_ord_id="x"), ev(6, "order.filled", cl_ord_id="x"),
              ev(7, "order.canceled", cl_ord_id="y"), ev(6.5, "order.filled", cl_ord_id="y")]
    f = by_key(evaluate(Recording(calm_run(), events)))["cancel_then_fill"]
    assert f.verdict is Verdict.SEEN
    assert "2 orders canceled; 1 filled after their cancel" in f.evidence[0]
    assert f.first_seen_ts == T0 + 6


def test_position_change_without_a_fill_is_seen() -> None:
    recorded = [s for s in calm_run() if (s.kind, s.name) != Series.POSITION]
    recorded += samples(Series.POSITION, ((t, 0 if t < 30 else (10 if t < 70 else 25))
                                          for t in range(120)))
    events = [ev(28, "order.filled", cl_ord_id="a")]  # explains the change at t=30 only
    f = by_key(evaluate(Recording(recorded, events)))["unexplained_position"]
    assert f.verdict is Verdict.SEEN
    assert "2 position changes, 1 without a fill" in f.evidence[0]
    assert f.first_seen_ts == T0 + 70


def test_retry_cascade_from_retries_beyond_budget_or_429() -> None:
    recorded = [s for s in calm_run() if (s.kind, s.name) not in
                {Series.RETRIES_TOTAL, Series.REQUESTS_TOTAL}]
    # 2 requests a second; from t=60 every request is retried three times (t=60..79).
    requests, retries, total_req, total_retry = [], [], 0, 0
    for t in range(120):
        total_req += 2
        if 60 <= t < 80:
            total_req += 6
            total_retry += 6
        requests.append((t, total_req))
        retries.append((t, total_retry))
    recorded += samples(Series.REQUESTS_TOTAL, requests) + samples(Series.RETRIES_TOTAL, retries)
    f = by_key(evaluate(Recording(recorded, [])))["retry_cascade"]
    assert f.verdict is Verdict.SEEN
    assert "120 retries for 360 requests sent (33.3%)" in f.evidence[0]
    assert "2 buckets of 10 s" in f.evidence[1] and "(most in one: 60)" in f.evidence[1]
    assert f.first_seen_ts == T0 + 60
    only_429 = [*calm_run(), *samples(Series.HTTP_429_TOTAL, [(10, 0), (11, 3)])]
    f429 = by_key(evaluate(Recording(only_429, [])))["retry_cascade"]
    assert f429.verdict is Verdict.SEEN and f429.first_seen_ts == T0 + 11


def test_a_few_retries_of_a_quiet_client_are_no_cascade() -> None:
    recorded = [s for s in calm_run() if (s.kind, s.name) != Series.RETRIES_TOTAL]
    # 23 requests in 2 minutes, 5 of them retries: a high ratio, but within the floor.
    recorded += samples(Series.RETRIES_TOTAL, ((t, min(5, t // 20)) for t in range(120)))
    f = by_key(evaluate(Recording(recorded, [])))["retry_cascade"]
    assert f.verdict is Verdict.NOT_SEEN
    assert "5 retries for 23 requests sent (21.7%)" in f.evidence[0]


def test_slow_requests_break_the_instant_ack_assumption() -> None:
    recorded = [*calm_run(), *samples(Series.LATENCY_MS, [(50, 4000.0), (51, 3000.0)])]
    f = by_key(evaluate(Recording(recorded, [])))["backtest_vs_live"]
    assert f.verdict is Verdict.SEEN
    assert any("REST p99" in e for e in f.evidence)


def test_non_finite_samples_are_dropped() -> None:
    rec = Recording([Sample(T0, "market", "spread", math.nan), Sample(math.inf, "x", "y", 1.0)],
                    [])
    assert rec.series(Series.SPREAD) == []


def test_helpers() -> None:
    assert increments([(0, 5), (1, 7), (2, 7), (3, 2), (4, 4)]) == [
        (0, 5), (1, 2), (2, 0), (3, 2), (4, 2)]
    assert percentile([1, 2, 3, 4, 5], 50) == 3
    assert percentile([10, 20], 99) == pytest.approx(19.9)
    assert math.isnan(percentile([], 50))
    assert correlation([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert math.isnan(correlation([1, 1, 1], [1, 2, 3]))
    assert bucket_size_s(3600) == 60 and bucket_size_s(8) == 1 and bucket_size_s(240) == 30
