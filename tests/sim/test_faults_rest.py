"""Each REST fault kind, observed from a raw aiohttp client (behaviour, not client policy)."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from venueguard.sim.resolver import SimResolver
from venueguard.sim.testing import SimHandle
from venueguard.venues.bitmex import errors

ORDER = {"symbol": "XBTUSD", "side": "Buy", "orderQty": 100, "price": 30000}


async def test_overload_503_sheds_orders_and_amends_never_cancels(sim: SimHandle) -> None:
    status, _, resting = await sim.request("POST", "/order", {**ORDER, "clOrdID": "keep"})
    assert status == 200
    await sim.add_fault("overload_503", probability=1.0)
    status, _, body = await sim.request("POST", "/order", {**ORDER, "clOrdID": "shed"})
    assert status == 503
    assert body == {"error": {"message": errors.OVERLOADED, "name": "HTTPError"}}
    status, _, _ = await sim.request("PUT", "/order", {"orderID": resting["orderID"],
                                                       "price": 30100})
    assert status == 503
    status, _, rows = await sim.request("DELETE", "/order", {"orderID": resting["orderID"]})
    assert status == 200 and rows[0]["ordStatus"] == "Canceled"
    truth = await sim.truth()
    # the shed request never reached the engine
    assert "shed" not in truth["clOrdID_attempts"]
    assert {o["clOrdID"] for o in truth["orders"]} == {"keep"}


async def test_overload_follows_market_intensity(sim: SimHandle) -> None:
    await sim.add_fault("overload_503", probability=0.1, follow_intensity=True)
    engine = sim.server.engine
    engine.intensity = lambda symbol: 0.0  # type: ignore[method-assign]
    calm = [(await sim.request("POST", "/order", {**ORDER, "clOrdID": f"c{i}"}))[0]
            for i in range(4)]
    engine.intensity = lambda symbol: 20.0  # type: ignore[method-assign]
    burst = [(await sim.request("POST", "/order", {**ORDER, "clOrdID": f"b{i}"}))[0]
             for i in range(4)]
    assert calm == [200] * 4 and burst == [503] * 4


async def test_rate_limit_429_fault(sim: SimHandle) -> None:
    await sim.add_fault("rate_limit_429", retry_after_s=7)
    status, headers, body = await sim.request("GET", "/position")
    assert status == 429 and headers["retry-after"] == "7"
    assert headers["x-ratelimit-remaining"] == "0"
    assert body["error"] == {"message": "Rate limit exceeded, retry in 7 seconds.",
                             "name": "RateLimitError"}


@pytest.mark.parametrize(("kind", "status", "marker"), [
    ("forbidden_403", 403, "403 Forbidden"),
    ("cloudflare_522", 522, "error code: 522"),
    ("cloudflare_1010", 403, "error code: 1010"),
    ("cloudflare_1006", 403, "error code: 1006"),
])
async def test_edge_faults_answer_html(sim: SimHandle, kind: str, status: int,
                                       marker: str) -> None:
    await sim.add_fault(kind)
    got, headers, body = await sim.request("GET", "/instrument", signed=False)
    assert got == status and headers["content-type"].startswith("text/html")
    assert isinstance(body, str) and marker in body
    assert "x-ratelimit-limit" not in headers  # the venue never saw it
    await sim.clear_faults()
    assert (await sim.request("GET", "/instrument", signed=False))[0] == 200


async def test_latency_delays_responses(sim: SimHandle) -> None:
    await sim.add_fault("latency", ms=300, jitter_ms=50)
    start = time.monotonic()
    status, _, _ = await sim.request("GET", "/instrument", signed=False)
    elapsed = time.monotonic() - start
    assert status == 200 and 0.24 <= elapsed < 3.0


async def test_dns_failure_through_the_resolver_seam(sim: SimHandle) -> None:
    resolver = SimResolver(sim.base_url)
    url = f"http://sim.venueguard.test:{sim.server.port}/api/v1/instrument"
    connector = aiohttp.TCPConnector(resolver=resolver, use_dns_cache=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.get(url) as resp:
            assert resp.status == 200
        await sim.add_fault("dns_failure")
        assert [f["kind"] for f in await sim.faults()] == ["dns_failure"]
        with pytest.raises(aiohttp.ClientConnectorDNSError):
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(
                    resolver=resolver, use_dns_cache=False)) as fresh:
                await fresh.get(url)
    await resolver.close()
    _, headers, _ = await sim.request("GET", "/instrument", signed=False)
    assert headers["x-sim-dns-failure"] == "1"


async def test_timeout_after_accept_keeps_the_order(sim: SimHandle) -> None:
    await sim.add_fault("timeout_after_accept")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await sim.request("POST", "/order", {**ORDER, "clOrdID": "lost-ack"})
    truth = await sim.truth()
    assert truth["clOrdID_attempts"] == {"lost-ack": 1}
    assert [o["clOrdID"] for o in truth["orders"]] == ["lost-ack"]


async def test_bad_gateway_after_accept_keeps_the_order(sim: SimHandle) -> None:
    await sim.add_fault("bad_gateway_after_accept")
    status, headers, body = await sim.request("POST", "/order", {**ORDER, "clOrdID": "gw"})
    assert status == 502 and "502 Bad Gateway" in body
    assert headers["content-type"].startswith("text/html")
    truth = await sim.truth()
    assert [o["clOrdID"] for o in truth["orders"]] == ["gw"]


@pytest.mark.parametrize(("kind", "status", "text"), [
    ("invalid_key", 401, "Invalid API Key."),
    ("bad_signature", 401, "Signature not valid."),
    ("expired_request", 400, "This request has expired - `expires` is in the past."),
])
async def test_auth_faults(sim: SimHandle, kind: str, status: int, text: str) -> None:
    await sim.add_fault(kind)
    got, _, body = await sim.request("GET", "/position")
    assert got == status and body["error"]["message"].startswith(text)
    # unsigned public routes are unaffected
    assert (await sim.request("GET", "/instrument", signed=False))[0] == 200


async def test_same_seed_same_fault_decisions(sim_server) -> None:  # type: ignore[no-untyped-def]
    async def run(seed: int) -> list[int]:
        sim: SimHandle = await sim_server(seed=seed, order_per_s=1000, rest_per_min=1000)
        await sim.add_fault("overload_503", probability=0.5)
        return [(await sim.request("POST", "/order", {**ORDER, "clOrdID": f"d{i}"}))[0]
                for i in range(16)]

    first, again, other = await run(11), await run(11), await run(12)
    assert first == again and set(first) == {200, 503}
    assert first != other
