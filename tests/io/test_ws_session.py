"""Failure-aware reconnects of the market-data session, with a scripted connector."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import orjson
import pytest

from venueguard.core.backoff import BackoffConfig
from venueguard.core.classify import Outcome, Transport
from venueguard.io.errors import StreamError
from venueguard.io.ws_session import MarketDataSession, MdConfig
from venueguard.io.ws_transport import ConnectFailed, WsConnection, WsHandler
from venueguard.telemetry.events import EventLog

OVERLOADED = orjson.dumps({"error": {"message": "The system is currently overloaded. Please try "
                                                "again later.", "name": "HTTPError"}})
BAD_KEY = orjson.dumps({"error": {"message": "Invalid API Key.", "name": "HTTPError"}})


class ScriptedConnector:
    def __init__(self, failures: list[Outcome]) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self, url: str, handler: WsHandler, headers: Mapping[str, str],
                       timeout_s: float) -> WsConnection:
        self.calls += 1
        outcome = self.failures.pop(0) if len(self.failures) > 1 else self.failures[0]
        raise ConnectFailed(outcome, "scripted")


def session(connector: ScriptedConnector, log: EventLog, **config: object) -> MarketDataSession:
    return MarketDataSession(
        MdConfig(url="ws://127.0.0.1:1/realtime", topics=("orderBookL2:XBTUSD",),
                 backoff=BackoffConfig(base_s=0.01, cap_s=0.05), **config),  # type: ignore[arg-type]
        events=log, connector=connector)


async def test_rate_limited_handshake_waits_retry_after_then_auth_failure_stops() -> None:
    log = EventLog()
    connector = ScriptedConnector([
        Outcome(status=429, headers={"Retry-After": "0.3"}, body=b"Too many"),
        Outcome(status=401, body=BAD_KEY)])
    with pytest.raises(StreamError) as failed:
        await asyncio.wait_for(session(connector, log).run(), 5)
    assert failed.value.kind == "invalid_credentials"
    reconnecting = log.recent(event="ws.reconnecting")
    assert len(reconnecting) == 1 and float(reconnecting[0]["delay_s"]) >= 0.3
    assert connector.calls == 2  # no retry after the auth failure
    assert log.recent(event="alert")[-1]["tier"] == "critical"


async def test_overloaded_handshake_backs_off_longer() -> None:
    log = EventLog()
    connector = ScriptedConnector([Outcome(status=503, body=OVERLOADED),
                                   Outcome(status=401, body=BAD_KEY)])
    with pytest.raises(StreamError):
        await asyncio.wait_for(session(connector, log).run(), 5)
    assert float(log.recent(event="ws.reconnecting")[0]["delay_s"]) >= 0.5


async def test_unknown_failure_retries_then_alerts() -> None:
    log = EventLog()
    connector = ScriptedConnector([Outcome(status=999, body=b"?")])
    md = session(connector, log)
    task = asyncio.get_running_loop().create_task(md.run())
    for _ in range(500):
        if connector.calls >= 3:
            break
        await asyncio.sleep(0.01)
    md.stop()
    await asyncio.wait_for(task, 5)
    assert any("keeps failing" in str(a["message"]) for a in log.recent(event="alert"))


async def test_connection_rate_limit_waits_instead_of_exceeding() -> None:
    log = EventLog()
    connector = ScriptedConnector([Outcome(transport=Transport.CONNECTION_REFUSED, sent=False)])
    md = session(connector, log, max_opens_per_hour=2)
    task = asyncio.get_running_loop().create_task(md.run())
    for _ in range(200):
        if log.recent(event="ws.rate_limited"):
            break
        await asyncio.sleep(0.01)
    md.stop()
    await asyncio.wait_for(task, 5)
    assert connector.calls == 2
    assert float(log.recent(event="ws.rate_limited")[0]["wait_s"]) > 3500


def test_config_is_checked() -> None:
    with pytest.raises(ValueError):
        MdConfig(url="ws://x", topics=())
    with pytest.raises(ValueError):
        MdConfig(url="ws://x", topics=("trade",), api_key="k")
