"""The simulator's engine: instruments, books, the market process, the account and timers.

The engine never reads a clock: every call takes simulated epoch milliseconds ``now_ms``, and all
randomness comes from ``random.Random`` streams derived from ``seed`` (one per instrument, one for
the account), so the same seed and the same calls give the same output.

Call order. ``advance(now_ms)`` runs the market process and the timers (mark price, dead man's
switch) up to ``now_ms``; every order call advances to its ``now_ms`` first, so it sees the market
as of that moment. ``drain_updates()`` returns everything published since the previous drain, in
order; publish them to subscribers, then serve partials with ``partial()`` for new subscriptions.

Cadence independence. Each instrument draws its next event time when its previous event happens,
so an instrument's stream does not depend on how often ``advance`` is called. Instruments are
interleaved in slices of ``slice_ms`` (default ``SLICE_MS``, 10) of simulated time (exactly at
timer deadlines); position updates are published at the end of the slice in which they changed.

Additions to the documented interface (all optional keywords or extra members):
``Engine(..., publish_l2_25=True, mark_interval_ms=1000, max_pending_updates=2_000_000,
burstiness=1.0, market_params=None, publish_l2=True, slice_ms=10, publish_positions=True)``
(``publish_positions`` False: no ``position`` updates are published; ``burstiness`` scales how
often volatility bursts start; 0 gives a calm market whose intensity stays 1; ``market_params``
replaces the default :class:`~venueguard.sim.market.MarketParams`; ``publish_l2`` False: book
level changes publish no ``orderBookL2`` rows and are only counted in each book's
``unpublished_changes``, for an in-process consumer that reads the books directly; ``slice_ms``:
see "Cadence independence" above); ``burst(size, symbol, now_ms)`` adds a market burst
(``symbol`` None: every instrument);
instruments may also be given as symbol names; ``Engine.symbols``, ``Engine.now_ms``,
``Engine.spec(symbol)``, ``Engine.dropped_updates`` (updates discarded because nobody drained
beyond ``max_pending_updates``), ``Engine.market_events`` (events run so far) and
``get_executions(..., exec_types=("Trade",))``: like ``/execution/tradeHistory`` it returns
trade executions unless the filter names ``execType`` or ``exec_types`` says otherwise.
``intensity(symbol)`` with an unknown symbol or None returns the highest intensity of all
instruments.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence

from venueguard.sim.book import Book
from venueguard.sim.instruments import DEFAULT_INSTRUMENTS, InstrumentSpec
from venueguard.sim.market import Market, MarketParams
from venueguard.sim.matching import DMS_TEXT, Account
from venueguard.sim.model import SimError, Update
from venueguard.sim.orders import order_row
from venueguard.sim.rows import TABLE_KEYS, TABLE_TYPES, IsoClock, row_matches
from venueguard.venues.bitmex import errors

__all__ = ["Engine", "InstrumentSpec", "SimError", "Update"]

SLICE_MS = 10
BOOK_FORMATS = ("modern", "legacy")
PUBLIC_TABLES = ("orderBookL2", "orderBookL2_25", "trade", "quote", "instrument")
PRIVATE_TABLES = ("order", "execution", "position")


class Engine:
    """The simulated venue (see the module docstring for call order)."""

    def __init__(
        self, instruments: Iterable[InstrumentSpec | str], *, seed: int, rate_msgs_s: float,
        book_format: str = "modern", account: int = 1, start_ms: int,
        publish_l2_25: bool = True, mark_interval_ms: int = 1000,
        max_pending_updates: int = 2_000_000, burstiness: float = 1.0,
        market_params: MarketParams | None = None, publish_l2: bool = True,
        slice_ms: int = SLICE_MS, publish_positions: bool = True,
        activity: Callable[[float], float] | None = None,
        symbol_rates: Mapping[str, float] | None = None,
    ) -> None:
        if book_format not in BOOK_FORMATS:
            raise ValueError(f"book_format must be one of {BOOK_FORMATS}, not {book_format!r}")
        specs = [DEFAULT_INSTRUMENTS[i] if isinstance(i, str) else i for i in instruments]
        if not specs:
            raise ValueError("at least one instrument is required")
        self.iso = IsoClock()
        self._out: list[Update] = []
        self.book_format = book_format
        self.account_id = account
        self._now_ms = start_ms
        self._mark_interval_ms = max(1, mark_interval_ms)
        self._next_mark_ms = start_ms + self._mark_interval_ms
        if isinstance(slice_ms, bool) or not isinstance(slice_ms, int) or slice_ms < 1:
            raise ValueError(f"slice_ms must be a whole number of milliseconds >= 1, "
                             f"not {slice_ms!r}")
        self._slice_ms = slice_ms
        self._next_slice_ms = (start_ms // slice_ms + 1) * slice_ms
        self._dms_at_ms: int | None = None
        self.max_pending_updates = max_pending_updates
        self.dropped_updates = 0
        self._specs = {s.symbol: s for s in specs}
        self.markets: dict[str, Market] = {}
        per_symbol = rate_msgs_s / len(specs)
        rates = symbol_rates or {}
        profile = None
        if activity is not None:
            def profile(t_ms: float, _start: int = start_ms) -> float:
                return activity((t_ms - _start) / 1000.0)
        for index, spec in enumerate(specs):
            rng_seed = random.Random(f"{seed}:{spec.symbol}").getrandbits(63)
            book = Book(spec, self._out, legacy=book_format == "legacy",
                        publish_l2_25=publish_l2_25, first_id=(index + 1) * 10_000_000_000,
                        publish_l2=publish_l2)
            self.markets[spec.symbol] = Market(
                spec, book, seed=rng_seed,
                rate_events_s=per_symbol * rates.get(spec.symbol, 1.0), start_ms=start_ms,
                out=self._out, iso=self.iso,
                params=(market_params or MarketParams()).scaled(burstiness), activity=profile,
            )
        self._market_list = list(self.markets.values())
        self.account = Account(account, self.markets, self._out, self.iso,
                               random.Random(f"{seed}:account"))
        self.account.publish_positions = publish_positions
        for market in self.markets.values():
            market.sink = self.account
        self._out.clear()

    # ------------------------------------------------------------- accessors
    @property
    def symbols(self) -> list[str]:
        return list(self._specs)

    @property
    def now_ms(self) -> int:
        return self._now_ms

    @property
    def market_events(self) -> int:
        return sum(m.events for m in self.markets.values())

    def spec(self, symbol: str) -> InstrumentSpec:
        return self._specs[symbol]

    # ---------------------------------------------------------------- orders
    def place_order(self, params: Mapping[str, object], now_ms: int) -> dict[str, object]:
        """``POST /order``; raises :class:`SimError` with BitMEX's text on invalid input."""
        self.advance(now_ms)
        return self.account.place(params, self._now_ms)

    def amend_order(self, params: Mapping[str, object], now_ms: int) -> dict[str, object]:
        """``PUT /order`` by ``orderID`` or ``origClOrdID``."""
        self.advance(now_ms)
        return self.account.amend(params, self._now_ms)

    def cancel_orders(
        self, order_ids: Sequence[str], cl_ord_ids: Sequence[str], text: str | None, now_ms: int,
    ) -> list[dict[str, object]]:
        """``DELETE /order``: one row per id; closed or unknown orders get an ``error`` field."""
        if not order_ids and not cl_ord_ids:
            raise SimError(400, "orderID or clOrdID must be sent.", errors.NAME_HTTP)
        self.advance(now_ms)
        return self.account.cancel(order_ids, cl_ord_ids, text, self._now_ms)

    def cancel_all(
        self, symbol: str | None, filter: Mapping[str, object] | None, text: str | None,
        now_ms: int,
    ) -> list[dict[str, object]]:
        """``DELETE /order/all``: cancels the open orders matching ``symbol`` and ``filter``."""
        self.advance(now_ms)
        return self.account.cancel_all(symbol, filter, text, self._now_ms)

    def cancel_all_after(self, timeout_ms: int, now_ms: int) -> dict[str, object]:
        """Arm (``timeout_ms`` > 0) or disarm (0) the dead man's switch."""
        if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or timeout_ms < 0:
            raise SimError(400, "Invalid timeout", errors.NAME_HTTP)
        self.advance(now_ms)
        now = self._now_ms
        if timeout_ms == 0:
            self._dms_at_ms = None
            return {"now": self.iso(now), "cancelTime": 0}
        self._dms_at_ms = now + timeout_ms
        return {"now": self.iso(now), "cancelTime": self.iso(self._dms_at_ms)}

    def fill_resting(self, order_ids: Sequence[str], cl_ord_ids: Sequence[str],
                     now_ms: int) -> int:
        """Fill the named open resting account orders completely; returns how many.

        Used by the ``cancel_race`` fault: a market taker sweeps the opposite side up to each
        order's price, so trades, book deltas, order updates, executions and positions are all
        published as for any other fill.
        """
        self.advance(now_ms)
        account = self.account
        targets = [account.orders.get(i) for i in order_ids]
        targets += [account.by_cl.get(c) for c in cl_ord_ids]
        filled = 0
        for order in targets:
            if order is None or not order.is_open or order.tick is None:
                continue
            market = self.markets[order.spec.symbol]
            ts = self.iso(now_ms)
            aggressor_buy = not order.buy
            qty = market.book.available(aggressor_buy, order.tick)
            fills = market.book.match(aggressor_buy, order.tick, qty, ts)
            market.publish_fills(aggressor_buy, fills, None, now_ms, ts)
            market.after_account_change(now_ms)
            filled += 1
        account.flush(now_ms)
        return filled

    @property
    def cancel_at_ms(self) -> int | None:
        """When the armed dead man's switch fires (None when disarmed)."""
        return self._dms_at_ms

    # --------------------------------------------------------------- queries
    def get_orders(
        self, *, symbol: str | None = None, filter: Mapping[str, object] | None = None,
        count: int = 100, start: int = 0, reverse: bool = False,
        since_ms: int | None = None, until_ms: int | None = None,
    ) -> list[dict[str, object]]:
        """``GET /order``; the filter understands ``open`` and ``ordStatus.isTerminated``;
        ``since_ms``/``until_ms`` (``startTime``/``endTime``) bound the row's ``timestamp``
        before paging."""
        flt = dict(filter or {})
        want_open = flt.pop("open", None)
        terminated = flt.pop("ordStatus.isTerminated", None)
        rows: list[dict[str, object]] = []
        for o in self.account.orders.values():
            if symbol is not None and o.spec.symbol != symbol:
                continue
            if want_open is not None and bool(want_open) != o.is_open:
                continue
            if terminated is not None and bool(terminated) == o.is_open:
                continue
            if not _within(o.ts_ms, since_ms, until_ms):
                continue
            row = order_row(o, self.iso)
            if row_matches(row, flt):
                rows.append(row)
        return _page(rows, count, start, reverse)

    def get_executions(
        self, *, symbol: str | None = None, filter: Mapping[str, object] | None = None,
        count: int = 100, start: int = 0, reverse: bool = False,
        exec_types: Sequence[str] | None = ("Trade",),
        since_ms: int | None = None, until_ms: int | None = None,
    ) -> list[dict[str, object]]:
        """``GET /execution/tradeHistory`` (trade executions unless told otherwise);
        ``since_ms``/``until_ms`` (``startTime``/``endTime``) bound ``timestamp`` before
        paging, as BitMEX does: a client paging by time sees the rows after its mark."""
        flt = dict(filter or {})
        kinds = None if "execType" in flt or exec_types is None else set(exec_types)
        # the rows' timestamps are fixed-width ISO texts: they order as the times they name
        low = None if since_ms is None else IsoClock()(min(max(since_ms, 0), _LAST_MS))
        high = None if until_ms is None else IsoClock()(min(max(until_ms, 0), _LAST_MS))
        rows = [
            r for r in self.account.executions
            if (symbol is None or r["symbol"] == symbol)
            and (kinds is None or r["execType"] in kinds)
            and (low is None or str(r["timestamp"]) >= low)
            and (high is None or str(r["timestamp"]) <= high) and row_matches(r, flt)
        ]
        return _page(rows, count, start, reverse)

    def get_positions(self) -> list[dict[str, object]]:
        """``GET /position``: every position the account has held."""
        acct = self.account
        rows = []
        for symbol, pos in acct.positions.items():
            pos.mark = self.markets[symbol].mid_price()
            rows.append(acct.position_row(pos))
        return rows

    def get_book_l2(self, symbol: str, depth: int) -> list[dict[str, object]]:
        """``GET /orderBook/L2`` rows (``depth`` 0: full book; unknown symbol: ``[]``)."""
        market = self.markets.get(symbol)
        if market is None:
            return []
        return market.book.rows(depth, self.iso(self._now_ms))

    def get_instruments(self, *, active_only: bool = False) -> list[dict[str, object]]:
        """``GET /instrument`` (every simulated instrument is open, so both lists match)."""
        return [m.instrument_row(self._now_ms) for m in self.markets.values()]

    def burst(self, size: float, symbol: str | None, now_ms: int, move_pct: float = 0.0) -> None:
        """A market burst: the excitation of ``symbol`` (None: every instrument) jumps by
        ``size`` at ``now_ms`` and its fair price by ``move_pct`` percent; an unknown symbol
        raises KeyError."""
        self.advance(now_ms)
        for market in ([self.markets[symbol]] if symbol is not None else self.markets.values()):
            market.burst(size, self._now_ms, move_pct)

    def intensity(self, symbol: str | None) -> float:
        """Current market intensity ``1 + excitation`` (about 1 calm, more in a burst)."""
        market = self.markets.get(symbol) if symbol is not None else None
        if market is None:
            return max(m.intensity(self._now_ms) for m in self.markets.values())
        return market.intensity(self._now_ms)

    # ------------------------------------------------------------- time flow
    def advance(self, now_ms: int) -> None:
        """Run the market process and the timers up to ``now_ms`` (earlier times: no-op)."""
        markets = self._market_list
        account = self.account
        slice_ms = self._slice_ms
        while self._now_ms < now_ms:
            if self._next_slice_ms < now_ms and not account.dirty:
                # slices that end before the next market event or timer do nothing: skip them
                quiet_until: float = min(now_ms, self._next_mark_ms)
                for market in markets:
                    if market.next_t < quiet_until:
                        quiet_until = market.next_t
                if self._dms_at_ms is not None and self._dms_at_ms < quiet_until:
                    quiet_until = self._dms_at_ms
                last_idle = (math.ceil(quiet_until / slice_ms) - 1) * slice_ms
                if last_idle >= self._next_slice_ms:
                    self._now_ms = last_idle
                    self._next_slice_ms = last_idle + slice_ms
            horizon = min(now_ms, self._next_slice_ms, self._next_mark_ms)
            if self._dms_at_ms is not None and self._dms_at_ms < horizon:
                horizon = max(self._dms_at_ms, self._now_ms)
            for market in markets:
                market.run_until(horizon)
            self._now_ms = horizon
            if horizon >= self._next_slice_ms:
                self._next_slice_ms += slice_ms
            if horizon >= self._next_mark_ms:
                self._next_mark_ms += self._mark_interval_ms
                for market in markets:
                    account.on_mark(market.spec.symbol, market.mark_update(horizon), horizon)
            if self._dms_at_ms is not None and horizon >= self._dms_at_ms:
                self._dms_at_ms = None
                account.cancel_all(None, None, None, horizon, line=DMS_TEXT)
            account.flush(horizon)
        excess = len(self._out) - self.max_pending_updates
        if excess > 0:
            del self._out[:excess]
            self.dropped_updates += excess

    def drain_updates(self) -> list[Update]:
        """Everything published since the last drain, oldest first."""
        out = self._out[:]
        self._out.clear()
        return out

    # --------------------------------------------------------------- partials
    def partial(self, table: str, symbol: str | None) -> dict[str, object]:
        """The full ``partial`` message for ``table`` (optionally one ``symbol``)."""
        if table not in PUBLIC_TABLES and table not in PRIVATE_TABLES:
            raise SimError(400, errors.ws_unknown_table_text(table), errors.NAME_WEBSOCKET)
        markets = [self.markets[symbol]] if symbol in self.markets else (
            [] if symbol is not None else list(self.markets.values()))
        ts = self.iso(self._now_ms)
        data: list[dict[str, object]] = []
        flt: dict[str, object] = {}
        if table in PRIVATE_TABLES:
            flt["account"] = self.account_id
            data = self._private_partial(table, symbol)
        else:
            for m in markets:
                if table == "orderBookL2":
                    data.extend(m.book.rows(0, ts))
                elif table == "orderBookL2_25":
                    data.extend(m.book.rows(25, ts))
                elif table == "trade":
                    data.extend(list(m.trades)[-1:] if m.trades else [])
                elif table == "quote":
                    data.extend([m.quote] if m.quote is not None else [])
                else:
                    data.append(m.instrument_row(self._now_ms))
        if symbol is not None:
            flt["symbol"] = symbol
        return {
            "table": table, "action": "partial", "keys": list(TABLE_KEYS[table]),
            "types": dict(TABLE_TYPES[table]), "filter": flt, "data": data,
        }

    def _private_partial(self, table: str, symbol: str | None) -> list[dict[str, object]]:
        if table == "order":
            return [order_row(o, self.iso) for o in self.account.orders.values()
                    if o.is_open and (symbol is None or o.spec.symbol == symbol)]
        if table == "position":
            return [r for r in self.get_positions() if symbol is None or r["symbol"] == symbol]
        return []

    def truth(self) -> dict[str, object]:
        """Ground truth for ``GET /_sim/truth``: every order, execution and position."""
        return {
            "orders": [order_row(o, self.iso) for o in self.account.orders.values()],
            "executions": list(self.account.executions),
            "positions": self.get_positions(),
        }


_LAST_MS = 253_402_300_799_999   # 9999-12-31T23:59:59.999Z: the last four-digit year


def _within(ts_ms: int, since_ms: int | None, until_ms: int | None) -> bool:
    return (since_ms is None or ts_ms >= since_ms) and (until_ms is None or ts_ms <= until_ms)


def _page(rows: list[dict[str, object]], count: int, start: int, reverse: bool) -> list[
    dict[str, object]
]:
    if reverse:
        rows.reverse()
    start = max(0, start)
    return rows[start:start + max(0, count)]
