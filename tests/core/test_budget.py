"""Retry budget: retries <= ratio * requests in the window + min_per_s * window."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from venueguard.core.budget import BudgetConfig, RetryBudget


def test_minimum_allowance_when_idle() -> None:
    budget = RetryBudget(BudgetConfig(ratio=0.1, min_per_s=0.5, window_s=10.0))
    assert budget.allowance(0.0) == 5.0
    granted = [budget.try_retry(0.0) for _ in range(8)]
    assert granted == [True] * 5 + [False] * 3
    assert budget.denied == 3


def test_requests_buy_retries_in_proportion() -> None:
    budget = RetryBudget(BudgetConfig(ratio=0.2, min_per_s=0.0, window_s=10.0))
    for _ in range(50):
        budget.on_request(1.0)
    assert budget.allowance(1.0) == pytest.approx(10.0)
    assert sum(budget.try_retry(2.0) for _ in range(20)) == 10
    assert budget.retries_in_window(2.0) == 10


def test_window_slides() -> None:
    budget = RetryBudget(BudgetConfig(ratio=0.0, min_per_s=0.1, window_s=10.0))
    assert budget.try_retry(0.0)  # allowance 1
    assert not budget.try_retry(9.99)
    assert budget.retries_in_window(9.99) == 1
    assert budget.can_retry(10.0)  # the first retry left the window (0, 10]
    assert budget.try_retry(10.0)


def test_old_requests_stop_paying() -> None:
    budget = RetryBudget(BudgetConfig(ratio=1.0, min_per_s=0.0, window_s=5.0))
    for t in range(5):
        budget.on_request(float(t))
    assert budget.requests_in_window(4.0) == 5
    assert budget.requests_in_window(7.5) == 2  # requests at 3 and 4 remain
    assert budget.allowance(7.5) == 2.0


def test_retries_do_not_buy_retries() -> None:
    budget = RetryBudget(BudgetConfig(ratio=0.5, min_per_s=0.0, window_s=10.0))
    budget.on_request(0.0)
    budget.on_request(0.0)
    assert [budget.try_retry(0.1) for _ in range(3)] == [True, False, False]
    assert budget.requests_in_window(0.1) == 2


@pytest.mark.parametrize("kwargs", [{"ratio": -0.1}, {"min_per_s": -1.0}, {"window_s": 0.0}])
def test_bad_config_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BudgetConfig(**kwargs)


events = st.lists(
    st.tuples(st.floats(0.0, 3.0), st.sampled_from(["request", "retry"])),
    min_size=1, max_size=300,
)


@given(
    ratio=st.floats(0.0, 1.0),
    min_per_s=st.floats(0.0, 2.0),
    window_s=st.floats(0.5, 30.0),
    steps=events,
)
def test_property_budget_never_exceeded(
    ratio: float, min_per_s: float, window_s: float, steps: list[tuple[float, str]]
) -> None:
    """For any sequence of requests and failed attempts asking to retry, every granted retry
    leaves retries_in_window <= ratio * requests_in_window + min_per_s * window_s."""
    budget = RetryBudget(BudgetConfig(ratio=ratio, min_per_s=min_per_s, window_s=window_s))
    now = 0.0
    requests: list[float] = []
    retries: list[float] = []
    for gap, what in steps:
        now += gap
        if what == "request":
            budget.on_request(now)
            requests.append(now)
            continue
        granted = budget.try_retry(now)
        in_window = [t for t in retries if t > now - window_s]
        reqs = [t for t in requests if t > now - window_s]
        limit = ratio * len(reqs) + min_per_s * window_s
        if granted:
            retries.append(now)
            assert len(in_window) + 1 <= limit + 1e-9
        else:
            assert len(in_window) + 1 > limit - 1e-9  # refused only when it would not fit
