"""Soak: resident memory over one simulated hour of a 2,000 msgs/s book stream.

7.2 million ``orderBookL2`` messages (one hour at 2,000 messages/s) go through the whole client
pipeline of :class:`~venueguard.io.ws_session.MarketDataSession` (subscribe handshake, heartbeat,
decode, timestamp / order / duplicate checks, liveness, local book, consumer events read by a
consumer task) as fast as it takes them. The stream comes from an in-process stand-in for the
websocket (the session's ``connector`` seam), so the hour runs in a minute or two and only the
kernel socket is left out: inserts, updates and deletes around a fixed mid, the book kept
between 150 and 250 levels a side. The session runs on a simulated clock that advances 0.5 ms
per message, and every row is stamped with it, so every time-based check and window (staleness,
order, duplicates, liveness) sees a consistent hour.

RSS is printed every simulated ``--report-min`` minutes; growth is measured from the end of a
warm-up (the first simulated minute) to the end. Target: under 10 MB.

    .venv/bin/python bench/soak_memory.py                         # 7.2 M messages
    .venv/bin/python bench/soak_memory.py --messages 1000000      # a shorter soak
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import random
import time
from collections.abc import Mapping
from typing import Any

import orjson

from venueguard.io.ws_session import MarketDataSession, MdConfig
from venueguard.io.ws_transport import WsConnection, WsHandler
from venueguard.venues.bitmex.timefmt import format_ms

SYMBOL = "XBTUSD"
TOPIC = f"orderBookL2:{SYMBOL}"
RATE = 2_000
TICK = 0.5
MID_TICKS = 100_000          # mid 50,000.0
ID_BASE = 8_800_000_000


def rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


class SimulatedClock:
    """Monotonic seconds and wall milliseconds of the simulated hour (moved by the feed)."""

    def __init__(self) -> None:
        self.mono_s = 1_000.0
        self.wall0_ms = time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return self.mono_s

    def wall_ms(self) -> int:
        return self.wall0_ms + int((self.mono_s - 1_000.0) * 1000)

    def advance(self, seconds: float) -> None:
        self.mono_s += seconds


class BookStream:
    """Book deltas that stay consistent forever (ids derived from the price, as on BitMEX)."""

    def __init__(self, clock: SimulatedClock, seed: int = 5) -> None:
        self.clock = clock
        self.rng = random.Random(seed)
        self.levels: dict[str, dict[int, int]] = {"Buy": {}, "Sell": {}}
        for k in range(1, 201):
            self.levels["Buy"][MID_TICKS - k] = 100 * k
            self.levels["Sell"][MID_TICKS + k] = 100 * k

    def _row(self, side: str, ticks: int, ts: str, size: int | None) -> dict[str, Any]:
        row: dict[str, Any] = {"symbol": SYMBOL, "id": ID_BASE - ticks, "side": side,
                               "price": ticks * TICK, "timestamp": ts}
        if size is not None:
            row["size"] = size
        return row

    def partial(self) -> bytes:
        ts = format_ms(self.clock.wall_ms())
        rows = [self._row(side, t, ts, size) for side, book in self.levels.items()
                for t, size in sorted(book.items())]
        return orjson.dumps({"table": "orderBookL2", "action": "partial",
                             "keys": ["symbol", "id", "side"], "data": rows,
                             "filter": {"symbol": SYMBOL}})

    def next(self) -> bytes:
        self.clock.advance(1.0 / RATE)
        rng, ts = self.rng, format_ms(self.clock.wall_ms())
        side = "Buy" if rng.random() < 0.5 else "Sell"
        book = self.levels[side]
        roll = rng.random()
        if (roll < 0.2 and len(book) > 150) or len(book) >= 250:
            ticks = rng.choice(list(book)) if len(book) < 40 else self._pick(book)
            del book[ticks]
            return self._msg("delete", [self._row(side, ticks, ts, None)])
        if roll < 0.4:
            sign = -1 if side == "Buy" else 1
            for _ in range(20):
                ticks = MID_TICKS + sign * rng.randint(1, 400)
                if ticks not in book:
                    book[ticks] = 100 * rng.randint(1, 50)
                    return self._msg("insert", [self._row(side, ticks, ts, book[ticks])])
        ticks = self._pick(book)
        book[ticks] = 100 * rng.randint(1, 50)
        return self._msg("update", [self._row(side, ticks, ts, book[ticks])])

    def _pick(self, book: dict[int, int]) -> int:
        keys = list(book)
        return keys[self.rng.randrange(len(keys))]

    @staticmethod
    def _msg(action: str, rows: list[dict[str, Any]]) -> bytes:
        return orjson.dumps({"table": "orderBookL2", "action": action, "data": rows})


class FeedConnection:
    """A websocket stand-in: answers subscribe and ping, then streams ``total`` deltas."""

    def __init__(self, handler: WsHandler, total: int, report_every: int,
                 clock: SimulatedClock) -> None:
        self.handler = handler
        self.clock = clock
        self.total = total
        self.report_every = report_every
        self.sent = 0
        self.closed = asyncio.Event()
        self.samples: list[tuple[int, float]] = []
        self._task: asyncio.Task[None] | None = None
        handler.on_text(b'{"info":"Welcome to the BitMEX Realtime API.","version":"soak"}')

    def send_text(self, data: bytes | str) -> None:
        raw = data.encode() if isinstance(data, str) else data
        if raw == b"ping":
            self.handler.on_text(b"pong")
            return
        op = orjson.loads(raw)
        if op.get("op") == "subscribe":
            for topic in op.get("args", []):
                self.handler.on_text(orjson.dumps({"success": True, "subscribe": topic,
                                                   "request": op}))
            self._task = asyncio.get_running_loop().create_task(self._feed())

    def send_ping(self) -> None:
        self.handler.on_pong_frame()

    def abort(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.closed.set()

    async def wait_closed(self) -> None:
        await self.closed.wait()

    async def _feed(self) -> None:
        stream = BookStream(self.clock)
        self.handler.on_text(stream.partial())
        on_text = self.handler.on_text
        while self.sent < self.total:
            for _ in range(min(500, self.total - self.sent)):
                on_text(stream.next())
            self.sent += min(500, self.total - self.sent)
            if self.sent % self.report_every < 500:
                gc.collect()
                self.samples.append((self.sent, rss_mb()))
                minutes = self.sent / RATE / 60
                print(f"  {self.sent:>10,} messages ({minutes:5.1f} simulated min)  "
                      f"RSS {self.samples[-1][1]:7.1f} MB", flush=True)
            await asyncio.sleep(0)
        self.closed.set()


async def main_async(args: argparse.Namespace) -> None:
    report_every = int(RATE * 60 * args.report_min)
    conns: list[FeedConnection] = []
    clock = SimulatedClock()
    opened = asyncio.Event()

    async def connector(url: str, handler: WsHandler, headers: Mapping[str, str],
                        timeout_s: float) -> WsConnection:
        conn = FeedConnection(handler, args.messages, report_every, clock)
        conns.append(conn)
        opened.set()
        return conn

    session = MarketDataSession(MdConfig(url="ws://soak.invalid/realtime", topics=(TOPIC,)),
                                connector=connector, clock=clock)
    consumed = 0

    async def consume(stream: Any) -> None:
        nonlocal consumed
        async for _ in stream:
            consumed += 1

    gc.collect()
    start_rss = rss_mb()
    started = time.perf_counter()
    print(f"soak: {args.messages:,} messages = {args.messages / RATE / 60:.0f} simulated min at "
          f"{RATE:,} msgs/s; RSS at start {start_rss:.1f} MB")
    stream = session.events()
    async with session:
        reader = asyncio.create_task(consume(stream))
        await opened.wait()
        await conns[0].closed.wait()
        stream.close()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        book_ok = session.book(SYMBOL).book.valid
        counters = session.state.counters
    wall = time.perf_counter() - started
    samples = conns[0].samples
    warm = next((rss for sent, rss in samples if sent >= RATE * 60), samples[0][1])
    growth = samples[-1][1] - warm
    print(f"done in {wall:.1f} s wall ({args.messages / wall:,.0f} msgs/s); consumer events "
          f"{consumed:,}; book in sync: {book_ok}; reconnects {session.attempt}; "
          f"rejected {counters.rejected}, gaps {counters.gaps}")
    verdict = "within" if growth < args.target_mb else "OVER"
    print(f"RSS growth after the first simulated minute: {growth:+.1f} MB ({verdict} the "
          f"{args.target_mb:g} MB target); peak {max(r for _, r in samples):.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=RATE * 3600)
    parser.add_argument("--report-min", type=float, default=6.0,
                        help="print RSS every this many simulated minutes")
    parser.add_argument("--target-mb", type=float, default=10.0)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
