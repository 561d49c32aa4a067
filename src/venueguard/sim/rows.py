"""Row builders shared by the book, the market and the account: timestamps, ids, trade and quote
rows, and the metadata (keys, types) BitMEX puts on a ``partial``.

Timestamps are formatted from simulated epoch milliseconds; the formatter caches the current
second, so a burst of rows within one second costs one ``strftime``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping

from venueguard.sim.instruments import InstrumentSpec

__all__ = [
    "TABLE_KEYS",
    "TABLE_TYPES",
    "IsoClock",
    "guid",
    "quote_row",
    "tick_direction",
    "trade_row",
]


class IsoClock:
    """Formats epoch milliseconds as ``2026-11-23T12:00:00.123Z`` (cached per second)."""

    __slots__ = ("_last", "_last_ms", "_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""
        self._last_ms = -1
        self._last = ""

    def __call__(self, ts_ms: int) -> str:
        if ts_ms == self._last_ms:
            return self._last
        second, millis = divmod(ts_ms, 1000)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        self._last_ms = ts_ms
        self._last = last = self._prefix + _MILLIS[millis]
        return last


_MILLIS = tuple(f".{millis:03d}Z" for millis in range(1000))


def guid(rng: random.Random) -> str:
    """A GUID-shaped id (8-4-4-4-12 hex) drawn from ``rng`` (deterministic per seed)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def tick_direction(prev_price: float | None, price: float, prev_direction: str) -> str:
    """BitMEX ``tickDirection``: Plus/Minus on a change, Zero* repeats the last direction."""
    if prev_price is None or price > prev_price:
        return "PlusTick"
    if price < prev_price:
        return "MinusTick"
    return "ZeroPlusTick" if prev_direction in ("PlusTick", "ZeroPlusTick") else "ZeroMinusTick"


def trade_row(
    spec: InstrumentSpec, ts: str, side: str, size: int, price: float, direction: str, match_id: str
) -> dict[str, object]:
    """A public ``trade`` row; ``side`` is the aggressor's side."""
    return {
        "timestamp": ts,
        "symbol": spec.symbol,
        "side": side,
        "size": size,
        "price": price,
        "tickDirection": direction,
        "trdMatchID": match_id,
        "grossValue": round(abs(spec.value(size, price))),
        "homeNotional": spec.home_notional(size, price),
        "foreignNotional": spec.foreign_notional(size, price),
        "trdType": "Regular",
    }


def quote_row(
    symbol: str, ts: str, bid_size: int, bid_price: float | None, ask_price: float | None,
    ask_size: int,
) -> dict[str, object]:
    row: dict[str, object] = {"timestamp": ts, "symbol": symbol, "bidSize": bid_size}
    if bid_price is not None:
        row["bidPrice"] = bid_price
    if ask_price is not None:
        row["askPrice"] = ask_price
    row["askSize"] = ask_size
    return row


TABLE_KEYS: dict[str, list[str]] = {
    "orderBookL2": ["symbol", "id", "side"],
    "orderBookL2_25": ["symbol", "id", "side"],
    "trade": [],
    "quote": [],
    "instrument": ["symbol"],
    "order": ["orderID"],
    "execution": [],
    "position": ["account", "symbol", "currency"],
}

_L2_TYPES = {
    "symbol": "symbol", "id": "long", "side": "symbol", "size": "long", "price": "float",
    "timestamp": "timestamp", "transactTime": "timestamp",
}
_ORDER_TYPES = {
    "orderID": "guid", "clOrdID": "symbol", "clOrdLinkID": "symbol", "account": "long",
    "symbol": "symbol", "side": "symbol", "orderQty": "long", "price": "float",
    "currency": "symbol", "settlCurrency": "symbol", "ordType": "symbol",
    "timeInForce": "symbol", "execInst": "symbol", "ordStatus": "symbol",
    "workingIndicator": "boolean", "ordRejReason": "symbol", "leavesQty": "long",
    "cumQty": "long", "avgPx": "float", "text": "symbol", "transactTime": "timestamp",
    "timestamp": "timestamp",
}
TABLE_TYPES: dict[str, dict[str, str]] = {
    "orderBookL2": _L2_TYPES,
    "orderBookL2_25": _L2_TYPES,
    "trade": {
        "timestamp": "timestamp", "symbol": "symbol", "side": "symbol", "size": "long",
        "price": "float", "tickDirection": "symbol", "trdMatchID": "guid", "grossValue": "long",
        "homeNotional": "float", "foreignNotional": "float", "trdType": "symbol",
    },
    "quote": {
        "timestamp": "timestamp", "symbol": "symbol", "bidSize": "long", "bidPrice": "float",
        "askPrice": "float", "askSize": "long",
    },
    "instrument": {
        "symbol": "symbol", "state": "symbol", "typ": "symbol", "tickSize": "float",
        "lotSize": "long", "maxOrderQty": "long", "maxPrice": "float", "multiplier": "long",
        "bidPrice": "float", "askPrice": "float", "lastPrice": "float", "markPrice": "float",
        "timestamp": "timestamp",
    },
    "order": _ORDER_TYPES,
    "execution": {
        **_ORDER_TYPES, "execID": "guid", "execType": "symbol", "lastQty": "long",
        "lastPx": "float", "lastLiquidityInd": "symbol", "commission": "float",
        "trdMatchID": "guid", "execCost": "long", "execComm": "long",
        "homeNotional": "float", "foreignNotional": "float",
    },
    "position": {
        "account": "long", "symbol": "symbol", "currency": "symbol", "currentQty": "long",
        "avgEntryPrice": "float", "markPrice": "float", "realisedPnl": "long",
        "unrealisedPnl": "long", "liquidationPrice": "float", "timestamp": "timestamp",
    },
}


def row_matches(row: Mapping[str, object], flt: Mapping[str, object] | None) -> bool:
    """True when every filter key equals the row's value (a list value means "any of")."""
    if not flt:
        return True
    for key, want in flt.items():
        have = row.get(key)
        if isinstance(want, list):
            if have not in want:
                return False
        elif have != want:
            return False
    return True
