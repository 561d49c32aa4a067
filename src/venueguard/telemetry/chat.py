"""Alert notifications to Slack, Discord and Telegram, each in its documented request format.

Each sink is an :class:`~venueguard.telemetry.alerts.AlertSink` built on
:class:`~venueguard.telemetry.alerts.WebhookSink` (background delivery, bounded queue, secrets
redacted, the URL never logged) with two gates in front, per sink:

- deduplication per alert key: a key delivered within ``dedup_window_s`` is not sent again
  (counted in ``deduplicated``);
- a rate limit: at most ``per_minute`` messages in any 60 s (the rest counted in
  ``rate_limited``); alerts below ``min_tier`` are ignored.

Formats (the services' public webhook documentation):

- Slack incoming webhook: ``POST`` the webhook URL with ``{"text": ...}`` (plus a ``blocks``
  section in ``mrkdwn``); Slack answers ``200 ok``.
- Discord webhook: ``POST`` the webhook URL with ``{"content": ..., "embeds": [...],
  "allowed_mentions": {"parse": []}}`` (content at most 2000 characters, embed title 256,
  description 4096; mentions disabled so an alert text never pings anyone); Discord answers 204.
- Telegram Bot API: ``POST {api_url}/bot{token}/sendMessage`` with ``{"chat_id": ..., "text":
  ..., "disable_web_page_preview": true}`` (text at most 4096 characters).

:func:`sinks_from_settings` builds the configured ones from the ``[notify.*]`` tables of
``venueguard.toml``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping

import orjson

from venueguard.telemetry.alerts import Alert, Tier, WebhookSink

_RANK = {Tier.INFO: 0, Tier.WARNING: 1, Tier.CRITICAL: 2}
_EMOJI = {Tier.INFO: ":information_source:", Tier.WARNING: ":warning:",
          Tier.CRITICAL: ":rotating_light:"}
_DISCORD_COLOURS = {Tier.INFO: 0x3498DB, Tier.WARNING: 0xF1C40F, Tier.CRITICAL: 0xE74C3C}


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def headline(alert: Alert) -> str:
    """``[CRITICAL] venue BLOCKED (repeated 3 times)``: one line for any chat service."""
    repeats = f" (x{alert.repeats + 1})" if alert.repeats else ""
    return f"[{alert.tier.value.upper()}] {alert.message}{repeats}"


class ChatSink(WebhookSink):
    """A webhook sink for one chat service, with per-key dedup, a rate limit and a tier floor."""

    service = "webhook"

    def __init__(self, url: str, *, min_tier: Tier | str = Tier.WARNING,
                 dedup_window_s: float = 300.0, per_minute: int = 20,
                 clock: Callable[[], float] = time.monotonic, timeout_s: float = 5.0) -> None:
        if dedup_window_s < 0 or per_minute < 1:
            raise ValueError("dedup_window_s must be >= 0 and per_minute >= 1")
        super().__init__(url, timeout_s=timeout_s)
        self.min_tier = Tier(min_tier)
        self.dedup_window_s = dedup_window_s
        self.per_minute = per_minute
        self._clock = clock
        self._last_by_key: dict[str, float] = {}
        self._recent: deque[float] = deque()
        self.deduplicated = 0
        self.rate_limited = 0

    def send(self, alert: Alert) -> None:
        if _RANK[alert.tier] < _RANK[self.min_tier]:
            return
        now = self._clock()
        last = self._last_by_key.get(alert.key)
        if last is not None and now - last < self.dedup_window_s:
            self.deduplicated += 1
            return
        while self._recent and now - self._recent[0] >= 60.0:
            self._recent.popleft()
        if len(self._recent) >= self.per_minute:
            self.rate_limited += 1
            return
        self._recent.append(now)
        self._last_by_key[alert.key] = now
        if len(self._last_by_key) > 10_000:  # bounded: forget keys past their window
            self._last_by_key = {k: t for k, t in self._last_by_key.items()
                                 if now - t < self.dedup_window_s}
        super().send(alert)

    def body(self, alert: Alert) -> bytes:
        return orjson.dumps(self._redactor.redact(self.payload(alert)))

    def payload(self, alert: Alert) -> Mapping[str, object]:
        raise NotImplementedError


class SlackSink(ChatSink):
    """Slack incoming webhook: ``{"text", "blocks"}``."""

    service = "slack"

    def payload(self, alert: Alert) -> Mapping[str, object]:
        text = _clip(f"{_EMOJI[alert.tier]} {headline(alert)}", 3000)
        return {"text": text,
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}},
                           {"type": "context", "elements": [
                               {"type": "mrkdwn", "text": f"key `{alert.key}`"}]}]}


class DiscordSink(ChatSink):
    """Discord webhook: ``{"content", "embeds", "allowed_mentions"}``."""

    service = "discord"

    def payload(self, alert: Alert) -> Mapping[str, object]:
        return {"content": _clip(headline(alert), 2000),
                "embeds": [{"title": _clip(f"venueguard {alert.tier.value}", 256),
                            "description": _clip(alert.message, 4096),
                            "color": _DISCORD_COLOURS[alert.tier],
                            "footer": {"text": _clip(f"key {alert.key}", 2048)}}],
                "allowed_mentions": {"parse": []}}


class TelegramSink(ChatSink):
    """Telegram Bot API ``sendMessage``: ``{"chat_id", "text", "disable_web_page_preview"}``."""

    service = "telegram"

    def __init__(self, bot_token: str, chat_id: str, *,
                 api_url: str = "https://api.telegram.org", min_tier: Tier | str = Tier.WARNING,
                 dedup_window_s: float = 300.0, per_minute: int = 20,
                 clock: Callable[[], float] = time.monotonic, timeout_s: float = 5.0) -> None:
        super().__init__(f"{api_url.rstrip('/')}/bot{bot_token}/sendMessage", min_tier=min_tier,
                         dedup_window_s=dedup_window_s, per_minute=per_minute, clock=clock,
                         timeout_s=timeout_s)
        self._redactor.register(bot_token)
        self.chat_id = chat_id

    def payload(self, alert: Alert) -> Mapping[str, object]:
        return {"chat_id": self.chat_id, "text": _clip(headline(alert), 4096),
                "disable_web_page_preview": True}


def _number(table: Mapping[str, object], key: str, default: float) -> float:
    value = table.get(key, default)
    return float(value) if isinstance(value, int | float) else default


def sinks_from_settings(tables: Mapping[str, Mapping[str, object]],
                        clock: Callable[[], float] = time.monotonic) -> list[ChatSink]:
    """The sinks configured in ``tables`` (``notify``, ``notify.slack`` ... as in the file)."""
    common = tables.get("notify", {})
    window = _number(common, "dedup_window_s", 300.0)
    per_minute = int(_number(common, "rate_limit_per_minute", 20))
    sinks: list[ChatSink] = []
    for name, cls in (("slack", SlackSink), ("discord", DiscordSink)):
        table = tables.get(f"notify.{name}", {})
        if table.get("webhook_url"):
            sinks.append(cls(str(table["webhook_url"]), min_tier=str(table.get("min_tier",
                                                                               "warning")),
                             dedup_window_s=window, per_minute=per_minute, clock=clock))
    telegram = tables.get("notify.telegram", {})
    if telegram.get("bot_token") and telegram.get("chat_id"):
        sinks.append(TelegramSink(str(telegram["bot_token"]), str(telegram["chat_id"]),
                                  api_url=str(telegram.get("api_url") or
                                              "https://api.telegram.org"),
                                  min_tier=str(telegram.get("min_tier", "warning")),
                                  dedup_window_s=window, per_minute=per_minute, clock=clock))
    return sinks
