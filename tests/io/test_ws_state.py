"""The market-data pipeline (frame -> decode -> checks -> book) with times given as numbers."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from venueguard.core.liveness import LivenessConfig
from venueguard.io import md_events as ev
from venueguard.io.md_state import MdSink, MdState, MdStateConfig
from venueguard.venues.bitmex.timefmt import format_ms

WALL_MS = 1_800_000_000_000
BOOK = "orderBookL2:XBTUSD"


def frame(table: str, action: str, rows: list[dict[str, Any]], **extra: Any) -> bytes:
    return orjson.dumps({"table": table, "action": action, "data": rows, **extra})


def level(level_id: int, side: str, size: int, price: float, ts_ms: int = WALL_MS
          ) -> dict[str, Any]:
    return {"symbol": "XBTUSD", "id": level_id, "side": side, "size": size, "price": price,
            "timestamp": format_ms(ts_ms)}


PARTIAL = frame("orderBookL2", "partial",
                [level(1, "Sell", 10, 101.0), level(2, "Buy", 20, 100.0)],
                keys=["symbol", "id", "side"], filter={"symbol": "XBTUSD"})


class Recorder:
    def __init__(self) -> None:
        self.events: list[ev.MdEvent] = []
        self.lines: list[tuple[str, dict[str, object]]] = []
        self.rejected: list[str] = []

    def sink(self) -> MdSink:
        return MdSink(push=self.events.append,
                      log=lambda event, **fields: self.lines.append((event, fields)),
                      on_rejected=self.rejected.append)


def make(**liveness: Any) -> tuple[MdState, Recorder]:
    rec = Recorder()
    config = MdStateConfig(liveness=LivenessConfig(
        max_ts_age_ms=2_000, future_tolerance_ms=1_000, reorder_window_ms=500, **liveness))
    state = MdState(config, rec.sink())
    state.begin(0.0)
    state.on_subscribed(BOOK, 0.0)
    state.on_frame(PARTIAL, 0.1, WALL_MS)
    return state, rec


def sides(state: MdState) -> dict[str, dict[float, float]]:
    return state.books["orderBookL2"].book("XBTUSD").sides()


def test_partial_then_update_moves_the_book_and_reports_top_of_book() -> None:
    state, rec = make()
    state.on_frame(frame("orderBookL2", "update", [level(2, "Buy", 25, 100.0, WALL_MS + 5)]),
                   0.2, WALL_MS + 5)
    assert sides(state) == {"Buy": {100.0: 25}, "Sell": {101.0: 10}}
    tops = [e for e in rec.events if isinstance(e, ev.TopOfBook)]
    assert tops[-1].best_bid == (100.0, 25) and tops[-1].best_ask == (101.0, 10)
    assert state.last_data_now == 0.2
    assert state.table_counts["orderBookL2"] == 2
    assert state.resync_reason is None


@pytest.mark.parametrize(("ts_ms", "reason"), [(WALL_MS - 5_000, "stale"),
                                               (WALL_MS + 5_000, "future")])
def test_stale_or_future_delta_is_rejected_and_the_book_resyncs(ts_ms: int, reason: str) -> None:
    state, rec = make()
    before = sides(state)
    state.on_frame(frame("orderBookL2", "update", [level(2, "Buy", 99, 100.0, ts_ms)]),
                   0.2, WALL_MS)
    assert rec.rejected == [reason]
    assert ("data.rejected", {"reason": reason, "table": "orderBookL2", "symbol": "XBTUSD"}
            ) in rec.lines
    book = state.books["orderBookL2"].book("XBTUSD")
    assert not book.valid and not book.is_fresh(0.2)  # never presented as fresh
    assert 99 not in before["Buy"].values()
    assert state.resync_reason is not None and reason in state.resync_reason
    assert any(isinstance(e, ev.BookGap) for e in rec.events)
    assert not any(isinstance(e, ev.TableData) for e in rec.events)


def test_duplicate_delta_is_dropped_and_the_book_stays_valid() -> None:
    state, rec = make()
    update = frame("orderBookL2", "insert", [level(3, "Buy", 5, 99.5, WALL_MS + 1)])
    state.on_frame(update, 0.2, WALL_MS)
    state.on_frame(update, 0.3, WALL_MS)
    assert rec.rejected == ["duplicate"]
    assert state.books["orderBookL2"].book("XBTUSD").valid
    assert sides(state)["Buy"] == {100.0: 20, 99.5: 5}
    assert state.resync_reason is None


def test_any_older_book_delta_counts_as_reorder() -> None:
    state, rec = make()
    state.on_frame(frame("orderBookL2", "update", [level(2, "Buy", 21, 100.0, WALL_MS + 100)]),
                   0.2, WALL_MS)
    state.on_frame(frame("orderBookL2", "update", [level(2, "Buy", 22, 100.0, WALL_MS + 50)]),
                   0.3, WALL_MS)  # inside the 500 ms window, but a book cannot take it
    assert rec.rejected == ["reorder"]
    assert state.resync_reason is not None


def test_minor_reorder_on_a_trade_channel_is_accepted() -> None:
    state, rec = make()
    trade = {"symbol": "XBTUSD", "side": "Buy", "size": 1, "price": 100.5}
    state.on_frame(frame("trade", "insert", [{**trade, "timestamp": format_ms(WALL_MS + 100),
                                              "trdMatchID": "a"}]), 0.2, WALL_MS)
    state.on_frame(frame("trade", "insert", [{**trade, "timestamp": format_ms(WALL_MS + 50),
                                              "trdMatchID": "b"}]), 0.3, WALL_MS)
    assert rec.rejected == []
    tape = state.tapes["XBTUSD"]
    assert len(tape.recent()) == 2
    assert [e.table for e in rec.events if isinstance(e, ev.TableData)] == ["trade", "trade"]


def test_unknown_id_is_a_gap() -> None:
    state, rec = make()
    state.on_frame(frame("orderBookL2", "update", [level(77, "Buy", 1, 98.0, WALL_MS + 1)]),
                   0.2, WALL_MS)
    gaps = [e for e in rec.events if isinstance(e, ev.BookGap)]
    assert gaps and gaps[0].symbol == "XBTUSD" and gaps[0].reason == "unknown_id"
    assert state.counters.gaps == 1


def test_a_delta_that_crosses_the_book_is_a_gap_but_a_crossed_partial_is_kept() -> None:
    state, rec = make()
    state.on_frame(frame("orderBookL2", "insert", [level(5, "Buy", 1, 102.0, WALL_MS + 1)]),
                   0.2, WALL_MS)
    assert [e.reason for e in rec.events if isinstance(e, ev.BookGap)] == ["crossed_book"]
    crossed = frame("orderBookL2", "partial",
                    [level(1, "Sell", 1, 99.0), level(2, "Buy", 1, 100.0)],
                    filter={"symbol": "XBTUSD"})
    state.begin(1.0)
    state.on_frame(crossed, 1.1, WALL_MS)
    state.on_frame(frame("orderBookL2", "update", [level(2, "Buy", 3, 100.0, WALL_MS + 2)]),
                   1.2, WALL_MS)
    assert state.books["orderBookL2"].book("XBTUSD").valid  # the venue's image, not our gap


def test_second_partial_after_reconnect_logs_book_resynced() -> None:
    state, rec = make()
    assert not [name for name, _ in rec.lines if name == "book.resynced"]
    state.begin(5.0)
    assert not state.books["orderBookL2"].book("XBTUSD").valid
    state.on_frame(PARTIAL, 5.1, WALL_MS)
    resynced = [e for e in rec.events if isinstance(e, ev.BookResynced)]
    assert resynced and resynced[0].levels == 2
    assert ("book.resynced", {"table": "orderBookL2", "symbol": "XBTUSD", "levels": 2}
            ) in rec.lines


@pytest.mark.parametrize("payload", [b"", b"{", b"[1,2]", b'{"table": 5}', b"\xff\xfe",
                                     b'{"table":"orderBookL2","action":"update","data":[7]}',
                                     b"x" * 100_000])
def test_malformed_frames_are_counted_and_never_raise(payload: bytes) -> None:
    state, _ = make()
    state.on_frame(payload, 0.2, WALL_MS)
    assert state.counters.malformed == 1
    assert state.books["orderBookL2"].book("XBTUSD").valid


def test_pong_and_control_frames() -> None:
    state, _ = make()
    state.on_frame(b"pong", 0.5, WALL_MS)
    assert state.liveness.counters.pongs == 1
    state.on_frame(b'{"success":true,"subscribe":"trade:XBTUSD","request":{"op":"subscribe",'
                   b'"args":["trade:XBTUSD"]}}', 0.6, WALL_MS)
    assert state.has_control
    control = state.take_control()
    assert len(control) == 1 and not state.has_control


def test_recorded_data_with_old_timestamps_is_accepted_when_checks_are_off() -> None:
    state = MdState(MdStateConfig(check_timestamps=False))
    state.begin(0.0)
    state.on_frame(PARTIAL, 0.1, WALL_MS + 10**9)
    state.on_frame(frame("orderBookL2", "update", [level(2, "Buy", 7, 100.0, 0)]), 0.2,
                   WALL_MS + 10**9)
    assert state.books["orderBookL2"].book("XBTUSD").sides()["Buy"] == {100.0: 7}
    assert state.counters.rejected == 0


@pytest.mark.parametrize(("shift_ms", "reason"), [(-5_000, "stale"), (5_000, "future")])
def test_a_partial_older_than_the_bound_is_not_a_fresh_image(shift_ms: int, reason: str) -> None:
    state, rec = make()
    state.begin(1.0)
    old = frame("orderBookL2", "partial", [level(1, "Sell", 10, 101.0, WALL_MS + shift_ms),
                                           level(2, "Buy", 20, 100.0, WALL_MS + shift_ms)],
                filter={"symbol": "XBTUSD"})
    state.on_frame(old, 1.1, WALL_MS)
    assert rec.rejected == [reason]
    assert not state.books["orderBookL2"].book("XBTUSD").valid
    assert state.resync_reason is not None and "partial" in state.resync_reason


def test_data_before_the_ack_counts_for_the_topic_being_subscribed() -> None:
    """Regression: a partial that beats its ack must refresh the subscribed (symbol-less) topic,
    not create a channel nobody watches while the subscribed one looks silent."""
    state = MdState(MdStateConfig())
    state.begin(0.0)
    state.expect(["orderBookL2_25"])
    partial = frame("orderBookL2_25", "partial", [level(1, "Sell", 1, 101.0)],
                    filter={"symbol": "XBTUSD"})
    state.on_frame(partial, 0.5, WALL_MS)
    state.on_subscribed("orderBookL2_25", 0.6)
    assert state.liveness.channels == ("orderBookL2_25",)
