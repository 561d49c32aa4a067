"""The playbook's rules pinned down on tiny recordings: exact evidence texts, the first time a
symptom shows, and the edges of every threshold (ack grace, data age, ratios, windows)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import pytest

from venueguard.core.playbook import (
    PLAYBOOK,
    Event,
    Finding,
    PlaybookConfig,
    Recording,
    Sample,
    Series,
    Verdict,
    bucket_means,
    bucket_size_s,
    bucket_sums,
    correlation,
    evaluate,
    increments,
    percentile,
    total_increase,
)

T0 = 1000.0
SEEN, NOT_SEEN, NO_DATA = Verdict.SEEN, Verdict.NOT_SEEN, Verdict.NO_DATA


def pts(key: tuple[str, str], points: Iterable[tuple[float, float]]) -> list[Sample]:
    return [Sample(T0 + t, key[0], key[1], v) for t, v in points]


def ev(t: float, name: str, **fields: object) -> Event:
    return Event(T0 + t, name, fields)


def finding(key: str, samples: Iterable[Sample] = (), events: Iterable[Event] = (),
            config: PlaybookConfig | None = None) -> tuple[Verdict, tuple[str, ...], float | None]:
    found = {f.symptom.key: f for f in evaluate(Recording(samples, events), config)}
    f = found[key]
    return f.verdict, f.evidence, f.first_seen_ts


# ------------------------------------------------------------------------------ recording
def test_a_recording_sorts_its_inputs_and_spans_samples_and_events() -> None:
    rec = Recording(
        [Sample(T0 + 5, "market", "spread", 2.0), Sample(T0 + 1, "market", "spread", 1.0),
         Sample(T0 + 3, "market", "spread", 1.5), Sample(T0 + 2, "api", "latency_ms", 9.0),
         Sample(T0 + 4, "api", "latency_ms", math.inf), Sample(math.nan, "api", "latency_ms", 1.0)],
        [ev(7, "b"), ev(-2, "a"), ev(0, "b")])
    assert rec.series(Series.SPREAD) == [(T0 + 1, 1.0), (T0 + 3, 1.5), (T0 + 5, 2.0)]
    assert rec.series(Series.LATENCY_MS) == [(T0 + 2, 9.0)]
    assert rec.series(("nope", "nope")) == []
    assert [e.ts for e in rec.events] == [T0 - 2, T0, T0 + 7]
    assert [e.ts for e in rec.named("b")] == [T0, T0 + 7]
    assert (rec.start_ts, rec.end_ts, rec.duration_s) == (T0 - 2, T0 + 7, 9.0)


def test_a_recording_spans_its_samples_when_events_are_inside() -> None:
    rec = Recording(pts(Series.SPREAD, [(3, 1.0), (0, 1.0), (9, 1.0), (5, 1.0)]),
                    [ev(4, "x"), ev(2, "x"), ev(6, "x")])
    assert (rec.start_ts, rec.end_ts) == (T0, T0 + 9)
    only_events = Recording([], [ev(4, "x"), ev(2, "x"), ev(3, "x")])
    assert (only_events.start_ts, only_events.end_ts) == (T0 + 2, T0 + 4)
    empty = Recording([], [])
    assert (empty.start_ts, empty.end_ts, empty.duration_s) == (0.0, 0.0, 0.0)


# ------------------------------------------------------------------------------- helpers
def test_increments_treat_a_drop_as_a_restart() -> None:
    assert increments([]) == []
    assert increments([(0, 3.0), (1, 3.0), (2, 5.0), (3, 1.0), (4, 1.0)]) == [
        (0, 3.0), (1, 0.0), (2, 2.0), (3, 1.0), (4, 0.0)]
    assert increments([(0, -2.0)]) == [(0, -2.0)]
    assert total_increase([(0, 3.0), (1, 5.0), (2, 1.0), (3, 4.0)]) == 9.0
    assert total_increase([]) == 0


def test_bucket_sums_and_means_count_from_the_start() -> None:
    points = [(10.0, 1.0), (14.9, 2.0), (15.0, 4.0), (22.0, 8.0), (9.0, 16.0)]
    assert bucket_sums(points, 10.0, 5.0) == {0: 3.0, 1: 4.0, 2: 8.0, -1: 16.0}
    assert bucket_means(points, 10.0, 5.0) == {0: 1.5, 1: 4.0, 2: 8.0, -1: 16.0}
    assert bucket_means([], 0.0, 1.0) == {} and bucket_sums([], 0.0, 1.0) == {}


def test_percentile_interpolates_linearly() -> None:
    values = [40.0, 10.0, 30.0, 20.0]
    assert percentile(values, 0) == 10.0
    assert percentile(values, 100) == 40.0
    assert percentile(values, 50) == 25.0
    assert percentile(values, 90) == pytest.approx(37.0)
    assert percentile([7.0], 99) == 7.0
    assert percentile([1.0, 2.0, 3.0], 75) == 2.5


def test_correlation_needs_three_varying_points_on_each_side() -> None:
    assert correlation([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]) == pytest.approx(-1.0)
    assert correlation([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0]) == pytest.approx(0.8)
    assert math.isnan(correlation([1.0, 2.0], [1.0, 2.0]))
    assert math.isnan(correlation([1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0]))
    assert math.isnan(correlation([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]))
    assert math.isnan(correlation([5.0, 5.0, 5.0], [1.0, 2.0, 3.0]))


@pytest.mark.parametrize(("duration", "bucket"), [
    (0.0, 1.0), (7.9, 1.0), (8.0, 1.0), (15.9, 1.0), (16.0, 2.0), (40.0, 5.0), (80.0, 10.0),
    (120.0, 15.0), (240.0, 30.0), (479.0, 30.0), (480.0, 60.0), (86400.0, 60.0)])
def test_bucket_size_keeps_about_eight_buckets(duration: float, bucket: float) -> None:
    assert bucket_size_s(duration) == bucket


def test_evaluate_gives_one_finding_per_symptom_in_order() -> None:
    findings = evaluate(Recording([], []), PlaybookConfig())
    assert [f.symptom for f in findings] == list(PLAYBOOK)
    assert findings[0] == Finding(PLAYBOOK[0], NO_DATA,
                                  ("no orders were sent in this recording",), None)


# ------------------------------------------------------------------------ orders_missing
def test_no_orders_is_no_data() -> None:
    assert finding("orders_missing") == (
        NO_DATA, ("no orders were sent in this recording",), None)


def test_orders_missing_counts_late_acks_by_either_id() -> None:
    events = [
        ev(0, "order.sent", cl_ord_id="a"), ev(2.5, "order.acked", cl_ord_id="a"),  # 2.5 s: late
        ev(4, "order.acked", cl_ord_id="a"),
        ev(1, "order.sent", cl_ord_id="", order_id="v"), ev(3, "order.acked", order_id="v"),
        ev(2, "order.sent"),                                     # no id: cannot be judged
        ev(10, "order.unknown", cl_ord_id="u")]
    latency = pts(Series.LATENCY_MS, [(0, 10.0), (1, 20.0), (2, 30.0), (3, 400.0)])
    assert finding("orders_missing", latency, events) == (
        SEEN, ("3 orders sent, 1 went UNKNOWN, 1 more not acked within 2 s",
               "REST latency p50 25 ms, p99 389 ms over 4 requests"), T0)


def test_the_first_ack_counts_and_the_grace_edge_is_on_time() -> None:
    events = [ev(0, "order.sent", cl_ord_id="a"), ev(2, "order.acked", cl_ord_id="a"),
              ev(9, "order.acked", cl_ord_id="a"), ev(9, "order.sent", cl_ord_id="b"),
              ev(11, "order.acked", cl_ord_id="b")]
    assert finding("orders_missing", events=events) == (
        NOT_SEEN, ("2 orders sent, 0 went UNKNOWN, 0 more not acked within 2 s",), None)


def test_an_unacked_order_is_judged_once_the_grace_fits_in_the_recording() -> None:
    cfg = PlaybookConfig(ack_grace_s=1.5)
    judged = [ev(0, "order.sent", cl_ord_id="a"), ev(1.5, "other")]
    assert finding("orders_missing", events=judged, config=cfg) == (
        SEEN, ("1 orders sent, 0 went UNKNOWN, 1 more not acked within 1.5 s",), T0)
    too_recent = [ev(0, "order.sent", cl_ord_id="a"), ev(1.4, "other")]
    assert finding("orders_missing", events=too_recent, config=cfg)[0] is NOT_SEEN


def test_an_unknown_order_is_not_also_counted_late() -> None:
    events = [ev(0, "order.sent", cl_ord_id="a"), ev(5, "order.unknown", cl_ord_id="a"),
              ev(1, "order.unknown", order_id="z")]
    assert finding("orders_missing", events=events) == (
        SEEN, ("1 orders sent, 2 went UNKNOWN, 0 more not acked within 2 s",), T0 + 1)


# ---------------------------------------------------------------------- cancel_then_fill
def test_no_cancel_is_no_data() -> None:
    events = [ev(0, "order.filled", cl_ord_id="a")]
    assert finding("cancel_then_fill", events=events) == (
        NO_DATA, ("no order was canceled in this recording",), None)


def test_a_fill_at_or_after_the_first_cancel_is_seen() -> None:
    events = [ev(5, "order.canceled", cl_ord_id="a"), ev(8, "order.canceled", cl_ord_id="a"),
              ev(5, "order.filled", cl_ord_id="a"),                  # same instant: counts
              ev(6, "order.canceled", order_id="b"), ev(5.5, "order.filled", order_id="b"),
              ev(9, "order.filled", cl_ord_id="c"), ev(9, "order.filled"),
              ev(1, "order.canceled")]
    assert finding("cancel_then_fill", events=events) == (
        SEEN, ("2 orders canceled; 1 filled after their cancel; 0 cancel/fill races resolved "
               "by reconciliation",), T0 + 5)


@pytest.mark.parametrize("word", ["LATE_FILL", "cancel_race", "a Race"])
def test_a_race_resolved_by_reconciliation_is_seen(word: str) -> None:
    events = [ev(1, "order.canceled", cl_ord_id="a"), ev(3, "reconcile.resolved", kind=word),
              ev(2, "reconcile.resolved", kind="adopted")]
    assert finding("cancel_then_fill", events=events) == (
        SEEN, ("1 orders canceled; 0 filled after their cancel; 1 cancel/fill races resolved "
               "by reconciliation",), T0 + 3)


def test_cancels_without_fills_are_not_seen() -> None:
    events = [ev(1, "order.canceled", cl_ord_id="a"), ev(2, "reconcile.resolved", kind="unknown")]
    assert finding("cancel_then_fill", events=events) == (
        NOT_SEEN, ("1 orders canceled; 0 filled after their cancel; 0 cancel/fill races "
                   "resolved by reconciliation",), None)


# ----------------------------------------------------------------------------- ws_frozen
def test_no_market_data_is_no_data() -> None:
    assert finding("ws_frozen", pts(Series.SPREAD, [(0, 1.0)])) == (
        NO_DATA, ("no market-data samples recorded",), None)


def test_reconnects_alone_are_judged() -> None:
    recorded = pts(Series.RECONNECTS_TOTAL, [(0, 0.0), (1, 2.0), (2, 1.0)])
    assert finding("ws_frozen", recorded) == (
        NOT_SEEN, ("0 stale detections (none); 3 reconnects",
                   "max data age 0.0 s (0 seconds above 5 s)"), None)


def test_stale_events_alone_are_judged() -> None:
    events = [ev(3, "ws.stale", reason="silence"), ev(1, "ws.stale"),
              ev(2, "ws.stale", reason="silence")]
    assert finding("ws_frozen", events=events) == (
        SEEN, ("3 stale detections (silence 2, unknown 1); 0 reconnects",
               "max data age 0.0 s (0 seconds above 5 s)"), T0 + 1)


def test_data_older_than_the_limit_is_frozen_and_the_limit_itself_is_not() -> None:
    ages = pts(Series.DATA_AGE_S, [(0, 5.0), (1, 5.25), (2, 7.5), (3, 0.2)])
    trade = pts(Series.LAST_TRADE_AGE_S, [(0, 1.0), (1, 12.25), (2, 3.0)])
    assert finding("ws_frozen", ages + trade) == (
        SEEN, ("0 stale detections (none); 0 reconnects",
               "max data age 7.5 s (2 seconds above 5 s)",
               "longest time since the last trade 12.2 s"), T0 + 1)
    calm = pts(Series.DATA_AGE_S, [(0, 5.0), (1, 1.0)])
    cfg = PlaybookConfig(frozen_data_age_s=4.5)
    assert finding("ws_frozen", calm, config=cfg) == (
        SEEN, ("0 stale detections (none); 0 reconnects",
               "max data age 5.0 s (1 seconds above 4.5 s)"), T0)
    assert finding("ws_frozen", calm)[0] is NOT_SEEN


# --------------------------------------------------------------------- snapshots_stalled
def test_no_snapshot_counters_is_no_data() -> None:
    assert finding("snapshots_stalled") == (NO_DATA, ("no snapshot counters recorded",), None)


def test_idle_snapshot_counters_are_not_seen() -> None:
    recorded = pts(Series.SNAPSHOTS_MISSING_TOTAL, [(0, 0.0), (4, 0.0)])
    assert finding("snapshots_stalled", recorded) == (
        NOT_SEEN, ("0 snapshots taken, 0 missing (0.0%)",
                   "longest stretch without a new snapshot 0.0 s"), None)


def test_the_longest_stretch_counts_from_the_first_snapshot_sample() -> None:
    produced = pts(Series.SNAPSHOTS_TOTAL, [(2, 0.0), (3, 0.0), (6, 0.0), (7, 1.0), (8, 1.0)])
    missing = pts(Series.SNAPSHOTS_MISSING_TOTAL, [(0, 0.0), (8, 0.0)])
    assert finding("snapshots_stalled", produced + missing) == (
        NOT_SEEN, ("1 snapshots taken, 0 missing (0.0%)",
                   "longest stretch without a new snapshot 4.0 s"), None)


def test_missing_snapshots_at_exactly_the_ratio_are_seen() -> None:
    produced = pts(Series.SNAPSHOTS_TOTAL, [(0, 10.0), (1, 19.0), (2, 19.0)])
    missing = pts(Series.SNAPSHOTS_MISSING_TOTAL, [(0, 0.0), (1, 0.0), (2, 1.0)])
    assert finding("snapshots_stalled", produced + missing) == (
        SEEN, ("19 snapshots taken, 1 missing (5.0%)",
               "longest stretch without a new snapshot 1.0 s"), T0 + 2)
    cfg = PlaybookConfig(missing_snapshot_ratio=0.06)
    assert finding("snapshots_stalled", produced + missing, config=cfg) == (
        NOT_SEEN, ("19 snapshots taken, 1 missing (5.0%)",
                   "longest stretch without a new snapshot 1.0 s"), None)


def test_misses_without_any_snapshot_count_from_the_recording_start() -> None:
    recorded = pts(Series.SNAPSHOTS_MISSING_TOTAL, [(1, 0.0), (3, 2.0), (4, 3.0)])
    assert finding("snapshots_stalled", recorded) == (
        SEEN, ("0 snapshots taken, 3 missing (100.0%)",
               "longest stretch without a new snapshot 0.0 s"), T0 + 3)


# ----------------------------------------------------------------------- spread_with_503
END = [ev(16, "end")]     # a recording of 16 s: buckets of 2 s


def spread_run(spread: list[float], errors: list[float]) -> list[Sample]:
    # samples at every second
    return (pts(Series.SPREAD, [(t, v) for t, v in enumerate(spread)])
            + pts(Series.HTTP_503_TOTAL, [(t, v) for t, v in enumerate(errors)]))


def test_no_spread_is_no_data() -> None:
    assert finding("spread_with_503", pts(Series.HTTP_503_TOTAL, [(0, 1.0)])) == (
        NO_DATA, ("no spread samples recorded",), None)


def test_503s_outside_the_spread_buckets_are_not_the_symptom() -> None:
    recorded = (pts(Series.SPREAD, [(0, 1.0), (1, 1.0), (2, 1.0)])
                + pts(Series.HTTP_503_TOTAL, [(0, 0.0), (30, 4.0)]))
    assert finding("spread_with_503", recorded) == (
        NOT_SEEN, ("no 503 alongside the spread (4 in all)",), None)


def test_a_spread_that_widens_with_503s_is_seen_from_its_first_bucket() -> None:
    spread = [1.0, 1.0, 1.0, 1.0, 3.0, 3.0, 1.0, 1.0, 1.0, 1.0, 3.0, 3.0, 1.0, 1.0, 1.0, 1.0]
    errors = [0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    assert finding("spread_with_503", spread_run(spread, errors), END) == (
        SEEN, ("503s in 2 of 8 buckets of 2 s (4 in all)",
               "mean spread 3 in those buckets vs 1 elsewhere (x3.00); correlation 1.00"),
        T0 + 4)


def test_a_spread_jump_at_exactly_the_ratio_is_seen_and_below_it_not() -> None:
    spread = [2.0, 2.0, 2.0, 2.0, 3.0, 3.0] + [2.0] * 10
    errors = [0.0] * 4 + [1.0] * 12
    assert finding("spread_with_503", spread_run(spread, errors), END) == (
        SEEN, ("503s in 1 of 8 buckets of 2 s (1 in all)",
               "mean spread 3 in those buckets vs 2 elsewhere (x1.50); correlation 1.00"),
        T0 + 4)
    cfg = PlaybookConfig(spread_jump_ratio=1.6)
    assert finding("spread_with_503", spread_run(spread, errors), END, cfg)[0::2] == (
        NOT_SEEN, None)


def test_503s_in_every_bucket_leave_nothing_to_compare() -> None:
    recorded = (pts(Series.SPREAD, [(0, 1.0), (1, 2.0)])
                + pts(Series.HTTP_503_TOTAL, [(0, 1.0), (1, 2.0)]))
    assert finding("spread_with_503", recorded) == (
        NOT_SEEN, ("503s in 2 of 2 buckets of 1 s (2 in all)",
                   "mean spread 1.5 in those buckets vs nan elsewhere (xnan); correlation nan"),
        None)


def test_a_zero_spread_elsewhere_gives_no_ratio() -> None:
    spread = [0.0] * 4 + [3.0, 3.0] + [0.0] * 10
    errors = [0.0] * 4 + [1.0] * 12
    verdict, evidence, first = finding("spread_with_503", spread_run(spread, errors), END)
    assert (verdict, first) == (NOT_SEEN, None)
    assert evidence[1] == "mean spread 3 in those buckets vs 0 elsewhere (xnan); correlation 1.00"


# ------------------------------------------------------------------ unexplained_position
def test_no_position_is_no_data() -> None:
    assert finding("unexplained_position") == (NO_DATA, ("no position samples recorded",), None)


def test_a_change_with_a_fill_in_the_grace_before_it_is_explained() -> None:
    position = pts(Series.POSITION, [(0, 0.0), (10, 5.0), (20, 5.0), (30, -2.0), (40, 1.0)])
    events = [ev(5, "order.filled", cl_ord_id="a"),     # exactly 5 s before the change at 10
              ev(30, "order.filled", cl_ord_id="b"),    # at the change at 30
              ev(41, "order.filled", cl_ord_id="c")]    # after the change at 40: no excuse
    assert finding("unexplained_position", position, events) == (
        SEEN, ("3 position changes, 1 without a fill in the 5 s before; 0 position mismatches "
               "found by reconciliation", "position range -2 .. 5"), T0 + 40)
    cfg = PlaybookConfig(position_grace_s=4.5)
    assert finding("unexplained_position", position, events, cfg) == (
        SEEN, ("3 position changes, 2 without a fill in the 4.5 s before; 0 position "
               "mismatches found by reconciliation", "position range -2 .. 5"), T0 + 10)


def test_a_position_mismatch_from_reconciliation_is_seen() -> None:
    position = pts(Series.POSITION, [(0, 1.5), (9, 1.5)])
    events = [ev(7, "reconcile.mismatch", kind="position"),
              ev(3, "reconcile.mismatch", kind="phantom_local")]
    assert finding("unexplained_position", position, events) == (
        SEEN, ("0 position changes, 0 without a fill in the 5 s before; 1 position mismatches "
               "found by reconciliation", "position range 1.5 .. 1.5"), T0 + 7)
    assert finding("unexplained_position", position)[0::2] == (NOT_SEEN, None)


# ------------------------------------------------------------------------- retry_cascade
def test_no_request_counter_is_no_data() -> None:
    assert finding("retry_cascade", pts(Series.RETRIES_TOTAL, [(0, 9.0)])) == (
        NO_DATA, ("no REST request counters recorded",), None)


def test_retries_beyond_the_budget_in_a_bucket_are_a_cascade() -> None:
    # 16 s: buckets of 2 s. Bucket 3 (t=6, 7): 12 requests of which 6 are retries.
    requests = [(t, 2.0 * t + (12.0 if t >= 7 else 0.0)) for t in range(16)]
    retries = [(t, 6.0 if t >= 7 else 0.0) for t in range(16)]
    recorded = pts(Series.REQUESTS_TOTAL, requests) + pts(Series.RETRIES_TOTAL, retries)
    assert finding("retry_cascade", recorded, END) == (
        SEEN, ("6 retries for 42 requests sent (14.3%); 0 HTTP 429 rate-limit answers",
               "1 buckets of 2 s with retries beyond 20% of first attempts + 0.5/s "
               "(most in one: 6)"), T0 + 6)


def test_retries_at_exactly_the_budget_are_not_a_cascade() -> None:
    # 10 s: buckets of 1 s. Bucket 2: 6 first attempts, retries 0.2 * 6 + 0.5 * 1 = 1.7.
    cfg = PlaybookConfig(retry_floor_per_s=0.8)
    requests = pts(Series.REQUESTS_TOTAL, [(0, 0.0), (1, 0.0), (2, 8.0), (9, 8.0)])
    retries = pts(Series.RETRIES_TOTAL, [(0, 0.0), (2, 2.0), (9, 2.0)])
    assert finding("retry_cascade", requests + retries, config=cfg) == (
        NOT_SEEN, ("2 retries for 8 requests sent (25.0%); 0 HTTP 429 rate-limit answers",
                   "0 buckets of 1 s with retries beyond 20% of first attempts + 0.8/s "
                   "(most in one: 2)"), None)
    assert finding("retry_cascade", requests + retries,
                   config=PlaybookConfig(retry_floor_per_s=0.7))[0::2] == (SEEN, T0 + 2)


def test_retries_counted_more_than_requests_still_have_a_budget() -> None:
    requests = pts(Series.REQUESTS_TOTAL, [(0, 0.0), (2, 1.0), (9, 1.0)])
    retries = pts(Series.RETRIES_TOTAL, [(0, 0.0), (2, 1.0), (9, 1.0)])
    assert finding("retry_cascade", requests + retries,
                   config=PlaybookConfig(retry_floor_per_s=1.0))[0::2] == (NOT_SEEN, None)


def test_a_429_alone_is_a_cascade_from_its_first_answer() -> None:
    requests = pts(Series.REQUESTS_TOTAL, [(0, 0.0), (9, 0.0)])
    too_many = pts(Series.HTTP_429_TOTAL, [(0, 0.0), (4, 2.0), (6, 3.0)])
    assert finding("retry_cascade", requests + too_many) == (
        SEEN, ("0 retries for 0 requests sent (0.0%); 3 HTTP 429 rate-limit answers",
               "0 buckets of 1 s with retries beyond 20% of first attempts + 0.5/s "
               "(most in one: 0)"), T0 + 4)


# ---------------------------------------------------------------------- backtest_vs_live
def test_an_empty_recording_is_no_data_for_the_backtest() -> None:
    assert finding("backtest_vs_live", pts(Series.LATENCY_MS, [(0, 5000.0)])) == (
        NO_DATA, ("the recording is empty",), None)


@pytest.mark.parametrize("samples", [
    pts(Series.REQUESTS_TOTAL, [(0, 1.0)]), pts(Series.SPREAD, [(0, 1.0)])])
def test_requests_or_spread_alone_are_something_to_judge(samples: list[Sample]) -> None:
    assert finding("backtest_vs_live", samples) == (
        NOT_SEEN, ("no broken assumption found: no errors, reconnects or gaps",), None)


def test_events_alone_are_something_to_judge() -> None:
    assert finding("backtest_vs_live", events=[ev(0, "order.sent")])[0] is NOT_SEEN


def test_every_broken_assumption_is_listed() -> None:
    recorded = (pts(Series.REQUESTS_TOTAL, [(0, 1.0)])
                + pts(Series.HTTP_503_TOTAL, [(0, 2.0)])
                + pts(Series.ERRORS_TOTAL, [(1, 3.0)])
                + pts(Series.LATENCY_MS, [(0, 1000.0), (1, 3000.0)])
                + pts(Series.RECONNECTS_TOTAL, [(2, 4.0)])
                + pts(Series.SNAPSHOTS_MISSING_TOTAL, [(3, 5.0)]))
    events = [ev(-1, "ws.stale"), ev(4, "order.unknown"), ev(5, "reconcile.mismatch"),
              ev(6, "reconcile.mismatch")]
    assert finding("backtest_vs_live", recorded, events) == (SEEN, (
        "assumption broken: the venue always accepts requests: 2 HTTP 503, 3 failed requests "
        "in all",
        "assumption broken: acknowledgements are instant: REST p99 2980 ms",
        "assumption broken: market data is continuous: 1 stale detections, 4 reconnects",
        "assumption broken: every feature vector exists: 5 snapshots missing",
        "assumption broken: order state is known: 3 unknown outcomes or mismatches"), T0 - 1)


@pytest.mark.parametrize(("samples", "events", "text"), [
    (pts(Series.ERRORS_TOTAL, [(0, 1.0)]), [],
     "the venue always accepts requests: 0 HTTP 503, 1 failed requests in all"),
    (pts(Series.HTTP_503_TOTAL, [(0, 1.0)]), [],
     "the venue always accepts requests: 1 HTTP 503, 0 failed requests in all"),
    (pts(Series.RECONNECTS_TOTAL, [(0, 1.0)]), [],
     "market data is continuous: 0 stale detections, 1 reconnects"),
    ([], [ev(0, "ws.stale")], "market data is continuous: 1 stale detections, 0 reconnects"),
    ([], [ev(0, "order.unknown")], "order state is known: 1 unknown outcomes or mismatches"),
    ([], [ev(0, "reconcile.mismatch")],
     "order state is known: 1 unknown outcomes or mismatches"),
])
def test_each_assumption_breaks_on_its_own(samples: list[Sample], events: list[Event],
                                           text: str) -> None:
    recorded = [*pts(Series.REQUESTS_TOTAL, [(-5, 0.0)]), *samples]
    assert finding("backtest_vs_live", recorded, events) == (
        SEEN, (f"assumption broken: {text}",), T0 - 5)


def test_a_p99_at_the_limit_is_not_slow() -> None:
    recorded = (pts(Series.REQUESTS_TOTAL, [(0, 1.0)])
                + pts(Series.LATENCY_MS, [(0, 1000.0), (1, 1000.0)]))
    assert finding("backtest_vs_live", recorded)[0] is NOT_SEEN
    assert finding("backtest_vs_live", recorded,
                   config=PlaybookConfig(slow_p99_ms=999.0))[1] == (
        "assumption broken: acknowledgements are instant: REST p99 1000 ms",)


# ------------------------------------------------------------------------------- edges
def test_samples_at_the_same_time_keep_their_order() -> None:
    rec = Recording([Sample(T0, "market", "spread", 2.0), Sample(T0, "market", "spread", 1.0)],
                    [])
    assert rec.series(Series.SPREAD) == [(T0, 2.0), (T0, 1.0)]


def test_the_median_latency_is_the_50th_percentile() -> None:
    events = [ev(0, "order.sent", cl_ord_id="a"), ev(1, "order.acked", cl_ord_id="a")]
    latency = pts(Series.LATENCY_MS, [(0, 0.0), (1, 100.0)])
    assert finding("orders_missing", latency, events)[1][1] == (
        "REST latency p50 50 ms, p99 99 ms over 2 requests")


def test_the_slow_limit_applies_to_the_99th_percentile_not_the_maximum() -> None:
    recorded = (pts(Series.REQUESTS_TOTAL, [(0, 1.0)])
                + pts(Series.LATENCY_MS, [(0, 1000.0), (1, 2000.0)]))
    cfg = PlaybookConfig(slow_p99_ms=1995.0)           # p99 is 1990, the maximum 2000
    assert finding("backtest_vs_live", recorded, config=cfg)[0] is NOT_SEEN


def test_as_many_missing_as_taken_is_half() -> None:
    recorded = (pts(Series.SNAPSHOTS_TOTAL, [(0, 0.0), (1, 2.0)])
                + pts(Series.SNAPSHOTS_MISSING_TOTAL, [(0, 0.0), (1, 2.0)]))
    assert finding("snapshots_stalled", recorded)[1][0] == "2 snapshots taken, 2 missing (50.0%)"


def test_no_missing_snapshot_is_never_a_stall_even_at_a_zero_ratio() -> None:
    recorded = pts(Series.SNAPSHOTS_TOTAL, [(0, 0.0), (1, 2.0)])
    cfg = PlaybookConfig(missing_snapshot_ratio=0.0)
    assert finding("snapshots_stalled", recorded, config=cfg)[0::2] == (NOT_SEEN, None)


def test_buckets_without_a_503_sample_count_as_none() -> None:
    # 503 samples only in the first half; the spread is wide where they rise.
    spread = pts(Series.SPREAD, [(t, 3.0 if t in (4, 5) else 1.0) for t in range(16)])
    errors = pts(Series.HTTP_503_TOTAL, [(0, 0.0), (2, 0.0), (4, 1.0), (6, 1.0)])
    assert finding("spread_with_503", spread + errors, END) == (
        SEEN, ("503s in 1 of 8 buckets of 2 s (1 in all)",
               "mean spread 3 in those buckets vs 1 elsewhere (x3.00); correlation 1.00"),
        T0 + 4)


def test_retries_in_a_bucket_without_requests_are_measured_against_the_floor() -> None:
    requests = pts(Series.REQUESTS_TOTAL, [(0, 0.0), (9, 0.0)])
    retries = pts(Series.RETRIES_TOTAL, [(0, 0.0), (5, 1.0)])
    assert finding("retry_cascade", requests + retries,
                   config=PlaybookConfig(retry_floor_per_s=0.9))[0::2] == (SEEN, T0 + 5)
    assert finding("retry_cascade", requests + retries)[0::2] == (SEEN, T0 + 5)
    # no first attempts at all in that bucket, not one: half a retry beats a floor of 0.45
    half = pts(Series.RETRIES_TOTAL, [(0, 0.0), (5, 0.5)])
    assert finding("retry_cascade", requests + half,
                   config=PlaybookConfig(retry_floor_per_s=0.45))[0::2] == (SEEN, T0 + 5)


def test_retries_only_need_to_beat_the_floor_when_there_are_no_first_attempts() -> None:
    # every request in bucket 2 is a retry: no first attempts, so only the floor counts
    requests = pts(Series.REQUESTS_TOTAL, [(0, 0.0), (2, 1.0), (9, 1.0)])
    retries = pts(Series.RETRIES_TOTAL, [(0, 0.0), (2, 1.0), (9, 1.0)])
    assert finding("retry_cascade", requests + retries,
                   config=PlaybookConfig(retry_floor_per_s=0.9))[0::2] == (SEEN, T0 + 2)


def test_a_single_429_is_a_cascade_from_its_first_answer() -> None:
    requests = pts(Series.REQUESTS_TOTAL, [(0, 0.0), (9, 0.0)])
    assert finding("retry_cascade", requests + pts(Series.HTTP_429_TOTAL, [(0, 0.0), (3, 1.0)])
                   )[0::2] == (SEEN, T0 + 3)
    assert finding("retry_cascade", requests + pts(Series.HTTP_429_TOTAL,
                                                   [(0, 0.0), (4, 1.0), (6, 3.0)]))[2] == T0 + 4


def test_correlation_stays_accurate_far_from_zero() -> None:
    exact = 0.6 / math.sqrt(2 * 0.62 / 3)      # of [1, 2, 3] and [0.1, 0.2, 0.7]
    far = [1e12 + 1, 1e12 + 2, 1e12 + 3]
    assert correlation(far, [0.1, 0.2, 0.7]) == pytest.approx(exact, rel=1e-9)
    assert correlation([0.1, 0.2, 0.7], far) == pytest.approx(exact, rel=1e-9)
