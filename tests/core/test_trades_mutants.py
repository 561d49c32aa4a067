"""Trade tape edges: config bounds, per-side sums after a bucket expires, bucket indexing,
duplicate-id memory, report filtering and the accessors."""

from __future__ import annotations

import re

import pytest

from venueguard.core.reports import TradeReport
from venueguard.core.trades import TapeConfig, Trade, TradeTape

CONFIG_ERROR = f"^{re.escape('need window_s > 0, 0 < bucket_s <= window_s and keep > 0')}$"


@pytest.mark.parametrize("kwargs", [
    {"window_s": 0.0, "bucket_s": 0.0},
    {"window_s": -1.0, "bucket_s": -2.0},
    {"window_s": 1.0, "bucket_s": 0.0},
    {"window_s": 1.0, "bucket_s": 2.0},
    {"keep": 0},
])
def test_a_bad_config_is_refused_with_the_rule(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=CONFIG_ERROR):
        TapeConfig(**kwargs)  # type: ignore[arg-type]


def test_the_smallest_configs_are_accepted() -> None:
    assert TapeConfig(window_s=1.0, bucket_s=1.0, keep=1) == TapeConfig(1.0, 1.0, 1)
    assert TapeConfig(window_s=0.5, bucket_s=0.25).window_s == 0.5


def test_a_new_tape_has_no_time_and_no_rates() -> None:
    tape = TradeTape("XBTUSD")
    assert tape.last_now is None and tape.last() is None and tape.recent() == []
    assert tape.trade_rate(0.0) == 0.0 and tape.volume_rate(0.0) == 0.0
    assert tape.buy_volume_rate(0.0) == 0.0 and tape.sell_volume_rate(0.0) == 0.0


def test_each_side_keeps_its_own_volume_when_the_oldest_bucket_expires() -> None:
    tape = TradeTape(None, TapeConfig(window_s=2.0, bucket_s=1.0))
    tape.on_trade(10.0, 3, "Buy", now=0.1)    # bucket 0
    tape.on_trade(10.0, 2, "Sell", now=0.2)   # bucket 0
    tape.on_trade(10.0, 2, "Buy", now=0.3)    # bucket 0
    tape.on_trade(10.0, 3, "Sell", now=0.4)   # bucket 0: buy 5, sell 5
    tape.on_trade(10.0, 7, "Buy", now=1.1)    # bucket 1
    tape.on_trade(10.0, 11, "Sell", now=1.2)  # bucket 1: buy 7, sell 11
    assert tape.buy_volume_rate(1.5) == 12 / 2.0
    assert tape.sell_volume_rate(1.5) == 16 / 2.0
    assert tape.trade_rate(1.5) == 6 / 2.0
    # at 2.0 the window holds buckets 1 and 2: bucket 0 has left
    assert tape.buy_volume_rate(2.0) == 7 / 2.0
    assert tape.sell_volume_rate(2.0) == 11 / 2.0
    assert tape.volume_rate(2.0) == 18 / 2.0
    assert tape.trade_rate(2.0) == 2 / 2.0


def test_a_buy_is_counted_as_bought_and_a_sell_as_sold() -> None:
    tape = TradeTape(None, TapeConfig(window_s=1.0, bucket_s=1.0))
    tape.on_trade(10.0, 4, "Buy", now=0.0)
    tape.on_trade(10.0, 1, "Sell", now=0.5)
    assert (tape.buy_volume_rate(0.5), tape.sell_volume_rate(0.5)) == (4.0, 1.0)


def test_a_window_of_one_bucket_forgets_the_previous_bucket() -> None:
    tape = TradeTape(None, TapeConfig(window_s=1.0, bucket_s=1.0))
    tape.on_trade(10.0, 1, "Buy", now=0.5)
    assert tape.trade_rate(0.9) == 1.0
    assert tape.trade_rate(1.5) == 0.0


def test_buckets_are_floored_for_a_clock_below_zero() -> None:
    """A monotonic clock may read negative: -0.5 lies in bucket -1, which has left at 0.0."""
    tape = TradeTape(None, TapeConfig(window_s=1.0, bucket_s=1.0))
    tape.on_trade(10.0, 1, "Buy", now=-0.5)
    assert tape.trade_rate(-0.1) == 1.0
    assert tape.trade_rate(0.0) == 0.0


def test_the_window_and_the_bucket_of_a_trade_agree_on_float_division() -> None:
    """1.0 // 0.1 is 9.0 (1.0 / 0.1 rounds to 10.0): a trade and the window use the same one."""
    tape = TradeTape(None, TapeConfig(window_s=0.1, bucket_s=0.1))
    tape.on_trade(10.0, 2, "Sell", now=1.0)
    assert tape.trade_rate(1.0) == pytest.approx(10.0)
    assert tape.sell_volume_rate(1.0) == pytest.approx(20.0)
    assert tape.trade_rate(1.05) == 0.0   # 1.05 // 0.1 == 10: bucket 9 has left


def test_the_trade_records_its_receive_time_and_the_tape_its_last_time() -> None:
    tape = TradeTape(None)
    tape.on_trade(10.0, 1, "Buy", now=3.25, timestamp="t1", trade_id="a")
    assert tape.last() == Trade(10.0, 1, "Buy", 3.25, "t1", "a")
    assert tape.last_now == 3.25


def test_ids_are_remembered_up_to_twice_keep_before_the_oldest_are_forgotten() -> None:
    tape = TradeTape(None, TapeConfig(keep=2))
    for trade_id in "abcd":  # 4 ids == 2 * keep: all still remembered
        assert tape.on_trade(1.0, 1, "Buy", now=0.0, trade_id=trade_id)
    assert not tape.on_trade(1.0, 1, "Buy", now=0.0, trade_id="a")
    assert tape.on_trade(1.0, 1, "Buy", now=0.0, trade_id="e")  # fifth id: a and b forgotten
    assert tape.on_trade(1.0, 1, "Buy", now=0.0, trade_id="a")
    assert not tape.on_trade(1.0, 1, "Buy", now=0.0, trade_id="c")
    assert tape.total_trades == 6


def test_reports_of_another_symbol_are_skipped_not_the_rest() -> None:
    tape = TradeTape("XBTUSD")
    reports = [TradeReport("ETHUSD", 1.0, 1, "Buy", trade_id="x"),
               TradeReport("XBTUSD", 2.0, 3, "Sell", trade_id="y"),
               TradeReport("XBTUSD", 4.0, 5, "Buy", trade_id="z")]
    assert tape.on_reports(reports, now=1.0) == 2
    assert [t.trade_id for t in tape.recent()] == ["y", "z"]
    assert tape.malformed_rows == 0  # none reported malformed by default


def test_malformed_counts_add_up_across_calls() -> None:
    tape = TradeTape(None)
    assert tape.on_reports([], now=0.0, malformed=2) == 0
    assert tape.on_reports([], now=1.0, malformed=3) == 0
    assert tape.malformed_rows == 5


def test_last_and_recent_read_from_the_newest_end() -> None:
    tape = TradeTape(None)
    for i, trade_id in enumerate("abc"):
        tape.on_trade(float(i + 1), 1, "Buy", now=float(i), trade_id=trade_id)
    last = tape.last()
    assert last is not None and last.trade_id == "c"
    assert [t.trade_id for t in tape.recent(2)] == ["b", "c"]
    assert [t.trade_id for t in tape.recent(5)] == ["a", "b", "c"]
    assert tape.recent(-1) == []
