"""Slack, Discord and Telegram sinks against local servers that check each documented payload."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from venueguard.telemetry.alerts import Alert, Alerts, Tier
from venueguard.telemetry.chat import (
    DiscordSink,
    SlackSink,
    TelegramSink,
    sinks_from_settings,
)

TOKEN = "123456789:AAF-test-token-value"


@dataclass
class Service:
    """One local HTTP server speaking Slack's, Discord's and Telegram's webhook endpoints."""

    base: str = ""
    received: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)


def _slack_problem(body: dict[str, object]) -> str | None:
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        return "text must be a non-empty string"
    for block in body.get("blocks", []):  # type: ignore[attr-defined]
        if block.get("type") not in ("section", "context", "header", "divider"):
            return "unknown block type"
        inner = block.get("text")
        if inner is not None and (inner.get("type") not in ("mrkdwn", "plain_text")
                                  or len(inner.get("text", "")) > 3000):
            return "bad section text"
        for element in block.get("elements", []):
            if element.get("type") not in ("mrkdwn", "plain_text", "image"):
                return "bad context element"
    return None


def _discord_problem(body: dict[str, object]) -> str | None:
    content = body.get("content")
    embeds = body.get("embeds") or []
    if not content and not embeds:
        return "content or embeds required"
    if content is not None and (not isinstance(content, str) or len(content) > 2000):
        return "content must be a string of at most 2000 characters"
    if not isinstance(embeds, list) or len(embeds) > 10:
        return "at most 10 embeds"
    for embed in embeds:
        if len(embed.get("title", "")) > 256 or len(embed.get("description", "")) > 4096:
            return "embed title/description too long"
        colour = embed.get("color", 0)
        if not isinstance(colour, int) or not 0 <= colour <= 0xFFFFFF:
            return "embed color must be an RGB integer"
        if len(embed.get("footer", {}).get("text", "")) > 2048:
            return "footer too long"
    mentions = body.get("allowed_mentions")
    if mentions is not None and not isinstance(mentions.get("parse"), list):  # type: ignore[union-attr]
        return "allowed_mentions.parse must be a list"
    return None


def _telegram_problem(body: dict[str, object]) -> str | None:
    if not isinstance(body.get("chat_id"), int | str) or body.get("chat_id") in ("", None):
        return "chat_id required"
    text = body.get("text")
    if not isinstance(text, str) or not 1 <= len(text) <= 4096:
        return "text must be 1-4096 characters"
    return None


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    svc = Service()

    async def handle(kind: str, request: web.Request, problem: str | None,
                     body: dict[str, object]) -> web.StreamResponse:
        if problem is not None:
            svc.refused.append(f"{kind}: {problem}")
            if kind == "telegram":
                return web.json_response({"ok": False, "error_code": 400,
                                          "description": problem}, status=400)
            return web.Response(status=400, text="invalid_payload")
        svc.received.setdefault(kind, []).append(body)
        if kind == "slack":
            return web.Response(text="ok")
        if kind == "discord":
            return web.Response(status=204)
        return web.json_response({"ok": True, "result": {"message_id": 1}})

    async def read(request: web.Request) -> dict[str, object] | None:
        if request.content_type != "application/json":
            return None
        data = await request.json()
        return data if isinstance(data, dict) else None

    async def slack(request: web.Request) -> web.StreamResponse:
        body = await read(request)
        return await handle("slack", request, "not JSON" if body is None else
                            _slack_problem(body), body or {})

    async def discord(request: web.Request) -> web.StreamResponse:
        body = await read(request)
        return await handle("discord", request, "not JSON" if body is None else
                            _discord_problem(body), body or {})

    async def telegram(request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != TOKEN:
            return web.json_response({"ok": False, "description": "Unauthorized"}, status=401)
        body = await read(request)
        return await handle("telegram", request, "not JSON" if body is None else
                            _telegram_problem(body), body or {})

    app = web.Application()
    app.router.add_post("/services/T000/B000/XXXX", slack)
    app.router.add_post("/api/webhooks/42/abc", discord)
    app.router.add_post("/bot{token}/sendMessage", telegram)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    svc.base = f"http://127.0.0.1:{port}"
    yield svc
    await runner.cleanup()


def alert(tier: Tier, message: str, key: str, repeats: int = 0) -> Alert:
    return Alert(tier, message, key, 1_800_000_000.0, repeats)


async def test_each_service_accepts_its_payload(service: Service) -> None:
    slack = SlackSink(f"{service.base}/services/T000/B000/XXXX", min_tier="info")
    discord = DiscordSink(f"{service.base}/api/webhooks/42/abc", min_tier="info")
    telegram = TelegramSink(TOKEN, "-1001234", api_url=service.base, min_tier="info")
    long_text = "venue BLOCKED: " + "x" * 5000
    for sink in (slack, discord, telegram):
        sink.send(alert(Tier.CRITICAL, "venue BLOCKED @everyone", "venue:blocked"))
        sink.send(alert(Tier.WARNING, long_text, "long", repeats=3))
        assert await sink.drain(5.0)
        await sink.aclose()
        assert sink.failed == 0 and sink.sent == 2, (sink.service, sink.last_error,
                                                      service.refused)
    assert service.refused == []
    first = service.received["slack"][0]
    assert first["text"] == ":rotating_light: [CRITICAL] venue BLOCKED @everyone"
    discord_body = service.received["discord"][0]
    assert discord_body["allowed_mentions"] == {"parse": []}  # the text never pings anyone
    assert discord_body["embeds"][0]["color"] == 0xE74C3C  # type: ignore[index]
    assert len(str(service.received["discord"][1]["content"])) == 2000
    tg = service.received["telegram"]
    assert tg[0]["chat_id"] == "-1001234" and tg[0]["text"] == "[CRITICAL] venue BLOCKED @everyone"
    clipped = str(tg[1]["text"])
    assert len(clipped) == 4096 and clipped.startswith("[WARNING] venue BLOCKED: xxx")
    assert clipped.endswith("…")
    short = SlackSink("http://127.0.0.1:9/x")
    assert short.payload(alert(Tier.WARNING, "m", "k", repeats=3))["text"] == \
        ":warning: [WARNING] m (x4)"


async def test_dedup_per_key_and_rate_limit_per_minute(service: Service) -> None:
    now = [0.0]
    sink = SlackSink(f"{service.base}/services/T000/B000/XXXX", dedup_window_s=300.0,
                     per_minute=3, clock=lambda: now[0])
    for _ in range(5):
        sink.send(alert(Tier.WARNING, "503 storm", "rest.503"))
    assert sink.deduplicated == 4
    for i in range(4):
        sink.send(alert(Tier.CRITICAL, f"phantom {i}", f"orders.phantom.{i}"))
    assert sink.rate_limited == 2  # 1 + 2 sent in this minute, the 4th and 5th wait
    sink.send(alert(Tier.INFO, "below the floor", "info"))  # min_tier warning: ignored
    now[0] = 61.0
    sink.send(alert(Tier.CRITICAL, "phantom 3", "orders.phantom.3"))  # a new minute: sent
    sink.send(alert(Tier.WARNING, "503 storm", "rest.503"))  # within 300 s: still deduplicated
    now[0] = 301.0
    sink.send(alert(Tier.WARNING, "503 storm", "rest.503"))  # window over: sent again
    assert await sink.drain(5.0)
    await sink.aclose()
    texts = [b["text"] for b in service.received["slack"]]
    assert texts == [":warning: [WARNING] 503 storm", ":rotating_light: [CRITICAL] phantom 0",
                     ":rotating_light: [CRITICAL] phantom 1",
                     ":rotating_light: [CRITICAL] phantom 3", ":warning: [WARNING] 503 storm"]
    assert sink.deduplicated == 5


async def test_settings_build_the_configured_sinks_and_alerts_reach_them(
        service: Service) -> None:
    sinks = sinks_from_settings({
        "notify": {"rate_limit_per_minute": 10, "dedup_window_s": 60.0},
        "notify.slack": {"webhook_url": f"{service.base}/services/T000/B000/XXXX",
                         "min_tier": "critical"},
        "notify.discord": {"webhook_url": None},
        "notify.telegram": {"bot_token": TOKEN, "chat_id": "77", "api_url": service.base,
                            "min_tier": "warning"},
    })
    assert [s.service for s in sinks] == ["slack", "telegram"]
    assert sinks[0].per_minute == 10 and sinks[0].dedup_window_s == 60.0
    alerts = Alerts(list(sinks))
    alerts.fire("warning", "no data for 21.0 s", now=0.0, key="liveness.data_gap")
    alerts.fire("critical", "3 consecutive reconnects failed", now=0.0, key="reconnect.failed")
    for sink in sinks:
        assert await sink.drain(5.0)
        await sink.aclose()
    assert [b["text"] for b in service.received["slack"]] == [
        ":rotating_light: [CRITICAL] 3 consecutive reconnects failed"]
    assert len(service.received["telegram"]) == 2
    assert TOKEN not in str(sinks[1].last_error)


async def test_a_refusing_service_is_counted_not_raised(service: Service) -> None:
    sink = TelegramSink("999:wrong-token", "1", api_url=service.base)
    sink.send(alert(Tier.CRITICAL, "x", "k"))
    assert await sink.drain(5.0)
    await sink.aclose()
    assert sink.failed == 1 and sink.last_error == "HTTP 401"
