"""Engine updates as Binance USDⓈ-M market and user-data events.

Depth. Every engine book update gets the next number of one update-id sequence shared by all
symbols, so a symbol's ids are increasing but not contiguous, as on the venue. Changed levels are
collected per symbol and cadence (100, 250 and 500 ms; ``<symbol>@depth`` is the 250 ms one) and
sent as one ``depthUpdate`` per period with ``U`` (first id in the batch), ``u`` (last id) and
``pu`` (the previous event's ``u`` on that cadence); quantities are absolute and 0 deletes the
level. A REST snapshot takes an id of its own (:meth:`Feed.snapshot_id`), so Binance's documented
procedure (drop ``u < lastUpdateId``, start at ``U <= lastUpdateId <= u``, then require ``pu`` ==
previous ``u``) always finds its first event.

Trades become ``aggTrade`` and ``trade`` (one per fill), quotes ``bookTicker``; account
executions become ``ORDER_TRADE_UPDATE`` and position changes ``ACCOUNT_UPDATE``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from venueguard.sim.binance.rows import ms, order_event
from venueguard.sim.binance.symbols import BinanceSymbol
from venueguard.sim.model import Update

if TYPE_CHECKING:
    from venueguard.sim.binance.venue import BinanceVenue

__all__ = ["Event", "Feed"]

FIRST_UPDATE_ID = 1_000_000_000_000


@dataclass(frozen=True, slots=True)
class Event:
    """One event: ``stream`` is the stream name, or None for the account's user-data stream."""

    stream: str | None
    data: dict[str, Any]
    depth: bool = False


@dataclass(slots=True)
class _Pending:
    first: int
    last: int
    bids: dict[float, int] = field(default_factory=dict)
    asks: dict[float, int] = field(default_factory=dict)


DEPTH_INTERVALS_MS = (100, 250, 500)


class Feed:
    def __init__(self, venue: BinanceVenue) -> None:
        self.venue = venue
        self.symbols: dict[str, BinanceSymbol] = venue.symbols
        self.seq = FIRST_UPDATE_ID
        self.last_id: dict[str, int] = {}
        # per cadence: the changes waiting for the next event and the last event's u, by symbol
        self._pending: dict[int, dict[str, _Pending]] = {i: {} for i in DEPTH_INTERVALS_MS}
        self._sent_u: dict[int, dict[str, int]] = {i: {} for i in DEPTH_INTERVALS_MS}
        self._next_flush_ms = dict.fromkeys(DEPTH_INTERVALS_MS, 0)
        self._agg_id = 0
        self.public = True  # False while a recording serves the market streams
        self._position_state: dict[str, tuple[object, object]] = {}

    def snapshot_id(self, symbol: str) -> int:
        """``lastUpdateId`` for a REST snapshot taken now (call after the engine's updates were
        fed). The snapshot takes an id of its own, which the next event of every cadence spans
        (``U <= lastUpdateId <= u``) even when the book did not change in between."""
        self.seq += 1
        seq = self.seq
        self.last_id[symbol] = seq
        for pending_of in self._pending.values():
            pending = pending_of.get(symbol)
            if pending is None:
                pending_of[symbol] = _Pending(seq, seq)
            else:
                pending.last = seq
        return seq

    def ticker_id(self, symbol: str) -> int:
        """The last update id that touched ``symbol`` (``bookTicker``'s ``u``)."""
        return self.last_id.get(symbol, FIRST_UPDATE_ID)

    def on_updates(self, updates: Iterable[Update], now_ms: int) -> list[Event]:
        out: list[Event] = []
        for update in updates:
            name = update.symbol
            if name is None or name not in self.symbols:
                continue
            table = update.table
            if update.private:
                self._private(update, now_ms, out)
            elif not self.public:
                continue
            elif table == "orderBookL2":
                self._book(name, update)
            elif table == "trade":
                self._trades(name, update.rows, now_ms, out)
            elif table == "quote":
                self._quotes(name, update.rows, now_ms, out)
        for interval_ms, due_ms in self._next_flush_ms.items():
            if now_ms >= due_ms:
                self._flush(interval_ms, now_ms, out)
                self._next_flush_ms[interval_ms] = (now_ms // interval_ms + 1) * interval_ms
        return out

    # -- market --------------------------------------------------------------------------------
    def _book(self, name: str, update: Update) -> None:
        self.seq += 1
        seq = self.seq
        self.last_id[name] = seq
        delete = update.action == "delete"
        levels: list[tuple[bool, float, int]] = []
        for row in update.rows:
            price = row.get("price")
            if not isinstance(price, int | float):
                continue
            raw_size = row.get("size")
            size = 0 if delete or not isinstance(raw_size, int) else raw_size
            levels.append((row.get("side") == "Buy", float(price), size))
        for pending_of in self._pending.values():
            pending = pending_of.get(name)
            if pending is None:
                pending = pending_of[name] = _Pending(seq, seq)
            pending.last = seq
            for buy, price, size in levels:
                (pending.bids if buy else pending.asks)[price] = size

    def _flush(self, interval_ms: int, now_ms: int, out: list[Event]) -> None:
        pending_of = self._pending[interval_ms]
        sent_u = self._sent_u[interval_ms]
        for name, pending in pending_of.items():
            sym = self.symbols[name]
            pu = sent_u.get(name, pending.first - 1)
            data = {"e": "depthUpdate", "E": now_ms, "T": now_ms, "s": name,
                    "U": pending.first, "u": pending.last, "pu": pu,
                    "b": [[sym.price(p), sym.qty(q)] for p, q in sorted(pending.bids.items())],
                    "a": [[sym.price(p), sym.qty(q)] for p, q in sorted(pending.asks.items())]}
            sent_u[name] = pending.last
            out.append(Event(f"{name.lower()}@depth@{interval_ms}ms", data, depth=True))
        pending_of.clear()

    def _trades(self, name: str, rows: list[dict[str, Any]], now_ms: int,
                out: list[Event]) -> None:
        sym = self.symbols[name]
        hub = self.venue.hub
        lower = name.lower()
        agg, plain = hub.wants(f"{lower}@aggTrade"), hub.wants(f"{lower}@trade")
        for row in rows:
            self._agg_id += 1
            if not agg and not plain:
                continue
            price = float(row.get("price") or 0.0)
            data = {"e": "aggTrade", "E": now_ms, "a": self._agg_id, "s": name,
                    "p": sym.price(price), "q": sym.qty(int(row.get("size") or 0)),
                    "f": self._agg_id, "l": self._agg_id, "T": ms(row.get("timestamp")) or now_ms,
                    "m": row.get("side") == "Sell"}
            if agg:
                out.append(Event(f"{lower}@aggTrade", data))
            if plain:
                out.append(Event(f"{lower}@trade", {
                    "e": "trade", "E": now_ms, "T": data["T"], "s": name, "t": self._agg_id,
                    "p": data["p"], "q": data["q"], "X": "MARKET", "m": data["m"]}))

    def _quotes(self, name: str, rows: list[dict[str, Any]], now_ms: int,
                out: list[Event]) -> None:
        sym = self.symbols[name]
        if not self.venue.hub.wants(f"{name.lower()}@bookTicker"):
            return
        for row in rows:
            bid, ask = row.get("bidPrice"), row.get("askPrice")
            data = {"e": "bookTicker", "u": self.ticker_id(name), "s": name,
                    "b": sym.price(float(bid) if isinstance(bid, int | float) else 0.0),
                    "B": sym.qty(int(row.get("bidSize") or 0)),
                    "a": sym.price(float(ask) if isinstance(ask, int | float) else 0.0),
                    "A": sym.qty(int(row.get("askSize") or 0)),
                    "T": ms(row.get("timestamp")) or now_ms, "E": now_ms}
            out.append(Event(f"{name.lower()}@bookTicker", data))

    # -- user data -----------------------------------------------------------------------------
    def _private(self, update: Update, now_ms: int, out: list[Event]) -> None:
        venue = self.venue
        name = update.symbol
        assert name is not None
        sym = self.symbols[name]
        if not venue.hub.wants(None):
            return
        if update.table == "execution":
            for row in update.rows:
                order_id = venue.order_ids.of(str(row.get("orderID")))
                trade_id = venue.trade_ids.of(str(row.get("execID"))) \
                    if row.get("execType") == "Trade" else 0
                out.append(Event(None, order_event(sym, row, order_id, trade_id, now_ms)))
        elif update.table == "position":
            # the venue reports balance and position changes, not every mark-price move
            row = update.rows[0] if update.rows else {}
            state = (row.get("currentQty"), row.get("realisedPnl"))
            if self._position_state.get(name) != state:
                self._position_state[name] = state
                out.append(Event(None, venue.account.account_update(name, now_ms)))
