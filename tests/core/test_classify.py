"""classify(): every outcome gets a kind, the rule table's action, and its details."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bitmex_rules_shim import classify, classify_text
from venueguard.core import classify as classify_module
from venueguard.core.classify import (
    Action,
    Kind,
    Outcome,
    RateLimit,
    Transport,
)
from venueguard.core.rules import default_rules, parse_rules
from venueguard.venues.bitmex import errors as bx
from venueguard.venues.bitmex import rules as bitmex_rules_module
from venueguard.venues.bitmex.rules import bitmex_rules


def bitmex_error(status: int, message: str, name: str = "HTTPError") -> Outcome:
    return Outcome(status=status, body={"error": {"message": message, "name": name}})


CF_522 = (
    "<!DOCTYPE html>\n<html><head><title>example.com | 522: Connection timed out</title></head>"
    "<body><span>Error code 522</span><p>The initial connection between Cloudflare's network "
    "and the origin web server timed out.</p></body></html>"
)
CF_1010 = (
    "<html><head><title>Access denied | www.bitmex.com used Cloudflare to restrict access"
    "</title></head><body><h1>Error 1010</h1><p>The owner of this website has banned your access"
    " based on your browser's signature.</p></body></html>"
)


@pytest.mark.parametrize(
    ("outcome", "kind", "action", "ambiguous"),
    [
        (Outcome(status=200, body=[{"orderID": "x"}]), Kind.OK, Action.NONE, False),
        (Outcome(transport=Transport.DNS), Kind.DNS, Action.COOLDOWN, False),
        (Outcome(transport=Transport.CONNECTION_REFUSED), Kind.TRANSIENT_NETWORK, Action.RETRY,
         False),
        (Outcome(transport=Transport.CONNECT_TIMEOUT, sent=False), Kind.TRANSIENT_NETWORK,
         Action.RETRY, False),
        (Outcome(transport=Transport.READ_TIMEOUT, sent=True), Kind.AMBIGUOUS_TIMEOUT,
         Action.RECONCILE, True),
        (Outcome(transport=Transport.RESET_AFTER_SEND), Kind.AMBIGUOUS_TIMEOUT, Action.RECONCILE,
         True),
        (Outcome(transport=Transport.CONNECTION_RESET, sent=True), Kind.AMBIGUOUS_TIMEOUT,
         Action.RECONCILE, True),
        (Outcome(transport=Transport.CONNECTION_RESET, sent=False), Kind.TRANSIENT_NETWORK,
         Action.RETRY, False),
        (Outcome(status=502, body=bx.BAD_GATEWAY_HTML), Kind.AMBIGUOUS_TIMEOUT, Action.RECONCILE,
         True),
        (Outcome(status=504, body=bx.GATEWAY_TIMEOUT_HTML), Kind.AMBIGUOUS_TIMEOUT,
         Action.RECONCILE, True),
        (bitmex_error(503, bx.OVERLOADED), Kind.OVERLOADED, Action.BACKOFF, False),
        (bitmex_error(429, bx.rate_limit_text(1), "RateLimitError"), Kind.RATE_LIMITED,
         Action.WAIT_RETRY_AFTER, False),
        (Outcome(status=403, body="<html><body>Access Denied</body></html>"), Kind.FORBIDDEN,
         Action.COOLDOWN, False),
        (Outcome(status=522, body=CF_522), Kind.EDGE_PROTECTION, Action.COOLDOWN, False),
        (Outcome(status=403, body=CF_1010), Kind.SOFTWARE_BANNED, Action.BLOCK, False),
        (Outcome(status=403, body="error code: 1006"), Kind.IP_BANNED, Action.BLOCK, False),
        (Outcome(status=403, body=b"error code: 1007"), Kind.IP_BANNED, Action.BLOCK, False),
        (Outcome(status=403, body="error code: 1008"), Kind.IP_BANNED, Action.BLOCK, False),
        (bitmex_error(401, bx.INVALID_API_KEY), Kind.INVALID_CREDENTIALS, Action.DISCONNECT,
         False),
        (bitmex_error(401, bx.SIGNATURE_NOT_VALID), Kind.INVALID_CREDENTIALS, Action.DISCONNECT,
         False),
        (bitmex_error(403, bx.KEY_DISABLED), Kind.INVALID_CREDENTIALS, Action.DISCONNECT, False),
        (bitmex_error(401, bx.MISSING_API_KEY), Kind.INVALID_CREDENTIALS, Action.DISCONNECT,
         False),
        (bitmex_error(400, bx.expired_text(1728606269)), Kind.NONCE_EXPIRED, Action.RESYNC,
         False),
        (bitmex_error(400, "Nonce is not increasing. This nonce: 2, last nonce: 3"),
         Kind.NONCE_EXPIRED, Action.RESYNC, False),
        (bitmex_error(400, bx.INVALID_ORDER_ID), Kind.ORDER_REJECTED, Action.FAIL, False),
        (bitmex_error(400, bx.invalid_ord_status_text("Filled")), Kind.ORDER_REJECTED,
         Action.FAIL, False),
        (bitmex_error(400, bx.INVALID_PRICE_TICK), Kind.ORDER_REJECTED, Action.FAIL, False),
        (bitmex_error(400, bx.UNSUPPORTED_ORD_TYPE), Kind.ORDER_TYPE_DISABLED, Action.WARN,
         False),
        (bitmex_error(400, "Order value is below the minimum of 1 XBT"), Kind.AMOUNT_TOO_LOW,
         Action.WARN, False),
        (bitmex_error(400, "Value of positions and orders exceeds account Risk Limit"),
         Kind.AMOUNT_TOO_HIGH, Action.WARN, False),
        (bitmex_error(400, bx.insufficient_balance_text(575375000), "ValidationError"),
         Kind.INSUFFICIENT_BALANCE, Action.FAIL, False),
        (bitmex_error(400, bx.INVALID_SYMBOL), Kind.UNKNOWN_SYMBOL, Action.FAIL, False),
        (Outcome(status=400, body=bx.ws_error_frame(400, bx.ws_unknown_table_text("tradeBin5dm"))),
         Kind.UNKNOWN_SYMBOL, Action.FAIL, False),
        (bitmex_error(400, bx.DUPLICATE_CLORDID), Kind.DUPLICATE_CLORDID, Action.RECONCILE,
         False),
        (bitmex_error(404, bx.NOT_FOUND), Kind.NOT_FOUND, Action.FAIL, False),
        (Outcome(status=500, body={"error": {"message": "Server Error", "name": "HTTPError"}}),
         Kind.SERVER_ERROR, Action.RECONCILE, True),
        (Outcome(status=418, body="teapot"), Kind.BAD_REQUEST, Action.FAIL, False),
        (Outcome(), Kind.UNKNOWN, Action.RETRY_ONCE, False),
        (Outcome(status=302), Kind.UNKNOWN, Action.RETRY_ONCE, False),
    ],
    ids=lambda v: v.value if isinstance(v, Kind) else None,
)
def test_outcome_kinds(outcome: Outcome, kind: Kind, action: Action, ambiguous: bool) -> None:
    verdict = classify(outcome)
    assert verdict.kind is kind
    assert verdict.action is action
    assert verdict.ambiguous is ambiguous


def test_overloaded_is_retryable_not_ambiguous_and_waits_at_least_500_ms() -> None:
    verdict = classify(bitmex_error(503, bx.OVERLOADED))
    assert verdict.retryable and not verdict.ambiguous
    rule = verdict.rule()
    assert rule.min_delay_s >= 0.5 and rule.delay_factor > 1.0


def test_ambiguous_outcomes_are_not_blindly_retried() -> None:
    for outcome in (Outcome(transport=Transport.READ_TIMEOUT), Outcome(status=502),
                    Outcome(status=504)):
        verdict = classify(outcome)
        assert verdict.ambiguous and not verdict.retryable


def test_cloudflare_code_beats_status_and_is_reported() -> None:
    verdict = classify(Outcome(status=403, body=CF_1010))
    assert verdict.cloudflare_code == 1010
    assert "Cloudflare" in verdict.message


def test_cloudflare_code_ignored_inside_bitmex_json() -> None:
    verdict = classify(bitmex_error(400, "Invalid price: error code 1010 in upstream"))
    assert verdict.kind is Kind.ORDER_REJECTED and verdict.cloudflare_code is None


def test_rate_limit_headers_any_case_and_retry_after() -> None:
    headers = {"X-RateLimit-Limit": "120", "x-ratelimit-remaining": "0",
               "X-Ratelimit-Reset": "1551300384", "x-ratelimit-remaining-1s": "3",
               "Retry-After": "2"}
    verdict = classify(Outcome(status=429, headers=headers,
                               body=json.dumps(bx.rest_error_body(bx.rate_limit_text(2),
                                                                   bx.NAME_RATE_LIMIT))))
    assert verdict.kind is Kind.RATE_LIMITED
    assert verdict.retry_after_s == 2.0
    assert verdict.rate_limit is not None
    assert (verdict.rate_limit.limit, verdict.rate_limit.remaining,
            verdict.rate_limit.reset_epoch_s, verdict.rate_limit.remaining_1s) == (
        120, 0, 1551300384.0, 3)


class CaseInsensitive(dict[str, str]):
    """Like aiohttp's CIMultiDict: any spelling finds the header."""

    def __init__(self, items: dict[str, str]) -> None:
        super().__init__({k.lower(): v for k, v in items.items()})

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


def test_case_insensitive_header_mapping() -> None:
    headers = CaseInsensitive({"X-RATELIMIT-REMAINING": "4", "RETRY-AFTER": "3"})
    verdict = classify(Outcome(status=429, headers=headers))
    assert verdict.retry_after_s == 3.0
    assert verdict.rate_limit is not None and verdict.rate_limit.remaining == 4


def test_unreadable_rate_limit_headers_become_none() -> None:
    verdict = classify(Outcome(status=200, headers={"x-ratelimit-remaining": "lots",
                                                    "Retry-After": "soon"}))
    assert verdict.kind is Kind.OK and verdict.retry_after_s is None
    assert verdict.rate_limit is not None and verdict.rate_limit.remaining is None


def test_retry_after_http_date_needs_wall_clock() -> None:
    headers = {"Retry-After": "Wed, 21 Oct 2026 07:28:10 GMT"}
    wall_ms = 1792567685000  # 2026-10-21T07:28:05Z
    verdict = classify(Outcome(status=503, headers=headers, wall_ms=wall_ms))
    assert verdict.retry_after_s == pytest.approx(5.0)
    assert classify(Outcome(status=503, headers=headers)).retry_after_s is None
    past = classify(Outcome(status=503, headers=headers, wall_ms=wall_ms + 60_000))
    assert past.retry_after_s == 0.0
    assert classify(Outcome(status=429, headers={"Retry-After": "-3"})).retry_after_s == 0.0


def test_retry_after_from_ws_meta_text_and_reset_header() -> None:
    frame = {"status": 429, "error": bx.rate_limit_text(3), "meta": {"retryAfter": 4}}
    assert classify(Outcome(status=429, body=frame)).retry_after_s == 4.0
    text_only = classify(bitmex_error(429, bx.rate_limit_text(7), bx.NAME_RATE_LIMIT))
    assert text_only.retry_after_s == 7.0
    reset = classify(Outcome(status=429, headers={"x-ratelimit-reset": "1000"},
                             body="slow down", wall_ms=997_500))
    assert reset.kind is Kind.RATE_LIMITED and reset.retry_after_s == pytest.approx(2.5)
    assert classify(Outcome(status=429, body="slow down")).retry_after_s is None


def test_cancel_rows_with_error_mean_order_not_open() -> None:
    body = [{"orderID": "a", "error": bx.cancel_state_text("Canceled")}]
    verdict = classify(Outcome(status=200, body=body))
    assert verdict.kind is Kind.ORDER_NOT_OPEN
    assert verdict.message.startswith("Unable to cancel order")


@pytest.mark.parametrize(
    "body",
    [
        b"{\"error\": {\"message\": \"Invalid pri",  # truncated JSON
        "{not json at all",
        b"\xff\xfe\x00garbage",
        12345,
        ["a", 1, None],
        {"error": 5},
        {"error": {"message": None, "name": 7}},
        "x" * 5_000_000,  # hostile size
        b"[" * 200_000,
    ],
    ids=["truncated", "bad-json", "bad-utf8", "int", "list", "error-int", "error-null",
         "huge-text", "huge-brackets"],
)
def test_bad_bodies_never_raise(body: Any) -> None:
    verdict = classify(Outcome(status=400, body=body))
    assert verdict.kind in (Kind.BAD_REQUEST, Kind.ORDER_REJECTED)
    assert len(verdict.message) <= 300


def test_classify_text_for_rows_and_frames() -> None:
    assert classify_text(bx.UNABLE_TO_CANCEL_NOT_FOUND) is Kind.ORDER_NOT_OPEN
    assert classify_text(bx.ws_already_subscribed_text("trade:XBTUSD")) is Kind.ALREADY_SUBSCRIBED
    assert classify_text(bx.WS_MAX_PENDING, status=503) is Kind.OVERLOADED
    assert classify_text("something nobody ever said") is Kind.UNKNOWN


def test_error_name_alone_can_decide() -> None:
    verdict = classify(bitmex_error(400, "slow down please", bx.NAME_RATE_LIMIT))
    assert verdict.kind is Kind.RATE_LIMITED and verdict.error_name == "RateLimitError"


def test_user_table_replaces_patterns() -> None:
    custom = parse_rules(
        'replace_patterns = true\n[[patterns]]\nkind = "order_type_disabled"\n'
        'text = "market orders are off"\n',
        "custom.toml",
        base=default_rules(),
    )
    assert classify(bitmex_error(400, "Market orders are OFF today"), custom).kind is \
        Kind.ORDER_TYPE_DISABLED
    # the default texts are gone from this table, so the status decides
    assert classify(bitmex_error(400, bx.DUPLICATE_CLORDID), custom).kind is Kind.BAD_REQUEST
    assert classify(bitmex_error(400, bx.DUPLICATE_CLORDID)).kind is Kind.DUPLICATE_CLORDID


def test_memo_stays_bounded() -> None:
    core = parse_rules(
        (Path(classify_module.__file__).parent / "rules_default.toml").read_text("utf-8"))
    rules = parse_rules((Path(bitmex_rules_module.__file__).parent / "rules.toml")
                        .read_text("utf-8"), base=core)  # a fresh table: an empty memo
    for i in range(classify_module._CACHE_MAX + 50):
        classify(bitmex_error(400, f"Invalid price {i}"), rules)
    assert 0 < len(rules.memo) <= classify_module._CACHE_MAX
    assert classify(bitmex_error(400, "Invalid price 1"), rules).kind is Kind.ORDER_REJECTED


def test_every_shared_bitmex_error_text_has_a_kind() -> None:
    texts = [value for name, value in vars(bx).items()
             if name.isupper() and isinstance(value, str) and not name.startswith(("NAME_", "WS_D"))
             and not name.endswith("_HTML") and not name.endswith("_NOTES")
             and not name.endswith("_NOTE")]
    texts += [bx.rate_limit_text(1), bx.invalid_ord_status_text("Canceled"), bx.expired_text(1),
              bx.cancel_state_text("Filled"), bx.insufficient_balance_text(5),
              bx.required_arg_text("symbol"), bx.ws_unknown_table_text("x"),
              bx.ws_already_subscribed_text("x"), bx.ws_decode_error_text(),
              bx.ws_token_expired_text("order:*")]
    unknown = [t for t in texts if classify_text(t) is Kind.UNKNOWN]
    assert unknown == []


# --- conformance with the real captures -------------------------------------------------------

EXPECTED_BY_STATUS = {
    503: Kind.OVERLOADED, 429: Kind.RATE_LIMITED, 401: Kind.INVALID_CREDENTIALS,
    404: Kind.NOT_FOUND, 502: Kind.AMBIGUOUS_TIMEOUT,
}


TRANSPORT_TEXTS = {"nxdomain": Transport.DNS, "econnrefused": Transport.CONNECTION_REFUSED,
                   "timeout": Transport.READ_TIMEOUT, "closed": Transport.CONNECTION_RESET}


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def test_rest_error_catalog_conformance(bitmex_fixtures: Path) -> None:
    entries = _lines(bitmex_fixtures / "fixtures" / "rest_error_catalog.jsonl")
    assert len(entries) >= 15
    for entry in entries:
        verdict = classify(Outcome(status=entry["status"], headers=entry["headers"],
                                   body=entry["body"]))
        assert verdict.kind not in (Kind.UNKNOWN, Kind.OK), entry
        expected = EXPECTED_BY_STATUS.get(entry["status"])
        if expected is not None:
            assert verdict.kind is expected, entry
        if entry["status"] == 429:
            assert verdict.retry_after_s == 1.0


@pytest.mark.parametrize("name", ["ex_bitmex_rest_cassettes_2018-2019.jsonl",
                                  "tai_bitmex_order_cassettes_2018-2019.jsonl"])
def test_cassette_error_responses_conformance(bitmex_fixtures: Path, name: str) -> None:
    checked = 0
    for record in _lines(bitmex_fixtures / "fixtures" / name):
        response = record["response"]
        if response["status"] is None:  # a recorded transport failure, e.g. "nxdomain"
            failure = TRANSPORT_TEXTS.get(str(response.get("body")), Transport.OTHER)
            verdict = classify(Outcome(transport=failure))
            assert verdict.kind is not Kind.UNKNOWN, record["cassette"]
            if failure is Transport.DNS:
                assert verdict.kind is Kind.DNS
            checked += 1
            continue
        if response["status"] < 400:
            continue
        verdict = classify(Outcome(status=response["status"], headers=response.get("headers"),
                                   body=response.get("body")))
        assert verdict.kind is not Kind.UNKNOWN, record["cassette"]
        if record.get("synthetic"):
            assert verdict.kind is Kind.BAD_REQUEST  # made-up texts: refused, not retried
        else:
            assert verdict.kind is not Kind.BAD_REQUEST, record["cassette"]
        checked += 1
    assert checked >= 5


def test_ws_error_frames_conformance(bitmex_fixtures: Path) -> None:
    frames = [e["msg"] for e in _lines(bitmex_fixtures / "fixtures" /
                                       "ws_control_and_error_messages.jsonl")
              if "error" in e["msg"]]
    assert len(frames) >= 8
    for frame in frames:
        verdict = classify(Outcome(status=frame["status"], body=frame))
        assert verdict.kind is not Kind.UNKNOWN, frame


def test_odd_corners() -> None:
    garbage_date = classify(Outcome(status=503, headers={"Retry-After": "Someday"}, wall_ms=1))
    assert garbage_date.retry_after_s is None and garbage_date.kind is Kind.OVERLOADED
    assert classify(Outcome(status=400, body={"result": 1})).kind is Kind.BAD_REQUEST
    assert classify(Outcome(status=599)).kind is Kind.SERVER_ERROR
    assert classify(Outcome(status=200, body=[1, {"error": 3}, "x"])).kind is Kind.OK
    unknown_code = classify(Outcome(status=403, body="<html>Error 1234</html>"))
    assert unknown_code.kind is Kind.FORBIDDEN and unknown_code.cloudflare_code is None
    assert classify(Outcome(status=429, headers={"x-ratelimit-limit": "1.5e2"})).rate_limit == \
        RateLimit(limit=150)
    assert classify(Outcome(status=200, headers={"x-ratelimit-reset": "nan"})).rate_limit == \
        RateLimit()


def test_shape_memo_shares_texts_that_differ_in_numbers() -> None:
    rules = bitmex_rules()
    first = classify_text("Account has insufficient Available Balance, 17 XBt required",
                          rules=rules)
    assert first is Kind.INSUFFICIENT_BALANCE
    assert (None, None, "Account has insufficient Available Balance, # XBt required") in rules.memo


def test_patterns_with_digits_disable_shape_sharing() -> None:
    custom = parse_rules('[[patterns]]\nkind = "forbidden"\ntext = "code 42"\n')
    assert not custom.digit_free
    assert classify_text("code 42", rules=custom) is Kind.FORBIDDEN
    assert classify_text("code 43", rules=custom) is Kind.UNKNOWN


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)


@given(
    status=st.one_of(st.none(), st.integers(-5, 1200)),
    body=st.one_of(json_values, st.binary(max_size=200), st.text(max_size=200),
                   st.builds(lambda m, n: {"error": {"message": m, "name": n}}, json_values,
                             json_values)),
    headers=st.dictionaries(st.sampled_from(["Retry-After", "x-ratelimit-reset",
                                             "x-ratelimit-remaining", "X-RateLimit-Limit",
                                             "Content-Type"]),
                            st.text(max_size=30), max_size=5),
    wall_ms=st.one_of(st.none(), st.integers(0, 2**41)),
)
def test_property_classify_never_raises(status: int | None, body: object,
                                        headers: dict[str, str], wall_ms: int | None) -> None:
    verdict = classify(Outcome(status=status, headers=headers, body=body, wall_ms=wall_ms))
    assert isinstance(verdict.kind, Kind) and isinstance(verdict.action, Action)
    assert len(verdict.message) <= 300
    assert verdict.retry_after_s is None or verdict.retry_after_s >= 0
    assert verdict.ambiguous == (verdict.kind in (Kind.AMBIGUOUS_TIMEOUT, Kind.SERVER_ERROR))


def test_core_table_names_no_venue_text_and_bitmex_brings_its_own() -> None:
    """The packaged default table is venue-neutral (kinds, actions, statuses, no texts); BitMEX's
    error texts come from its adapter's table, merged over it."""
    core = default_rules()
    assert core.patterns == ()
    assert classify_text(bx.DUPLICATE_CLORDID, rules=core) is Kind.UNKNOWN
    assert classify_text(bx.DUPLICATE_CLORDID, rules=bitmex_rules()) is Kind.DUPLICATE_CLORDID
    assert bitmex_rules().rules == core.rules  # same actions: BitMEX adds texts only
