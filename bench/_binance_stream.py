"""The Binance column of ``bench/peers_pipeline.py``: a many-symbol USDⓈ-M diff-depth stream,
served by ``venueguard sim --dialect binance-usdm --replay FILES --replay-speed 0``, read by
venueguard's native session and by bare ccxt ``binanceusdm`` (``watch_order_book`` per symbol).

The stream is written here: per symbol a REST snapshot and ``depthUpdate`` events (decimal
strings on a 0.1 tick and 0.001 lot, 1 to 6 levels each, chained by ``U``/``u``/``pu`` as on the
venue), interleaved across symbols, as one combined capture. Each client's every depth message
is counted, first to last, with this process's CPU over the same span.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import orjson


class Timed(Protocol):
    count: int

    def tick(self, n: int = 1) -> None: ...

    def stop(self) -> None: ...

    def rates(self) -> tuple[float, float]: ...


Follow = Callable[[Callable[[], int], Any, int, float], Awaitable[None]]


def symbols_for(n: int) -> list[str]:
    return [f"S{i:02d}USDT" for i in range(n)]


def record(dir_path: Path, n_symbols: int, n_events: int, seed: int = 11) -> tuple[str, int]:
    """Write the capture (``stream.ws`` + ``stream.depth``); returns (paths, events written)."""
    rng = random.Random(seed)
    symbols = symbols_for(n_symbols)
    mids = {s: 1000 + 10 * i for i, s in enumerate(symbols)}
    last_u = {s: 1_000_000 + 1000 * i for i, s in enumerate(symbols)}
    books: dict[str, dict[str, dict[int, int]]] = {
        s: {"b": {t: rng.randint(1, 500) for t in range(mids[s] * 10 - 50, mids[s] * 10)},
            "a": {t: rng.randint(1, 500) for t in range(mids[s] * 10 + 1, mids[s] * 10 + 51)}}
        for s in symbols}
    streams = "/".join(f"{s.lower()}@depth@100ms" for s in symbols)
    ws_lines = [f"wss://fstream.binance.com/stream?streams={streams} <-> 0"]
    depth_lines = []
    for s in symbols:
        snap = {"lastUpdateId": last_u[s] + 1, "E": 1, "T": 1,
                "bids": [[f"{t / 10:.1f}", f"{q / 1000:.3f}"] for t, q in
                         sorted(books[s]["b"].items(), reverse=True)],
                "asks": [[f"{t / 10:.1f}", f"{q / 1000:.3f}"] for t, q in
                         sorted(books[s]["a"].items())]}
        depth_lines.append(f"https://fapi.binance.com/fapi/v1/depth?symbol={s}&limit=1000 -> 0: "
                           + orjson.dumps(snap).decode())
    for n in range(n_events):
        s = symbols[n % n_symbols]
        first = last_u[s] + 1
        last = first + rng.randint(0, 20)
        event: dict[str, Any] = {"e": "depthUpdate", "E": 1_700_000_000_000 + n,
                                 "T": 1_700_000_000_000 + n, "s": s, "U": first, "u": last,
                                 "pu": last_u[s], "b": [], "a": []}
        for _ in range(rng.randint(1, 6)):
            side = rng.choice("ba")
            mid = mids[s] * 10
            tick = mid - rng.randint(1, 60) if side == "b" else mid + rng.randint(1, 60)
            qty = 0 if rng.random() < 0.2 else rng.randint(1, 900)
            event[side].append([f"{tick / 10:.1f}", f"{qty / 1000:.3f}"])
        last_u[s] = last
        ws_lines.append("0: " + orjson.dumps({"stream": f"{s.lower()}@depth@100ms",
                                              "data": event}).decode())
    ws, depth = dir_path / "stream.ws", dir_path / "stream.depth"
    ws.write_text("\n".join(ws_lines) + "\n")
    depth.write_text("\n".join(depth_lines) + "\n")
    return f"{ws},{depth}", n_events


async def run_native(base_url: str, symbols: list[str], total: int, stall_s: float,
                     timing: Timed, follow: Follow) -> Timed:
    from venueguard.core.liveness import LivenessConfig
    from venueguard.io.binance_session import BinanceMarketDataSession, binance_config

    liveness = LivenessConfig(ping_after_s=5.0, pong_timeout_s=5.0, max_data_age_s=10.0,
                              max_ts_age_ms=10**13, future_tolerance_ms=10**13)
    config = binance_config(base_url.replace("http://", "ws://", 1), base_url, symbols,
                            ticker=False, trades=False, liveness=liveness)
    session = BinanceMarketDataSession(config)
    async with session:
        await follow(lambda: session.binance.counters.frames, timing, total, stall_s)
        counters = session.binance.counters
        if counters.gaps or counters.rejected or not session.synced:
            raise RuntimeError(f"venueguard's Binance books are not in sync: {counters}")
    return timing


async def run_ccxt(base_url: str, symbols: list[str], total: int, stall_s: float,
                   timing: Timed, follow: Follow) -> Timed:
    import ccxt.pro as ccxt_pro

    from venueguard.sim.binance.testing import point_ccxt

    class Counting(ccxt_pro.binanceusdm):  # type: ignore[misc, name-defined]
        depth_messages = 0

        def handle_order_book(self, client: Any, message: Any) -> Any:
            self.depth_messages += 1
            return super().handle_order_book(client, message)

    exchange = Counting({"newUpdates": False})
    point_ccxt(exchange, base_url)
    await exchange.load_markets()
    unified = [exchange.markets_by_id[s][0]["symbol"] for s in symbols]

    async def watch(symbol: str) -> None:
        while True:
            await exchange.watch_order_book(symbol)

    watchers = [asyncio.create_task(watch(s)) for s in unified]
    try:
        await follow(lambda: exchange.depth_messages, timing, total, stall_s)
    finally:
        for task in watchers:
            task.cancel()
        for task in watchers:
            with contextlib.suppress(BaseException):
                await task
        await exchange.close()
    return timing
