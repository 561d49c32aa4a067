"""Malformed requests get Binance-shaped errors (``{"code", "msg"}``, 4xx), never a 500, and the
server keeps serving. Hypothesis drives the REST request handling with hostile parameters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yarl import URL

from venueguard.sim.binance import signing
from venueguard.sim.binance.limits import Limits
from venueguard.sim.binance.testing import BinanceHandle, running_binance_sim

pytestmark = pytest.mark.system

ROUTES = [("POST", "/fapi/v1/order"), ("GET", "/fapi/v1/order"), ("DELETE", "/fapi/v1/order"),
          ("GET", "/fapi/v1/depth"), ("GET", "/fapi/v1/openOrders"),
          ("GET", "/fapi/v1/userTrades"), ("GET", "/fapi/v1/allOrders"),
          ("GET", "/fapi/v3/positionRisk"), ("GET", "/fapi/v1/ticker/bookTicker"),
          ("PUT", "/fapi/v1/listenKey")]
NAMES = ["symbol", "side", "type", "quantity", "price", "timeInForce", "newClientOrderId",
         "orderId", "origClientOrderId", "limit", "reduceOnly", "positionSide", "recvWindow",
         "timestamp", "listenKey", "signature", "startTime", "endTime", "fromId"]
VALUES = st.one_of(
    st.sampled_from(["BTCUSDT", "BUY", "SELL", "LIMIT", "MARKET", "GTC", "GTX", "0.010", "-1",
                     "1e5", "NaN", "Infinity", "50000.0", "0", "true", "", "99999999999999999999"
                     "9999", "BOTH", "LONG", "1000"]),
    st.text(max_size=24))


@pytest.fixture
async def sim() -> AsyncIterator[BinanceHandle]:
    async with running_binance_sim() as handle:
        handle.venue.configure(limits=Limits(weight_per_min=10**9, orders_per_10s=10**9,
                                             orders_per_min=10**9))
        yield handle


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(route=st.sampled_from(ROUTES),
       params=st.dictionaries(st.sampled_from(NAMES), VALUES, max_size=7),
       sign=st.booleans())
async def test_fuzzed_requests_get_binance_errors(sim: BinanceHandle, route: tuple[str, str],
                                                  params: dict[str, str], sign: bool) -> None:
    verb, path = route
    query = "&".join(f"{quote(k)}={quote(v)}" for k, v in params.items() if k != "signature")
    if sign:
        stamp = f"timestamp={int(sim.server.clock.wall_s() * 1000)}"
        query = f"{query}&{stamp}" if query else stamp
        query += "&signature=" + signing.sign(sim.api_secret, query)
    status, _, body = await sim.call(verb, path, raw=query)
    assert status < 500, (status, body)
    if status != 200:
        assert isinstance(body, dict) and set(body) == {"code", "msg"}, body
        assert isinstance(body["code"], int) and body["code"] < 0 and body["msg"]


async def test_raw_oddities(sim: BinanceHandle) -> None:
    cases = [("GET", "/fapi/v1/depth?symbol=BTCUSDT&symbol=ETHUSDT", -1101),
             ("GET", "/fapi/v1/depth?symbol=BTCUSDT&limit=7", -4021),
             ("GET", "/fapi/v1/depth", -1102),
             ("GET", "/fapi/v1/depth?symbol=%FF%FE", -1121),
             ("PATCH", "/fapi/v1/order", -5000), ("GET", "/fapi/v9/nothing", -5000)]
    for verb, path, code in cases:
        async with sim.session.request(verb, URL(sim.base_url + path, encoded=True),
                                       headers={"X-MBX-APIKEY": sim.api_key}) as resp:
            body = await resp.json()
            assert 400 <= resp.status < 500 and body["code"] == code, (path, body)
    async with sim.session.post(sim.base_url + "/fapi/v1/order", data=b"\xff\xfe=1",
                                headers={"X-MBX-APIKEY": sim.api_key}) as resp:
        assert resp.status == 400 and (await resp.json())["code"] == -1100
    status, _, _ = await sim.call("GET", "/fapi/v1/time", signed=False)
    assert status == 200


async def test_malformed_websocket_messages(sim: BinanceHandle) -> None:
    async with sim.session.ws_connect(f"{sim.ws_base}/ws") as ws:
        answers: list[dict[str, Any]] = []
        for text in ["{not json", "[1,2]", '{"method": "SUBSCRIBE", "params": "x", "id": 1}',
                     '{"method": "SUBSCRIBE", "params": ["btcusdt@nothing"], "id": 2}',
                     '{"method": "FLY", "id": 3}', '{"method": "SUBSCRIBE", "id": true}',
                     '{"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 4}',
                     '{"method": "LIST_SUBSCRIPTIONS", "id": 5}']:
            await ws.send_str(text)
            async with asyncio.timeout(3):
                while True:
                    frame = orjson.loads((await ws.receive()).data)
                    if "e" not in frame:
                        answers.append(frame)
                        break
        assert [a.get("error", {}).get("code") for a in answers[:6]] == [3, 2, 2, 2, 2, 2]
        assert answers[6] == {"result": None, "id": 4}
        assert answers[7] == {"result": ["btcusdt@aggTrade"], "id": 5}
    async with aiohttp.ClientSession() as session, session.get(
            f"{sim.base_url}/private/ws?listenKey=nope") as resp:
        assert resp.status == 400 and (await resp.json())["code"] == -1125


WS_TEXT = st.one_of(
    st.text(max_size=60),
    st.builds(lambda m, p, i: orjson.dumps({"method": m, "params": p, "id": i}).decode(),
              st.sampled_from(["SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "subscribe", 7]),
              st.one_of(st.lists(st.text(max_size=20), max_size=3), st.integers(-9, 9),
                        st.none()),
              st.one_of(st.integers(-5, 10**12), st.text(max_size=5), st.none(),
                        st.booleans())))


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(texts=st.lists(WS_TEXT, min_size=1, max_size=4))
async def test_fuzzed_websocket_messages_get_answers(sim: BinanceHandle, texts: list[str]) -> None:
    sim.venue.configure(ws_max_incoming_per_s=10**6)
    async with sim.session.ws_connect(f"{sim.ws_base}/ws") as ws:
        for text in texts:
            await ws.send_str(text)
            async with asyncio.timeout(3):
                while True:  # skip market events; the answer to our message comes in order
                    frame = orjson.loads((await ws.receive()).data)
                    if "e" not in frame:
                        break
            assert set(frame) in ({"result", "id"}, {"error", "id"}), frame
            if "error" in frame:
                assert frame["error"]["code"] in (2, 3) and frame["error"]["msg"]
        await ws.send_str('{"method": "LIST_SUBSCRIPTIONS", "id": 99}')
        async with asyncio.timeout(3):
            while "e" in (frame := orjson.loads((await ws.receive()).data)):
                pass
        assert frame["id"] == 99  # still serving
