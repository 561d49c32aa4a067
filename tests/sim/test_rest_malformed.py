"""Hostile and malformed requests get BitMEX-style errors, and the server keeps serving."""

from __future__ import annotations

import io
from typing import Any

import pytest

from venueguard.sim.testing import SimHandle

PATH = "/api/v1/order"


async def _post_raw(sim: SimHandle, body: bytes, content_type: str) -> tuple[int, Any]:
    headers = {"content-type": content_type, **sim.signed_headers("POST", PATH, body)}
    async with sim.session.post(sim.base_url + PATH, data=io.BytesIO(body),
                                headers=headers) as resp:
        return resp.status, await resp.json()


@pytest.mark.parametrize(("body", "content_type", "status", "needle"), [
    (b'{"symbol": "XBTUSD", ', "application/json", 400, "Invalid JSON in request body"),
    (b'[1, 2]', "application/json", 400, "expected a JSON object"),
    (b'{"side": "Buy"}', "application/json", 400, "'symbol' is a required arg."),
    (b'\xff\xfe=1', "application/x-www-form-urlencoded", 400, "not UTF-8"),
    (b'{"symbol": "XBTUSD", "orderQty": "lots", "price": 1}', "application/json", 400, ""),
    (b'{"symbol": "XBTUSD", "orderQty": [1], "price": {"a": 1}}', "application/json", 400, ""),
    (b'{"symbol": 12, "orderQty": 100}', "application/json", 400, ""),
])
async def test_bad_bodies(sim: SimHandle, body: bytes, content_type: str, status: int,
                          needle: str) -> None:
    got, answer = await _post_raw(sim, body, content_type)
    assert got == status, answer
    assert set(answer) == {"error"} and set(answer["error"]) == {"message", "name"}
    assert needle in answer["error"]["message"]


async def test_huge_body_is_refused_with_413(sim: SimHandle) -> None:
    body = b'{"symbol": "XBTUSD", "text": "' + b"x" * (1 << 20) + b'"}'
    got, answer = await _post_raw(sim, body, "application/json")
    assert got == 413 and "too large" in answer["error"]["message"]


@pytest.mark.parametrize("query", [
    {"count": "many"}, {"count": "0"}, {"count": "100000"}, {"reverse": "maybe"},
    {"filter": "{not json"}, {"filter": "[1]"}, {"start": "-1"},
])
async def test_bad_query_parameters(sim: SimHandle, query: dict[str, str]) -> None:
    status, _, body = await sim.request("GET", "/order", query=query)
    assert status == 400 and body["error"]["name"] == "HTTPError"
    assert body["error"]["message"].startswith("Invalid ")


async def test_bad_cancel_and_book_requests(sim: SimHandle) -> None:
    status, _, body = await sim.request("DELETE", "/order", {})
    assert status == 400 and "orderID or clOrdID must be sent" in body["error"]["message"]
    status, _, body = await sim.request("DELETE", "/order", {"orderID": ["a", 1]})
    assert status == 400
    status, _, body = await sim.request("DELETE", "/order", {"orderID": "no-such-order"})
    assert status == 200 and body[0]["error"].startswith("Unable to cancel order")
    status, _, body = await sim.request("GET", "/orderBook/L2", signed=False)
    assert status == 400 and body["error"]["message"] == "'symbol' is a required arg."
    status, _, body = await sim.request("POST", "/order/cancelAllAfter", {"timeout": "soon"})
    assert status == 400


async def test_server_still_serves_after_abuse(sim: SimHandle) -> None:
    for body in (b"\x00" * 100, b"{" * 5000, b'{"symbol": null}'):
        await _post_raw(sim, body, "application/json")
    status, _, _ = await sim.request("POST", "/order", {"symbol": "XBTUSD", "orderQty": 100,
                                                        "price": 30000})
    assert status == 200
