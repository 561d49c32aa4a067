"""Reading responses for classification (core/responses.py): header spellings, Retry-After,
x-ratelimit-* values, body decoding at its bounds, error texts of every body shape."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from venueguard.core.responses import (
    MAX_BODY_CHARS,
    RateLimit,
    decode_body,
    error_of,
    read_headers,
    retry_after_from,
)

WALL_MS = 1_589_035_899_000  # Sat, 09 May 2020 14:51:39 GMT


# ---- read_headers -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["retry-after", "Retry-After"])
def test_retry_after_is_read_under_either_spelling(name: str) -> None:
    assert read_headers({name: "7"}, None) == (None, 7.0)


def test_a_numeric_retry_after_is_not_read_as_a_date_when_the_wall_clock_is_known() -> None:
    assert read_headers({"retry-after": "5"}, WALL_MS) == (None, 5.0)


def test_a_date_retry_after_needs_the_wall_clock() -> None:
    date = "Sat, 09 May 2020 14:51:49 GMT"
    assert read_headers({"Retry-After": date}, WALL_MS) == (None, 10.0)
    assert read_headers({"Retry-After": date}, None) == (None, None)
    assert read_headers({"Retry-After": "Sat, 09 May 2020 14:51:29 GMT"}, WALL_MS) == (None, 0.0)
    assert read_headers({"Retry-After": "soon"}, WALL_MS) == (None, None)


def test_no_rate_limit_headers_give_no_rate_limit() -> None:
    assert read_headers({}, WALL_MS) == (None, None)
    assert read_headers({"content-type": "application/json"}, None) == (None, None)


@pytest.mark.parametrize("spelling", ["x-ratelimit-", "X-RateLimit-", "X-Ratelimit-"])
def test_every_spelling_of_the_rate_limit_headers_is_read(spelling: str) -> None:
    headers = {f"{spelling}limit": "300", f"{spelling}remaining": "299",
               f"{spelling}reset": "1589035900", f"{spelling}remaining-1s": "9"}
    if spelling != "x-ratelimit-":
        headers[f"{spelling}Remaining-1s"] = headers.pop(f"{spelling}remaining-1s")
        for key in ("limit", "remaining", "reset"):
            headers[f"{spelling}{key.capitalize()}"] = headers.pop(f"{spelling}{key}")
    assert read_headers(headers, None) == (RateLimit(300, 299, 1589035900.0, 9), None)


@pytest.mark.parametrize(("headers", "expected"), [
    ({"X-RateLimit-Remaining": "3"}, RateLimit(None, 3, None, None)),
    ({"X-Ratelimit-Remaining": "4"}, RateLimit(None, 4, None, None)),
    ({"X-RateLimit-Limit": "60"}, RateLimit(60, None, None, None)),
    ({"X-Ratelimit-Limit": "61"}, RateLimit(61, None, None, None)),
    ({"X-RateLimit-Reset": "12.5"}, RateLimit(None, None, 12.5, None)),
    ({"X-Ratelimit-Reset": "13"}, RateLimit(None, None, 13.0, None)),
    ({"X-RateLimit-Remaining-1s": "2"}, RateLimit(None, None, None, 2)),
    ({"X-Ratelimit-Remaining-1s": "1"}, RateLimit(None, None, None, 1)),
    ({"x-ratelimit-remaining-1s": "0"}, RateLimit(None, None, None, 0)),
])
def test_one_header_alone_gives_a_rate_limit_with_only_that_value(
        headers: dict[str, str], expected: RateLimit) -> None:
    assert read_headers(headers, None) == (expected, None)


def test_rate_limit_values_that_do_not_read_become_none() -> None:
    headers = {"x-ratelimit-limit": "lots", "x-ratelimit-remaining": "2.9",
               "x-ratelimit-reset": "inf", "x-ratelimit-remaining-1s": "nan"}
    assert read_headers(headers, None) == (RateLimit(None, 2, None, None), None)


def test_a_large_integer_header_keeps_every_digit() -> None:
    limit = "123456789012345678901"  # more digits than a float holds
    rate_limit, _ = read_headers({"x-ratelimit-limit": limit}, None)
    assert rate_limit is not None and rate_limit.limit == 123456789012345678901


# ---- decode_body ---------------------------------------------------------------------------------
@pytest.mark.parametrize("body", [{"a": 1}, [1, 2], None, 42, (1, 2)])
def test_anything_not_text_comes_back_unchanged(body: object) -> None:
    assert decode_body(body) is body


@pytest.mark.parametrize("body", [b'{"a": [1]}', bytearray(b'{"a": [1]}'),
                                  memoryview(b'{"a": [1]}'), '{"a": [1]}', b' \n{"a": [1]}',
                                  '\t {"a": [1]}'])
def test_json_objects_are_decoded_from_bytes_and_text(body: object) -> None:
    assert decode_body(body) == {"a": [1]}


@pytest.mark.parametrize("body", [b"[1, 2]", "[1, 2]", b"  [1, 2]  ", "[1, 2] "])
def test_json_arrays_are_decoded(body: object) -> None:
    assert decode_body(body) == [1, 2]


@pytest.mark.parametrize(("body", "text"), [
    (b"123", "123"), ("true", "true"), (b'"quoted"', '"quoted"'),  # JSON, but not a body
    (b"<html>busy</html>", "<html>busy</html>"), ("{not json", "{not json"),
    (b"[1, 2", "[1, 2"), ("", ""), (b"", ""),
])
def test_only_objects_and_arrays_are_read_as_json(body: object, text: str) -> None:
    assert decode_body(body) == text


def test_bytes_that_are_not_utf8_are_read_with_replacement_characters() -> None:
    assert decode_body(b'{"message": "bad \xff byte"}') == {"message": "bad \ufffd byte"}
    assert decode_body(b"oops \xff") == "oops \ufffd"


@pytest.mark.parametrize("kind", [bytes, str])
def test_a_body_of_exactly_the_limit_is_still_json(kind: type) -> None:
    text = "[1]" + " " * (MAX_BODY_CHARS - 3)
    body = text.encode() if kind is bytes else text
    assert len(body) == MAX_BODY_CHARS
    assert decode_body(body) == [1]


@pytest.mark.parametrize("kind", [bytes, str])
def test_a_body_over_the_limit_is_cut_and_never_read_as_json(kind: type) -> None:
    text = "[1]" + " " * (MAX_BODY_CHARS - 2)  # its first MAX_BODY_CHARS characters parse
    body = text.encode() if kind is bytes else text
    assert decode_body(body) == text[:MAX_BODY_CHARS]


def test_json_nested_too_deep_is_returned_as_text() -> None:
    deep = "[" * 2000 + "]" * 2000
    assert decode_body(deep) == deep
    assert decode_body(deep.encode()) == deep


# ---- error_of ------------------------------------------------------------------------------------
def test_a_rest_error_object_gives_its_message_and_name() -> None:
    body = {"error": {"message": "Invalid ordStatus", "name": "HTTPError"}}
    assert error_of(body) == ("Invalid ordStatus", "HTTPError", None)


def test_an_error_object_without_a_message_gives_an_empty_message() -> None:
    assert error_of({"error": {"name": "HTTPError"}}) == ("", "HTTPError", None)
    assert error_of({"error": {"message": 42, "name": 7}}) == ("42", None, None)


def test_a_mapping_that_is_not_a_dict_is_read_like_one() -> None:
    body = MappingProxyType({"error": {"message": "m", "name": "n"}})
    assert error_of(body) == ("m", "n", None)
    assert error_of(MappingProxyType({"error": "busy"})) == ("busy", None, None)


def test_a_websocket_error_frame_gives_its_text_and_meta_retry_after() -> None:
    assert error_of({"error": "Rate limit exceeded"}) == ("Rate limit exceeded", None, None)
    assert error_of({"error": "x", "meta": None}) == ("x", None, None)
    assert error_of({"error": "x", "meta": "later"}) == ("x", None, None)
    assert error_of({"error": "x", "meta": {"retryAfter": 0.5}}) == ("x", None, 0.5)
    assert error_of({"error": "x", "meta": {"retryAfter": -3}}) == ("x", None, 0.0)
    assert error_of({"error": "x", "meta": {"retryAfter": "soon"}}) == ("x", None, None)


def test_bodies_without_an_error_give_nothing() -> None:
    assert error_of({"result": 1}) == (None, None, None)
    assert error_of({"error": 5}) == (None, None, None)
    assert error_of("plain text") == (None, None, None)
    assert error_of(b'{"error": "x"}') == (None, None, None)
    assert error_of(None) == (None, None, None)


def test_the_first_row_with_an_error_text_is_the_error() -> None:
    rows = [{"orderID": "a"}, {"error": {"nested": 1}}, {"error": "Not found"}, {"error": "2"}]
    assert error_of(rows) == ("Not found", None, None)
    assert error_of(tuple(rows)) == ("Not found", None, None)
    assert error_of([MappingProxyType({"error": "proxy"})]) == ("proxy", None, None)
    assert error_of([1, "error", None]) == (None, None, None)


def test_only_the_first_thousand_rows_are_searched() -> None:
    rows: list[dict[str, object]] = [{"orderID": str(i)} for i in range(1000)]
    assert error_of([*rows, {"error": "late"}]) == (None, None, None)
    assert error_of([*rows[:999], {"error": "last read"}]) == ("last read", None, None)


# ---- retry_after_from ----------------------------------------------------------------------------
def test_retry_after_from_the_message_comes_first() -> None:
    rate_limit = RateLimit(reset_epoch_s=WALL_MS / 1000 + 30)
    assert retry_after_from("Please retry in 2.5 seconds.", rate_limit, WALL_MS) == 2.5
    assert retry_after_from("RETRY IN 1 SECOND", None, None) == 1.0


def test_retry_after_from_the_reset_header_needs_the_wall_clock() -> None:
    rate_limit = RateLimit(reset_epoch_s=WALL_MS / 1000 + 0.5)
    assert retry_after_from("busy", rate_limit, WALL_MS) == 0.5
    assert retry_after_from("", RateLimit(reset_epoch_s=WALL_MS / 1000 - 4), WALL_MS) == 0.0
    assert retry_after_from(None, rate_limit, None) is None


def test_no_reset_gives_no_retry_after() -> None:
    assert retry_after_from(None, None, WALL_MS) is None
    assert retry_after_from("busy", RateLimit(limit=1), WALL_MS) is None
