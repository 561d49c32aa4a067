"""picows hands a handler with ``on_texts`` the text frames of each read together, in order,
and answers server pings itself, so no text waits behind a ping or a close that ends a read.

A bare websocket server on loopback writes its frames in one write (a text burst, then a ping,
then silence): every text reaches the handler without any later read, and the ping gets its
pong with the same payload.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
from collections.abc import AsyncIterator, Callable

import pytest

from venueguard.io.ws_transport import connect_picows

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


def frame(opcode: int, payload: bytes) -> bytes:
    """A server frame (unmasked, final)."""
    size = len(payload)
    head = bytes([0x80 | opcode])
    if size < 126:
        return head + bytes([size]) + payload
    return head + bytes([126]) + struct.pack("!H", size) + payload


async def read_client_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first, second = await reader.readexactly(2)
    size = second & 0x7F
    if size == 126:
        size = struct.unpack("!H", await reader.readexactly(2))[0]
    mask = await reader.readexactly(4)
    data = await reader.readexactly(size)
    return first & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


class Server:
    """Upgrades each connection, writes ``burst`` in one write, then reports client frames."""

    def __init__(self, burst: bytes) -> None:
        self.burst = burst
        self.client_frames: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key:"))
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)  # the upgrade is read on its own; the burst is one write
        writer.write(self.burst)
        await writer.drain()
        try:
            while True:
                await self.client_frames.put(await read_client_frame(reader))
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


class Reads:
    def __init__(self) -> None:
        self.reads: list[list[bytes]] = []
        self.single: list[bytes] = []
        self.closed = asyncio.Event()
        self.got: Callable[[], None] = lambda: None

    def on_texts(self, payloads: list[bytes]) -> None:
        self.reads.append(list(payloads))
        self.got()

    def on_text(self, payload: bytes) -> None:
        self.single.append(payload)

    def on_pong_frame(self) -> None:
        pass

    def on_closed(self) -> None:
        self.closed.set()

    @property
    def texts(self) -> list[bytes]:
        return [text for read in self.reads for text in read]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[bytes], asyncio.Future[tuple[Server, str]]]]:
    servers: list[asyncio.Server] = []

    async def start(burst: bytes) -> tuple[Server, str]:
        server = Server(burst)
        listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        servers.append(listening)
        port = listening.sockets[0].getsockname()[1]
        return server, f"ws://127.0.0.1:{port}/"

    yield start  # type: ignore[misc]
    for listening in servers:
        listening.close()


async def test_texts_before_a_ping_that_ends_the_read_are_handed_over_and_it_is_answered(
        serve: Callable[[bytes], asyncio.Future[tuple[Server, str]]]) -> None:
    texts = [b'{"n":%d}' % i for i in range(5)]
    server, url = await serve(b"".join(frame(TEXT, t) for t in texts) + frame(PING, b"hb-1"))
    handler = Reads()
    all_in = asyncio.Event()
    handler.got = lambda: all_in.set() if len(handler.texts) >= len(texts) else None
    conn = await connect_picows(url, handler, {}, 5.0)
    try:
        kind, payload = await asyncio.wait_for(server.client_frames.get(), 5.0)
        assert (kind, payload) == (PONG, b"hb-1")
        await asyncio.wait_for(all_in.wait(), 5.0)  # the server writes nothing more
        assert handler.texts == texts
        assert handler.single == []  # a read's texts come through on_texts only
    finally:
        conn.abort()


async def test_texts_before_a_close_are_handed_over_first(
        serve: Callable[[bytes], asyncio.Future[tuple[Server, str]]]) -> None:
    texts = [b"a", b"b", b"c"]
    _, url = await serve(b"".join(frame(TEXT, t) for t in texts)
                         + frame(CLOSE, struct.pack("!H", 1000)))
    handler = Reads()
    await connect_picows(url, handler, {}, 5.0)
    await asyncio.wait_for(handler.closed.wait(), 5.0)
    assert handler.texts == texts


async def test_a_handler_without_on_texts_gets_each_frame_and_pings_are_still_answered(
        serve: Callable[[bytes], asyncio.Future[tuple[Server, str]]]) -> None:

    class Single:
        def __init__(self) -> None:
            self.texts: list[bytes] = []

        def on_text(self, payload: bytes) -> None:
            self.texts.append(payload)

        def on_pong_frame(self) -> None:
            pass

        def on_closed(self) -> None:
            pass

    server, url = await serve(frame(TEXT, b"x") + frame(TEXT, b"y") + frame(PING, b"p"))
    handler = Single()
    conn = await connect_picows(url, handler, {}, 5.0)
    try:
        assert await asyncio.wait_for(server.client_frames.get(), 5.0) == (PONG, b"p")
        assert handler.texts == [b"x", b"y"]
    finally:
        conn.abort()
