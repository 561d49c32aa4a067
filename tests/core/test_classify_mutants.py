"""classify() on a small hand-built table: status classes, every field of Cloudflare and
transport verdicts, page titles, exact and restricted patterns, rate-limit headers on top of
a cached verdict, and the two bounded caches (the text memo and the verdict cache)."""

from __future__ import annotations

import string

import pytest

from venueguard.core.classify import (
    Action,
    Classification,
    Kind,
    Outcome,
    RateLimit,
    Transport,
    classify,
    classify_text,
)
from venueguard.core.ruletable import HealthConfig, Pattern, ResponseTimeRules, Rule, RuleSet

CACHE_MAX = 4096  # classify's bound on each cache (RuleSet.memo and RuleSet.verdicts)
PAGE_CACHE_CHARS = 4096  # text pages up to this size are cached whole


def table() -> RuleSet:
    """No status table, two Cloudflare codes, one transport mapping, five patterns."""
    rules = {
        Kind.UNKNOWN: Rule(Kind.UNKNOWN, Action.RETRY_ONCE),
        Kind.SOFTWARE_BANNED: Rule(Kind.SOFTWARE_BANNED, Action.BLOCK),
        Kind.RATE_LIMITED: Rule(Kind.RATE_LIMITED, Action.WAIT_RETRY_AFTER),
        Kind.TRANSIENT_NETWORK: Rule(Kind.TRANSIENT_NETWORK, Action.RETRY),
        Kind.AMBIGUOUS_TIMEOUT: Rule(Kind.AMBIGUOUS_TIMEOUT, Action.RECONCILE),
        Kind.SERVER_ERROR: Rule(Kind.SERVER_ERROR, Action.RECONCILE),
        Kind.BAD_REQUEST: Rule(Kind.BAD_REQUEST, Action.FAIL),
        Kind.OK: Rule(Kind.OK, Action.NONE),
    }
    patterns = (
        Pattern(Kind.INSUFFICIENT_BALANCE, "account has insufficient", name="ValidationError"),
        Pattern(Kind.ORDER_REJECTED, "account has insufficient"),
        Pattern(Kind.ORDER_NOT_OPEN, "invalid ordstatus.", match="exact"),
        Pattern(Kind.RATE_LIMITED, "rate limit exceeded", statuses=frozenset({429})),
        Pattern(Kind.OVERLOADED, "rate limit exceeded, try later"),
    )
    return RuleSet(rules=rules, patterns=patterns, status_kinds={},
                   cloudflare_kinds={1010: Kind.SOFTWARE_BANNED, 522: Kind.EDGE_PROTECTION},
                   transport_kinds={Transport.READ_TIMEOUT: Kind.AMBIGUOUS_TIMEOUT},
                   response_time=ResponseTimeRules(), health=HealthConfig())


@pytest.mark.parametrize(
    ("status", "kind"),
    [(199, Kind.UNKNOWN), (200, Kind.OK), (299, Kind.OK), (300, Kind.UNKNOWN),
     (399, Kind.UNKNOWN), (400, Kind.BAD_REQUEST), (499, Kind.BAD_REQUEST),
     (500, Kind.SERVER_ERROR), (599, Kind.SERVER_ERROR), (600, Kind.UNKNOWN)],
)
def test_status_classes_without_a_status_table(status: int, kind: Kind) -> None:
    verdict = classify(Outcome(status=status), table())
    assert verdict == Classification(kind, table().rule(kind).action,
                                     kind is Kind.SERVER_ERROR, status, None, "", None, None,
                                     None)


CF_PAGE = ("<html><head><title>Access denied | used Cloudflare to restrict access</title>"
           "</head><body><h1>Error 1010</h1></body></html>")


@pytest.mark.parametrize("status", [400, 403, None])
def test_cloudflare_verdict_carries_every_field(status: int | None) -> None:
    verdict = classify(Outcome(status=status, body=CF_PAGE), table())
    assert verdict == Classification(Kind.SOFTWARE_BANNED, Action.BLOCK, False, status, None,
                                     "Access denied | used Cloudflare to restrict access",
                                     None, 1010, None)


def test_cloudflare_page_without_a_title_reports_the_code_text() -> None:
    verdict = classify(Outcome(status=403, body="<html><body>error code: 1010</body></html>"),
                       table())
    assert verdict.message == "error code: 1010" and verdict.cloudflare_code == 1010


def test_cloudflare_code_is_not_looked_for_below_400() -> None:
    verdict = classify(Outcome(status=399, body=CF_PAGE), table())
    assert verdict.kind is Kind.UNKNOWN and verdict.cloudflare_code is None


def test_an_html_error_page_reports_its_title() -> None:
    page = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    verdict = classify(Outcome(status=502, body=page), table())
    assert verdict == Classification(Kind.SERVER_ERROR, Action.RECONCILE, True, 502, None,
                                     "502 Bad Gateway", None, None, None)


def test_a_text_page_without_title_reports_its_first_80_characters() -> None:
    text = "  upstream connect failure or disconnect before headers; " + "x" * 100
    verdict = classify(Outcome(status=503, body=text), table())
    assert verdict.message == text[:80].strip()
    assert len(verdict.message) == 78


def test_transport_verdict_carries_every_field() -> None:
    verdict = classify(Outcome(transport=Transport.READ_TIMEOUT, sent=True), table())
    assert verdict == Classification(Kind.AMBIGUOUS_TIMEOUT, Action.RECONCILE, True, None, None,
                                      "read_timeout", None, None, None)


def test_an_unmapped_transport_failure_is_transient_network() -> None:
    verdict = classify(Outcome(transport=Transport.TLS), table())
    assert verdict == Classification(Kind.TRANSIENT_NETWORK, Action.RETRY, False, None, None,
                                     "tls", None, None, None)


@pytest.mark.parametrize("message", ["Invalid ordStatus.", "Invalid ordStatus",
                                     "invalid ordstatus. ", "INVALID ORDSTATUS.."])
def test_exact_pattern_ignores_trailing_periods_and_spaces(message: str) -> None:
    assert classify_text(message, rules=table()) is Kind.ORDER_NOT_OPEN


@pytest.mark.parametrize("message", ["Invalid ordStatus: Filled", ". Invalid ordStatus"])
def test_exact_pattern_needs_the_whole_text(message: str) -> None:
    assert classify_text(message, rules=table()) is Kind.UNKNOWN


def test_a_pattern_for_another_error_name_is_skipped_not_the_end_of_the_scan() -> None:
    text = "Account has insufficient Available Balance"
    assert classify_text(text, name="ValidationError", rules=table()) is Kind.INSUFFICIENT_BALANCE
    assert classify_text(text, name="HTTPError", rules=table()) is Kind.ORDER_REJECTED
    assert classify_text(text, rules=table()) is Kind.ORDER_REJECTED


def test_a_status_restricted_pattern_needs_that_status() -> None:
    assert classify_text("Rate limit exceeded", status=429, rules=table()) is Kind.RATE_LIMITED
    assert classify_text("Rate limit exceeded", rules=table()) is Kind.UNKNOWN
    assert classify_text("Rate limit exceeded", status=400, rules=table()) is Kind.UNKNOWN
    # a pattern for another status is skipped, and the scan goes on to the next one
    later = "Rate limit exceeded, try later"
    assert classify_text(later, status=400, rules=table()) is Kind.OVERLOADED
    assert classify_text(later, status=429, rules=table()) is Kind.RATE_LIMITED


HEADERS = {"x-ratelimit-limit": "120", "x-ratelimit-remaining": "7",
           "x-ratelimit-reset": "1700000060"}
WALL_MS = 1_700_000_000_000


def test_rate_limit_headers_keep_every_field_of_the_cached_verdict() -> None:
    rules = table()
    outcome = Outcome(status=400, headers=HEADERS, wall_ms=WALL_MS,
                      body={"error": {"message": "Account has insufficient funds",
                                      "name": "ValidationError"}})
    first = classify(outcome, rules)
    assert first == Classification(Kind.INSUFFICIENT_BALANCE, Action.RETRY_ONCE, False, 400,
                                   None, "Account has insufficient funds", "ValidationError",
                                   None, RateLimit(120, 7, 1700000060.0, None))
    assert classify(outcome, rules) == first


def test_rate_limit_headers_keep_the_cloudflare_code() -> None:
    verdict = classify(Outcome(status=403, body=CF_PAGE, headers=HEADERS, wall_ms=WALL_MS),
                       table())
    assert verdict.cloudflare_code == 1010 and verdict.rate_limit == RateLimit(
        120, 7, 1700000060.0, None)
    assert verdict.retry_after_s is None


def test_a_reset_header_gives_no_retry_delay_to_a_success() -> None:
    verdict = classify(Outcome(status=200, body=[], headers=HEADERS, wall_ms=WALL_MS), table())
    assert verdict.kind is Kind.OK and verdict.retry_after_s is None


def test_a_rate_limited_verdict_waits_for_the_reset() -> None:
    outcome = Outcome(status=429, headers=HEADERS, wall_ms=WALL_MS,
                      body={"error": {"message": "Rate limit exceeded", "name": "HTTPError"}})
    assert classify(outcome, table()).retry_after_s == 60.0


# ------------------------------------------------------------------- the two bounded caches
def test_a_repeated_outcome_is_answered_from_the_verdict_cache() -> None:
    rules = table()
    for outcome in (Outcome(status=400, body={"error": {"message": "x", "name": "y"}}),
                    Outcome(status=502, body="<title>Bad gateway</title>"),
                    Outcome(status=502, body="p" * PAGE_CACHE_CHARS),
                    Outcome(transport=Transport.READ_TIMEOUT, sent=True),
                    Outcome(transport=Transport.READ_TIMEOUT, sent=False)):
        assert classify(outcome, rules) is classify(outcome, rules)


def test_a_page_longer_than_the_page_limit_is_not_cached() -> None:
    rules = table()
    page = "q" * (PAGE_CACHE_CHARS + 1)
    assert classify(Outcome(status=502, body=page), rules).kind is Kind.SERVER_ERROR
    assert rules.verdicts == {}


def test_the_verdict_cache_is_bounded() -> None:
    rules = table()
    largest = 0
    for i in range(CACHE_MAX + 10):
        classify(Outcome(status=400, body={"error": {"message": f"m{i}", "name": "n"}}), rules)
        largest = max(largest, len(rules.verdicts))
    assert largest == CACHE_MAX


def test_the_text_memo_answers_a_remembered_text_and_its_digit_variants() -> None:
    rules = table()
    rules.memo[(None, None, "remembered")] = Kind.DNS
    rules.memo[(None, None, "balance # too low")] = Kind.AMOUNT_TOO_LOW
    rules.memo[(None, None, "balance 7 too low")] = Kind.INSUFFICIENT_BALANCE
    assert classify_text("remembered", rules=rules) is Kind.DNS
    assert classify_text("balance 12 too low", rules=rules) is Kind.AMOUNT_TOO_LOW
    assert classify_text("balance 7 too low", rules=rules) is Kind.INSUFFICIENT_BALANCE


def word(i: int) -> str:
    letters = string.ascii_lowercase
    out = ""
    while True:
        i, r = divmod(i, 26)
        out += letters[r]
        if i == 0:
            return out


def test_the_text_memo_holds_each_new_text_and_shape_under_its_bound() -> None:
    """Every text is remembered with its digit shape; the memo never exceeds its bound."""
    rules = table()
    for i in range(CACHE_MAX + 10):
        classify_text(f"{word(i)} 1", rules=rules)
        assert rules.memo[(None, None, f"{word(i)} 1")] is Kind.UNKNOWN
        assert rules.memo[(None, None, f"{word(i)} #")] is Kind.UNKNOWN
        assert len(rules.memo) <= CACHE_MAX


def test_digit_variants_of_one_shape_fill_the_memo_up_to_its_bound() -> None:
    rules = table()
    largest = 0
    for i in range(CACHE_MAX + 10):
        classify_text(f"balance {i} too low", rules=rules)
        assert rules.memo[(None, None, f"balance {i} too low")] is Kind.UNKNOWN
        largest = max(largest, len(rules.memo))
    assert largest == CACHE_MAX


def test_without_a_table_the_packaged_default_rules_classify() -> None:
    verdict = classify(Outcome(status=429))
    assert verdict.kind is Kind.RATE_LIMITED and verdict.status == 429
    assert classify(Outcome(status=200)).kind is Kind.OK
