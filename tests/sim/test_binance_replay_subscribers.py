"""Replay serves every subscriber: a stream subscribed late on a connection starts where the
recording starts (so the recorded snapshot syncs it), and a capture's stream names are kept (a
raw capture of ``/ws/btcusdt@depth@100ms`` is served to a ``@depth@100ms`` subscriber)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from venueguard.sim.binance.replay import BinanceRecording
from venueguard.sim.binance.testing import BinanceHandle, running_binance_sim

pytestmark = [pytest.mark.system, pytest.mark.virtual_time]

START_MS = 1_700_000_000_000
EVENTS = 30  # 100 ms apart: a 3-second recording
SNAPSHOT_AT = 3  # the REST snapshot's lastUpdateId falls inside this event's [U, u]


def depth_event(symbol: str, n: int) -> dict[str, Any]:
    first, last = 1000 + 10 * n, 1000 + 10 * n + 5
    return {"e": "depthUpdate", "E": START_MS + 100 * n, "T": START_MS + 100 * n - 1,
            "s": symbol, "U": first, "u": last, "pu": last - 10 if n else 990,
            "b": [[f"{100 - n % 3}.0", str(n + 1)]], "a": [[f"{101 + n % 3}.0", str(n + 2)]]}


def write_capture(tmp_path: Path, url: str, symbols: list[str]) -> str:
    """A raw capture (one URL line, then ``<ts>: <event>`` lines) and REST snapshots."""
    ws_lines = [f"{url} <-> {START_MS / 1000}"]
    for n in range(EVENTS):
        for symbol in symbols:
            event = depth_event(symbol, n)
            ws_lines.append(f"{event['E'] / 1000}: {orjson.dumps(event).decode()}")
    rest_lines = []
    for symbol in symbols:
        snap = {"lastUpdateId": 1000 + 10 * SNAPSHOT_AT + 2, "E": START_MS, "T": START_MS,
                "bids": [["99.0", "7"]], "asks": [["102.0", "7"]]}
        rest_lines.append(f"https://fapi.binance.com/fapi/v1/depth?symbol={symbol}&limit=1000"
                          f" -> {START_MS / 1000 + 0.35}: {orjson.dumps(snap).decode()}")
    ws, rest = tmp_path / "capture.ws", tmp_path / "capture.depth"
    ws.write_text("\n".join(ws_lines) + "\n")
    rest.write_text("\n".join(rest_lines) + "\n")
    return f"{ws},{rest}"


def syncs(snapshot: dict[str, Any], events: list[dict[str, Any]]) -> bool:
    """Binance's procedure: is there a first event spanning lastUpdateId, then a pu chain?"""
    last_id, prev = snapshot["lastUpdateId"], None
    for event in events:
        if event["u"] < last_id:
            continue
        if prev is None and not event["U"] <= last_id <= event["u"]:
            return False
        if prev is not None and event["pu"] != prev:
            return False
        prev = event["u"]
    return prev is not None


async def collect(ws: Any, stream: str, seconds: float) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        try:
            msg = await ws.receive(timeout=max(0.05, end - loop.time()))
        except TimeoutError:
            break
        frame = orjson.loads(msg.data)
        if isinstance(frame, dict) and frame.get("stream") == stream:
            out.append(frame["data"])
    return out


async def snapshot(sim: BinanceHandle, symbol: str) -> dict[str, Any]:
    status, _, body = await sim.call("GET", "/fapi/v1/depth", {"symbol": symbol, "limit": 1000},
                                     signed=False)
    assert status == 200
    return dict(body)


def test_a_raw_capture_keeps_the_stream_name_of_its_url(tmp_path: Path) -> None:
    paths = write_capture(tmp_path, "wss://fstream.binance.com/ws/btcusdt@depth@100ms",
                          ["BTCUSDT"])
    recording = BinanceRecording.load(paths)
    assert recording.keys == {"btcusdt@depth@100ms"}
    assert recording.source_key("btcusdt@depth@100ms") == "btcusdt@depth@100ms"
    assert recording.source_key("btcusdt@depth@500ms") == "btcusdt@depth@100ms"
    assert recording.source_key("btcusdt@aggTrade") is None
    bare = tmp_path / "bare.ws"  # no URL line: the venue's default cadence
    bare.write_text(orjson.dumps(depth_event("BTCUSDT", 0)).decode() + "\n")
    assert BinanceRecording.load(bare).keys == {"btcusdt@depth@250ms"}


async def test_a_depth_100ms_subscriber_gets_a_raw_100ms_capture(tmp_path: Path) -> None:
    paths = write_capture(tmp_path, "wss://fstream.binance.com/ws/btcusdt@depth@100ms",
                          ["BTCUSDT"])
    async with running_binance_sim(replay_path=paths, replay_speed=0.0) as sim:
        stream = "btcusdt@depth@100ms"
        async with sim.session.ws_connect(f"{sim.ws_base}/stream?streams={stream}") as ws:
            events = await collect(ws, stream, 1.0)
        assert [e["u"] for e in events] == [depth_event("BTCUSDT", n)["u"]
                                            for n in range(EVENTS)]
        assert syncs(await snapshot(sim, "BTCUSDT"), events)


async def test_a_stream_subscribed_late_on_a_connection_still_syncs(tmp_path: Path) -> None:
    paths = write_capture(tmp_path, "wss://fstream.binance.com/stream?streams="
                          "btcusdt@depth@100ms/ethusdt@depth@100ms", ["BTCUSDT", "ETHUSDT"])
    async with running_binance_sim(replay_path=paths, replay_speed=1.0) as sim:
        async with sim.session.ws_connect(f"{sim.ws_base}/stream") as ws:
            await ws.send_json({"method": "SUBSCRIBE", "params": ["btcusdt@depth@100ms"],
                                "id": 1})
            early = await collect(ws, "btcusdt@depth@100ms", 1.2)  # past the snapshot's id
            await ws.send_json({"method": "SUBSCRIBE", "params": ["ethusdt@depth@100ms"],
                                "id": 2})
            late = await collect(ws, "ethusdt@depth@100ms", 3.5)
        assert early and early[-1]["U"] > 1000 + 10 * SNAPSHOT_AT + 2
        assert late and late[0]["u"] == depth_event("ETHUSDT", 0)["u"]  # from the start
        assert syncs(await snapshot(sim, "ETHUSDT"), late)
