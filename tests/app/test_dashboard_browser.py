"""The live dashboard in headless Chromium: the page loads, charts draw data, values move."""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import math
import struct
import time
from typing import Any

import pytest
from browser import Chromium

from venueguard.app.dashboard import create_dashboard_app, start_dashboard
from venueguard.telemetry.alerts import Alerts, LogSink
from venueguard.telemetry.events import EventLog
from venueguard.telemetry.metrics import Metrics
from venueguard.telemetry.series import SeriesStore

pytestmark = pytest.mark.browser

# Reads what a person sees: every data-field's text, and what each chart drew.
READ_PAGE = """(() => {
  const values = {};
  for (const el of document.querySelectorAll('[data-field]')) {
    values[el.dataset.field] = el.textContent;
  }
  const points = (sel) => {
    const p = document.querySelector(sel);
    return p ? Number(p.getAttribute('data-points')) : 0;
  };
  const resources = performance.getEntriesByType('resource').map((r) => r.name);
  return {
    values,
    venue: document.getElementById('venue-state').textContent,
    regime: document.getElementById('regime').textContent,
    bars: document.querySelectorAll('#chart-outage rect.bar-503').length,
    spread_points: points('#chart-outage path.line-spread'),
    spread_d: (document.querySelector('#chart-outage path.line-spread') || {getAttribute: () => ''})
      .getAttribute('d'),
    p50_points: points('#chart-latency path.line-p50'),
    p95_points: points('#chart-latency path.line-p95'),
    p99_points: points('#chart-latency path.line-p99'),
    reconnect_marks: document.querySelectorAll('#chart-latency line.reconnect').length,
    alerts: [...document.querySelectorAll('#alerts li')].map((li) => li.textContent),
    freshness: [...document.querySelectorAll('#freshness-table tbody tr')].map(
      (tr) => [...tr.cells].map((td) => [td.textContent, td.className])),
    updates: window.__vg.updates,
    failures: window.__vg.failures,
    resources,
  };
})()"""


def _fill_history(store: SeriesStore, now_s: float) -> None:
    """Ten minutes of an outage story: 503 bursts while the spread widens."""
    for i in range(600):
        t = now_s - 600 + i
        burst = 240 <= i < 420
        store.on_spread(0.5 + (3.0 if burst else 0.0) + 0.4 * math.sin(i / 15), t)
        store.on_latency(0.02 + (0.3 if burst else 0.0) + 0.01 * (i % 7), t)
        if burst and i % 4 == 0:
            store.on_http_503(t)
        if i in (300, 310, 500):
            store.on_reconnect(t)


def _state_provider() -> Any:
    calls = itertools.count()
    started = time.monotonic()

    def provider() -> dict[str, object]:
        n = next(calls)
        age = time.monotonic() - started
        return {
            "venue_state": "DEGRADED" if n % 2 else "HEALTHY",
            "regime": "CAUTIOUS",
            "liveness": {"connection_age_s": 30.0 + age, "data_age_s": 0.1 * (n % 9),
                         "pong_age_s": 1.5, "reconnects": n, "stale_count": 2,
                         "msgs_per_s": 40.0 + n, "fresh": True},
            "api": {"latency_p50": 0.021, "latency_p95": 0.12 + 0.001 * n, "latency_p99": 0.4,
                    "errors_by_kind": {"overload": 12 + n, "timeout": 1},
                    "http_503_per_min": 6.0},
            "orders": {"local_open": 2, "venue_open": 3, "phantoms": 1, "attempts": 10 + n,
                       "acks": 9 + n},
            "position": {"qty": 100.0, "avg_entry": 50000.5, "unrealized_pnl": 12.5 - n,
                         "realized_pnl": -3.25},
            "market": {"symbol": "XBTUSD", "best_bid": 50000.0 + n, "best_ask": 50000.5 + n,
                       "spread": 0.5, "imbalance": 0.25, "trade_rate": 3.2,
                       "volume_rate": 1500.0 + n},
            # one learned channel (its phi moves), one still on its static threshold and
            # silent past it
            "freshness": [
                {"channel": "orderBookL2:XBTUSD", "threshold_s": 1.02, "suspicion": 0.5 + n,
                 "data_age_s": 0.1},
                {"channel": "instrument:XBTUSD", "threshold_s": 60.0, "suspicion": None,
                 "data_age_s": 75.0},
            ],
        }

    return provider


async def _feed(store: SeriesStore) -> None:
    i = 0
    while True:
        now_s = time.time()
        store.on_spread(0.5 + 0.2 * (i % 5), now_s)
        store.on_latency(0.03 + 0.002 * (i % 11), now_s)
        i += 1
        await asyncio.sleep(0.2)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_dashboard_renders_and_updates_in_chromium(chromium_path: str, tmp_path) -> None:
    store = SeriesStore()
    _fill_history(store, time.time())
    log = EventLog()
    alerts = Alerts([LogSink(log)])
    alerts.fire("warning", "no pong for 16.0 s", now=0.0)
    alerts.fire("critical", "3 consecutive reconnects failed: strategy paused", now=1.0)
    app = create_dashboard_app(_state_provider(), Metrics(), series=store, events=log)
    server = await start_dashboard(app, port=0)
    feeder = asyncio.create_task(_feed(store))
    try:
        async with Chromium.launch(chromium_path, tmp_path / "profile") as browser:
            page = await browser.new_page()
            await page.navigate(server.url)
            assert await page.evaluate("document.title") == "venueguard: outage dashboard"
            await page.wait_for("window.__vg && window.__vg.updates >= 1")
            first = await page.evaluate(READ_PAGE)

            assert first["failures"] == 0
            assert first["values"]["market.symbol"] == "XBTUSD"
            assert first["regime"] == "regime CAUTIOUS"
            # 503 bars for each minute of the burst, the spread line over ten minutes,
            # the three latency quantiles, and the three reconnects in two minutes.
            assert first["bars"] >= 3
            assert first["spread_points"] >= 500
            assert min(first["p50_points"], first["p95_points"], first["p99_points"]) >= 100
            assert first["reconnect_marks"] >= 2
            assert all(r.startswith(server.url) for r in first["resources"]), first["resources"]
            assert len(first["alerts"]) == 2
            assert "critical" in first["alerts"][0] and "strategy paused" in first["alerts"][0]
            # each channel's threshold and suspicion; "static" while not learned, and its age
            # marked bad past the threshold
            book, instrument = first["freshness"]
            assert [text for text, _ in book[:3]] == ["orderBookL2:XBTUSD", "0.1 s", "1.0 s"]
            assert float(book[3][0]) >= 0.5
            assert [text for text, _ in instrument] == ["instrument:XBTUSD", "1 m 15 s",
                                                        "1 m 0 s", "static"]
            assert instrument[1][1] == "v-bad" and instrument[3][1] == "muted"

            alerts.fire("info", "reconnected after 3 failed attempts", now=2.0)

            await page.wait_for(f"window.__vg.updates >= {first['updates'] + 2}", timeout_s=10)
            second = await page.evaluate(READ_PAGE)
            changed = [k for k, v in second["values"].items() if v != first["values"][k]]
            assert {"liveness.reconnects", "orders.attempts", "market.best_bid"} <= set(changed)
            assert second["spread_d"] != first["spread_d"]  # the chart moved with new data
            assert second["failures"] == 0
            assert len(second["alerts"]) == 3 and "reconnected after 3" in second["alerts"][0]
            assert float(second["freshness"][0][3][0]) > float(first["freshness"][0][3][0])

            png = await page.screenshot(tmp_path / "dashboard.png")
        width, height = _png_size(png)
        assert width >= 1000 and height >= 600
        assert len(png) > 20_000
        from PIL import Image  # matplotlib's own dependency

        with Image.open(io.BytesIO(png)) as image:
            colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > 50  # text, badges, bars, lines: not blank
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
        await server.close()


async def test_dashboard_shows_an_unavailable_monitor_and_recovers(chromium_path: str,
                                                                    tmp_path) -> None:
    healthy = {"ok": False}

    def provider() -> dict[str, object]:
        if not healthy["ok"]:
            raise RuntimeError("monitor still starting")
        return {"venue_state": "BLOCKED", "regime": "SAFE", "liveness": {"fresh": False},
                "market": {"symbol": "ETHUSD"}}

    app = create_dashboard_app(provider, Metrics(), series=SeriesStore())
    server = await start_dashboard(app, port=0)
    try:
        async with Chromium.launch(chromium_path, tmp_path / "profile") as browser:
            page = await browser.new_page()
            await page.navigate(server.url)
            await page.wait_for("window.__vg && window.__vg.failures >= 1")
            status = await page.evaluate(
                "[document.getElementById('link').className,"
                " document.getElementById('updated').textContent]")
            assert status[0] == "dot down"
            assert "no answer from the monitor" in status[1] and "503" in status[1]

            healthy["ok"] = True
            await page.wait_for("window.__vg.updates >= 1")
            shown = await page.evaluate(
                "[document.getElementById('venue-state').textContent,"
                " document.getElementById('venue-state').className,"
                " document.getElementById('freshness').textContent,"
                " document.getElementById('symbol').textContent,"
                " document.querySelector('#chart-outage text.empty').textContent,"
                " document.querySelector('[data-field=\"liveness.data_age_s\"]').textContent]")
            assert shown == ["venue BLOCKED", "badge bad", "data STALE", "ETHUSD",
                             "waiting for data", "-"]
    finally:
        await server.close()


async def test_503s_that_began_late_in_the_minute_are_drawn_from_then(chromium_path: str,
                                                                       tmp_path) -> None:
    """503s that began 45 s into the current minute: the bars start at the :40 bin and end at
    now; no bar claims the minute's first 40 s (it used to be one full-height bar over it)."""
    now_s = time.time()
    minute = math.floor(now_s / 60) * 60
    now_s = minute + 55.0  # a fixed position in the minute; the series take times as given
    store = SeriesStore()
    for i in range(10):
        store.on_http_503(minute + 45 + i)
    app = create_dashboard_app(lambda: {"market": {"symbol": "XBTUSD"}}, Metrics(),
                               series=store, wall_clock=lambda: now_s)
    server = await start_dashboard(app, port=0)
    try:
        async with Chromium.launch(chromium_path, tmp_path / "profile") as browser:
            page = await browser.new_page()
            await page.navigate(server.url)
            await page.wait_for("window.__vg && window.__vg.updates >= 1")
            bars = await page.evaluate(
                "[...document.querySelectorAll('#chart-outage rect.bar-503')].map((r) =>"
                " [Number(r.getAttribute('x')), Number(r.getAttribute('width')),"
                "  Number(r.getAttribute('data-count'))])")
    finally:
        await server.close()
    assert len(bars) == 2, bars
    (x_a, width_a, rate_a), (x_b, width_b, rate_b) = sorted(bars)
    assert (rate_a, rate_b) == (30.0, 30.0)  # 5 in each 10-s bin: 30 a minute
    assert x_b > x_a + width_a and width_b <= width_a + 1  # the current bin ends at now
