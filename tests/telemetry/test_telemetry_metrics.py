"""Metrics: the DESIGN 3.4 names, labels, private registries, snapshot() and quantiles."""

from __future__ import annotations

import re

import orjson
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from venueguard.telemetry.metrics import PREFIX, Metrics, histogram_quantile

# DESIGN.md 3.4, plus the extra dashboard metrics promised to the monitor.
REQUIRED = [
    "ws_messages_total", "ws_reconnects_total", "ws_last_data_age_seconds", "ws_pong_age_seconds",
    "ws_connection_age_seconds", "ws_stale_total", "rest_requests_total", "rest_latency_seconds",
    "rest_errors_total", "retries_total", "data_rejected_total", "venue_state", "regime",
    "open_orders", "phantom_orders_total", "spread", "best_bid", "best_ask", "position",
]
# Each item of the first seed's outage dashboard and the third seed's liveness table, with the
# metrics that answer it.
SEED_ITEMS = {
    "REST latency p50/p95/p99": ["rest_latency_seconds"],
    "HTTP 503 per minute": ["rest_503_total"],
    "other error codes (429, 401, 5xx)": ["rest_requests_total", "rest_errors_total"],
    "retry counts and backoff duration": ["retries_total", "backoff_seconds_total"],
    "ws disconnects and reconnect time": ["ws_disconnects_total", "ws_reconnect_seconds"],
    "ws lag (server vs local time)": ["ws_lag_seconds"],
    "time since last trade": ["ws_last_trade_age_seconds"],
    "missing snapshots": ["snapshots_total", "snapshots_missing_total"],
    "placement attempts vs acks": ["order_attempts_total", "order_acks_total"],
    "cancel attempts vs confirmations": ["cancel_attempts_total", "cancel_confirms_total"],
    "open orders ws vs REST view": ["open_orders"],
    "phantom orders": ["phantom_orders_total"],
    "time to fill": ["time_to_fill_seconds"],
    "partial fill frequency": ["partial_fills_total"],
    "stale order duration": ["stale_order_seconds"],
    "spread in outage vs normal windows": ["spread", "spread_bps"],
    "top-of-book churn": ["top_of_book_changes_total"],
    "imbalance spikes": ["imbalance", "imbalance_spikes_total"],
    "trade rate and volume per second": ["trade_rate", "volume_rate"],
    "gap events": ["gap_events_total"],
    "position and time in position": ["position", "inventory_duration_seconds"],
    "max adverse / favorable excursion": ["max_adverse_excursion", "max_favorable_excursion"],
    "realized vs unrealized PnL": ["realized_pnl", "unrealized_pnl"],
    "fees had the bot crossed the spread": ["fees_estimate"],
    "connection age": ["ws_connection_age_seconds"],
    "last data age": ["ws_last_data_age_seconds"],
    "pong age": ["ws_pong_age_seconds"],
    "reconnection count": ["ws_reconnects_total"],
    "stale data count": ["ws_stale_total", "data_rejected_total"],
    "messages per second": ["ws_messages_per_second", "ws_messages_total"],
    "event loop lag": ["event_loop_lag_seconds"],
    "alerts": ["alerts_total", "alerts_suppressed_total"],
}
EXTRA = sorted({name for names in SEED_ITEMS.values() for name in names})


def use_everything(m: Metrics) -> None:
    m.ws_messages_total.labels(table="orderBookL2").inc(5)
    m.ws_reconnects_total.inc()
    m.ws_last_data_age_seconds.labels(channel="trade:XBTUSD").set(1.5)
    m.ws_pong_age_seconds.set(2.0)
    m.ws_connection_age_seconds.set(30)
    m.ws_stale_total.labels(reason="data_age").inc()
    m.rest_requests_total.labels(endpoint="/order", status="503").inc(3)
    m.rest_latency_seconds.labels(endpoint="/order").observe(0.08)
    m.rest_errors_total.labels(kind="overload").inc(3)
    m.retries_total.inc(2)
    m.data_rejected_total.labels(reason="stale").inc()
    m.set_venue_state("COOLDOWN")
    m.set_regime("SAFE")
    m.open_orders.labels(view="local").set(2)
    m.open_orders.labels(view="venue").set(3)
    m.phantom_orders_total.inc()
    for gauge in (m.spread, m.best_bid, m.best_ask, m.position, m.imbalance, m.trade_rate,
                  m.volume_rate):
        gauge.labels(symbol="XBTUSD").set(1.0)
    m.top_of_book_changes_total.labels(symbol="XBTUSD").inc()
    m.time_to_fill_seconds.observe(3.0)


def samples(m: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(m.render().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_every_contract_name_is_exposed_with_prefix() -> None:
    m = Metrics()
    use_everything(m)
    text = m.render().decode()
    for name in REQUIRED + EXTRA:
        assert getattr(m, name) is not None, name
        assert re.search(rf"^# TYPE {PREFIX}{name}(_total)? ", text, re.M) or \
            f"# TYPE {PREFIX}{name} " in text, name
    assert "_created" not in text


def test_labels_and_values_round_trip_through_the_text_format() -> None:
    m = Metrics()
    use_everything(m)
    got = samples(m)
    assert got[("venueguard_rest_requests_total", (("endpoint", "/order"), ("status", "503")))] == 3
    assert got[("venueguard_open_orders", (("view", "local"),))] == 2
    assert got[("venueguard_open_orders", (("view", "venue"),))] == 3
    assert got[("venueguard_best_bid", (("symbol", "XBTUSD"),))] == 1.0
    assert got[("venueguard_venue_state", ())] == 2
    assert got[("venueguard_regime", ())] == 2
    assert got[("venueguard_ws_stale_total", (("reason", "data_age"),))] == 1
    assert got[("venueguard_rest_latency_seconds_count", (("endpoint", "/order"),))] == 1
    bucket = ("venueguard_rest_latency_seconds_bucket", (("endpoint", "/order"), ("le", "0.1")))
    assert got[bucket] == 1


def test_wrong_label_names_are_rejected() -> None:
    m = Metrics()
    with pytest.raises(ValueError):
        m.open_orders.labels(side="local")


def test_instances_do_not_share_a_registry_or_touch_the_global_one() -> None:
    a, b = Metrics(), Metrics()
    a.ws_reconnects_total.inc(7)
    assert samples(b)[("venueguard_ws_reconnects_total", ())] == 0
    assert REGISTRY.get_sample_value("venueguard_ws_reconnects_total") is None


def test_state_names_map_to_codes_and_unknown_names_fail_clearly() -> None:
    m = Metrics()
    m.set_venue_state("blocked")
    assert m.snapshot()["venue_state"] == 3
    with pytest.raises(ValueError, match="venue state"):
        m.set_venue_state("ON_FIRE")
    with pytest.raises(ValueError, match="regime"):
        m.set_regime("PANIC")


def test_snapshot_is_json_friendly_and_holds_current_values() -> None:
    m = Metrics()
    use_everything(m)
    m.unrealized_pnl.set(float("nan"))
    snap = m.snapshot()
    orjson.dumps(snap)  # no exotic types
    assert snap["ws_reconnects_total"] == 1
    assert snap["open_orders"] == {"view=local": 2.0, "view=venue": 3.0}
    assert snap["rest_requests_total"] == {"endpoint=/order,status=503": 3.0}
    assert snap["unrealized_pnl"] is None
    latency = snap["rest_latency_seconds"]
    assert isinstance(latency, dict)
    assert latency["endpoint=/order"]["count"] == 1
    fill = snap["time_to_fill_seconds"]
    assert isinstance(fill, dict) and fill["count"] == 1 and fill["sum"] == 3.0
    assert set(REQUIRED + EXTRA) <= set(snap)


def test_histogram_quantile_interpolates_like_prometheus() -> None:
    buckets = [(0.1, 50.0), (0.5, 90.0), (1.0, 100.0), (float("inf"), 100.0)]
    assert histogram_quantile(buckets, 0.5) == pytest.approx(0.1)
    assert histogram_quantile(buckets, 0.7) == pytest.approx(0.3)
    assert histogram_quantile(buckets, 0.95) == pytest.approx(0.75)
    assert histogram_quantile([], 0.5) is None
    assert histogram_quantile([(1.0, 0.0), (float("inf"), 0.0)], 0.5) is None
    # everything above the last finite bound: the bound is the best estimate
    assert histogram_quantile([(1.0, 0.0), (float("inf"), 4.0)], 0.5) == 1.0
