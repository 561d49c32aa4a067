"""Regression: the transport read only what was buffered, truncating large bodies (a 500-row
GET /order of ~270 KB failed as "not JSON")."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiohttp import web

from venueguard.io.http_transport import AiohttpTransport
from venueguard.io.rest_transport import TransportFailure


async def _serve(handler: web.RequestHandler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_get("/api/v1/order", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/api/v1/order"


async def _chunked(request: web.Request) -> web.StreamResponse:
    rows = [{"orderID": f"id-{i:06d}", "clOrdID": f"vg-{i}", "text": "x" * 400} for i in range(600)]
    body = orjson.dumps(rows)
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    for start in range(0, len(body), 16_384):
        await resp.write(body[start:start + 16_384])
        await asyncio.sleep(0.001)
    await resp.write_eof()
    return resp


async def test_a_large_body_arriving_in_chunks_is_read_whole() -> None:
    runner, url = await _serve(_chunked)
    transport = AiohttpTransport()
    try:
        raw = await transport.send("GET", url, {}, None, connect_s=2, sock_read_s=5)
    finally:
        await transport.close()
        await runner.cleanup()
    rows = orjson.loads(raw.body)
    assert len(rows) == 600
    assert rows[-1]["orderID"] == "id-000599"


async def test_a_body_over_the_cap_is_refused() -> None:
    runner, url = await _serve(_chunked)
    transport = AiohttpTransport(max_body_bytes=50_000)
    try:
        with pytest.raises(TransportFailure):
            await transport.send("GET", url, {}, None, connect_s=2, sock_read_s=5)
    finally:
        await transport.close()
        await runner.cleanup()
