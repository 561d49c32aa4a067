"""The monitor's one-second tick, and the dashboard state it maintains.

:class:`Ticker` is the monitor's bookkeeping, kept apart from the asyncio wiring so it can be
driven by hand in tests. Each :meth:`Ticker.tick` takes what the sessions say at that moment
(:class:`MarketInput`, :class:`VenueInput`) and a :meth:`Metrics.snapshot`, then:

1. feeds the snapshot manager (churn and trades as counter increments), polls it, hands every
   produced snapshot to the predictor and counts missing ones;
2. turns new REST failures (``rest_errors_total`` increments by kind) and market intensity into
   regime facts, polls the regime detector, logs ``regime.changed`` and alerts;
3. feeds the liveness alerts (pong age, data gap, message rate);
4. updates the market gauges, the dashboard series (503s, spread, reconnects) and the status
   line, and hands a row of samples to the journal recorder.

Events from the EventLog go to :meth:`Ticker.on_event` (reconnect attempts drive the
``ReconnectWatcher``: 3 failed reconnects -> critical alert and the strategy paused).
Probe results go to :meth:`Ticker.on_request`. :meth:`Ticker.state` is the dashboard's state
provider (schema in :mod:`venueguard.app.dashboard`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from venueguard.app.predictor import Predictor, Signal
from venueguard.app.recorder import MarketFacts, Recorder, latency_row, sample_rows
from venueguard.app.status import StatusLine, format_status
from venueguard.core.kinds import Kind
from venueguard.core.regime import Regime, RegimeDetector
from venueguard.core.snapshots import MarketView, MissedSnapshot, Snapshot, SnapshotManager
from venueguard.telemetry.alerts import Alerts, LivenessAlerts, ReconnectWatcher, Tier
from venueguard.telemetry.events import EventLog, iso_utc_ms
from venueguard.telemetry.metrics import VENUE_STATE_CODES, Metrics
from venueguard.telemetry.series import SeriesStore

_REGIME_TIERS = {Regime.NORMAL: Tier.INFO, Regime.CAUTIOUS: Tier.WARNING,
                 Regime.SAFE: Tier.CRITICAL, Regime.RECOVERING: Tier.INFO}
_MAX_FEED_PER_TICK = 10_000  # bound on regime facts replayed from one counter jump


@dataclass(frozen=True, slots=True)
class MarketInput:
    """The market-data session's view at one moment (None where unknown)."""

    fresh: bool = False
    best_bid: float | None = None
    best_ask: float | None = None
    bid_qty: float = 0.0  # resting size over the top levels, for the imbalance
    ask_qty: float = 0.0
    data_age_s: float | None = None
    top_changes_total: int = 0  # cumulative best bid/ask changes seen by the book
    trades_total: int = 0  # cumulative trades and volume seen by the tape
    volume_total: float = 0.0
    last_trade_now: float | None = None  # monotonic time of the newest trade
    connected: bool = False
    connection_age_s: float | None = None
    pong_age_s: float | None = None
    lag_s: float | None = None  # receive time minus the venue's timestamp, latest trade


@dataclass(frozen=True, slots=True)
class VenueInput:
    """The REST side's view: venue health state and when a cooldown ends (wall seconds)."""

    state: str = "HEALTHY"
    until_wall_s: float | None = None


class IntensityEstimator:
    """Market intensity ~1 in normal times: short-term trade rate over its slow average."""

    def __init__(self, slow_tau_s: float = 300.0) -> None:
        self.slow_tau_s = slow_tau_s
        self._slow: float | None = None
        self._last: float | None = None

    def update(self, trade_rate: float, now: float) -> float:
        if not math.isfinite(trade_rate) or trade_rate < 0:
            return 1.0
        if self._slow is None or self._last is None:
            self._slow, self._last = max(trade_rate, 1e-9), now
            return 1.0
        dt = max(0.0, now - self._last)
        self._last = now
        weight = 1.0 - math.exp(-dt / self.slow_tau_s)
        self._slow += weight * (trade_rate - self._slow)
        return trade_rate / self._slow if self._slow > 1e-9 else 1.0


class _Deltas:
    """Increments of cumulative counters between two metrics snapshots."""

    def __init__(self) -> None:
        self._prev: dict[str, float] = {}

    def step(self, key: str, value: float) -> float:
        prev = self._prev.get(key, 0.0)
        self._prev[key] = value
        return value - prev if value >= prev else value


def _labelled(snapshot: Mapping[str, object], name: str) -> dict[str, float]:
    value = snapshot.get(name)
    if not isinstance(value, Mapping):
        return {}
    return {str(k): float(v) for k, v in value.items() if isinstance(v, int | float)}


def _number(snapshot: Mapping[str, object], name: str) -> float:
    value = snapshot.get(name)
    if isinstance(value, int | float):
        return float(value)
    return sum(_labelled(snapshot, name).values())


@dataclass(slots=True)
class TickerParts:
    """What the ticker drives; built by the monitor (tests build their own)."""

    symbol: str
    events: EventLog
    metrics: Metrics
    series: SeriesStore
    alerts: Alerts
    snapshots: SnapshotManager
    predictor: Predictor
    regime: RegimeDetector
    status: StatusLine | None = None
    recorder: Recorder | None = None
    venue_name: str = "sim"
    trading: str = "none"
    on_pause: Callable[[str], None] | None = None
    on_resume: Callable[[], None] | None = None
    extra_state: Callable[[], Mapping[str, object]] | None = None
    max_predictor_errors: int = 5
    started_at: float = 0.0
    clock: Callable[[], float] | None = None  # monotonic; events are timed with it if given


class Ticker:
    """The monitor's per-second bookkeeping (see the module docstring for the order of work)."""

    def __init__(self, parts: TickerParts) -> None:
        self.p = parts
        self.liveness_alerts = LivenessAlerts(parts.alerts)
        self.reconnects = ReconnectWatcher(parts.alerts, on_pause=self._pause_for_reconnects,
                                           on_resume=self._resume_after_reconnect)
        self.intensity = IntensityEstimator()
        self._deltas = _Deltas()
        self._pause_reasons: set[str] = set()
        self._predictor_errors = 0
        self.predictor_enabled = True
        self.last_signal: Signal | None = None
        self.signals = 0
        self._market = MarketInput()
        self._venue = VenueInput()
        self._metrics: Mapping[str, object] = {}
        self._msgs_per_s = 0.0
        self._last_tick: float | None = None
        self._intensity = 1.0
        self._last_snapshot: dict[str, float] = {}
        self._reconnect_pending = False
        self._disconnected_at: float | None = None
        metrics = parts.metrics  # the watched symbol's counters exist from the start, at 0
        for counter in (metrics.imbalance_spikes_total, metrics.top_of_book_changes_total,
                        metrics.trades_total, metrics.traded_contracts_total):
            counter.labels(symbol=parts.symbol)

    # -- facts from elsewhere ------------------------------------------------------------------
    def on_event(self, record: Mapping[str, object]) -> None:
        """EventLog subscriber: reconnect attempts, successful subscriptions, book gaps."""
        event = record.get("event")
        if self.p.clock is not None:
            now = self.p.clock()
        else:
            now = self._last_tick if self._last_tick is not None else self.p.started_at
        if event == "ws.disconnected" and self._disconnected_at is None:
            self._disconnected_at = now
        if event == "ws.reconnecting":
            # A reconnect attempt failed when the next one starts before any subscription
            # succeeded (connect refused, auth or subscribe timed out, stale at once...).
            self.liveness_alerts.on_reconnect(now)
            if self._reconnect_pending:
                self.reconnects.on_failed(now, str(record.get("reason", "")))
            self._reconnect_pending = True
        elif event == "ws.subscribed":
            self._reconnect_pending = False
            self.reconnects.on_succeeded(now)
            if self._disconnected_at is not None:
                self.p.metrics.ws_reconnect_seconds.observe(max(0.0, now - self._disconnected_at))
                self._disconnected_at = None
        elif event in ("book.gap", "book.resynced"):
            self.p.snapshots.on_gap(now)
            if event == "book.gap":
                self.p.metrics.gap_events_total.inc()

    def on_request(self, endpoint: str, status: int | None, latency_s: float | None,
                   wall_s: float) -> None:
        """A REST request finished (the probe's, or a trader's): latency for the charts."""
        if latency_s is not None and status is not None:
            self.p.series.on_latency(latency_s, wall_s)
            if self.p.recorder is not None:
                self.p.recorder.add_samples([latency_row(wall_s, endpoint, status, latency_s)])

    # -- pause ---------------------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        return bool(self._pause_reasons)

    def _set_paused(self, reason: str, on: bool) -> None:
        was = self.paused
        (self._pause_reasons.add if on else self._pause_reasons.discard)(reason)
        if self.paused and not was:
            self.p.events.emit("strategy.paused", reason=reason)
            if self.p.on_pause is not None:
                self.p.on_pause(reason)
        elif was and not self.paused:
            self.p.events.emit("strategy.resumed", reason=reason)
            if self.p.on_resume is not None:
                self.p.on_resume()

    def _pause_for_reconnects(self, message: str) -> None:
        self._set_paused("reconnects_failed", True)

    def _resume_after_reconnect(self) -> None:
        self._set_paused("reconnects_failed", False)

    # -- the tick ------------------------------------------------------------------------------
    def tick(self, now: float, wall_s: float, market: MarketInput, venue: VenueInput,
             metrics: Mapping[str, object]) -> None:
        """One tick at monotonic ``now`` / wall ``wall_s`` (call about once a second)."""
        p = self.p
        dt = now - self._last_tick if self._last_tick is not None else 0.0
        self._last_tick, self._market, self._venue, self._metrics = now, market, venue, metrics
        p.alerts.poll(now)
        self._feed_snapshots(now, market)
        self._feed_regime(now, metrics)
        msgs = self._deltas.step("ws_messages", _number(metrics, "ws_messages_total"))
        if dt > 0:
            self._msgs_per_s = msgs / dt
        self.liveness_alerts.on_sample(pong_age_s=market.pong_age_s, data_age_s=market.data_age_s,
                                       msgs_per_s=self._msgs_per_s if market.connected else None,
                                       now=now)
        self._update_gauges_and_series(wall_s, market, venue, metrics)
        if p.recorder is not None:
            stats = p.snapshots.stats()
            p.recorder.add_samples(sample_rows(
                int(wall_s * 1000), metrics, self._facts(now, market),
                snapshots_produced=stats.produced, snapshots_missing=stats.missing,
                regime_code=p.regime.regime.gauge,
                venue_state_code=VENUE_STATE_CODES.get(venue.state, -1),
                position=self._position(metrics)))
        if p.status is not None:
            p.status.show(format_status(self.state(wall_s), elapsed_s=now - p.started_at,
                                        width=p.status.columns), now)

    def _facts(self, now: float, m: MarketInput) -> MarketFacts:
        trade_age = None if m.last_trade_now is None else max(0.0, now - m.last_trade_now)
        last = self._last_snapshot
        return MarketFacts(self.p.symbol, m.best_bid, m.best_ask, m.data_age_s, trade_age,
                           last.get("imbalance"), last.get("trade_rate"), last.get("volume_rate"))

    def _feed_snapshots(self, now: float, m: MarketInput) -> None:
        p = self.p
        top = self._deltas.step("top_changes", float(m.top_changes_total))
        trades = self._deltas.step("trades", float(m.trades_total))
        volume = self._deltas.step("volume", m.volume_total)
        p.snapshots.on_top_changes(int(top), now)
        p.snapshots.on_trades(int(trades), volume, now, m.last_trade_now)
        if top > 0:
            p.metrics.top_of_book_changes_total.labels(symbol=p.symbol).inc(top)
        if trades > 0:
            p.metrics.trades_total.labels(symbol=p.symbol).inc(trades)
        if volume > 0:
            p.metrics.traded_contracts_total.labels(symbol=p.symbol).inc(volume)
        view = MarketView(fresh=m.fresh, best_bid=m.best_bid, best_ask=m.best_ask,
                          bid_qty=m.bid_qty, ask_qty=m.ask_qty, data_age_s=m.data_age_s,
                          regime=p.regime.regime.value, venue_state=self._venue.state)
        spikes_before = p.snapshots.stats().imbalance_spikes
        for outcome in p.snapshots.poll(now, view):
            if isinstance(outcome, MissedSnapshot):
                p.metrics.snapshots_missing_total.inc(outcome.slots)
                continue
            p.metrics.snapshots_total.inc()
            self._last_snapshot = {"imbalance": outcome.imbalance,
                                   "trade_rate": outcome.trade_rate_per_s,
                                   "volume_rate": outcome.volume_per_s,
                                   "churn": outcome.churn_per_s}
            p.metrics.imbalance.labels(symbol=p.symbol).set(outcome.imbalance)
            p.metrics.spread_ratio.labels(regime=outcome.regime).observe(
                outcome.spread_bps / 10_000.0)
            self._intensity = self.intensity.update(outcome.trade_rate_per_s, now)
            self._predict(outcome)
        spikes = p.snapshots.stats().imbalance_spikes - spikes_before
        if spikes:
            p.metrics.imbalance_spikes_total.labels(symbol=p.symbol).inc(spikes)

    def _predict(self, snapshot: Snapshot) -> None:
        if not self.predictor_enabled:
            return
        try:
            signal = self.p.predictor.on_snapshot(snapshot)
        except Exception as exc:  # a plugin's bug must not stop the monitor
            self._predictor_errors += 1
            self.p.events.emit("predictor.error", predictor=self.p.predictor.name,
                               error=f"{type(exc).__name__}: {exc}"[:300],
                               count=self._predictor_errors)
            if self._predictor_errors >= self.p.max_predictor_errors:
                self.predictor_enabled = False
                self.p.alerts.fire(Tier.WARNING, f"predictor {self.p.predictor.name} switched "
                                   f"off after {self._predictor_errors} errors",
                                   now=snapshot.ts, key="predictor.disabled")
            return
        if isinstance(signal, Signal):
            self.last_signal = signal
            self.signals += 1
            self.p.events.emit("predictor.signal", predictor=signal.predictor,
                               direction=signal.direction, strength=round(signal.strength, 4),
                               reason=signal.reason, paused=self.paused)

    def _feed_regime(self, now: float, metrics: Mapping[str, object]) -> None:
        p = self.p
        for kind_label, total in _labelled(metrics, "rest_errors_total").items():
            name = kind_label.partition("=")[2]
            n = int(self._deltas.step(f"err:{name}", total))
            try:
                kind = Kind(name)
            except ValueError:
                kind = Kind.UNKNOWN
            for _ in range(min(n, _MAX_FEED_PER_TICK)):
                p.regime.on_outcome(kind, now)
        p.regime.on_intensity(self._intensity, now)
        for change in p.regime.poll(now):
            p.events.emit("regime.changed", from_=change.from_.value, to=change.to.value,
                          reason=change.reason, score=round(change.score, 2),
                          intensity=round(change.intensity, 2))
            p.metrics.set_regime(change.to.value)
            p.alerts.fire(_REGIME_TIERS[change.to], f"regime {change.from_.value} -> "
                          f"{change.to.value}: {change.reason}", now=now,
                          key=f"regime.{change.to.value}")
            self._set_paused("regime_safe", change.to is Regime.SAFE)

    def _update_gauges_and_series(self, wall_s: float, m: MarketInput, venue: VenueInput,
                                  metrics: Mapping[str, object]) -> None:
        p = self.p
        if m.best_bid is not None and m.best_ask is not None:
            p.metrics.best_bid.labels(symbol=p.symbol).set(m.best_bid)
            p.metrics.best_ask.labels(symbol=p.symbol).set(m.best_ask)
            p.metrics.spread.labels(symbol=p.symbol).set(m.best_ask - m.best_bid)
            p.series.on_spread(m.best_ask - m.best_bid, wall_s)
        if m.lag_s is not None and math.isfinite(m.lag_s):
            p.metrics.ws_lag_seconds.set(m.lag_s)
        if m.last_trade_now is not None and self._last_tick is not None:
            p.metrics.ws_last_trade_age_seconds.labels(symbol=p.symbol).set(
                max(0.0, self._last_tick - m.last_trade_now))
        if venue.state in VENUE_STATE_CODES:
            p.metrics.set_venue_state(venue.state)
        http_503 = sum(v for k, v in _labelled(metrics, "rest_requests_total").items()
                       if "status=503" in k.split(","))
        new_503 = int(self._deltas.step("http_503", http_503))
        if new_503:
            p.series.on_http_503(wall_s, new_503)
        for _ in range(int(self._deltas.step("reconnects", _number(metrics,
                                                                   "ws_reconnects_total")))):
            p.series.on_reconnect(wall_s)

    @staticmethod
    def _position(metrics: Mapping[str, object]) -> float | None:
        values = _labelled(metrics, "position")
        return sum(values.values()) if values else None

    # -- the dashboard's state -----------------------------------------------------------------
    def state(self, wall_s: float) -> dict[str, object]:
        p, m, metrics = self.p, self._market, self._metrics
        quantiles = p.series.latency_quantiles(wall_s, window_s=300.0)
        stats = p.snapshots.stats()
        spread = (m.best_ask - m.best_bid if m.best_bid is not None and m.best_ask is not None
                  else None)
        open_orders = _labelled(metrics, "open_orders")
        state: dict[str, object] = {
            "venue_state": self._venue.state,
            "venue_state_until": (iso_utc_ms(self._venue.until_wall_s)
                                  if self._venue.until_wall_s is not None else None),
            "regime": p.regime.regime.value,
            "liveness": {"connection_age_s": m.connection_age_s, "data_age_s": m.data_age_s,
                         "pong_age_s": m.pong_age_s,
                         "reconnects": int(_number(metrics, "ws_reconnects_total")),
                         "stale_count": int(_number(metrics, "ws_stale_total")),
                         "msgs_per_s": round(self._msgs_per_s, 2), "fresh": m.fresh},
            "api": {"latency_p50": quantiles["p50"], "latency_p95": quantiles["p95"],
                    "latency_p99": quantiles["p99"],
                    "errors_by_kind": {k.partition("=")[2]: int(v) for k, v in
                                       _labelled(metrics, "rest_errors_total").items() if v},
                    "http_503_per_min": p.series.http_503_last_minute(wall_s)},
            "orders": {"local_open": int(open_orders.get("view=local", 0)),
                       "venue_open": int(open_orders.get("view=venue", 0)),
                       "phantoms": int(_number(metrics, "phantom_orders_total")),
                       "attempts": int(_number(metrics, "order_attempts_total")),
                       "acks": int(_number(metrics, "order_acks_total"))},
            "position": {"qty": self._position(metrics) or 0.0,
                         "avg_entry": None,
                         "unrealized_pnl": metrics.get("unrealized_pnl"),
                         "realized_pnl": metrics.get("realized_pnl")},
            "market": {"symbol": p.symbol, "best_bid": m.best_bid, "best_ask": m.best_ask,
                       "spread": spread, "imbalance": self._last_snapshot.get("imbalance"),
                       "trade_rate": self._last_snapshot.get("trade_rate"),
                       "volume_rate": self._last_snapshot.get("volume_rate")},
            "snapshots": {"produced": stats.produced, "missing": stats.missing,
                          "missing_ratio": round(stats.missing_ratio, 4),
                          "missing_by_reason": dict(stats.missing_by_reason)},
            "signal": ({"predictor": self.last_signal.predictor,
                        "direction": self.last_signal.direction,
                        "strength": self.last_signal.strength, "reason": self.last_signal.reason}
                       if self.last_signal is not None else {}),
            "strategy": {"trading": p.trading, "paused": self.paused,
                         "pause_reasons": sorted(self._pause_reasons),
                         "predictor": p.predictor.name,
                         "predictor_enabled": self.predictor_enabled},
            "venue": {"name": p.venue_name, "intensity": round(self._intensity, 3)},
        }
        if p.extra_state is not None:
            state.update(p.extra_state())
        return state

