"""Replay in the Binance dialect: a real fapi capture (diff-depth stream + REST snapshot) served by
``--replay`` rebuilds, through Binance's documented sync procedure, the book that the same
procedure builds from the capture files directly; ccxt.pro's own book code agrees.

The capture lives outside the repository: ``VENUEGUARD_BINANCE_FIXTURES`` (default
``../shared/binance/fixtures`` relative to the repository root).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import ccxt.pro as ccxt_pro
import orjson
import pytest

from venueguard.sim.binance.replay import BinanceRecording
from venueguard.sim.binance.testing import point_ccxt, running_binance_sim

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(os.environ.get("VENUEGUARD_BINANCE_FIXTURES",
                               ROOT.parent / "shared" / "binance" / "fixtures"))
WS = FIXTURES / "BINANCE_FUTURES.ws"
DEPTH = FIXTURES / "BINANCE_FUTURES.http.depth"
if not (WS.exists() and DEPTH.exists()):
    pytest.skip(f"Binance captures not found in {FIXTURES} (set VENUEGUARD_BINANCE_FIXTURES)",
                allow_module_level=True)

Book = dict[str, dict[str, str]]


def documented_sync(snapshot: dict[str, Any], events: list[dict[str, Any]]) -> tuple[Book, int]:
    """Binance's procedure: drop ``u < lastUpdateId``; the first applied event has
    ``U <= lastUpdateId <= u``; every later one has ``pu`` == the previous ``u``.
    Returns the book (side -> price -> qty) and the number of events applied."""
    book: Book = {"bids": dict(snapshot["bids"]),
                  "asks": dict(snapshot["asks"])}
    last_id = snapshot["lastUpdateId"]
    prev_u: int | None = None
    applied = 0
    for event in events:
        if event["u"] < last_id:
            continue
        if prev_u is None:
            assert event["U"] <= last_id <= event["u"], "no event spans the snapshot"
        else:
            assert event["pu"] == prev_u, "sequence break"
        for side, key in (("bids", "b"), ("asks", "a")):
            for price, qty in event[key]:
                if float(qty) == 0:
                    book[side].pop(price, None)
                else:
                    book[side][price] = qty
        prev_u = event["u"]
        applied += 1
    return book, applied


def _offline(symbol: str) -> tuple[Book, int, int]:
    recording = BinanceRecording.load(f"{WS},{DEPTH}")
    events = [e.data for e in recording.events if e.key == f"{symbol.lower()}@depth@100ms"]
    snapshot = recording.depth(symbol, 1000)
    assert snapshot is not None
    book, applied = documented_sync(snapshot, events)
    return book, applied, events[-1]["u"]


async def test_raw_client_rebuilds_the_documented_book() -> None:
    expected, applied, _ = _offline("SUSHIUSDT")
    assert applied > 100 and expected["bids"] and expected["asks"]
    async with running_binance_sim(replay_path=f"{WS},{DEPTH}", replay_speed=0.0) as sim:
        events = []
        async with sim.session.ws_connect(
                f"{sim.ws_base}/stream?streams=sushiusdt@depth@100ms") as ws:
            while True:
                try:
                    msg = await ws.receive(timeout=0.5)
                except TimeoutError:
                    break
                frame = orjson.loads(msg.data)
                assert frame["stream"] == "sushiusdt@depth@100ms"
                events.append(frame["data"])
        status, _, snapshot = await sim.call("GET", "/fapi/v1/depth",
                                             {"symbol": "SUSHIUSDT", "limit": 1000},
                                             signed=False)
        assert status == 200
        info = (await sim.call("GET", "/fapi/v1/exchangeInfo", signed=False))[2]
        assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT", "AKROUSDT", "SUSHIUSDT"]
    book, got_applied = documented_sync(snapshot, events)
    assert got_applied == applied and book == expected


async def test_ccxt_pro_book_on_the_replay_matches() -> None:
    expected, _, last_u = _offline("SUSHIUSDT")
    async with running_binance_sim(replay_path=f"{WS},{DEPTH}", replay_speed=0.0) as sim:
        exchange = ccxt_pro.binanceusdm()
        point_ccxt(exchange, sim.base_url)
        try:
            book = await exchange.watch_order_book("SUSHI/USDT:USDT")
            async with asyncio.timeout(10):
                while book["nonce"] != last_u:
                    book = await exchange.watch_order_book("SUSHI/USDT:USDT")
        finally:
            await exchange.close()
    # ccxt keeps the best 1000 levels of a side (the depth it asked for)
    bids = sorted(((float(p), float(q)) for p, q in expected["bids"].items()), reverse=True)
    asks = sorted((float(p), float(q)) for p, q in expected["asks"].items())
    assert [tuple(level) for level in book["bids"]] == bids[:1000]
    assert [tuple(level) for level in book["asks"]] == asks[:1000]


def test_recording_errors_name_the_file(tmp_path: Path) -> None:
    from venueguard.sim.replayer import ReplayError

    bad = tmp_path / "bad.txt"
    bad.write_text('1626992741.1: {"stream": "x", "data": {broken\n')
    with pytest.raises(ReplayError, match=r"bad\.txt:1: not JSON"):
        BinanceRecording.load(bad)
    with pytest.raises(ReplayError, match="cannot read"):
        BinanceRecording.load(tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("wss://example <-> 1\n")
    with pytest.raises(ReplayError, match="no Binance events"):
        BinanceRecording.load(empty)

