"""Regressions: four kinds of impossible BitMEX frames that used to reach (or silently skip) a
valid book. Each is refused, counted under its ``data_rejected_total`` reason, and the session
is asked to resync; the book never shows the impossible value."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from venueguard.core.liveness import LivenessConfig
from venueguard.io.md_state import MdSink, MdState, MdStateConfig
from venueguard.venues.bitmex.timefmt import format_ms

WALL_MS = 1_800_000_000_000


def level(level_id: int, side: str, size: int | None, price: float | None,
          symbol: object = "XBTUSD", ts: object = None) -> dict[str, Any]:
    out: dict[str, Any] = {"symbol": symbol, "id": level_id, "side": side,
                           "timestamp": format_ms(WALL_MS) if ts is None else ts}
    if size is not None:
        out["size"] = size
    if price is not None:
        out["price"] = price
    return out


def synced() -> tuple[MdState, list[str]]:
    reasons: list[str] = []
    state = MdState(MdStateConfig(liveness=LivenessConfig(max_ts_age_ms=5_000)),
                    MdSink(on_rejected=reasons.append))
    state.begin(0.0)
    state.expect(["orderBookL2:XBTUSD", "trade:XBTUSD"])
    state.on_frame(orjson.dumps({
        "table": "orderBookL2", "action": "partial", "filter": {"symbol": "XBTUSD"},
        "data": [level(1, "Buy", 10, 100.0), level(2, "Buy", 20, 99.0),
                 level(3, "Sell", 30, 101.0)]}), 0.1, WALL_MS)
    assert state.books["orderBookL2"].books["XBTUSD"].valid and state.resync_reason is None
    return state, reasons


def send(state: MdState, table: str, action: str, rows: list[dict[str, Any]],
         **extra: Any) -> None:
    state.on_frame(orjson.dumps({"table": table, "action": action, "data": rows, **extra}),
                   0.2, WALL_MS)


def test_an_update_moving_a_level_id_to_a_new_price_is_refused() -> None:
    state, reasons = synced()
    send(state, "orderBookL2", "update", [level(2, "Buy", 20, 100.5)])  # would top the bids
    book = state.books["orderBookL2"].books["XBTUSD"]
    assert reasons == ["price_mismatch"] and state.counters.rejected == 1
    assert not book.valid and book.best_bid() is None
    assert state.resync_reason is not None and "price_mismatch" in state.resync_reason


@pytest.mark.parametrize("level_id", [2**63, 2**64 - 1])
@pytest.mark.parametrize("action", ["insert", "update", "delete"])
def test_a_level_id_outside_int64_is_refused(action: str, level_id: int) -> None:
    state, reasons = synced()
    send(state, "orderBookL2", action,
         [level(level_id, "Buy", 5, 98.0 if action == "insert" else None)])
    assert reasons == ["invalid_id"] and state.resync_reason is not None
    assert not state.books["orderBookL2"].books["XBTUSD"].valid


@pytest.mark.parametrize("symbol", ["", None, 7, 2.5])
@pytest.mark.parametrize("extra", [{}, {"filter": {"symbol": "XBTUSD"}}])
def test_a_book_row_whose_symbol_is_empty_null_or_a_number_is_counted(
        symbol: object, extra: dict[str, Any]) -> None:
    state, reasons = synced()
    send(state, "orderBookL2", "update", [level(1, "Buy", 11, None, symbol)], **extra)
    assert reasons == ["malformed_row"] and state.resync_reason is not None
    assert "" not in state.books["orderBookL2"].books
    assert state.books["orderBookL2"].books["XBTUSD"].best_bid() != (100.0, 11)


@pytest.mark.parametrize("symbol", ["", None, 7])
def test_a_trade_row_without_a_usable_symbol_is_counted_not_dropped(symbol: object) -> None:
    state, reasons = synced()
    good = {"symbol": "XBTUSD", "side": "Buy", "size": 5, "price": 100.0,
            "timestamp": format_ms(WALL_MS), "trdMatchID": "a"}
    send(state, "trade", "insert", [good, good | {"symbol": symbol, "trdMatchID": "b"}])
    assert reasons == ["malformed_row"] and state.counters.rejected == 1
    assert "XBTUSD" not in state.tapes  # the message is refused whole: nothing half-applied


@pytest.mark.parametrize("stamp", [None, "", "2026-12-03T14:00:00.000", "2026-13-03T14:00:00.000Z",
                                   1_800_000_000_000, ["t"]])
def test_a_partial_with_one_unreadable_row_timestamp_is_refused(stamp: object) -> None:
    state, reasons = synced()
    rows = [level(5, "Buy", 1, 98.0), level(6, "Sell", 1, 102.0, ts=stamp)]
    if stamp is None:
        del rows[1]["timestamp"]
    send(state, "orderBookL2", "partial", rows, filter={"symbol": "XBTUSD"})
    book = state.books["orderBookL2"].books["XBTUSD"]
    assert reasons == ["missing_timestamp" if stamp is None else "bad_timestamp"]
    assert not book.valid and len(book) == 0 and state.resync_reason is not None
