"""Binance USDⓈ-M depth: decoding and the documented sync (buffer, snapshot, U <= L <= u, pu
chain), unit by unit (tests/fuzz/test_fuzz_binance_depth.py fuzzes it against an oracle)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from venueguard.core.book import APPLIED, DROPPED, ApplyStatus, BookConfig
from venueguard.venues.binance.depth import GAP, DepthSync, SyncState
from venueguard.venues.binance.messages import (
    AggTrade,
    BookTicker,
    DepthUpdate,
    ErrorReply,
    MessageError,
    Reply,
    decode,
    depth_snapshot,
    increments,
)

TICK, LOT = "0.01", "0.001"
CONFIG = BookConfig(tick=float(TICK), lot=float(LOT), whole_sizes=False)
SNAPSHOT = {"lastUpdateId": 1000, "E": 10, "T": 9,
            "bids": [["100.00", "1.000"], ["99.99", "2.500"]],
            "asks": [["100.01", "0.750"], ["100.05", "3.000"]]}


def diff(first: int, last: int, prev: int, bids: list[list[Any]] | None = None,
         asks: list[list[Any]] | None = None, symbol: str = "BTCUSDT") -> dict[str, Any]:
    return {"e": "depthUpdate", "E": 20, "T": 19, "s": symbol, "U": first, "u": last,
            "pu": prev, "b": bids or [], "a": asks or []}


def frame(data: dict[str, Any], stream: str | None = "btcusdt@depth@100ms") -> bytes:
    return orjson.dumps({"stream": stream, "data": data} if stream else data)


def update(data: dict[str, Any]) -> DepthUpdate:
    msg = decode(frame(data))
    assert isinstance(msg, DepthUpdate)
    return msg


def synced() -> DepthSync:
    sync = DepthSync("BTCUSDT", CONFIG)
    assert sync.on_snapshot(depth_snapshot(orjson.dumps(SNAPSHOT)), 1.0) is APPLIED
    assert sync.on_update(update(diff(990, 1005, 980, [["100.00", "1.5"]])), 1.1) is APPLIED
    return sync


# ---- decoding --------------------------------------------------------------------------------

def test_decode_reads_every_market_event_raw_or_combined() -> None:
    msg = decode(frame(diff(1, 2, 0, [["7.5040", "813"]], [["7.6150", "0"]])))
    assert msg == DepthUpdate("BTCUSDT", 20, 19, 1, 2, 0, [(7.504, 813.0)], [(7.615, 0.0)],
                              "btcusdt@depth@100ms")
    ticker = decode(frame({"e": "bookTicker", "u": 5, "s": "X", "b": "7.6110", "B": "2",
                           "a": "7.6120", "A": "297", "T": 1, "E": 2}, None))
    assert ticker == BookTicker("X", 5, 2, 1, (7.611, 2.0), (7.612, 297.0))
    trade = decode(frame({"e": "aggTrade", "E": 3, "a": 9, "s": "X", "p": "7.6", "q": "0.5",
                          "f": 1, "l": 2, "T": 2, "m": True}, "x@aggTrade"))
    assert trade == AggTrade("X", 9, 7.6, 0.5, 1, 2, 2, 3, True, "x@aggTrade")
    assert decode(b'{"result":null,"id":1}') == Reply(1, None)
    assert decode(b'{"error":{"code":2,"msg":"bad"},"id":7}') == ErrorReply(7, 2, "bad")


@pytest.mark.parametrize(("data", "code"), [
    (diff(1, 2, 0, [["1e5", "1"]]), "invalid_price"),
    (diff(1, 2, 0, [["nan", "1"]]), "invalid_price"),
    (diff(1, 2, 0, [["-1.0", "1"]]), "invalid_price"),
    (diff(1, 2, 0, [[" 1.0", "1"]]), "invalid_price"),
    (diff(1, 2, 0, [[100.0, "1"]]), "invalid_price"),  # a number, not Binance's string
    (diff(1, 2, 0, [["100.0", "inf"]]), "invalid_size"),
    (diff(1, 2, 0, [["100.0", ""]]), "invalid_size"),
    (diff(1, 2, 0, [["100.0"]]), "malformed"),
    (diff(1, 2, 0) | {"u": "2"}, "invalid_id"),
    (diff(1, 2, 0) | {"pu": 2**63}, "invalid_id"),
    (diff(1, 2, 0) | {"U": True}, "invalid_id"),
    (diff(1, 2, 0) | {"s": ""}, "malformed"),
    (diff(1, 2, 0) | {"b": "x"}, "malformed"),
    ({"e": "markPriceUpdate", "s": "X"}, "unknown_event"),
])
def test_decode_refuses_impossible_values_with_a_reason(data: dict[str, Any], code: str) -> None:
    with pytest.raises(MessageError) as caught:
        decode(frame(data))
    assert caught.value.code == code


@given(st.binary(max_size=200))
def test_decode_raises_only_message_error(payload: bytes) -> None:
    try:
        decode(payload)
    except MessageError:
        pass


def test_increments_come_from_exchange_info_filters() -> None:
    info = {"symbols": [
        {"symbol": "BTCUSDT", "filters": [{"filterType": "PRICE_FILTER", "tickSize": "0.10"},
                                          {"filterType": "LOT_SIZE", "stepSize": "0.001"}]},
        {"symbol": "ODD", "filters": [{"filterType": "PRICE_FILTER", "tickSize": "x"}]},
        {"symbol": 5}, "junk"]}
    assert increments(info) == {"BTCUSDT": (0.1, 0.001), "ODD": (None, None)}
    assert increments({}) == {}


# ---- the documented sync ---------------------------------------------------------------------

def test_diffs_before_the_snapshot_are_buffered_then_bridged() -> None:
    sync = DepthSync("BTCUSDT", CONFIG)
    assert sync.on_update(update(diff(900, 950, 890, [["99.00", "1"]])), 0.1) is DROPPED
    assert sync.on_update(update(diff(951, 1003, 950, [["100.00", "4"]])), 0.2) is DROPPED
    assert sync.on_update(update(diff(1004, 1010, 1003, [], [["100.01", "0"]])), 0.3) is DROPPED
    assert sync.needs_snapshot and not sync.book.valid
    assert sync.on_snapshot(depth_snapshot(orjson.dumps(SNAPSHOT)), 1.0) is APPLIED
    assert sync.state is SyncState.SYNCED and sync.last_id == 1010
    assert sync.book.depth() == ([(100.0, 4.0), (99.99, 2.5)], [(100.05, 3.0)])
    assert sync.book.is_fresh(1.0) and sync.book.partials == 1


def test_a_break_in_the_pu_chain_is_a_gap_and_asks_for_a_snapshot() -> None:
    sync = synced()
    result = sync.on_update(update(diff(1010, 1020, 1007, [["100.00", "9"]])), 2.0)
    assert result.status is ApplyStatus.RESYNC and result.reason == GAP
    assert sync.needs_snapshot and not sync.book.valid and sync.book.best_bid() is None
    # the next snapshot syncs again
    snap = SNAPSHOT | {"lastUpdateId": 1030}
    assert sync.on_update(update(diff(1025, 1040, 1020, [["99.00", "1"]])), 2.1) is DROPPED
    assert sync.on_snapshot(depth_snapshot(orjson.dumps(snap)), 2.2) is APPLIED
    assert sync.book.best_bid() == (100.0, 1.0) and sync.last_id == 1040


def test_a_first_diff_after_the_snapshot_id_is_a_gap() -> None:
    sync = DepthSync("BTCUSDT", CONFIG)
    assert sync.on_snapshot(depth_snapshot(orjson.dumps(SNAPSHOT)), 1.0) is APPLIED
    assert sync.on_update(update(diff(500, 999, 400)), 1.1) is DROPPED  # already in the image
    assert sync.on_update(update(diff(1001, 1005, 999)), 1.2).reason == GAP


def test_old_news_is_refused_without_a_resync() -> None:
    sync = synced()
    assert sync.on_update(update(diff(990, 1005, 980, [["100.00", "7"]])), 2.0).reason == \
        "duplicate"
    assert sync.on_update(update(diff(990, 1001, 980, [["100.00", "7"]])), 2.0).reason == \
        "reorder"
    assert sync.book.valid and sync.book.best_bid() == (100.0, 1.5)
    assert sync.on_update(update(diff(1006, 1008, 1005, [["100.00", "2"]])), 2.1) is APPLIED


def test_an_impossible_level_is_refused_and_the_book_waits_for_a_snapshot() -> None:
    sync = synced()
    off_tick = update(diff(1006, 1008, 1005, [["100.005", "2"]]))
    assert sync.on_update(off_tick, 2.0).reason == "off_tick"
    assert sync.needs_snapshot and not sync.book.valid
    sync = synced()
    assert sync.on_update(update(diff(1006, 1008, 1005, [["100.00", "0.0005"]])), 2.0
                          ).reason == "off_lot"
