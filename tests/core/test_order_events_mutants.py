"""Order events pinned down: every event's table key, the defaults a bare event carries, and
the exact events built from neutral reports (snapshots, refusals, fills)."""

from __future__ import annotations

import math
import re

import pytest

from venueguard.core.order_events import (
    Acked,
    Ambiguous,
    Amended,
    AmendRejected,
    AmendRequested,
    Canceled,
    CancelRejected,
    CancelRequested,
    ClOrdIDTaken,
    Event,
    Filled,
    NotFoundAtVenue,
    OrderError,
    OrderRejected,
    PartialFill,
    Submitted,
    VenueSnapshot,
    Withdrawn,
    event_kind,
    fill_event,
    refusal_event,
    snapshot_of,
)
from venueguard.core.reports import FillReport, OrderReport, OrderStatus, RefusalReport

ST = OrderStatus


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        (Submitted(), "submitted"),
        (Acked("o-1"), "acked"),
        (OrderRejected("bad price", not_processed=False), "rejected"),
        (OrderRejected("overloaded", not_processed=True), "overloaded"),
        (Ambiguous("timeout"), "ambiguous"),
        (ClOrdIDTaken(), "duplicate"),
        (CancelRequested(), "cancel_requested"),
        (Canceled(), "canceled"),
        (CancelRejected("too late"), "cancel_rejected"),
        (CancelRejected("busy", ST.NEW), "venue_new"),
        (CancelRejected("busy", ST.PARTIALLY_FILLED), "venue_partially_filled"),
        (CancelRejected("gone", ST.FILLED), "cancel_rejected_filled"),
        (CancelRejected("gone", ST.CANCELED), "venue_canceled"),
        (CancelRejected("gone", ST.REJECTED), "venue_rejected"),
        (AmendRequested(qty=5), "amend_requested"),
        (Amended(qty=5), "amended"),
        (AmendRejected("no"), "amend_rejected"),
        (Withdrawn("safe mode"), "withdrawn"),
        (VenueSnapshot(None), "venue_info"),
        (VenueSnapshot(ST.NEW), "venue_new"),
        (VenueSnapshot(ST.PARTIALLY_FILLED), "venue_partially_filled"),
        (VenueSnapshot(ST.FILLED), "venue_filled"),
        (VenueSnapshot(ST.CANCELED), "venue_canceled"),
        (VenueSnapshot(ST.REJECTED), "venue_rejected"),
        (NotFoundAtVenue(1.0, grace_elapsed=False), "absent_in_grace"),
        (NotFoundAtVenue(1.0, grace_elapsed=False, definitive=True), "absent_in_grace"),
        (NotFoundAtVenue(1.0, grace_elapsed=True), "absent"),
        (NotFoundAtVenue(1.0, grace_elapsed=True, definitive=True), "absent_definitive"),
        (Filled("e1", 1.0, 100.0), "filled"),
        (PartialFill("e1", 1.0, 100.0), "partial_fill"),
    ],
)
def test_every_event_has_its_table_key(event: Event, kind: str) -> None:
    assert event_kind(event) == kind


def test_fills_complete_turns_a_partial_fill_into_filled() -> None:
    assert event_kind(PartialFill("e1", 1.0, 100.0), fills_complete=True) == "filled"
    assert event_kind(Filled("e1", 1.0, 100.0), fills_complete=False) == "filled"
    assert event_kind(PartialFill("e1", 1.0, 100.0), fills_complete=False) == "partial_fill"
    # the flag only concerns fills
    assert event_kind(Acked("o"), fills_complete=True) == "acked"


def test_bare_events_carry_no_made_up_values() -> None:
    assert PartialFill("e1", 2.0, 10.0).leaves_qty is None
    assert Canceled().reason == ""
    assert CancelRejected("r").venue_status is None
    assert (AmendRequested().qty, AmendRequested().price) == (None, None)
    assert (Amended().qty, Amended().price) == (None, None)
    snap = VenueSnapshot(ST.NEW)
    assert (snap.order_id, snap.cum_qty, snap.leaves_qty, snap.avg_px, snap.order_qty,
            snap.price) == (None, None, None, None, None, None)
    absent = NotFoundAtVenue(3.0, True)
    assert (absent.checked_at, absent.grace_elapsed, absent.definitive, absent.reason) == (
        3.0, True, False, "")


def test_a_full_order_report_becomes_a_snapshot_field_by_field() -> None:
    report = OrderReport(client_id="c1", venue_id="v1", status=ST.PARTIALLY_FILLED,
                         symbol="XBTUSD", side="Buy", qty=10.0, price=101.5, filled_qty=4.0,
                         leaves_qty=6.0, avg_price=101.25, ts_venue_ms=7, reason="r")
    assert snapshot_of(report) == VenueSnapshot(status=ST.PARTIALLY_FILLED, order_id="v1",
                                                cum_qty=4.0, leaves_qty=6.0, avg_px=101.25,
                                                order_qty=10.0, price=101.5)


def test_a_sparse_order_report_becomes_a_sparse_snapshot() -> None:
    assert snapshot_of(OrderReport("c1", None)) == VenueSnapshot(None)


def test_a_refusal_keeps_a_closed_status_and_the_first_200_characters() -> None:
    reason = "x" * 199 + "yz" + "w" * 50
    event = refusal_event(RefusalReport("c1", "v1", reason, status=ST.FILLED))
    assert event == CancelRejected(reason="x" * 199 + "y", venue_status=ST.FILLED)
    assert len(event.reason) == 200
    short = refusal_event(RefusalReport("c1", None, "already canceled", status=ST.CANCELED))
    assert short == CancelRejected("already canceled", ST.CANCELED)


@pytest.mark.parametrize("status", [ST.NEW, ST.PARTIALLY_FILLED, None])
def test_a_refusal_naming_an_open_or_no_state_names_none(status: OrderStatus | None) -> None:
    event = refusal_event(RefusalReport("c1", "v1", "busy", status=status))
    assert event == CancelRejected("busy", None)


def fill(**changes: object) -> FillReport:
    base: dict[str, object] = {"exec_id": "e1", "client_id": "c1", "venue_id": "v1",
                               "qty": 2.0, "price": 100.0}
    base.update(changes)
    return FillReport(**base)  # type: ignore[arg-type]


def test_a_fill_with_nothing_left_is_filled() -> None:
    assert fill_event(fill(leaves_qty=0.0)) == Filled("e1", 2.0, 100.0)


def test_a_fill_without_leaves_or_with_some_left_is_partial() -> None:
    assert fill_event(fill()) == PartialFill("e1", 2.0, 100.0, None)
    assert fill_event(fill(leaves_qty=3.0)) == PartialFill("e1", 2.0, 100.0, 3.0)
    assert fill_event(fill(qty=0.5, price=-1.5)) == PartialFill("e1", 0.5, -1.5, None)


@pytest.mark.parametrize(
    "changes",
    [{"exec_id": ""}, {"qty": 0.0}, {"qty": -1.0}, {"qty": math.nan}, {"price": math.nan},
     {"price": math.inf}, {"price": -math.inf}],
)
def test_a_fill_without_exec_id_positive_qty_or_price_is_refused(
        changes: dict[str, object]) -> None:
    message = "fill report lacks an exec id, a positive qty or a price"
    with pytest.raises(OrderError, match=f"^{re.escape(message)}$"):
        fill_event(fill(**changes))
