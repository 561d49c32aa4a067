"""Recent trades of one symbol, with trade rate and volume rate over a sliding window.

Feed trades as :class:`~venueguard.core.reports.TradeReport` with :meth:`TradeTape.on_reports`
(the venue's adapter reads its rows into reports), or single trades with
:meth:`TradeTape.on_trade`, passing the caller's monotonic ``now`` in seconds; read
:meth:`TradeTape.trade_rate` / :meth:`TradeTape.volume_rate` with a later ``now``.

Memory is bounded: the tape keeps the last ``keep`` trades, and the rates are kept in
``window_s / bucket_s`` time buckets however fast trades arrive. Trades repeated with the same
trade id (a snapshot after a resubscribe re-sends the latest ones) are counted once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from venueguard.core.reports import TradeReport


@dataclass(frozen=True, slots=True)
class Trade:
    """One trade. ``now`` is when it was received; ``timestamp`` the venue's text, if any."""

    price: float
    size: float
    side: str  # "Buy" or "Sell": the aggressor side
    now: float
    timestamp: str | None = None
    trade_id: str | None = None


@dataclass(frozen=True, slots=True)
class TapeConfig:
    """``window_s`` for the rates, ``bucket_s`` their resolution, ``keep`` trades remembered."""

    window_s: float = 10.0
    bucket_s: float = 0.5
    keep: int = 1000

    def __post_init__(self) -> None:
        if not (self.window_s > 0 and 0 < self.bucket_s <= self.window_s and self.keep > 0):
            raise ValueError("need window_s > 0, 0 < bucket_s <= window_s and keep > 0")


class TradeTape:
    """Recent trades and rates of one symbol (``symbol=None`` accepts every symbol's rows)."""

    __slots__ = (
        "_buckets", "_seen_ids", "_sum_buy", "_sum_count", "_sum_sell", "config", "last_now",
        "malformed_rows", "symbol", "total_trades", "total_volume", "trades",
    )

    def __init__(self, symbol: str | None = None, config: TapeConfig | None = None) -> None:
        self.symbol = symbol
        self.config = config or TapeConfig()
        self.trades: deque[Trade] = deque(maxlen=self.config.keep)
        # [bucket index, count, buy volume, sell volume], oldest first
        self._buckets: deque[list[float]] = deque()
        self._sum_count = 0.0
        self._sum_buy = 0.0
        self._sum_sell = 0.0
        self._seen_ids: dict[str, None] = {}
        self.total_trades = 0
        self.total_volume = 0.0
        self.malformed_rows = 0
        self.last_now: float | None = None

    def on_trade(self, price: float, size: float, side: str, now: float,
                 timestamp: str | None = None, trade_id: str | None = None) -> bool:
        """Record one trade; returns False when ``trade_id`` was already seen."""
        if trade_id is not None:
            if trade_id in self._seen_ids:
                return False
            self._seen_ids[trade_id] = None
            if len(self._seen_ids) > 2 * self.config.keep:
                for old in list(self._seen_ids)[: self.config.keep]:
                    del self._seen_ids[old]
        self.trades.append(Trade(price, size, side, now, timestamp, trade_id))
        self.total_trades += 1
        self.total_volume += size
        self.last_now = now
        self._expire(now)
        index = int(now // self.config.bucket_s)
        buckets = self._buckets
        if not buckets or buckets[-1][0] < index:
            buckets.append([index, 0.0, 0.0, 0.0])
        bucket = buckets[-1]  # a trade older than the last bucket is counted in it
        bucket[1] += 1
        self._sum_count += 1
        if side == "Buy":
            bucket[2] += size
            self._sum_buy += size
        else:
            bucket[3] += size
            self._sum_sell += size
        return True

    def on_reports(self, reports: Iterable[TradeReport], now: float, *,
                   malformed: int = 0) -> int:
        """Record trades (other symbols skipped); returns how many were new. ``malformed``:
        rows the adapter could not read, added to ``malformed_rows``."""
        self.malformed_rows += malformed
        added = 0
        for report in reports:
            if self.symbol is not None and report.symbol != self.symbol:
                continue
            if self.on_trade(report.price, report.size, report.side, now, report.timestamp,
                             report.trade_id):
                added += 1
        return added

    def _expire(self, now: float) -> None:
        oldest = int(now // self.config.bucket_s) - self._bucket_count() + 1
        buckets = self._buckets
        while buckets and buckets[0][0] < oldest:
            _, count, buy, sell = buckets.popleft()
            self._sum_count -= count
            self._sum_buy -= buy
            self._sum_sell -= sell
        if not buckets:  # reset sums exactly, so float error cannot accumulate
            self._sum_count = self._sum_buy = self._sum_sell = 0.0

    def _bucket_count(self) -> int:
        return max(1, round(self.config.window_s / self.config.bucket_s))

    def trade_rate(self, now: float) -> float:
        """Trades per second over the last ``window_s`` (to bucket resolution)."""
        self._expire(now)
        return self._sum_count / self.config.window_s

    def volume_rate(self, now: float) -> float:
        """Contracts per second (both sides) over the last ``window_s``."""
        self._expire(now)
        return (self._sum_buy + self._sum_sell) / self.config.window_s

    def buy_volume_rate(self, now: float) -> float:
        """Contracts per second bought by aggressors over the last ``window_s``."""
        self._expire(now)
        return self._sum_buy / self.config.window_s

    def sell_volume_rate(self, now: float) -> float:
        """Contracts per second sold by aggressors over the last ``window_s``."""
        self._expire(now)
        return self._sum_sell / self.config.window_s

    def last(self) -> Trade | None:
        return self.trades[-1] if self.trades else None

    def recent(self, n: int | None = None) -> list[Trade]:
        """The last ``n`` trades (all kept when None), oldest first."""
        items = list(self.trades)
        return items if n is None else items[-n:] if n > 0 else []
