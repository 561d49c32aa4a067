"""Fuzz: requests to the simulator over a real socket (loopback), written byte by byte.

Whatever the method, path, query, headers (signed or not, any bytes) and body, the simulator
answers below 500, in BitMEX's error shape when it refuses, logs no error, and keeps serving.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator

import orjson
import pytest
from fuzzcfg import FUZZ
from hypothesis import given
from hypothesis import strategies as st

from venueguard.sim.testing import SimHandle, running_sim
from venueguard.venues.bitmex import signing

ROUTES = ["/api/v1/order", "/api/v1/order/all", "/api/v1/order/cancelAllAfter",
          "/api/v1/position", "/api/v1/execution/tradeHistory", "/api/v1/orderBook/L2",
          "/api/v1/instrument", "/api/v1/instrument/active", "/api/v1/wallet/assets",
          "/api/v1/nope", "/api/v1", "/_sim/truth", "/_sim/faults?x=1"]
NASTY = st.sampled_from(["inf", "-inf", "1e999", "nan", "9" * 400, "-1", "0", "1.5", "",
                         "[" * 3000 + "]" * 3000, '{"a":' * 50 + "1" + "}" * 50, "true",
                         "XBTUSD", '["a","b"]', '{"open":true}', "%ff%fe", "é€", "\x00"])
KEYS = st.sampled_from(["symbol", "count", "start", "depth", "filter", "reverse", "columns",
                        "orderID", "clOrdID", "orderQty", "price", "side", "timeout", "ordType",
                        "execInst", "text", "leavesQty", "stopPx"])
VALUE = st.one_of(NASTY, st.text(max_size=20), st.integers(-10**30, 10**30).map(str))
JSON_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-10**400, 10**400),
                       st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
                       st.lists(st.integers(), max_size=3))


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, dict[str, bytes], bytes]:
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"]))
    path = draw(st.sampled_from(ROUTES))
    pairs = draw(st.lists(st.tuples(KEYS, VALUE), max_size=4))
    if pairs and "?" not in path:
        path += "?" + "&".join(f"{k}={v}" for k, v in pairs).replace(" ", "%20")
    form = draw(st.sampled_from(["none", "json", "junk", "form"]))
    if form == "json":
        # the standard encoder: it writes integers of any size, as a hostile client may
        body = json.dumps(draw(st.dictionaries(KEYS, JSON_VALUE, max_size=5))).encode()
    elif form == "junk":
        body = draw(st.one_of(st.binary(max_size=200), NASTY.map(str.encode)))
    elif form == "form":
        body = "&".join(f"{k}={v}" for k, v in draw(st.lists(st.tuples(KEYS, VALUE),
                                                             max_size=4))).encode()
    else:
        body = b""
    headers: dict[str, bytes] = {}
    auth = draw(st.sampled_from(["none", "valid", "garbage"]))
    if auth == "valid":
        expires = int(time.time()) + 60
        target = path.encode("utf-8", "surrogateescape").decode("latin-1")
        for name, value in signing.auth_headers(signing.TEST_API_KEY, signing.TEST_API_SECRET,
                                                method, target, expires, body).items():
            headers[name] = value.encode()
    elif auth == "garbage":
        headers["api-key"] = draw(st.binary(min_size=1, max_size=30).filter(
            lambda b: b"\r" not in b and b"\n" not in b))
        headers["api-signature"] = draw(st.sampled_from([b"\xc3\xa9\xe2\x82\xac", b"00", b"",
                                                         b"z" * 64, b"\xff" * 3]))
        headers["api-expires"] = draw(st.sampled_from([b"1e999", b"9" * 400, b"-5", b"x"]))
    if body and draw(st.booleans()):
        headers["content-type"] = b"application/json"
    return method, path, headers, body


async def exchange(port: int, method: str, path: str, headers: dict[str, bytes],
                   body: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n".encode()
    for name, value in headers.items():
        head += name.encode() + b": " + value + b"\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n".encode()
    try:
        writer.write(head + body)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10.0)
    finally:
        writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), payload


async def raw_exchange(port: int, data: bytes) -> bytes:
    """Write ``data`` (then an empty line and EOF) to a fresh connection; the whole answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data + b"\r\n\r\n")
        await writer.drain()
        writer.write_eof()
        return await asyncio.wait_for(reader.read(), 10.0)
    finally:
        writer.close()


@pytest.fixture
async def fuzz_sim() -> AsyncIterator[SimHandle]:
    async with running_sim(scenario="calm", rest_per_min=10**6, rest_unauth_per_min=10**6,
                           order_per_s=10**6) as sim:
        yield sim


@FUZZ
@given(requests())
async def test_any_request_is_answered_below_500_in_the_venue_shape(
        fuzz_sim: SimHandle, caplog: pytest.LogCaptureFixture,
        request: tuple[str, str, dict[str, bytes], bytes]) -> None:
    method, path, headers, body = request
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        status, payload = await exchange(fuzz_sim.server.port, method, path, headers, body)
    assert status < 500, (status, payload[:300])
    if status >= 400 and method != "HEAD" and path.startswith("/api/v1"):
        answer = orjson.loads(payload)
        assert isinstance(answer, dict) and set(answer) == {"error"}, payload[:300]
        assert isinstance(answer["error"]["message"], str)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    status, _ = await exchange(fuzz_sim.server.port, "GET", "/api/v1/instrument", {}, b"")
    assert status == 200


@FUZZ
@given(st.binary(min_size=1, max_size=300))
async def test_any_bytes_on_the_socket_never_give_a_500(fuzz_sim: SimHandle,
                                                        data: bytes) -> None:
    answer = await raw_exchange(fuzz_sim.server.port, data)
    if answer:
        assert not answer.startswith(b"HTTP/1.1 5"), answer[:200]
