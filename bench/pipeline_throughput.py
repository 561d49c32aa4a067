"""Book messages per second through the whole market-data pipeline, on one core.

The pipeline is the real one: websocket frame -> decode (venues/bitmex/messages) -> liveness,
timestamp, ordering and duplicate checks (core/liveness) -> book (core/book), inside a running
:class:`venueguard.io.ws_session.MarketDataSession`. The server is a separate process that
answers the subscribe with an ack and a partial, then writes pre-framed ``orderBookL2`` updates
(modern format, unique, timestamps current and non-decreasing), paced at ``--rate`` messages/s
(default 250,000: more than the client can take, so its core is the limit). The headline is
messages per client CPU-second; the wall-clock rate is printed next to it. (Unpaced bursts on
loopback sometimes stalled the stream for seconds at the TCP level whatever the client; pacing
avoids measuring that.)

Printed: messages/s (wall) and messages per client CPU-second for the session with each
transport, next to ``orjson.loads`` alone on the same messages (the decode floor).

    .venv/bin/python bench/pipeline_throughput.py                 # 300,000 updates, 3 rounds
    .venv/bin/python bench/pipeline_throughput.py --messages 1000000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import multiprocessing
import statistics
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from venueguard.core.liveness import LivenessConfig
from venueguard.io.ws_session import MarketDataSession, MdConfig
from venueguard.io.ws_transport import WsConnector, connect_aiohttp, connect_picows
from venueguard.telemetry.events import EventLog
from venueguard.venues.bitmex.timefmt import format_ms
from ws_libs import _frame  # the same unmasked text-frame writer

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
LEVELS = 200  # 100 bids, 100 asks
_LOG = EventLog(sys.stderr if "-v" in sys.argv else None)


def build_stream(n_updates: int, start_ms: int) -> tuple[bytes, bytes, list[bytes]]:
    """(ack frame, partial frame, update payloads)."""
    rows = []
    for i in range(LEVELS):
        side = "Buy" if i < LEVELS // 2 else "Sell"
        price = 50_000.0 - (LEVELS // 2 - i) * 0.5 if side == "Buy" else 50_000.0 + (i - 99) * 0.5
        rows.append({"symbol": "XBTUSD", "id": 1_000 + i, "side": side, "size": 100 + i,
                     "price": price, "timestamp": format_ms(start_ms)})
    ack = orjson.dumps({"success": True, "subscribe": "orderBookL2:XBTUSD",
                        "request": {"op": "subscribe", "args": ["orderBookL2:XBTUSD"]}})
    partial = orjson.dumps({"table": "orderBookL2", "action": "partial",
                            "keys": ["symbol", "id", "side"], "filter": {"symbol": "XBTUSD"},
                            "data": rows})
    updates = []
    for i in range(n_updates):
        row = rows[i % LEVELS]
        updates.append(orjson.dumps({"table": "orderBookL2", "action": "update", "data": [{
            "symbol": "XBTUSD", "id": row["id"], "side": row["side"], "size": 1 + i,
            "price": row["price"], "timestamp": format_ms(start_ms + i // 50)}]}))
    return ack, partial, updates


async def _serve(port_out: Connection, n_updates: int, rate: float) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        key = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key:"))
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        await reader.read(4096)  # the subscribe command
        ack, partial, updates = build_stream(n_updates, time.time_ns() // 1_000_000)
        writer.write(_frame(ack) + _frame(partial))
        chunks = [b"".join(_frame(u) for u in updates[i:i + 500])
                  for i in range(0, len(updates), 500)]
        loop = asyncio.get_running_loop()
        begin = loop.time()
        for index, chunk in enumerate(chunks):
            writer.write(chunk)
            await writer.drain()
            if rate > 0:  # pace: chunk i leaves at begin + i * 500 / rate
                ahead = begin + (index + 1) * 500 / rate - loop.time()
                if ahead > 0:
                    await asyncio.sleep(ahead)
        try:
            await reader.read()
        except ConnectionError:
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port_out.send(server.sockets[0].getsockname()[1])
    async with server:
        await server.serve_forever()


def _server_main(port_out: Connection, n_updates: int, rate: float = 0.0) -> None:
    asyncio.run(_serve(port_out, n_updates, rate))


async def run_session(url: str, connector: WsConnector, n_updates: int) -> tuple[float, float]:
    """(messages/s wall, messages per client CPU-second) for one session."""
    config = MdConfig(url=url, topics=("orderBookL2:XBTUSD",), liveness=LivenessConfig(
        ping_after_s=30.0, pong_timeout_s=30.0, max_data_age_s=30.0, max_ts_age_ms=120_000))
    session = MarketDataSession(config, connector=connector, events=_LOG)
    async with session:
        await session.wait_synced(10.0)
        state = session.state
        first = state.counters.frames
        wall, cpu = time.perf_counter(), time.process_time()
        target = first + n_updates
        while state.counters.frames < target:
            await asyncio.sleep(0.02)
            if time.perf_counter() - wall > 120:
                raise RuntimeError(f"stalled at {state.counters.frames - first} messages")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        assert state.counters.rejected == 0 and state.counters.gaps == 0, state.counters
        assert session.book("XBTUSD").is_fresh
    return n_updates / wall, n_updates / cpu


def decode_floor(n_updates: int) -> float:
    _, _, updates = build_stream(n_updates, time.time_ns() // 1_000_000)
    loads = orjson.loads
    start = time.process_time()
    for payload in updates:
        loads(payload)
    return n_updates / (time.process_time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=250_000.0,
                        help="offered messages/s (0 = as fast as the socket takes them)")
    parser.add_argument("-v", action="store_true", help="print the session's event log")
    args = parser.parse_args()
    results: dict[str, tuple[float, float]] = {}
    for name, connector in (("picows", connect_picows), ("aiohttp", connect_aiohttp)):
        walls, cpus = [], []
        for _ in range(args.rounds):
            parent, child = multiprocessing.Pipe()
            proc = multiprocessing.Process(target=_server_main,
                                           args=(child, args.messages, args.rate),
                                           daemon=True)
            proc.start()
            try:
                url = f"ws://127.0.0.1:{parent.recv()}/realtime"
                wall, cpu = asyncio.run(run_session(url, connector, args.messages))
            finally:
                proc.terminate()
                proc.join()
            walls.append(wall)
            cpus.append(cpu)
        results[name] = (statistics.median(walls), statistics.median(cpus))
    floor = decode_floor(args.messages)
    offered = f"offered {args.rate:,.0f}/s" if args.rate else "unpaced"
    print(f"{args.messages:,} orderBookL2 updates per run ({offered}), median of {args.rounds} "
          "runs; server in another process")
    print(f"  {'orjson.loads alone':<28} {floor:>12,.0f} msgs per CPU-s   (decode floor)")
    for name, (wall, cpu) in results.items():
        print(f"  {'session via ' + name:<28} {cpu:>12,.0f} msgs per CPU-s   {wall:>12,.0f} "
              f"msgs/s wall   {cpu / floor:4.2f} x decode floor")


if __name__ == "__main__":
    main()
