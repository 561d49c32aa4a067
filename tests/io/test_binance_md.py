"""The Binance session's pipeline state, frame by frame (no socket): time checks on ``E`` and
``T``, ticker and trade ordering, refusals counted with their reason, and which books resync."""

from __future__ import annotations

from typing import Any

import orjson

from venueguard.core.liveness import LivenessConfig
from venueguard.io.binance_md import BinanceMdConfig, BinanceMdState, channel_of
from venueguard.io.md_state import MdSink

WALL = 1_800_000_000_000
SNAP = {"lastUpdateId": 100, "E": WALL, "T": WALL,
        "bids": [["100.0", "1.000"]], "asks": [["100.5", "2.000"]]}


def diff(symbol: str, first: int, last: int, prev: int, bids: list[list[str]] | None = None,
         asks: list[list[str]] | None = None, ts: int = WALL) -> bytes:
    data = {"e": "depthUpdate", "E": ts, "T": ts - 1, "s": symbol, "U": first, "u": last,
            "pu": prev, "b": bids or [], "a": asks or []}
    return orjson.dumps({"stream": f"{symbol.lower()}@depth@100ms", "data": data})


def ticker(update_id: int, ts: int = WALL) -> bytes:
    data = {"e": "bookTicker", "u": update_id, "s": "BTCUSDT", "b": "100.0", "B": "1",
            "a": "100.5", "A": "2", "T": ts - 1, "E": ts}
    return orjson.dumps({"stream": "btcusdt@bookTicker", "data": data})


def trade(agg_id: int, ts: int = WALL) -> bytes:
    data = {"e": "aggTrade", "E": ts, "a": agg_id, "s": "BTCUSDT", "p": "100.2", "q": "0.5",
            "f": 1, "l": 2, "T": ts - 1, "m": False}
    return orjson.dumps({"stream": "btcusdt@aggTrade", "data": data})


def synced(*symbols: str) -> tuple[BinanceMdState, list[str]]:
    reasons: list[str] = []
    state = BinanceMdState(BinanceMdConfig(
        liveness=LivenessConfig(max_ts_age_ms=2_000, future_tolerance_ms=1_000),
        increments=dict.fromkeys(symbols, (0.1, 0.001))), MdSink(on_rejected=reasons.append))
    state.begin(0.0)
    streams = [f"{s.lower()}@depth@100ms" for s in symbols] + ["btcusdt@bookTicker",
                                                                 "btcusdt@aggTrade"]
    state.expect(streams)
    for stream in streams:
        state.on_subscribed(stream, 0.0)
    for symbol in symbols:
        assert state.on_snapshot(symbol, orjson.dumps(SNAP), 0.1)
        assert not state.on_frame(diff(symbol, 90, 105, 80), 0.2, WALL)
    return state, reasons


def test_channels_are_named_by_kind_and_symbol() -> None:
    assert channel_of("btcusdt@depth@100ms") == "depth:BTCUSDT"
    assert channel_of("btcusdt@bookTicker") == "bookTicker:BTCUSDT"
    assert channel_of("btcusdt@aggTrade") == "aggTrade:BTCUSDT"
    assert channel_of("btcusdt@kline_1m") is None and channel_of("@depth") is None


def test_a_stale_or_future_event_or_transaction_time_is_refused_and_resynced() -> None:
    for frame, reason in ((diff("BTCUSDT", 106, 110, 105, ts=WALL - 5_000), "stale"),
                          (diff("BTCUSDT", 106, 110, 105, ts=WALL + 5_000), "future")):
        state, reasons = synced("BTCUSDT")
        assert state.on_frame(frame, 0.3, WALL)
        assert reasons == [reason] and not state.depth.book("BTCUSDT").valid
        assert state.resync_reason is not None
    state, reasons = synced("BTCUSDT")  # T stale although E is fresh
    data = orjson.loads(diff("BTCUSDT", 106, 110, 105))
    data["data"]["T"] = WALL - 5_000
    assert state.on_frame(orjson.dumps(data), 0.3, WALL) and reasons == ["stale"]


def test_a_broken_chain_is_a_gap_and_old_news_is_counted_without_a_resync() -> None:
    state, reasons = synced("BTCUSDT", "ETHUSDT")
    assert not state.on_frame(diff("BTCUSDT", 90, 105, 80), 0.3, WALL)  # the same diff again
    assert reasons == ["duplicate"] and state.resync_reason is None
    assert state.on_frame(diff("ETHUSDT", 120, 130, 110), 0.4, WALL)
    assert state.counters.gaps == 1 and state.resync_reason == "depth:ETHUSDT gap"
    assert state.depth.book("BTCUSDT").valid and not state.depth.book("ETHUSDT").valid


def test_a_diff_that_crosses_the_book_is_a_gap() -> None:
    state, _ = synced("BTCUSDT")
    assert state.on_frame(diff("BTCUSDT", 106, 110, 105, bids=[["101.0", "1"]]), 0.3, WALL)
    assert state.resync_reason == "depth:BTCUSDT crossed_book"


def test_unreadable_frames_resync_only_the_books_they_may_belong_to() -> None:
    state, reasons = synced("BTCUSDT", "ETHUSDT")
    bad = diff("ETHUSDT", 106, 110, 105, bids=[["1e5", "1"]])
    assert state.on_frame(bad, 0.3, WALL) and reasons == ["invalid_price"]
    assert state.depth.book("BTCUSDT").valid and not state.depth.book("ETHUSDT").valid
    state, reasons = synced("BTCUSDT", "ETHUSDT")
    kline = orjson.dumps({"stream": "btcusdt@kline_1m", "data": {"e": "kline", "s": "BTCUSDT"}})
    assert not state.on_frame(kline, 0.3, WALL) and reasons == ["unknown_event"]
    assert state.resync_reason is None
    assert state.on_frame(b"{not json", 0.4, WALL) and reasons[-1] == "malformed"
    assert not state.depth.book("BTCUSDT").valid and not state.depth.book("ETHUSDT").valid


def test_tickers_and_trades_are_checked_for_order_and_repeats() -> None:
    state, reasons = synced("BTCUSDT")
    assert not state.on_frame(ticker(7), 0.3, WALL)
    quote: dict[str, Any] = dict(state.quotes["BTCUSDT"])
    assert quote["bid"] == (100.0, 1.0) and quote["ask"] == (100.5, 2.0)
    state.on_frame(ticker(7), 0.31, WALL)
    state.on_frame(ticker(6), 0.32, WALL)
    assert reasons == ["duplicate", "reorder"] and state.resync_reason is None
    state.on_frame(trade(1), 0.4, WALL)
    state.on_frame(trade(1), 0.41, WALL)
    tape = state.tapes["BTCUSDT"]
    assert tape.total_trades == 1 and reasons[-1] == "duplicate"
    last = tape.last()
    assert last is not None and last.side == "Buy" and last.trade_id == "1"
    assert state.depth.book("BTCUSDT").valid


def test_an_event_naming_another_symbol_than_its_stream_is_refused() -> None:
    state, reasons = synced("BTCUSDT")
    wrong = orjson.loads(diff("ETHUSDT", 106, 110, 105))
    wrong["stream"] = "btcusdt@depth@100ms"
    assert state.on_frame(orjson.dumps(wrong), 0.3, WALL)
    assert reasons == ["malformed_row"] and not state.depth.book("BTCUSDT").valid
    state, reasons = synced("BTCUSDT")  # a symbol this session does not follow: no book
    assert not state.on_frame(diff("XRPUSDT", 1, 2, 0), 0.3, WALL)
    assert reasons == ["unexpected_symbol"] and "XRPUSDT" not in state.depth.syncs
    assert state.depth.book("BTCUSDT").valid


def test_a_ticker_or_trade_naming_another_symbol_than_its_stream_is_refused() -> None:
    state, reasons = synced("BTCUSDT")
    for frame in (ticker(9), trade(5)):
        wrong = orjson.loads(frame)
        wrong["data"]["s"] = "ETHUSDT"
        assert not state.on_frame(orjson.dumps(wrong), 0.3, WALL)
    assert reasons == ["malformed_row", "malformed_row"]
    assert not state.quotes and not state.tapes and state.depth.book("BTCUSDT").valid
