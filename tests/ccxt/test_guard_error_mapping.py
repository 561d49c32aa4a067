"""Real error answers of five venues, served over a local socket to ccxt's real classes.

Each case of ``error_bodies.json`` (every one citing its source) is answered to a create-order
call of ccxt 4.5.78's own exchange class; the guarded pipeline must find the right kind and
action from the status and the venue's own code and message, must not resend the order, and
must turn an outcome the venue calls unknown into ``OrderUnknown``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import ccxt
import ccxt.async_support as ccxt_async
import pytest

from venueguard.ccxt.errors import OrderUnknown
from venueguard.ccxt.rest import CcxtRest
from venueguard.core.classify import Classification
from venueguard.io.http_session import RestConfig
from venueguard.telemetry.events import EventLog
from venueguard.venues.ccxt.classify import venue_facts

from ccxt_testkit import FakeVenue, point_at

FIXTURES = json.loads((Path(__file__).parent / "error_bodies.json").read_text())["venues"]
CASES = [(venue, case) for venue, spec in FIXTURES.items() for case in spec["cases"]]


def _exchange(venue: str, origin: str) -> Any:
    spec = FIXTURES[venue]
    exchange = getattr(ccxt_async, venue)({**spec["credentials"], "enableRateLimit": False})
    point_at(exchange, origin)
    return exchange


def _rest(exchange: Any, venue: str, events: EventLog, **config: Any) -> CcxtRest:
    facts = venue_facts(venue)
    settings: dict[str, Any] = {"max_attempts": 1, "throttle": None, **config}
    return CcxtRest(exchange, facts, RestConfig(base_url=f"ccxt://{venue}", rules=facts.rules,
                                                **settings), events=events)


@pytest.mark.parametrize(("venue", "case"), CASES,
                         ids=[f"{v}-{c['status']}-{c['kind']}" for v, c in CASES])
async def test_venue_error_maps_to_kind_and_action(fake_venue: FakeVenue, venue: str,
                                                   case: dict[str, Any]) -> None:
    assert case["source"]  # every fixture names where it comes from
    exchange = _exchange(venue, fake_venue.origin)
    events = EventLog()
    rest = _rest(exchange, venue, events)
    fake_venue.respond((case["status"], case["body"]))
    spec = FIXTURES[venue]
    try:
        with pytest.raises(ccxt.BaseError) as caught:
            await rest.call("create_order",
                            lambda: getattr(exchange, spec["call"])(dict(spec["params"])),
                            idempotent=False, cl_ord_id="vgtest1")
    finally:
        await exchange.close()
    error = caught.value
    if case.get("unknown"):
        assert isinstance(error, OrderUnknown) and error.cl_ord_id == "vgtest1"
        error = error.__cause__
    else:
        assert not isinstance(error, OrderUnknown)
    verdict: Classification = error.venueguard  # type: ignore[attr-defined]
    assert (verdict.kind.value, verdict.action.value) == (case["kind"], case["action"])
    assert len(fake_venue.seen) == 1  # an order request is never resent after these
    logged = events.recent(event="rest.error")
    assert logged and logged[-1]["kind"] == case["kind"] and logged[-1]["venue"] == f"ccxt:{venue}"


async def test_binance_codes_are_read_from_the_body_where_ccxt_sees_a_plain_error(
        fake_venue: FakeVenue) -> None:
    # pointed anywhere but fapi.binance.com, ccxt applies no futures code table: the duplicate
    # client id arrives as a generic ExchangeError / InvalidOrder, never DuplicateOrderId
    exchange = _exchange("binanceusdm", fake_venue.origin)
    rest = _rest(exchange, "binanceusdm", EventLog())
    fake_venue.respond((400, {"code": -4116, "msg": "ClientOrderId is duplicated."}))
    spec = FIXTURES["binanceusdm"]
    try:
        with pytest.raises(ccxt.BaseError) as caught:
            await rest.call("create_order",
                            lambda: exchange.fapiprivate_post_order(dict(spec["params"])),
                            idempotent=False)
    finally:
        await exchange.close()
    assert not isinstance(caught.value, ccxt.DuplicateOrderId)
    assert caught.value.venueguard.kind.value == "duplicate_clordid"  # type: ignore[attr-defined]


async def test_overload_on_an_order_is_resent_with_the_same_client_id(
        fake_venue: FakeVenue) -> None:
    exchange = _exchange("okx", fake_venue.origin)
    rest = _rest(exchange, "okx", EventLog(), max_attempts=3)
    ok = {"code": "0", "msg": "", "data": [{"clOrdId": "vgtest1", "ordId": "42", "sCode": "0",
                                            "sMsg": "Order placed", "tag": ""}]}
    fake_venue.respond((503, {"code": "50001", "msg": "Service temporarily unavailable. Please "
                                                      "try again later.", "data": []}), (200, ok))
    spec = FIXTURES["okx"]
    try:
        result = await rest.call("create_order",
                                 lambda: exchange.private_post_trade_order(dict(spec["params"])),
                                 idempotent=False, cl_ord_id="vgtest1")
    finally:
        await exchange.close()
    assert result["data"][0]["ordId"] == "42"
    assert len(fake_venue.seen) == 2
    assert all(b'"clOrdId":"vgtest1"' in seen.body for seen in fake_venue.seen)
    assert rest.retries_total == 1 and rest.sent_total == 2


async def test_ambiguous_read_is_retried_and_a_timeout_on_an_order_is_unknown(
        fake_venue: FakeVenue) -> None:
    exchange = _exchange("kraken", fake_venue.origin)
    rest = _rest(exchange, "kraken", EventLog(), max_attempts=3)
    fake_venue.respond((504, "<html><title>504 Gateway Time-out</title></html>"),
                       (200, {"error": [], "result": {"unixtime": 1700000000}}))
    try:
        answer = await rest.call("fetch_time", lambda: exchange.public_get_time(),
                                 idempotent=True)
        assert answer["result"]["unixtime"] == 1700000000 and len(fake_venue.seen) == 2
        fake_venue.respond((504, "<html><title>504 Gateway Time-out</title></html>"))
        spec = FIXTURES["kraken"]
        with pytest.raises(OrderUnknown):
            await rest.call("create_order",
                            lambda: exchange.private_post_addorder(dict(spec["params"])),
                            idempotent=False, cl_ord_id="vgtest1")
        assert len(fake_venue.seen) == 1
    finally:
        await exchange.close()


async def test_a_request_counts_as_sent_when_it_leaves_not_when_it_is_answered() -> None:
    # the venue may hold it (the request budget compares its count with the venue's): counted
    # while its answer is awaited, and still counted when the call is cancelled meanwhile
    exchange = ccxt_async.okx({**FIXTURES["okx"]["credentials"], "enableRateLimit": False})
    left, never = asyncio.Event(), asyncio.Event()

    async def held_fetch(url: str, method: str = "GET", headers: Any = None,
                         body: Any = None) -> Any:
        left.set()
        await never.wait()

    exchange.fetch = held_fetch
    rest = _rest(exchange, "okx", EventLog())
    call = asyncio.create_task(rest.call("fetch_time", exchange.fetch_time, idempotent=True))
    try:
        await asyncio.wait_for(left.wait(), 5.0)
        assert rest.sent_total == 1 and rest.logical_total == 1
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert rest.sent_total == 1
    finally:
        await exchange.close()
