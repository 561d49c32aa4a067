"""The /realtime websocket: welcome, commands, acks, partials, deltas, auth, errors, limits."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson

from venueguard.sim.testing import SimHandle
from venueguard.venues.bitmex import errors, signing

DOCS = " Please see the documentation at https://www.bitmex.com/app/wsAPI."


async def recv_json(ws: aiohttp.ClientWebSocketResponse, timeout_s: float = 5.0) -> Any:
    msg = await ws.receive(timeout=timeout_s)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    return orjson.loads(msg.data)


async def until(ws: aiohttp.ClientWebSocketResponse, pred: Any, limit: int = 2000) -> Any:
    for _ in range(limit):
        msg = await ws.receive(timeout=5.0)
        assert msg.type is aiohttp.WSMsgType.TEXT, msg
        if msg.data == "pong":
            if pred("pong"):
                return "pong"
            continue
        obj = orjson.loads(msg.data)
        if pred(obj):
            return obj
    raise AssertionError("expected message never came")


async def test_welcome_then_acks_partial_and_deltas(sim_server) -> None:  # type: ignore[no-untyped-def]
    sim: SimHandle = await sim_server(rate=400)
    async with sim.session.ws_connect(sim.ws_url) as ws:
        welcome = await recv_json(ws)
        assert welcome["info"] == "Welcome to the BitMEX Realtime API."
        assert welcome["heartbeatEnabled"] is False and welcome["version"] == "2.0.0"
        assert welcome["limit"]["remaining"] == 59 and "appName" in welcome
        req = {"op": "subscribe", "args": ["orderBookL2:XBTUSD", "trade:XBTUSD"]}
        await ws.send_bytes(orjson.dumps(req))
        ack = await recv_json(ws)
        assert ack == {"success": True, "subscribe": "orderBookL2:XBTUSD", "request": req}
        partial = await recv_json(ws)
        assert partial["table"] == "orderBookL2" and partial["action"] == "partial"
        assert partial["data"] and {"keys", "data"} <= set(partial)
        ack2 = await until(ws, lambda m: m != "pong" and m.get("subscribe") == "trade:XBTUSD")
        assert ack2["request"] == req
        delta = await until(ws, lambda m: m != "pong" and m.get("table") == "orderBookL2"
                            and m["action"] in ("insert", "update", "delete"))
        assert set(delta) == {"table", "action", "data"}
        assert all(r["symbol"] == "XBTUSD" for r in delta["data"])


async def test_bare_string_args_url_subscribe_and_unsubscribe(sim: SimHandle) -> None:
    async with sim.session.ws_connect(sim.ws_url + "?subscribe=instrument,quote:XBTUSD") as ws:
        await recv_json(ws)  # welcome
        first = await recv_json(ws)
        assert first["subscribe"] == "instrument"
        assert first["request"] == {"op": "subscribe", "args": ["instrument", "quote:XBTUSD"]}
        await ws.send_str('{"op": "subscribe", "args": "trade"}')
        ack = await until(ws, lambda m: m != "pong" and m.get("subscribe") == "trade")
        assert ack["request"] == {"op": "subscribe", "args": "trade"}
        await ws.send_str('{"op": "unsubscribe", "args": ["trade"]}')
        unsub = await until(ws, lambda m: m != "pong" and "unsubscribe" in m)
        assert unsub == {"success": True, "unsubscribe": "trade",
                         "request": {"op": "unsubscribe", "args": ["trade"]}}


async def test_text_ping_op_ping_and_protocol_ping(sim: SimHandle) -> None:
    async with sim.session.ws_connect(sim.ws_url, autoping=False) as ws:
        await recv_json(ws)
        await ws.send_str("ping")
        assert (await ws.receive(timeout=5)).data == "pong"
        await ws.send_str('{"op": "ping"}')
        assert (await ws.receive(timeout=5)).data == "pong"
        await ws.send_str("help")
        assert "subscribe" in (await recv_json(ws))["ops"]
        await ws.ping(b"hb")
        msg = await ws.receive(timeout=5)
        assert msg.type is aiohttp.WSMsgType.PONG and msg.data == b"hb"


async def test_error_frames(sim: SimHandle) -> None:
    async with sim.session.ws_connect(sim.ws_url) as ws:
        await recv_json(ws)
        await ws.send_str("a{")
        decode = await recv_json(ws)
        assert decode["status"] == 400 and decode["meta"] == {} and "request" not in decode
        assert decode["error"].startswith("Failed to decode incoming data: ")
        assert decode["error"].endswith(DOCS)
        req = {"op": "subscribe", "args": ["tradeBin5dm"]}
        await ws.send_bytes(orjson.dumps(req))
        assert await recv_json(ws) == {"status": 400, "error": "Unknown table: tradeBin5dm",
                                       "meta": {}, "request": req}
        await ws.send_str('{"op": "subscribe", "args": ["instrument"]}')
        await until(ws, lambda m: m != "pong" and m.get("subscribe") == "instrument")
        await ws.send_str('{"op": "subscribe", "args": ["instrument"]}')
        dup = await until(ws, lambda m: m != "pong" and "status" in m)
        assert dup["error"] == f"You are already subscribed to this topic:instrument.{DOCS}"
        await ws.send_str('{"op": "subscribe", "args": ["order"]}')
        locked = await until(ws, lambda m: m != "pong" and "status" in m)
        assert locked["status"] == 401 and locked["error"] == errors.WS_ACCOUNT_LOCKED
        bad = {"op": "authKeyExpires", "args": [sim.api_key, 9_999_999_999, "00" * 32]}
        await ws.send_bytes(orjson.dumps(bad))
        sig = await until(ws, lambda m: m != "pong" and "status" in m)
        assert sig == {"status": 401, "error": "Signature not valid.", "meta": {}, "request": bad}
        await ws.send_str('{"op": "authKeyExpires", "args": ["nobody", 9999999999, "00"]}')
        key = await until(ws, lambda m: m != "pong" and "status" in m)
        assert key["status"] == 401 and key["error"] == "Invalid API Key."
        # the connection still works after all that
        await ws.send_str("ping")
        assert await until(ws, lambda m: m == "pong") == "pong"


async def test_disconnect_after_repeated_errors(sim_server) -> None:  # type: ignore[no-untyped-def]
    sim: SimHandle = await sim_server(ws_max_errors=3)
    async with sim.session.ws_connect(sim.ws_url) as ws:
        await recv_json(ws)
        for _ in range(3):
            await ws.send_str("nonsense")
        seen = 0
        while True:
            msg = await ws.receive(timeout=5)
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            seen += 1
        assert seen == 3 and msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_private_topics_with_each_auth_method(sim: SimHandle) -> None:
    order = {"symbol": "XBTUSD", "side": "Buy", "orderQty": 100, "price": 30000}
    # 1. authKeyExpires op
    async with sim.session.ws_connect(sim.ws_url) as ws:
        await recv_json(ws)
        op = sim.ws_auth_op()
        await ws.send_bytes(orjson.dumps(op))
        assert await recv_json(ws) == {"success": True, "request": op}
        await ws.send_str('{"op": "subscribe", "args": ["order"]}')
        await until(ws, lambda m: m != "pong" and m.get("table") == "order"
                    and m["action"] == "partial")
        status, _, _row = await sim.request("POST", "/order", {**order, "clOrdID": "ws-1"})
        assert status == 200
        insert = await until(ws, lambda m: m != "pong" and m.get("table") == "order"
                             and m["action"] != "partial")
        assert insert["data"][0]["clOrdID"] == "ws-1"
        caa = {"op": "cancelAllAfter", "args": 60000}
        await ws.send_bytes(orjson.dumps(caa))
        ack = await until(ws, lambda m: m != "pong" and "cancelTime" in m)
        assert ack["request"] == caa and ack["cancelTime"] != 0 and "now" in ack
    # 2. URL query
    async with sim.session.ws_connect(f"{sim.ws_url}?{sim.ws_auth_query()}&subscribe=position") \
            as ws:
        await recv_json(ws)
        assert (await recv_json(ws))["subscribe"] == "position"
    # 3. upgrade headers
    exp = 9_999_999_999
    headers = {"api-key": sim.api_key, "api-expires": str(exp),
               "api-signature": signing.sign_ws(sim.api_secret, exp)}
    async with sim.session.ws_connect(sim.ws_url, headers=headers) as ws:
        await recv_json(ws)
        await ws.send_str('{"op": "subscribe", "args": "execution"}')
        assert (await recv_json(ws))["subscribe"] == "execution"


async def test_bad_handshake_auth_is_http_401(sim: SimHandle) -> None:
    url = f"{sim.ws_url}?api-key={sim.api_key}&api-expires=9999999999&api-signature=00"
    try:
        async with sim.session.ws_connect(url):
            raise AssertionError("handshake should fail")
    except aiohttp.WSServerHandshakeError as exc:
        assert exc.status == 401


async def test_connection_rate_limit(sim_server) -> None:  # type: ignore[no-untyped-def]
    sim: SimHandle = await sim_server(ws_opens_per_hour=2)
    remaining = []
    for _ in range(2):
        async with sim.session.ws_connect(sim.ws_url) as ws:
            remaining.append((await recv_json(ws))["limit"]["remaining"])
    assert remaining == [1, 0]
    try:
        async with sim.session.ws_connect(sim.ws_url):
            raise AssertionError("third open should be refused")
    except aiohttp.WSServerHandshakeError as exc:
        assert exc.status == 429
        assert int(exc.headers["Retry-After"]) > 0 if exc.headers else True


async def test_slow_client_is_disconnected(sim_server) -> None:  # type: ignore[no-untyped-def]
    sim: SimHandle = await sim_server(rate=20000, ws_queue_max=50)
    async with sim.session.ws_connect(sim.ws_url) as ws:
        await recv_json(ws)
        # the client reads nothing while the server floods it; the queue bound trips
        conn = next(iter(sim.server.hub.connections.values()))
        conn.max_queue = 50
        await ws.send_str('{"op": "subscribe", "args": ["orderBookL2"]}')
        for _ in range(200):
            if conn.dropped_slow:
                break
            await asyncio.sleep(0.01)
        assert conn.dropped_slow
    for _ in range(100):
        if not sim.server.hub.connections:
            break
        await asyncio.sleep(0.02)
    assert not sim.server.hub.connections


async def test_hostile_frames_get_errors_and_the_server_keeps_serving(sim: SimHandle) -> None:
    frames = ['{"op": 5}', '{"op": "subscribe", "args": [{"a": 1}]}', '{"op": "subscribe"}',
              '{"op": "authKeyExpires", "args": "x"}', '{"op": "cancelAllAfter", "args": [1, 2]}',
              '{"op": "unsubscribe", "args": ["never"]}', "[1, 2, 3]", '"just a string"',
              '{"op": "subscribe", "args": [""]}', "\x00\x01", '{"op": "nope"}']
    async with sim.session.ws_connect(sim.ws_url) as ws:
        await recv_json(ws)
        replies = []
        for frame in frames[:8]:
            await ws.send_str(frame)
            replies.append(await recv_json(ws))
        assert all(r["status"] in (400, 401) and isinstance(r["error"], str) for r in replies)
    # a frame over the size limit closes that connection (1009) and nothing else
    async with sim.session.ws_connect(sim.ws_url) as big:
        await recv_json(big)
        await big.send_str("x" * ((1 << 20) + 10))
        msg = await big.receive(timeout=5)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    async with sim.session.ws_connect(sim.ws_url) as ws:
        await recv_json(ws)
        await ws.send_str("ping")
        assert (await ws.receive(timeout=5)).data == "pong"


async def test_legacy_book_format_over_the_wire(sim_server) -> None:  # type: ignore[no-untyped-def]
    sim: SimHandle = await sim_server(rate=2000, book_format="legacy")
    async with sim.session.ws_connect(sim.ws_url + "?subscribe=orderBookL2:XBTUSD") as ws:
        await recv_json(ws)
        await recv_json(ws)
        partial = await recv_json(ws)
        # XBTUSD legacy ids encode the price: id = 8_800_000_000 - price * 100
        assert all(r["id"] == 8_800_000_000 - round(r["price"] * 100) for r in partial["data"])
        update = await until(ws, lambda m: m != "pong" and m.get("action") == "update")
        assert all("price" not in r for r in update["data"])
