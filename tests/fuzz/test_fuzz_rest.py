"""Fuzz: the REST client's reading of responses (status, headers, body) from any venue.

Whatever comes back, a call returns decoded rows or raises an error of the project's tree
(:mod:`venueguard.io.errors`); the pure readers never raise and never produce a negative or
non-finite wait.
"""

from __future__ import annotations

import math

import orjson
from fuzzcfg import FUZZ
from hypothesis import given
from hypothesis import strategies as st

from venueguard.core.backoff import BackoffConfig
from venueguard.core.responses import decode_body, error_of, read_headers, retry_after_from
from venueguard.io import errors
from venueguard.io.clock import ManualClock
from venueguard.io.http_session import RestConfig, RestSession
from venueguard.io.rest_transport import MemoryTransport, RawResponse, RestRequest
from venueguard.telemetry.events import EventLog
from venueguard.telemetry.metrics import Metrics
from venueguard.venues.bitmex import signing

WALL_MS = 1_700_000_000_000
TEXT = st.text(max_size=40)
NUMBERISH = st.one_of(
    st.sampled_from(["", "0", "-1", "1.5", "nan", "inf", "-inf", "1e999", "9" * 400, "12abc",
                     "Wed, 21 Oct 2015 07:28:00 GMT", "Thu, 99 Zzz 9999 99:99:99 GMT", "٣"]),
    st.integers(-10**6, 10**12).map(str), TEXT)
HEADER_NAMES = st.sampled_from(["x-ratelimit-limit", "x-ratelimit-remaining",
                                "x-ratelimit-reset", "x-ratelimit-remaining-1s",
                                "retry-after", "content-type", "cf-ray"])
JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-10**18, 10**18),
                      st.floats(allow_nan=False, allow_infinity=False), TEXT)
JSON = st.recursive(JSON_LEAF, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)), max_leaves=12)
ERROR_BODY = st.fixed_dictionaries({"error": st.one_of(
    JSON, st.fixed_dictionaries({"message": st.one_of(TEXT, JSON, st.sampled_from([
        "Rate limit exceeded, retry in 1 seconds.", "retry in 1e999 seconds",
        "retry in 99999999999999999999 seconds",
        "The system is currently overloaded. Please try again later."])),
        "name": st.one_of(TEXT, JSON)}))})
BODY = st.one_of(st.binary(max_size=200), JSON.map(orjson.dumps), ERROR_BODY.map(orjson.dumps),
                 st.sampled_from([b"<html>522 Origin Connection Time-out</html>",
                                  b"error code: 1010", b"[" * 5000, b'{"a":' * 3000]))
STATUS = st.one_of(st.sampled_from([200, 201, 204, 400, 401, 403, 404, 429, 500, 502, 503, 504,
                                    520, 522, 524]), st.integers(100, 599))


def one_answer(clock: ManualClock, response: RawResponse) -> MemoryTransport:
    """Answers every request with one response, and lets a long time pass (no retry fits)."""

    def answer(request: RestRequest) -> RawResponse:
        clock.advance(1_000.0)
        return response

    return MemoryTransport(answer)


@FUZZ
@given(STATUS, st.dictionaries(HEADER_NAMES, NUMBERISH, max_size=5), BODY)
async def test_any_response_gives_rows_or_an_error_of_the_tree(
        status: int, headers: dict[str, str], body: bytes) -> None:
    clock = ManualClock(wall_ms=WALL_MS)
    rest = RestSession(
        RestConfig(base_url="http://127.0.0.1:1/api/v1", api_key=signing.TEST_API_KEY,
                   api_secret=signing.TEST_API_SECRET,
                   backoff=BackoffConfig(base_s=0.001, cap_s=0.002), throttle=None),
        events=EventLog(), metrics=Metrics(), clock=clock,
        transport=one_answer(clock, RawResponse(status, headers, body, 0.01)))
    try:
        rows = await rest.get_positions()
    except errors.VenueguardError:
        return
    assert isinstance(rows, list) and all(isinstance(r, dict) for r in rows)
    assert 200 <= status < 300


@FUZZ
@given(st.dictionaries(HEADER_NAMES, NUMBERISH, max_size=5), BODY)
def test_the_readers_never_raise_and_waits_are_finite(headers: dict[str, str],
                                                      body: bytes) -> None:
    rate, retry_after = read_headers(headers, WALL_MS)
    assert retry_after is None or (math.isfinite(retry_after) and retry_after >= 0)
    decoded = decode_body(body)
    message, _name, meta_wait = error_of(decoded)
    assert meta_wait is None or (math.isfinite(meta_wait) and meta_wait >= 0)
    wait = retry_after_from(message, rate, WALL_MS)
    assert wait is None or (math.isfinite(wait) and wait >= 0)

