"""Fuzz: market-data frames through decode -> checks -> book (``MdState.on_frame``).

The property: for any mutated frame, either the book equals the reference book built from the
frame by an independent model of the rules (README, "Market data"), or the frame is refused and
counted (rejected, malformed or gap counters move) and the book is not silently changed (it is
invalid and awaits a resync, or unchanged). Never a silent change.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
from fuzzcfg import FUZZ
from hypothesis import given
from hypothesis import strategies as st

from venueguard.core.liveness import LivenessConfig
from venueguard.io.md_state import MdState, MdStateConfig
from venueguard.venues.bitmex.timefmt import format_ms, parse_ms_or_none

WALL_MS = 1_800_000_000_000
MAX_AGE_MS, FUTURE_MS = 2_000, 1_000
BASE = [  # (id, side, size, price)
    (11, "Sell", 300, 101.0), (12, "Sell", 200, 100.5),
    (21, "Buy", 100, 100.0), (22, "Buy", 400, 99.5), (23, "Buy", 50, 99.0),
]
Levels = dict[str, dict[int, tuple[float, int]]]  # side -> id -> (price, size)


def row(level_id: Any, side: Any, size: Any = None, price: Any = None,
        ts_ms: int = WALL_MS) -> dict[str, Any]:
    out: dict[str, Any] = {"symbol": "XBTUSD", "id": level_id, "side": side,
                           "timestamp": format_ms(ts_ms)}
    if size is not None:
        out["size"] = size
    if price is not None:
        out["price"] = price
    return out


def fresh_state() -> MdState:
    state = MdState(MdStateConfig(liveness=LivenessConfig(
        max_ts_age_ms=MAX_AGE_MS, future_tolerance_ms=FUTURE_MS, reorder_window_ms=500)))
    state.begin(0.0)
    state.on_subscribed("orderBookL2:XBTUSD", 0.0)
    partial = {"table": "orderBookL2", "action": "partial", "filter": {"symbol": "XBTUSD"},
               "data": [row(i, s, z, p) for i, s, z, p in BASE]}
    state.on_frame(orjson.dumps(partial), 0.1, WALL_MS)
    assert state.books["orderBookL2"].book("XBTUSD").valid
    return state


# ---- the reference model ---------------------------------------------------------------------

def _price_ok(price: object) -> bool:
    return (type(price) in (int, float) and math.isfinite(price)  # type: ignore[arg-type]
            and 0 < price <= 1e9)  # type: ignore[operator]


def _size_ok(size: object) -> bool:
    return type(size) is int and 0 < size <= 10**15


def _crossed(levels: Levels) -> bool:
    bids = [p for p, _ in levels["Buy"].values()]
    asks = [p for p, _ in levels["Sell"].values()]
    return bool(bids and asks and max(bids) >= min(asks))


def _apply_row(levels: Levels, action: str, r: dict[str, Any]) -> bool:
    side, level_id = r.get("side"), r.get("id")
    if side not in ("Buy", "Sell") or type(level_id) is not int:
        return False
    if not -(2**63) <= level_id < 2**63:  # ids are int64 on the wire
        return False
    book = levels[side]
    price, size = r.get("price"), r.get("size")
    if action == "insert":
        if level_id in book or not _price_ok(price) or not _size_ok(size):
            return False
        if any(p == price for p, _ in book.values()):
            return False
        book[level_id] = (price, size)  # type: ignore[assignment]
        return True
    if level_id not in book:
        return False
    old_price, old_size = book[level_id]
    if action == "delete":
        if price is not None and price != old_price:
            return False
        del book[level_id]
        return True
    if size is not None and not _size_ok(size):
        return False
    if price is not None and price != old_price:
        return False  # a level's price never changes under its id
    book[level_id] = (old_price, old_size if size is None else size)
    return True


PONG = object()  # the text frame ``pong``: the heartbeat, not JSON


def parse(payload: bytes) -> object:
    """The frame as the reference sees it: ``pong``, decoded JSON, or AssertionError."""
    if payload == b"pong":
        return PONG
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise AssertionError(f"an undecodable frame went uncounted: {payload!r}") from None


def reference(obj: object, *, mine_only: bool = False) -> Levels | None:
    """The XBTUSD book after ``obj`` is applied to BASE, or None when it must be refused.

    ``mine_only``: judge only the XBTUSD rows (a frame mixing symbols may carry a bad row for
    another symbol; that book refuses it, this one takes its own valid rows).
    """
    levels: Levels = {"Buy": {}, "Sell": {}}
    for i, s, z, p in BASE:
        levels[s][i] = (p, z)
    if obj is PONG:
        return levels
    if type(obj) is not dict or obj.get("table") != "orderBookL2":
        return None if type(obj) is not dict else levels
    action, rows = obj.get("action"), obj.get("data")
    if action not in ("partial", "insert", "update", "delete") or type(rows) is not list:
        return None
    if not rows:
        return levels
    if any(type(r) is not dict for r in rows):
        return None
    stamps = [parse_ms_or_none(r.get("timestamp")) for r in rows]
    if any(ts is None for ts in stamps):
        return None
    newest = max(stamps) if action == "partial" else stamps[-1]
    assert newest is not None
    if WALL_MS - newest > MAX_AGE_MS or newest - WALL_MS > FUTURE_MS:
        return None
    if not mine_only and any(type(r.get("symbol")) is not str or not r.get("symbol")
                             for r in rows):
        return None
    mine = [r for r in rows if r["symbol"] == "XBTUSD"]
    if action == "partial":
        if not mine:
            return levels
        levels = {"Buy": {}, "Sell": {}}
        return levels if all(_apply_row(levels, "insert", r) for r in mine) else None
    if not all(_apply_row(levels, action, r) for r in mine):
        return None
    return None if _crossed(levels) else levels


def book_levels(state: MdState) -> Levels:
    book = state.books["orderBookL2"].book("XBTUSD")
    sizes = book.sides()
    return {side: {key_id: (price, sizes[side][price]) for key_id, price in ids.items()}
            for side, ids in (("Buy", book._bid_ids), ("Sell", book._ask_ids))}


# ---- mutations -------------------------------------------------------------------------------

NASTY = st.sampled_from([
    None, 0, -1, 1, 7, 100, 250, 0.5, -0.0, 2.5, 1e-9, 1e300, 10**16, 2**63 - 1, 2**63,
    2**64 - 1, -(2**63), True, False,
    "", "100", "Buy", "Sell", "buy", [], {}, [1], 99.0, 99.25, 100.0, 100.5, 101.0, 102.0,
    11, 12, 21, 22, 23, 24, "2026-12-03T14:00:00.000Z", format_ms(WALL_MS - 5_000),
    format_ms(WALL_MS + 5_000), format_ms(WALL_MS - 300), "2020-13-45T99:00:00.000Z",
])
KEYS = st.sampled_from(["symbol", "id", "side", "size", "price", "timestamp"])


@st.composite
def base_frames(draw: st.DrawFn) -> dict[str, Any]:
    action = draw(st.sampled_from(["insert", "update", "delete", "partial"]))
    count = draw(st.integers(1, 3))
    rows = []
    for n in range(count):
        side = draw(st.sampled_from(["Buy", "Sell"]))
        if action == "insert":
            price = (98.0 - n) if side == "Buy" else (102.0 + n)
            rows.append(row(30 + n, side, draw(st.integers(1, 500)), price))
        elif action == "partial":
            rows.append(row(40 + n, side, 10, (97.0 - n) if side == "Buy" else (103.0 + n)))
        else:
            level_id = draw(st.sampled_from([21, 22, 23] if side == "Buy" else [11, 12]))
            size = draw(st.integers(1, 500)) if action == "update" else None
            rows.append(row(level_id, side, size))
    return {"table": "orderBookL2", "action": action, "data": rows}


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    frame = draw(base_frames())
    for _ in range(draw(st.integers(0, 3))):
        what = draw(st.sampled_from(["set", "drop", "action", "table", "rows"]))
        rows = frame["data"]
        if not (isinstance(rows, list) and all(isinstance(r, dict) for r in rows)):
            break  # the rows are already gone
        if what == "set" and rows:
            rows[draw(st.integers(0, len(rows) - 1))][draw(KEYS)] = draw(NASTY)
        elif what == "drop" and rows:
            rows[draw(st.integers(0, len(rows) - 1))].pop(draw(KEYS), None)
        elif what == "action":
            frame["action"] = draw(st.sampled_from(["insert", "update", "delete", "partial",
                                                    "upsert", "", None, 3]))
        elif what == "table":
            frame["table"] = draw(st.sampled_from(["orderBookL2", "orderBookL2_25", "trade",
                                                   "", None, ["orderBookL2"]]))
        elif what == "rows":
            frame["data"] = draw(st.sampled_from([[], [7], "rows", None, rows + rows,
                                                  rows[:1]]))
    payload = orjson.dumps(frame)
    if draw(st.booleans()) and draw(st.booleans()):  # byte-level damage, now and then
        data = bytearray(payload)
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(data) - 1))
            data[at] = draw(st.integers(0, 255))
        payload = bytes(data)
    return payload


@FUZZ
@given(mutated())
def test_a_mutated_frame_is_applied_exactly_or_refused_and_counted(payload: bytes) -> None:
    state = fresh_state()
    before = book_levels(state)
    counters = state.counters
    seen = (counters.rejected, counters.malformed, counters.gaps)
    state.on_frame(payload, 0.2, WALL_MS)
    assert "" not in state.books["orderBookL2"].books  # a row without a symbol opens no book
    book = state.books["orderBookL2"].book("XBTUSD")
    counted = (counters.rejected, counters.malformed, counters.gaps) != seen
    if counted:
        if book.valid and book_levels(state) != before:  # only this symbol's valid rows
            assert book_levels(state) == reference(parse(payload), mine_only=True)
        return
    expected = reference(parse(payload))
    assert expected is not None, f"a frame the rules refuse was taken silently: {payload!r}"
    assert book.valid and book_levels(state) == expected


def test_the_heartbeat_text_is_not_data() -> None:
    state = fresh_state()
    before = book_levels(state)
    state.on_frame(b"pong", 0.2, WALL_MS)
    assert reference(parse(b"pong")) == before == book_levels(state)


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise_and_never_touch_the_book(payload: bytes) -> None:
    state = fresh_state()
    before = book_levels(state)
    state.on_frame(payload, 0.2, WALL_MS)
    book = state.books["orderBookL2"].book("XBTUSD")
    assert not book.valid or book_levels(state) == before


def test_the_reference_refuses_the_four_impossible_shapes() -> None:
    """The oracle itself: a price change under an id, an id beyond int64, a row without a
    usable symbol and a partial with one unreadable timestamp are all refused."""
    def frame(action: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {"table": "orderBookL2", "action": action, "data": rows}

    assert reference(frame("update", [row(21, "Buy", 5, 100.0)])) is not None
    assert reference(frame("update", [row(21, "Buy", 5, 98.0)])) is None
    assert reference(frame("insert", [row(2**63, "Buy", 5, 98.0)])) is None
    assert reference(frame("insert", [row(2**63 - 1, "Buy", 5, 98.0)])) is not None
    for symbol in ("", None, 7):
        assert reference(frame("update", [row(21, "Buy", 5) | {"symbol": symbol}])) is None
    partial = [row(40, "Buy", 1, 97.0), row(41, "Sell", 1, 103.0)]
    assert reference(frame("partial", partial)) is not None
    partial[0]["timestamp"] = "2026-12-03T14:00:00.000"
    assert reference(frame("partial", partial)) is None
