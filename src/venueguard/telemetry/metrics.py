"""Prometheus metrics for the outage dashboard and websocket liveness.

One :class:`Metrics` owns its own ``CollectorRegistry`` (never the process-global one), so two
monitors, or two tests, never share counters. Each attribute is a prometheus_client object whose
exposed name is ``venueguard_`` + the attribute name; the rest of the code touches only these
attributes, so the names are a contract (see the metrics reference in ``docs/metrics.md``,
generated from this registry by ``python -m venueguard.telemetry.metrics_doc``).

Conventions (Prometheus' own):

- things that happen are counters (``*_total``); rates are ``rate()`` over them at query time;
- values are in base units: seconds, prices in the instrument's quote currency, ratios (never
  basis points or milliseconds);
- a state is a state set: one series per possible state, ``1`` for the current one and ``0``
  for the others (``venueguard_venue_state{state="COOLDOWN"} 1``);
- the HTTP method and the path are separate labels (``method``, ``endpoint``);
- label sets known in advance (error kinds, rejection reasons, order views, alert tiers, states)
  are exported at ``0`` from the start, so an alert rule has a series to evaluate;
- freshness is exported both as an age (``ws_last_data_age_seconds``) and as the wall-clock time
  of the last message (``ws_last_data_timestamp_seconds``), whose ``time() - x`` keeps growing
  even when the monitor's own loop stops updating the age;
- ``Metrics(venue="bitmex")`` adds a ``venue`` label to every exported sample.

Groups:

- liveness: ws_connection_age_seconds, ws_last_data_age_seconds{channel},
  ws_last_data_timestamp_seconds{channel}, ws_pong_age_seconds, ws_reconnects_total,
  ws_disconnects_total, ws_reconnect_seconds, ws_stale_total{reason}, ws_messages_total{table},
  ws_lag_seconds, ws_last_trade_age_seconds{symbol}, data_rejected_total{reason},
  event_loop_lag_seconds, ws_freshness_threshold_seconds{channel},
  ws_freshness_suspicion{channel}
- API health: rest_requests_total{method,endpoint,status},
  rest_latency_seconds{method,endpoint}, rest_errors_total{kind}, retries_total,
  backoff_seconds_total, venue_state{state}, regime{state}, snapshots_total,
  snapshots_missing_total
- order-state integrity: order_attempts_total, order_acks_total, cancel_attempts_total,
  cancel_confirms_total, open_orders{view}, phantom_orders_total,
  reconcile_mismatches_total{kind}, orders_unknown,
  time_to_fill_seconds, partial_fills_total, stale_order_seconds
- microstructure: best_bid/best_ask/spread{symbol}, spread_ratio{regime}, imbalance{symbol},
  imbalance_spikes_total{symbol}, top_of_book_changes_total{symbol}, trades_total{symbol},
  traded_contracts_total{symbol}, gap_events_total
- risk: position{symbol}, inventory_duration_seconds, unrealized_pnl, realized_pnl,
  max_adverse_excursion, max_favorable_excursion, fees_estimate
- alerting: alerts_total{tier}, alerts_suppressed_total
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

from venueguard.core.kinds import CLASSIFIED_KINDS, Kind

PREFIX = "venueguard_"
VENUE_STATES: tuple[str, ...] = ("HEALTHY", "DEGRADED", "COOLDOWN", "BLOCKED")
REGIMES: tuple[str, ...] = ("NORMAL", "CAUTIOUS", "SAFE", "RECOVERING")
# Numeric codes of the states, for journals and feature vectors (not exported as metrics).
VENUE_STATE_CODES: Mapping[str, int] = {name: i for i, name in enumerate(VENUE_STATES)}
REGIME_CODES: Mapping[str, int] = {name: i for i, name in enumerate(REGIMES)}
# Label values exported at 0 before their first event.
ERROR_KINDS: tuple[str, ...] = tuple(k.value for k in CLASSIFIED_KINDS if k is not Kind.OK)
REJECT_REASONS: tuple[str, ...] = ("stale", "future", "reorder", "duplicate")
STALE_REASONS: tuple[str, ...] = ("data_age", "pong_timeout")
ORDER_VIEWS: tuple[str, ...] = ("local", "venue")
ALERT_TIERS: tuple[str, ...] = ("info", "warning", "critical")
MISMATCH_KINDS: tuple[str, ...] = ("position", "phantom_local", "phantom_venue",
                                   "unknown_unresolved")

_LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_RECONNECT_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_FILL_BUCKETS_S = (0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
# Spread as a fraction of mid: 1e-5 is 0.1 basis point, 1e-2 is 100 basis points.
_SPREAD_RATIO_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2)

SnapshotValue = float | None | dict[str, object]


@dataclass(frozen=True, slots=True)
class MetricInfo:
    """One registered metric as the reference page lists it."""

    name: str  # exposed name, e.g. venueguard_rest_requests_total
    kind: str  # counter | gauge | histogram
    help: str
    labels: tuple[str, ...]
    unit: str  # seconds, ratio, price, contracts, count ... (from the name and help)


class Metrics:
    """All venueguard metrics on a private registry; see the module docstring for the list.

    ``venue`` (optional) is added as a ``venue`` label to every sample :meth:`render` exports.
    """

    def __init__(self, venue: str | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.venue = venue
        self.catalogue: list[MetricInfo] = []

        def note(name: str, kind: str, doc: str, labels: Sequence[str]) -> None:
            self.catalogue.append(MetricInfo(PREFIX + name, kind, doc, tuple(labels),
                                             _unit_of(name)))

        def counter(name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
            note(name, "counter", doc, labels)
            return Counter(PREFIX + name, doc, labels, registry=self.registry)

        def gauge(name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
            note(name, "gauge", doc, labels)
            return Gauge(PREFIX + name, doc, labels, registry=self.registry)

        def histogram(
            name: str, doc: str, buckets: Sequence[float], labels: Sequence[str] = ()
        ) -> Histogram:
            note(name, "histogram", doc, labels)
            return Histogram(PREFIX + name, doc, labels, registry=self.registry, buckets=buckets)

        # liveness (websocket)
        self.ws_messages_total = counter("ws_messages_total", "Websocket messages by table",
                                         ["table"])
        self.ws_reconnects_total = counter("ws_reconnects_total", "Websocket reconnect attempts")
        self.ws_disconnects_total = counter("ws_disconnects_total", "Websocket disconnections")
        self.ws_reconnect_seconds = histogram("ws_reconnect_seconds",
                                              "Time from disconnect to resubscribed",
                                              _RECONNECT_BUCKETS_S)
        self.ws_last_data_age_seconds = gauge("ws_last_data_age_seconds",
                                              "Seconds since the last data message per channel",
                                              ["channel"])
        self.ws_last_data_timestamp_seconds = gauge(
            "ws_last_data_timestamp_seconds",
            "Unix time of the last data message per channel (alert on time() minus this)",
            ["channel"])
        self.ws_pong_age_seconds = gauge("ws_pong_age_seconds", "Seconds since the last pong")
        self.ws_connection_age_seconds = gauge("ws_connection_age_seconds",
                                               "Seconds since the current connection opened")
        self.ws_stale_total = counter("ws_stale_total", "Stale streams detected", ["reason"])
        self.ws_freshness_threshold_seconds = gauge(
            "ws_freshness_threshold_seconds",
            "Silence after which a channel is declared stale now (learned or static)",
            ["channel"])
        self.ws_freshness_suspicion = gauge(
            "ws_freshness_suspicion",
            "Suspicion (phi = -log10 P(a normal silence lasts this long)) of a channel's current "
            "silence; NaN while its threshold is the static one",
            ["channel"])
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
        self.rest_requests_total = counter("rest_requests_total",
                                           "REST responses by method, path and HTTP status "
                                           "(status none: no response)",
                                           ["method", "endpoint", "status"])
        self.rest_latency_seconds = histogram("rest_latency_seconds", "REST response time",
                                              _LATENCY_BUCKETS_S, ["method", "endpoint"])
        self.rest_errors_total = counter("rest_errors_total", "REST failures by kind", ["kind"])
        self.retries_total = counter("retries_total", "REST retries sent")
        self.backoff_seconds_total = counter("backoff_seconds_total",
                                             "Time spent waiting in backoff")
        self.venue_state = gauge("venue_state",
                                 "Venue health state set: 1 for the current state, 0 otherwise",
                                 ["state"])
        self.regime = gauge("regime",
                            "Outage regime state set: 1 for the current regime, 0 otherwise",
                            ["state"])
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
        self.reconcile_mismatches_total = counter("reconcile_mismatches_total",
                                                  "Differences between local and venue state "
                                                  "found by reconciliation, by kind", ["kind"])
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
        self.spread = gauge("spread", "Best ask minus best bid, in price units", ["symbol"])
        self.spread_ratio = histogram("spread_ratio",
                                      "Spread as a fraction of mid (1e-4 = 1 basis point), "
                                      "by regime", _SPREAD_RATIO_BUCKETS, ["regime"])
        self.imbalance = gauge("imbalance", "Top-of-book size imbalance in [-1, 1]", ["symbol"])
        self.imbalance_spikes_total = counter("imbalance_spikes_total",
                                              "Imbalance beyond its spike threshold", ["symbol"])
        self.top_of_book_changes_total = counter("top_of_book_changes_total",
                                                 "Best bid or ask changes", ["symbol"])
        self.trades_total = counter("trades_total", "Trades seen on the tape", ["symbol"])
        self.traded_contracts_total = counter("traded_contracts_total",
                                              "Contracts traded on the tape", ["symbol"])
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
        self._initialise_known_labels()

    def _initialise_known_labels(self) -> None:
        for kind in ERROR_KINDS:
            self.rest_errors_total.labels(kind=kind)
        for reason in REJECT_REASONS:
            self.data_rejected_total.labels(reason=reason)
        for reason in STALE_REASONS:
            self.ws_stale_total.labels(reason=reason)
        for view in ORDER_VIEWS:
            self.open_orders.labels(view=view)
        for tier in ALERT_TIERS:
            self.alerts_total.labels(tier=tier)
        for kind in MISMATCH_KINDS:
            self.reconcile_mismatches_total.labels(kind=kind)
        self.set_venue_state("HEALTHY")
        self.set_regime("NORMAL")

    def set_venue_state(self, state: str) -> None:
        """Mark ``state`` (``HEALTHY`` ...) current in ``venue_state``; unknown names raise."""
        _set_state(self.venue_state, VENUE_STATES, state, "venue state")

    def set_regime(self, regime: str) -> None:
        """Mark ``regime`` (``NORMAL`` ...) current in ``regime``; unknown names raise."""
        _set_state(self.regime, REGIMES, regime, "regime")

    def set_data_age(self, channel: str, age_s: float, wall_now_s: float) -> None:
        """Set a channel's data age and, from it, the wall-clock time of its last message."""
        self.ws_last_data_age_seconds.labels(channel=channel).set(age_s)
        if math.isfinite(age_s):
            self.ws_last_data_timestamp_seconds.labels(channel=channel).set(wall_now_s - age_s)

    def set_freshness(self, channel: str, threshold_s: float | None,
                      suspicion: float | None) -> None:
        """Set a channel's current stale threshold and suspicion (None: unknown, NaN)."""
        self.ws_freshness_threshold_seconds.labels(channel=channel).set(
            math.nan if threshold_s is None else threshold_s)
        self.ws_freshness_suspicion.labels(channel=channel).set(
            math.nan if suspicion is None else suspicion)

    def observe_rest(self, method: str, endpoint: str, status: str,
                     latency_s: float | None = None) -> None:
        """Count one REST response (``status`` ``"none"`` when none came) and its latency."""
        path = endpoint.partition("?")[0]
        self.rest_requests_total.labels(method=method, endpoint=path, status=status).inc()
        if latency_s is not None:
            self.rest_latency_seconds.labels(method=method, endpoint=path).observe(latency_s)

    def current_state(self, name: str) -> str | None:
        """The state marked 1 in the state set ``venue_state`` or ``regime`` (None if none)."""
        family = getattr(self, name)
        for metric in family.collect():
            for sample in metric.samples:
                if sample.value == 1:
                    return str(sample.labels["state"])
        return None

    def render(self) -> bytes:
        """Prometheus text exposition (format 0.0.4), without the ``_created`` series."""
        return bytes(generate_latest(_WithoutCreated(self.registry, self.venue)))

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
    """A registry view without the ``*_created`` timestamps (no dashboard reads them), adding
    the ``venue`` label to every sample when one is set."""

    def __init__(self, registry: CollectorRegistry, venue: str | None = None) -> None:
        self._registry = registry
        self._venue = venue

    def collect(self) -> Iterator[Metric]:
        for family in self._registry.collect():
            kept = Metric(family.name, family.documentation, family.type, family.unit)
            kept.samples = [self._labelled(s) for s in family.samples
                            if not s.name.endswith("_created")]
            yield kept

    def _labelled(self, sample: Sample) -> Sample:
        if self._venue is None:
            return sample
        return sample._replace(labels={"venue": self._venue, **sample.labels})


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


_UNITS = {"best_bid": "price", "best_ask": "price", "spread": "price", "position": "contracts",
          "traded_contracts_total": "contracts", "imbalance": "ratio", "spread_ratio": "ratio",
          "unrealized_pnl": "settlement currency", "realized_pnl": "settlement currency",
          "max_adverse_excursion": "settlement currency",
          "max_favorable_excursion": "settlement currency",
          "fees_estimate": "settlement currency", "venue_state": "state set",
          "regime": "state set", "open_orders": "orders", "orders_unknown": "orders"}


def _unit_of(name: str) -> str:
    if name in _UNITS:
        return _UNITS[name]
    if name.endswith(("_seconds", "_seconds_total")):
        return "seconds"
    if name.endswith("_total"):
        return "count"
    return "-"


def _set_state(gauge: Gauge, states: Sequence[str], name: str, what: str) -> None:
    current = str(name).upper()
    if current not in states:
        raise ValueError(f"unknown {what} {name!r}; expected one of {sorted(states)}")
    for state in states:
        gauge.labels(state=state).set(1.0 if state == current else 0.0)
