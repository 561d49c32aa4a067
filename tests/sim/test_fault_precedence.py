"""Regression: a burst fault layered over a background fault of the same kind must take effect.

The `503-lesson` scenario runs a mild overload_503 all along and sharper ones on bursts; when the
oldest fault won, the bursts never showed.
"""

from venueguard.sim.faults import FaultBook, parse_fault


def test_newest_active_fault_of_a_kind_applies_then_background_resumes() -> None:
    book = FaultBook(seed=7)
    background = book.add(parse_fault({"kind": "overload_503", "probability": 0.03}), now_s=0.0)
    burst = book.add(parse_fault({"kind": "overload_503", "probability": 0.6,
                                  "duration_s": 10}), now_s=5.0)
    assert book.first("overload_503", 6.0) is burst
    book.expire(16.0)
    assert book.first("overload_503", 16.0) is background
    assert book.first("rate_limit_429", 16.0) is None
