"""The typed fast lane of ``MdState.on_frame`` (one-row book deltas decoded straight into
structs) ends exactly where the general path (``MdState._on_message``, dict rows) does.

Each step's frame goes to two pipelines, one through ``on_frame`` and one through the general
path only, and everything they expose is compared after every step: counters, refusal reasons
and events, books (levels, validity, top-of-book counters), the resync request and the
liveness counters. Frames mix the usual deltas with every kind of oddity the lane must hand
over untouched: wrong types, ids beyond int64, huge integers, unknown ids, other prices under
an id, repeats, stale and reordered timestamps, rows of other symbols, keys and filters.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from venueguard.core.liveness import LivenessConfig
from venueguard.io.md_events import MdEvent
from venueguard.io.md_state import MdSink, MdState, MdStateConfig
from venueguard.venues.bitmex.book import MAX_ID, MIN_ID
from venueguard.venues.bitmex.messages import decode_book_delta
from venueguard.venues.bitmex.timefmt import format_ms

WALL_MS = 1_800_000_000_000
BASE = [(11, "Sell", 300, 101.0), (12, "Sell", 200, 100.5), (21, "Buy", 100, 100.0),
        (22, "Buy", 400, 99.5), (23, "Buy", 50, 99.0)]


class Pipeline:
    def __init__(self, general_only: bool, check_timestamps: bool) -> None:
        self.events: list[MdEvent] = []
        self.refused: list[str] = []
        self.state = MdState(MdStateConfig(
            liveness=LivenessConfig(max_ts_age_ms=2_000, future_tolerance_ms=1_000,
                                    reorder_window_ms=500),
            check_timestamps=check_timestamps),
            MdSink(push=self.events.append, on_rejected=self.refused.append))
        self.general_only = general_only
        self.state.begin(0.0)
        self.state.expect(["orderBookL2:XBTUSD"])
        self.state.on_subscribed("orderBookL2:XBTUSD", 0.0)

    def feed(self, payload: bytes, now: float) -> bool:
        state = self.state
        if self.general_only:
            state.counters.frames += 1
            return state._on_message(payload, now, WALL_MS)
        return state.on_frame(payload, now, WALL_MS)

    def view(self) -> tuple[Any, ...]:
        state = self.state
        books = {(table, symbol): (book.depth(), book.valid, book.resync_reason,
                                   book.top_changes, book.top_price_changes,
                                   book.messages_applied, book.rows_applied,
                                   book.last_row_timestamp, book.keys())
                 for table, bookset in state.books.items()
                 for symbol, book in bookset.books.items()}
        return (state.counters, self.refused, self.events, books, state.resync_reason,
                state.liveness.counters, state.last_data_now, state.table_counts)


def partial(ts_ms: int) -> bytes:
    return orjson.dumps({
        "table": "orderBookL2", "action": "partial", "filter": {"symbol": "XBTUSD"},
        "data": [{"symbol": "XBTUSD", "id": i, "side": s, "size": z, "price": p,
                  "timestamp": format_ms(ts_ms)} for i, s, z, p in BASE]})


IDS = st.one_of(st.sampled_from([11, 12, 21, 22, 23]), st.integers(30, 33),
                st.sampled_from([2**63, MAX_ID, MIN_ID - 1, 10**30, 11.0, True, "11", None]))
SIZES = st.one_of(st.integers(-1, 500), st.sampled_from([2**64, 10**30, 1.0, True, "5", None]))
PRICES = st.one_of(st.sampled_from([101.0, 100.5, 100.0, 99.5, 99.0, 98.5, 101.5, 100.25]),
                   st.sampled_from([100, 0.0, -1.0, 1e308, 10**30, "100", None]))
FIELD = st.fixed_dictionaries(
    {"symbol": st.sampled_from(["XBTUSD", "XBTUSD", "XBTUSD", "ETHUSD", "", 5]),
     "id": IDS, "side": st.sampled_from(["Buy", "Sell", "Buy", "Sell", "buy", None])},
    optional={"size": SIZES, "price": PRICES, "transactTime": st.just("x")})
# the usual row: a level of the book (or a new one), a whole size (often its own), its price
LEVELS = [(i, s, p) for i, s, _, p in BASE] + [(31, "Buy", 99.25), (32, "Sell", 101.5),
                                               (33, "Buy", 100.25), (34, "Sell", 100.25)]
USUAL = st.builds(
    lambda level, size, named: {"symbol": "XBTUSD", "id": level[0], "side": level[1],
                                "size": size, **({"price": level[2]} if named else {})},
    st.sampled_from(LEVELS),
    st.one_of(st.integers(1, 500), st.sampled_from([300, 200, 100, 400, 50])), st.booleans())
ROWS = st.one_of(st.tuples(USUAL).map(list), st.tuples(USUAL).map(list),
                 st.tuples(FIELD).map(list), st.lists(st.one_of(USUAL, FIELD), min_size=2,
                                                      max_size=3))
STEP = st.tuples(
    st.sampled_from(["update", "update", "insert", "delete", "partial", "upsert"]),
    ROWS,
    st.sampled_from([0, 0, 0, 1, -1, -600, 5_000, None]),  # timestamp offset (ms); None: none
    st.sampled_from([None, None, None, "keys", "filter", "table", "null keys", "types",
                     "bad types"]),
    st.sampled_from([False, False, False, True]))  # repeat the previous frame instead


@pytest.mark.slow
@settings(max_examples=600, deadline=None)
@given(st.lists(STEP, min_size=1, max_size=25), st.booleans())
def test_the_fast_lane_ends_where_the_general_path_does(
        steps: list[tuple[str, list[dict[str, Any]], int | None, str | None, bool]],
        check_timestamps: bool) -> None:
    fast, general = Pipeline(False, check_timestamps), Pipeline(True, check_timestamps)
    ts_ms, previous = WALL_MS, partial(WALL_MS)
    for pipeline in (fast, general):
        pipeline.feed(previous, 0.1)
    for n, step in enumerate(steps, start=1):
        now = 0.1 + n * 0.01
        payload, ts_ms = next_frame(fast, step, ts_ms, previous)
        previous = payload
        assert fast.feed(payload, now) == general.feed(payload, now)
        assert fast.view() == general.view()


def next_frame(pipeline: Pipeline, step: tuple[str, list[dict[str, Any]], int | None,
                                                str | None, bool],
               ts_ms: int, previous: bytes) -> tuple[bytes, int]:
    """The frame of ``step`` (a new partial where ``pipeline``'s book ended), and its ts."""
    action, rows, offset, extra, repeat = step
    if not pipeline.state.books["orderBookL2"].book("XBTUSD").valid:
        return partial(ts_ms + 1), ts_ms + 1  # a refused frame ended the book: start it again
    if repeat:
        return previous, ts_ms
    ts_ms += 1
    for row in rows:
        if offset is not None:
            row["timestamp"] = format_ms(ts_ms + offset)
    frame: dict[str, Any] = {"table": "orderBookL2", "action": action, "data": rows}
    if extra == "keys":
        frame["keys"] = ["symbol", "id", "side"]
    elif extra == "filter":
        frame["filter"] = {"symbol": "XBTUSD"}
    elif extra == "table":
        frame["table"] = "orderBookL2_25"
    elif extra == "null keys":
        frame.update(keys=None, filter=None)
    elif extra == "types":
        frame["types"] = {"id": "long"}
    elif extra == "bad types":
        frame.update(keys=None, types=5)  # refused: types must be an object
    return json.dumps(frame, separators=(",", ":")).encode(), ts_ms  # any integer


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(st.lists(STEP, min_size=1, max_size=25), st.booleans(), st.integers(1, 8))
def test_a_whole_read_ends_where_its_frames_fed_one_by_one_do(
        steps: list[tuple[str, list[dict[str, Any]], int | None, str | None, bool]],
        check_timestamps: bool, read_size: int) -> None:
    """``on_frames`` over the frames of a read (one ``now``, caches and counts carried across
    frames) ends exactly where ``on_frame`` per frame does, refusals and resyncs included."""
    single, reads = Pipeline(False, check_timestamps), Pipeline(False, check_timestamps)
    ts_ms, previous = WALL_MS, partial(WALL_MS)
    frames = [previous]
    for step in steps:
        single.feed(previous, 0.5)
        previous, ts_ms = next_frame(single, step, ts_ms, previous)
        frames.append(previous)
    single = Pipeline(False, check_timestamps)
    looks_single = [single.feed(frame, 0.5) for frame in frames]
    looks_reads = [reads.state.on_frames(frames[i:i + read_size], 0.5, WALL_MS)
                   for i in range(0, len(frames), read_size)]
    assert single.view() == reads.view()
    assert looks_reads == [any(looks_single[i:i + read_size])
                           for i in range(0, len(frames), read_size)]


def test_the_usual_delta_takes_the_fast_lane() -> None:
    """The frames above do reach the lane: a usual delta decodes; a partial, a frame with its
    keys first or a row of an unusual type does not (the general path takes those)."""
    row = {"symbol": "XBTUSD", "id": 21, "side": "Buy", "size": 5,
           "timestamp": format_ms(WALL_MS)}
    usual = orjson.dumps({"table": "orderBookL2", "action": "update", "data": [row]})
    delta = decode_book_delta(usual)
    assert delta is not None and delta.data[0].id == 21 and delta.data[0].price is None
    for other in ({"table": "orderBookL2", "action": "partial", "data": [row]},
                  {"action": "update", "table": "orderBookL2", "data": [row]},
                  {"table": "orderBookL2", "action": "update", "data": [{**row, "id": 2**63}]},
                  {"table": "orderBookL2", "action": "update", "data": [{**row, "size": 5.0}]},
                  {"table": "trade", "action": "insert", "data": [row]}):
        assert decode_book_delta(orjson.dumps(other)) is None
    assert decode_book_delta(orjson.dumps({"table": "orderBookL2", "action": "update",
                                           "data": [row]}).decode()) is None  # str: general
