"""Retry budget edges: exact error messages and the window's open lower edge for requests."""

from __future__ import annotations

import re

import pytest

from venueguard.core.budget import BudgetConfig, RetryBudget


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ratio": -0.1}, "ratio and min_per_s must be >= 0"),
        ({"min_per_s": -1.0}, "ratio and min_per_s must be >= 0"),
        ({"window_s": 0.0}, "window_s must be > 0"),
    ],
)
def test_bad_config_says_which_bound(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        BudgetConfig(**kwargs)


def test_a_request_exactly_window_old_has_left_the_window() -> None:
    """The window is (now - window_s, now]: a request at 0 no longer pays for retries at 5."""
    budget = RetryBudget(BudgetConfig(ratio=1.0, min_per_s=0.0, window_s=5.0))
    budget.on_request(0.0)
    assert budget.requests_in_window(4.999) == 1
    assert budget.requests_in_window(5.0) == 0
    assert budget.allowance(5.0) == 0.0
    assert not budget.try_retry(5.0)
