"""Decoding of websocket frames, topics and command builders, timestamps, error texts."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from venueguard.venues.bitmex import errors, timefmt, topics
from venueguard.venues.bitmex.messages import (
    PONG,
    Action,
    CancelAllAfterAck,
    Command,
    CommandAck,
    ErrorFrame,
    Info,
    MessageError,
    Pong,
    SubscribeAck,
    TableMessage,
    Welcome,
    decode,
    decode_command,
)
from venueguard.venues.bitmex.signing import TEST_API_SECRET, sign_ws


def enc(obj: Any) -> bytes:
    return orjson.dumps(obj)


# ---- happy paths ------------------------------------------------------------------------------
@pytest.mark.parametrize("frame", ["pong", b"pong", bytearray(b"pong"), memoryview(b"pong"),
                                   '{"op":"pong"}'])
def test_pong_forms(frame: Any) -> None:
    assert decode(frame) is PONG and isinstance(PONG, Pong)


def test_welcome_2025_and_2026_shapes() -> None:
    msg = decode(enc({"info": "Welcome to the BitMEX Realtime API.", "version": "2.0.0",
                      "timestamp": "2025-09-30T12:48:45.419Z", "docs": "https://x",
                      "heartbeatEnabled": False, "limit": {"remaining": 719},
                      "appName": "ws-feedhandler-1"}))
    assert msg == Welcome("Welcome to the BitMEX Realtime API.", "2.0.0",
                          timefmt.parse_ms("2025-09-30T12:48:45.419Z"), "https://x", False, 719,
                          "ws-feedhandler-1")
    bare = decode('{"info":"Welcome to the BitMEX Realtime API.","limit":{}}')
    assert isinstance(bare, Welcome) and bare.limit_remaining is None and bare.version is None


def test_subscribe_acks_success_and_failure_forms() -> None:
    ok = decode(enc({"success": True, "subscribe": "orderBookL2:XRPU21",
                     "request": {"op": "subscribe", "args": ["orderBookL2:XRPU21", "trade"]}}))
    assert ok == SubscribeAck(True, "subscribe", "orderBookL2:XRPU21", None,
                              {"op": "subscribe", "args": ["orderBookL2:XRPU21", "trade"]})
    unsub = decode('{"success":true,"unsubscribe":"chat","request":{"op":"unsubscribe"}}')
    assert isinstance(unsub, SubscribeAck) and unsub.op == "unsubscribe" and unsub.topic == "chat"
    failed = decode(enc({"success": False, "subscribe": "order", "error": "no auth"}))
    assert isinstance(failed, SubscribeAck) and not failed.success and failed.error == "no auth"


def test_error_frames() -> None:
    frame = errors.ws_error_frame(429, errors.rate_limit_text(1), meta={"retryAfter": 1},
                                  request={"op": "subscribe", "args": "orderBook"})
    msg = decode(enc(frame))
    assert isinstance(msg, ErrorFrame)
    assert (msg.status, msg.error, msg.retry_after_s) == (
        429, "Rate limit exceeded, retry in 1 seconds.", 1.0)
    assert msg.request == {"op": "subscribe", "args": "orderBook"}
    decode_error = decode(enc(errors.ws_error_frame(400, errors.ws_decode_error_text())))
    assert isinstance(decode_error, ErrorFrame)
    assert decode_error.request is None and decode_error.meta == {}
    assert decode_error.retry_after_s is None
    no_meta = decode('{"status":400,"error":"Missing API key."}')
    assert no_meta == ErrorFrame(400, "Missing API key.", {}, None)


def test_command_acks() -> None:
    auth = decode('{"success":true,"request":{"op":"authKeyExpires","args":["k",1,"s"]}}')
    assert isinstance(auth, CommandAck) and auth.success and auth.op == "authKeyExpires"
    top_level_op = decode('{"op":"authKeyExpires","success":true}')
    assert isinstance(top_level_op, CommandAck) and top_level_op.op == "authKeyExpires"


def test_cancel_all_after_acks() -> None:
    armed = decode(enc({"now": "2015-09-02T14:18:43.536Z", "cancelTime": "2015-09-02T14:19:43.536Z",
                        "request": {"op": "cancelAllAfter", "args": 60000}}))
    assert isinstance(armed, CancelAllAfterAck)
    assert armed.cancel_time_ms is not None and armed.now_ms is not None
    assert armed.cancel_time_ms - armed.now_ms == 60_000
    disarmed = decode('{"now":"2015-09-02T14:19:11.617Z","cancelTime":0,"request":{}}')
    assert isinstance(disarmed, CancelAllAfterAck) and disarmed.cancel_time_ms is None


def test_help_reply_is_info() -> None:
    msg = decode('{"info":"See https://www.bitmex.com/app/wsAPI","usage":"Send..","ops":[]}')
    assert isinstance(msg, Info) and msg.body["usage"] == "Send.."


def test_table_messages_delta_and_partial() -> None:
    delta = decode(enc({"table": "orderBookL2", "action": "update",
                        "data": [{"symbol": "XBTUSD", "id": 1, "side": "Buy", "size": 3}]}))
    assert isinstance(delta, TableMessage)
    assert (delta.table, delta.action, delta.keys, delta.filter, delta.symbol) == (
        "orderBookL2", Action.UPDATE, None, None, None)
    assert delta.data == [{"symbol": "XBTUSD", "id": 1, "side": "Buy", "size": 3}]
    partial = decode(enc({"table": "orderBookL2_25", "action": "partial",
                          "keys": ["symbol", "id", "side"], "types": {"id": "long"},
                          "filter": {"symbol": "XBTUSD"}, "data": []}))
    assert isinstance(partial, TableMessage) and partial.action is Action.PARTIAL
    assert partial.keys == ("symbol", "id", "side") and partial.symbol == "XBTUSD"
    assert partial.types == {"id": "long"} and partial.data == []
    bare_partial = decode('{"table":"trade","action":"partial","data":[]}')
    assert isinstance(bare_partial, TableMessage) and bare_partial.keys is None


def test_unknown_tables_pass_through() -> None:
    msg = decode('{"table":"somethingNew","action":"insert","data":[{"x":1}]}')
    assert isinstance(msg, TableMessage) and msg.table == "somethingNew"


# ---- malformed input --------------------------------------------------------------------------
@pytest.mark.parametrize(("frame", "reason"), [
    (b"{not json", "invalid JSON"),
    ("", "invalid JSON"),
    (b"\xff\xfe", "invalid JSON"),
    ("[1, 2]", "top level must be an object"),
    ("42", "top level must be an object"),
    ('{"table":5,"action":"insert","data":[]}', "'table' must be a non-empty string"),
    ('{"table":"","action":"insert","data":[]}', "'table' must be a non-empty string"),
    ('{"table":"trade","action":"upsert","data":[]}', "unknown or missing action"),
    ('{"table":"trade","action":["insert"],"data":[]}', "unknown or missing action"),
    ('{"table":"trade","data":[]}', "unknown or missing action"),
    ('{"table":"trade","action":"insert"}', "'data' must be a list"),
    ('{"table":"trade","action":"insert","data":{"a":1}}', "'data' must be a list"),
    ('{"table":"trade","action":"insert","data":[1]}', "rows must be objects"),
    ('{"table":"trade","action":"partial","keys":"id","data":[]}', "'keys' must be a list"),
    ('{"table":"trade","action":"partial","keys":[1],"data":[]}', "'keys' must be a list"),
    ('{"table":"trade","action":"partial","filter":[],"data":[]}', "'filter' must be an object"),
    ('{"table":"trade","action":"partial","types":1,"data":[]}', "'types' must be an object"),
    ('{"table":"t","action":"partial","filter":{"symbol":1},"data":[]}', "'filter.symbol'"),
    ('{"status":"400","error":"x"}', "'status' must be an integer"),
    ('{"status":400,"error":null}', "'error' must be a string"),
    ('{"status":400,"error":"x","meta":[]}', "'meta' must be an object"),
    ('{"success":"yes","subscribe":"x"}', "'success' must be a boolean"),
    ('{"success":true,"subscribe":["x"]}', "'subscribe' must be a topic string"),
    ('{"success":true,"request":{"op":5}}', "'request.op' must be a string"),
    ('{"success":true,"request":"x"}', "'request' must be an object"),
    ('{"info":"Welcome","timestamp":"yesterday"}', "welcome 'timestamp'"),
    ('{"info":"Welcome","limit":{"remaining":"9"}}', "'limit.remaining'"),
    ('{"info":"Welcome","heartbeatEnabled":"no"}', "'heartbeatEnabled'"),
    ('{"info":7}', "'info' must be a string"),
    ('{"now":"x","cancelTime":0}', "cancelAllAfter 'now'"),
    ('{"now":"2015-09-02T14:19:11.617Z","cancelTime":"soon"}', "'cancelTime'"),
    ('{"hello":"world"}', "unrecognised message shape"),
])
def test_malformed_frames_raise_message_error(frame: str | bytes, reason: str) -> None:
    with pytest.raises(MessageError) as info:
        decode(frame)
    assert reason in info.value.reason


@pytest.mark.parametrize("frame", [None, 42, 1.5, ["pong"], {"table": "trade"}])
def test_non_frames_raise_message_error(frame: Any) -> None:
    with pytest.raises(MessageError, match="frame must be text or bytes"):
        decode(frame)


def test_message_error_carries_no_frame_content() -> None:
    secret_sig = sign_ws(TEST_API_SECRET, 1518064236)
    frame = orjson.dumps({"success": True, "request": {"op": 5, "args": [secret_sig]}})
    with pytest.raises(MessageError) as info:
        decode(frame)
    assert secret_sig not in str(info.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["table", "action", "data", "keys", "filter", "symbol", "status",
                         "error", "meta", "request", "success", "subscribe", "info", "op",
                         "now", "cancelTime", "version", "timestamp", "limit", "types"])
        | st.text(max_size=4),
        inner, max_size=6),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_any_json_decodes_or_raises_message_error(value: Any) -> None:
    try:
        msg = decode(json.dumps(value))  # stdlib: also emits integers beyond 64 bits
    except MessageError as exc:
        assert exc.reason
    else:
        assert isinstance(msg, TableMessage | ErrorFrame | SubscribeAck | CommandAck | Info
                          | Welcome | CancelAllAfterAck | Pong)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64) | st.text(max_size=64))
def test_any_bytes_decode_or_raise_message_error(frame: bytes | str) -> None:
    try:
        decode(frame)
    except MessageError:
        pass


# ---- client commands (server side) ----------------------------------------------------------
def test_decode_command_forms() -> None:
    assert decode_command("ping") == Command("ping", ())
    assert decode_command(b'{"op":"subscribe","args":"trade"}') == Command("subscribe", ("trade",))
    assert decode_command('{"op":"subscribe","args":["a","b"]}') == Command("subscribe", ("a", "b"))
    assert decode_command('{"op":"cancelAllAfter","args":60000}') == Command(
        "cancelAllAfter", (60000,))
    assert decode_command('{"op":"help"}') == Command("help", ())
    for bad in ("nope", "[]", '{"op":1}', '{"args":[]}', '{"op":""}'):
        with pytest.raises(MessageError):
            decode_command(bad)


# ---- topics and op builders -------------------------------------------------------------------
def test_topics_parse_and_format() -> None:
    assert topics.parse_topic("orderBookL2:XBTUSD") == topics.Topic("orderBookL2", "XBTUSD")
    assert topics.parse_topic("trade") == topics.Topic("trade", None)
    assert str(topics.Topic("orderBookL2_25", "ETHUSD")) == "orderBookL2_25:ETHUSD"
    assert topics.format_topic("margin", "XBTUSD") == "margin"  # no-symbol table
    assert topics.Topic("order").private and not topics.Topic("trade").private
    assert topics.Topic("trade").covers("trade", "XBTUSD")
    assert topics.Topic("trade", "XBTUSD").covers("trade", "XBTUSD")
    assert not topics.Topic("trade", "XBTUSD").covers("trade", "ETHUSD")
    for bad in ("", ":XBTUSD", "trade:", "a:b:c", "trade :X", "x" * 201):
        with pytest.raises(topics.TopicError):
            topics.parse_topic(bad)


def test_table_sets_and_keys() -> None:
    assert topics.PUBLIC_TABLES.isdisjoint(topics.PRIVATE_TABLES)
    assert topics.NO_SYMBOL_TABLES <= topics.ALL_TABLES
    assert topics.BOOK_L2_TABLES <= topics.PUBLIC_TABLES
    assert topics.keys_for("orderBookL2") == ("symbol", "id", "side")
    assert topics.keys_for("trade") == () and topics.keys_for("nope") == ()
    assert topics.is_known_table("execution") and not topics.is_known_table("tradeBin5dm")


def test_op_builders() -> None:
    sub = topics.subscribe_op([topics.Topic("orderBookL2", "XBTUSD"), "trade:XBTUSD"])
    assert orjson.loads(topics.encode(sub)) == {
        "op": "subscribe", "args": ["orderBookL2:XBTUSD", "trade:XBTUSD"]}
    assert topics.unsubscribe_op(["chat"]) == {"op": "unsubscribe", "args": ["chat"]}
    assert topics.cancel_all_after_op(60000) == {"op": "cancelAllAfter", "args": 60000}
    with pytest.raises(ValueError):
        topics.cancel_all_after_op(-1)
    auth = topics.auth_op("LAqUlngMIQkIUjXMUreyu3qn", TEST_API_SECRET, 1518064236)
    assert auth == {"op": "authKeyExpires", "args": [
        "LAqUlngMIQkIUjXMUreyu3qn", 1518064236,
        "6d459dc02866d35a2b965edeecc68063d488e296b77982235fc6eca24b934945"]}
    assert b'1518064236,' in topics.encode(auth)  # expires goes as a JSON number
    assert topics.subscribe_query(["instrument", "orderBookL2_25:XBTUSD"]) == (
        "instrument,orderBookL2_25:XBTUSD")


# ---- timestamps -------------------------------------------------------------------------------
def test_timestamp_examples() -> None:
    assert timefmt.parse_ms("2021-07-22T22:36:07.865Z") == 1_626_993_367_865
    assert timefmt.format_ms(1_626_993_367_865) == "2021-07-22T22:36:07.865Z"
    assert timefmt.parse_ms("2020-05-28T12:00:00Z") == timefmt.parse_ms("2020-05-28T12:00:00.000Z")
    assert timefmt.parse_ms("2020-05-28T12:00:00.5+00:00") == timefmt.parse_ms(
        "2020-05-28T12:00:00.500Z")
    assert timefmt.format_s(1_626_993_367.8654) == "2021-07-22T22:36:07.865Z"
    assert timefmt.parse_ms_or_none(None) is None
    assert timefmt.parse_ms_or_none("garbage") is None


@pytest.mark.parametrize("bad", ["2021-07-22 22:36:07.865Z", "2021-07-22T22:36:07.865",
                                 "2021-13-22T22:36:07.865Z", "2021-07-22T25:36:07.865Z",
                                 "2021-07-22T22:36:07.Z", "2021-07-22T22:36:07.865+01:00",
                                 "2021-07-22T22:36:07.86aZ", "short"])
def test_malformed_timestamps_raise(bad: str) -> None:
    with pytest.raises(ValueError):
        timefmt.parse_ms(bad)


@given(st.integers(min_value=0, max_value=4_102_444_800_000))  # 1970 .. 2100
def test_timestamp_round_trip_matches_datetime(ts_ms: int) -> None:
    text = timefmt.format_ms(ts_ms)
    expected = dt.datetime.fromtimestamp(ts_ms // 1000, dt.UTC).replace(
        microsecond=(ts_ms % 1000) * 1000)
    assert text == expected.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"
    assert timefmt.parse_ms(text) == ts_ms


# ---- error texts ------------------------------------------------------------------------------
def test_error_texts_match_the_venue() -> None:
    assert errors.rate_limit_text(1) == "Rate limit exceeded, retry in 1 seconds."
    assert errors.invalid_ord_status_text("Filled") == "Invalid ordStatus: Filled"
    assert errors.expired_text(1728606269) == (
        "This request has expired - `expires` is in the past. Current time: 1728606269")
    assert errors.cancel_state_text("Canceled") == (
        "Unable to cancel order due to existing state: Canceled")
    assert errors.insufficient_balance_text(575375000) == (
        "Account has insufficient Available Balance, 575375000 XBt required")
    assert errors.required_arg_text("symbol") == "'symbol' is a required arg."
    assert errors.ws_unknown_table_text("tradeBin5dm") == "Unknown table: tradeBin5dm"
    assert errors.ws_already_subscribed_text("instrument") == (
        "You are already subscribed to this topic:instrument. Please see the documentation at "
        "https://www.bitmex.com/app/wsAPI.")
    assert errors.ws_decode_error_text() == (
        "Failed to decode incoming data: Unexpected token a in JSON at position 0. Please see "
        "the documentation at https://www.bitmex.com/app/wsAPI.")
    assert errors.ws_token_expired_text("order:*") == (
        "Access Token expired for subscription: order:*")
    assert errors.rest_error_body(errors.OVERLOADED) == {"error": {
        "message": "The system is currently overloaded. Please try again later.",
        "name": "HTTPError"}}
    assert errors.is_cancel_state_error(errors.cancel_state_text("Filled"))
    assert errors.is_cancel_state_error(errors.UNABLE_TO_CANCEL_NOT_FOUND)
    assert not errors.is_cancel_state_error(errors.INVALID_ORDER_ID)
