"""Every fault kind in its Binance form, observed from a raw client (REST and websocket).

Simulator and client share one virtual-time loop (docs/virtual-time.md): delays, expiries and
timeouts pass in no real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from venueguard.io.clock import monotonic, wall_s
from venueguard.sim.binance.testing import BinanceHandle, running_binance_sim

pytestmark = [pytest.mark.system, pytest.mark.virtual_time]


@pytest.fixture
async def sim() -> AsyncIterator[BinanceHandle]:
    async with running_binance_sim(rate_msgs_s=300.0) as handle:
        yield handle


def _order(cid: str, **extra: Any) -> dict[str, Any]:
    return {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
            "quantity": "0.010", "price": "45000.0", "newClientOrderId": cid, **extra}


async def _cids(sim: BinanceHandle) -> set[str]:
    return {o["clOrdID"] for o in (await sim.truth())["orders"]}


async def test_overload_503_status_unknown_order_may_or_may_not_exist(sim: BinanceHandle) -> None:
    await sim.add_fault("overload_503")
    sent = [f"ov-{i}" for i in range(12)]
    for cid in sent:
        status, _, body = await sim.call("POST", "/fapi/v1/order", _order(cid))
        assert status == 503 and set(body) == {"timestamp", "path", "msg"}
        assert body["msg"] == "Unknown error, please check your request or try again later."
        assert body["path"] == "/fapi/v1/order"
    exists = await _cids(sim)
    assert exists and exists < set(sent)  # some reached the engine, some did not
    await sim.clear_faults()
    cid = sorted(exists)[0]
    status, _, found = await sim.call("GET", "/fapi/v1/order", {"symbol": "BTCUSDT",
                                                                "origClientOrderId": cid})
    assert status == 200 and found["clientOrderId"] == cid


async def test_timeout_after_accept_is_1007_and_the_order_exists(sim: BinanceHandle) -> None:
    await sim.add_fault("timeout_after_accept")
    status, _, body = await sim.call("POST", "/fapi/v1/order", _order("to-1"))
    assert (status, body) == (408, {"code": -1007, "msg": (
        "Timeout waiting for response from backend server. Send status unknown; "
        "execution status unknown.")})
    assert await _cids(sim) == {"to-1"}


async def test_bad_gateway_after_accept_is_html_and_the_order_exists(sim: BinanceHandle) -> None:
    await sim.add_fault("bad_gateway_after_accept")
    status, headers, body = await sim.call("POST", "/fapi/v1/order", _order("gw-1"))
    assert status == 502 and "502 Bad Gateway" in body
    assert headers["content-type"].startswith("text/html")
    assert await _cids(sim) == {"gw-1"}


async def test_rate_limit_429_fault(sim: BinanceHandle) -> None:
    await sim.add_fault("rate_limit_429", retry_after_s=7)
    status, headers, body = await sim.call("GET", "/fapi/v1/time", signed=False)
    assert status == 429 and body["code"] == -1003 and headers["retry-after"] == "7"
    assert "x-mbx-used-weight-1m" in headers


@pytest.mark.parametrize(("kind", "status"), [
    ("forbidden_403", 403), ("cloudflare_1010", 403), ("cloudflare_1006", 403),
    ("cloudflare_522", 504)])
async def test_edge_faults_are_cdn_html(sim: BinanceHandle, kind: str, status: int) -> None:
    await sim.add_fault(kind)
    got, headers, body = await sim.call("GET", "/fapi/v1/depth", {"symbol": "BTCUSDT"},
                                        signed=False)
    assert got == status and "The request could not be satisfied" in body
    assert "x-mbx-used-weight-1m" not in headers  # the venue never saw it


@pytest.mark.parametrize(("kind", "status", "code"), [
    ("expired_request", 400, -1021), ("invalid_key", 401, -2015), ("bad_signature", 400, -1022)])
async def test_auth_faults(sim: BinanceHandle, kind: str, status: int, code: int) -> None:
    assert (await sim.call("GET", "/fapi/v2/balance"))[0] == 200
    await sim.add_fault(kind)
    got, _, body = await sim.call("GET", "/fapi/v2/balance")
    assert (got, body["code"]) == (status, code)


async def test_latency_and_dns_failure(sim: BinanceHandle) -> None:
    await sim.add_fault("latency", ms=300)
    await sim.add_fault("dns_failure")
    started = monotonic()
    status, headers, _ = await sim.call("GET", "/fapi/v1/time", signed=False)
    assert status == 200 and monotonic() - started >= 0.29
    assert headers["x-sim-dns-failure"] == "1"


async def test_delayed_visibility_and_late_fill(sim: BinanceHandle) -> None:
    await sim.add_fault("delayed_visibility", delay_s=1.0)
    status, _, placed = await sim.call("POST", "/fapi/v1/order", _order("dv-1"))
    assert status == 200
    query = {"symbol": "BTCUSDT", "orderId": placed["orderId"]}
    assert (await sim.call("GET", "/fapi/v1/order", query))[2]["code"] == -2013
    await asyncio.sleep(1.1)
    assert (await sim.call("GET", "/fapi/v1/order", query))[2]["status"] == "NEW"
    await sim.add_fault("late_fill", delay_s=1.0)
    market = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.010"}
    status, _, filled = await sim.call("POST", "/fapi/v1/order", market)
    assert status == 200 and filled["status"] == "FILLED"
    trades = {"symbol": "BTCUSDT"}
    assert (await sim.call("GET", "/fapi/v1/userTrades", trades))[2] == []
    await asyncio.sleep(1.1)
    shown = (await sim.call("GET", "/fapi/v1/userTrades", trades))[2]
    assert shown and {t["orderId"] for t in shown} == {filled["orderId"]}


async def test_cancel_race_fills_first_then_2011(sim: BinanceHandle) -> None:
    _, _, book = await sim.call("GET", "/fapi/v1/depth", {"symbol": "BTCUSDT", "limit": 5},
                                signed=False)
    best_bid = book["bids"][0][0]
    status, _, placed = await sim.call("POST", "/fapi/v1/order",
                                       _order("cr-1", price=best_bid))
    assert status == 200 and placed["status"] in ("NEW", "PARTIALLY_FILLED")
    await sim.add_fault("cancel_race")
    query = {"symbol": "BTCUSDT", "orderId": placed["orderId"]}
    status, _, body = await sim.call("DELETE", "/fapi/v1/order", query)
    assert (status, body["code"]) == (400, -2011)
    assert (await sim.call("GET", "/fapi/v1/order", query))[2]["status"] == "FILLED"


# -- websocket ---------------------------------------------------------------------------------
async def _next_events(ws: aiohttp.ClientWebSocketResponse, n: int,
                       timeout_s: float = 5.0) -> list[dict[str, Any]]:
    out = []
    async with asyncio.timeout(timeout_s):
        while len(out) < n:
            msg = await ws.receive()
            assert msg.type is aiohttp.WSMsgType.TEXT, msg
            frame = orjson.loads(msg.data)
            if "data" in frame:
                out.append(frame["data"])
    return out


async def _quiet(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            msg = await ws.receive()
            return msg.type is not aiohttp.WSMsgType.TEXT
    except TimeoutError:
        return True


def _depth_url(sim: BinanceHandle) -> str:
    return f"{sim.ws_base}/stream?streams=btcusdt@depth@100ms"


async def test_ws_gap_breaks_the_pu_chain(sim: BinanceHandle) -> None:
    async with sim.session.ws_connect(_depth_url(sim)) as ws:
        first = await _next_events(ws, 3)
        assert all(b["pu"] == a["u"] for a, b in itertools.pairwise(first))
        last_u = first[-1]["u"]
        await sim.add_fault("ws_gap", count=2)
        after = await _next_events(ws, 3)
        chain = [last_u] + [e["u"] for e in after]
        breaks = [e for prev, e in zip(chain, after, strict=False) if e["pu"] != prev]
        assert len(breaks) == 1 and breaks[0]["U"] > last_u


async def test_ws_stall_half_open_and_drop(sim: BinanceHandle) -> None:
    async with sim.session.ws_connect(_depth_url(sim), autoping=False) as ws:
        await _next_events(ws, 1)
        await sim.add_fault("ws_stall")
        await ws.ping(b"s")
        assert (await ws.receive(timeout=2)).type is aiohttp.WSMsgType.PONG  # pings answered
        assert await _quiet(ws, 0.4)  # no data
    await sim.clear_faults()
    async with sim.session.ws_connect(_depth_url(sim), autoping=False) as ws:
        await _next_events(ws, 1)
        await sim.add_fault("ws_half_open")
        await ws.ping(b"h")
        assert await _quiet(ws, 0.4)  # neither data nor pong
    await sim.clear_faults()
    async with sim.session.ws_connect(_depth_url(sim)) as ws:
        await _next_events(ws, 1)
        await sim.add_fault("ws_drop")
        msg = await ws.receive(timeout=2)
        assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)


async def test_ws_duplicate_reorder_and_timestamps(sim: BinanceHandle) -> None:
    async with sim.session.ws_connect(_depth_url(sim)) as ws:
        await _next_events(ws, 1)
        await sim.add_fault("ws_duplicate", probability=1.0)
        events = await _next_events(ws, 4)
        assert events[0] == events[1] and events[2] == events[3]
    async with sim.session.ws_connect(_depth_url(sim)) as ws:
        await _next_events(ws, 1)
        await sim.add_fault("ws_reorder", probability=1.0)
        events = await _next_events(ws, 4)
        assert any(b["u"] < a["u"] for a, b in itertools.pairwise(events))
    await sim.clear_faults()
    async with sim.session.ws_connect(_depth_url(sim)) as ws:
        await _next_events(ws, 1)
        await sim.add_fault("ws_stale_timestamps", delay_s=30)
        event = (await _next_events(ws, 1))[0]
        assert event["E"] < wall_s() * 1000 - 25_000
    async with sim.session.ws_connect(_depth_url(sim)) as ws:
        await _next_events(ws, 1)
        await sim.add_fault("ws_future_timestamps", ahead_s=30)
        event = (await _next_events(ws, 1))[0]
        assert event["E"] > wall_s() * 1000 + 25_000


async def test_listen_key_expiry_and_24_hour_disconnect(sim: BinanceHandle) -> None:
    status, _, body = await sim.call("POST", "/fapi/v1/listenKey", signed=False)
    key = body["listenKey"]
    assert status == 200 and len(key) == 64
    assert (await sim.call("POST", "/fapi/v1/listenKey", signed=False))[2]["listenKey"] == key
    async with sim.session.ws_connect(f"{sim.ws_base}/private/ws?listenKey={key}") as ws:
        await sim.call("POST", "/fapi/v1/order", _order("uk-1"))
        update = orjson.loads((await ws.receive(timeout=3)).data)
        assert update["e"] == "ORDER_TRADE_UPDATE" and update["o"]["c"] == "uk-1"
        assert update["o"]["X"] == "NEW" and update["o"]["x"] == "NEW"
        await sim.add_fault("ws_stall")  # the Binance form on a user stream: key expiry
        expired = orjson.loads((await ws.receive(timeout=3)).data)
        assert expired["e"] == "listenKeyExpired" and expired["listenKey"] == key
        await sim.call("POST", "/fapi/v1/order", _order("uk-2"))
        assert await _quiet(ws, 0.4)  # silence after expiry
    status, _, body = await sim.call("PUT", "/fapi/v1/listenKey", {"listenKey": key},
                                     signed=False)
    assert (status, body["code"]) == (400, -1125)
    await sim.clear_faults()
    fresh = (await sim.call("POST", "/fapi/v1/listenKey", signed=False))[2]["listenKey"]
    assert fresh != key
    sim.venue.configure(ws_max_lifetime_s=0.3)
    async with sim.session.ws_connect(_depth_url(sim)) as ws:
        started = monotonic()
        while True:
            msg = await ws.receive(timeout=3)
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
        assert 0.25 <= monotonic() - started < 2.5


async def test_listen_key_lives_until_its_keepalive_runs_out(sim: BinanceHandle) -> None:
    sim.venue.configure(listen_key_ttl_s=1.2)
    key = (await sim.call("POST", "/fapi/v1/listenKey", signed=False))[2]["listenKey"]
    async with sim.session.ws_connect(f"{sim.ws_base}/ws/{key}") as ws:
        await asyncio.sleep(0.6)
        assert (await sim.call("PUT", "/fapi/v1/listenKey", signed=False))[0] == 200
        assert await _quiet(ws, 0.9)  # extended: still alive after the first 1.2 s
        expired = orjson.loads((await ws.receive(timeout=3)).data)
        assert expired == {"e": "listenKeyExpired", "E": expired["E"], "listenKey": key}


async def test_server_pings_and_the_incoming_message_limit(sim: BinanceHandle) -> None:
    sim.venue.configure(ws_ping_interval_s=0.2, ws_pong_timeout_s=1.0)
    async with sim.session.ws_connect(f"{sim.ws_base}/ws", autoping=False) as ws:
        msg = await ws.receive(timeout=3)
        assert msg.type is aiohttp.WSMsgType.PING
        started = monotonic()  # no pong from us: dropped once the timeout ran out
        while msg.type is aiohttp.WSMsgType.PING:
            msg = await ws.receive(timeout=3)
        assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
        assert monotonic() - started < 2.5
    async with sim.session.ws_connect(f"{sim.ws_base}/ws") as ws:  # autoping answers
        with contextlib.suppress(TimeoutError):  # pings are answered while we read
            async with asyncio.timeout(1.5):
                await ws.receive()
        await ws.send_str('{"method": "LIST_SUBSCRIPTIONS", "id": 1}')
        assert orjson.loads((await ws.receive(timeout=2)).data) == {"result": [], "id": 1}
        ended = False
        try:
            for n in range(25):
                await ws.send_str(f'{{"method": "LIST_SUBSCRIPTIONS", "id": {n}}}')
        except ConnectionError:
            ended = True  # dropped while we were still sending
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(3):
                while not ended:
                    ended = (await ws.receive()).type is not aiohttp.WSMsgType.TEXT
        assert ended and ws.closed


async def test_late_fill_reaches_the_user_stream_late(sim: BinanceHandle) -> None:
    key = (await sim.call("POST", "/fapi/v1/listenKey", signed=False))[2]["listenKey"]
    async with sim.session.ws_connect(f"{sim.ws_base}/ws/{key}") as ws:
        await sim.add_fault("late_fill", delay_s=1.0)
        started = monotonic()
        status, _, filled = await sim.call("POST", "/fapi/v1/order", {
            "symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.010"})
        assert status == 200 and filled["status"] == "FILLED"
        seen: list[tuple[float, dict[str, Any]]] = []
        async with asyncio.timeout(5):
            while not any(e["e"] == "ORDER_TRADE_UPDATE" and e["o"]["x"] == "TRADE"
                          for _, e in seen):
                event = orjson.loads((await ws.receive()).data)
                seen.append((monotonic() - started, event))
    first_trade_s = next(t for t, e in seen if e["e"] == "ORDER_TRADE_UPDATE"
                         and e["o"]["x"] == "TRADE")
    assert seen[0][1]["o"]["x"] == "NEW" and seen[0][0] < 0.5
    assert first_trade_s >= 0.9
