"""Metrics: the contract names, Prometheus conventions, private registries, snapshot()."""

from __future__ import annotations

import re

import orjson
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from venueguard.telemetry.metrics import PREFIX, Metrics, histogram_quantile

# The names documented as the metrics contract (docs/metrics.md), plus the dashboard's own.
REQUIRED = [
    "ws_messages_total", "ws_reconnects_total", "ws_last_data_age_seconds", "ws_pong_age_seconds",
    "ws_connection_age_seconds", "ws_stale_total", "rest_requests_total", "rest_latency_seconds",
    "rest_errors_total", "retries_total", "data_rejected_total", "venue_state", "regime",
    "open_orders", "phantom_orders_total", "spread", "best_bid", "best_ask", "position",
    "ws_last_data_timestamp_seconds",
]
# Each item of the first seed's outage dashboard and the third seed's liveness table, with the
# metrics that answer it.
SEED_ITEMS = {
    "REST latency p50/p95/p99": ["rest_latency_seconds"],
    "HTTP 503 per minute": ["rest_requests_total"],
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
    "spread in outage vs normal windows": ["spread", "spread_ratio"],
    "top-of-book churn": ["top_of_book_changes_total"],
    "imbalance spikes": ["imbalance", "imbalance_spikes_total"],
    "trade rate and volume per second": ["trades_total", "traded_contracts_total"],
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
    "messages per second": ["ws_messages_total"],
    "event loop lag": ["event_loop_lag_seconds"],
    "alerts": ["alerts_total", "alerts_suppressed_total"],
}
EXTRA = sorted({name for names in SEED_ITEMS.values() for name in names})


def use_everything(m: Metrics) -> None:
    m.ws_messages_total.labels(table="orderBookL2").inc(5)
    m.ws_reconnects_total.inc()
    m.set_data_age("trade:XBTUSD", 1.5, wall_now_s=1_800_000_000.0)
    m.ws_pong_age_seconds.set(2.0)
    m.ws_connection_age_seconds.set(30)
    m.ws_stale_total.labels(reason="data_age").inc()
    for _ in range(3):
        m.observe_rest("POST", "/order", "503", 0.08 if _ == 0 else None)
    m.rest_errors_total.labels(kind="overload").inc(3)
    m.retries_total.inc(2)
    m.data_rejected_total.labels(reason="stale").inc()
    m.set_venue_state("COOLDOWN")
    m.set_regime("SAFE")
    m.open_orders.labels(view="local").set(2)
    m.open_orders.labels(view="venue").set(3)
    m.phantom_orders_total.inc()
    for gauge in (m.spread, m.best_bid, m.best_ask, m.position, m.imbalance):
        gauge.labels(symbol="XBTUSD").set(1.0)
    m.trades_total.labels(symbol="XBTUSD").inc(4)
    m.traded_contracts_total.labels(symbol="XBTUSD").inc(300)
    m.spread_ratio.labels(regime="NORMAL").observe(0.5 / 50_000.0)
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
    post = (("endpoint", "/order"), ("method", "POST"))
    assert got[("venueguard_rest_requests_total", (*post, ("status", "503")))] == 3
    assert got[("venueguard_open_orders", (("view", "local"),))] == 2
    assert got[("venueguard_open_orders", (("view", "venue"),))] == 3
    assert got[("venueguard_best_bid", (("symbol", "XBTUSD"),))] == 1.0
    assert got[("venueguard_venue_state", (("state", "COOLDOWN"),))] == 1
    assert got[("venueguard_venue_state", (("state", "HEALTHY"),))] == 0
    assert got[("venueguard_regime", (("state", "SAFE"),))] == 1
    assert got[("venueguard_regime", (("state", "NORMAL"),))] == 0
    assert got[("venueguard_ws_stale_total", (("reason", "data_age"),))] == 1
    assert got[("venueguard_rest_latency_seconds_count", post)] == 1
    bucket = ("venueguard_rest_latency_seconds_bucket", (post[0], ("le", "0.1"), post[1]))
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


def test_states_are_state_sets_and_unknown_names_fail_clearly() -> None:
    m = Metrics()
    assert m.current_state("venue_state") == "HEALTHY" and m.current_state("regime") == "NORMAL"
    m.set_venue_state("blocked")
    assert m.snapshot()["venue_state"] == {"state=HEALTHY": 0.0, "state=DEGRADED": 0.0,
                                           "state=COOLDOWN": 0.0, "state=BLOCKED": 1.0}
    assert m.current_state("venue_state") == "BLOCKED"
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
    assert snap["rest_requests_total"] == {"endpoint=/order,method=POST,status=503": 3.0}
    assert snap["unrealized_pnl"] is None
    latency = snap["rest_latency_seconds"]
    assert isinstance(latency, dict)
    assert latency["endpoint=/order,method=POST"]["count"] == 1
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


def test_known_label_sets_are_exported_at_zero_before_any_event() -> None:
    got = samples(Metrics())
    assert got[("venueguard_rest_errors_total", (("kind", "overloaded"),))] == 0
    assert got[("venueguard_rest_errors_total", (("kind", "rate_limited"),))] == 0
    for reason in ("stale", "future", "reorder", "duplicate"):
        assert got[("venueguard_data_rejected_total", (("reason", reason),))] == 0
    for reason in ("data_age", "pong_timeout"):
        assert got[("venueguard_ws_stale_total", (("reason", reason),))] == 0
    for view in ("local", "venue"):
        assert got[("venueguard_open_orders", (("view", view),))] == 0
    for tier in ("info", "warning", "critical"):
        assert got[("venueguard_alerts_total", (("tier", tier),))] == 0
    assert got[("venueguard_venue_state", (("state", "HEALTHY"),))] == 1
    assert got[("venueguard_regime", (("state", "NORMAL"),))] == 1


def test_conventions_no_rate_gauges_no_basis_points_no_duplicate_503_series() -> None:
    m = Metrics()
    use_everything(m)
    text = m.render().decode()
    for gone in ("rest_503_total", "spread_bps", "trade_rate", "volume_rate",
                 "ws_messages_per_second"):
        assert f"venueguard_{gone}" not in text, gone
    for family in text_string_to_metric_families(text):
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)
    got = samples(m)
    assert got[("venueguard_trades_total", (("symbol", "XBTUSD"),))] == 4
    assert got[("venueguard_spread_ratio_bucket", (("le", "1e-05"), ("regime", "NORMAL")))] == 1


def test_last_data_timestamp_sits_next_to_the_age() -> None:
    m = Metrics()
    m.set_data_age("orderBookL2:XBTUSD", 2.5, wall_now_s=1_800_000_010.0)
    got = samples(m)
    channel = (("channel", "orderBookL2:XBTUSD"),)
    assert got[("venueguard_ws_last_data_age_seconds", channel)] == 2.5
    assert got[("venueguard_ws_last_data_timestamp_seconds", channel)] == 1_800_000_007.5
    m.set_data_age("orderBookL2:XBTUSD", float("inf"), wall_now_s=1_800_000_020.0)
    assert samples(m)[("venueguard_ws_last_data_timestamp_seconds", channel)] == 1_800_000_007.5


def test_optional_venue_label_is_added_to_every_sample() -> None:
    m = Metrics(venue="bitmex")
    use_everything(m)
    families = list(text_string_to_metric_families(m.render().decode()))
    assert families
    for family in families:
        for s in family.samples:
            assert s.labels.get("venue") == "bitmex", s
    assert "venue=" not in Metrics().render().decode()
