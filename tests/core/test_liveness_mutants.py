"""Liveness edges: config bounds and messages, data answering a ping, the exact thresholds of
timestamp and ordering checks, the duplicate memory's length, counters that accumulate, and
status() while a ping is outstanding but not late."""

from __future__ import annotations

import re

import pytest

from venueguard.core.liveness import Liveness, LivenessConfig, SendPing, StaleDecision, Verdict


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"ping_after_s": 0.0}, "ping_after_s must be > 0"),
     ({"pong_timeout_s": -1.0}, "pong_timeout_s must be > 0"),
     ({"max_data_age_s": 0.0}, "max_data_age_s must be > 0"),
     ({"duplicate_memory": 0}, "duplicate_memory must be >= 1")],
)
def test_config_errors_name_the_field(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        LivenessConfig(**kwargs)  # type: ignore[arg-type]


def test_the_table_is_the_part_before_the_first_colon() -> None:
    config = LivenessConfig(channel_max_age_s={"quote": 7.0})
    assert config.max_age_for("quote:XBT:USD") == 7.0
    assert config.max_age_for("order:XBT:USD") is None
    assert config.max_age_for("trade:XBT:USD") == 30.0


def test_a_memory_of_one_remembers_the_last_signature_only() -> None:
    live = Liveness(LivenessConfig(duplicate_memory=1), 0.0)
    assert live.on_data("trade", 0.0, ts_ms=1, key="a") is Verdict.OK
    assert live.on_data("trade", 0.1, ts_ms=1, key="a") is Verdict.DUPLICATE
    assert live.on_data("trade", 0.2, ts_ms=2, key="b") is Verdict.OK
    assert live.on_data("trade", 0.3, ts_ms=1, key="a") is Verdict.MINOR_REORDER


def test_the_duplicate_memory_holds_exactly_the_last_n_signatures() -> None:
    live = Liveness(LivenessConfig(duplicate_memory=2), 0.0)
    for key in ("a", "b"):
        assert live.on_data("trade", 0.0, ts_ms=1, key=key) is Verdict.OK
    assert live.on_data("trade", 0.0, ts_ms=1, key="a") is Verdict.DUPLICATE
    assert live.on_data("trade", 0.0, ts_ms=1, key="c") is Verdict.OK
    assert live.on_data("trade", 0.0, ts_ms=1, key="a") is Verdict.OK     # a was forgotten
    assert live.counters.duplicate == 1


def test_timestamp_and_order_thresholds_are_exclusive() -> None:
    live = Liveness(LivenessConfig(), 0.0)
    wall = 1_000_000
    assert live.on_data("t", 0.0, ts_ms=wall - 30_000, wall_ms=wall) is Verdict.OK
    assert live.on_data("t", 0.0, ts_ms=wall - 30_001, wall_ms=wall) is Verdict.STALE
    assert live.on_data("t", 0.0, ts_ms=wall - 30_002, wall_ms=wall) is Verdict.STALE
    assert live.on_data("t", 0.0, ts_ms=wall + 5_000, wall_ms=wall) is Verdict.OK
    assert live.on_data("t", 0.0, ts_ms=wall + 5_001, wall_ms=wall) is Verdict.FUTURE
    assert live.on_data("t", 0.0, ts_ms=wall + 5_002, wall_ms=wall) is Verdict.FUTURE
    assert live.on_data("t", 0.0, ts_ms=wall + 4_500) is Verdict.MINOR_REORDER   # 500 older
    assert live.on_data("t", 0.0, ts_ms=wall + 4_499) is Verdict.REORDER
    assert live.on_data("t", 0.0, ts_ms=wall + 4_498) is Verdict.REORDER
    assert live.on_data("t", 0.0, ts_ms=wall + 4_999) is Verdict.MINOR_REORDER
    counters = live.counters
    assert (counters.messages, counters.stale, counters.future, counters.reorder,
            counters.minor_reorder) == (10, 2, 2, 2, 2)


def test_a_rejected_first_message_still_starts_watching_the_channel() -> None:
    live = Liveness(LivenessConfig(max_data_age_s=10.0), 0.0)
    assert live.on_data("trade", 2.0, ts_ms=10_000, wall_ms=0) is Verdict.FUTURE
    assert live.status(5.0).data_age_s == {"trade": 3.0}
    assert live.next_deadline() == 7.0                    # the ping; the channel is due at 12
    assert [d for d in live.poll(12.0) if isinstance(d, StaleDecision)] == [
        StaleDecision("data_age", "trade", 10.0, 12.0, 10.0)]


def test_data_answers_an_outstanding_ping_every_time() -> None:
    live = Liveness(LivenessConfig(), 0.0)
    for start in (0.0, 20.0):
        assert live.poll(start + 5.0) == [SendPing(start + 5.0)]
        live.on_data("order", start + 6.0)                # answers the ping
        assert live.poll(start + 10.0) == []
        assert live.status(start + 10.0).healthy
    assert live.poll(31.0) == [SendPing(31.0)]           # 5 s after the data at 26
    assert live.poll(36.0) == [StaleDecision("pong_timeout", None, 5.0, 36.0, 5.0)]
    assert live.counters.pings_sent == 3 and live.counters.pong_timeouts == 1


def test_an_inbound_frame_after_a_flagged_timeout_rearms_the_next_one() -> None:
    live = Liveness(LivenessConfig(), 0.0)
    live.poll(5.0)
    assert live.poll(10.0) == [StaleDecision("pong_timeout", None, 5.0, 10.0, 5.0)]
    live.on_inbound(11.0)
    live.poll(16.0)
    assert live.poll(21.0) == [StaleDecision("pong_timeout", None, 5.0, 21.0, 5.0)]
    live.on_pong(22.0)
    live.on_pong(23.0)
    assert live.counters.pong_timeouts == 2 and live.counters.pongs == 2


def test_data_after_a_flagged_timeout_rearms_the_next_one() -> None:
    live = Liveness(LivenessConfig(), 0.0)
    live.poll(5.0)
    live.poll(10.0)
    live.on_data("order", 11.0)
    live.poll(16.0)
    assert live.poll(21.0) == [StaleDecision("pong_timeout", None, 5.0, 21.0, 5.0)]


def test_status_while_a_ping_waits_but_is_not_late() -> None:
    live = Liveness(LivenessConfig(), 0.0)
    live.poll(5.0)
    waiting = live.status(9.9)
    assert waiting.healthy and waiting.ping_outstanding_s == pytest.approx(4.9)
    assert waiting.silence_s == 9.9
    late = live.status(10.0)
    assert late.reasons == ("pong_timeout: no answer 5.0 s after ping (limit 5 s)",)


def test_silence_counts_from_the_last_inbound_frame() -> None:
    live = Liveness(LivenessConfig(), 2.0)
    assert live.status(5.0).silence_s == 3.0
    live.on_inbound(4.0)
    assert live.status(5.5).silence_s == 1.5


def test_status_flags_a_channel_exactly_at_its_limit() -> None:
    live = Liveness(LivenessConfig(max_data_age_s=10.0, ping_after_s=100.0), 0.0)
    live.on_subscribed("trade", 1.0)
    assert live.status(10.9).stalled == ()
    at = live.status(11.0)
    assert at.stalled == ("trade",)
    assert at.reasons == ("data_age: trade silent for 10.0 s (limit 10 s)",)
    assert at.silence_s == 11.0


def test_next_deadline_skips_quiet_and_stalled_channels() -> None:
    live = Liveness(LivenessConfig(max_data_age_s=3.0), 0.0)
    live.on_subscribed("order", 0.0)                     # quiet: never due
    assert live.next_deadline() == 5.0
    live.on_subscribed("trade", 0.0)
    assert live.next_deadline() == 3.0
    assert live.poll(3.0) == [StaleDecision("data_age", "trade", 3.0, 3.0, 3.0)]
    assert live.next_deadline() == 5.0                   # the stalled channel is not due again


def test_unsubscribing_an_unknown_channel_is_a_no_op() -> None:
    live = Liveness(LivenessConfig(), 0.0)
    live.on_subscribed("trade", 0.0)
    live.on_unsubscribed("quote")
    assert live.channels == ("trade",)
