"""Snapshot edges: config bounds and messages, every field of missed snapshots, sub-unit
quantities, window edges, the event caps, rejected inputs and the feature vector's codes."""

from __future__ import annotations

import re

import pytest

from venueguard.core.snapshots import (
    MarketView,
    MissedSnapshot,
    MissReason,
    Snapshot,
    SnapshotConfig,
    SnapshotManager,
)


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


GOOD = MarketView(fresh=True, best_bid=100.0, best_ask=101.0, data_age_s=0.2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"interval_s": 0.0}, "interval_s must be a positive number, got 0.0"),
     ({"window_s": 0.5}, "window_s must be >= interval_s, got 0.5"),
     ({"imbalance_spike": 1.5}, "imbalance_spike must be in (0, 1], got 1.5"),
     ({"max_window_events": 0}, "max_window_events must be >= 1"),
     ({"max_data_age_s": 0.0}, "max_data_age_s must be > 0, got 0.0")],
)
def test_config_errors_name_the_value(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        SnapshotConfig(**kwargs)  # type: ignore[arg-type]


def test_limit_values_are_valid() -> None:
    config = SnapshotConfig(interval_s=1.0, window_s=1.0, imbalance_spike=1.0,
                            max_window_events=1, max_data_age_s=0.5)
    manager = SnapshotManager("XBTUSD", config, start=0.0)
    (snap,) = manager.poll(1.0, GOOD)
    assert isinstance(snap, Snapshot) and snap.seq == 1


def test_sub_unit_prices_and_quantities() -> None:
    manager = SnapshotManager("X", SnapshotConfig(imbalance_spike=0.5), start=0.0)
    view = MarketView(fresh=True, best_bid=0.5, best_ask=0.75, bid_qty=0.5, ask_qty=0.25)
    (snap,) = manager.poll(1.0, view)
    assert isinstance(snap, Snapshot)
    assert (snap.best_bid, snap.best_ask, snap.mid, snap.spread) == (0.5, 0.75, 0.625, 0.25)
    assert snap.imbalance == pytest.approx(1 / 3)


def test_imbalance_exactly_at_the_spike_counts_each_time() -> None:
    manager = SnapshotManager("X", SnapshotConfig(imbalance_spike=0.5), start=0.0)
    view = MarketView(fresh=True, best_bid=100.0, best_ask=101.0, bid_qty=3.0, ask_qty=1.0)
    manager.poll(1.0, view)
    manager.poll(2.0, view)
    assert manager.stats().imbalance_spikes == 2


def test_missed_snapshots_carry_every_field() -> None:
    manager = SnapshotManager("X", SnapshotConfig(interval_s=2.0, window_s=10.0), start=0.0)
    stale = MarketView(fresh=False, best_bid=100.0, best_ask=101.0)
    assert manager.poll(2.0, stale) == [
        MissedSnapshot(2.0, MissReason.STALE_BOOK, 1, "book not fresh (data age unknown)")]
    one_side = MarketView(fresh=True, best_bid=None, best_ask=101.0)
    assert manager.poll(4.0, one_side) == [
        MissedSnapshot(4.0, MissReason.INVALID_BOOK, 1, "bid=None ask=101.0")]
    assert manager.stats().missing_by_reason["invalid_book"] == 1
    manager.poll(4.0, one_side)                          # not due: nothing counted
    crossed = MarketView(fresh=True, best_bid=101.0, best_ask=101.0)
    assert manager.poll(6.0, crossed) == [
        MissedSnapshot(6.0, MissReason.INVALID_BOOK, 1, "crossed book 101.0 >= 101.0")]
    assert manager.poll(13.0, stale) == [
        MissedSnapshot(8.0, MissReason.SLIPPED, 2, "woke 5.000s after the slot"),
        MissedSnapshot(12.0, MissReason.STALE_BOOK, 1, "book not fresh (data age unknown)")]
    assert manager.poll(19.0, stale)[0] == MissedSnapshot(
        14.0, MissReason.SLIPPED, 2, "woke 5.000s after the slot")
    assert manager.stats().missing_by_reason == {"stale_book": 3, "invalid_book": 2,
                                                 "slipped": 4}
    nan_bid = MarketView(fresh=True, best_bid=float("nan"), best_ask=101.0)
    manager.poll(20.0, nan_bid)
    assert manager.stats().missing_by_reason["invalid_book"] == 3


def test_rates_use_the_time_since_start_while_the_window_fills() -> None:
    manager = SnapshotManager("X", SnapshotConfig(interval_s=1.0, window_s=10.0), start=100.0)
    manager.on_top_changes(8, 100.5)
    snap = manager.poll(104.0, GOOD)[-1]                # after three slipped slots
    assert isinstance(snap, Snapshot) and snap.churn_per_s == 2.0


def test_events_exactly_one_window_old_are_dropped() -> None:
    manager = SnapshotManager("X", SnapshotConfig(interval_s=1.0, window_s=2.0), start=0.0)
    manager.on_top_changes(3, 1.0)
    manager.on_trades(5, 7.0, 1.0)
    manager.on_gap(1.0)
    manager.on_top_changes(1, 2.0)
    manager.on_trade(1.0, 2.0)
    manager.on_gap(2.0)
    snap = manager.poll(3.0, GOOD)[-1]                  # after two slipped slots
    assert isinstance(snap, Snapshot)
    assert (snap.churn_per_s, snap.trade_rate_per_s, snap.volume_per_s, snap.gap_events) == (
        0.5, 0.5, 0.5, 1)


def test_the_event_windows_are_capped() -> None:
    manager = SnapshotManager("X", SnapshotConfig(interval_s=1.0, window_s=10.0,
                                                  max_window_events=2), start=0.0)
    for count in (5, 1, 1):
        manager.on_top_changes(count, 0.5)
    manager.on_top_changes(0, 0.5)                       # no change: nothing stored
    for _ in range(3):
        manager.on_gap(0.5)
    (snap,) = manager.poll(1.0, GOOD)
    assert isinstance(snap, Snapshot) and snap.churn_per_s == 2.0 and snap.gap_events == 2


def test_zero_changes_keep_the_window_and_negative_ones_are_rejected() -> None:
    manager = SnapshotManager("X", SnapshotConfig(max_window_events=1), start=0.0)
    manager.on_top_changes(4, 0.5)
    manager.on_top_changes(0, 0.6)
    manager.on_top_changes(-1, 0.7)
    manager.on_top_changes(-2, 0.8)
    (snap,) = manager.poll(1.0, GOOD)
    assert isinstance(snap, Snapshot) and snap.churn_per_s == 4.0
    assert manager.stats().rejected_inputs == 2


def test_one_change_counts() -> None:
    manager = SnapshotManager("X", start=0.0)
    manager.on_top_changes(1, 0.5)
    (snap,) = manager.poll(1.0, GOOD)
    assert isinstance(snap, Snapshot) and snap.churn_per_s == 1.0


def test_a_one_sided_top_is_ignored() -> None:
    manager = SnapshotManager("X", start=0.0)
    manager.on_top(100.0, 101.0, 0.1)
    manager.on_top(None, 101.0, 0.2)
    manager.on_top(100.0, None, 0.3)
    manager.on_top(100.0, 101.0, 0.4)
    (snap,) = manager.poll(1.0, GOOD)
    assert isinstance(snap, Snapshot) and snap.churn_per_s == 0.0
    assert manager.stats().rejected_inputs == 0


def test_trade_sizes_zero_and_below_one_are_valid_negative_volume_is_not() -> None:
    manager = SnapshotManager("X", start=0.0)
    manager.on_trade(0.0, 0.1)
    manager.on_trade(0.5, 0.2)
    manager.on_trades(2, 1.5, 0.6)
    manager.on_trades(1, -1.0, 0.7)
    (snap,) = manager.poll(1.0, GOOD)
    assert isinstance(snap, Snapshot)
    assert (snap.trade_rate_per_s, snap.volume_per_s) == (4.0, 2.0)
    assert snap.last_trade_age_s == pytest.approx(0.4)
    assert manager.stats().rejected_inputs == 1


def test_features_code_unknown_ages_and_names_as_minus_one() -> None:
    manager = SnapshotManager("X", start=0.0)
    view = MarketView(fresh=True, best_bid=100.0, best_ask=101.0, regime="PANIC",
                      venue_state="ON_FIRE")
    (snap,) = manager.poll(1.0, view)
    assert isinstance(snap, Snapshot)
    assert snap.features()[7:] == (-1.0, -1.0, -1.0, -1.0)
    manager.on_trade(1.0, 1.5)
    known = MarketView(fresh=True, best_bid=100.0, best_ask=101.0, data_age_s=0.25,
                       regime="SAFE", venue_state="COOLDOWN")
    (snap,) = manager.poll(2.0, known)
    assert isinstance(snap, Snapshot)
    assert snap.features()[7:] == (0.5, 0.25, 2.0, 2.0)
