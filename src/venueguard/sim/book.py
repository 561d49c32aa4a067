"""One instrument's order book: the market's liquidity and the account's resting orders together.

Each price level holds an aggregate market quantity (``mkt``) and a queue of account orders.
Queue position is modelled with ``Order.ahead``: the market quantity resting before the order at
its price. Trades at a level consume, in time priority, the market quantity ahead of the first
order, that order, the quantity between it and the next, and so on; market cancels come from the
back of the queue first. So an account order fills passively once the trades walk through it.

Every change of a level's visible size publishes ``orderBookL2`` rows (and ``orderBookL2_25`` rows
while the level is in the top 25 of its side) into the shared output list, in either format:
modern (arbitrary ids, price and ``transactTime`` on every row) or legacy (ids encode the price;
update and delete rows carry no price). The book never crosses: the only way liquidity meets the
other side is :meth:`Book.match`.
"""

from __future__ import annotations

from bisect import bisect_left, insort

from venueguard.sim.instruments import InstrumentSpec
from venueguard.sim.model import Update, make_update
from venueguard.sim.orders import Order

__all__ = ["Book", "Fill", "Level"]

TOP_N = 25

Fill = tuple[int, int, Order | None]  # (tick, qty, resting account order or None for market)


class Level:
    __slots__ = ("acct", "id", "mkt", "orders", "price", "tick")

    def __init__(self, tick: int, level_id: int, price: float) -> None:
        self.tick = tick
        self.id = level_id
        self.price = price
        self.mkt = 0
        self.acct = 0
        self.orders: list[Order] = []


class Book:
    """Price levels of one symbol. Call order: mutate, then read; rows go to ``out`` at once."""

    def __init__(
        self, spec: InstrumentSpec, out: list[Update], *, legacy: bool, publish_l2_25: bool,
        first_id: int, publish_l2: bool = True,
    ) -> None:
        self.spec = spec
        self.symbol = spec.symbol
        self.out = out
        self.legacy = legacy
        self.publish_l2_25 = publish_l2_25 and publish_l2
        # off: level changes publish no rows, they are only counted (an in-process consumer that
        # reads the book itself, not the stream, needs no rows)
        self.publish_l2 = publish_l2
        self.unpublished_changes = 0
        self.bids: dict[int, Level] = {}
        self.asks: dict[int, Level] = {}
        self.bid_keys: list[int] = []  # negated ticks, ascending: best bid first
        self.ask_keys: list[int] = []  # ticks, ascending: best ask first
        self._next_id = first_id
        self.top_dirty = True  # set when a change touches the best level of either side

    # ----------------------------------------------------------------- reading
    def best_bid(self) -> int | None:
        return -self.bid_keys[0] if self.bid_keys else None

    def best_ask(self) -> int | None:
        return self.ask_keys[0] if self.ask_keys else None

    def top(self) -> tuple[int | None, int, int | None, int]:
        """(best bid tick, its size, best ask tick, its size); sizes 0 on an empty side."""
        bid = -self.bid_keys[0] if self.bid_keys else None
        ask = self.ask_keys[0] if self.ask_keys else None
        bl = self.bids[bid] if bid is not None else None
        al = self.asks[ask] if ask is not None else None
        return (
            bid, bl.mkt + bl.acct if bl else 0, ask, al.mkt + al.acct if al else 0,
        )

    def level(self, buy: bool, tick: int) -> Level | None:
        return (self.bids if buy else self.asks).get(tick)

    def tick_at_rank(self, buy: bool, rank: int) -> int | None:
        keys = self.bid_keys if buy else self.ask_keys
        if rank >= len(keys):
            return None
        return -keys[rank] if buy else keys[rank]

    def depth(self, buy: bool) -> int:
        return len(self.bid_keys if buy else self.ask_keys)

    def available(self, aggressor_buy: bool, limit_tick: int | None) -> int:
        """Quantity an aggressor could take up to ``limit_tick`` (None: the whole side)."""
        total = 0
        if aggressor_buy:
            for tick in self.ask_keys:
                if limit_tick is not None and tick > limit_tick:
                    break
                lv = self.asks[tick]
                total += lv.mkt + lv.acct
        else:
            for key in self.bid_keys:
                if limit_tick is not None and -key < limit_tick:
                    break
                lv = self.bids[-key]
                total += lv.mkt + lv.acct
        return total

    def would_cross(self, buy: bool, tick: int) -> bool:
        if buy:
            return bool(self.ask_keys) and tick >= self.ask_keys[0]
        return bool(self.bid_keys) and tick <= -self.bid_keys[0]

    def rows(self, depth: int, ts: str) -> list[dict[str, object]]:
        """Full rows as ``GET /orderBook/L2`` and partials give them: sells from the highest
        price down, then buys from the highest down. ``depth`` 0 means every level."""
        asks = self.ask_keys if depth <= 0 else self.ask_keys[:depth]
        bids = self.bid_keys if depth <= 0 else self.bid_keys[:depth]
        out = [self._full_row(self.asks[t], "Sell", ts) for t in reversed(asks)]
        out.extend(self._full_row(self.bids[-k], "Buy", ts) for k in bids)
        return out

    def _full_row(self, lv: Level, side: str, ts: str) -> dict[str, object]:
        row: dict[str, object] = {
            "symbol": self.symbol, "id": lv.id, "side": side, "size": lv.mkt + lv.acct,
            "price": lv.price, "timestamp": ts,
        }
        if not self.legacy:
            row["transactTime"] = ts
        return row

    # ---------------------------------------------------------------- mutating
    def set_market(self, buy: bool, tick: int, mkt: int, ts: str) -> None:
        """Set the market quantity at a price; inserts, updates or deletes the level.

        The caller keeps the book uncrossed (a crossing quantity must go through :meth:`match`).
        """
        levels = self.bids if buy else self.asks
        lv = levels.get(tick)
        if lv is None:
            if mkt <= 0:
                return
            lv = self._new_level(buy, tick)
            lv.mkt = mkt
            self._insert(buy, lv, ts)
            return
        if mkt < lv.mkt:
            for o in lv.orders:  # market cancels leave from the back of the queue first
                if o.ahead > mkt:
                    o.ahead = mkt
        lv.mkt = mkt
        if mkt + lv.acct <= 0:
            self._delete(buy, lv, ts)
        else:
            self._changed(buy, lv, ts)

    def resize(self, buy: bool, lv: Level, mkt: int, ts: str) -> None:
        """Set the market quantity of an existing level to ``mkt`` (> 0): an update row."""
        if mkt < lv.mkt:
            for o in lv.orders:
                if o.ahead > mkt:
                    o.ahead = mkt
        lv.mkt = mkt
        self._changed(buy, lv, ts)

    def add_order(self, o: Order, ts: str) -> None:
        """Rest an account order (its ``tick`` and ``leaves`` set) at the back of its level."""
        assert o.tick is not None
        levels = self.bids if o.buy else self.asks
        lv = levels.get(o.tick)
        if lv is None:
            lv = self._new_level(o.buy, o.tick)
            o.ahead = 0
            lv.orders.append(o)
            lv.acct = o.leaves
            self._insert(o.buy, lv, ts)
            return
        o.ahead = lv.mkt
        lv.orders.append(o)
        lv.acct += o.leaves
        self._changed(o.buy, lv, ts)

    def remove_order(self, o: Order, ts: str) -> None:
        """Take a resting order (still holding its resting ``leaves``) off the book."""
        assert o.tick is not None
        levels = self.bids if o.buy else self.asks
        lv = levels[o.tick]
        lv.orders.remove(o)
        lv.acct -= o.leaves
        if lv.mkt + lv.acct <= 0:
            self._delete(o.buy, lv, ts)
        else:
            self._changed(o.buy, lv, ts)

    def reduce_order(self, o: Order, new_leaves: int, ts: str) -> None:
        """Shrink a resting order in place (keeps its queue priority); sets ``o.leaves``."""
        assert o.tick is not None
        lv = (self.bids if o.buy else self.asks)[o.tick]
        lv.acct -= o.leaves - new_leaves
        o.leaves = new_leaves
        self._changed(o.buy, lv, ts)

    def match(self, aggressor_buy: bool, limit_tick: int | None, qty: int, ts: str) -> list[Fill]:
        """Take up to ``qty`` from the opposite side, best price first, not beyond ``limit_tick``.

        Returns the fills in execution order. Account orders that fill completely leave the
        book; the caller applies each fill to its order (``Order.apply_fill``).
        """
        fills: list[Fill] = []
        buy_side = not aggressor_buy
        keys = self.bid_keys if buy_side else self.ask_keys
        levels = self.bids if buy_side else self.asks
        while qty > 0 and keys:
            tick = -keys[0] if buy_side else keys[0]
            if limit_tick is not None and (
                tick > limit_tick if aggressor_buy else tick < limit_tick
            ):
                break
            lv = levels[tick]
            qty = self._take(lv, qty, fills)
            if lv.mkt + lv.acct <= 0:
                self._delete(buy_side, lv, ts)
            else:
                self._changed(buy_side, lv, ts)
        return fills

    def _take(self, lv: Level, qty: int, fills: list[Fill]) -> int:
        used = 0  # market quantity consumed at this level
        done: list[Order] = []
        for o in lv.orders:
            gap = o.ahead - used
            if gap > 0:
                take = gap if gap < qty else qty
                if take:
                    fills.append((lv.tick, take, None))
                used += take
                qty -= take
                if qty == 0:
                    break
            part = o.leaves if o.leaves < qty else qty
            fills.append((lv.tick, part, o))
            lv.acct -= part
            qty -= part
            if part == o.leaves:
                done.append(o)
            if qty == 0:
                break
        if qty > 0 and lv.mkt > used:
            take = min(qty, lv.mkt - used)
            fills.append((lv.tick, take, None))
            used += take
            qty -= take
        lv.mkt -= used
        if done:
            lv.orders = [o for o in lv.orders if o not in done]
        if used:
            for o in lv.orders:
                o.ahead = o.ahead - used if o.ahead > used else 0
        return qty

    # ------------------------------------------------------------- publishing
    def _new_level(self, buy: bool, tick: int) -> Level:
        if self.legacy:
            level_id = self.spec.legacy_id(tick)
        else:
            self._next_id += 1 + (tick & 3)
            level_id = self._next_id
        return Level(tick, level_id, self.spec.price(tick))

    def _insert(self, buy: bool, lv: Level, ts: str) -> None:
        if buy:
            self.bids[lv.tick] = lv
            keys = self.bid_keys
            key = -lv.tick
        else:
            self.asks[lv.tick] = lv
            keys = self.ask_keys
            key = lv.tick
        insort(keys, key)
        if keys[0] == key:
            self.top_dirty = True
        if not self.publish_l2:
            self.unpublished_changes += 1
            return
        side = "Buy" if buy else "Sell"
        row = self._full_row(lv, side, ts)
        self.out.append(make_update("orderBookL2", "insert", self.symbol, [row], False))
        if self.publish_l2_25:
            rank = bisect_left(keys, key)
            if rank < TOP_N:
                if len(keys) > TOP_N:  # the level pushed out of the top 25 leaves first
                    k = keys[TOP_N]
                    out_lv = self.bids[-k] if buy else self.asks[k]
                    self.out.append(make_update(
                        "orderBookL2_25", "delete", self.symbol,
                        [self._delete_row(out_lv, side, ts)],
                    ))
                self.out.append(make_update("orderBookL2_25", "insert", self.symbol, [row.copy()]))

    def _delete(self, buy: bool, lv: Level, ts: str) -> None:
        if buy:
            del self.bids[lv.tick]
            keys = self.bid_keys
            key = -lv.tick
        else:
            del self.asks[lv.tick]
            keys = self.ask_keys
            key = lv.tick
        rank = bisect_left(keys, key)
        del keys[rank]
        if rank == 0:
            self.top_dirty = True
        if not self.publish_l2:
            self.unpublished_changes += 1
            return
        side = "Buy" if buy else "Sell"
        row = self._delete_row(lv, side, ts)
        self.out.append(make_update("orderBookL2", "delete", self.symbol, [row], False))
        if self.publish_l2_25 and rank < TOP_N:
            self.out.append(make_update("orderBookL2_25", "delete", self.symbol, [row.copy()]))
            if len(keys) >= TOP_N:
                k = keys[TOP_N - 1]
                in_lv = self.bids[-k] if buy else self.asks[k]
                self.out.append(make_update(
                    "orderBookL2_25", "insert", self.symbol, [self._full_row(in_lv, side, ts)],
                ))

    def _changed(self, buy: bool, lv: Level, ts: str) -> None:
        if buy:
            side = "Buy"
            keys = self.bid_keys
            key = -lv.tick
        else:
            side = "Sell"
            keys = self.ask_keys
            key = lv.tick
        if keys[0] == key:
            self.top_dirty = True
        if not self.publish_l2:
            self.unpublished_changes += 1
            return
        if self.legacy:
            row: dict[str, object] = {
                "symbol": self.symbol, "id": lv.id, "side": side, "size": lv.mkt + lv.acct,
                "timestamp": ts,
            }
        else:
            row = {
                "symbol": self.symbol, "id": lv.id, "side": side, "size": lv.mkt + lv.acct,
                "price": lv.price, "timestamp": ts, "transactTime": ts,
            }
        out = self.out
        out.append(make_update("orderBookL2", "update", self.symbol, [row]))
        if self.publish_l2_25 and (len(keys) <= TOP_N or key <= keys[TOP_N - 1]):
            out.append(make_update("orderBookL2_25", "update", self.symbol, [row.copy()]))

    def _delete_row(self, lv: Level, side: str, ts: str) -> dict[str, object]:
        if self.legacy:
            return {"symbol": self.symbol, "id": lv.id, "side": side, "timestamp": ts}
        return {
            "symbol": self.symbol, "id": lv.id, "side": side, "price": lv.price,
            "timestamp": ts, "transactTime": ts,
        }
