"""The websocket fault state every simulated connection and the proxy's bridge share (sans-I/O)."""

from __future__ import annotations

import random

from venueguard.sim.faults import FaultBook, parse_fault
from venueguard.sim.wsfaults import Effect, WsFaultState


def _hit(state: WsFaultState, raw: dict[str, object]) -> Effect:
    return state.hit(FaultBook(seed=1).add(parse_fault(raw), 0.0))


def test_each_kind_sets_its_state_and_says_what_the_owner_does() -> None:
    state = WsFaultState(random.Random(0))
    assert _hit(state, {"kind": "ws_reorder", "probability": 0.3}) is Effect.NONE
    assert _hit(state, {"kind": "ws_reorder", "probability": 0.1}) is Effect.NONE
    assert _hit(state, {"kind": "ws_duplicate", "probability": 0.4}) is Effect.NONE
    assert _hit(state, {"kind": "ws_stale_timestamps", "delay_s": 2.5}) is Effect.NONE
    assert _hit(state, {"kind": "ws_future_timestamps", "ahead_s": 1}) is Effect.NONE
    assert _hit(state, {"kind": "ws_gap", "count": 2}) is Effect.NONE
    assert _hit(state, {"kind": "ws_gap", "count": 3}) is Effect.NONE
    assert (state.reorder_p, state.duplicate_p) == (0.3, 0.4)  # the strongest of each stays
    assert state.shift_ms == -1500  # stale and future add up
    assert state.gap_left == 5
    assert not state.stalled and not state.half_open
    assert _hit(state, {"kind": "ws_stall"}) is Effect.CLEAR and state.stalled
    assert _hit(state, {"kind": "ws_half_open"}) is Effect.CLEAR and state.half_open
    assert _hit(state, {"kind": "ws_drop"}) is Effect.CUT
    assert state.kinds[:2] == ["ws_reorder", "ws_reorder"] and state.kinds[-1] == "ws_drop"
    assert len(state.kinds) == 10


def test_a_gap_takes_exactly_count_messages() -> None:
    state = WsFaultState(random.Random(0))
    _hit(state, {"kind": "ws_gap", "count": 2})
    assert [state.take_gap() for _ in range(4)] == [True, True, False, False]


def test_no_reorder_or_duplicate_sends_each_message_once() -> None:
    state = WsFaultState(random.Random(0))
    _hit(state, {"kind": "ws_stale_timestamps", "delay_s": 1})
    messages = [bytes([i]) for i in range(50)]
    assert [out for m in messages for out in state.release(m, True)] == messages


def test_a_held_message_follows_the_next_one_and_snapshots_are_never_held() -> None:
    state = WsFaultState(random.Random(0))
    _hit(state, {"kind": "ws_reorder", "probability": 1.0})
    a, b, c, snap = b"a", b"b", b"c", b"snapshot"
    assert state.release(a, True) == ()  # held back
    assert state.release(snap, False) == (snap, a)  # a snapshot is sent at once, then a
    assert state.release(b, True) == ()
    assert state.release(c, False) == (c, b)


def test_duplicates_and_reorders_are_drawn_from_the_given_stream() -> None:
    def run(seed: int) -> list[bytes]:
        state = WsFaultState(random.Random(seed))
        _hit(state, {"kind": "ws_reorder", "probability": 0.3})
        _hit(state, {"kind": "ws_duplicate", "probability": 0.3})
        return [out for i in range(200) for out in state.release(str(i).encode(), True)]

    first = run(7)
    assert first == run(7)  # the same seed holds back and repeats the same messages
    assert first != run(8)
    sent = [int(m) for m in first]
    assert set(sent) >= set(range(199))  # nothing lost (the last one may still be held)
    assert len(sent) > 200  # some were sent twice
    assert sent != sorted(sent)  # some arrived late
