"""Message shapes checked against real BitMEX captures (skipped, saying why, without them).

Our messages must use the venue's keys and texts: the welcome, acks and error frames have the
captured key sets; order, book and trade rows use no field the venue does not send; REST error
bodies equal the captured ones; and captured streams replay through ``--replay`` unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import orjson

from venueguard.sim.testing import SimHandle


def _records(root: Path, name: str) -> list[dict[str, Any]]:
    lines = (root / "fixtures" / name).read_text(encoding="utf-8").splitlines()
    return [orjson.loads(line) for line in lines if line.strip()]


def _captured(root: Path) -> dict[str, Any]:
    roq = {r["file"].rsplit("/", 1)[-1].removesuffix(".cpp"): r["msg"]
           for r in _records(root, "roq-bitmex_test_messages_2022-2025.jsonl")}
    controls = [r["msg"] for r in _records(root, "ws_control_and_error_messages.jsonl")]
    return {"roq": roq, "controls": controls}


async def _frames(ws: aiohttp.ClientWebSocketResponse, n: int) -> list[Any]:
    return [orjson.loads((await ws.receive(timeout=5)).data) for _ in range(n)]


async def test_ws_control_shapes_match_captures(bitmex_fixtures: Path, sim: SimHandle) -> None:
    cap = _captured(bitmex_fixtures)
    errors_by_text = {m["error"].split(":")[0]: m for m in cap["controls"] if "error" in m}
    async with sim.session.ws_connect(sim.ws_url) as ws:
        welcome, = await _frames(ws, 1)
        assert set(welcome) == set(cap["roq"]["json_welcome"])
        await ws.send_str('{"op": "subscribe", "args": ["instrument:XBTUSD"]}')
        ack, partial = await _frames(ws, 2)
        assert set(ack) == set(cap["roq"]["json_subscribe"])
        assert set(partial) == set(cap["roq"]["json_instrument"])  # keys, types, filter, data
        for bad, prefix in (("a", "Failed to decode incoming data"),
                            ('{"op": "subscribe", "args": ["tradeBin5dm"]}', "Unknown table")):
            await ws.send_str(bad)
            frame, = await _frames(ws, 1)
            captured = errors_by_text[prefix]
            assert set(frame) == set(captured) and frame["status"] == captured["status"]
            if prefix == "Unknown table":
                assert frame["error"] == captured["error"]
        await ws.send_str('{"op": "unsubscribe", "args": ["instrument:XBTUSD"]}')
        unsub, = await _frames(ws, 1)
        assert set(unsub) == set(next(m for m in cap["controls"] if "unsubscribe" in m))


async def test_rows_use_only_venue_fields(bitmex_fixtures: Path, sim: SimHandle) -> None:
    cap = _captured(bitmex_fixtures)["roq"]
    book_fields = {k for row in cap["json_order_book_l2"]["data"] for k in row}
    trade_fields = set(cap["json_trade"]["types"]) | {k for r in cap["json_trade"]["data"]
                                                     for k in r}
    _, _, book = await sim.request("GET", "/orderBook/L2", query={"symbol": "XBTUSD"},
                                   signed=False)
    assert book and all(set(row) <= book_fields for row in book)
    async with sim.session.ws_connect(sim.ws_url + "?subscribe=trade:XBTUSD") as ws:
        _, _, trade_partial = await _frames(ws, 3)
    assert all(set(row) <= trade_fields for row in trade_partial["data"])
    order_fields = {k for r in cap["json_cancel_all_orders_ack"] for k in r}
    order_fields |= {"clOrdLinkID", "execInst", "avgPx", "settlCurrency", "ordRejReason",
                     "stopPx", "displayQty", "contingencyType", "pegOffsetValue", "pegPriceType",
                     "triggered", "multiLegReportingType", "exDestination"}  # 2018-2022 rows
    _, _, row = await sim.request("POST", "/order", {"symbol": "XBTUSD", "orderQty": 100,
                                                     "price": 30000})
    extra = set(row) - order_fields
    assert not extra, f"order row fields the venue never sent: {extra}"


async def test_rest_error_bodies_equal_captures(bitmex_fixtures: Path, sim: SimHandle) -> None:
    catalog = _records(bitmex_fixtures, "rest_error_catalog.jsonl")
    overloaded = next(r for r in catalog if r["status"] == 503)
    limited = next(r for r in catalog if r["status"] == 429)
    await sim.add_fault("overload_503")
    status, _, body = await sim.request("POST", "/order", {"symbol": "XBTUSD", "orderQty": 100,
                                                           "price": 30000})
    assert (status, body) == (503, overloaded["body"])
    await sim.clear_faults()
    await sim.add_fault("rate_limit_429", retry_after_s=1)
    status, headers, body = await sim.request("GET", "/position")
    assert (status, body) == (429, limited["body"])
    assert {k.lower() for k in limited["headers"]} <= set(headers)


async def test_captured_stream_replays_unchanged(bitmex_fixtures: Path, sim_server,  # type: ignore[no-untyped-def]
                                                 tmp_path: Path) -> None:
    records = [r for r in _records(bitmex_fixtures, "api-connectors_nodejs_test_fixtures.jsonl")
               if r.get("fixture") == "orderbookSymboledEmptyPartial"]
    recording = tmp_path / "captured.jsonl"
    recording.write_bytes(b"\n".join(orjson.dumps(r) for r in records))
    expected = [r["msg"] for r in records if "table" in r["msg"]
                and all(row.get("symbol") == "XBTUSD" for row in r["msg"]["data"])
                and (r["msg"]["data"] or r["msg"].get("filter", {}).get("symbol") == "XBTUSD")]
    sim: SimHandle = await sim_server(replay_path=recording, replay_speed=0)
    async with sim.session.ws_connect(sim.ws_url + "?subscribe=orderBookL2_25:XBTUSD") as ws:
        got = (await _frames(ws, 2 + len(expected)))[2:]
    assert got == expected
