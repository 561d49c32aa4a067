"""SeriesStore: per-minute 503 counts, per-second spread, latency quantiles, bounded memory."""

from __future__ import annotations

import orjson
import pytest

from venueguard.telemetry.series import SeriesStore, quantile

T0 = 1795435200.0  # a minute boundary


def test_503s_are_counted_per_minute_and_other_statuses_ignored() -> None:
    store = SeriesStore()
    for i in range(30):
        store.on_http_status(503, T0 + i)
        store.on_http_status(200, T0 + i)
    store.on_http_status(503, T0 + 61)
    store.on_http_503(T0 + 62, count=4)
    snap = store.snapshot(T0 + 90, window_s=300)
    assert snap["http_503_per_min"] == [[T0, 30.0], [T0 + 60, 5.0]]


def test_spread_keeps_the_last_value_per_second() -> None:
    store = SeriesStore()
    store.on_spread(0.5, T0 + 0.1)
    store.on_spread(1.5, T0 + 0.9)
    store.on_spread(2.0, T0 + 1.2)
    store.on_spread(float("nan"), T0 + 2.0)
    assert store.snapshot(T0 + 3)["spread"] == [[T0, 1.5], [T0 + 1, 2.0]]


def test_latency_quantiles_per_slot_and_over_a_window() -> None:
    store = SeriesStore(latency_step_s=5.0)
    for i in range(100):
        store.on_latency((i + 1) / 1000.0, T0 + (i % 5))  # 1..100 ms in the first slot
    store.on_latency(2.0, T0 + 7)
    store.on_latency(-1.0, T0 + 7)  # nonsense is ignored
    snap = store.snapshot(T0 + 9)
    first, second = snap["latency"]
    assert first[0] == T0
    assert first[1] == pytest.approx(0.0505)
    assert first[2] == pytest.approx(0.09505)
    assert first[3] == pytest.approx(0.09901)
    assert second == [T0 + 5, 2.0, 2.0, 2.0]
    q = store.latency_quantiles(T0 + 9, window_s=60)
    assert q["p50"] == pytest.approx(0.051)  # median of 1..100 ms plus one 2 s sample
    assert q["p99"] == pytest.approx(0.1)  # rank 99 of 101 sorted samples: the 100 ms one
    empty = store.latency_quantiles(T0 + 1000, window_s=60)
    assert empty == {"p50": None, "p95": None, "p99": None}


def test_reconnects_per_minute() -> None:
    store = SeriesStore()
    store.on_reconnect(T0 + 5)
    store.on_reconnect(T0 + 50)
    store.on_reconnect(T0 + 130)
    assert store.snapshot(T0 + 140)["reconnects_per_min"] == [[T0, 2.0], [T0 + 120, 1.0]]


def test_memory_is_bounded_by_the_horizon_and_slot_size() -> None:
    store = SeriesStore(horizon_s=120.0, latency_step_s=10.0, max_samples_per_slot=16)
    for i in range(3600):
        t = T0 + i
        store.on_spread(1.0, t)
        store.on_http_503(t)
        for _ in range(10):
            store.on_latency(0.01, t)
    snap = store.snapshot(T0 + 3600, window_s=3600)
    assert snap["window_s"] == 120.0
    assert len(snap["spread"]) <= 121
    assert len(snap["http_503_per_min"]) <= 4
    assert len(snap["latency"]) <= 13
    assert all(len(samples) <= 16 for _, samples in store._latency.since(0))


def test_late_samples_older_than_the_newest_slot_are_dropped_not_misplaced() -> None:
    store = SeriesStore()
    store.on_spread(1.0, T0 + 10)
    store.on_spread(9.0, T0 + 5)
    assert store.snapshot(T0 + 11)["spread"] == [[T0 + 10, 1.0]]


def test_window_filters_old_points_and_snapshot_is_json() -> None:
    store = SeriesStore()
    store.on_spread(1.0, T0)
    store.on_spread(2.0, T0 + 500)
    snap = store.snapshot(T0 + 600, window_s=300)
    assert snap["spread"] == [[T0 + 500, 2.0]]
    assert orjson.loads(orjson.dumps(snap))["now"] == T0 + 600


def test_503_rate_over_the_last_minute() -> None:
    store = SeriesStore()
    for i in range(60):
        store.on_http_503(T0 + i)  # 60 in the first minute
    assert store.http_503_last_minute(T0 + 60) == 60
    assert store.http_503_last_minute(T0 + 90) == 30  # half the previous minute still in view
    assert store.http_503_last_minute(T0 + 200) == 0


def test_quantile_helper() -> None:
    assert quantile([], 0.5) is None
    assert quantile([3.0], 0.99) == 3.0
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError):
        SeriesStore(horizon_s=0)


def test_decimation_keeps_a_slot_evenly_sampled() -> None:
    store = SeriesStore(latency_step_s=60.0, max_samples_per_slot=64)
    for i in range(10_000):  # a steady ramp 0..9.999 s within one slot
        store.on_latency(i / 1000.0, T0 + i * 0.005)
    (_, samples), = store._latency.since(0)
    assert len(samples) <= 64
    q = store.latency_quantiles(T0 + 59, window_s=60)
    assert q["p50"] == pytest.approx(5.0, abs=0.3)  # a biased sampler would drift late
    assert q["p95"] == pytest.approx(9.5, abs=0.3)


def test_503s_are_also_counted_in_10_second_bins_for_the_chart() -> None:
    """503s that begin 45 s into a minute fill the :40 and :50 bins only, so the chart does not
    draw them over the whole minute."""
    store = SeriesStore()
    for i in range(8):
        store.on_http_status(503, T0 + 45 + i)
    snap = store.snapshot(T0 + 53, window_s=300)
    assert snap["http_503_per_min"] == [[T0, 8.0]]
    assert snap["http_503_per_10s"] == [[T0 + 40, 5.0], [T0 + 50, 3.0]]
