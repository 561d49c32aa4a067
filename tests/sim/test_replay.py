"""Replay of recorded messages: per-connection, filtered by topic, in order, at recorded pace."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from venueguard.sim.bitmex.replay import Recording
from venueguard.sim.replayer import ReplayError
from venueguard.sim.testing import SimHandle


def _book(action: str, symbol: str, ident: int, ts: str) -> dict[str, Any]:
    return {"table": "orderBookL2", "action": action,
            "data": [{"symbol": symbol, "id": ident, "side": "Buy", "size": ident, "price": 1.0,
                      "timestamp": ts}]}


def _recording(tmp_path: Path) -> Path:
    lines = [
        orjson.dumps({"info": "Welcome to the BitMEX Realtime API."}),  # skipped
        orjson.dumps(_book("partial", "XBTUSD", 1, "2024-01-01T00:00:00.000Z")),
        orjson.dumps({"ts": 1, "msg": _book("partial", "ETHUSD", 2, "2024-01-01T00:00:00.000Z")}),
        orjson.dumps({"recv": orjson.dumps(_book("update", "XBTUSD", 3,
                                                 "2024-01-01T00:00:00.100Z")).decode()}),
        orjson.dumps({"recv": "pong"}),  # skipped
        orjson.dumps(_book("update", "ETHUSD", 4, "2024-01-01T00:00:00.200Z")),
        orjson.dumps({"table": "trade", "action": "insert", "data": [
            {"symbol": "XBTUSD", "timestamp": "2024-01-01T00:00:00.250Z", "size": 5},
            {"symbol": "ETHUSD", "timestamp": "2024-01-01T00:00:00.250Z", "size": 6}]}),
        b"",
        orjson.dumps(_book("update", "XBTUSD", 7, "2024-01-01T00:00:00.300Z")),
    ]
    path = tmp_path / "rec.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_recording_parses_every_record_form(tmp_path: Path) -> None:
    rec = Recording.load(_recording(tmp_path))
    assert [i.table for i in rec.items] == ["orderBookL2"] * 4 + ["trade", "orderBookL2"]
    assert rec.items[1].ts_ms == 1704067200000 and rec.items[2].symbols == {"XBTUSD"}


def test_malformed_recording_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"table": "trade", "action": "insert", "data": []}\n{oops\n')
    with pytest.raises(ReplayError, match=r"bad.jsonl:2: not JSON"):
        Recording.load(path)


async def _read(ws: aiohttp.ClientWebSocketResponse, n: int) -> list[Any]:
    return [orjson.loads((await ws.receive(timeout=5)).data) for _ in range(n)]


async def test_each_connection_gets_its_topics_in_order(sim_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sim: SimHandle = await sim_server(replay_path=_recording(tmp_path), replay_speed=0)
    async with sim.session.ws_connect(sim.ws_url + "?subscribe=orderBookL2:XBTUSD,trade:ETHUSD") \
            as xbt:
        got = (await _read(xbt, 7))[3:]
        # welcome, two acks, then: XBT partial, XBT update 3, trade (ETH rows only), XBT update 7
        assert [(m["table"], m["action"]) for m in got] == [
            ("orderBookL2", "partial"), ("orderBookL2", "update"), ("trade", "insert"),
            ("orderBookL2", "update")]
        assert [m["data"][0]["id"] for m in got if m["table"] == "orderBookL2"] == [1, 3, 7]
        assert got[2]["data"] == [{"symbol": "ETHUSD", "timestamp": "2024-01-01T00:00:00.250Z",
                                   "size": 6}]
    # a later connection gets the recording from its start again
    async with sim.session.ws_connect(sim.ws_url + "?subscribe=orderBookL2") as everything:
        got = (await _read(everything, 6))[2:]
        assert [m["data"][0]["id"] for m in got] == [1, 2, 3, 4]


async def test_recorded_pace(sim_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    sim: SimHandle = await sim_server(replay_path=_recording(tmp_path), replay_speed=1)
    async with sim.session.ws_connect(sim.ws_url + "?subscribe=orderBookL2:XBTUSD") as ws:
        await _read(ws, 2)
        start = time.monotonic()
        got = await _read(ws, 3)
        elapsed = time.monotonic() - start
    assert [m["data"][0]["id"] for m in got] == [1, 3, 7]
    assert 0.25 <= elapsed < 2.0  # 300 ms of recorded time at speed 1


async def test_a_topic_subscribed_later_starts_from_the_recording_start(  # type: ignore[no-untyped-def]
        sim_server, tmp_path: Path) -> None:
    """Regression: a client that subscribes ``trade`` first and the book second (as
    nautilus_trader's BitMEX client does with ``instrument``) used to get no book at all,
    because the recording had started, and moved past the partial, on the first topic."""
    sim: SimHandle = await sim_server(replay_path=_recording(tmp_path), replay_speed=0)
    async with sim.session.ws_connect(sim.ws_url) as ws:
        await _read(ws, 1)  # welcome
        await ws.send_str('{"op": "subscribe", "args": ["trade:XBTUSD"]}')
        ack, trade = await _read(ws, 2)
        assert ack["subscribe"] == "trade:XBTUSD" and trade["table"] == "trade"
        await ws.send_str('{"op": "subscribe", "args": ["orderBookL2:XBTUSD"]}')
        ack, *book = await _read(ws, 4)
        assert ack["subscribe"] == "orderBookL2:XBTUSD"
        assert [(m["action"], m["data"][0]["id"]) for m in book] == [
            ("partial", 1), ("update", 3), ("update", 7)]
        # the trade topic is not replayed a second time by the book's subscription
        await ws.send_str("ping")
        assert (await ws.receive(timeout=5)).data == "pong"
