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
                                     b"x" * 100_000])
def test_malformed_frames_are_counted_and_never_raise(payload: bytes) -> None:
    state, rec = make()
    state.on_frame(payload, 0.2, WALL_MS)
    assert state.counters.malformed == 1 and state.counters.rejected == 1
    assert ("data.rejected", {"reason": "malformed", "table": "", "symbol": None}) in rec.lines
    assert state.books["orderBookL2"].book("XBTUSD").valid


@pytest.mark.parametrize(("payload", "reason"), [
    (b'{"table":"orderBookL2","action":"update","data":[7]}', "malformed"),
    (b'{"table":"orderBookL2","action":"upsert","data":[]}', "unknown_action"),
])
def test_an_unreadable_book_frame_is_refused_and_the_book_resyncs(payload: bytes,
                                                                   reason: str) -> None:
    """The frame might have carried a change of the book: the book cannot be trusted."""
    state, rec = make()
    assert state.books["orderBookL2"].book("XBTUSD").valid
    assert state.on_frame(payload, 0.2, WALL_MS) is True
    assert state.counters.rejected == 1
    assert ("data.rejected", {"reason": reason, "table": "orderBookL2", "symbol": None}
            ) in rec.lines
    assert not state.books["orderBookL2"].book("XBTUSD").valid
    assert state.resync_reason is not None


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


@pytest.mark.parametrize("table", ["order", "execution", "trade"])
def test_an_old_row_in_another_tables_partial_is_not_a_stale_image(table: str) -> None:
    """An order resting for an hour is in the order table's image after a reconnect with the
    time it last changed; the image is accepted and delivered (a future row is still refused)."""
    state, rec = make()
    old = frame(table, "partial", [{"symbol": "XBTUSD", "orderID": "a", "price": 100.0,
                                    "size": 1, "side": "Buy",
                                    "timestamp": format_ms(WALL_MS - 3_600_000)}],
                filter={"symbol": "XBTUSD"})
    state.on_frame(old, 1.1, WALL_MS)
    assert rec.rejected == []
    assert [e.table for e in rec.events if isinstance(e, ev.TableData)] == [table]
    ahead = frame(table, "partial", [{"symbol": "XBTUSD", "orderID": "b", "price": 100.0,
                                      "size": 1, "side": "Buy",
                                      "timestamp": format_ms(WALL_MS + 60_000)}],
                  filter={"symbol": "XBTUSD"})
    state.on_frame(ahead, 1.2, WALL_MS)
    assert rec.rejected == ["future"]


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


@pytest.mark.parametrize(("stamp", "reason"), [(None, "missing_timestamp"),
                                               ("yesterday", "bad_timestamp"),
                                               (17, "bad_timestamp")])
def test_a_delta_without_a_readable_server_timestamp_is_refused(stamp: object,
                                                                reason: str) -> None:
    """Without a timestamp no stale/future/reorder/duplicate check could run on it."""
    state, rec = make()
    row = level(2, "Buy", 99, 100.0)
    if stamp is None:
        del row["timestamp"]
    else:
        row["timestamp"] = stamp
    state.on_frame(frame("orderBookL2", "update", [row]), 0.2, WALL_MS)
    assert rec.rejected == [reason]
    assert ("data.rejected", {"reason": reason, "table": "orderBookL2", "symbol": "XBTUSD"}
            ) in rec.lines
    assert not state.books["orderBookL2"].book("XBTUSD").valid
    assert state.resync_reason is not None


def test_one_untimed_row_in_a_multi_row_delta_refuses_the_frame() -> None:
    state, rec = make()
    bad = level(2, "Buy", 99, 100.0)
    bad["timestamp"] = "2020-13-45T99:00:00.000Z"
    state.on_frame(frame("orderBookL2", "update", [bad, level(1, "Sell", 7, 101.0)]),
                   0.2, WALL_MS)
    assert rec.rejected == ["bad_timestamp"]


def test_a_partial_with_a_row_lacking_its_timestamp_is_refused() -> None:
    state, rec = make()
    rows = [level(1, "Sell", 10, 101.0), level(2, "Buy", 20, 100.0)]
    del rows[0]["timestamp"]
    state.on_frame(frame("orderBookL2", "partial", rows, filter={"symbol": "XBTUSD"}),
                   0.3, WALL_MS)
    assert rec.rejected == ["missing_timestamp"]
    assert not state.books["orderBookL2"].book("XBTUSD").valid


def test_tables_documented_without_timestamps_are_taken_in_arrival_order() -> None:
    state, rec = make()
    row = {"orderID": "a", "symbol": "XBTUSD", "side": "Sell", "price": 100.0, "leavesQty": 5}
    state.on_frame(frame("liquidation", "insert", [row]), 0.2, WALL_MS)
    assert rec.rejected == []
    assert state.table_counts["liquidation"] == 1
    assert [e.table for e in rec.events if isinstance(e, ev.TableData)] == ["liquidation"]


@pytest.mark.parametrize(("change", "reason"), [
    ({"size": -5}, "invalid_size"), ({"size": 0}, "invalid_size"),
    ({"size": 2.5}, "invalid_size"), ({"size": 10**17}, "invalid_size"),
    ({"id": "2"}, "invalid_id"), ({"side": "Up"}, "invalid_side"),
    ({"price": -100.0}, "invalid_price"),
])
def test_impossible_values_are_refused_counted_and_resynced(change: dict[str, Any],
                                                            reason: str) -> None:
    state, rec = make()
    state.on_frame(frame("orderBookL2", "update", [level(2, "Buy", 25, 100.0) | change]),
                   0.2, WALL_MS)
    assert rec.rejected == [reason]
    assert ("data.rejected", {"reason": reason, "table": "orderBookL2", "symbol": "XBTUSD"}
            ) in rec.lines
    gaps = [e for e in rec.events if isinstance(e, ev.BookGap)]
    assert [g.reason for g in gaps] == [reason]
    assert not state.books["orderBookL2"].book("XBTUSD").valid


def test_trades_with_impossible_values_are_refused_before_the_tape() -> None:
    state, rec = make()
    trade = {"symbol": "XBTUSD", "side": "Buy", "size": 5, "price": -3.0,
             "timestamp": format_ms(WALL_MS)}
    state.on_frame(frame("trade", "insert", [trade]), 0.2, WALL_MS)
    assert rec.rejected == ["invalid_price"]
    state.on_frame(frame("trade", "insert", [trade]).replace(b"-3.0", b"1e999"), 0.3, WALL_MS)
    assert rec.rejected == ["invalid_price", "malformed"]  # orjson refuses an infinite number
    assert "XBTUSD" not in state.tapes or state.tapes["XBTUSD"].total_trades == 0


def test_instrument_rows_teach_the_books_their_tick_and_lot() -> None:
    state, rec = make()
    inst = {"symbol": "XBTUSD", "tickSize": 0.5, "lotSize": 10, "timestamp": format_ms(WALL_MS)}
    state.on_frame(frame("instrument", "partial", [inst]), 0.2, WALL_MS)
    state.on_frame(frame("orderBookL2", "insert", [level(3, "Buy", 10, 99.25)]), 0.3, WALL_MS)
    assert rec.rejected == ["off_tick"]
    state.on_frame(PARTIAL, 0.4, WALL_MS)
    state.on_frame(frame("orderBookL2", "update", [level(2, "Buy", 15, 100.0)]), 0.5, WALL_MS)
    assert rec.rejected == ["off_tick", "off_lot"]


def test_configured_increments_apply_from_the_first_partial() -> None:
    from venueguard.venues.bitmex.book import Increments

    rec = Recorder()
    state = MdState(MdStateConfig(increments={"XBTUSD": Increments(tick=0.5, lot=10)}),
                    rec.sink())
    state.begin(0.0)
    state.on_subscribed(BOOK, 0.0)
    state.on_frame(PARTIAL, 0.1, WALL_MS)
    assert state.books["orderBookL2"].book("XBTUSD").valid
    state.on_frame(frame("orderBookL2", "update", [level(2, "Buy", 25, 100.0)]), 0.2, WALL_MS)
    assert rec.rejected == ["off_lot"]
