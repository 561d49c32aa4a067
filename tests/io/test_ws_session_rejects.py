"""Impossible market data over a real websocket: refused, counted in
``venueguard_data_rejected_total{reason}``, logged as ``data.rejected``, and the book resyncs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp import WSMsgType, web

from venueguard.core.backoff import BackoffConfig
from venueguard.io.ws_session import MarketDataSession, MdConfig
from venueguard.telemetry.events import EventLog
from venueguard.telemetry.metrics import Metrics
from venueguard.venues.bitmex.timefmt import format_ms


def text(obj: object) -> str:
    return orjson.dumps(obj).decode()


def level(level_id: int, side: str, size: object, price: float) -> dict[str, object]:
    return {"symbol": "XBTUSD", "id": level_id, "side": side, "size": size, "price": price,
            "timestamp": format_ms(int(time.time() * 1000))}


@pytest.fixture
async def venue() -> AsyncIterator[tuple[str, list[int]]]:
    """A websocket venue that sends a partial, then a delta with a negative size, once per
    connection (``partials`` counts the connections served)."""
    partials: list[int] = []

    async def realtime(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT or msg.data == "ping":
                continue
            await ws.send_str('{"success":true,"subscribe":"orderBookL2:XBTUSD",'
                              '"request":{"op":"subscribe","args":["orderBookL2:XBTUSD"]}}')
            await ws.send_str(text({
                "table": "orderBookL2", "action": "partial", "filter": {"symbol": "XBTUSD"},
                "data": [level(1, "Buy", 100, 100.0), level(2, "Sell", 100, 100.5)]}))
            partials.append(1)
            if len(partials) == 1:
                await ws.send_str(text({"table": "orderBookL2", "action": "update",
                                                  "data": [level(1, "Buy", -100, 100.0)]}))
        return ws

    app = web.Application()
    app.router.add_get("/realtime", realtime)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"ws://127.0.0.1:{runner.addresses[0][1]}/realtime", partials
    finally:
        await runner.cleanup()


async def test_a_negative_size_is_refused_counted_and_the_book_resyncs(
        venue: tuple[str, list[int]]) -> None:
    url, partials = venue
    log, metrics = EventLog(), Metrics()
    md = MarketDataSession(MdConfig(url=url, topics=("orderBookL2:XBTUSD",),
                                    backoff=BackoffConfig(base_s=0.01, cap_s=0.05)),
                           events=log, metrics=metrics)
    async with md:
        for _ in range(500):
            if len(partials) >= 2 and md.book("XBTUSD").best_bid() is not None:
                break
            await asyncio.sleep(0.01)
        assert len(partials) >= 2, "no resync after the refused frame"
        assert md.book("XBTUSD").best_bid() == (100.0, 100)  # never -100
    rejected = log.recent(event="data.rejected")
    assert [r["reason"] for r in rejected] == ["invalid_size"]
    assert b'venueguard_data_rejected_total{reason="invalid_size"} 1.0' in metrics.render()
