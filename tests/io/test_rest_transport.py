"""The REST transport seam: the in-memory transport's contract, and a session driven through it."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from venueguard.app.feeds import ObservedTransport
from venueguard.core.classify import Outcome, Transport
from venueguard.io import errors
from venueguard.io.clock import ManualClock
from venueguard.io.http_session import RestConfig, RestSession
from venueguard.io.rest_transport import (
    MemoryTransport,
    RawResponse,
    RestRequest,
    TransportFailure,
)
from venueguard.venues.bitmex import signing

URL = "http://127.0.0.1:1/api/v1/order?symbol=XBTUSD"
READ_TIMEOUT = Outcome(transport=Transport.READ_TIMEOUT, sent=True)


def ok(body: bytes = b"[]") -> RawResponse:
    return RawResponse(200, {"content-type": "application/json"}, body, 0.01)


async def test_a_request_reaches_the_handler_as_sent_and_is_recorded() -> None:
    seen: list[RestRequest] = []

    def handler(request: RestRequest) -> RawResponse:
        seen.append(request)
        return ok(b'{"a":1}')

    transport = MemoryTransport(handler)
    raw = await transport.send("POST", URL, {"x-h": "v"}, b'{"q":2}', connect_s=1.5,
                               sock_read_s=2.5)
    assert raw.body == b'{"a":1}'
    assert seen == transport.requests == [
        RestRequest("POST", URL, {"x-h": "v"}, b'{"q":2}', 1.5, 2.5)]
    assert seen[0].target == "/api/v1/order?symbol=XBTUSD"


async def test_a_coroutine_handler_is_awaited() -> None:
    async def handler(request: RestRequest) -> RawResponse:
        await asyncio.sleep(0)
        return ok(request.verb.encode())

    raw = await MemoryTransport(handler).send("DELETE", URL, {}, None, connect_s=1,
                                              sock_read_s=1)
    assert raw.body == b"DELETE"


async def test_a_returned_or_raised_failure_is_raised_and_the_request_still_counts() -> None:
    failure = TransportFailure(READ_TIMEOUT, "scripted")

    def returns(request: RestRequest) -> TransportFailure:
        return failure

    def raises(request: RestRequest) -> RawResponse:
        raise failure

    for handler in (returns, raises):
        transport = MemoryTransport(handler)
        with pytest.raises(TransportFailure) as caught:
            await transport.send("GET", URL, {}, None, connect_s=1, sock_read_s=1)
        assert caught.value.outcome == READ_TIMEOUT
        assert len(transport.requests) == 1


async def test_a_broken_handler_fails_loudly_not_as_a_network_fault() -> None:
    def wrong(request: RestRequest) -> object:
        return {"status": 200}

    with pytest.raises(TypeError, match="RawResponse or TransportFailure"):
        await MemoryTransport(wrong).send(  # type: ignore[arg-type]
            "GET", URL, {}, None, connect_s=1, sock_read_s=1)

    def bug(request: RestRequest) -> RawResponse:
        raise KeyError("typo")

    with pytest.raises(KeyError):
        await MemoryTransport(bug).send("GET", URL, {}, None, connect_s=1, sock_read_s=1)


async def test_the_session_closes_its_transport() -> None:
    transport = MemoryTransport(lambda request: ok())
    async with RestSession(RestConfig(base_url="http://127.0.0.1:1/api/v1"),
                           transport=transport, clock=ManualClock()) as rest:
        assert await rest.get_positions() == []
    assert transport.closes == 1


async def test_a_session_over_memory_signs_and_reads_an_ambiguous_failure() -> None:
    """The seam end to end: signed bytes reach the handler; a read timeout after the send of a
    new order is ambiguous (never resent), and the evidence query goes through the same seam."""
    clock = ManualClock(wall_ms=1_700_000_000_000)

    def venue(request: RestRequest) -> RawResponse | TransportFailure:
        if request.verb == "POST":
            return TransportFailure(READ_TIMEOUT, "read timeout after the send")
        return ok(orjson.dumps([{"clOrdID": "c9", "ordStatus": "New"}]))

    transport = MemoryTransport(venue)
    rest = RestSession(RestConfig(base_url="http://127.0.0.1:1/api/v1",
                                  api_key=signing.TEST_API_KEY,
                                  api_secret=signing.TEST_API_SECRET, throttle=None),
                       transport=transport, clock=clock)
    with pytest.raises(errors.AmbiguousOutcome):
        await rest.place_order("XBTUSD", "Buy", 100, price=1.0, cl_ord_id="c9")
    row = await rest.find_order("c9")
    assert row is not None and row["ordStatus"] == "New"
    assert [r.verb for r in transport.requests] == ["POST", "GET"]
    for sent in transport.requests:
        assert signing.verify(signing.TEST_API_SECRET, sent.verb, sent.target,
                              int(sent.headers["api-expires"]), sent.body or b"",
                              sent.headers["api-signature"])


async def test_the_monitor_observer_wraps_any_transport() -> None:
    seen: list[tuple[str, int | None, float | None]] = []
    calls = iter([ok(), TransportFailure(READ_TIMEOUT, "scripted")])
    inner = MemoryTransport(lambda request: next(calls))
    observed = ObservedTransport(inner, lambda *fact: seen.append(fact), "/api/v1")
    await observed.send("GET", URL, {}, None, connect_s=1, sock_read_s=1)
    with pytest.raises(TransportFailure):
        await observed.send("POST", "http://127.0.0.1:1/api/v1/order", {}, b"{}", connect_s=1,
                            sock_read_s=1)
    await observed.close()
    assert seen == [("GET /order", 200, 0.01), ("POST /order", None, None)]
    assert inner.closes == 1

