"""The Binance dialect's REST: signing (the docs' vectors), documented errors, limits."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from venueguard.sim.binance import signing
from venueguard.sim.binance.limits import Limits
from venueguard.sim.binance.testing import BinanceHandle, running_binance_sim
from venueguard.sim.clock import SimClock

pytestmark = pytest.mark.system

DOC_SECRET = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
DOC_PAYLOAD = ("symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC"
               "&recvWindow=5000&timestamp=1591702613943")


def test_signature_vectors_from_the_docs() -> None:
    # examples 1 and 2 (query string / request body) sign the same payload
    assert signing.sign(DOC_SECRET, DOC_PAYLOAD) == (
        "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9")
    # example 3: query and body concatenated without '&' (the docs' payload, space included)
    mixed = ("symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTCquantity=1&price=9000"
             "&recvWindow=5000&timestamp= 1591702613943")
    assert signing.sign(DOC_SECRET, mixed) == (
        "f9d0ae5e813ef6ccf15c2b5a434047a0181cb5a342b903b367ca6d27a66e36f2")
    payload, sig = signing.split_signature(DOC_PAYLOAD + "&signature=abc")
    assert payload == DOC_PAYLOAD and sig == "abc"


@pytest.fixture
async def sim() -> AsyncIterator[BinanceHandle]:
    async with running_binance_sim() as handle:
        yield handle


def _order(**extra: Any) -> dict[str, Any]:
    return {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
            "quantity": "0.010", "price": "45000.0", **extra}


async def test_query_and_body_split_signature_is_accepted(sim: BinanceHandle) -> None:
    query = "symbol=BTCUSDT&side=BUY&type=LIMIT&timeInForce=GTC"
    body = f"quantity=0.010&price=45000.0&timestamp={int(time.time() * 1000)}"
    sig = signing.sign(sim.api_secret, query + body)
    async with sim.session.post(f"{sim.base_url}/fapi/v1/order?{query}",
                                data=f"{body}&signature={sig}",
                                headers={"X-MBX-APIKEY": sim.api_key, "Content-Type":
                                         "application/x-www-form-urlencoded"}) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["status"] == "NEW"


@pytest.mark.parametrize(("kwargs", "status", "code", "msg"), [
    ({"key": ""}, 401, -2014, "API-key format invalid."),
    ({"key": "x" * 64}, 401, -2015, "Invalid API-key, IP, or permissions for action."),
    ({"raw": "symbol=BTCUSDT&timestamp=1&signature=00"}, 400, -1022,
     "Signature for this request is not valid."),
    ({"timestamp_ms": 1_000_000}, 400, -1021,
     "Timestamp for this request is outside of the recvWindow."),
    ({"timestamp_ms": int(time.time() * 1000) + 3_600_000}, 400, -1021,
     "Timestamp for this request was 1000ms ahead of the server's time."),
])
async def test_authentication_errors(sim: BinanceHandle, kwargs: dict[str, Any], status: int,
                                     code: int, msg: str) -> None:
    got, _, body = await sim.call("GET", "/fapi/v1/openOrders", {"symbol": "BTCUSDT"},
                                  **kwargs)
    assert (got, body) == (status, {"code": code, "msg": msg})


@pytest.mark.parametrize(("params", "code", "msg"), [
    (_order(quantity="0.001"), -4164,
     "Order's notional must be no smaller than 100 (unless you choose reduce only)."),
    (_order(quantity="0.0105"), -1111, "Precision is over the maximum defined for this asset."),
    (_order(quantity="0"), -4003, "Quantity less than or equal to zero."),
    (_order(price="45000.05"), -4014, "Price not increased by tick size."),
    (_order(quantity="900"), -2019, "Margin is insufficient."),
    (_order(newClientOrderId="bad id!"), -4015, "Client order id is not valid."),
    (_order(side="UP"), -1117, "Invalid side."),
    (_order(type="ICEBERG"), -1116, "Invalid orderType."),
    (_order(symbol="NOPEUSDT"), -1121, "Invalid symbol."),
    (_order(reduceOnly="true"), -2022, "ReduceOnly Order is rejected."),
])
async def test_order_rejections(sim: BinanceHandle, params: dict[str, Any], code: int,
                                msg: str) -> None:
    status, _, body = await sim.call("POST", "/fapi/v1/order", params)
    assert (status, body) == (400, {"code": code, "msg": msg})
    assert (await sim.truth())["orders"] == []


async def test_duplicate_client_order_id_and_unknown_orders(sim: BinanceHandle) -> None:
    status, headers, body = await sim.call("POST", "/fapi/v1/order",
                                           _order(newClientOrderId="dup-1"))
    assert status == 200 and body["clientOrderId"] == "dup-1"
    assert headers["x-mbx-order-count-10s"] == "1" and headers["x-mbx-order-count-1m"] == "1"
    status, _, again = await sim.call("POST", "/fapi/v1/order", _order(newClientOrderId="dup-1"))
    assert (status, again) == (400, {"code": -4116, "msg": "clientOrderId is duplicated"})
    assert len((await sim.truth())["orders"]) == 1
    status, _, gone = await sim.call("GET", "/fapi/v1/order", {"symbol": "BTCUSDT",
                                                               "orderId": 77})
    assert (status, gone) == (400, {"code": -2013, "msg": "Order does not exist."})
    status, _, gone = await sim.call("DELETE", "/fapi/v1/order", {"symbol": "BTCUSDT",
                                                                  "origClientOrderId": "zz"})
    assert (status, gone) == (400, {"code": -2011, "msg": "Unknown order sent."})
    status, _, done = await sim.call("DELETE", "/fapi/v1/order", {
        "symbol": "BTCUSDT", "origClientOrderId": "dup-1"})
    assert status == 200 and done["status"] == "CANCELED"
    status, _, twice = await sim.call("DELETE", "/fapi/v1/order", {"symbol": "BTCUSDT",
                                                                   "orderId": body["orderId"]})
    assert twice["code"] == -2011


async def test_weight_429_then_418_ban_with_retry_after() -> None:
    wall = [1_800_000_000.0]
    clock = SimClock(wall=lambda: wall[0])
    async with running_binance_sim(clock=clock) as sim:
        sim.venue.configure(limits=Limits(weight_per_min=3, ban_after=1, ban_s=120.0))
        for used in (1, 2, 3):
            status, headers, _ = await sim.call("GET", "/fapi/v1/time", signed=False)
            assert status == 200 and headers["x-mbx-used-weight-1m"] == str(used)
        status, headers, body = await sim.call("GET", "/fapi/v1/time", signed=False)
        assert status == 429 and body["code"] == -1003 and headers["retry-after"] == "60"
        assert body["msg"].startswith("Too many requests; current limit is 3 requests per minute")
        status, _, _ = await sim.call("GET", "/fapi/v1/time", signed=False)
        assert status == 429  # the first request ignoring Retry-After is tolerated
        status, headers, body = await sim.call("GET", "/fapi/v1/time", signed=False)
        until_ms = int((wall[0] + 120) * 1000)
        assert status == 418 and body["code"] == -1003 and headers["retry-after"] == "120"
        assert body["msg"].startswith(f"Way too many requests; IP banned until {until_ms}.")
        wall[0] += 100  # a new minute, still banned
        assert (await sim.call("GET", "/fapi/v1/time", signed=False))[0] == 418
        wall[0] += 21
        status, headers, _ = await sim.call("GET", "/fapi/v1/time", signed=False)
        assert status == 200 and headers["x-mbx-used-weight-1m"] == "1"


async def test_order_count_limit() -> None:
    wall = [1_800_000_000.0]
    async with running_binance_sim(clock=SimClock(wall=lambda: wall[0])) as sim:
        sim.venue.configure(limits=Limits(orders_per_10s=2))
        for n in (1, 2):
            status, headers, _ = await sim.call("POST", "/fapi/v1/order", _order(),
                                                timestamp_ms=int(wall[0] * 1000))
            assert status == 200 and headers["x-mbx-order-count-10s"] == str(n)
        status, headers, body = await sim.call("POST", "/fapi/v1/order", _order(),
                                               timestamp_ms=int(wall[0] * 1000))
        assert status == 429 and body == {
            "code": -1015, "msg": "Too many new orders; current limit is 2 orders per 10 SECOND."}
        assert headers["x-mbx-order-count-10s"] == "3" and "retry-after" in headers
        assert len((await sim.truth())["orders"]) == 2


async def test_modify_order(sim: BinanceHandle) -> None:
    _, _, placed = await sim.call("POST", "/fapi/v1/order", _order(newClientOrderId="mod-1"))
    ident = {"symbol": "BTCUSDT", "orderId": placed["orderId"]}
    status, _, body = await sim.call("PUT", "/fapi/v1/order", {
        **ident, "side": "BUY", "quantity": "0.020", "price": "44999.0"})
    assert status == 200 and (body["origQty"], body["price"]) == ("0.020", "44999.0")
    same = {**ident, "side": "BUY", "quantity": "0.020", "price": "44999.0"}
    assert (await sim.call("PUT", "/fapi/v1/order", same))[2] == {
        "code": -5027, "msg": "No need to modify the order."}
    assert (await sim.call("PUT", "/fapi/v1/order", {**same, "side": "SELL"}))[2]["code"] == -1117
    status, _, body = await sim.call("GET", "/fapi/v1/openOrder", ident)
    assert status == 200 and body["price"] == "44999.0"
    await sim.call("DELETE", "/fapi/v1/order", ident)
    assert (await sim.call("PUT", "/fapi/v1/order", same))[2]["code"] == -2013
    assert (await sim.call("GET", "/fapi/v1/openOrder", ident))[2]["code"] == -2013
