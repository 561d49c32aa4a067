"""Invariant 1 reads the venue's orders as the venue writes them."""

from __future__ import annotations

from typing import Any

from venueguard.app import chaos_checks as checks


def _row(cl: str, text: str) -> dict[str, Any]:
    return {"clOrdID": cl, "orderID": f"id-{cl}", "symbol": "XBTUSD", "text": text,
            "ordStatus": "Canceled" if text.startswith("Canceled") else "New"}


def test_a_resent_intent_is_caught_after_the_venue_prepended_a_cancel_reason() -> None:
    """Regression: the venue prepends a line to ``text`` on each later event, so a resend of
    which one copy was canceled (by the client, or as a crossing post-only order) carried a
    different ``text`` from the other and went uncounted; whether a copy was canceled before
    the check depended on timing, so the broken-client test passed or failed with the load."""
    truth = {"orders": [
        _row("a", "Canceled: Canceled via API.\nchaos-3-4"),
        _row("b", "chaos-3-4"),
        _row("c", "Canceled: Order had execInst of ParticipateDoNotInitiate\nchaos-3-5"),
        _row("d", "Amended price: Amended via API.\nCanceled: Canceled via API.\nchaos-3-5"),
        _row("e", "Canceled: Canceled via API.\nchaos-3-6"),
    ]}
    found = checks.check_no_double(truth, "XBTUSD", "chaos-3-")
    assert [str(v) for v in found] == [
        "invariant 1: intent chaos-3-4 placed 2 times at the venue (clOrdIDs a, b)",
        "invariant 1: intent chaos-3-5 placed 2 times at the venue (clOrdIDs c, d)",
    ]
