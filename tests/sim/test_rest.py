"""REST routes against a running simulator: orders, queries, headers."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from yarl import URL

from venueguard.sim.testing import SimHandle
from venueguard.venues.bitmex import errors

ORDER = {"symbol": "XBTUSD", "side": "Buy", "orderQty": 100, "price": 40000, "ordType": "Limit"}


async def test_order_round_trip(sim: SimHandle) -> None:
    status, headers, row = await sim.request("POST", "/order", {**ORDER, "clOrdID": "rt-1"})
    assert status == 200, row
    assert row["clOrdID"] == "rt-1" and row["ordStatus"] == "New"
    assert headers["x-ratelimit-limit"] == "120"
    assert int(headers["x-ratelimit-remaining"]) < 120
    assert "x-ratelimit-reset" in headers and "x-ratelimit-remaining-1s" in headers
    status, _, rows = await sim.request("GET", "/order", query={"filter": {"open": True}})
    assert status == 200 and [r["orderID"] for r in rows] == [row["orderID"]]
    status, _, amended = await sim.request("PUT", "/order",
                                           {"orderID": row["orderID"], "price": 40100})
    assert status == 200 and amended["price"] == 40100
    status, _, canceled = await sim.request("DELETE", "/order", {"orderID": row["orderID"]})
    assert status == 200 and canceled[0]["ordStatus"] == "Canceled"
    # a second cancel of the closed order: HTTP 200 with a per-row error
    status, _, again = await sim.request("DELETE", "/order", {"orderID": row["orderID"]})
    assert status == 200 and errors.is_cancel_state_error(again[0]["error"])
    truth = await sim.truth()
    assert truth["clOrdID_attempts"] == {"rt-1": 1}
    assert truth["requests"]["POST /api/v1/order"] == 1
    assert truth["requests"]["DELETE /api/v1/order"] == 2


async def test_form_encoded_body_is_accepted_and_signed_as_sent(sim: SimHandle) -> None:
    body = urlencode({"symbol": "XBTUSD", "side": "Sell", "orderQty": "200", "price": "60000",
                      "clOrdID": "form-1"}).encode()
    headers = {"content-type": "application/x-www-form-urlencoded",
               **sim.signed_headers("POST", "/api/v1/order", body)}
    async with sim.session.post(sim.api_url + "/order", data=body, headers=headers) as resp:
        row = await resp.json()
        assert resp.status == 200, row
    assert row["clOrdID"] == "form-1" and row["side"] == "Sell" and row["orderQty"] == 200


async def test_get_order_filters_by_cl_ord_id_string_and_list(sim: SimHandle) -> None:
    for cid in ("f-a", "f-b", "f-c"):
        status, _, _ = await sim.request("POST", "/order", {**ORDER, "clOrdID": cid})
        assert status == 200
    _, _, one = await sim.request("GET", "/order", query={"filter": {"clOrdID": "f-b"}})
    assert [r["clOrdID"] for r in one] == ["f-b"]
    _, _, two = await sim.request("GET", "/order", query={"filter": {"clOrdID": ["f-a", "f-c"]}})
    assert sorted(r["clOrdID"] for r in two) == ["f-a", "f-c"]
    _, _, counted = await sim.request("GET", "/order", query={"count": "2", "reverse": "true"})
    assert len(counted) == 2


async def test_delete_all_and_cancel_all_after(sim: SimHandle) -> None:
    for cid in ("d-1", "d-2"):
        await sim.request("POST", "/order", {**ORDER, "clOrdID": cid})
    status, _, armed = await sim.request("POST", "/order/cancelAllAfter", {"timeout": 60000})
    assert status == 200 and armed["cancelTime"] != 0 and "now" in armed
    status, _, disarmed = await sim.request("POST", "/order/cancelAllAfter", {"timeout": 0})
    assert status == 200 and disarmed["cancelTime"] == 0
    status, _, rows = await sim.request("DELETE", "/order/all", {"symbol": "XBTUSD"})
    assert status == 200 and sorted(r["clOrdID"] for r in rows) == ["d-1", "d-2"]
    assert all(r["ordStatus"] == "Canceled" for r in rows)
    _, _, still_open = await sim.request("GET", "/order", query={"filter": {"open": True}})
    assert still_open == []


async def test_public_market_routes(sim: SimHandle) -> None:
    status, headers, book = await sim.request("GET", "/orderBook/L2",
                                              query={"symbol": "XBTUSD", "depth": "5"},
                                              signed=False)
    assert status == 200 and book
    assert headers["x-ratelimit-limit"] == "30"  # unauthenticated
    assert {r["side"] for r in book} == {"Buy", "Sell"}
    assert all({"symbol", "id", "side", "size", "price"} <= set(r) for r in book)
    _, _, instruments = await sim.request("GET", "/instrument", query={"symbol": "XBTUSD"},
                                          signed=False)
    assert [i["symbol"] for i in instruments] == ["XBTUSD"]
    _, _, active = await sim.request("GET", "/instrument/active", signed=False)
    assert "XBTUSD" in {i["symbol"] for i in active}
    _, _, positions = await sim.request("GET", "/position")
    assert isinstance(positions, list)
    _, _, fills = await sim.request("GET", "/execution/tradeHistory", query={"count": "10"})
    assert isinstance(fills, list)


async def test_signed_public_request_with_query_as_sent(sim: SimHandle) -> None:
    status, _, rows = await sim.request("GET", "/instrument",
                                        query={"filter": {"symbol": "XBTUSD"}})
    assert status == 200 and [r["symbol"] for r in rows] == ["XBTUSD"]


async def test_unknown_route_is_bitmex_404(sim: SimHandle) -> None:
    async with sim.session.get(URL(sim.api_url + "/nope")) as resp:
        body = await resp.json()
        assert resp.status == 404
    assert body == {"error": {"message": "Not Found", "name": "HTTPError"}}


async def test_rate_limit_429_with_retry_after(sim_server) -> None:  # type: ignore[no-untyped-def]
    sim = await sim_server(rest_per_min=3)
    statuses = []
    for _ in range(5):
        status, headers, body = await sim.request("GET", "/position")
        statuses.append(status)
    assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429]
    assert body == {"error": {"message": "Rate limit exceeded, retry in 20 seconds.",
                              "name": "RateLimitError"}}
    assert headers["retry-after"] == "20" and headers["x-ratelimit-remaining"] == "0"


async def test_order_routes_second_layer_limit(sim_server) -> None:  # type: ignore[no-untyped-def]
    sim = await sim_server(order_per_s=2)
    results = [await sim.request("POST", "/order", {**ORDER, "clOrdID": f"s-{i}"})
               for i in range(3)]
    assert [r[0] for r in results] == [200, 200, 429]
    assert results[1][1]["x-ratelimit-remaining-1s"] == "0"
    assert results[2][2]["error"]["name"] == "RateLimitError"


async def test_dead_mans_switch_fires_on_the_server_clock(sim: SimHandle) -> None:
    status, _, row = await sim.request("POST", "/order", {**ORDER, "clOrdID": "dms"})
    assert status == 200
    await sim.request("POST", "/order/cancelAllAfter", {"timeout": 300})
    await asyncio.sleep(0.6)  # nobody refreshes it: the venue cancels on its own
    truth = await sim.truth()
    order = next(o for o in truth["orders"] if o["orderID"] == row["orderID"])
    assert order["ordStatus"] == "Canceled"
