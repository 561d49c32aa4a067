"""Liveness: heartbeat and pong deadline, per-channel freshness, timestamp and order checks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from venueguard.core.freshness import FreshnessConfig
from venueguard.core.liveness import (
    FreshDecision,
    Liveness,
    LivenessConfig,
    SendPing,
    StaleDecision,
    Verdict,
)

BOOK = "orderBookL2:XBTUSD"


def make(now: float = 0.0, **kwargs: object) -> Liveness:
    return Liveness(LivenessConfig(**kwargs), now)  # type: ignore[arg-type]


def test_ping_after_five_seconds_of_silence_not_before() -> None:
    live = make(0.0)
    assert live.next_deadline() == 5.0
    assert live.poll(4.999) == []
    assert live.poll(5.0) == [SendPing(5.0)]
    assert live.poll(6.0) == []  # one ping outstanding at a time
    assert live.counters.pings_sent == 1


def test_pong_deadline_five_seconds_after_ping() -> None:
    live = make(0.0)
    live.poll(5.0)
    assert live.next_deadline() == 10.0
    assert live.poll(9.999) == []
    decisions = live.poll(10.0)
    assert decisions == [StaleDecision("pong_timeout", None, 5.0, 10.0, 5.0)]
    assert live.poll(20.0) == []  # flagged once
    assert live.counters.pong_timeouts == 1
    assert live.next_deadline() is None


def test_pong_answers_the_ping_and_restarts_the_silence_timer() -> None:
    live = make(0.0)
    live.poll(5.0)
    live.on_pong(5.2)
    assert live.poll(10.0) == []
    assert live.next_deadline() == pytest.approx(10.2)
    assert live.poll(10.2) == [SendPing(10.2)]
    assert live.counters.pongs == 1


def test_any_inbound_frame_answers_an_outstanding_ping() -> None:
    live = make(0.0)
    live.poll(5.0)
    live.on_inbound(6.0)
    assert live.poll(10.5) == []
    assert live.poll(11.0) == [SendPing(11.0)]


def test_stall_with_pongs_still_answered_is_detected() -> None:
    # ws_stall: the server answers every ping but sends no data
    live = make(0.0, max_data_age_s=12.0)
    live.on_subscribed(BOOK, 0.0)
    live.on_data(BOOK, 1.0)
    flagged: list[StaleDecision] = []
    t = 1.0
    while t < 20.0:
        t += 0.5
        for decision in live.poll(t):
            if isinstance(decision, SendPing):
                live.on_pong(t + 0.1)
            elif isinstance(decision, StaleDecision):
                flagged.append(decision)
    assert [(s.reason, s.channel, s.at) for s in flagged] == [("data_age", BOOK, 13.0)]
    assert live.counters.pong_timeouts == 0 and live.counters.stalls == 1


def test_half_open_connection_times_out_on_pong() -> None:
    live = make(0.0)
    live.on_subscribed(BOOK, 0.0)
    reasons = [d.reason for t in range(1, 12) for d in live.poll(float(t))
               if isinstance(d, StaleDecision)]
    assert reasons == ["pong_timeout"]


def test_fresh_after_a_stall_and_flag_once_per_stall() -> None:
    live = make(0.0, max_data_age_s=10.0, ping_after_s=100.0)
    live.on_subscribed(BOOK, 0.0)
    assert [d.reason for d in live.poll(10.0) if isinstance(d, StaleDecision)] == ["data_age"]
    assert live.poll(15.0) == []
    assert live.on_data(BOOK, 16.0) is Verdict.OK
    assert live.next_deadline() == 16.0  # a queued decision is due at once
    assert live.poll(16.0) == [FreshDecision(BOOK, 16.0)]
    assert [d.at for d in live.poll(26.0) if isinstance(d, StaleDecision)] == [26.0]
    assert live.counters.stalls == 2


def test_quiet_and_per_channel_max_age() -> None:
    live = make(0.0, max_data_age_s=10.0, ping_after_s=1000.0,
                channel_max_age_s={"trade": 60.0, "quote:XBTUSD": 3.0})
    for channel in (BOOK, "trade:XBTUSD", "quote:XBTUSD", "order", "position:XBTUSD"):
        live.on_subscribed(channel, 0.0)
    assert live.config.max_age_for("order") is None
    stale_at: dict[str, float] = {}
    for t in range(1, 200):
        for d in live.poll(float(t)):
            if isinstance(d, StaleDecision) and d.channel is not None:
                stale_at[d.channel] = float(t)
    assert stale_at == {"quote:XBTUSD": 3.0, BOOK: 10.0, "trade:XBTUSD": 60.0}


def test_unsubscribed_channel_is_not_watched() -> None:
    live = make(0.0, max_data_age_s=5.0, ping_after_s=1000.0)
    live.on_subscribed(BOOK, 0.0)
    live.on_unsubscribed(BOOK)
    assert live.poll(100.0) == [] and live.channels == ()


def test_data_on_an_unannounced_channel_starts_watching_it() -> None:
    live = make(0.0, max_data_age_s=5.0, ping_after_s=1000.0)
    live.on_data("trade:ETHUSD", 2.0)
    assert live.next_deadline() == 7.0


def test_future_and_stale_server_timestamps() -> None:
    live = make(0.0, future_tolerance_ms=5_000, max_ts_age_ms=30_000)
    wall = 1_000_000
    assert live.on_data(BOOK, 1.0, ts_ms=wall + 5_000, wall_ms=wall) is Verdict.OK
    assert live.on_data(BOOK, 1.0, ts_ms=wall + 5_001, wall_ms=wall) is Verdict.FUTURE
    assert live.on_data(BOOK, 1.0, ts_ms=wall - 30_001, wall_ms=wall) is Verdict.STALE
    assert live.counters.future == 1 and live.counters.stale == 1


def test_stale_data_does_not_count_as_fresh() -> None:
    live = make(0.0, max_data_age_s=10.0, ping_after_s=1000.0)
    live.on_subscribed(BOOK, 0.0)
    for t in range(1, 12):
        verdict = live.on_data(BOOK, float(t), ts_ms=0, wall_ms=t * 1000 + 60_000)
        assert verdict is Verdict.STALE and not verdict.accepted
    assert [d.reason for d in live.poll(11.0) if isinstance(d, StaleDecision)] == ["data_age"]


def test_reorder_beyond_window_and_minor_reorder_within() -> None:
    live = make(0.0, reorder_window_ms=500)
    assert live.on_data(BOOK, 1.0, ts_ms=10_000) is Verdict.OK
    assert live.on_data(BOOK, 1.0, ts_ms=9_600) is Verdict.MINOR_REORDER
    assert Verdict.MINOR_REORDER.accepted
    assert live.on_data(BOOK, 1.0, ts_ms=9_499) is Verdict.REORDER
    assert live.on_data(BOOK, 1.0, ts_ms=10_000) is Verdict.OK  # equal: in order
    assert live.on_data("trade:XBTUSD", 1.0, ts_ms=1) is Verdict.OK  # per channel
    assert (live.counters.minor_reorder, live.counters.reorder) == (1, 1)


def test_duplicates_by_signature_with_bounded_memory() -> None:
    live = make(0.0, duplicate_memory=3)
    assert live.on_data(BOOK, 1.0, ts_ms=5, key="a") is Verdict.OK
    assert live.on_data(BOOK, 1.0, ts_ms=5, key="a") is Verdict.DUPLICATE
    assert live.on_data(BOOK, 1.0, ts_ms=5, key="b") is Verdict.OK  # same ts, other payload
    assert live.on_data("trade:XBTUSD", 1.0, ts_ms=5, key="a") is Verdict.OK  # other channel
    assert live.on_data(BOOK, 1.0, ts_ms=6, key="c") is Verdict.OK  # evicts (BOOK, 5, "a")
    assert live.on_data(BOOK, 1.0, ts_ms=6, key="c") is Verdict.DUPLICATE
    again = live.on_data(BOOK, 1.0, ts_ms=5, key="a")  # forgotten: not a duplicate any more
    assert again is Verdict.MINOR_REORDER
    assert live.counters.duplicate == 2
    assert live.on_data(BOOK, 1.0, ts_ms=6) is Verdict.OK  # no key: no duplicate check
    assert live.on_data(BOOK, 1.0, ts_ms=6) is Verdict.OK


SIGNATURES = st.lists(st.tuples(st.sampled_from([BOOK, "trade:XBTUSD"]),
                                 st.one_of(st.none(), st.integers(0, 6)),
                                 st.sampled_from(["a", "b", "c", "d", 1, 2])),
                       max_size=200)


@settings(max_examples=300, deadline=None)
@given(SIGNATURES, st.integers(1, 6))
def test_duplicates_are_exactly_the_last_n_distinct_signatures(
        messages: list[tuple[str, int | None, object]], memory: int) -> None:
    """Against a plain oracle (a list of the last ``memory`` new signatures), whatever the
    channels, timestamps (None included), repeats and reorders, and across every bulk
    forgetting of old signatures."""
    live = make(0.0, duplicate_memory=memory)
    remembered: list[tuple[str, int | None, object]] = []
    duplicates = 0
    for channel, ts_ms, key in messages:
        sig = (channel, ts_ms, key)
        verdict = live.on_data(channel, 1.0, ts_ms=ts_ms, key=key)
        if sig in remembered:
            assert verdict is Verdict.DUPLICATE, (sig, remembered)
            duplicates += 1
        else:
            assert verdict is not Verdict.DUPLICATE, (sig, remembered)
            remembered = ([*remembered, sig])[-memory:]
    assert live.counters.duplicate == duplicates
    held = sum(len(table) for table in live._sigs.values())
    assert held <= 2 * memory  # forgotten signatures do not pile up


def test_status_explains_why() -> None:
    live = make(0.0, max_data_age_s=10.0)
    live.on_subscribed(BOOK, 0.0)
    live.on_subscribed("order", 0.0)
    assert live.status(1.0).healthy
    live.poll(5.0)  # ping sent
    live.on_data(BOOK, 2.0)
    status = live.status(12.5)
    assert not status.healthy
    assert status.stalled == (BOOK,)
    assert any(r.startswith("data_age: orderBookL2:XBTUSD silent for 10.5 s") for r in
               status.reasons)
    assert status.data_age_s[BOOK] == pytest.approx(10.5)
    assert status.counters["messages"] == 1
    live.on_pong(13.0)
    live.poll(18.0)
    late = live.status(23.5)
    assert any(r.startswith("pong_timeout") for r in late.reasons)
    assert late.pong_age_s == pytest.approx(10.5)
    assert late.ping_outstanding_s == pytest.approx(5.5)


def test_bad_config_refused() -> None:
    with pytest.raises(ValueError):
        LivenessConfig(ping_after_s=0)
    with pytest.raises(ValueError):
        LivenessConfig(duplicate_memory=0)


@given(
    max_age_s=st.floats(0.5, 100.0),
    gaps=st.lists(st.floats(0.01, 150.0), min_size=1, max_size=30),
    probes=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=10),
)
def test_property_stall_flagged_exactly_at_threshold_never_before(
    max_age_s: float, gaps: list[float], probes: list[float]
) -> None:
    # static mode: the threshold is max_data_age_s itself (learned mode: the next property)
    live = make(0.0, max_data_age_s=max_age_s, ping_after_s=1e9,
                freshness=FreshnessConfig(enabled=False))
    live.on_subscribed(BOOK, 0.0)
    last_data = 0.0
    flagged_since: float | None = None
    now = 0.0
    for gap in gaps:
        # poll at several moments within the gap, then at its end deliver data
        for fraction in sorted(probes):
            t = now + gap * fraction
            stale = [d for d in live.poll(t) if isinstance(d, StaleDecision)]
            due = t >= last_data + max_age_s
            if flagged_since is None:
                assert bool(stale) == due, (t, last_data, max_age_s)
                if stale:
                    flagged_since = t
            else:
                assert stale == []  # once per stall
        deadline = live.next_deadline()
        if flagged_since is None:
            assert deadline == pytest.approx(last_data + max_age_s)
        now += gap
        live.on_data(BOOK, now)
        last_data = now
        flagged_since = None
        live.poll(now)  # drains a FreshDecision after a stall; cannot be stale at the data time


@settings(deadline=None)
@given(
    gaps=st.lists(st.floats(0.01, 5.0), min_size=1, max_size=60),
    probes=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6),
)
def test_property_learned_stall_flagged_exactly_at_the_threshold_in_force(
    gaps: list[float], probes: list[float]
) -> None:
    live = make(0.0, max_data_age_s=3.0, ping_after_s=1e9,
                freshness=FreshnessConfig(warmup=5, warmup_s=1.0, floor_s=0.2))
    live.on_subscribed(BOOK, 0.0)
    last_data = 0.0
    flagged = False
    now = 0.0
    for gap in gaps:
        limit = live.limit_s(BOOK)  # fixed between arrivals, learned or fallback
        assert limit is not None
        assert live.next_deadline() == pytest.approx(last_data + limit)
        for fraction in sorted(probes):
            t = now + gap * fraction
            stale = [d for d in live.poll(t) if isinstance(d, StaleDecision)]
            if not flagged:
                assert bool(stale) == (t >= last_data + limit), (t, last_data, limit)
                flagged = bool(stale)
                if stale:
                    assert stale[0].threshold_s == limit
            else:
                assert stale == []  # once per stall
        now += gap
        live.on_data(BOOK, now)
        last_data = now
        flagged = False
        live.poll(now)


@given(pong_timeout_s=st.floats(0.1, 30.0), probe=st.floats(0.0, 60.0))
def test_property_pong_timeout_exactly_at_threshold(pong_timeout_s: float, probe: float) -> None:
    live = make(0.0, ping_after_s=1.0, pong_timeout_s=pong_timeout_s)
    assert live.poll(1.0) == [SendPing(1.0)]
    decisions = live.poll(1.0 + probe)
    stale = any(isinstance(d, StaleDecision) for d in decisions)
    assert stale == (1.0 + probe >= 1.0 + pong_timeout_s)


@settings(deadline=None, max_examples=100)
@given(gaps=st.lists(st.tuples(st.floats(0.0005, 3.0), st.integers(1, 6)), min_size=1,
                     max_size=60))
def test_messages_sharing_an_instant_refresh_and_teach_as_one(
        gaps: list[tuple[float, int]]) -> None:
    """The frames of one read share their ``now``: fed several times at each instant, a
    channel ends with the freshness, learned threshold, stall and fresh decisions of one
    message per instant (the repeats are counted as messages, nothing more)."""
    config = FreshnessConfig(warmup=5, warmup_s=1.0, floor_s=0.2)
    once = make(0.0, max_data_age_s=3.0, ping_after_s=1e9, freshness=config)
    many = make(0.0, max_data_age_s=3.0, ping_after_s=1e9, freshness=config)
    for live in (once, many):
        live.on_subscribed(BOOK, 0.0)
    now = 0.0
    for gap, repeats in gaps:
        now += gap
        decisions = [live.poll(now - gap / 2) for live in (once, many)]
        assert decisions[0] == decisions[1]
        assert once.on_data(BOOK, now) is Verdict.OK
        for _ in range(repeats):
            assert many.on_data(BOOK, now) is Verdict.OK
        assert once.poll(now) == many.poll(now)
        assert once.limit_s(BOOK) == many.limit_s(BOOK)
        assert once.status(now).data_age_s == many.status(now).data_age_s
    assert many.counters.messages == sum(repeats for _, repeats in gaps)
