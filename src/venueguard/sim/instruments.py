"""Instrument specifications for the simulator and the BitMEX ``Instrument`` rows built from them.

Prices inside the simulator are integer ticks (``price = ticks * tick_size``), so book arithmetic
never meets floating-point drift; rows convert back with :meth:`InstrumentSpec.price`.

Contract value (in the settlement currency's minor unit, XBt or USDt) follows BitMEX's
``multiplier`` convention: ``multiplier * qty / price`` for inverse contracts (multiplier < 0) and
``multiplier * qty * price`` for linear and quanto ones. Profit and loss is the difference of two
values, so one formula serves every kind.

Legacy order book ids encode the price: ``id = 100_000_000 * legacy_index - price / legacy_tick``
(XBTUSD: ``8_800_000_000 - price * 100``; SOLUSDT: ``54_900_000_000 - price * 1000``, both as
observed on the venue; the indexes of ETHUSD and XBTUSDT are the simulator's own choice).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

__all__ = ["DEFAULT_INSTRUMENTS", "InstrumentSpec", "instruments_for"]


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """One tradable instrument; every number is as BitMEX publishes it."""

    symbol: str
    tick_size: float
    lot_size: int
    max_order_qty: int
    start_price: float
    legacy_index: int
    legacy_tick: float
    kind: str = "inverse"  # "inverse" | "linear" | "quanto"
    multiplier: int = -100_000_000
    underlying: str = "XBT"
    quote_currency: str = "USD"
    settl_currency: str = "XBt"
    position_currency: str = "USD"
    underlying_to_position_multiplier: int | None = None
    max_price: float = 1_000_000.0
    maker_fee: float = -0.0001
    taker_fee: float = 0.00075
    init_margin: float = 0.01
    maint_margin: float = 0.005
    typ: str = "FFWCSX"  # perpetual swap
    vol_ticks_per_sqrt_s: float = 4.0  # calm volatility of the simulated fair price
    base_size_lots: int = 40  # typical market level size, in lots
    price_decimals: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        if self.tick_size <= 0 or self.lot_size <= 0 or self.start_price <= 0:
            raise ValueError(f"{self.symbol}: tick_size, lot_size and start_price must be > 0")
        ratio = self.tick_size / self.legacy_tick
        if round(ratio) < 1 or abs(ratio - round(ratio)) > 1e-9:
            raise ValueError(f"{self.symbol}: tick_size must be a whole multiple of legacy_tick")
        if self.kind not in ("inverse", "linear", "quanto"):
            raise ValueError(f"{self.symbol}: unknown kind {self.kind!r}")
        # decimal places needed to print any multiple of the tick exactly
        exponent = Decimal(repr(self.tick_size)).normalize().as_tuple().exponent
        object.__setattr__(self, "price_decimals", max(0, -int(exponent)))

    @property
    def legacy_per_tick(self) -> int:
        return round(self.tick_size / self.legacy_tick)

    @property
    def legacy_base(self) -> int:
        return 100_000_000 * self.legacy_index

    def price(self, ticks: int) -> float:
        return round(ticks * self.tick_size, self.price_decimals)

    def ticks(self, price: float) -> int | None:
        """Ticks for ``price``, or None when it is not a multiple of the tick size."""
        exact = price / self.tick_size
        nearest = round(exact)
        if abs(exact - nearest) > 1e-7 * max(1.0, abs(exact)):
            return None
        return int(nearest)

    def legacy_id(self, ticks: int) -> int:
        return self.legacy_base - ticks * self.legacy_per_tick

    def legacy_ticks(self, level_id: int) -> int:
        """Inverse of :meth:`legacy_id`."""
        return (self.legacy_base - level_id) // self.legacy_per_tick

    def value(self, qty: float, price: float) -> float:
        """Signed contract value of ``qty`` at ``price`` in settlement minor units."""
        if self.kind == "inverse":
            return self.multiplier * qty / price
        return self.multiplier * qty * price

    def home_notional(self, qty: float, price: float) -> float:
        """Size in the underlying (base) currency."""
        if self.kind == "inverse":
            return qty / price
        if self.underlying_to_position_multiplier:
            return qty / self.underlying_to_position_multiplier
        return qty * self.multiplier * price / 1e8  # quanto: the XBT value of the contracts

    def foreign_notional(self, qty: float, price: float) -> float:
        """Size in the quote currency."""
        if self.kind == "inverse":
            return float(qty)
        return self.home_notional(qty, price) * price

    def instrument_row(
        self,
        *,
        ts: str,
        bid_price: float | None,
        ask_price: float | None,
        last_price: float,
        mark_price: float,
        last_tick_direction: str,
        volume: int,
    ) -> dict[str, object]:
        """A BitMEX ``Instrument`` row (``GET /instrument`` and the ``instrument`` partial)."""
        row: dict[str, object] = {
            "symbol": self.symbol,
            "rootSymbol": self.underlying,
            "state": "Open",
            "typ": self.typ,
            "listing": "2016-05-13T12:00:00.000Z",
            "front": "2016-05-13T12:00:00.000Z",
            "positionCurrency": self.position_currency,
            "underlying": self.underlying,
            "quoteCurrency": self.quote_currency,
            "underlyingSymbol": f"{self.underlying}=",
            "reference": "BMEX",
            "referenceSymbol": f".B{self.underlying}",
            "maxOrderQty": self.max_order_qty,
            "maxPrice": self.max_price,
            "lotSize": self.lot_size,
            "tickSize": self.tick_size,
            "multiplier": self.multiplier,
            "settlCurrency": self.settl_currency,
            "isQuanto": self.kind == "quanto",
            "isInverse": self.kind == "inverse",
            "initMargin": self.init_margin,
            "maintMargin": self.maint_margin,
            "makerFee": self.maker_fee,
            "takerFee": self.taker_fee,
            "settlementFee": 0,
            "fundingInterval": "2000-01-01T08:00:00.000Z",
            "fundingRate": 0.0001,
            "volume": volume,
            "lastPrice": last_price,
            "lastTickDirection": last_tick_direction,
            "markMethod": "FairPrice",
            "markPrice": mark_price,
            "fairPrice": mark_price,
            "indicativeSettlePrice": mark_price,
            "hasLiquidity": bid_price is not None and ask_price is not None,
            "timestamp": ts,
        }
        if self.underlying_to_position_multiplier is not None:
            row["underlyingToPositionMultiplier"] = self.underlying_to_position_multiplier
        if self.kind == "inverse":
            row["underlyingToSettleMultiplier"] = self.multiplier
        if self.settl_currency == "USDt":
            row["quoteToSettleMultiplier"] = 1_000_000
        if bid_price is not None:
            row["bidPrice"] = bid_price
        if ask_price is not None:
            row["askPrice"] = ask_price
        if bid_price is not None and ask_price is not None:
            row["midPrice"] = round((bid_price + ask_price) / 2, self.price_decimals + 1)
        return row


DEFAULT_INSTRUMENTS: dict[str, InstrumentSpec] = {
    spec.symbol: spec
    for spec in (
        InstrumentSpec(
            symbol="XBTUSD", tick_size=0.5, lot_size=100, max_order_qty=10_000_000,
            start_price=50_000.0, legacy_index=88, legacy_tick=0.01,
            vol_ticks_per_sqrt_s=6.0, base_size_lots=60,
        ),
        InstrumentSpec(
            symbol="ETHUSD", tick_size=0.05, lot_size=1, max_order_qty=10_000_000,
            start_price=3_000.0, legacy_index=297, legacy_tick=0.01, kind="quanto",
            multiplier=100, underlying="ETH", quote_currency="USD", settl_currency="XBt",
            position_currency="USD", vol_ticks_per_sqrt_s=8.0, base_size_lots=200,
        ),
        InstrumentSpec(
            symbol="SOLUSDT", tick_size=0.01, lot_size=1000, max_order_qty=1_000_000_000,
            start_price=150.0, legacy_index=549, legacy_tick=0.001, kind="linear",
            multiplier=100, underlying="SOL", quote_currency="USDT", settl_currency="USDt",
            position_currency="SOL", underlying_to_position_multiplier=10_000,
            maker_fee=-0.0001, taker_fee=0.0005, init_margin=0.03, maint_margin=0.015,
            vol_ticks_per_sqrt_s=5.0, base_size_lots=30,
        ),
        InstrumentSpec(
            symbol="XBTUSDT", tick_size=0.5, lot_size=1000, max_order_qty=1_000_000_000,
            start_price=50_000.0, legacy_index=920, legacy_tick=0.01, kind="linear",
            multiplier=1, underlying="XBT", quote_currency="USDT", settl_currency="USDt",
            position_currency="XBT", underlying_to_position_multiplier=1_000_000,
            maker_fee=-0.0001, taker_fee=0.0005, vol_ticks_per_sqrt_s=6.0, base_size_lots=50,
        ),
        # USDT-margined perpetuals as Binance USD-M lists them: quantity in 0.001 of the base
        # asset (one lot), prices in USDT; served by the binance-usdm dialect
        InstrumentSpec(
            symbol="BTCUSDT", tick_size=0.1, lot_size=1, max_order_qty=1_000_000,
            start_price=50_000.0, legacy_index=1001, legacy_tick=0.1, kind="linear",
            multiplier=1000, underlying="BTC", quote_currency="USDT", settl_currency="USDt",
            position_currency="BTC", underlying_to_position_multiplier=1000,
            maker_fee=0.0002, taker_fee=0.0005, init_margin=0.05, maint_margin=0.004,
            vol_ticks_per_sqrt_s=30.0, base_size_lots=60,
        ),
        InstrumentSpec(
            symbol="ETHUSDT", tick_size=0.01, lot_size=1, max_order_qty=10_000_000,
            start_price=3_000.0, legacy_index=1002, legacy_tick=0.01, kind="linear",
            multiplier=1000, underlying="ETH", quote_currency="USDT", settl_currency="USDt",
            position_currency="ETH", underlying_to_position_multiplier=1000,
            maker_fee=0.0002, taker_fee=0.0005, init_margin=0.05, maint_margin=0.005,
            vol_ticks_per_sqrt_s=18.0, base_size_lots=500,
        ),
    )
}


def instruments_for(symbols: Iterable[str]) -> list[InstrumentSpec]:
    """The default specs for ``symbols`` (e.g. from ``--symbols XBTUSD,SOLUSDT``).

    Raises ``KeyError`` naming the symbol when one is unknown.
    """
    out: list[InstrumentSpec] = []
    for symbol in symbols:
        name = symbol.strip().upper()
        if name not in DEFAULT_INSTRUMENTS:
            known = ", ".join(sorted(DEFAULT_INSTRUMENTS))
            raise KeyError(f"unknown symbol {name!r} (known: {known})")
        out.append(DEFAULT_INSTRUMENTS[name])
    return out
