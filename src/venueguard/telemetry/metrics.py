"""Prometheus metrics for the outage dashboard and websocket liveness.

One :class:`Metrics` owns its own ``CollectorRegistry`` (never the process-global one), so two
monitors, or two tests, never share counters. Each attribute is a prometheus_client object whose
exposed name is ``venueguard_`` + the attribute name; the rest of the code touches only these
attributes, so the names are a contract (DESIGN.md 3.4).

Groups (the first seed's outage dashboard plus the third seed's liveness metrics):

- liveness: ws_connection_age_seconds, ws_last_data_age_seconds{channel}, ws_pong_age_seconds,
  ws_reconnects_total, ws_disconnects_total, ws_reconnect_seconds, ws_stale_total{reason},
  ws_messages_total{table}, ws_messages_per_second, ws_lag_seconds,
  ws_last_trade_age_seconds{symbol}, data_rejected_total{reason}, event_loop_lag_seconds
- API health: rest_requests_total{endpoint,status}, rest_latency_seconds{endpoint},
  rest_errors_total{kind}, rest_503_total, retries_total, backoff_seconds_total, venue_state,
  regime, snapshots_total, snapshots_missing_total
- order-state integrity: order_attempts_total, order_acks_total, cancel_attempts_total,
  cancel_confirms_total, open_orders{view}, phantom_orders_total, orders_unknown,
  time_to_fill_seconds, partial_fills_total, stale_order_seconds
- microstructure: best_bid/best_ask/spread{symbol}, spread_bps{regime}, imbalance{symbol},
  imbalance_spikes_total{symbol}, top_of_book_changes_total{symbol}, trade_rate{symbol},
  volume_rate{symbol}, gap_events_total
- risk: position{symbol}, inventory_duration_seconds, unrealized_pnl, realized_pnl,
  max_adverse_excursion, max_favorable_excursion, fees_estimate
- alerting: alerts_total{tier}, alerts_suppressed_total
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric

PREFIX = "venueguard_"
VENUE_STATE_CODES: Mapping[str, int] = {"HEALTHY": 0, "DEGRADED": 1, "COOLDOWN": 2, "BLOCKED": 3}
REGIME_CODES: Mapping[str, int] = {"NORMAL": 0, "CAUTIOUS": 1, "SAFE": 2, "RECOVERING": 3}

_LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_RECONNECT_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_FILL_BUCKETS_S = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
_SPREAD_BUCKETS_BPS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0)

SnapshotValue = float | None | dict[str, object]


class Metrics:
    """All venueguard metrics on a private registry; see the module docstring for the list."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)

        def counter(name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
            return Counter(PREFIX + name, doc, labels, registry=self.registry)

        def gauge(name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
            return Gauge(PREFIX + name, doc, labels, registry=self.registry)

        def histogram(
            name: str, doc: str, buckets: Sequence[float], labels: Sequence[str] = ()
        ) -> Histogram:
            return Histogram(PREFIX + name, doc, labels, registry=self.registry, buckets=buckets)

        # liveness (websocket)
        self.ws_messages_total = counter("ws_messages_total", "Websocket messages by table",
                                         ["table"])
        self.ws_messages_per_second = gauge("ws_messages_per_second",
                                            "Incoming websocket messages per second")
        self.ws_reconnects_total = counter("ws_reconnects_total", "Websocket reconnect attempts")
        self.ws_disconnects_total = counter("ws_disconnects_total", "Websocket disconnections")
        self.ws_reconnect_seconds = histogram("ws_reconnect_seconds",
                                              "Time from disconnect to resubscribed",
                                              _RECONNECT_BUCKETS_S)
        self.ws_last_data_age_seconds = gauge("ws_last_data_age_seconds",
                                              "Seconds since the last data message per channel",
                                              ["channel"])
        self.ws_pong_age_seconds = gauge("ws_pong_age_seconds", "Seconds since the last pong")
        self.ws_connection_age_seconds = gauge("ws_connection_age_seconds",
                                               "Seconds since the current connection opened")
        self.ws_stale_total = counter("ws_stale_total", "Stale streams detected", ["reason"])
        self.ws_lag_seconds = gauge("ws_lag_seconds",
                                    "Local receive time minus server timestamp, latest message")
        self.ws_last_trade_age_seconds = gauge("ws_last_trade_age_seconds",
                                               "Seconds since the last trade seen", ["symbol"])
        self.data_rejected_total = counter("data_rejected_total",
                                           "Messages refused by timestamp/order checks",
                                           ["reason"])
        self.event_loop_lag_seconds = gauge("event_loop_lag_seconds",
                                            "How late the event loop ran a timed wake-up")
        # API health (REST)
        self.rest_requests_total = counter("rest_requests_total", "REST requests by outcome",
                                           ["endpoint", "status"])
        self.rest_latency_seconds = histogram("rest_latency_seconds", "REST response time",
                                              _LATENCY_BUCKETS_S, ["endpoint"])
        self.rest_errors_total = counter("rest_errors_total", "REST failures by kind", ["kind"])
        self.rest_503_total = counter("rest_503_total", "HTTP 503 responses")
        self.retries_total = counter("retries_total", "REST retries sent")
        self.backoff_seconds_total = counter("backoff_seconds_total",
                                             "Time spent waiting in backoff")
        self.venue_state = gauge("venue_state",
                                 "Venue health: 0 HEALTHY 1 DEGRADED 2 COOLDOWN 3 BLOCKED")
        self.regime = gauge("regime", "Outage regime: 0 NORMAL 1 CAUTIOUS 2 SAFE 3 RECOVERING")
        self.snapshots_total = counter("snapshots_total", "Feature snapshots produced")
        self.snapshots_missing_total = counter("snapshots_missing_total",
                                               "Feature snapshots due but not produced")
        # order-state integrity
        self.order_attempts_total = counter("order_attempts_total", "Order placements sent")
        self.order_acks_total = counter("order_acks_total", "Order placements acknowledged")
        self.cancel_attempts_total = counter("cancel_attempts_total", "Cancels sent")
        self.cancel_confirms_total = counter("cancel_confirms_total", "Cancels confirmed")
        self.open_orders = gauge("open_orders", "Open orders as seen locally and at the venue",
                                 ["view"])
        self.phantom_orders_total = counter("phantom_orders_total",
                                            "Orders open on one side only (local or venue)")
        self.orders_unknown = gauge("orders_unknown", "Orders whose outcome is not yet known")
        self.time_to_fill_seconds = histogram("time_to_fill_seconds",
                                              "Time from acknowledgement to full fill",
                                              _FILL_BUCKETS_S)
        self.partial_fills_total = counter("partial_fills_total", "Partial fills")
        self.stale_order_seconds = gauge("stale_order_seconds",
                                         "Age of the oldest open order without progress")
        # microstructure
        self.best_bid = gauge("best_bid", "Best bid price", ["symbol"])
        self.best_ask = gauge("best_ask", "Best ask price", ["symbol"])
        self.spread = gauge("spread", "Best ask minus best bid", ["symbol"])
        self.spread_bps = histogram("spread_bps", "Spread in basis points of mid, by regime",
                                    _SPREAD_BUCKETS_BPS, ["regime"])
        self.imbalance = gauge("imbalance", "Top-of-book size imbalance in [-1, 1]", ["symbol"])
        self.imbalance_spikes_total = counter("imbalance_spikes_total",
                                              "Imbalance beyond its spike threshold", ["symbol"])
        self.top_of_book_changes_total = counter("top_of_book_changes_total",
                                                 "Best bid or ask changes", ["symbol"])
        self.trade_rate = gauge("trade_rate", "Trades per second", ["symbol"])
        self.volume_rate = gauge("volume_rate", "Traded contracts per second", ["symbol"])
        self.gap_events_total = counter("gap_events_total", "Book gaps (levels lost) detected")
        # risk
        self.position = gauge("position", "Position size in contracts", ["symbol"])
        self.inventory_duration_seconds = gauge("inventory_duration_seconds",
                                                "Time the current position has been held")
        self.unrealized_pnl = gauge("unrealized_pnl", "Unrealized profit and loss")
        self.realized_pnl = gauge("realized_pnl", "Realized profit and loss")
        self.max_adverse_excursion = gauge("max_adverse_excursion",
                                           "Worst unrealized PnL of the current position")
        self.max_favorable_excursion = gauge("max_favorable_excursion",
                                             "Best unrealized PnL of the current position")
        self.fees_estimate = gauge("fees_estimate", "Estimated fees had orders crossed the spread")
        # alerting
        self.alerts_total = counter("alerts_total", "Alerts delivered by tier", ["tier"])
        self.alerts_suppressed_total = counter("alerts_suppressed_total",
                                               "Alerts folded into a repeat count")

    def set_venue_state(self, state: str) -> None:
        """Set ``venue_state`` from its name (``HEALTHY`` ...); unknown names raise ValueError."""
        self.venue_state.set(_code(VENUE_STATE_CODES, state, "venue state"))

    def set_regime(self, regime: str) -> None:
        """Set ``regime`` from its name (``NORMAL`` ...); unknown names raise ValueError."""
        self.regime.set(_code(REGIME_CODES, regime, "regime"))

    def render(self) -> bytes:
        """Prometheus text exposition (format 0.0.4), without the ``_created`` series."""
        return bytes(generate_latest(_WithoutCreated(self.registry)))

    def snapshot(self) -> dict[str, SnapshotValue]:
        """Current values, JSON-friendly, keyed by attribute name.

        Unlabelled counters and gauges map to a number; labelled ones to a dict keyed
        ``"label=value[,label=value]"``; histograms to ``{"count", "sum", "p50", "p95", "p99"}``
        (quantiles estimated from the buckets), or a dict of those per label set.
        Non-finite values become ``None``.
        """
        out: dict[str, SnapshotValue] = {}
        for family in self.registry.collect():
            name = family.name[len(PREFIX):] if family.name.startswith(PREFIX) else family.name
            if family.type == "counter":
                name += "_total"
            labelled = False
            values: dict[str, object] = {}
            hists: dict[str, dict[str, list[tuple[float, float]] | float]] = {}
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                labels = {k: v for k, v in sample.labels.items() if k != "le"}
                key = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
                labelled = labelled or bool(labels)
                if family.type == "histogram":
                    h = hists.setdefault(key, {"buckets": []})
                    if sample.name.endswith("_bucket"):
                        bucket_list = h["buckets"]
                        assert isinstance(bucket_list, list)
                        bucket_list.append((float(sample.labels["le"]), sample.value))
                    elif sample.name.endswith("_count"):
                        h["count"] = sample.value
                    elif sample.name.endswith("_sum"):
                        h["sum"] = sample.value
                else:
                    values[key] = _finite(sample.value)
            if family.type == "histogram":
                summaries: dict[str, object] = {k: _summarise(h) for k, h in hists.items()}
                out[name] = summaries if labelled else _summarise(hists.get("", {}))
            elif labelled:
                out[name] = values
            else:
                value = values.get("")
                out[name] = value if isinstance(value, float) or value is None else None
        return out


class _WithoutCreated:
    """A registry view that drops the ``*_created`` timestamps, which no dashboard reads."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        for family in self._registry.collect():
            kept = Metric(family.name, family.documentation, family.type, family.unit)
            kept.samples = [s for s in family.samples if not s.name.endswith("_created")]
            yield kept


def histogram_quantile(buckets: Sequence[tuple[float, float]], q: float) -> float | None:
    """Estimate quantile ``q`` from cumulative ``(upper_bound, count)`` buckets, as Prometheus does.

    Linear interpolation inside the bucket; a quantile in the ``+Inf`` bucket returns the
    largest finite bound. ``None`` when there are no observations.
    """
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] <= 0:
        return None
    rank = q * ordered[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            share = (rank - lower_count) / (count - lower_count)
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return lower_bound


def _summarise(h: Mapping[str, object]) -> dict[str, object]:
    raw = h.get("buckets", [])
    buckets = raw if isinstance(raw, list) else []
    return {
        "count": _finite(h.get("count", 0.0)),
        "sum": _finite(h.get("sum", 0.0)),
        "p50": histogram_quantile(buckets, 0.50),
        "p95": histogram_quantile(buckets, 0.95),
        "p99": histogram_quantile(buckets, 0.99),
    }


def _finite(value: object) -> float | None:
    if not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _code(table: Mapping[str, int], name: str, what: str) -> int:
    try:
        return table[str(name).upper()]
    except KeyError:
        raise ValueError(f"unknown {what} {name!r}; expected one of {sorted(table)}") from None
