"""The monitor's per-second bookkeeping, driven by hand (no sockets, injected time)."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest

from venueguard.app.predictor import ImbalanceMomentum, Signal
from venueguard.app.status import StatusLine
from venueguard.app.ticker import IntensityEstimator, MarketInput, Ticker, TickerParts, VenueInput
from venueguard.core.regime import RegimeDetector
from venueguard.core.snapshots import MarketView, Snapshot, SnapshotManager
from venueguard.telemetry.alerts import Alerts, MemorySink
from venueguard.telemetry.events import EventLog
from venueguard.telemetry.metrics import Metrics
from venueguard.telemetry.series import SeriesStore

WALL0 = 1_795_435_200.0
FRESH = MarketInput(fresh=True, best_bid=100.0, best_ask=100.5, bid_qty=900.0, ask_qty=100.0,
                    data_age_s=0.1, connected=True, connection_age_s=5.0, pong_age_s=1.0)


class Harness:
    def __init__(self, predictor: object | None = None) -> None:
        self.events = EventLog()
        self.metrics = Metrics()
        self.sink = MemorySink()
        self.alerts = Alerts([self.sink], wall_clock=lambda: WALL0)
        self.status_out = io.StringIO()
        self.pauses: list[str] = []
        self.resumes = 0
        self.parts = TickerParts(
            symbol="XBTUSD", events=self.events, metrics=self.metrics, series=SeriesStore(),
            alerts=self.alerts, snapshots=SnapshotManager("XBTUSD", start=0.0),
            predictor=predictor or ImbalanceMomentum(warmup=1, alpha=1.0),  # type: ignore[arg-type]
            regime=RegimeDetector(now=0.0),
            status=StatusLine(self.status_out, tty=False, plain_every_s=5.0),
            on_pause=self.pauses.append, on_resume=self._resumed)
        self.ticker = Ticker(self.parts)
        self.events.subscribe(self.ticker.on_event)
        self.t = 0.0

    def _resumed(self) -> None:
        self.resumes += 1

    def tick(self, market: MarketInput = FRESH, venue: VenueInput | None = None) -> None:
        self.t += 1.0
        self.ticker.tick(self.t, WALL0 + self.t, market, venue or VenueInput(),
                         self.metrics.snapshot())

    def named(self, event: str) -> list[dict[str, object]]:
        return self.events.recent(event=event)


def test_fresh_ticks_produce_snapshots_signals_and_gauges() -> None:
    h = Harness()
    price = 100.0
    for i in range(5):
        price += 1.0
        h.tick(replace(FRESH, best_bid=price, best_ask=price + 0.5, top_changes_total=2 * (i + 1),
                       trades_total=3 * (i + 1), volume_total=30.0 * (i + 1),
                       last_trade_now=float(i + 1)))
    stats = h.parts.snapshots.stats()
    assert stats.produced == 5 and stats.missing == 0
    snap = h.metrics.snapshot()
    assert snap["snapshots_total"] == 5.0
    assert snap["best_bid"] == {"symbol=XBTUSD": 105.0}
    assert snap["spread"] == {"symbol=XBTUSD": 0.5}
    assert snap["top_of_book_changes_total"] == {"symbol=XBTUSD": 10.0}
    assert snap["trades_total"] == {"symbol=XBTUSD": 15.0}
    assert snap["traded_contracts_total"] == {"symbol=XBTUSD": 150.0}
    ratio = snap["spread_ratio"]
    assert isinstance(ratio, dict) and ratio["regime=NORMAL"]["count"] == 5  # type: ignore[index]
    signals = h.named("predictor.signal")
    assert signals and signals[-1]["direction"] == 1  # bids heavy and price rising
    state = h.ticker.state(WALL0 + h.t)
    assert state["signal"]["direction"] == 1  # type: ignore[index]
    assert state["market"]["imbalance"] == pytest.approx(0.8)  # type: ignore[index]
    assert state["snapshots"]["produced"] == 5  # type: ignore[index]
    assert "XBTUSD" in h.status_out.getvalue()


def test_stale_book_counts_missing_snapshots_and_marks_state() -> None:
    h = Harness()
    h.tick()
    for _ in range(3):
        h.tick(replace(FRESH, fresh=False, data_age_s=25.0))
    assert h.parts.snapshots.stats().missing == 3
    assert h.metrics.snapshot()["snapshots_missing_total"] == 3.0
    state = h.ticker.state(WALL0 + h.t)
    assert state["liveness"]["fresh"] is False  # type: ignore[index]
    assert state["snapshots"]["missing_ratio"] == 0.75  # type: ignore[index]
    # The data gap rule of the liveness alerts fired once (edge-triggered).
    assert [a.key for a in h.sink.alerts].count("liveness.data_gap") == 1


def test_503_storm_moves_the_regime_to_safe_and_pauses() -> None:
    h = Harness()
    h.tick()
    h.metrics.rest_errors_total.labels(kind="overloaded").inc(40)
    for _ in range(40):
        h.metrics.observe_rest("POST", "/order", "503")
    h.tick()
    changes = h.named("regime.changed")
    assert [(c["from"], c["to"]) for c in changes] == [("NORMAL", "SAFE")]
    assert h.metrics.current_state("regime") == "SAFE"
    assert h.pauses == ["regime_safe"] and h.ticker.paused
    assert any(a.tier.value == "critical" and "SAFE" in a.message for a in h.sink.alerts)
    state = h.ticker.state(WALL0 + h.t)
    assert state["regime"] == "SAFE"
    assert state["api"]["errors_by_kind"] == {"overloaded": 40}  # type: ignore[index]
    assert state["api"]["http_503_per_min"] == 40  # type: ignore[index]
    assert state["strategy"]["pause_reasons"] == ["regime_safe"]  # type: ignore[index]


def test_three_failed_reconnects_alert_critical_and_pause_until_resubscribed() -> None:
    h = Harness()
    h.tick()
    h.events.emit("ws.disconnected", reason="stale")
    for attempt in (1, 2, 3):
        h.events.emit("ws.reconnecting", attempt=attempt, delay_s=0.5)
    assert not h.ticker.paused  # attempts 1 and 2 mean two failures so far
    h.events.emit("ws.reconnecting", attempt=4, delay_s=1.0)
    assert h.ticker.paused and h.pauses == ["reconnects_failed"]
    critical = [a for a in h.sink.alerts if a.tier.value == "critical"]
    assert len(critical) == 1 and "3 consecutive reconnects failed" in critical[0].message
    assert h.named("strategy.paused")[0]["reason"] == "reconnects_failed"
    h.events.emit("ws.subscribed", topic="orderBookL2:XBTUSD")
    assert not h.ticker.paused and h.resumes == 1
    assert h.named("strategy.resumed")


def test_book_gaps_reach_the_snapshot_features() -> None:
    h = Harness()
    h.tick()
    h.events.emit("book.gap", symbol="XBTUSD")
    h.events.emit("book.resynced", symbol="XBTUSD")
    h.tick()
    out = h.parts.snapshots.poll(h.t + 1.0, MarketView(fresh=True, best_bid=1.0, best_ask=2.0))
    assert isinstance(out[-1], Snapshot) and out[-1].gap_events == 2


class Exploding:
    name = "exploding"

    def on_snapshot(self, snapshot: Snapshot) -> Signal | None:
        raise RuntimeError("model file missing")


def test_a_failing_predictor_is_switched_off_not_fatal() -> None:
    h = Harness(predictor=Exploding())
    for _ in range(7):
        h.tick()
    errors = h.named("predictor.error")
    assert len(errors) == 5 and "model file missing" in str(errors[0]["error"])
    assert not h.ticker.predictor_enabled
    assert any(a.key == "predictor.disabled" for a in h.sink.alerts)
    assert h.parts.snapshots.stats().produced == 7  # snapshots go on


def test_probe_latency_feeds_the_dashboard_quantiles() -> None:
    h = Harness()
    for i, latency in enumerate((0.01, 0.02, 0.03, 0.5)):
        h.ticker.on_request("GET /instrument", 200, latency, WALL0 + i)
    h.ticker.on_request("POST /order", None, None, WALL0 + 5)  # no response: no latency
    h.tick()
    api = h.ticker.state(WALL0 + 6)["api"]
    assert api["latency_p50"] == pytest.approx(0.025)  # type: ignore[index]
    assert api["latency_p99"] > 0.4  # type: ignore[index]


def test_venue_state_reaches_gauge_and_state() -> None:
    h = Harness()
    h.tick(venue=VenueInput("COOLDOWN", until_wall_s=WALL0 + 120.0))
    assert h.metrics.current_state("venue_state") == "COOLDOWN"
    state = h.ticker.state(WALL0 + 1)
    assert state["venue_state"] == "COOLDOWN"
    assert state["venue_state_until"] == "2026-11-23T12:02:00.000Z"


def test_intensity_estimator() -> None:
    est = IntensityEstimator(slow_tau_s=100.0)
    assert est.update(10.0, 0.0) == 1.0
    for t in range(1, 300):
        est.update(10.0, float(t))
    assert est.update(10.0, 300.0) == pytest.approx(1.0)
    assert est.update(50.0, 301.0) > 4.0
    assert est.update(float("nan"), 302.0) == 1.0


def test_liveness_and_api_metrics_the_sessions_leave_to_the_monitor() -> None:
    h = Harness()
    clock = [100.0]
    h.parts.clock = lambda: clock[0]
    h.tick(replace(FRESH, lag_s=0.25))
    h.events.emit("book.gap", symbol="XBTUSD", reason="unknown_id")
    h.events.emit("ws.disconnected", reason="resync")
    clock[0] = 100.8
    h.events.emit("ws.reconnecting", attempt=1, delay_s=0.5)
    clock[0] = 101.5
    h.events.emit("ws.subscribed", topic="orderBookL2:XBTUSD")
    for _ in range(4):
        h.metrics.observe_rest("POST", "/order", "503")
    h.tick()
    h.tick()  # a second tick must not count the same 503s again
    snap = h.metrics.snapshot()
    assert snap["gap_events_total"] == 1.0
    assert snap["ws_lag_seconds"] == 0.25
    assert "rest_503_total" not in snap  # counted once, by status, in rest_requests_total
    assert h.parts.series.http_503_last_minute(WALL0 + 2) == 4
    reconnect = snap["ws_reconnect_seconds"]
    assert isinstance(reconnect, dict) and reconnect["count"] == 1.0
    assert reconnect["sum"] == pytest.approx(1.5)


def test_the_watched_symbols_counters_start_at_zero() -> None:
    """Known labels start at 0: a spike counter with no sample until the first spike reads as
    a missing metric, not as "none yet"."""
    h = Harness()
    text = h.metrics.render().decode()
    for name in ("imbalance_spikes_total", "top_of_book_changes_total", "trades_total",
                 "traded_contracts_total"):
        assert f'venueguard_{name}{{symbol="XBTUSD"}} 0.0' in text, name
