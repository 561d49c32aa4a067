"""Requests that once made the simulator answer 500 (or log tracebacks) get the venue's 4xx.

Each case names what it guards: a non-ASCII ``api-signature``, JSON nested past the parser's
recursion limit, ``count``/``start`` of ``inf`` or ``1e999``, integers of more than 308 digits,
requests the HTTP parser cannot read; and the rate limiter's identities.
"""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
import pytest

from venueguard.sim.bitmex.ratelimit import RestRateLimiter
from venueguard.sim.testing import SimHandle
from venueguard.venues.bitmex import signing


async def raw_exchange(sim: SimHandle, data: bytes) -> tuple[int, bytes]:
    """Send bytes as they are to the simulator; the status and body of its answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.server.port)
    try:
        writer.write(data)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(1 << 16), 5.0)
        while b"\r\n\r\n" in answer and not answer.endswith(b"}") and len(answer) < 1 << 16:
            more = await asyncio.wait_for(reader.read(1 << 16), 5.0)
            if not more:
                break
            answer += more
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def venue_error(body: bytes) -> str:
    answer = orjson.loads(body)
    assert set(answer) == {"error"} and set(answer["error"]) == {"message", "name"}
    return str(answer["error"]["message"])


async def test_a_non_ascii_signature_is_an_invalid_signature_not_a_500(sim: SimHandle) -> None:
    expires = int(time.time()) + 30
    request = (f"GET /api/v1/position HTTP/1.1\r\nHost: 127.0.0.1\r\napi-key: {sim.api_key}\r\n"
               f"api-expires: {expires}\r\n").encode() + "api-signature: é€\r\n\r\n".encode()
    status, body = await raw_exchange(sim, request)
    assert status == 401
    assert "Signature not valid" in venue_error(body)
    assert not signing.verify("secret", "GET", "/", 1, b"", "ÿ" * 64)


async def test_deeply_nested_json_is_a_400(sim: SimHandle) -> None:
    nested = "[" * 100_000 + "]" * 100_000
    status, _, answer = await sim.request("GET", "/order", payload={"filter": nested})
    assert status == 400 and answer["error"]["message"] == "Invalid filter"
    body = ('{"symbol": "XBTUSD", "x": ' + nested + "}").encode()
    headers = {"content-type": "application/json", **sim.signed_headers("POST", "/api/v1/order",
                                                                        body)}
    async with sim.session.post(sim.api_url + "/order", data=body, headers=headers) as resp:
        assert resp.status == 400
        assert "Invalid JSON" in venue_error(await resp.read())


@pytest.mark.parametrize("value", ["inf", "-inf", "1e999", "nan", "9" * 400])
@pytest.mark.parametrize("name", ["count", "start"])
async def test_count_and_start_beyond_any_number_are_a_400(sim: SimHandle, name: str,
                                                           value: str) -> None:
    status, _, answer = await sim.request("GET", "/order", query=f"{name}={value}")
    assert status == 400, answer
    assert answer["error"]["message"] == f"Invalid {name}"


async def test_integers_of_more_than_308_digits_are_a_400(sim: SimHandle) -> None:
    huge = "9" * 400
    body = ('{"symbol": "XBTUSD", "orderQty": ' + huge + ', "price": ' + huge + "}").encode()
    headers = {"content-type": "application/json",
               **sim.signed_headers("POST", "/api/v1/order", body)}
    async with sim.session.post(sim.api_url + "/order", data=body, headers=headers) as resp:
        assert resp.status == 400
        venue_error(await resp.read())
    status, _, answer = await sim.request("GET", "/order", query=f"count={huge}")
    assert status == 400 and answer["error"]["message"] == "Invalid count"
    truth = await sim.truth()
    assert not any(s.endswith(" 500") for s in truth["responses"])


@pytest.mark.parametrize("request_bytes", [
    b"GARBAGE\r\n\r\n",
    b"GET /api/v1/instrument HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    b"GET /api/v1/instrument HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
])
async def test_unreadable_requests_get_the_venue_error_shape_and_one_warning(
        sim: SimHandle, request_bytes: bytes, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        status, body = await raw_exchange(sim, request_bytes)
    assert status == 400
    assert venue_error(body).startswith("Bad request")
    parse_lines = [r for r in caplog.records if "unreadable HTTP request" in r.getMessage()]
    assert len(parse_lines) == 1 and parse_lines[0].levelno == logging.WARNING
    assert parse_lines[0].exc_info is None and "\n" not in parse_lines[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    status, _, _ = await sim.request("GET", "/instrument", signed=False)
    assert status == 200  # still serving


async def test_head_is_answered_on_get_routes(sim: SimHandle) -> None:
    async with sim.session.head(sim.api_url + "/instrument") as resp:
        assert resp.status == 200 and await resp.read() == b""
        assert "x-ratelimit-remaining" in resp.headers
    async with sim.session.head(sim.api_url + "/position") as resp:
        assert resp.status == 401  # private, unsigned: as GET would be
    path = "/api/v1/position"
    async with sim.session.head(sim.base_url + path,
                                headers=sim.signed_headers("HEAD", path)) as resp:
        assert resp.status == 200
    async with sim.session.head(sim.control_url + "/truth") as resp:
        assert resp.status == 200


async def test_made_up_keys_share_the_ip_bucket(sim_server: object) -> None:
    sim: SimHandle = await sim_server(rest_unauth_per_min=5, rest_per_min=50)  # type: ignore[operator]
    statuses = []
    for n in range(8):
        status, headers, _ = await sim.request("GET", "/instrument", signed=False,
                                               headers={"api-key": f"made-up-{n}"})
        statuses.append(status)
    assert statuses.count(429) >= 3  # 5 a minute for the IP, whatever key each one names
    status, headers, _ = await sim.request("GET", "/position")  # a verified key: its own bucket
    assert status == 200 and headers["x-ratelimit-limit"] == "50"


def test_the_limiter_never_clears_every_bucket() -> None:
    limiter = RestRateLimiter(per_min=2, unauth_per_min=2, max_identities=3)
    for _ in range(2):
        assert limiter.check("ip:victim", authenticated=False, order_route=False,
                             now_s=0.0, wall_s=0.0).allowed
    for n in range(50):  # a flood of other identities
        limiter.check(f"ip:other-{n}", authenticated=False, order_route=False,
                      now_s=0.001 * n, wall_s=0.0)
        limiter.check("ip:victim", authenticated=False, order_route=False, now_s=0.001 * n,
                      wall_s=0.0)
    assert len(limiter) <= 3
    assert not limiter.check("ip:victim", authenticated=False, order_route=False, now_s=0.06,
                             wall_s=0.0).allowed  # still exhausted: its bucket was kept


async def test_a_client_gone_mid_answer_is_one_warning_not_a_traceback(
        caplog: pytest.LogCaptureFixture) -> None:
    from aiohttp import ClientSession, web

    from venueguard.sim.httpserver import SimRunner

    async def vanishing(_: web.Request) -> web.Response:
        raise ConnectionResetError("Cannot write to closing transport")

    app = web.Application()
    app.router.add_get("/x", vanishing)
    runner = SimRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        with caplog.at_level(logging.DEBUG):
            async with ClientSession() as session, session.get(f"http://127.0.0.1:{port}/x") as r:
                assert r.status == 500
    finally:
        await runner.cleanup()
    gone = [r for r in caplog.records if "went away" in r.getMessage()]
    assert len(gone) == 1 and gone[0].levelno == logging.WARNING and gone[0].exc_info is None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
