"""The monitor's lifecycle with stand-in market and REST sources (loopback dashboard, real
journal, real TaskGroup): ready event, live /metrics, clean stop, supervision, startup errors."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from venueguard.app.monitor import (
    Monitor,
    MonitorConfig,
    MonitorContext,
    StartupError,
    config_from_args,
)
from venueguard.app.ticker import MarketInput, VenueInput
from venueguard.io.journal import Journal
from venueguard.venues.bitmex import signing


class FakeMarket:
    def __init__(self, ctx: MonitorContext, *, fail_after_s: float | None = None) -> None:
        self.ctx = ctx
        self.fail_after_s = fail_after_s
        self.updates = 0

    async def run(self) -> None:
        self.ctx.events.emit("ws.connected", url=self.ctx.ws_url)
        self.ctx.events.emit("ws.subscribed", topic="orderBookL2:XBTUSD")
        waited = 0.0
        while True:
            await asyncio.sleep(0.05)
            waited += 0.05
            self.updates += 1
            self.ctx.metrics.ws_messages_total.labels(table="orderBookL2").inc()
            if self.fail_after_s is not None and waited >= self.fail_after_s:
                raise RuntimeError("socket exploded")

    def market_input(self, now: float) -> MarketInput:
        bid = 100.0 + self.updates % 7
        return MarketInput(fresh=True, best_bid=bid, best_ask=bid + 0.5, bid_qty=10.0,
                           ask_qty=5.0, data_age_s=0.05, top_changes_total=self.updates,
                           trades_total=self.updates, volume_total=10.0 * self.updates,
                           last_trade_now=now, connected=True, connection_age_s=1.0,
                           pong_age_s=0.5)


class FakeVenue:
    def __init__(self, ctx: MonitorContext) -> None:
        self.ctx = ctx
        self.closed = False

    async def run(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            self.ctx.metrics.observe_rest("POST", "/order", "503")
            self.ctx.metrics.rest_errors_total.labels(kind="overloaded").inc()
            assert self.ctx.on_request is not None
            self.ctx.on_request("GET /instrument", 200, 0.02, self.ctx.clock.wall_ms() / 1000)

    def venue_input(self, now: float, wall_s: float) -> VenueInput:
        return VenueInput("DEGRADED")

    async def aclose(self) -> None:
        self.closed = True


def make_sources(made: list[object], **market_kw: float
                 ) -> Callable[[MonitorContext], object]:
    async def factory(ctx: MonitorContext) -> tuple[FakeMarket, FakeVenue]:
        pair = (FakeMarket(ctx, **market_kw), FakeVenue(ctx))
        made.extend(pair)
        return pair
    return factory


def config(tmp_path: Path, **kw: object) -> MonitorConfig:
    base: dict[str, object] = {"sim_url": "http://127.0.0.1:9", "journal": tmp_path / "m.db",
                               "port": 0, "log_format": "json", "duration_s": 2.5}
    base.update(kw)
    return MonitorConfig(**base)  # type: ignore[arg-type]


def lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


async def test_monitor_runs_serves_metrics_and_stops_cleanly(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    made: list[object] = []
    monitor = Monitor(config(tmp_path), stdout=out, stderr=err,
                      sources=make_sources(made))  # type: ignore[arg-type]
    task = asyncio.create_task(monitor.run())
    for _ in range(100):
        await asyncio.sleep(0.05)
        if monitor.ready:
            break
    assert monitor.ready and monitor.dashboard is not None
    ready = [r for r in lines(out) if r["event"] == "monitor.ready"]
    assert len(ready) == 1
    url = str(ready[0]["dashboard_url"])
    assert url.startswith("http://127.0.0.1:") and ready[0]["metrics_url"] == url + "metrics"
    await asyncio.sleep(1.5)
    async with aiohttp.ClientSession() as http:
        async with http.get(url + "metrics") as r:
            assert r.status == 200
            text = await r.text()
        async with http.get(url + "api/state") as r:
            state = await r.json()
    for name in ("venueguard_ws_messages_total", "venueguard_rest_requests_total",
                 "venueguard_snapshots_total", "venueguard_best_bid", "venueguard_regime"):
        assert name in text, name
    assert state["venue_state"] == "DEGRADED"
    assert state["market"]["symbol"] == "XBTUSD" and state["market"]["best_bid"] >= 100
    assert state["snapshots"]["produced"] >= 1
    assert await asyncio.wait_for(task, 10) == 0
    records = lines(out)
    assert records[-1]["event"] == "monitor.stopped" and records[-1]["reason"] == "duration"
    assert all(set(r) >= {"ts", "event"} for r in records)
    assert isinstance(made[1], FakeVenue) and made[1].closed
    with Journal.open(tmp_path / "m.db") as journal:
        spread = journal.read_samples(0, 2**62, kind="market", name="spread")
        events = {e["event"] for e in journal.read_events(0, 2**62)}
        latency = journal.read_samples(0, 2**62, kind="api", name="latency_ms")
    assert len(spread) >= 2
    assert {"monitor.ready", "ws.connected", "ws.subscribed", "monitor.stopped"} <= events
    assert latency and latency[0].value == pytest.approx(20.0)


async def test_a_failing_component_is_reported_and_the_rest_keeps_running(
        tmp_path: Path) -> None:
    out = io.StringIO()
    monitor = Monitor(config(tmp_path, duration_s=1.5), stdout=out, stderr=io.StringIO(),
                      sources=make_sources([], fail_after_s=0.3))  # type: ignore[arg-type]
    assert await asyncio.wait_for(monitor.run(), 10) == 1
    records = lines(out)
    failed = [r for r in records if r["event"] == "monitor.task_failed"]
    assert failed and failed[0]["task"] == "market" and "socket exploded" in str(failed[0]["error"])
    assert any(r["event"] == "alert" and r["tier"] == "critical" for r in records)
    assert records[-1]["event"] == "monitor.stopped"  # it still ran to the end and closed


async def test_sigterm_ends_the_run_cleanly_with_exit_0(tmp_path: Path) -> None:
    out = io.StringIO()
    monitor = Monitor(config(tmp_path, duration_s=None), stdout=out, stderr=io.StringIO(),
                      sources=make_sources([]))  # type: ignore[arg-type]
    task = asyncio.create_task(monitor.run())
    for _ in range(100):
        await asyncio.sleep(0.05)
        if monitor.ready:
            break
    assert signal.SIGTERM in monitor.signals_installed  # else the kill below would end pytest
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(task, 10) == 0
    assert lines(out)[-1]["reason"] == "SIGTERM"
    assert monitor.signals_installed == []  # handlers removed again


async def test_port_in_use_is_a_startup_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        err = io.StringIO()
        monitor = Monitor(config(tmp_path, port=port), stdout=io.StringIO(), stderr=err,
                          sources=make_sources([]))  # type: ignore[arg-type]
        assert await monitor.run() == 2
    assert f"dashboard port {port}" in err.getvalue()


async def test_unloadable_predictor_and_bad_journal_are_startup_errors(tmp_path: Path) -> None:
    err = io.StringIO()
    monitor = Monitor(config(tmp_path, predictor="no_such_mod_vg:X"), stdout=io.StringIO(),
                      stderr=err, sources=make_sources([]))  # type: ignore[arg-type]
    assert await monitor.run() == 2
    assert "cannot import" in err.getvalue()
    bad = tmp_path / "not-a-db"
    bad.write_bytes(b"garbage" * 1000)
    err = io.StringIO()
    monitor = Monitor(config(tmp_path, journal=bad), stdout=io.StringIO(), stderr=err,
                      sources=make_sources([]))  # type: ignore[arg-type]
    assert await monitor.run() == 2
    assert "journal" in err.getvalue()


def args(**kw: object) -> argparse.Namespace:
    base: dict[str, object] = {"venue": "sim", "sim_url": None, "symbol": "xbtusd",
                               "duration": None, "journal": "./venueguard.db", "port": 8765,
                               "log_format": "pretty", "scenario": "503-lesson",
                               "trade": "none"}
    base.update(kw)
    return argparse.Namespace(**base)


def test_defaults_are_the_embedded_503_lesson() -> None:
    cfg = config_from_args(args(), {})
    assert cfg.embedded_sim and cfg.scenario == "503-lesson" and cfg.port == 8765
    assert cfg.symbol == "XBTUSD" and cfg.journal == Path("venueguard.db")
    assert cfg.api_key == signing.TEST_API_KEY
    assert signing.TEST_API_SECRET not in repr(cfg)


@pytest.mark.parametrize(
    ("kw", "env", "message"),
    [({"venue": "bitmex", "sim_url": "http://127.0.0.1:1"}, {}, "--sim-url needs --venue sim"),
     ({"sim_url": "http://example.com"}, {}, "loopback"),
     ({"sim_url": "http://127.0.0.1.example.com:80"}, {}, "loopback"),  # not a prefix match
     ({"sim_url": "https://127.0.0.1:8800"}, {}, "loopback http://"),
     ({"sim_url": "http://[::1"}, {}, "loopback"),
     # a port the monitor would have connected to in vain, looping stale-and-reconnect
     ({"sim_url": "http://127.0.0.1:\u00b2"}, {}, "--sim-url: port must be a whole number "
                                                   "from 1 to 65535, not '\u00b2'"),
     ({"sim_url": "http://127.0.0.1:\u0668\u0668"}, {}, "--sim-url: port must be a whole "),
     ({"sim_url": "http://localhost:99999"}, {}, "from 1 to 65535, not '99999'"),
     ({"sim_url": "http://[::1]:0"}, {}, "from 1 to 65535, not '0'"),
     ({"duration": 0.0}, {}, "--duration"),
     ({"port": 70000}, {}, "--port"),
     ({}, {"VENUEGUARD_API_KEY": "k"}, "both"),
     ({"venue": "bitmex", "trade": "demo"}, {}, "needs VENUEGUARD_API_KEY"),
     ({}, {"VENUEGUARD_SIM_SEED": "x"}, "VENUEGUARD_SIM_SEED must be a whole number from 0 "),
     ({}, {"VENUEGUARD_SIM_SEED": "\u0665"}, "VENUEGUARD_SIM_SEED must be a whole number")],
)
def test_bad_options_are_refused_clearly(kw: dict[str, object], env: dict[str, str],
                                         message: str) -> None:
    with pytest.raises(StartupError, match=message):
        config_from_args(args(**kw), env)


def test_real_venue_credentials_come_from_the_environment() -> None:
    cfg = config_from_args(args(venue="bitmex-testnet"),
                           {"VENUEGUARD_API_KEY": "key1", "VENUEGUARD_API_SECRET": "s3cr3t-xyz"})
    assert not cfg.is_sim and cfg.api_key == "key1" and cfg.api_secret == "s3cr3t-xyz"
    assert "s3cr3t-xyz" not in repr(cfg)
    public = config_from_args(args(venue="bitmex"), {})
    assert public.api_key is None  # monitor-only on a real venue needs no key


async def test_alerts_reach_the_webhook_as_json(tmp_path: Path) -> None:
    received: list[dict[str, object]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        cfg = config(tmp_path, duration_s=1.5, webhook_url=f"http://127.0.0.1:{port}/hook",
                     api_secret="hook-secret-value", api_key="k")
        monitor = Monitor(cfg, stdout=io.StringIO(), stderr=io.StringIO(),
                          sources=make_sources([], fail_after_s=0.2))  # type: ignore[arg-type]
        assert await asyncio.wait_for(monitor.run(), 15) == 1
    finally:
        await runner.cleanup()
    critical = [a for a in received if a.get("tier") == "critical"]
    assert critical and "market" in str(critical[0]["message"])
    assert all("hook-secret-value" not in json.dumps(a) for a in received)


def test_predictor_option_wins_over_the_environment() -> None:
    from venueguard.cli import build_parser

    parsed = build_parser().parse_args(["monitor", "--predictor", "pkg.mod:Thing"])
    cfg = config_from_args(parsed, {"VENUEGUARD_PREDICTOR": "other:One"})
    assert cfg.predictor == "pkg.mod:Thing"
    cfg = config_from_args(build_parser().parse_args(["monitor"]),
                           {"VENUEGUARD_PREDICTOR": "other:One"})
    assert cfg.predictor == "other:One"


async def test_non_loopback_host_warns_that_the_dashboard_has_no_authentication(
        tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    monitor = Monitor(config(tmp_path, host="0.0.0.0", duration_s=0.5), stdout=out, stderr=err,
                      sources=make_sources([]))  # type: ignore[arg-type]
    assert await asyncio.wait_for(monitor.run(), 10) == 0
    assert "warning" in err.getvalue() and "no authentication" in err.getvalue()
    warned = [r for r in lines(out) if r["event"] == "monitor.warning"]
    assert len(warned) == 1 and warned[0]["host"] == "0.0.0.0"
    quiet_err = io.StringIO()
    quiet = Monitor(config(tmp_path, duration_s=0.3), stdout=io.StringIO(), stderr=quiet_err,
                    sources=make_sources([]))  # type: ignore[arg-type]
    assert await asyncio.wait_for(quiet.run(), 10) == 0
    assert "no authentication" not in quiet_err.getvalue()


async def test_a_failing_component_reaches_slack_through_the_config(tmp_path: Path) -> None:
    received: list[dict[str, object]] = []

    async def slack(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/services/T/B/X", slack)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        cfg = config(tmp_path, duration_s=1.0, notify={
            "notify": {"rate_limit_per_minute": 20, "dedup_window_s": 300.0},
            "notify.slack": {"webhook_url": f"http://127.0.0.1:{port}/services/T/B/X",
                             "min_tier": "critical"}})
        monitor = Monitor(cfg, stdout=io.StringIO(), stderr=io.StringIO(),
                          sources=make_sources([], fail_after_s=0.2))  # type: ignore[arg-type]
        assert await asyncio.wait_for(monitor.run(), 15) == 1
    finally:
        await runner.cleanup()
    assert len(received) == 1
    assert str(received[0]["text"]).startswith(":rotating_light: [CRITICAL] monitor component "
                                               "market stopped")
