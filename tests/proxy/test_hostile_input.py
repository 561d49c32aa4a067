"""Hostile input to the proxy's own routes, to forwarded requests and to bridged websockets: never
a 5xx of the proxy's own, never a crash, and the secrets that travel in headers and query strings
never logged."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import orjson
import pytest

from venueguard.proxy.testing import Proxied, running_proxy
from venueguard.telemetry.events import EventLog

pytestmark = pytest.mark.system

SECRETS = ("KEYSECRET0001", "SIGSECRET0002", "MBXSECRET0003", "QUERYSECRET0004")


async def _raw(base_url: str, data: bytes) -> bytes:
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(4096), 10)
    finally:
        writer.close()


def _status(answer: bytes) -> int:
    line = answer.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) > 1 and line[1].isdigit() else 0


RAW_REQUESTS = [
    b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /api/v1/instrument?%ZZ=%%%&a=\xff HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /fapi/v1/order?signature=" + SECRETS[3].encode() + b"\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /%00%0d%0a HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20_000 + b"\r\n\r\n",
    b"FOO /api/v1/order HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /api/v1/order HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n{\"a\"}",
    b"POST /api/v1/order HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"POST /api/v1/order HTTP/1.1\r\nHost: x\r\nContent-Length: 1100000\r\n\r\n" + b"x" * 1100000,
    b"GET /realtime HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    b"GET /nope HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nConnection: api-key, close\r\napi-key: x\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # a TLS hello
    b"POST /_sim/faults HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n\xff\xfe\x00\x01",
    b"PUT /_sim/faults HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
]

# a key header that is not UTF-8, with --guard naming its account (regression: a 500 and a
# traceback in the log)
NOT_UTF8_KEY = (b"GET /api/v1/order HTTP/1.1\r\nHost: x\r\napi-key: \x80" + SECRETS[0].encode()
                + b"\r\nX-MBX-APIKEY: \xff" + SECRETS[2].encode() + b"\r\n\r\n")
RAW_REQUESTS.append(NOT_UTF8_KEY)

CONTROL_BODIES = [
    b"[" * 100_000, b'{"kind": "latency", "ms": 1e309}', b'{"kind": "ws_gap", "count": 1.5}',
    b'{"kind": "latency", "ms": "200"}', b'{"kind": "ws_stall", "new_connections": 1}',
    b'{"kind": "latency", "duration_s": -1}', b'{"kind": null}', b"null", b'"x"',
    b'{"kind": "rate_limit_429", "retry_after_s": 1e12, "extra": {"a": 1}}',
]


async def test_hostile_requests_never_get_a_proxy_5xx(
        proxied: Proxied, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="venueguard.proxy")
    sim, proxy = await proxied(guard=True)
    for data in RAW_REQUESTS:
        answer = await _raw(proxy.base_url, data)
        status = _status(answer)
        assert status == 0 or status < 500, (data[:60], answer[:200])
    for body in CONTROL_BODIES:
        async with sim.session.post(proxy.base_url + "/_sim/faults", data=body) as resp:
            assert resp.status == 400, body[:40]
            assert "error" in orjson.loads(await resp.read())
    async with sim.session.get(proxy.base_url + "/_sim/faults") as resp:
        assert (await resp.json())["faults"] == []
    # still serving, unharmed
    async with sim.session.get(proxy.base_url + "/api/v1/instrument?symbol=XBTUSD") as resp:
        assert resp.status == 200
    proxy_lines = [r.getMessage() for r in caplog.records
                   if r.name.startswith("venueguard.proxy")]
    assert any("unreadable HTTP request" in line for line in proxy_lines)
    assert not any(SECRETS[3] in line for line in proxy_lines)
    for secret in SECRETS:
        assert secret not in caplog.text


async def test_secrets_in_headers_and_queries_are_never_logged(
        proxied: Proxied, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    events = EventLog(keep=500)
    sim, proxy = await proxied(guard=True, ws_silence_s=0.3, events=events)
    headers = {"api-key": SECRETS[0], "api-signature": SECRETS[1], "api-expires": "1",
               "X-MBX-APIKEY": SECRETS[2]}
    query = f"?symbol=XBTUSD&signature={SECRETS[3]}"
    await proxy.add_fault("forbidden_403", duration_s=0.3)
    for path in ("/api/v1/order", "/api/v1/instrument", "/fapi/v1/order"):
        for verb in ("GET", "POST", "DELETE"):
            async with sim.session.request(verb, proxy.base_url + path + query,
                                           headers=headers, data=b'{"clOrdID": "x"}') as resp:
                assert resp.status < 500
        await asyncio.sleep(0.15)
    ws = await sim.session.ws_connect(proxy.ws_base + "/realtime" + query,
                                      headers={"X-MBX-APIKEY": SECRETS[2]})
    await sim.add_fault("ws_stall")
    async with asyncio.timeout(5):
        async for _ in ws:
            pass
    # an unreachable upstream: the failure is logged and classified, the secrets are not
    async with running_proxy("http://127.0.0.1:1", guard=True, events=events) as dead:
        resp = await sim.session.post(dead.base_url + "/api/v1/order" + query, headers=headers)
        resp.release()
        assert resp.status == 502
    text = caplog.text + "\n".join(orjson.dumps(r).decode() for r in events.recent())
    assert events.recent(event="rest.error") and events.recent(event="ws.stale")
    for secret in SECRETS:
        assert secret not in text


def _client_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0) -> bytes:
    """One websocket frame as a client writes it (masked)."""
    first = (0x80 if fin else 0) | rsv | opcode
    n = len(payload)
    if n < 126:
        head = bytes((first, 0x80 | n))
    elif n < 65536:
        head = bytes((first, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((first, 0x80 | 127)) + n.to_bytes(8, "big")
    key = b"\x01\x02\x03\x04"
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


# (An unmasked client frame is not among them: aiohttp's server reads it as any other frame and
# the proxy passes it on, which harms nothing.)
HOSTILE_FRAMES = [
    _client_frame(0x1, b"\xff\xfe not utf-8"),                 # text that is not UTF-8
    _client_frame(0x1, b"x" * 5000),                           # over the proxy's frame limit
    _client_frame(0x3, b"reserved opcode"),                    # opcode 3 is reserved
    _client_frame(0x1, b"rsv bits", rsv=0x40),                 # no extension was agreed
    _client_frame(0x9, b"p" * 200),                            # a ping over 125 bytes
    _client_frame(0x8, b"\x03"),                               # a close with a 1-byte payload
    _client_frame(0x1, b"part", fin=False) + _client_frame(0x1, b"not a continuation"),
    b"\x81\xff" + b"\x7f" * 8,                                 # a 2^63-byte length
    b"\x00" * 64,                                              # garbage
]


@pytest.mark.parametrize("frame", HOSTILE_FRAMES, ids=range(len(HOSTILE_FRAMES)).__iter__())
async def test_hostile_websocket_frames_close_that_stream_only(
        proxied: Proxied, frame: bytes, caplog: pytest.LogCaptureFixture) -> None:
    """After a valid upgrade, a frame that breaks the protocol or the proxy's size limit ends
    that client's stream (and its upstream connection); the proxy keeps serving the other
    streams and REST, and no secret from the upgrade request reaches the logs."""
    caplog.set_level(logging.DEBUG)
    sim, proxy = await proxied(rate=200.0, guard=True, max_frame_bytes=4096)
    healthy = await sim.session.ws_connect(proxy.ws_base + "/realtime?subscribe=trade:XBTUSD")
    host, port = proxy.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /realtime?subscribe=trade:XBTUSD&signature=" + SECRETS[3].encode()
                 + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                 b"\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 101")
    async with asyncio.timeout(10):
        while len(proxy.server.bridges) < 2:  # noqa: ASYNC110 - polling the proxy's table
            await asyncio.sleep(0.01)
    writer.write(frame)
    await writer.drain()
    async with asyncio.timeout(10):  # the proxy ends the hostile stream: EOF, maybe a close
        while await reader.read(65536):
            pass
    writer.close()
    async with asyncio.timeout(10):
        while len(proxy.server.bridges) > 1:  # noqa: ASYNC110 - polling the proxy's table
            await asyncio.sleep(0.01)
    # the other stream still flows, REST still answers
    for _ in range(5):
        msg = await healthy.receive(timeout=5)
        assert msg.type is aiohttp.WSMsgType.TEXT
    await healthy.close()
    async with sim.session.get(proxy.base_url + "/api/v1/instrument?symbol=XBTUSD") as resp:
        assert resp.status == 200
    async with asyncio.timeout(10):  # and its upstream connection was closed too
        while (await sim.truth())["ws"]["open"] > 1:  # noqa: ASYNC110 - polling the venue
            await asyncio.sleep(0.05)
    for secret in SECRETS:
        assert secret not in caplog.text
