"""Failure-aware reconnects of the market-data session, with a scripted connector."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import orjson
import pytest

from venueguard.core.backoff import BackoffConfig
from venueguard.core.classify import Kind, Outcome, Transport
from venueguard.core.liveness import LivenessConfig
from venueguard.io.clock import LoopLag
from venueguard.io.errors import StreamError
from venueguard.io.ws_session import MarketDataSession, MdConfig
from venueguard.io.ws_transport import ConnectFailed, WsConnection, WsHandler
from venueguard.telemetry.events import EventLog
from venueguard.venues.bitmex.timefmt import format_ms

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
    assert failed.value.kind is Kind.INVALID_CREDENTIALS
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


class FakeConnection:
    def __init__(self) -> None:
        self.sent: list[bytes | str] = []
        self.closed = asyncio.Event()

    def send_text(self, data: bytes | str) -> None:
        self.sent.append(data)

    def send_ping(self) -> None:
        self.sent.append("<ping frame>")

    def abort(self) -> None:
        self.closed.set()

    async def wait_closed(self) -> None:
        await self.closed.wait()


class FakeVenue:
    """A connector whose frames the test delivers by hand."""

    def __init__(self) -> None:
        self.handler: WsHandler | None = None
        self.conn = FakeConnection()

    async def __call__(self, url: str, handler: WsHandler, headers: Mapping[str, str],
                       timeout_s: float) -> WsConnection:
        self.handler = handler
        return self.conn

    def deliver(self, size: int) -> None:
        assert self.handler is not None
        self.handler.on_text(orjson.dumps({"table": "orderBookL2", "action": "update", "data": [
            {"symbol": "XBTUSD", "id": 1, "side": "Buy", "size": size, "price": 100.0,
             "timestamp": format_ms(time.time_ns() // 1_000_000)}]}))


@pytest.mark.parametrize(("tolerance_s", "stale_expected"), [(0.05, False), (99.0, True)])
async def test_a_blocked_loop_drains_before_declaring_a_stall(tolerance_s: float,
                                                              stale_expected: bool) -> None:
    """Frames that were waiting behind a blocked loop count before the freshness verdict.

    They reach the session a few loop turns after the watchdog's timer is due (as frames behind
    a reader task do); with the lag guard disabled (tolerance 99 s) the same run is a false stall.
    """
    venue, log = FakeVenue(), EventLog()
    md = MarketDataSession(MdConfig(
        url="ws://fake/realtime", topics=("orderBookL2:XBTUSD",), lag_tolerance_s=tolerance_s,
        liveness=LivenessConfig(ping_after_s=30.0, pong_timeout_s=30.0, max_data_age_s=0.3)),
        events=log, connector=venue, lag=LoopLag(interval_s=10.0))
    loop = asyncio.get_running_loop()
    async with md:
        for _ in range(100):
            if venue.handler is not None:
                break
            await asyncio.sleep(0.01)
        assert venue.handler is not None
        venue.handler.on_text(b'{"success":true,"subscribe":"orderBookL2:XBTUSD","request":'
                              b'{"op":"subscribe","args":["orderBookL2:XBTUSD"]}}')
        venue.handler.on_text(orjson.dumps({
            "table": "orderBookL2", "action": "partial", "filter": {"symbol": "XBTUSD"},
            "data": [{"symbol": "XBTUSD", "id": 1, "side": "Buy", "size": 5, "price": 100.0,
                      "timestamp": format_ms(int(time.time() * 1000))},
                     {"symbol": "XBTUSD", "id": 2, "side": "Sell", "size": 5, "price": 101.0,
                      "timestamp": format_ms(int(time.time() * 1000))}]}))
        await md.wait_synced(2)

        def hog() -> None:
            time.sleep(0.6)  # the loop is busy past the 0.3 s threshold
            hops = [lambda: venue.deliver(7)]
            for _ in range(2):
                inner = hops[-1]
                hops.append(lambda inner=inner: loop.call_soon(inner))  # type: ignore[misc]
            loop.call_soon(hops[-1])

        await asyncio.sleep(0.1)
        loop.call_soon(hog)
        await asyncio.sleep(0.05)  # returns once the loop is free again
        await asyncio.sleep(0.05)  # the delayed frame and the watchdog have both run
        assert venue.conn.sent  # the subscribe went out
        assert bool(log.recent(event="ws.stale")) is stale_expected
        if not stale_expected:
            assert md.book("XBTUSD").is_fresh
            assert md.book("XBTUSD").best_bid() == (100.0, 7)
