"""What the proxy changes on the way (only the hop's own headers and an upstream ``Location``)
and what it does not (method, path and query bytes, body, other headers, compressed bodies,
websocket frames of every type), against a small upstream that echoes what it received."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from yarl import URL

from venueguard.proxy.testing import Proxied, ProxyHandle, running_proxy

pytestmark = pytest.mark.system


async def _echo(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    if request.path == "/gzip":
        return web.Response(body=gzip.compress(b"squeezed"),
                            headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"})
    if request.path == "/moved":
        origin = f"http://{request.host}"
        return web.Response(status=302, headers={"Location": f"{origin}/api/v1/elsewhere?a=1"})
    if request.path == "/chunked":
        response = web.StreamResponse(headers={"X-Kind": "chunked"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for part in (b"one,", b"two,", b"three"):
            await response.write(part)
        await response.write_eof()
        return response
    return web.json_response({"method": request.method, "raw_path": request.raw_path,
                              "headers": [[k, v] for k, v in request.headers.items()],
                              "body": body.decode("latin-1")},
                             headers={"X-Upstream": "yes", "Keep-Alive": "timeout=5"})


async def _ws(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(autoping=False)
    await ws.prepare(request)
    async for msg in ws:
        if msg.type is aiohttp.WSMsgType.TEXT and msg.data == "bye":
            await ws.close(code=4001, message=b"bye")
        elif msg.type is aiohttp.WSMsgType.TEXT:
            await ws.send_str("echo:" + msg.data)
        elif msg.type is aiohttp.WSMsgType.BINARY:
            await ws.send_bytes(b"echo:" + msg.data)
        elif msg.type is aiohttp.WSMsgType.PING:
            await ws.pong(b"upstream:" + msg.data)
            await ws.ping(b"from-upstream")
        elif msg.type is aiohttp.WSMsgType.PONG:
            await ws.send_str("got pong " + msg.data.decode())
    return ws


@pytest.fixture
async def upstream() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/socket", _ws)
    app.router.add_route("*", "/{tail:.*}", _echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _call(proxy: ProxyHandle, verb: str, path: str, **kw: Any) -> aiohttp.ClientResponse:
    return await proxy.session.request(verb, URL(proxy.base_url + path, encoded=True),
                                       allow_redirects=False, **kw)


async def test_requests_pass_unchanged_but_for_the_hop(upstream: str) -> None:
    async with running_proxy(upstream, dialect="generic") as proxy:
        path = "/api/v1/order?filter=%7B%22a%22%3A1%7D&symbol=XBTUSD&x=%2F%20"
        resp = await _call(proxy, "PUT", path, data=b'{"orderQty": 5}',
                           headers={"api-key": "K", "api-signature": "S", "X-Custom": "a b",
                                    "Connection": "X-Hop", "X-Hop": "dropped",
                                    "Content-Type": "application/json"})
        seen = orjson.loads(await resp.read())
        assert resp.headers["X-Upstream"] == "yes" and "Keep-Alive" not in resp.headers
        assert seen["method"] == "PUT" and seen["raw_path"] == path
        assert seen["body"] == '{"orderQty": 5}'
        headers = {k.lower(): v for k, v in seen["headers"]}
        assert headers["host"] == upstream.removeprefix("http://")
        assert (headers["api-key"], headers["api-signature"], headers["x-custom"]) == (
            "K", "S", "a b")
        assert "x-hop" not in headers and headers["content-length"] == "15"

        resp = await _call(proxy, "GET", "/gzip", headers={"Accept-Encoding": "gzip"})
        assert resp.headers["Content-Encoding"] == "gzip" and await resp.text() == "squeezed"
        resp = await _call(proxy, "GET", "/moved")
        assert resp.status == 302
        assert resp.headers["Location"] == proxy.base_url + "/api/v1/elsewhere?a=1"
        resp = await _call(proxy, "GET", "/chunked")
        assert await resp.read() == b"one,two,three" and resp.headers["X-Kind"] == "chunked"
        resp = await _call(proxy, "HEAD", "/anything")
        assert resp.status == 200 and await resp.read() == b""
        # an absolute-form target (as sent to a forward proxy) goes upstream in origin form
        host, port = proxy.base_url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET http://venue.example/api/v1/x?a=%2F HTTP/1.1\r\n"
                     b"Host: venue.example\r\nConnection: close\r\n\r\n")
        answer = await reader.read()
        writer.close()
        echoed = orjson.loads(answer.partition(b"\r\n\r\n")[2])
        assert echoed["raw_path"] == "/api/v1/x?a=%2F"


async def test_websocket_frames_of_every_type_pass_end_to_end(upstream: str) -> None:
    async with running_proxy(upstream, dialect="generic") as proxy, proxy.session.ws_connect(
            proxy.ws_base + "/socket", autoping=False) as ws:
        await ws.send_str("hello")
        assert (await ws.receive(timeout=5)).data == "echo:hello"
        await ws.send_bytes(b"\x00\x01")
        assert (await ws.receive(timeout=5)).data == b"echo:\x00\x01"
        await ws.ping(b"p1")
        pong = await ws.receive(timeout=5)
        assert pong.type is aiohttp.WSMsgType.PONG and pong.data == b"upstream:p1"
        ping = await ws.receive(timeout=5)  # the upstream's own ping reaches the client
        assert ping.type is aiohttp.WSMsgType.PING and ping.data == b"from-upstream"
        await ws.pong(b"mine")
        assert (await ws.receive(timeout=5)).data == "got pong mine"
        await ws.send_str("bye")
        closing = await ws.receive(timeout=5)
        assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 4001


async def test_an_upstream_connection_lost_is_lost_for_the_client(proxied: Proxied) -> None:
    sim, proxy = await proxied(rate=500.0)
    ws = await sim.session.ws_connect(proxy.ws_base + "/realtime?subscribe=trade:XBTUSD")
    for _ in range(3):
        await ws.receive(timeout=5)
    await sim.add_fault("ws_drop")  # the venue's side dies without a close frame
    kinds = []
    while not kinds or kinds[-1] is aiohttp.WSMsgType.TEXT:
        kinds.append((await ws.receive(timeout=5)).type)
    assert kinds[-1] in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    assert not proxy.server.bridges


async def test_generic_dialect_stream_faults(proxied: Proxied) -> None:
    sim, proxy = await proxied(dialect="generic", rate=2000.0)
    ws = await sim.session.ws_connect(proxy.ws_base + "/realtime?subscribe=trade:XBTUSD",
                                      autoping=False)
    for _ in range(3):
        await ws.receive(timeout=5)
    await proxy.add_fault("ws_stall")
    await ws.send_str("ping")
    texts = []
    while True:
        try:
            msg = await ws.receive(timeout=0.5)
        except TimeoutError:
            break
        texts.append(msg.data)
    assert "pong" in texts  # control still answered
    after_pong = texts[texts.index("pong") + 1:]
    assert after_pong == []  # no data after the stall took effect
    await ws.close()
    async with sim.session.post(proxy.base_url + "/_sim/faults",
                                json={"kind": "ws_gap"}) as resp:
        assert resp.status == 400  # generic knows no sequence numbers


async def test_a_client_that_stops_reading_stops_the_upstream_not_grows_the_proxy() -> None:
    """Websockets are streamed, not buffered: while the client reads nothing, the frames queued
    in the proxy stay under its high-water mark and the upstream's writes block (TCP
    back-pressure reaches it); once the client reads again, every frame arrives, in order."""
    sent: list[int] = []

    async def flood(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        with contextlib.suppress(ConnectionError, RuntimeError):
            for i in range(10_000_000):
                await ws.send_str(f"{i:08d}" + "x" * 1000)  # blocks once the path is full
                sent.append(i)
        return ws

    app = web.Application()
    app.router.add_get("/flood", flood)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with running_proxy(f"http://127.0.0.1:{port}", dialect="generic") as proxy, \
                proxy.session.ws_connect(proxy.ws_base + "/flood", max_msg_size=0) as ws:
            first = await ws.receive(timeout=5)  # then read nothing for a while
            queued: list[int] = []
            plateau: list[int] = []
            for step in range(40):
                await asyncio.sleep(0.1)
                queued += [len(b.sender) for b in proxy.server.bridges.values()]
                if step in (29, 39):
                    plateau.append(len(sent))
            assert max(queued) <= 4096 + 1  # the proxy's high-water mark, in frames
            assert plateau[0] == plateau[1] < 100_000  # the upstream is held back
            seqs = [int(first.data[:8])]
            while len(seqs) < plateau[1]:
                msg = await ws.receive(timeout=5)
                seqs.append(int(msg.data[:8]))
            assert seqs == list(range(len(seqs)))  # all of them, in order
    finally:
        await runner.cleanup()
