"""Alerts: tiers, sinks (log, memory, webhook over loopback), dedup, and the seed 002 policies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from venueguard.telemetry.alerts import (
    FAILURE_TIERS,
    VENUE_STATE_TIERS,
    Alert,
    Alerts,
    LivenessAlerts,
    LivenessThresholds,
    LogSink,
    MemorySink,
    ReconnectWatcher,
    Tier,
    WebhookSink,
)
from venueguard.telemetry.events import EventLog
from venueguard.telemetry.metrics import Metrics


def router(**kwargs: object) -> tuple[Alerts, MemorySink]:
    sink = MemorySink()
    return Alerts([sink], wall_clock=lambda: 1795435200.0, **kwargs), sink  # type: ignore[arg-type]


def test_tiers_are_the_three_of_the_seed() -> None:
    assert [t.value for t in Tier] == ["info", "warning", "critical"]
    assert FAILURE_TIERS["auth_failed"] is Tier.CRITICAL
    assert FAILURE_TIERS["server_overloaded"] is Tier.INFO
    assert VENUE_STATE_TIERS["BLOCKED"] is Tier.CRITICAL


def test_log_sink_emits_the_alert_event() -> None:
    log = EventLog()
    alerts = Alerts([LogSink(log)])
    assert alerts.fire("critical", "venue blocked (cloudflare 1010)", now=0.0, status=403)
    record = log.recent(1, event="alert")[0]
    assert record["tier"] == "critical"
    assert record["message"] == "venue blocked (cloudflare 1010)"
    assert record["status"] == 403
    alerts.fire("info", "odd fields", now=0.0, event="x", repeats=9)  # cannot clash with emit
    assert log.recent(1)[0]["message"] == "odd fields" and log.recent(1)[0]["repeats"] == 0


def test_min_tier_drops_lower_alerts() -> None:
    alerts, sink = router(min_tier=Tier.WARNING)
    assert not alerts.fire(Tier.INFO, "reconnected", now=0.0)
    assert alerts.fire(Tier.WARNING, "pong late", now=0.0)
    assert [a.tier for a in sink.alerts] == [Tier.WARNING]


def test_unknown_tier_is_an_error() -> None:
    alerts, _ = router()
    with pytest.raises(ValueError):
        alerts.fire("loud", "x", now=0.0)


def test_an_alert_storm_becomes_one_alert_plus_a_count() -> None:
    metrics = Metrics()
    alerts, sink = router(dedup_window_s=60.0, metrics=metrics)
    delivered = [alerts.fire("warning", "503 overload", now=i * 0.1) for i in range(100)]
    assert delivered.count(True) == 1
    assert len(sink.alerts) == 1
    assert alerts.next_deadline() == pytest.approx(60.0)
    alerts.poll(59.9)
    assert len(sink.alerts) == 1
    alerts.poll(60.0)
    assert len(sink.alerts) == 2
    summary = sink.alerts[1]
    assert summary.repeats == 99 and "99" in summary.message and summary.tier is Tier.WARNING
    assert alerts.next_deadline() is None
    assert metrics.snapshot()["alerts_suppressed_total"] == 99
    assert metrics.snapshot()["alerts_total"] == {"tier=info": 0.0, "tier=warning": 2.0,
                                                  "tier=critical": 0.0}
    # after the window a fresh occurrence goes straight out again
    assert alerts.fire("warning", "503 overload", now=61.0)


def test_distinct_keys_are_not_folded_together_and_lone_alerts_get_no_summary() -> None:
    alerts, sink = router(dedup_window_s=10.0)
    alerts.fire("warning", "a", now=0.0)
    alerts.fire("warning", "b", now=0.0)
    alerts.poll(20.0)
    assert [a.message for a in sink.alerts] == ["a", "b"]


def test_a_failing_sink_never_raises_into_the_caller() -> None:
    class Broken:
        def send(self, alert: Alert) -> None:
            raise RuntimeError("sink down")

    good = MemorySink()
    alerts = Alerts([Broken(), good])
    assert alerts.fire("critical", "x", now=0.0)
    assert alerts.sink_errors == 1 and len(good.alerts) == 1


# ---- webhook over loopback ------------------------------------------------------------------


@dataclass
class Hook:
    url: str
    bodies: list[dict[str, object]] = field(default_factory=list)
    status: int = 200
    delay_s: float = 0.0


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    state = Hook("")

    async def receive(request: web.Request) -> web.Response:
        await asyncio.sleep(state.delay_s)
        state.bodies.append(await request.json())
        return web.Response(status=state.status)

    app = web.Application()
    app.router.add_post("/hook/{token}", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state.url = f"http://127.0.0.1:{port}/hook/tok-98765"
    yield state
    await runner.cleanup()


async def test_webhook_posts_json_with_secrets_redacted(hook: Hook) -> None:
    log = EventLog()
    sink = WebhookSink(hook.url, timeout_s=2.0, redactor=log.redactor)
    log.register_secret("apisecret-XYZ")
    alerts = Alerts([sink])
    alerts.fire("critical", "auth failed with apisecret-XYZ", now=0.0, signature="abc123")
    assert await sink.drain(5.0)
    await sink.aclose()
    assert sink.sent == 1 and sink.failed == 0
    body = hook.bodies[0]
    assert body["tier"] == "critical"
    assert body["message"] == "auth failed with ***"
    assert body["signature"] == "***"
    assert "apisecret-XYZ" not in str(hook.bodies)


async def test_webhook_send_never_blocks_and_failures_are_counted(hook: Hook) -> None:
    hook.status = 500
    sink = WebhookSink(hook.url, timeout_s=2.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for i in range(5):
        sink.send(Alert(Tier.WARNING, f"m{i}", f"k{i}", 0.0))
    assert loop.time() - started < 0.05  # enqueue only
    assert await sink.drain(5.0)
    await sink.aclose()
    assert sink.failed == 5 and sink.sent == 0 and sink.last_error == "HTTP 500"
    assert len(hook.bodies) == 5
    sink.send(Alert(Tier.WARNING, "after close", "k", 0.0))
    assert sink.dropped == 1


async def test_webhook_timeout_and_unreachable_url_do_not_raise(hook: Hook) -> None:
    hook.delay_s = 0.3
    slow = WebhookSink(hook.url, timeout_s=0.05)
    slow.send(Alert(Tier.INFO, "slow", "k", 0.0))
    assert await slow.drain(5.0)
    await slow.aclose()
    assert slow.failed == 1 and slow.last_error == "TimeoutError"

    dead = WebhookSink("http://127.0.0.1:9/nothing", timeout_s=1.0)
    dead.send(Alert(Tier.INFO, "x", "k", 0.0))
    assert await dead.drain(5.0)
    await dead.aclose()
    assert dead.failed == 1 and dead.last_error is not None
    assert "tok-98765" not in (slow.last_error or "") + (dead.last_error or "")


async def test_webhook_queue_is_bounded_and_drops_oldest(hook: Hook) -> None:
    hook.delay_s = 0.2
    sink = WebhookSink(hook.url, timeout_s=2.0, max_queue=3)
    for i in range(10):
        sink.send(Alert(Tier.INFO, f"m{i}", f"k{i}", 0.0))
    assert sink.dropped == 7  # the worker has not run yet: only the last three are queued
    assert await sink.drain(10.0)
    await sink.aclose()
    messages = [b["message"] for b in hook.bodies]
    assert messages[-3:] == ["m7", "m8", "m9"]
    assert len(messages) <= 4


def test_drain_gives_up_on_the_loops_clock_so_virtual_time_ends_it() -> None:
    """A hook that never answers: drain's deadline is read on the running loop's clock, so on
    the virtual clock it ends at 5 virtual seconds (it once read the process clock and spun
    until 5 real seconds had passed)."""
    import time

    from venueguard.io.vloop import run_virtual

    async def scenario() -> tuple[bool, float]:
        async def never(request: web.Request) -> web.Response:
            await asyncio.sleep(3600)
            return web.Response()

        app = web.Application()
        app.router.add_post("/hook", never)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 8080).start()
        sink = WebhookSink("http://127.0.0.1:8080/hook", timeout_s=60.0)
        sink.send(Alert(Tier.INFO, "held", "k", 0.0))
        loop = asyncio.get_running_loop()
        started = loop.time()
        drained = await sink.drain(5.0)
        waited = loop.time() - started
        await sink.aclose(drain_timeout_s=0.1)
        await runner.cleanup()
        return drained, waited

    real_started = time.monotonic()
    drained, waited = run_virtual(scenario())
    assert not drained
    assert 5.0 <= waited < 5.1
    assert time.monotonic() - real_started < 4.0  # generous: virtual seconds cost no real ones


def test_webhook_without_an_event_loop_drops_and_counts() -> None:
    sink = WebhookSink("http://127.0.0.1:9/x")
    sink.send(Alert(Tier.INFO, "x", "k", 0.0))
    assert sink.dropped == 1


# ---- policies -------------------------------------------------------------------------------


def test_three_failed_reconnects_fire_critical_and_pause_once() -> None:
    alerts, sink = router()
    pauses: list[str] = []
    resumes: list[bool] = []
    watcher = ReconnectWatcher(alerts, on_pause=pauses.append,
                               on_resume=lambda: resumes.append(True))
    watcher.on_failed(1.0, "connect timeout")
    watcher.on_failed(2.0, "connect timeout")
    assert not watcher.paused and not sink.alerts
    watcher.on_failed(4.0, "connect timeout")
    assert watcher.paused and len(pauses) == 1
    assert [(a.tier, a.key) for a in sink.alerts] == [(Tier.CRITICAL, "reconnect.failed")]
    assert "3 consecutive" in sink.alerts[0].message
    watcher.on_failed(8.0)  # still down: no second pause, no second alert
    assert len(pauses) == 1 and len(sink.alerts) == 1
    watcher.on_succeeded(9.0)
    assert not watcher.paused and resumes == [True]
    assert sink.alerts[-1].tier is Tier.INFO and "4 failed" in sink.alerts[-1].message
    assert watcher.consecutive_failures == 0


def test_a_success_in_between_resets_the_count() -> None:
    alerts, sink = router()
    watcher = ReconnectWatcher(alerts)
    watcher.on_failed(1.0)
    watcher.on_failed(2.0)
    watcher.on_succeeded(3.0)
    watcher.on_failed(4.0)
    watcher.on_failed(5.0)
    assert not watcher.paused
    assert all(a.tier is Tier.INFO for a in sink.alerts)


def test_pause_can_outlast_the_reconnect_until_resumed() -> None:
    alerts, _ = router()
    watcher = ReconnectWatcher(alerts, threshold=1, resume_on_success=False)
    watcher.on_failed(1.0)
    watcher.on_succeeded(2.0)
    assert watcher.paused
    watcher.resume()
    assert not watcher.paused


def test_liveness_alerts_follow_the_seed_tiers_and_are_edge_triggered() -> None:
    alerts, sink = router()
    live = LivenessAlerts(alerts)
    live.on_sample(pong_age_s=5.0, data_age_s=1.0, msgs_per_s=20.0, now=0.0)
    assert not sink.alerts
    live.on_sample(pong_age_s=16.0, data_age_s=1.0, msgs_per_s=20.0, now=1.0)
    live.on_sample(pong_age_s=17.0, data_age_s=1.0, msgs_per_s=20.0, now=2.0)
    assert [(a.tier, a.key) for a in sink.alerts] == [(Tier.WARNING, "liveness.pong_warning")]
    live.on_sample(pong_age_s=31.0, data_age_s=21.0, msgs_per_s=20.0, now=3.0)
    keys = [(a.tier, a.key) for a in sink.alerts]
    assert (Tier.CRITICAL, "liveness.pong_critical") in keys
    assert (Tier.WARNING, "liveness.data_gap") in keys
    assert live.active >= {"pong_critical", "data_gap"}
    live.on_sample(pong_age_s=1.0, data_age_s=0.5, msgs_per_s=20.0, now=4.0)
    assert live.active == frozenset()


def test_low_message_rate_must_last_ten_seconds() -> None:
    alerts, sink = router()
    live = LivenessAlerts(alerts, LivenessThresholds(min_msgs_per_s=0.1, low_rate_for_s=10.0))
    for t in range(10):
        live.on_sample(pong_age_s=1.0, data_age_s=1.0, msgs_per_s=0.0, now=float(t))
    assert not sink.alerts
    live.on_sample(pong_age_s=1.0, data_age_s=1.0, msgs_per_s=0.0, now=10.0)
    assert [a.key for a in sink.alerts] == ["liveness.low_rate"]


def test_more_than_five_reconnects_an_hour_warns() -> None:
    alerts, sink = router()
    live = LivenessAlerts(alerts)
    for i in range(5):
        live.on_reconnect(now=i * 600.0)
    assert not sink.alerts
    live.on_reconnect(now=3000.0)
    assert [a.key for a in sink.alerts] == ["liveness.reconnect_rate"]
    live.on_reconnect(now=10_000.0)  # the old ones aged out
    assert "reconnect_rate" not in live.active
