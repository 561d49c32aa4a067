"""Dashboard HTTP endpoints through aiohttp's test client (no browser)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Mapping
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from venueguard.app.dashboard import create_dashboard_app, start_dashboard, state_from_metrics
from venueguard.telemetry.events import EventLog
from venueguard.telemetry.metrics import Metrics
from venueguard.telemetry.series import SeriesStore

T0 = 1795435200.0
STATE = {
    "venue_state": "DEGRADED", "regime": "CAUTIOUS",
    "liveness": {"connection_age_s": 12.0, "data_age_s": 0.4, "pong_age_s": 1.0, "reconnects": 1,
                 "stale_count": 0, "msgs_per_s": 55.0, "fresh": True},
    "market": {"symbol": "XBTUSD", "best_bid": 50000.0, "best_ask": 50000.5, "spread": 0.5},
}


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., object]]:
    clients: list[TestClient[web.Request, web.Application]] = []

    async def make(app: web.Application) -> TestClient[web.Request, web.Application]:
        client: TestClient[web.Request, web.Application] = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


def app_with(provider: Callable[[], object] = lambda: STATE, **kwargs: object) -> web.Application:
    return create_dashboard_app(provider, kwargs.pop("metrics", Metrics()),  # type: ignore[arg-type]
                                wall_clock=lambda: T0, **kwargs)  # type: ignore[arg-type]


async def test_page_and_static_assets_are_served(make_client) -> None:
    client = await make_client(app_with())
    page = await client.get("/")
    assert page.status == 200
    html = await page.text()
    assert "/static/dashboard.js" in html and 'id="chart-outage"' in html
    assert "http://" not in html and "https://" not in html  # no external assets
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    js = await client.get("/static/dashboard.js")
    assert js.status == 200 and "javascript" in js.headers["Content-Type"]
    assert "/api/series" in await js.text()
    css = await client.get("/static/dashboard.css")
    assert css.status == 200 and "text/css" in css.headers["Content-Type"]
    assert (await client.get("/static/../dashboard.py")).status in (403, 404)


async def test_metrics_endpoint_serves_prometheus_text(make_client) -> None:
    metrics = Metrics()
    metrics.rest_errors_total.labels(kind="overloaded").inc(4)
    client = await make_client(app_with(metrics=metrics))
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(await response.text())}
    by_kind = {s.labels["kind"]: s.value for s in families["venueguard_rest_errors"].samples}
    assert by_kind["overloaded"] == 4 and by_kind["rate_limited"] == 0


async def test_state_comes_from_the_provider_each_time(make_client) -> None:
    calls = {"n": 0}

    def provider() -> Mapping[str, object]:
        calls["n"] += 1
        return {**STATE, "liveness": {**STATE["liveness"], "reconnects": calls["n"]}}  # type: ignore[dict-item]

    client = await make_client(app_with(provider))
    first = await (await client.get("/api/state")).json()
    second = await (await client.get("/api/state")).json()
    assert first["venue_state"] == "DEGRADED" and first["now"] == T0
    assert (first["liveness"]["reconnects"], second["liveness"]["reconnects"]) == (1, 2)


async def test_async_provider_is_awaited(make_client) -> None:
    async def provider() -> Mapping[str, object]:
        return {"regime": "SAFE"}

    client = await make_client(app_with(provider))
    assert (await (await client.get("/api/state")).json())["regime"] == "SAFE"


async def test_a_failing_provider_gives_503_and_the_server_keeps_serving(make_client) -> None:
    state = {"fail": True}

    def provider() -> Mapping[str, object]:
        if state["fail"]:
            raise KeyError("book not ready")
        return STATE

    client = await make_client(app_with(provider))
    response = await client.get("/api/state")
    assert response.status == 503
    assert await response.json() == {"error": "state unavailable", "kind": "KeyError"}
    state["fail"] = False
    assert (await client.get("/api/state")).status == 200


async def test_non_mapping_state_is_refused(make_client) -> None:
    client = await make_client(app_with(lambda: ["not", "a", "dict"]))
    assert (await client.get("/api/state")).status == 503


async def test_series_endpoint_and_its_window_parameter(make_client) -> None:
    store = SeriesStore()
    store.on_http_503(T0 - 30)
    store.on_spread(0.5, T0 - 1000)
    store.on_spread(0.5, T0 - 10)
    store.on_latency(0.05, T0 - 5)
    client = await make_client(app_with(series=store))
    body = await (await client.get("/api/series")).json()
    assert body["now"] == T0 and body["window_s"] == 900
    assert body["http_503_per_min"] == [[T0 - 60, 1.0]]
    assert body["spread"] == [[T0 - 10, 0.5]]
    assert body["latency"][0][1] == pytest.approx(0.05)
    wide = await (await client.get("/api/series?window_s=3600")).json()
    assert len(wide["spread"]) == 2
    for bad in ("abc", "5", "999999"):
        assert (await client.get(f"/api/series?window_s={bad}")).status == 400


async def test_events_endpoint(make_client) -> None:
    log = EventLog()
    for i in range(5):
        log.emit("ws.reconnecting", attempt=i, delay_s=0.1)
    log.emit("alert", tier="warning", message="pong late")
    client = await make_client(app_with(events=log))
    body = await (await client.get("/api/events?n=3")).json()
    assert [e["event"] for e in body["events"]] == ["ws.reconnecting", "ws.reconnecting", "alert"]
    alerts = await (await client.get("/api/events?event=alert")).json()
    assert [e["message"] for e in alerts["events"]] == ["pong late"]
    assert (await client.get("/api/events?n=0")).status == 400
    no_log = await make_client(app_with())
    assert await (await no_log.get("/api/events")).json() == {"events": []}


async def test_read_only_by_default_has_no_post_routes(make_client) -> None:
    client = await make_client(app_with(controls={"pause": lambda: None}))
    for path in ("/api/state", "/api/control/pause", "/metrics"):
        assert (await client.post(path)).status in (404, 405)


async def test_controls_when_not_read_only_need_the_header(make_client) -> None:
    pressed: list[str] = []
    log = EventLog()
    app = app_with(read_only=False, events=log, controls={"pause": lambda: pressed.append("p")})
    client = await make_client(app)
    assert (await client.post("/api/control/pause")).status == 403
    headers = {"X-Venueguard-Control": "1"}
    assert (await client.post("/api/control/nope", headers=headers)).status == 404
    response = await client.post("/api/control/pause", headers=headers)
    assert response.status == 200 and pressed == ["p"]
    assert log.recent(1)[0] == {**log.recent(1)[0], "event": "dashboard.control", "name": "pause"}


async def test_start_dashboard_binds_loopback_on_a_free_port() -> None:
    server = await start_dashboard(app_with(), port=0)
    try:
        assert server.host == "127.0.0.1" and server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}/"
        async with aiohttp.ClientSession() as session, session.get(server.metrics_url) as r:
            assert r.status == 200
            assert "venueguard_venue_state" in await r.text()
    finally:
        await server.close()


def test_state_from_metrics_fills_the_schema_the_page_reads() -> None:
    metrics = Metrics()
    metrics.set_venue_state("COOLDOWN")
    metrics.set_regime("SAFE")
    metrics.ws_last_data_age_seconds.labels(channel="orderBookL2:XBTUSD").set(0.8)
    metrics.ws_last_data_age_seconds.labels(channel="order").set(40.0)
    metrics.ws_stale_total.labels(reason="data_age").inc(2)
    metrics.ws_stale_total.labels(reason="pong_timeout").inc()
    metrics.ws_reconnects_total.inc(3)
    metrics.rest_errors_total.labels(kind="overload").inc(7)
    metrics.open_orders.labels(view="local").set(1)
    metrics.open_orders.labels(view="venue").set(2)
    metrics.phantom_orders_total.inc()
    metrics.best_bid.labels(symbol="XBTUSD").set(100.0)
    metrics.best_bid.labels(symbol="ETHUSD").set(5.0)
    metrics.position.labels(symbol="XBTUSD").set(-30)
    store = SeriesStore()
    for i in range(100):
        store.on_latency((i + 1) / 1000.0, T0 - 30)
    for _ in range(12):
        store.on_http_503(T0 - 5)
    state = state_from_metrics(metrics, store, symbol="XBTUSD", now_s=T0,
                               extra={"position": {"avg_entry": 99.5}, "regime": "RECOVERING"})
    assert state["venue_state"] == "COOLDOWN"
    assert state["regime"] == "RECOVERING"  # extra wins
    live = state["liveness"]
    assert live["data_age_s"] == 0.8 and live["fresh"] is True
    assert live["stale_count"] == 3 and live["reconnects"] == 3
    api = state["api"]
    assert api["latency_p50"] == pytest.approx(0.0505) and api["http_503_per_min"] == 12
    assert api["errors_by_kind"] == {"overload": 7.0}
    assert state["orders"] == {"local_open": 1.0, "venue_open": 2.0, "phantoms": 1.0,
                               "attempts": 0.0, "acks": 0.0}
    assert state["position"]["qty"] == -30 and state["position"]["avg_entry"] == 99.5
    assert state["market"]["best_bid"] == 100.0 and state["market"]["best_ask"] is None


def test_state_from_metrics_falls_back_to_the_latency_histogram() -> None:
    metrics = Metrics()
    for _ in range(10):
        metrics.observe_rest("POST", "/order", "200", 0.2)
    state = state_from_metrics(metrics, None, symbol="XBTUSD", now_s=T0)
    assert 0.1 <= state["api"]["latency_p50"] <= 0.25
    assert state["liveness"]["fresh"] is False  # no data at all is not fresh
    assert state["venue_state"] == "HEALTHY" and state["regime"] == "NORMAL"


def test_state_lists_each_channels_threshold_and_suspicion() -> None:
    metrics = Metrics(venue="bitmex")  # a venue label must not leak into the channel name
    metrics.set_freshness("orderBookL2:XBTUSD", 1.25, 3.5)
    metrics.set_freshness("instrument:XBTUSD", 60.0, None)   # static: still warming up
    metrics.set_data_age("orderBookL2:XBTUSD", 0.2, T0)
    state = state_from_metrics(metrics, None, symbol="XBTUSD", now_s=T0)
    assert state["freshness"] == [
        {"channel": "instrument:XBTUSD", "threshold_s": 60.0, "suspicion": None,
         "data_age_s": None},
        {"channel": "orderBookL2:XBTUSD", "threshold_s": 1.25, "suspicion": 3.5,
         "data_age_s": 0.2},
    ]
    text = metrics.render().decode()
    assert ('venueguard_ws_freshness_threshold_seconds{channel="orderBookL2:XBTUSD",'
            'venue="bitmex"} 1.25') in text
    assert 'venueguard_ws_freshness_suspicion{channel="instrument:XBTUSD",venue="bitmex"} NaN' \
        in text


ARABIC_FIVE = "\u0665"
HOSTILE_NUMBERS = st.one_of(
    st.sampled_from(["\u00b2", "\u2464", ARABIC_FIVE, "\uff15", "60 ", " 60", "1_000", "+60",
                     "-60", "6e1", "nan", "inf", "60.0", "", "9" * 400, "0x3c", "60", "100",
                     "3600", "3601"]),
    st.integers(-10**6, 10**6).map(str), st.text(max_size=8))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from([("/api/series", "window_s", 60, 3600), ("/api/events", "n", 1, 1000)]),
       value=HOSTILE_NUMBERS, repeat=st.booleans())
async def test_query_numbers_are_ascii_digits_in_range_or_a_400_saying_so(
        make_client, name: tuple[str, str, int, int], value: str, repeat: bool) -> None:
    """int() took ' 60', '1_000' and Arabic-Indic digits; every dashboard query number is read
    as the command line reads its own."""
    path, param, low, high = name
    client = await make_client(app_with(series=SeriesStore(), events=EventLog()))
    query = "&".join([f"{param}={quote(value, safe='')}"] * (2 if repeat else 1))
    resp = await client.get(f"{path}?{query}")
    text = await resp.text()
    # the shared grammar (venueguard.numbers): optional sign, then ASCII digits
    fine = re.fullmatch(r"[+-]?[0-9]{1,30}", value, re.ASCII) is not None \
        and low <= int(value) <= high
    if fine and not repeat:
        assert resp.status == 200, (value, text)
    else:
        assert resp.status == 400, (value, repeat, text)
        assert text.startswith(param), text
        if not repeat:
            assert f"must be a whole number from {low} to {high}, not " in text, text
