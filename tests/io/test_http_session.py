"""The REST pipeline against a scripted transport: retries, ambiguity, budget, typed errors."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from venueguard.core.backoff import BackoffConfig
from venueguard.core.budget import BudgetConfig
from venueguard.core.classify import Kind, Outcome, Transport
from venueguard.io import errors
from venueguard.io.clock import ManualClock
from venueguard.io.http_session import RestConfig, RestSession
from venueguard.io.rest_transport import (
    MemoryTransport,
    RawResponse,
    RestRequest,
    Timeouts,
    TransportFailure,
)
from venueguard.telemetry.events import EventLog
from venueguard.telemetry.metrics import Metrics
from venueguard.venues.bitmex import signing

KEY, SECRET = signing.TEST_API_KEY, signing.TEST_API_SECRET
OVERLOADED = orjson.dumps({"error": {"message": "The system is currently overloaded. Please "
                                                "try again later.", "name": "HTTPError"}})
ORDER = orjson.dumps({"orderID": "o1", "clOrdID": "c1", "ordStatus": "New"})

Step = tuple[int, bytes, dict[str, str]] | Outcome


def scripted(steps: list[Step]) -> MemoryTransport:
    """Answers with ``steps`` in order, then repeats the last one."""
    queue = list(steps)

    def answer(request: RestRequest) -> RawResponse | TransportFailure:
        step = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(step, Outcome):
            return TransportFailure(step, "scripted")
        status, body_out, headers_out = step
        return RawResponse(status, headers_out, body_out, 0.01)

    return MemoryTransport(answer)


def session(steps: list[Step], **config: Any) -> tuple[RestSession, MemoryTransport, EventLog]:
    wire = scripted(steps)
    log = EventLog()
    config.setdefault("backoff", BackoffConfig(base_s=0.01, cap_s=0.02))
    config.setdefault("throttle", None)
    rest = RestSession(RestConfig(base_url="http://127.0.0.1:1/api/v1", api_key=KEY,
                                  api_secret=SECRET, **config),
                       events=log, metrics=Metrics(), transport=wire, clock=ManualClock())
    return rest, wire, log


async def test_503_retry_resends_identical_bytes_with_the_same_clordid() -> None:
    rest, wire, _ = session([(503, OVERLOADED, {}), (200, ORDER, {})])
    row = await rest.place_order("XBTUSD", "Buy", 100, price=1.0, cl_ord_id="c1")
    assert row["orderID"] == "o1"
    assert len(wire.requests) == 2 and wire.requests[0].body == wire.requests[1].body
    body = wire.requests[0].body
    assert body is not None and orjson.loads(body)["clOrdID"] == "c1"
    for sent in wire.requests:
        assert signing.verify(SECRET, sent.verb, sent.target, int(sent.headers["api-expires"]),
                              sent.body or b"", sent.headers["api-signature"])
    assert rest.retries_total == 1 and rest.sent_total == 2 and rest.logical_total == 1


@pytest.mark.parametrize("step", [(504, b"<html>504 Gateway Time-out</html>", {}),
                                  (502, b"<html>502 Bad Gateway</html>", {}),
                                  Outcome(transport=Transport.READ_TIMEOUT, sent=True),
                                  Outcome(transport=Transport.RESET_AFTER_SEND, sent=True)])
async def test_ambiguous_new_order_is_never_resent(step: Step) -> None:
    rest, wire, log = session([step])
    with pytest.raises(errors.AmbiguousOutcome) as unknown:
        await rest.place_order("XBTUSD", "Buy", 100, price=1.0, cl_ord_id="keep-me")
    assert unknown.value.cl_ord_id == "keep-me"
    assert len(wire.requests) == 1
    assert log.recent(event="rest.ambiguous")[0]["cl_ord_id"] == "keep-me"


async def test_ambiguous_read_is_retried() -> None:
    rest, wire, _ = session([(504, b"<html>504</html>", {}), (200, b"[]", {})])
    assert await rest.get_positions() == []
    assert len(wire.requests) == 2


async def test_connect_failure_before_send_is_retried_even_for_a_new_order() -> None:
    refused = Outcome(transport=Transport.CONNECTION_REFUSED, sent=False)
    rest, wire, _ = session([refused, (200, ORDER, {})])
    assert (await rest.place_order("XBTUSD", "Buy", 1, price=1.0))["orderID"] == "o1"
    assert len(wire.requests) == 2


async def test_retry_budget_stops_retries() -> None:
    rest, wire, _ = session([(503, OVERLOADED, {})],
                            budget=BudgetConfig(ratio=0.0, min_per_s=0.0, window_s=10.0))
    with pytest.raises(errors.BudgetExhausted) as failed:
        await rest.place_order("XBTUSD", "Buy", 1, price=1.0)
    assert failed.value.kind is Kind.OVERLOADED
    assert len(wire.requests) == 1


async def test_attempts_run_out_as_overloaded() -> None:
    rest, wire, _ = session([(503, OVERLOADED, {})], max_attempts=2,
                            budget=BudgetConfig(ratio=1.0, min_per_s=10.0))
    with pytest.raises(errors.Overloaded):
        await rest.get_orders()
    assert len(wire.requests) == 2


async def test_deadline_bounds_a_logical_request() -> None:
    rest, wire, _ = session([(503, OVERLOADED, {})],
                            timeouts=Timeouts(connect_s=1.0, sock_read_s=1.0, total_s=0.3),
                            budget=BudgetConfig(ratio=1.0, min_per_s=10.0))
    with pytest.raises(errors.BudgetExhausted, match="deadline"):
        await rest.get_orders()  # the first 503 retry waits >= 0.5 s: past the deadline
    assert len(wire.requests) == 1


async def test_rejection_is_typed_and_not_retried() -> None:
    rejected = orjson.dumps({"error": {"message": "Invalid orderQty", "name": "HTTPError"}})
    rest, wire, log = session([(400, rejected, {})])
    with pytest.raises(errors.Rejected) as failed:
        await rest.place_order("XBTUSD", "Buy", -1, price=1.0)
    assert failed.value.status == 400 and "Invalid orderQty" in failed.value.venue_message
    assert len(wire.requests) == 1
    assert log.recent(event="rest.error")[0]["kind"] == failed.value.kind.value


async def test_duplicate_clordid_is_its_own_error() -> None:
    dup = orjson.dumps({"error": {"message": "Duplicate clOrdID", "name": "HTTPError"}})
    rest, _, _ = session([(400, dup, {})])
    with pytest.raises(errors.DuplicateClOrdID) as failed:
        await rest.place_order("XBTUSD", "Buy", 1, price=1.0, cl_ord_id="d1")
    assert failed.value.cl_ord_id == "d1"


async def test_bad_signature_is_an_auth_error_without_secrets() -> None:
    bad = orjson.dumps({"error": {"message": "Signature not valid.", "name": "HTTPError"}})
    rest, wire, log = session([(401, bad, {})])
    with pytest.raises(errors.AuthError) as failed:
        await rest.get_positions()
    assert len(wire.requests) == 1
    assert SECRET not in str(failed.value) and SECRET not in str(log.recent())
    assert wire.requests[0].headers["api-signature"] not in str(log.recent())


async def test_blocked_venue_sends_nothing_more() -> None:
    page = b"<html><title>Access denied | 1010</title>Error code: 1010</html>"
    rest, wire, log = session([(403, page, {}), (200, b"[]", {})])
    with pytest.raises(errors.Blocked):
        await rest.get_positions()
    with pytest.raises(errors.Blocked):
        await rest.get_positions()
    assert len(wire.requests) == 1
    assert log.recent(event="venue.state")[-1]["state"] == "BLOCKED"
    assert rest.poll() is None  # no timer ends a block
    rest.reset_venue("banned IP replaced")
    assert log.recent(event="venue.state")[-1]["state"] == "HEALTHY"
    await rest.get_positions()  # sent again after the explicit reset
    assert len(wire.requests) == 2


async def test_rate_limit_headers_feed_the_limiter() -> None:
    headers = {"x-ratelimit-limit": "120", "x-ratelimit-remaining": "0",
               "x-ratelimit-reset": "99999999999"}
    rest, wire, _ = session([(200, b"[]", headers)],
                            timeouts=Timeouts(connect_s=1.0, sock_read_s=1.0, total_s=2.0))
    await rest.get_positions()
    with pytest.raises(errors.RateLimited):
        await rest.get_positions()  # the reset is past the deadline: refuse, send nothing
    assert len(wire.requests) == 1


async def test_non_json_success_body_is_a_typed_error() -> None:
    rest, _, _ = session([(200, b"<html>oops</html>", {})])
    with pytest.raises(errors.VenueError) as failed:
        await rest.get_positions()
    assert failed.value.kind is Kind.BAD_RESPONSE
    assert isinstance(failed.value.__cause__, orjson.JSONDecodeError)


async def test_convenience_methods_build_bitmex_requests() -> None:
    rest, wire, _ = session([(200, b"[]", {})])
    await rest.get_orders(symbol="XBTUSD", filter={"clOrdID": "x"}, count=5)
    await rest.get_book_l2("XBTUSD", depth=0)
    await rest.cancel_orders(cl_ord_ids=["a", "b"])
    urls = [sent.url for sent in wire.requests]
    assert urls[0].endswith("/api/v1/order?symbol=XBTUSD&filter=%7B%22clOrdID%22%3A%22x%22%7D"
                            "&count=5")
    assert urls[1].endswith("/api/v1/orderBook/L2?symbol=XBTUSD&depth=0")
    assert orjson.loads(wire.requests[2].body or b"") == {"clOrdID": ["a", "b"]}
    with pytest.raises(errors.ConfigError):
        await rest.cancel_orders()
    with pytest.raises(errors.ConfigError):
        await rest.amend_order(price=1.0)


async def test_unencodable_request_is_a_config_error_and_nothing_is_sent() -> None:
    rest, wire, _ = session([(200, b"[]", {})])
    with pytest.raises(errors.ConfigError) as failed:
        await rest.request("POST", "/order", body={"price": object()})
    assert isinstance(failed.value.__cause__, TypeError)
    with pytest.raises(errors.ConfigError):
        await rest.get_orders(filter={"bad": {1, 2}})
    assert wire.requests == []
