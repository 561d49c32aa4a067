"""Every fault kind the proxy offers has the same effect posted to the proxy as posted to the
simulator: each check runs twice, once against the simulator with the fault posted to it, once
through a proxy in front of a healthy simulator with the fault posted to the proxy.

REST answers are compared as the client gets them (status, content type, body, Retry-After) and by
what reached the venue (the simulator's ground truth); streams are observed from a raw client.
Simulator, proxy and client share one virtual-time loop (docs/virtual-time.md).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
import pytest
from yarl import URL

from venueguard.io.clock import monotonic, wall_s
from venueguard.proxy.testing import Proxied
from venueguard.sim.binance import signing as binance_signing
from venueguard.sim.testing import SimHandle
from venueguard.venues.bitmex import timefmt

pytestmark = [pytest.mark.system, pytest.mark.virtual_time]


@dataclass(frozen=True, slots=True)
class Target:
    """Where the client connects and where the fault is posted."""

    name: str
    base_url: str
    add_fault: Callable[..., Awaitable[str]]

    @property
    def ws_base(self) -> str:
        return self.base_url.replace("http://", "ws://", 1)


async def _targets(proxied: Proxied, dialect: str, rate: float = 50.0,
                   **sim_overrides: Any) -> tuple[SimHandle, SimHandle, list[Target]]:
    """A faulted simulator, and a proxy in front of a second (healthy) simulator."""
    direct, _ = await proxied(dialect=dialect, rate=rate, sim_overrides=sim_overrides)
    upstream, proxy = await proxied(dialect=dialect, rate=rate, sim_overrides=sim_overrides)
    return direct, upstream, [Target("sim", direct.base_url, direct.add_fault),
                              Target("proxy", proxy.base_url, proxy.add_fault)]


# -- REST ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Seen:
    status: int | str
    content_type: str
    body: Any
    retry_after: str | None
    reached_venue: int


async def _bitmex_order(sim: SimHandle, target: Target, cid: str) -> Seen:
    body = orjson.dumps({"symbol": "XBTUSD", "side": "Buy", "orderQty": 100, "price": 1000.0,
                         "clOrdID": cid})
    headers = {"content-type": "application/json",
               **sim.signed_headers("POST", "/api/v1/order", body)}
    return await _send(sim, "POST", URL(target.base_url + "/api/v1/order"), body, headers, cid)


async def _binance_order(sim: SimHandle, target: Target, cid: str) -> Seen:
    query = urlencode({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                       "quantity": "0.010", "price": "45000.0", "newClientOrderId": cid,
                       "timestamp": int(wall_s() * 1000)})
    query += "&signature=" + binance_signing.sign(sim.api_secret, query)
    headers = {"X-MBX-APIKEY": sim.api_key,
               "Content-Type": "application/x-www-form-urlencoded"}
    return await _send(sim, "POST", URL(target.base_url + "/fapi/v1/order"), query.encode(),
                       headers, cid)


async def _send(sim: SimHandle, verb: str, url: URL, body: bytes, headers: dict[str, str],
                cid: str) -> Seen:
    try:
        async with sim.session.request(verb, url, data=body, headers=headers,
                                       timeout=aiohttp.ClientTimeout(total=5)) as resp:
            raw = await resp.read()
            status: int | str = resp.status
            ctype = resp.content_type
            retry = resp.headers.get("Retry-After")
    except (aiohttp.ClientError, TimeoutError) as exc:
        status, ctype, raw, retry = type(exc).__name__, "", b"", None
    try:
        decoded: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        decoded = raw.decode("utf-8", "replace")
    if isinstance(decoded, dict) and "timestamp" in decoded and "path" in decoded:
        decoded = {**decoded, "timestamp": "<time>"}  # Binance's 503 carries the time
    if isinstance(decoded, dict) and "orderId" in decoded:
        decoded = "<order row>"
    if isinstance(decoded, dict) and "orderID" in decoded:
        decoded = "<order row>"
    attempts = (await sim.truth())["clOrdID_attempts"].get(cid, 0)
    return Seen(status, ctype, decoded, retry, attempts)


REST_CASES = [
    ("overload_503", {}),
    ("rate_limit_429", {"retry_after_s": 7}),
    ("forbidden_403", {}),
    ("cloudflare_522", {}),
    ("cloudflare_1010", {}),
    ("cloudflare_1006", {}),
    ("timeout_after_accept", {"hold_s": 0.3}),
    ("bad_gateway_after_accept", {}),
]


@pytest.mark.parametrize("dialect", ["bitmex", "binance-usdm"])
@pytest.mark.parametrize(("kind", "params"), REST_CASES, ids=[c[0] for c in REST_CASES])
async def test_rest_fault_same_answer(proxied: Proxied, dialect: str, kind: str,
                                      params: dict[str, Any]) -> None:
    direct, upstream, targets = await _targets(proxied, dialect)
    order = _bitmex_order if dialect == "bitmex" else _binance_order
    seen = []
    for target, sim in zip(targets, (direct, upstream), strict=True):
        await target.add_fault(kind, duration_s=30, **params)
        seen.append(await order(sim, target, f"{kind[:20]}-{target.name}"))
    on_sim, on_proxy = seen
    if kind == "overload_503" and dialect == "binance-usdm":
        # "execution status unknown": each reaches the venue or not on its own seeded coin
        on_sim, on_proxy = (s.__class__(s.status, s.content_type, s.body, s.retry_after, 0)
                            for s in seen)
        assert all(s.reached_venue in (0, 1) for s in seen)
    assert on_sim == on_proxy, f"{kind}: simulator {on_sim} != proxy {on_proxy}"
    assert on_sim.status != 200


@pytest.mark.parametrize("dialect", ["bitmex", "binance-usdm"])
async def test_latency_same_delay(proxied: Proxied, dialect: str) -> None:
    direct, upstream, targets = await _targets(proxied, dialect)
    order = _bitmex_order if dialect == "bitmex" else _binance_order
    for target, sim in zip(targets, (direct, upstream), strict=True):
        await target.add_fault("latency", ms=300, duration_s=30)
        start = monotonic()
        seen = await order(sim, target, f"latency-{target.name}")
        assert monotonic() - start >= 0.3
        assert seen.status == 200 and seen.reached_venue == 1


async def test_overload_spares_cancels_and_reads(proxied: Proxied) -> None:
    _, upstream, targets = await _targets(proxied, "bitmex")
    proxy = targets[1]
    await proxy.add_fault("overload_503", duration_s=30)
    path = "/api/v1/order?clOrdID=none"
    async with upstream.session.delete(URL(proxy.base_url + path, encoded=True),
                                       headers=upstream.signed_headers("DELETE", path)) as resp:
        assert resp.status != 503
    async with upstream.session.get(proxy.base_url + "/api/v1/instrument") as resp:
        assert resp.status == 200


# -- streams: BitMEX --------------------------------------------------------------------------

RATE = 3000.0


async def _open(session: aiohttp.ClientSession, target: Target,
                close_timeout_s: float = 10.0) -> aiohttp.ClientWebSocketResponse:
    ws = await session.ws_connect(f"{target.ws_base}/realtime?subscribe=trade:XBTUSD",
                                  autoping=False,
                                  timeout=aiohttp.ClientWSTimeout(ws_close=close_timeout_s))
    for _ in range(3):  # welcome, ack, partial
        await ws.receive(timeout=5)
    return ws


async def _collect(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> list[Any]:
    out: list[Any] = []
    deadline = monotonic() + seconds
    while (left := deadline - monotonic()) > 0:
        try:
            msg = await ws.receive(timeout=left)
        except TimeoutError:
            break
        if msg.type is aiohttp.WSMsgType.PONG:
            out.append("PONG")
            continue
        if msg.type is not aiohttp.WSMsgType.TEXT:
            out.append(msg.type)
            break
        out.append("pong" if msg.data == "pong" else orjson.loads(msg.data))
    return out


def _seqs(messages: list[Any]) -> list[int]:
    return [int(row["trdMatchID"][-12:], 16) for m in messages
            if isinstance(m, dict) and m.get("table") == "trade" for row in m["data"]]


async def _trades(ws: aiohttp.ClientWebSocketResponse, rows: int) -> list[int]:
    seqs: list[int] = []
    deadline = monotonic() + 10.0
    while len(seqs) < rows and monotonic() < deadline:
        seqs += _seqs(await _collect(ws, 0.1))
    assert len(seqs) >= rows, "the market produced too few trades"
    return seqs


async def _check_stall(session: aiohttp.ClientSession, target: Target) -> None:
    ws = await _open(session, target)
    await _trades(ws, 1)
    await target.add_fault("ws_stall")
    await _collect(ws, 0.1)
    assert _seqs(await _collect(ws, 0.4)) == []
    await ws.send_str("ping")
    assert await _collect(ws, 0.5) == ["pong"]
    await ws.ping(b"x")
    assert await _collect(ws, 0.5) == ["PONG"]
    fresh = await _open(session, target)  # new connections are healthy
    await _trades(fresh, 1)
    await ws.close()
    await fresh.close()


async def _check_half_open(session: aiohttp.ClientSession, target: Target) -> None:
    ws = await _open(session, target, close_timeout_s=0.2)
    await target.add_fault("ws_half_open")
    await _collect(ws, 0.1)
    await ws.send_str("ping")
    await ws.ping(b"x")
    assert await _collect(ws, 0.5) == []
    assert not ws.closed
    await ws.close()


async def _check_drop(session: aiohttp.ClientSession, target: Target) -> None:
    ws = await _open(session, target)
    await target.add_fault("ws_drop")
    got = await _collect(ws, 2.0)
    assert got and got[-1] in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    assert aiohttp.WSMsgType.CLOSE not in got


async def _check_reorder(session: aiohttp.ClientSession, target: Target) -> None:
    ws = await _open(session, target)
    await target.add_fault("ws_reorder", probability=1.0)
    seqs = await _trades(ws, 30)
    assert any(b < a for a, b in itertools.pairwise(seqs))
    assert len(set(seqs)) == len(seqs)
    await ws.close()


async def _check_duplicate(session: aiohttp.ClientSession, target: Target) -> None:
    ws = await _open(session, target)
    await target.add_fault("ws_duplicate", probability=1.0)
    seqs = await _trades(ws, 20)
    assert len(seqs) > len(set(seqs))
    await ws.close()


async def _check_gap(session: aiohttp.ClientSession, target: Target) -> None:
    ws = await _open(session, target)
    healthy = await _trades(ws, 10)
    assert healthy == list(range(healthy[0], healthy[0] + len(healthy)))
    await target.add_fault("ws_gap", count=3)
    seqs = healthy + await _trades(ws, 20)
    assert set(range(seqs[0], seqs[-1] + 1)) - set(seqs)
    await ws.close()


async def _check_timestamps(session: aiohttp.ClientSession, target: Target) -> None:
    stale = await _open(session, target)
    await target.add_fault("ws_stale_timestamps", delay_s=30)
    future = await _open(session, target)
    await target.add_fault("ws_future_timestamps", ahead_s=60)

    async def ages(ws: aiohttp.ClientWebSocketResponse) -> list[float]:
        out: list[float] = []
        deadline = monotonic() + 10.0
        while len(out) < 8 and monotonic() < deadline:
            for m in await _collect(ws, 0.1):
                if isinstance(m, dict) and m.get("table") == "trade":
                    now_ms = wall_s() * 1000
                    out += [now_ms - timefmt.parse_ms(r["timestamp"]) for r in m["data"]]
        return out[-4:]

    stale_ages = await ages(stale)
    future_ages = await ages(future)
    assert stale_ages and all(-32_000 < a < -28_000 for a in stale_ages)
    assert future_ages and all(-62_000 < a < -58_000 for a in future_ages)
    await stale.close()
    await future.close()


BITMEX_WS = {"ws_stall": _check_stall, "ws_half_open": _check_half_open, "ws_drop": _check_drop,
             "ws_reorder": _check_reorder, "ws_duplicate": _check_duplicate,
             "ws_gap": _check_gap, "ws_stale_timestamps": _check_timestamps}


@pytest.mark.parametrize("kind", sorted(BITMEX_WS))
async def test_bitmex_stream_fault_same_effect(proxied: Proxied, kind: str) -> None:
    direct, _, targets = await _targets(proxied, "bitmex", rate=RATE)
    for target in targets:
        await BITMEX_WS[kind](direct.session, target)


# -- streams: Binance ---------------------------------------------------------------------------

async def _events(ws: aiohttp.ClientWebSocketResponse, n: int) -> list[dict[str, Any]]:
    out = []
    async with asyncio.timeout(5.0):
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


async def _silent_after_in_flight(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> bool:
    """True once the stream stays silent for ``seconds``, after at most 200 data frames that were
    in flight before the fault hit; False on anything but data (a pong, a close) or no silence."""
    for _ in range(200):
        try:
            async with asyncio.timeout(seconds):
                msg = await ws.receive()
        except TimeoutError:
            return True
        if msg.type is not aiohttp.WSMsgType.TEXT:
            return False
    return False


async def _binance_checks(session: aiohttp.ClientSession, target: Target) -> None:
    url = f"{target.ws_base}/stream?streams=btcusdt@depth@100ms"
    async with session.ws_connect(url) as ws:
        first = await _events(ws, 3)
        assert all(b["pu"] == a["u"] for a, b in itertools.pairwise(first))
        await target.add_fault("ws_gap", count=2)
        after = await _events(ws, 3)
        chain = [first[-1]["u"]] + [e["u"] for e in after]
        assert len([e for prev, e in zip(chain, after, strict=False) if e["pu"] != prev]) == 1
    async with session.ws_connect(url, autoping=False) as ws:
        await _events(ws, 1)
        await target.add_fault("ws_stall")
        await ws.ping(b"s")
        msg = await ws.receive(timeout=2)
        while msg.type is aiohttp.WSMsgType.TEXT:  # in flight before the hit
            msg = await ws.receive(timeout=2)
        assert msg.type is aiohttp.WSMsgType.PONG
        assert await _quiet(ws, 0.4)
    async with session.ws_connect(url, autoping=False) as ws:
        await _events(ws, 1)
        await target.add_fault("ws_half_open")
        await ws.ping(b"h")
        assert await _silent_after_in_flight(ws, 0.4)
    async with session.ws_connect(url) as ws:
        await _events(ws, 1)
        await target.add_fault("ws_drop")
        msg = await ws.receive(timeout=2)
        while msg.type is aiohttp.WSMsgType.TEXT:
            msg = await ws.receive(timeout=2)
        assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    async with session.ws_connect(url) as ws:
        await _events(ws, 1)
        await target.add_fault("ws_duplicate", probability=1.0)
        events = await _events(ws, 6)
        assert any(a == b for a, b in itertools.pairwise(events))
    async with session.ws_connect(url) as ws:
        await _events(ws, 1)
        await target.add_fault("ws_reorder", probability=1.0)
        events = await _events(ws, 6)
        assert any(b["u"] < a["u"] for a, b in itertools.pairwise(events))
    async with session.ws_connect(url) as ws:
        await _events(ws, 1)
        await target.add_fault("ws_stale_timestamps", delay_s=30)
        assert (await _events(ws, 3))[-1]["E"] < wall_s() * 1000 - 25_000
    async with session.ws_connect(url) as ws:
        await _events(ws, 1)
        await target.add_fault("ws_future_timestamps", ahead_s=30)
        assert (await _events(ws, 3))[-1]["E"] > wall_s() * 1000 + 25_000


async def test_binance_stream_faults_same_effect(proxied: Proxied) -> None:
    direct, _, targets = await _targets(proxied, "binance-usdm", rate=300.0)
    for target in targets:
        await _binance_checks(direct.session, target)
