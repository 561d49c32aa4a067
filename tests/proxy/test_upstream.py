"""The REST hop's keep-alive client against a scripted raw server: every framing, interim answers,
keep-alive and close, stale pooled connections, malformed answers and timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from venueguard.proxy.upstream import UpstreamClosed, UpstreamPool, UpstreamUnreachable


@asynccontextmanager
async def server(answers: list[bytes], *, close_after: set[int] | None = None,
                 ) -> AsyncIterator[tuple[str, list[bytes], list[int]]]:
    """Answers request i with ``answers[i]`` (``b""``: closes without answering); closes the
    connection after those in ``close_after``. Yields (origin, requests seen, connection number
    of each request)."""
    seen: list[bytes] = []
    conns: list[int] = []
    count = 0

    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal count
        writers.append(writer)
        count += 1
        number = count
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                index = len(seen)
                seen.append(head + body)
                conns.append(number)
                if not answers[index]:
                    break
                writer.write(answers[index])
                await writer.drain()
                if close_after and index in close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", seen, conns
    finally:
        srv.close()
        for writer in writers:
            writer.close()
        await asyncio.sleep(0.01)


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\n\r\nok"


async def test_framings_interim_answers_and_keep_alive() -> None:
    answers = [
        OK,
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nnew",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;x=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: t\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",  # HEAD: no body follows
        b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\nbusy until close",
    ]
    async with server(answers, close_after={5}) as (origin, seen, conns):
        pool = UpstreamPool(origin)
        got = await pool.request("GET", "/a?x=%2F&s=1", [("api-key", "k")], b"")
        assert (got.status, got.reason, got.body) == (200, "OK", b"ok")
        assert ("X-A", "1") in got.headers
        got = await pool.request("POST", "/b", [], b'{"q":1}')
        assert (got.status, got.body) == (201, b"new")
        got = await pool.request("GET", "/c", [], b"")
        assert got.body == b"abcde"
        assert (await pool.request("DELETE", "/d", [], b"")).status == 204
        assert (await pool.request("HEAD", "/e", [], b"")).body == b""
        got = await pool.request("GET", "/f", [], b"")
        assert (got.status, got.body) == (503, b"busy until close")
        await pool.close()
    assert seen[0].startswith(b"GET /a?x=%2F&s=1 HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"api-key: k\r\n" in seen[0]
    assert seen[1].endswith(b'Content-Length: 7\r\n\r\n{"q":1}')
    assert conns == [1] * 6  # one kept-alive connection for all six


async def test_a_closed_pooled_connection_resends_a_read_but_never_a_write() -> None:
    async with server([OK, b"", OK]) as (origin, seen, conns):
        pool = UpstreamPool(origin)
        assert (await pool.request("GET", "/1", [], b"")).status == 200
        # the reused connection closes on the read without an answer: sent again, fresh
        assert (await pool.request("GET", "/2", [], b"")).status == 200
        await pool.close()
    assert [s.split(b" ")[1] for s in seen] == [b"/1", b"/2", b"/2"] and conns == [1, 1, 2]
    async with server([OK, b""]) as (origin, seen, _):
        pool = UpstreamPool(origin)
        assert (await pool.request("GET", "/1", [], b"")).status == 200
        with pytest.raises(UpstreamClosed):  # the venue may have taken it: never resent
            await pool.request("POST", "/order", [], b"x")
        await pool.close()
    assert [s.split(b" ")[1] for s in seen] == [b"/1", b"/order"]


async def test_an_idle_connection_the_upstream_closed_is_not_reused() -> None:
    async with server([OK, OK], close_after={0}) as (origin, _, conns):
        pool = UpstreamPool(origin)
        assert (await pool.request("GET", "/1", [], b"")).status == 200
        await asyncio.sleep(0.05)  # the upstream closed the idle connection
        assert (await pool.request("POST", "/2", [], b"x")).status == 200
        await pool.close()
    assert conns == [1, 2]


@pytest.mark.parametrize("answer", [
    b"HTTP/2 200 OK\r\n\r\n", b"HTTP/1.1 2x0 OK\r\n\r\n", b"HTTP/1.1 200 OK\r\nbad\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
])
async def test_malformed_answers_are_upstream_closed(answer: bytes) -> None:
    async with server([answer], close_after={0}) as (origin, _, _):
        pool = UpstreamPool(origin)
        with pytest.raises(UpstreamClosed):
            await pool.request("GET", "/", [], b"")


async def test_unreachable_and_timeout() -> None:
    with pytest.raises(UpstreamUnreachable):
        await UpstreamPool("http://127.0.0.1:1").request("GET", "/", [], b"")
    async with server([b"HTTP/1.1 200 OK\r\n"]) as (origin, _, _):  # never finishes
        pool = UpstreamPool(origin, read_timeout_s=0.2)
        with pytest.raises(TimeoutError):
            await pool.request("GET", "/", [], b"")
