"""The seeded market process of one instrument: a self-exciting event stream driving its book.

Intensity. Market events (book inserts, updates, deletes and trades) arrive as a Poisson stream
whose rate is ``base_rate * (1 + E(t))``. The excitation ``E`` decays exponentially (time constant
``tau_ms``) and jumps by an exponential amount at each *shock*. Shocks are themselves self-exciting
(a Hawkes process: their rate is ``shock_rate + shock_beta * E``), so they cluster into volatility
bursts. The fair price follows a random walk whose variance per unit time also scales with
``1 + E``. ``intensity`` reports ``1 + E``: about 1 when calm, several times that in a burst.

Determinism. Every draw comes from the instrument's own ``random.Random``, and an event's time is
drawn when the previous event happens; :meth:`Market.run_until` only decides how far to go. So the
same seed gives the same event sequence whatever the caller's cadence.

The book follows the fair price: bids are added at or below it, asks above it; an addition that
would cross becomes a marketable order that trades through the other side, and trade aggressors lean
towards the fair price. Deletes thin out on a shallow side, so depth hovers around
``TARGET_DEPTH`` levels and stays between ``MIN_DEPTH`` and ``MAX_DEPTH``.

Liquidity is pulled in bursts, as makers do when the market runs: with excitation ``E`` the makers
keep ``gap = int(spread_widen_ticks * E)`` ticks clear on each side of the fair price. Additions
near the fair price land at least ``gap`` ticks away, and a level inside the gap that an event
picks is deleted rather than resized. The spread so widens with the burst and closes as it
decays; this is the relation the overload model of :mod:`venueguard.sim.overload` ties 503s to
(``docs/overload.md``). ``spread_widen_ticks = 0`` turns it off.

Scheduled bursts. :meth:`Market.burst` adds to the excitation at a given time (a scenario's
``[[burst]]``), as a shock of the process would; with ``move_pct`` the fair price jumps too (a
flash crash: the book trades through to the new price as orders arrive around it).

Activity over the day. ``activity`` (a scenario's ``[[session]]`` profile: engine time in ms ->
multiplier) scales the base rate, so a compressed trading day has its busy sessions and its lulls;
each inter-event time is drawn with the multiplier at the event that precedes it.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable, Mapping
from math import log
from typing import Protocol

from venueguard.sim.book import Book, Fill
from venueguard.sim.instruments import InstrumentSpec
from venueguard.sim.model import Update, make_update
from venueguard.sim.orders import Order
from venueguard.sim.rows import quote_row, tick_direction, trade_row

__all__ = ["MARKET_OVERRIDES", "FillSink", "Market", "MarketParams"]

MARKET_OVERRIDES = frozenset({
    "p_delete", "p_insert", "p_trade", "shock_beta_per_s", "shock_jump_mean", "shock_rate_per_s",
    "spread_widen_ticks", "tau_s"})

MIN_DEPTH = 8
MAX_DEPTH = 120
INITIAL_DEPTH = 40
TARGET_DEPTH = 60
INSERT_SPAN_TICKS = 90


class FillSink(Protocol):
    def on_fill(
        self, order: Order, qty: int, price: float, aggressor: bool, match_id: str, now_ms: int,
    ) -> None: ...


class MarketParams:
    """Tunables of the process (plain attributes; defaults suit a lively perpetual)."""

    __slots__ = (
        "p_delete", "p_insert", "p_trade", "shock_beta_per_s", "shock_jump_mean",
        "shock_rate_per_s", "spread_widen_ticks", "tau_ms",
    )

    def __init__(self) -> None:
        self.p_trade = 0.07
        self.p_insert = 0.28
        self.p_delete = 0.25  # the rest are size updates
        self.tau_ms = 3000.0
        self.shock_rate_per_s = 1 / 40  # calm rate of burst-starting shocks
        self.shock_beta_per_s = 0.08  # extra shock rate per unit of excitation (clustering)
        self.shock_jump_mean = 1.5  # mean jump of the excitation per shock
        # branching ratio beta * jump * tau = 0.36: bursts cluster but die out; intensity is
        # 1 most of the time, its 90th percentile about 1.5-1.8 and its peaks about 4-8.
        self.spread_widen_ticks = 1.0  # ticks kept clear each side per unit of excitation

    def with_overrides(self, overrides: Mapping[str, float]) -> MarketParams:
        """A copy with some attributes replaced (``tau_s`` sets ``tau_ms``); unknown names and
        values that would break the process raise ValueError."""
        out = self.scaled(1.0)
        for name, value in overrides.items():
            attr = "tau_ms" if name == "tau_s" else name
            if attr not in self.__slots__ or (attr == "tau_ms" and name != "tau_s"):
                raise ValueError(f"unknown market parameter {name!r}; known: "
                                 f"{', '.join(sorted(MARKET_OVERRIDES))}")
            number = float(value) * (1000.0 if name == "tau_s" else 1.0)
            if not math.isfinite(number) or number < 0 or (attr == "tau_ms" and number <= 0):
                raise ValueError(f"market parameter {name!r} must be "
                                 f"{'> 0' if attr == 'tau_ms' else '>= 0'}, got {value!r}")
            setattr(out, attr, number)
        if out.shock_beta_per_s * out.shock_jump_mean * out.tau_ms / 1000.0 >= 1.0:
            raise ValueError("shock_beta_per_s * shock_jump_mean * tau_s must stay below 1 "
                             "(otherwise bursts never die out)")
        if out.p_trade + out.p_insert + out.p_delete > 1.0:
            raise ValueError("p_trade + p_insert + p_delete must not exceed 1")
        return out

    def scaled(self, burstiness: float) -> MarketParams:
        """These parameters with the burst-starting shock rate times ``burstiness`` (0: calm)."""
        out = MarketParams()
        for name in self.__slots__:
            setattr(out, name, getattr(self, name))
        out.shock_rate_per_s = self.shock_rate_per_s * max(0.0, burstiness)
        return out


class Market:
    """One instrument's market process and its public tables (trade, quote, instrument)."""

    def __init__(
        self, spec: InstrumentSpec, book: Book, *, seed: int, rate_events_s: float,
        start_ms: int, out: list[Update], iso: Callable[[int], str],
        params: MarketParams | None = None,
        activity: Callable[[float], float] | None = None,
    ) -> None:
        self.spec = spec
        self.activity = activity
        self.book = book
        self.out = out
        self.iso = iso
        self.params = params or MarketParams()
        self.rng = random.Random(seed)
        # shocks have their own stream, so burst times do not depend on the event rate
        self.shock_rng = random.Random(seed ^ 0x5EED5)
        self.sink: FillSink | None = None
        self.base_per_ms = max(rate_events_s, 1e-6) / 1000.0
        start_ticks = spec.ticks(spec.start_price)
        if start_ticks is None:
            start_ticks = round(spec.start_price / spec.tick_size)
        self.fair = start_ticks + 0.5
        self.excitation = 0.0
        self.t_ms = float(start_ms)
        self._shock_bound = self.params.shock_rate_per_s
        self.next_shock_ms = (
            start_ms + self.shock_rng.expovariate(self._shock_bound / 1000)
            if self._shock_bound > 0 else math.inf
        )
        self.next_t = self.t_ms + self.rng.expovariate(
            self.base_per_ms * (activity(self.t_ms) if activity is not None else 1.0))
        self.last_price: float | None = None
        self.last_direction = "PlusTick"
        self.volume = 0
        self.trades: deque[dict[str, object]] = deque(maxlen=100)
        self.quote: dict[str, object] | None = None
        self._quote_key: tuple[int | None, int, int | None, int] = (None, 0, None, 0)
        self._match_seq = seed & 0xFFFFFF
        self.events = 0
        self.gap_ticks = 0
        self._seed_book(start_ticks, start_ms)

    # ------------------------------------------------------------------ state
    def intensity(self, now_ms: float | None = None) -> float:
        """``1 + E``, decayed from the last event to ``now_ms`` when given."""
        excitation = self.excitation
        if now_ms is not None and now_ms > self.t_ms:
            excitation *= math.exp(-(now_ms - self.t_ms) / self.params.tau_ms)
        return 1.0 + excitation

    def burst(self, size: float, now_ms: float, move_pct: float = 0.0) -> None:
        """Add ``size`` to the excitation as of ``now_ms`` (at or after the last event); the
        fair price moves by ``move_pct`` percent."""
        if move_pct:
            self.fair = max(1.5, self.fair * (1.0 + move_pct / 100.0))
        if size <= 0:
            return
        at_ms = max(now_ms, self.t_ms)
        # the excitation is kept as of the last event; scale the jump so it is ``size`` at_ms
        self.excitation += size * math.exp((at_ms - self.t_ms) / self.params.tau_ms)
        excitation_now = self.intensity(at_ms) - 1.0
        rate_now = self.params.shock_rate_per_s + self.params.shock_beta_per_s * excitation_now
        if rate_now > self._shock_bound:  # the thinning bound must cover the new shock rate
            self._shock_bound = rate_now
            self.next_shock_ms = at_ms + self.shock_rng.expovariate(rate_now / 1000)

    def mid_price(self) -> float:
        bid, _, ask, _ = self.book.top()
        spec = self.spec
        if bid is not None and ask is not None:
            return round((bid + ask) * spec.tick_size / 2, spec.price_decimals + 1)
        return spec.price(int(self.fair))

    def _seed_book(self, start_ticks: int, start_ms: int) -> None:
        ts = self.iso(start_ms)
        lot = self.spec.lot_size
        mean = self.spec.base_size_lots
        mark = len(self.out)
        for depth in range(INITIAL_DEPTH):
            for buy in (True, False):
                size = lot * (1 + int(self.rng.expovariate(1 / mean)))
                tick = start_ticks - depth if buy else start_ticks + 1 + depth
                self.book.set_market(buy, tick, size, ts)
        del self.out[mark:]  # the initial image is what a partial shows, not a stream of inserts
        self.book.unpublished_changes = 0
        self._quote_changed(start_ms, ts)

    # ------------------------------------------------------------------- loop
    def run_until(self, horizon_ms: float) -> None:
        """Run every market event with time <= ``horizon_ms`` (call with increasing horizons).

        The loop body is the hot path of the simulator, so it is written flat: size updates of
        existing levels (the commonest event) are handled inline, the rest in helpers.
        """
        if self.next_t > horizon_ms:
            return
        rand = self.rng.random
        params = self.params
        decay_per_ms = 1.0 / params.tau_ms
        vol = self.spec.vol_ticks_per_sqrt_s * math.sqrt(12.0 / 1000.0)
        base_per_ms = self.base_per_ms
        exp = math.exp
        sqrt = math.sqrt
        iso = self.iso
        book = self.book
        bid_keys = book.bid_keys
        ask_keys = book.ask_keys
        bids = book.bids
        asks = book.asks
        resize = book.resize
        lot = self.spec.lot_size
        size_scale = float(self.spec.base_size_lots)
        th_trade = params.p_trade
        th_insert = th_trade + params.p_insert
        th_delete = th_insert + params.p_delete
        widen = params.spread_widen_ticks
        t = self.next_t
        t_prev = self.t_ms
        excitation = self.excitation
        next_shock_ms = self.next_shock_ms
        activity = self.activity
        count = 0
        while t <= horizon_ms:
            dt = t - t_prev
            t_prev = t
            excitation *= exp(-dt * decay_per_ms)
            if t >= next_shock_ms:  # a shock candidate (Ogata thinning) is due
                shock_rand = self.shock_rng.random
                rate_now = params.shock_rate_per_s + params.shock_beta_per_s * excitation
                if shock_rand() * self._shock_bound <= rate_now:
                    excitation += -log(1.0 - shock_rand()) * params.shock_jump_mean
                    rate_now = params.shock_rate_per_s + params.shock_beta_per_s * excitation
                self._shock_bound = rate_now  # the rate only decays until the next jump
                next_shock_ms = self.next_shock_ms = (
                    t + -log(1.0 - shock_rand()) / (rate_now / 1000) if rate_now > 0
                    else math.inf)
            self.fair += (rand() - 0.5) * vol * sqrt(dt * (1.0 + excitation))
            gap = int(widen * excitation)
            self.gap_ticks = gap
            now_ms = int(t)
            ts = iso(now_ms)
            nbid = len(bid_keys)
            nask = len(ask_keys)
            u = rand()
            if nbid < MIN_DEPTH or nask < MIN_DEPTH:
                self._insert(nbid <= nask, lot * (1 + int(-log(1.0 - rand()) * size_scale)),
                             now_ms, ts)
            elif u >= th_insert:
                buy = rand() < 0.5
                depth = nbid if buy else nask
                r = rand()
                if r < 0.75:  # most activity is at the touch, some anywhere in the book
                    rank = int(-log(1.0 - r / 0.75) * 4.0)
                else:
                    rank = int((r - 0.75) * 4.0 * depth)
                if rank >= depth:
                    rank = depth - 1
                lv = bids[-bid_keys[rank]] if buy else asks[ask_keys[rank]]
                mkt = lv.mkt
                # deletes thin out as the side gets shallower, so depth hovers near the target;
                # in a burst a level inside the makers' gap is pulled
                if mkt > 0 and depth > MIN_DEPTH and (
                        (u < th_delete
                         and (u - th_insert) * TARGET_DEPTH < (th_delete - th_insert) * depth)
                        or (gap and (lv.tick + gap > self.fair if buy
                                     else lv.tick - gap < self.fair))):
                    book.set_market(buy, lv.tick, 0, ts)
                else:
                    step = lot * (1 + int(-log(1.0 - rand()) * size_scale * 0.5))
                    if mkt > step and rand() < 0.5:
                        resize(buy, lv, mkt - step, ts)
                    else:
                        resize(buy, lv, mkt + step, ts)
            elif u < th_trade:
                self._trade(now_ms, ts)
            else:
                buy = rand() < 0.5
                self._insert(buy, lot * (1 + int(-log(1.0 - rand()) * size_scale)), now_ms, ts)
                if (nbid if buy else nask) >= MAX_DEPTH:
                    worst = -bid_keys[-1] if buy else ask_keys[-1]
                    book.set_market(buy, worst, 0, ts)
            if book.top_dirty:
                self._quote_changed(now_ms, ts)
            count += 1
            if activity is None:
                t += -log(1.0 - rand()) / (base_per_ms * (1.0 + excitation))
            else:
                t += -log(1.0 - rand()) / (base_per_ms * (1.0 + excitation) * activity(t))
        self.excitation = excitation
        self.t_ms = t_prev
        self.next_t = t
        self.events += count

    def _insert(self, buy: bool, size: int, now_ms: int, ts: str) -> None:
        r = self.rng.random()
        if r < 0.7:  # near the fair price, or anywhere in the visible depth
            distance = int(-log(1.0 - r / 0.7) * 3.0)
            distance += self.gap_ticks
        else:
            distance = int((r - 0.7) / 0.3 * INSERT_SPAN_TICKS)
        base = int(self.fair)
        tick = base - distance if buy else base + 1 + distance
        book = self.book
        if book.would_cross(buy, tick):
            fills = book.match(buy, tick, size, ts)
            size -= sum(f[1] for f in fills)
            self.publish_fills(buy, fills, None, now_ms, ts)
            if size <= 0:
                return
        lv = book.level(buy, tick)
        book.set_market(buy, tick, size + (lv.mkt if lv is not None else 0), ts)

    def _trade(self, now_ms: int, ts: str) -> None:
        book = self.book
        rng = self.rng
        bid, bid_size, ask, ask_size = book.top()
        if bid is None or ask is None:
            return
        lean = (self.fair - (bid + ask + 1) / 2) * 0.15
        lean = -0.45 if lean < -0.45 else 0.45 if lean > 0.45 else lean
        buy = rng.random() < 0.5 + lean
        top_size = ask_size if buy else bid_size
        lot = self.spec.lot_size
        size = lot * (1 + int(rng.expovariate(3 / self.spec.base_size_lots)))
        if size > top_size * 2:
            size = top_size + (top_size // lot // 2) * lot
        fills = book.match(buy, None, size, ts)
        self.publish_fills(buy, fills, None, now_ms, ts)

    # ------------------------------------------------------------- publishing
    def publish_fills(
        self, aggressor_buy: bool, fills: list[Fill], aggressor: Order | None, now_ms: int,
        ts: str,
    ) -> None:
        """Publish trade rows for ``fills`` and hand account fills to the sink.

        Consecutive market chunks at one price form one trade row; each account fill is its own.
        """
        if not fills:
            return
        spec = self.spec
        side = "Buy" if aggressor_buy else "Sell"
        rows: list[dict[str, object]] = []
        sink = self.sink
        merged: list[Fill] = []
        for f in fills:
            if merged and f[2] is None and merged[-1][2] is None and merged[-1][0] == f[0]:
                merged[-1] = (f[0], merged[-1][1] + f[1], None)
            else:
                merged.append(f)
        for tick, qty, resting in merged:
            price = spec.price(tick)
            self._match_seq += 1
            match_id = f"00000000-006d-1000-0000-{self._match_seq:012x}"
            direction = tick_direction(self.last_price, price, self.last_direction)
            self.last_direction = direction
            changed = price != self.last_price
            self.last_price = price
            self.volume += qty
            row = trade_row(spec, ts, side, qty, price, direction, match_id)
            rows.append(row)
            self.trades.append(row)
            if sink is not None:
                if resting is not None:
                    sink.on_fill(resting, qty, price, False, match_id, now_ms)
                if aggressor is not None:
                    sink.on_fill(aggressor, qty, price, True, match_id, now_ms)
            if changed:
                self.out.append(make_update("instrument", "update", spec.symbol, [{
                    "symbol": spec.symbol, "lastPrice": price, "lastTickDirection": direction,
                    "timestamp": ts,
                }]))
        self.out.append(make_update("trade", "insert", spec.symbol, rows))

    def _quote_changed(self, now_ms: int, ts: str) -> None:
        self.book.top_dirty = False
        key = self.book.top()
        if key == self._quote_key:
            return
        self._quote_key = key
        bid, bid_size, ask, ask_size = key
        spec = self.spec
        row = quote_row(
            spec.symbol, ts, bid_size, spec.price(bid) if bid is not None else None,
            spec.price(ask) if ask is not None else None, ask_size,
        )
        self.quote = row
        self.out.append(make_update("quote", "insert", spec.symbol, [row]))

    def after_account_change(self, now_ms: int) -> None:
        """Publish a quote if an account action moved the top of the book."""
        self._quote_changed(now_ms, self.iso(now_ms))

    def mark_update(self, now_ms: int) -> float:
        """Publish the periodic mark price on ``instrument``; returns the mark."""
        mark = self.mid_price()
        self.out.append(Update("instrument", "update", self.spec.symbol, [{
            "symbol": self.spec.symbol, "markPrice": mark, "fairPrice": mark,
            "indicativeSettlePrice": mark, "timestamp": self.iso(now_ms),
        }]))
        return mark

    def instrument_row(self, now_ms: int) -> dict[str, object]:
        bid, _, ask, _ = self.book.top()
        spec = self.spec
        mid = self.mid_price()
        return spec.instrument_row(
            ts=self.iso(now_ms),
            bid_price=spec.price(bid) if bid is not None else None,
            ask_price=spec.price(ask) if ask is not None else None,
            last_price=self.last_price if self.last_price is not None else mid,
            mark_price=mid,
            last_tick_direction=self.last_direction,
            volume=self.volume,
        )
