"""The packaged rule tables' classify caches are emptied before every test (tests/conftest.py),
so no test sees what another classified."""

from __future__ import annotations

import pytest

from venueguard.core.classify import Outcome, classify
from venueguard.core.rules import default_rules
from venueguard.venues.bitmex.rules import bitmex_rules


@pytest.mark.parametrize("round_", [1, 2])
def test_each_test_starts_with_empty_caches(round_: int) -> None:
    tables = (default_rules(), bitmex_rules())
    for rules in tables:
        assert rules.memo == {} and rules.verdicts == {}
    outcome = Outcome(status=503, body={"error": {"message": "The system is currently "
                                                  "overloaded. Please try again later.",
                                                  "name": "HTTPError"}})
    for rules in tables:
        classify(outcome, rules)
        assert rules.memo and rules.verdicts
