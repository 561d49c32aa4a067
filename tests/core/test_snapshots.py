"""Snapshot manager: cadence, features, missing-snapshot accounting (pure, injected time)."""

from __future__ import annotations

import math

import pytest

from venueguard.core.snapshots import (
    FEATURE_NAMES,
    MarketView,
    MissedSnapshot,
    MissReason,
    Snapshot,
    SnapshotConfig,
    SnapshotManager,
)

FRESH = MarketView(fresh=True, best_bid=100.0, best_ask=101.0, bid_qty=300.0, ask_qty=100.0,
                   data_age_s=0.2, regime="CAUTIOUS", venue_state="DEGRADED")


def only_snapshot(out: list[Snapshot | MissedSnapshot]) -> Snapshot:
    assert len(out) == 1
    snap = out[0]
    assert isinstance(snap, Snapshot)
    return snap


def test_nothing_before_the_first_slot_then_one_snapshot_per_interval() -> None:
    mgr = SnapshotManager("XBTUSD", SnapshotConfig(interval_s=1.0), start=10.0)
    assert mgr.next_deadline() == 11.0
    assert mgr.poll(10.99, FRESH) == []
    first = only_snapshot(mgr.poll(11.0, FRESH))
    assert first.seq == 1 and first.ts == 11.0
    assert mgr.next_deadline() == 12.0
    assert mgr.poll(11.5, FRESH) == []
    second = only_snapshot(mgr.poll(12.2, FRESH))
    assert second.seq == 2
    # The cadence stays fixed on the original grid, not on the late wake-up.
    assert mgr.next_deadline() == 13.0


def test_top_of_book_features() -> None:
    mgr = SnapshotManager("XBTUSD", start=0.0)
    snap = only_snapshot(mgr.poll(1.0, FRESH))
    assert snap.mid == 100.5
    assert snap.spread == 1.0
    assert snap.spread_bps == pytest.approx(1.0 / 100.5 * 10_000)
    assert snap.imbalance == pytest.approx((300 - 100) / 400)
    assert snap.regime == "CAUTIOUS" and snap.venue_state == "DEGRADED"
    assert snap.data_age_s == 0.2
    vec = snap.features()
    assert len(vec) == len(FEATURE_NAMES)
    named = dict(zip(FEATURE_NAMES, vec, strict=True))
    assert named["regime"] == 1.0 and named["venue_state"] == 1.0
    assert named["last_trade_age_s"] == -1.0  # no trade seen yet
    assert all(math.isfinite(x) for x in vec)


def test_rates_over_the_trailing_window() -> None:
    mgr = SnapshotManager("XBTUSD", SnapshotConfig(interval_s=1.0, window_s=4.0), start=0.0)
    for i in range(8):  # 8 trades of 5 contracts in the first 2 s
        mgr.on_trade(5.0, 0.25 * i)
    mgr.on_top(100.0, 101.0, 0.1)  # first top: not churn
    mgr.on_top(100.0, 101.0, 0.2)  # unchanged: not churn
    mgr.on_top(100.5, 101.0, 0.3)  # bid moved
    mgr.on_top(100.5, 101.5, 0.4)  # ask moved
    mgr.on_gap(1.5)
    only_snapshot(mgr.poll(1.0, FRESH))
    snap = only_snapshot(mgr.poll(2.0, FRESH))
    # Window is min(window_s, elapsed) = 2 s so early rates are not diluted.
    assert snap.trade_rate_per_s == pytest.approx(8 / 2.0)
    assert snap.volume_per_s == pytest.approx(40 / 2.0)
    assert snap.churn_per_s == pytest.approx(2 / 2.0)
    assert snap.gap_events == 1
    assert snap.last_trade_age_s == pytest.approx(2.0 - 1.75)
    # Later, everything has left the 4 s window.
    for t in (3.0, 4.0, 5.0, 6.0):
        snap = only_snapshot(mgr.poll(t, FRESH))
    assert snap.trade_rate_per_s == 0.0 and snap.volume_per_s == 0.0
    assert snap.churn_per_s == 0.0 and snap.gap_events == 0
    assert snap.last_trade_age_s == pytest.approx(6.0 - 1.75)


def test_counter_increments_feed_the_same_rates() -> None:
    mgr = SnapshotManager("XBTUSD", SnapshotConfig(interval_s=1.0, window_s=4.0), start=0.0)
    mgr.on_trades(6, 30.0, 0.5, last_trade_at=0.4)
    mgr.on_trades(0, 0.0, 0.6)  # nothing new: ignored
    mgr.on_top_changes(3, 0.5)
    mgr.on_top_changes(-1, 0.6)  # a counter cannot go back: counted as bad input
    mgr.on_trades(-2, 1.0, 0.6)
    snap = only_snapshot(mgr.poll(1.0, FRESH))
    assert snap.trade_rate_per_s == 6.0 and snap.volume_per_s == 30.0
    assert snap.churn_per_s == 3.0
    assert snap.last_trade_age_s == pytest.approx(0.6)
    assert mgr.stats().rejected_inputs == 2


def test_stale_book_is_a_missing_snapshot_not_a_fresh_one() -> None:
    mgr = SnapshotManager("XBTUSD", start=0.0)
    stale = MarketView(fresh=False, best_bid=100.0, best_ask=101.0, data_age_s=12.5)
    out = mgr.poll(1.0, stale)
    assert len(out) == 1 and isinstance(out[0], MissedSnapshot)
    assert out[0].reason is MissReason.STALE_BOOK
    assert "12.500" in out[0].detail
    only_snapshot(mgr.poll(2.0, FRESH))
    stats = mgr.stats()
    assert stats.produced == 1 and stats.missing == 1
    assert stats.missing_by_reason["stale_book"] == 1
    assert stats.missing_ratio == 0.5


def test_a_stricter_data_age_bound_than_the_book_counts_missing() -> None:
    mgr = SnapshotManager("XBTUSD", SnapshotConfig(max_data_age_s=2.0), start=0.0)
    old = MarketView(fresh=True, best_bid=100.0, best_ask=101.0, data_age_s=2.5)
    unknown = MarketView(fresh=True, best_bid=100.0, best_ask=101.0, data_age_s=None)
    ok = MarketView(fresh=True, best_bid=100.0, best_ask=101.0, data_age_s=2.0)
    assert isinstance(mgr.poll(1.0, old)[0], MissedSnapshot)
    assert isinstance(mgr.poll(2.0, unknown)[0], MissedSnapshot)
    assert isinstance(mgr.poll(3.0, ok)[0], Snapshot)
    assert mgr.stats().missing_by_reason["stale_book"] == 2


@pytest.mark.parametrize(
    ("bid", "ask"),
    [(None, 101.0), (100.0, None), (101.0, 101.0), (102.0, 101.0), (math.nan, 101.0),
     (100.0, math.inf), (0.0, 1.0), (-5.0, 1.0)],
)
def test_invalid_book_is_counted_missing(bid: float | None, ask: float | None) -> None:
    mgr = SnapshotManager("XBTUSD", start=0.0)
    out = mgr.poll(1.0, MarketView(fresh=True, best_bid=bid, best_ask=ask))
    assert len(out) == 1 and isinstance(out[0], MissedSnapshot)
    assert out[0].reason is MissReason.INVALID_BOOK
    assert mgr.stats().missing_by_reason["invalid_book"] == 1
    assert mgr.stats().produced == 0


def test_slipped_cadence_counts_every_skipped_slot_in_one_record() -> None:
    mgr = SnapshotManager("XBTUSD", start=0.0)
    only_snapshot(mgr.poll(1.0, FRESH))
    out = mgr.poll(5.5, FRESH)  # slots at 2, 3, 4 passed; slot 5 is taken late
    assert len(out) == 2
    missed, snap = out
    assert isinstance(missed, MissedSnapshot) and missed.reason is MissReason.SLIPPED
    assert missed.slots == 3 and missed.due == 2.0
    assert isinstance(snap, Snapshot)
    assert mgr.next_deadline() == 6.0
    stats = mgr.stats()
    assert stats.produced == 2 and stats.missing == 3
    assert stats.missing_ratio == pytest.approx(3 / 5)


def test_a_long_sleep_yields_one_bounded_record() -> None:
    mgr = SnapshotManager("XBTUSD", start=0.0)
    out = mgr.poll(3600.0, FRESH)
    assert len(out) == 2
    assert isinstance(out[0], MissedSnapshot) and out[0].slots == 3599


def test_bad_inputs_are_counted_and_ignored() -> None:
    mgr = SnapshotManager("XBTUSD", start=0.0)
    mgr.on_trade(-1.0, 0.1)
    mgr.on_trade(math.nan, 0.1)
    mgr.on_top(math.inf, 101.0, 0.2)
    snap = only_snapshot(mgr.poll(1.0, FRESH))
    assert snap.trade_rate_per_s == 0.0 and snap.churn_per_s == 0.0
    assert mgr.stats().rejected_inputs == 3


def test_time_going_backwards_stands_still() -> None:
    mgr = SnapshotManager("XBTUSD", start=0.0)
    mgr.on_trade(1.0, 5.0)
    mgr.on_trade(1.0, 4.0)  # earlier than the previous fact: treated as 5.0
    out = mgr.poll(5.0, FRESH)
    snap = out[-1]
    assert isinstance(snap, Snapshot)
    assert snap.last_trade_age_s == 0.0


def test_imbalance_spikes_and_empty_depth() -> None:
    mgr = SnapshotManager("XBTUSD", SnapshotConfig(imbalance_spike=0.5), start=0.0)
    heavy = MarketView(fresh=True, best_bid=100.0, best_ask=101.0, bid_qty=900.0, ask_qty=100.0)
    empty = MarketView(fresh=True, best_bid=100.0, best_ask=101.0)
    assert only_snapshot(mgr.poll(1.0, heavy)).imbalance == pytest.approx(0.8)
    assert only_snapshot(mgr.poll(2.0, empty)).imbalance == 0.0
    assert mgr.stats().imbalance_spikes == 1


def test_trailing_windows_are_bounded() -> None:
    mgr = SnapshotManager("XBTUSD", SnapshotConfig(max_window_events=100), start=0.0)
    for i in range(10_000):
        mgr.on_trade(1.0, i * 1e-5)
    snap = only_snapshot(mgr.poll(1.0, FRESH))
    assert snap.trade_rate_per_s == 100.0


@pytest.mark.parametrize(
    "kwargs",
    [{"interval_s": 0.0}, {"interval_s": math.nan}, {"interval_s": 2.0, "window_s": 1.0},
     {"imbalance_spike": 0.0}, {"max_window_events": 0}, {"max_data_age_s": 0.0}],
)
def test_config_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SnapshotConfig(**kwargs)  # type: ignore[arg-type]


def test_as_dict_round_trips_every_field() -> None:
    mgr = SnapshotManager("ETHUSD", start=0.0)
    snap = only_snapshot(mgr.poll(1.0, FRESH))
    d = snap.as_dict()
    assert d["symbol"] == "ETHUSD" and d["seq"] == 1
    assert Snapshot(**d) == snap  # type: ignore[arg-type]
