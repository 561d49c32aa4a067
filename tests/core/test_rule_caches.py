"""The packaged rule table's classify caches are emptied before every test (tests/conftest.py),
so no test sees what another classified."""

from __future__ import annotations

import pytest

from venueguard.core.classify import Kind, Outcome, classify, classify_text
from venueguard.core.rules import default_rules


@pytest.mark.parametrize("round_", [1, 2])
def test_each_test_starts_with_empty_default_caches(round_: int) -> None:
    rules = default_rules()
    assert rules.memo == {} and rules.verdicts == {}
    classify(Outcome(status=503, body={"error": {"message": "The system is currently "
                                                 "overloaded. Please try again later.",
                                                 "name": "HTTPError"}}))
    assert classify_text("Rate limit exceeded, retry in 1 seconds.", status=429) is (
        Kind.RATE_LIMITED)
    assert rules.memo and rules.verdicts
