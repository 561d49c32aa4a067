"""Book pipeline throughput against peers, all reading the same simulator stream.

One recording of ``--messages`` BitMEX ``orderBookL2`` messages (a partial, then inserts, updates
and deletes from the seeded market process) is served by ``venueguard sim --replay FILE
--replay-speed 0`` in a separate process: every connection that subscribes gets the identical
stream, as fast as it reads it. Each client runs in turn in this process and is timed from its
first message to its last:

* venueguard: :class:`~venueguard.io.ws_session.MarketDataSession` (picows transport, every
  timestamp and order check on, local book maintained);
* ccxt 4.5.78 ``ccxt.pro.bitmex().watch_order_book`` with its URLs pointed at the simulator, as
  shipped, and with aiohttp's per-message byte accounting corrected in this benchmark only
  (docs/peers.md: as shipped it gives back one message's overhead per batch it drains, so
  aiohttp's queue looks ever fuller, pauses the socket for good, and the stream stops with the
  socket open);
* nautilus_trader 1.221's BitMEX adapter: its Rust websocket client (``BitmexWebSocketClient``)
  feeding its ``OrderBook`` (L2) through the Python callback, as a nautilus data client does
  (skipped, saying so, without the ``nautilus`` extra);
* a plain baseline: ``websockets`` + ``orjson`` + a dict book keyed by id;
* the floor: venueguard's picows transport and typed decoder with a dict book and no check at
  all (how far any pipeline on this transport and decoder can go; the gap to venueguard's row
  is what its checks and validated book cost);
* the decode-only ceiling: ``orjson.loads`` over the same frames in memory (no socket), per
  CPU-second (its wall rate is printed too, but on a shared machine it falls with the load of
  other processes).

Then the Binance column (``--binance-symbols``, 10 by default; 0 skips it): one many-symbol
USDⓈ-M diff-depth stream (``bench/_binance_stream.py``) read by venueguard's native
:class:`~venueguard.io.binance_session.BinanceMarketDataSession` and by bare ccxt
``binanceusdm`` (``watch_order_book`` per symbol; as shipped and with the same accounting
correction).

Printed per client: messages/s (wall, first to last message), messages per CPU-second of this
process (the simulator's CPU is not counted), and ratios to venueguard.

    .venv/bin/python bench/peers_pipeline.py                   # 200,000 messages, best of 3
    .venv/bin/python bench/peers_pipeline.py --messages 500000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

from _simproc import simulator, ws_url

SYMBOL = "XBTUSD"
TOPIC = f"orderBookL2:{SYMBOL}"
CCXT_SYMBOL = "BTC/USD:BTC"


# ------------------------------------------------------------------------------ the stream
def record_stream(path: Path, n_messages: int, *, seed: int = 7,
                  rate_msgs_s: float = 50_000.0) -> int:
    """Write a replayable recording: one partial, then ``n_messages`` book deltas."""
    from venueguard.sim.engine import Engine
    from venueguard.sim.instruments import instruments_for

    start_ms = int(time.time() * 1000)
    engine = Engine(instruments_for((SYMBOL,)), seed=seed, rate_msgs_s=rate_msgs_s,
                    start_ms=start_ms)
    engine.advance(start_ms + 1)
    engine.drain_updates()
    written, now_ms = 0, start_ms + 1
    with path.open("wb") as out:
        out.write(orjson.dumps(engine.partial("orderBookL2", SYMBOL)) + b"\n")
        while written < n_messages:
            now_ms += 20
            engine.advance(now_ms)
            for update in engine.drain_updates():
                if update.table == "orderBookL2" and update.symbol == SYMBOL \
                        and written < n_messages:
                    out.write(orjson.dumps({"table": update.table, "action": update.action,
                                            "data": update.rows}) + b"\n")
                    written += 1
    return written


class Timing:
    """First-to-last message timing plus this process's CPU over the same span."""

    def __init__(self) -> None:
        self.count = 0
        self.first_wall: float | None = None
        self.first_cpu = 0.0
        self.last_wall = 0.0
        self.last_cpu = 0.0

    def tick(self, n: int = 1) -> None:
        now = time.perf_counter()
        if self.first_wall is None:
            self.first_wall, self.first_cpu = now, time.process_time()
        self.count += n
        self.last_wall = now

    def stop(self) -> None:
        """At the end (CPU after a stall wait is idle time, close to nothing)."""
        self.last_cpu = time.process_time()

    def rates(self) -> tuple[float, float]:
        wall = self.last_wall - (self.first_wall or self.last_wall)
        cpu = self.last_cpu - self.first_cpu
        msgs = max(0, self.count - 1)
        return (msgs / wall if wall > 0 else 0.0, msgs / cpu if cpu > 0 else 0.0)


# ------------------------------------------------------------------------------ clients
async def run_venueguard(base_url: str, total: int, stall_s: float) -> Timing:
    from venueguard.core.liveness import DEFAULT_QUIET_CHANNELS, LivenessConfig
    from venueguard.io.ws_session import MarketDataSession, MdConfig

    # recorded timestamps age while the benchmark runs: a wide bound keeps every check on
    liveness = LivenessConfig(ping_after_s=5.0, pong_timeout_s=5.0, max_data_age_s=10.0,
                              quiet_channels=DEFAULT_QUIET_CHANNELS | {"trade"},
                              max_ts_age_ms=3_600_000, future_tolerance_ms=3_600_000)
    session = MarketDataSession(MdConfig(url=ws_url(base_url), topics=(TOPIC,),
                                         liveness=liveness))
    timing = Timing()
    async with session:
        # every text frame counts (welcome and subscribe ack included, hence + 2)
        await _follow(lambda: session.state.counters.frames, timing, total + 2, stall_s)
        counters = session.state.counters
        # the recording holds a few byte-identical repeats, which venueguard drops as duplicates
        if not session.book(SYMBOL).book.valid or counters.gaps or counters.resyncs:
            raise RuntimeError(f"venueguard's book is not in sync at the end: {counters}")
    timing.count -= 2
    return timing


async def _follow(counter: Callable[[], int], timing: Timing, total: int, stall_s: float) -> None:
    """Poll a message counter until ``total`` (or no progress for ``stall_s``)."""
    seen, progress_at = 0, time.monotonic()
    while seen < total:
        await asyncio.sleep(0.002)
        now_count = counter()
        if now_count > seen:
            timing.tick(now_count - seen)
            seen, progress_at = now_count, time.monotonic()
        elif time.monotonic() - progress_at > stall_s:
            return
    timing.stop()


def _ccxt_exchange(base_url: str) -> Any:
    import ccxt.pro as ccxt_pro

    class Counting(ccxt_pro.bitmex):  # type: ignore[misc, name-defined]
        book_messages = 0

        def handle_order_book(self, client: Any, message: Any) -> Any:
            self.book_messages += 1
            return super().handle_order_book(client, message)

    exchange = Counting({"newUpdates": False})
    exchange.urls["api"] = {**exchange.urls["api"], "public": base_url, "private": base_url,
                            "ws": ws_url(base_url)}
    return exchange


@contextlib.contextmanager
def ccxt_accounting_corrected() -> Any:
    """Give aiohttp back every drained message's byte accounting (this benchmark only).

    Before ccxt folds the sizes of the messages it drains into the head of aiohttp's queue, this
    drains them itself and folds each message's size plus aiohttp's per-message overhead, so
    the queue's size goes back to what it holds.
    """
    from aiohttp._websocket.reader_py import MSG_SIZE_OVERHEAD
    from ccxt.async_support.base.ws.client import Client

    original = Client.receive_loop

    def receive_loop(self: Any) -> Any:
        buffer = None if self.closed() else self.buffer
        if buffer is not None and len(buffer) > 1:
            extra = 0
            while len(buffer) > 1:
                message, size = buffer.popleft()
                extra += size + MSG_SIZE_OVERHEAD
                self.handle_message(message)
            head, head_size = buffer[0]
            buffer[0] = (head, head_size + extra)
        return original(self)

    Client.receive_loop = receive_loop
    try:
        yield
    finally:
        Client.receive_loop = original


async def run_ccxt(base_url: str, total: int, stall_s: float) -> tuple[Timing, bool]:
    """Returns the timing and whether the socket was still open when the stream stopped."""
    exchange = _ccxt_exchange(base_url)
    timing = Timing()
    await exchange.load_markets()

    async def watch() -> None:
        while True:
            await exchange.watch_order_book(CCXT_SYMBOL)

    watcher = asyncio.create_task(watch())
    try:
        await _follow(lambda: exchange.book_messages, timing, total, stall_s)
        clients = list(exchange.clients.values())
        still_open = any(not c.closed() for c in clients)
    finally:
        watcher.cancel()
        with contextlib.suppress(BaseException):
            await watcher
        await exchange.close()
    return timing, still_open


async def run_nautilus(base_url: str, total: int, rows_total: int, stall_s: float) -> Timing:
    """nautilus_trader's BitMEX websocket client + its L2 ``OrderBook``.

    The client hands over one ``OrderBookDelta`` per row (a partial as one batch of rows) and
    sets no end-of-message flag, so progress is followed in rows until all ``rows_total`` rows of
    the recording arrived; the timing then counts the ``total`` messages they came in.
    """
    from nautilus_trader.core import nautilus_pyo3 as n
    from nautilus_trader.model.book import OrderBook
    from nautilus_trader.model.data import OrderBookDelta, OrderBookDeltas, capsule_to_data
    from nautilus_trader.model.enums import BookType
    from nautilus_trader.model.identifiers import InstrumentId

    http = n.BitmexHttpClient(base_url=base_url + "/api/v1", max_retries=0, timeout_secs=10)
    instruments = await http.request_instruments(True)
    book = OrderBook(InstrumentId.from_str(f"{SYMBOL}.BITMEX"), BookType.L2_MBP)
    timing = Timing()
    counted = [0]

    def on_message(msg: object) -> None:
        if not n.is_pycapsule(msg):
            return
        data = capsule_to_data(msg)
        if isinstance(data, OrderBookDeltas):
            book.apply_deltas(data)
            counted[0] += len(data.deltas)
        elif isinstance(data, OrderBookDelta):
            book.apply_delta(data)
            counted[0] += 1

    ws = n.BitmexWebSocketClient(url=ws_url(base_url), heartbeat=5)
    await ws.connect(instruments, on_message)
    try:
        await ws.wait_until_active(10)
        await ws.subscribe_book(n.InstrumentId.from_str(f"{SYMBOL}.BITMEX"))
        await _follow(lambda: counted[0], timing, rows_total, stall_s)
    finally:
        await ws.close()
    if book.best_bid_price() is None or counted[0] < rows_total:
        raise RuntimeError(f"nautilus got {counted[0]:,} of {rows_total:,} rows")
    timing.count = total
    return timing


def nautilus_available() -> bool:
    try:
        import nautilus_trader  # noqa: F401
    except ImportError:
        return False
    return True


async def run_plain(base_url: str, total: int, stall_s: float) -> Timing:
    import websockets

    timing = Timing()
    book: dict[int, dict[str, Any]] = {}
    async with websockets.connect(ws_url(base_url), max_size=None) as ws:
        await ws.send(orjson.dumps({"op": "subscribe", "args": [TOPIC]}).decode())
        while timing.count < total:
            try:
                async with asyncio.timeout(stall_s):
                    raw = await ws.recv()
            except TimeoutError:
                break
            msg = orjson.loads(raw)
            rows = msg.get("data") if isinstance(msg, dict) else None
            if not isinstance(rows, list):
                continue
            action = msg.get("action")
            if action == "partial":
                book = {row["id"]: row for row in rows}
            elif action == "delete":
                for row in rows:
                    book.pop(row["id"], None)
            elif action == "insert":
                for row in rows:
                    book[row["id"]] = row
            else:
                for row in rows:
                    level = book.get(row["id"])
                    if level is not None:
                        level.update(row)
            timing.tick()
        timing.stop()
    return timing


async def run_floor(base_url: str, total: int, stall_s: float) -> Timing:
    """The transport and typed decoding alone, no check and no book logic: venueguard's picows
    transport handing each read's frames to a loop that decodes every delta into its structs
    (the decoder the session's hot path uses) and sets sizes in a dict keyed by (side, id).
    What every check and the validated book cost is the gap between this row and the
    session's."""
    from venueguard.io.ws_transport import connect_picows
    from venueguard.venues.bitmex.messages import DELTA_ERRORS, book_delta_decoder

    decode = book_delta_decoder.decode
    book: dict[tuple[str, int], int | None] = {}

    class Floor:
        frames = 0

        def on_text(self, payload: bytes) -> None:
            self.on_texts([payload])

        def on_texts(self, payloads: list[bytes]) -> None:
            self.frames += len(payloads)
            for payload in payloads:
                try:
                    delta = decode(payload)
                except DELTA_ERRORS:
                    continue  # welcome, ack, partial
                if delta.action == "delete":
                    for row in delta.data:
                        book.pop((row.side, row.id), None)
                else:
                    for row in delta.data:
                        book[(row.side, row.id)] = row.size

        def on_pong_frame(self) -> None:
            return None

        def on_closed(self) -> None:
            return None

    handler = Floor()
    timing = Timing()
    conn = await connect_picows(ws_url(base_url), handler, {}, 10.0)
    try:
        conn.send_text(orjson.dumps({"op": "subscribe", "args": [TOPIC]}))
        await _follow(lambda: handler.frames, timing, total + 2, stall_s)
    finally:
        conn.abort()
    timing.count -= 2  # welcome and subscribe ack, as for venueguard
    return timing


def decode_ceiling(path: Path, rounds: int) -> tuple[float, float]:
    """``orjson.loads`` over the recorded frames: best (msgs/s wall, msgs per CPU-second).

    On a shared machine the wall rate of this loop drops with the other processes' load while
    its CPU rate does not, so the clients are compared with the CPU rate (per CPU-second, like
    their own column)."""
    frames = path.read_bytes().splitlines()
    best_wall = best_cpu = 0.0
    for _ in range(rounds):
        started, started_cpu = time.perf_counter(), time.process_time()
        for frame in frames:
            orjson.loads(frame)
        wall, cpu = time.perf_counter() - started, time.process_time() - started_cpu
        best_wall = max(best_wall, len(frames) / wall)
        best_cpu = max(best_cpu, len(frames) / cpu if cpu > 0 else 0.0)
    return best_wall, best_cpu


# ------------------------------------------------------------------------------ main
async def best_of(rounds: int, run: Callable[[], Awaitable[Timing]]) -> Timing:
    best: Timing | None = None
    for _ in range(rounds):
        timing = await run()
        if best is None or timing.rates()[0] > best.rates()[0]:
            best = timing
    assert best is not None
    return best


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="vg-bench-") as tmp:
        path = Path(tmp) / "book.jsonl"
        n = record_stream(path, args.messages)
        total = n + 1  # the partial counts as a message for every client
        print(f"stream: 1 partial + {n:,} orderBookL2 deltas, served by venueguard sim --replay "
              f"(speed 0) in its own process; best of {args.rounds}")
        async with simulator("--replay", str(path), "--replay-speed", "0") as base:
            vg = await best_of(args.rounds, lambda: run_venueguard(base, total, args.stall_s))
            plain = await best_of(args.rounds, lambda: run_plain(base, total, args.stall_s))
            floor = await best_of(args.rounds, lambda: run_floor(base, total, args.stall_s))
            rows_total = sum(len(orjson.loads(line)["data"])
                             for line in path.read_bytes().splitlines())
            nautilus = (await best_of(args.rounds, lambda: run_nautilus(
                base, total, rows_total, args.stall_s))
                        if nautilus_available() else None)
            shipped, open_after = await run_ccxt(base, total, args.stall_s)
            with ccxt_accounting_corrected():
                fixed_runs = [await run_ccxt(base, total, args.stall_s)
                              for _ in range(args.rounds)]
            fixed = max((t for t, _ in fixed_runs), key=lambda t: t.rates()[0])
        ceiling_wall, ceiling = decode_ceiling(path, args.rounds)
    vg_wall, vg_cpu = vg.rates()
    rows = [("venueguard MarketDataSession", vg),
            ("floor: picows + msgspec structs + dict", floor),
            ("websockets + orjson + dict book", plain),
            ("ccxt 4.5.78 (accounting corrected)", fixed)]
    if nautilus is not None:
        rows.append(("nautilus_trader 1.221 BitMEX ws + OrderBook", nautilus))
    else:
        print("nautilus_trader not installed (pip install -e '.[nautilus]'): its row is skipped")
    print(f"{'client':<44} {'msgs':>9} {'msgs/s wall':>12} {'msgs/CPU-s':>12} "
          f"{'vs venueguard':>14}")
    for name, timing in rows:
        wall, cpu = timing.rates()
        print(f"{name:<44} {timing.count:>9,} {wall:>12,.0f} {cpu:>12,.0f} "
              f"{wall / vg_wall if vg_wall else 0:>13.2f}x")
    print(f"{'decode-only ceiling (orjson.loads)':<44} {total:>9,} {ceiling_wall:>12,.0f} "
          f"{ceiling:>12,.0f} {ceiling_wall / vg_wall if vg_wall else 0:>13.2f}x")
    stalled = shipped.count < total
    print(f"\nccxt 4.5.78 as shipped: {shipped.count:,} of {total:,} messages"
          + (f", then stopped reading for good (no message in {args.stall_s:g} s; socket "
             f"{'still open' if open_after else 'closed'})" if stalled else " (no stall)"))
    print(f"venueguard vs ccxt (corrected): {vg_wall / max(1.0, fixed.rates()[0]):.2f}x "
          f"wall, {vg_cpu / max(1.0, fixed.rates()[1]):.2f}x per CPU-second; "
          f"vs plain websockets: {vg_wall / max(1.0, plain.rates()[0]):.2f}x wall")
    print(f"venueguard per CPU-second / decode-only ceiling: {vg_cpu / ceiling:.2f} "
          f"(the floor row, no checks: {floor.rates()[1] / ceiling:.2f})")
    if args.binance_symbols > 0:
        await binance_column(args)


async def binance_column(args: argparse.Namespace) -> None:
    """Binance USD-M: the native session vs bare ccxt binanceusdm, one many-symbol stream."""
    import _binance_stream as bn

    with tempfile.TemporaryDirectory(prefix="vg-bench-bn-") as tmp:
        paths, n = bn.record(Path(tmp), args.binance_symbols, args.messages)
        symbols = bn.symbols_for(args.binance_symbols)
        print(f"\nBinance USD-M: {n:,} depthUpdate events over {len(symbols)} symbols (combined "
              f"capture), served by venueguard sim --dialect binance-usdm --replay (speed 0); "
              f"best of {args.rounds}")
        async with simulator("--dialect", "binance-usdm", "--replay", paths,
                             "--replay-speed", "0") as base:
            native = await best_of(args.rounds, lambda: bn.run_native(
                base, symbols, n, args.stall_s, Timing(), _follow))
            shipped = await bn.run_ccxt(base, symbols, n, args.stall_s, Timing(), _follow)
            with ccxt_accounting_corrected():
                fixed = await best_of(args.rounds, lambda: bn.run_ccxt(
                    base, symbols, n, args.stall_s, Timing(), _follow))
    nat_wall, nat_cpu = native.rates()
    print(f"{'client':<44} {'msgs':>9} {'msgs/s wall':>12} {'msgs/CPU-s':>12} "
          f"{'vs venueguard':>14}")
    for name, timing in (("venueguard BinanceMarketDataSession", native),
                         ("ccxt 4.5.78 binanceusdm (accounting corrected)", fixed)):
        wall, cpu = timing.rates()
        print(f"{name:<44} {timing.count:>9,} {wall:>12,.0f} {cpu:>12,.0f} "
              f"{wall / nat_wall if nat_wall else 0:>13.2f}x")
    print(f"ccxt 4.5.78 binanceusdm as shipped: {shipped.count:,} of {n:,} messages"
          + (f", then no message in {args.stall_s:g} s" if shipped.count < n else " (no stall)"))
    print(f"venueguard vs ccxt binanceusdm (corrected): "
          f"{nat_wall / max(1.0, fixed.rates()[0]):.2f}x wall, "
          f"{nat_cpu / max(1.0, fixed.rates()[1]):.2f}x per CPU-second")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--binance-symbols", type=int, default=10,
                        help="symbols of the Binance column's stream (0: no Binance column)")
    parser.add_argument("--stall-s", type=float, default=5.0,
                        help="a client with no new message for this long has stalled")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
