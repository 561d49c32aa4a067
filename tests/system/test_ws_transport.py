"""Both websocket transports: frames, pings answered, failures mapped for the classifier."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from venueguard.core.classify import Transport, classify
from venueguard.io.ws_transport import ConnectFailed, WsConnector, connect_aiohttp, connect_picows
from venueguard.sim.testing import SimHandle, running_sim

pytestmark = [pytest.mark.system, pytest.mark.virtual_time]
CONNECTORS = [connect_aiohttp, connect_picows]


class Collect:
    def __init__(self) -> None:
        self.texts: list[bytes] = []
        self.pongs = 0
        self.closed = asyncio.Event()

    def on_text(self, payload: bytes) -> None:
        self.texts.append(payload)

    def on_pong_frame(self) -> None:
        self.pongs += 1

    def on_closed(self) -> None:
        self.closed.set()


@pytest.fixture
async def sim() -> AsyncIterator[SimHandle]:
    async with running_sim(scenario="calm", seed=3, rate_msgs_s=20.0, book_format="modern",
                           symbols=("XBTUSD",)) as handle:
        yield handle


@pytest.mark.parametrize("connector", CONNECTORS)
async def test_text_ping_pong_and_protocol_ping(sim: SimHandle, connector: WsConnector) -> None:
    got = Collect()
    conn = await connector(sim.ws_url, got, {}, 5.0)
    conn.send_text(b"ping")
    conn.send_ping()
    for _ in range(200):
        if b"pong" in got.texts and got.pongs:
            break
        await asyncio.sleep(0.01)
    assert got.texts[0].startswith(b'{"info":"Welcome')
    assert b"pong" in got.texts and got.pongs >= 1
    conn.abort()
    await asyncio.wait_for(got.closed.wait(), 5)
    await asyncio.wait_for(conn.wait_closed(), 5)


@pytest.mark.parametrize("connector", CONNECTORS)
async def test_refused_connection_is_a_transport_failure(connector: WsConnector) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectFailed) as failed:
        await connector(f"ws://127.0.0.1:{port}/realtime", Collect(), {}, 2.0)
    assert failed.value.outcome.transport is Transport.CONNECTION_REFUSED
    assert failed.value.outcome.sent is False
    assert classify(failed.value.outcome).kind.value == "transient_network"


@pytest.mark.parametrize("connector", CONNECTORS)
async def test_refused_upgrade_carries_the_http_status(sim: SimHandle,
                                                       connector: WsConnector) -> None:
    with pytest.raises(ConnectFailed) as failed:
        await connector(sim.api_url.replace("http://", "ws://") + "/instrument", Collect(), {},
                        2.0)
    assert failed.value.outcome.status is not None and failed.value.outcome.status != 101


@pytest.mark.parametrize("keepalive_s", [0.2, None])
async def test_a_busy_stream_still_measures_its_pong_age(sim: SimHandle,
                                                         keepalive_s: float | None) -> None:
    """Liveness pings only after silence, so on a stream that never goes quiet no pong was ever
    seen and the dashboard's pong age stayed unknown: the keepalive ping measures it."""
    from venueguard.io.ws_session import MarketDataSession, MdConfig
    from venueguard.telemetry.metrics import Metrics

    metrics = Metrics()
    md = MarketDataSession(MdConfig(url=sim.ws_url, topics=("orderBookL2:XBTUSD",),
                                    keepalive_ping_s=keepalive_s, metrics_interval_s=0.1),
                           metrics=metrics)
    task = asyncio.create_task(md.run())
    try:
        await asyncio.sleep(1.5)
        assert md.live
        status = md.state.liveness.status(md.clock.monotonic())
        if keepalive_s is None:  # data flows the whole time: no liveness ping, no pong
            assert status.pong_age_s is None
        else:
            assert status.pong_age_s is not None and 0 <= status.pong_age_s < 1.0
            assert b"venueguard_ws_pong_age_seconds " in metrics.render()
    finally:
        md.stop()
        await asyncio.wait_for(task, 5)
