"""Which websocket client reads a BitMEX-shaped order-book stream fastest over loopback?

Measures websockets, aiohttp and picows receiving the same stream of ``orderBookL2`` update messages
from a server in a separate process, and prints messages per second for each (receive only, and
receive + ``orjson.loads``), with ratios against the fastest.

The default server is a minimal websocket server that writes pre-framed messages in chunks, paced
at ``--rate`` messages/s, so the server costs almost nothing and the number measures the client.
The headline figure is messages per second of the client's CPU time (what one core can absorb);
the wall-clock rate shows whether the client kept up with the offered rate. Unpaced
(``--rate 0``), a server that outruns the client makes the clients with read flow control
(aiohttp, websockets) pause and resume the socket, and on loopback that showed up as idle waits
of tens of milliseconds (about 19k msgs/s wall for both) that say little about the client itself.
``--url`` points the benchmark at a running ``venueguard sim`` instead (it then reads the
simulator's market stream for ``--seconds``).

    .venv/bin/python bench/ws_libs.py                       # 200,000 messages, 3 rounds per library
    .venv/bin/python bench/ws_libs.py --messages 500000 --rounds 5
    .venv/bin/python bench/ws_libs.py --url ws://127.0.0.1:PORT/realtime --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import multiprocessing
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_DONE = b"done"


def _message(i: int) -> bytes:
    price = 50_000.0 + (i % 400) * 0.5
    return orjson.dumps({
        "table": "orderBookL2", "action": "update",
        "data": [{"symbol": "XBTUSD", "id": 17_999_000 + i % 400,
                  "side": "Buy" if i % 2 else "Sell", "size": 100 + i % 977, "price": price,
                  "timestamp": "2026-11-23T12:00:00.123Z"}],
    })


def _frame(payload: bytes) -> bytes:
    size = len(payload)
    if size < 126:
        head = bytes([0x81, size])
    elif size < 65_536:
        head = bytes([0x81, 126]) + size.to_bytes(2, "big")
    else:
        head = bytes([0x81, 127]) + size.to_bytes(8, "big")
    return head + payload


async def _serve(port_out: multiprocessing.connection.Connection, n_messages: int,
                 rate: float) -> None:
    chunk_msgs = 100
    chunk = b"".join(_frame(_message(i)) for i in range(chunk_msgs))

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        key = b""
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"sec-websocket-key:"):
                key = line.split(b":", 1)[1].strip()
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        await reader.read(4096)  # the subscribe frame; the stream starts after it, as on BitMEX
        sent = 0
        loop = asyncio.get_running_loop()
        start = loop.time()
        while sent < n_messages:
            writer.write(chunk)
            sent += chunk_msgs
            await writer.drain()
            if rate > 0:  # pace: chunk i leaves at start + i * chunk / rate
                ahead = start + sent / rate - loop.time()
                if ahead > 0:
                    await asyncio.sleep(ahead)
        writer.write(_frame(_DONE))
        await writer.drain()
        try:
            await reader.read()  # until the client closes
        except ConnectionError:
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port_out.send(server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


def _server_main(port_out: multiprocessing.connection.Connection, n_messages: int,
                 rate: float = 0.0) -> None:
    asyncio.run(_serve(port_out, n_messages, rate))


Reader = Callable[[str, bool, float], Awaitable[int]]


async def read_aiohttp(url: str, decode: bool, seconds: float) -> int:
    import aiohttp

    count = 0
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession(read_bufsize=1 << 22) as session, session.ws_connect(
            url, autoping=True, max_msg_size=0) as ws:
        await _subscribe_aiohttp(ws)
        while True:
            msg = await ws.receive()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            data = msg.data
            if data == "done":
                break
            if decode:
                orjson.loads(data)
            count += 1
            if seconds and time.monotonic() > deadline:
                break
    return count


async def _subscribe_aiohttp(ws: Any) -> None:
    await ws.send_str('{"op":"subscribe","args":["orderBookL2:XBTUSD"]}')


async def read_websockets(url: str, decode: bool, seconds: float) -> int:
    from websockets.asyncio.client import connect

    count = 0
    deadline = time.monotonic() + seconds
    async with connect(url, max_size=None, ping_interval=None, compression=None,
                       max_queue=None) as ws:
        await ws.send('{"op":"subscribe","args":["orderBookL2:XBTUSD"]}')
        while True:
            data = await ws.recv(decode=False)
            if data == _DONE:
                break
            if decode:
                orjson.loads(data)
            count += 1
            if seconds and time.monotonic() > deadline:
                break
    return count


async def read_picows(url: str, decode: bool, seconds: float) -> int:
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

    loop = asyncio.get_running_loop()
    done: asyncio.Future[int] = loop.create_future()
    deadline = time.monotonic() + seconds

    class Listener(WSListener):  # type: ignore[misc]
        count = 0

        def on_ws_connected(self, transport: WSTransport) -> None:
            transport.send(WSMsgType.TEXT, b'{"op":"subscribe","args":["orderBookL2:XBTUSD"]}')

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type is not WSMsgType.TEXT:
                return
            payload = frame.get_payload_as_bytes()
            if payload == _DONE or (seconds and time.monotonic() > deadline):
                if not done.done():
                    done.set_result(self.count)
                return
            if decode:
                orjson.loads(payload)
            self.count += 1

        def on_ws_disconnected(self, transport: WSTransport) -> None:
            if not done.done():
                done.set_result(self.count)

    transport, _listener = await ws_connect(Listener, url)
    count = await done
    transport.disconnect()
    await transport.wait_disconnected()
    return count


READERS: dict[str, Reader] = {
    "websockets": read_websockets,
    "aiohttp": read_aiohttp,
    "picows": read_picows,
}


async def _measure(reader: Reader, url: str, decode: bool, seconds: float) -> tuple[float, float]:
    """(messages per wall second, messages per client CPU second) for one run."""
    wall, cpu = time.perf_counter(), time.process_time()
    count = await reader(url, decode, seconds)
    return count / (time.perf_counter() - wall), count / max(time.process_time() - cpu, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=100_000.0,
                        help="offered messages/s (0 = as fast as the socket takes them)")
    parser.add_argument("--url", default=None, help="a running simulator's /realtime URL")
    parser.add_argument("--seconds", type=float, default=5.0, help="read time per run with --url")
    args = parser.parse_args()

    proc = None
    if args.url is None:
        parent, child = multiprocessing.Pipe()
        proc = multiprocessing.Process(target=_server_main, args=(child, args.messages, args.rate),
                                       daemon=True)
        proc.start()
        url = f"ws://127.0.0.1:{parent.recv()}/realtime"
        seconds = 0.0
    else:
        url, seconds = args.url, args.seconds
    try:
        results: dict[tuple[str, bool], tuple[float, float]] = {}
        for decode in (False, True):
            for name, reader in READERS.items():
                runs = [asyncio.run(_measure(reader, url, decode, seconds))
                        for _ in range(args.rounds)]
                results[(name, decode)] = (statistics.median(r[0] for r in runs),
                                           statistics.median(r[1] for r in runs))
    finally:
        if proc is not None:
            proc.terminate()
            proc.join()
    offered = f"offered {args.rate:,.0f} msgs/s" if args.rate else "unpaced"
    source = url if args.url else (f"raw pre-framed server, {args.messages:,} messages per run,"
                                   f" {offered}")
    print(f"source: {source}; median of {args.rounds} rounds")
    for decode in (False, True):
        label = "receive + orjson.loads" if decode else "receive only"
        best = max(cpu for (_, d), (_, cpu) in results.items() if d == decode)
        print(f"-- {label}")
        for name in READERS:
            wall, cpu = results[(name, decode)]
            print(f"  {name:<11} {cpu:>12,.0f} msgs per client CPU-s ({cpu / best:4.2f} x best)"
                  f"   {wall:>12,.0f} msgs/s wall")


if __name__ == "__main__":
    main()
