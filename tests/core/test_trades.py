from __future__ import annotations

import pytest

from venueguard.core.trades import TapeConfig, TradeTape
from venueguard.venues.bitmex.reports import trade_reports


def on_rows(tape: TradeTape, rows: list[dict[str, object]], now: float) -> int:
    """BitMEX ``trade`` rows, read by the BitMEX adapter, into the neutral tape."""
    reports, malformed = trade_reports(rows)
    return tape.on_reports(reports, now, malformed=malformed)

def trade_row(price: float, size: float, side: str = "Buy", match_id: str | None = None,
              symbol: str = "XBTUSD") -> dict[str, object]:
    row: dict[str, object] = {"symbol": symbol, "price": price, "size": size, "side": side,
                              "timestamp": "2020-05-09T14:31:39.239Z"}
    if match_id is not None:
        row["trdMatchID"] = match_id
    return row


def test_rates_over_the_window() -> None:
    tape = TradeTape("XBTUSD", TapeConfig(window_s=10.0, bucket_s=1.0))
    for i in range(20):  # 20 trades of 5 contracts in 2 s
        tape.on_trade(100.0, 5, "Buy" if i % 2 else "Sell", now=100.0 + i * 0.1)
    assert tape.trade_rate(102.0) == pytest.approx(2.0)  # 20 trades / 10 s
    assert tape.volume_rate(102.0) == pytest.approx(10.0)  # 100 contracts / 10 s
    assert tape.buy_volume_rate(102.0) == pytest.approx(5.0)
    assert tape.sell_volume_rate(102.0) == pytest.approx(5.0)
    # 10 s later the first second's bucket has left the window, and later everything has
    assert tape.trade_rate(110.5) == pytest.approx(1.0)
    assert tape.trade_rate(112.0) == 0.0 and tape.volume_rate(112.0) == 0.0
    assert tape.total_trades == 20 and tape.total_volume == 100


def test_rows_are_parsed_filtered_and_deduplicated() -> None:
    tape = TradeTape("XBTUSD")
    rows = [trade_row(9672.5, 12, "Sell", "a"), trade_row(9673.0, 3, "Buy", "b"),
            trade_row(1.0, 1, "Buy", "c", symbol="ETHUSD")]
    assert on_rows(tape, rows, now=1.0) == 2
    # a partial after a resubscribe repeats the latest trades: counted once
    assert on_rows(tape, rows[:2], now=2.0) == 0
    assert tape.total_trades == 2
    last = tape.last()
    assert last is not None and (last.price, last.size, last.side) == (9673.0, 3, "Buy")
    assert last.timestamp == "2020-05-09T14:31:39.239Z" and last.trade_id == "b"
    assert [t.trade_id for t in tape.recent()] == ["a", "b"]
    assert [t.trade_id for t in tape.recent(1)] == ["b"] and tape.recent(0) == []


def test_malformed_rows_are_counted_not_raised() -> None:
    tape = TradeTape(None)
    bad = [{"price": "1", "size": 1, "side": "Buy"}, {"price": 1.0, "size": True, "side": "Buy"},
           {"price": 1.0, "size": 1, "side": "buy"}, {"size": 1, "side": "Buy"}]
    assert on_rows(tape, bad, now=0.0) == 0
    assert tape.malformed_rows == 4 and tape.last() is None


def test_memory_is_bounded_however_fast_trades_arrive() -> None:
    tape = TradeTape(None, TapeConfig(window_s=2.0, bucket_s=0.5, keep=50))
    for i in range(5_000):
        tape.on_trade(1.0, 1, "Buy", now=i * 0.001, trade_id=f"id{i}")
    assert len(tape.trades) == 50
    assert len(tape._buckets) <= 4
    assert len(tape._seen_ids) <= 100
    # 2,000 trades in the last 2 s (bucket resolution: 0.5 s)
    assert tape.trade_rate(4.999) == pytest.approx(2_000 / 2.0, rel=0.26)


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="window_s"):
        TapeConfig(window_s=1.0, bucket_s=2.0)
    with pytest.raises(ValueError, match="keep"):
        TapeConfig(keep=0)
