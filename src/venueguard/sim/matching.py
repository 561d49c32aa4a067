"""The account side of the matching engine: validation, placement, amends, cancels, fills.

Account orders trade against the simulator's own liquidity (the market process's levels in each
:class:`~venueguard.sim.book.Book`) with price-time priority, rest in the same book, and fill
passively when market trades walk through them. Every change is published on the private
``order`` / ``execution`` / ``position`` tables (``Update.private``), with BitMEX's texts:

- post-only (``ParticipateDoNotInitiate``) that would cross: returned ``Canceled``, not rejected;
- ``ImmediateOrCancel`` remainder and ``FillOrKill`` miss: ``Canceled`` with the tif text;
- amends keep queue priority only when the size shrinks; a price change or a size increase
  sends the order to the back of the queue at its price.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping

from venueguard.sim.fields import read_float, read_int, read_str
from venueguard.sim.instruments import InstrumentSpec
from venueguard.sim.market import Market
from venueguard.sim.model import SimError, Update
from venueguard.sim.orders import Order, execution_row, order_row, order_update_row
from venueguard.sim.positions import Position
from venueguard.sim.rows import guid, row_matches
from venueguard.venues.bitmex import errors

__all__ = ["Account"]

TIFS = ("GoodTillCancel", "ImmediateOrCancel", "FillOrKill", "Day")
EXEC_INSTS = frozenset({
    "ParticipateDoNotInitiate", "ReduceOnly", "Close", "MarkPrice", "IndexPrice", "LastPrice",
})
KNOWN_ORD_TYPES = ("Limit", "Market", "Stop", "StopLimit", "MarketIfTouched", "LimitIfTouched",
                   "Pegged")
SUBMITTED = "Submitted via API."
POST_ONLY_TEXT = "Canceled: Order had execInst of ParticipateDoNotInitiate"
IOC_TEXT = "Canceled: Order had timeInForce of ImmediateOrCancel"
FOK_TEXT = "Canceled: Order had timeInForce of FillOrKill"
DMS_TEXT = "Canceled: Cancel-all-after triggered"
MAX_CL_ORD_ID = 36


def _bad(message: str) -> SimError:
    return SimError(400, message, errors.NAME_HTTP)


class Account:
    """The simulated account: its orders, executions and positions.

    ``markets`` maps symbol to market; each market's ``sink`` must be this account (the engine
    wires it). After any call that may fill, call :meth:`flush` to publish position updates.
    """

    def __init__(
        self, account_id: int, markets: Mapping[str, Market], out: list[Update],
        iso: Callable[[int], str], rng: random.Random,
    ) -> None:
        self.account_id = account_id
        self.markets = markets
        self.out = out
        self.iso = iso
        self.rng = rng
        self.publish_positions = True  # False: flush keeps marks current but publishes no rows
        self.orders: dict[str, Order] = {}
        # Orders that may still be open, in placement order: a closed order never reopens, so
        # each is dropped the first time a scan sees it closed (scans stay proportional to the
        # resting orders, not to every order of the session).
        self._maybe_open: dict[str, Order] = {}
        self.by_cl: dict[str, Order] = {}
        self.executions: list[dict[str, object]] = []
        self.positions: dict[str, Position] = {}
        self._seq = 0
        self._dirty: set[str] = set()
        self._aggressor: Order | None = None

    # ------------------------------------------------------------------ place
    def place(self, params: Mapping[str, object], now_ms: int) -> dict[str, object]:
        o = self._new_order(params, now_ms)
        market = self.markets[o.spec.symbol]
        book = market.book
        ts = self.iso(now_ms)
        self.orders[o.order_id] = o
        self._maybe_open[o.order_id] = o
        if o.cl_ord_id:
            self.by_cl[o.cl_ord_id] = o
        self._exec(o, "New", now_ms)
        reduce_reason = self._reduce_only_violation(o)
        if reduce_reason is not None:
            o.rej_reason = reduce_reason
            o.close("Rejected", reduce_reason, now_ms)
            self._exec(o, "Rejected", now_ms)
        elif o.post_only and o.tick is not None and book.would_cross(o.buy, o.tick):
            o.close("Canceled", POST_ONLY_TEXT, now_ms)
            self._exec(o, "Canceled", now_ms)
        elif o.tif == "FillOrKill" and book.available(o.buy, o.tick) < o.leaves:
            o.close("Canceled", FOK_TEXT, now_ms)
            self._exec(o, "Canceled", now_ms)
        else:
            self._aggress(o, market, now_ms, ts)
            if o.leaves > 0:
                if o.ord_type == "Market" or o.tif in ("ImmediateOrCancel", "FillOrKill"):
                    o.close("Canceled", IOC_TEXT if o.tif != "FillOrKill" else FOK_TEXT, now_ms)
                    self._exec(o, "Canceled", now_ms)
                else:
                    book.add_order(o, ts)
        self.out.append(Update("order", "insert", o.spec.symbol, [order_row(o, self.iso)], True))
        market.after_account_change(now_ms)
        self.flush(now_ms)
        return order_row(o, self.iso)

    def _aggress(self, o: Order, market: Market, now_ms: int, ts: str) -> None:
        fills = market.book.match(o.buy, o.tick, o.leaves, ts)
        self._aggressor = o
        try:
            market.publish_fills(o.buy, fills, o, now_ms, ts)
        finally:
            self._aggressor = None

    def _new_order(self, params: Mapping[str, object], now_ms: int) -> Order:
        symbol = read_str(params, "symbol", errors.INVALID_SYMBOL)
        if not symbol:
            raise _bad(errors.required_arg_text("symbol"))
        market = self.markets.get(symbol)
        if market is None:
            raise _bad(errors.INVALID_SYMBOL)
        spec = market.spec
        qty = read_int(params, "orderQty", errors.INVALID_ORDER_QTY)
        if qty is None:
            raise _bad(errors.ORDER_QTY_REQUIRED)
        side = read_str(params, "side", errors.INVALID_SIDE)
        if side is None or side == "":
            side = "Sell" if qty < 0 else "Buy"
            qty = abs(qty)
        elif side not in ("Buy", "Sell"):
            raise _bad(errors.INVALID_SIDE)
        self._check_qty(spec, qty, errors.INVALID_ORDER_QTY)
        price = read_float(params, "price", errors.INVALID_PRICE)
        ord_type = read_str(params, "ordType", errors.UNSUPPORTED_ORD_TYPE) or (
            "Limit" if price is not None else "Market")
        if ord_type not in ("Limit", "Market"):
            raise _bad(errors.UNSUPPORTED_ORD_TYPE)
        if params.get("stopPx") not in (None, ""):
            raise _bad("Invalid stopPx for ordType")
        tick: int | None = None
        if ord_type == "Limit":
            tick = self._check_price(spec, price)
        elif price is not None:
            raise _bad(errors.INVALID_PRICE)
        tif = read_str(params, "timeInForce", errors.UNSUPPORTED_TIME_IN_FORCE) or (
            "GoodTillCancel" if ord_type == "Limit" else "ImmediateOrCancel")
        if tif not in TIFS:
            raise _bad(errors.UNSUPPORTED_TIME_IN_FORCE)
        exec_inst = self._check_exec_inst(params, ord_type, tif)
        cl_ord_id = read_str(params, "clOrdID", "Invalid clOrdID") or ""
        if len(cl_ord_id) > MAX_CL_ORD_ID:
            raise _bad("Invalid clOrdID")
        if cl_ord_id and cl_ord_id in self.by_cl:
            raise _bad(errors.DUPLICATE_CLORDID)
        text = read_str(params, "text", "Invalid text") or SUBMITTED
        self._seq += 1
        return Order(
            order_id=guid(self.rng), cl_ord_id=cl_ord_id, account=self.account_id, spec=spec,
            buy=side == "Buy", order_qty=qty, tick=tick, ord_type=ord_type, tif=tif,
            exec_inst=exec_inst, text=text, now_ms=now_ms, seq=self._seq,
        )

    @staticmethod
    def _check_qty(spec: InstrumentSpec, qty: int, message: str) -> None:
        if qty <= 0 or qty % spec.lot_size or qty > spec.max_order_qty:
            raise _bad(message)

    @staticmethod
    def _check_price(spec: InstrumentSpec, price: float | None) -> int:
        if price is None or price <= 0 or price >= spec.max_price:
            raise _bad(errors.INVALID_PRICE)
        tick = spec.ticks(price)
        if tick is None:
            raise _bad(errors.INVALID_PRICE_TICK)
        return tick

    @staticmethod
    def _check_exec_inst(params: Mapping[str, object], ord_type: str, tif: str) -> str:
        raw = read_str(params, "execInst", errors.UNSUPPORTED_EXEC_INST) or ""
        parts = [p.strip() for p in raw.split(",") if p.strip()]
        for part in parts:
            if part not in EXEC_INSTS:
                raise _bad(errors.UNSUPPORTED_EXEC_INST)
        if "ParticipateDoNotInitiate" in parts:
            if ord_type != "Limit":
                raise _bad("Invalid ordType for execInst")
            if tif in ("ImmediateOrCancel", "FillOrKill"):
                raise _bad("Invalid ordType or timeInForce for execInst")
        return ",".join(parts)

    def _reduce_only_violation(self, o: Order) -> str | None:
        inst = "ReduceOnly" if "ReduceOnly" in o.exec_inst else (
            "Close" if "Close" in o.exec_inst else None)
        if inst is None:
            return None
        pos = self.positions.get(o.spec.symbol)
        current = pos.qty if pos is not None else 0
        if current == 0 or (current > 0) == o.buy:
            return (f"Order had execInst of {inst} and side of {o.side} "
                    f"but current position is {current}")
        return None

    # ------------------------------------------------------------------ amend
    def amend(self, params: Mapping[str, object], now_ms: int) -> dict[str, object]:
        o = self._find_for_amend(params)
        if not o.is_open:
            raise _bad(errors.invalid_ord_status_text(o.status))
        spec = o.spec
        changes: list[str] = []
        new_cl = read_str(params, "clOrdID", "Invalid clOrdID")
        if new_cl is not None and new_cl != o.cl_ord_id:
            if len(new_cl) > MAX_CL_ORD_ID:
                raise _bad("Invalid clOrdID")
            if new_cl and new_cl in self.by_cl:
                raise _bad(errors.DUPLICATE_CLORDID)
        new_leaves = o.leaves
        qty = read_int(params, "orderQty", errors.INVALID_ORDER_QTY)
        if qty is not None:
            if qty <= o.cum or qty % spec.lot_size or qty > spec.max_order_qty:
                raise _bad(errors.INVALID_ORDER_QTY)
            if qty != o.order_qty:
                new_leaves = qty - o.cum
                changes.append("orderQty")
        leaves = read_int(params, "leavesQty", errors.INVALID_LEAVES_QTY)
        if leaves is not None:
            if leaves <= 0 or leaves % spec.lot_size or leaves + o.cum > spec.max_order_qty:
                raise _bad(errors.INVALID_LEAVES_QTY)
            if leaves != new_leaves:
                new_leaves = leaves
                changes.append("leavesQty")
        new_tick = o.tick
        if params.get("price") not in (None, ""):
            new_tick = self._check_price(spec, read_float(params, "price", errors.INVALID_PRICE))
            if new_tick != o.tick:
                changes.append("price")
        if not changes and (new_cl is None or new_cl == o.cl_ord_id):
            raise _bad(errors.INVALID_AMEND_UNCHANGED)
        if new_cl is not None and new_cl != o.cl_ord_id:
            if o.cl_ord_id:
                self.by_cl.pop(o.cl_ord_id, None)
            o.cl_ord_id = new_cl
            if new_cl:
                self.by_cl[new_cl] = o
            changes.append("clOrdID")
        user_text = read_str(params, "text", "Invalid text") or "Amended via API."
        base = o.text.split("\n")[-1]
        o.text = f"Amended {' '.join(changes)}: {user_text}\n{base}"
        self._apply_amend(o, new_leaves, new_tick, now_ms)
        self.out.append(Update("order", "update", spec.symbol, [order_update_row(o, self.iso)],
                               True))
        self.markets[spec.symbol].after_account_change(now_ms)
        self.flush(now_ms)
        return order_row(o, self.iso)

    def _apply_amend(self, o: Order, new_leaves: int, new_tick: int | None, now_ms: int) -> None:
        market = self.markets[o.spec.symbol]
        book = market.book
        ts = self.iso(now_ms)
        o.ts_ms = o.transact_ms = now_ms
        if new_tick == o.tick and new_leaves <= o.leaves:
            if new_leaves < o.leaves:
                book.reduce_order(o, new_leaves, ts)  # a smaller size keeps its place
                o.order_qty = o.cum + new_leaves
            self._exec(o, "Replaced", now_ms)
            return
        book.remove_order(o, ts)  # a new price or a larger size goes to the back of the queue
        o.leaves = new_leaves
        o.order_qty = o.cum + new_leaves
        o.tick = new_tick
        o.price = None if new_tick is None else o.spec.price(new_tick)
        self._exec(o, "Replaced", now_ms)
        if new_tick is not None and book.would_cross(o.buy, new_tick):
            if o.post_only:
                o.close("Canceled", POST_ONLY_TEXT, now_ms)
                self._exec(o, "Canceled", now_ms)
                return
            self._aggress(o, market, now_ms, ts)
        if o.leaves > 0:
            book.add_order(o, ts)

    def _find_for_amend(self, params: Mapping[str, object]) -> Order:
        order_id = read_str(params, "orderID", errors.INVALID_ORDER_ID)
        orig = read_str(params, "origClOrdID", errors.INVALID_ORIG_CLORDID)
        if order_id:
            o = self.orders.get(order_id)
            if o is None:
                raise _bad(errors.INVALID_ORDER_ID)
            return o
        if orig:
            o = self.by_cl.get(orig)
            if o is None:
                raise _bad(errors.INVALID_ORIG_CLORDID)
            return o
        raise _bad(errors.ORDER_ID_OR_ORIG_REQUIRED)

    # ----------------------------------------------------------------- cancel
    def cancel(
        self, order_ids: Iterable[str], cl_ord_ids: Iterable[str], text: str | None, now_ms: int,
    ) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = []
        touched: set[str] = set()
        line = f"Canceled: {text or 'Canceled via API.'}"
        for key, index in ((order_ids, self.orders), (cl_ord_ids, self.by_cl)):
            for ident in key:
                o = index.get(ident)
                if o is None:
                    field = "orderID" if index is self.orders else "clOrdID"
                    rows.append({field: ident, "account": self.account_id,
                                 "error": errors.UNABLE_TO_CANCEL_NOT_FOUND})
                    continue
                rows.append(self._cancel_one(o, line, now_ms))
                touched.add(o.spec.symbol)
        for symbol in sorted(touched):
            self.markets[symbol].after_account_change(now_ms)
        self.flush(now_ms)
        return rows

    def cancel_all(
        self, symbol: str | None, flt: Mapping[str, object] | None, text: str | None,
        now_ms: int, *, line: str | None = None,
    ) -> list[dict[str, object]]:
        if symbol is not None and symbol not in self.markets:
            raise _bad(errors.INVALID_SYMBOL)
        reason = line or f"Canceled: {text or 'Canceled via API.'}"
        chosen = [
            o for o in self.open_orders()
            if (symbol is None or o.spec.symbol == symbol)
            and (not flt or row_matches(order_row(o, self.iso), flt))
        ]
        rows = [self._cancel_one(o, reason, now_ms) for o in chosen]
        for sym in sorted({o.spec.symbol for o in chosen}):
            self.markets[sym].after_account_change(now_ms)
        self.flush(now_ms)
        return rows

    def _cancel_one(self, o: Order, line: str, now_ms: int) -> dict[str, object]:
        if not o.is_open:
            row = order_row(o, self.iso)
            row["error"] = errors.cancel_state_text(o.status)
            return row
        self.markets[o.spec.symbol].book.remove_order(o, self.iso(now_ms))
        o.close("Canceled", line, now_ms)
        self._exec(o, "Canceled", now_ms)
        self.out.append(Update("order", "update", o.spec.symbol,
                               [order_update_row(o, self.iso)], True))
        self._dirty.add(o.spec.symbol)
        return order_row(o, self.iso)

    # ------------------------------------------------------------------ fills
    def on_fill(
        self, order: Order, qty: int, price: float, aggressor: bool, match_id: str, now_ms: int,
    ) -> None:
        """A fill of an account order (called by the market while it publishes trades)."""
        spec = order.spec
        order.apply_fill(qty, price, now_ms)
        fee = spec.taker_fee if aggressor else spec.maker_fee
        comm = abs(spec.value(qty, price)) * fee
        pos = self._position(spec, price, now_ms)
        pos.apply_fill(order.buy, qty, price, comm, now_ms)
        row = execution_row(
            order, self.iso, exec_id=guid(self.rng), exec_type="Trade", now_ms=now_ms,
            last_qty=qty, last_px=price, fee=fee, exec_comm=round(comm),
            liquidity="RemovedLiquidity" if aggressor else "AddedLiquidity", match_id=match_id,
        )
        self._publish_exec(order, row)
        if order is not self._aggressor:
            self.out.append(Update("order", "update", spec.symbol,
                                   [order_update_row(order, self.iso)], True))
        self._dirty.add(spec.symbol)

    def _position(self, spec: InstrumentSpec, mark: float, now_ms: int) -> Position:
        pos = self.positions.get(spec.symbol)
        if pos is None:
            pos = self.positions[spec.symbol] = Position(spec, self.account_id, mark, now_ms)
        return pos

    def on_mark(self, symbol: str, mark: float, now_ms: int) -> None:
        pos = self.positions.get(symbol)
        if pos is not None and (pos.qty != 0 or pos.mark != mark):
            pos.mark = mark
            pos.ts_ms = now_ms
            if pos.qty != 0:
                self._dirty.add(symbol)

    @property
    def dirty(self) -> bool:
        """Whether a position changed since the last :meth:`flush`."""
        return bool(self._dirty)

    def flush(self, now_ms: int) -> None:
        """Publish one ``position`` update per symbol whose position changed."""
        if not self._dirty:  # the common case: called after every slice of market time
            return
        for symbol in sorted(self._dirty):
            pos = self.positions.get(symbol)
            if pos is None:
                continue
            pos.mark = self.markets[symbol].mid_price()
            if self.publish_positions:
                self.out.append(Update("position", "update", symbol, [self.position_row(pos)],
                                       True))
        self._dirty.clear()

    def open_orders(self) -> list[Order]:
        """The open orders, in placement order."""
        maybe = self._maybe_open
        closed = [key for key, o in maybe.items() if not o.is_open]
        for key in closed:
            del maybe[key]
        return list(maybe.values())

    def position_row(self, pos: Position) -> dict[str, object]:
        buy_qty = sell_qty = 0
        for o in self.open_orders():
            if o.spec.symbol == pos.spec.symbol:
                if o.buy:
                    buy_qty += o.leaves
                else:
                    sell_qty += o.leaves
        return pos.row(self.iso, buy_qty, sell_qty)

    def _exec(self, o: Order, exec_type: str, now_ms: int) -> None:
        row = execution_row(o, self.iso, exec_id=guid(self.rng), exec_type=exec_type,
                            now_ms=now_ms)
        self._publish_exec(o, row)

    def _publish_exec(self, o: Order, row: dict[str, object]) -> None:
        self.executions.append(row)
        self.out.append(Update("execution", "insert", o.spec.symbol, [row], True))


