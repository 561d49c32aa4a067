"""Binance USDⓈ-M views of the simulator's instruments: names, filters, number formats.

Only USDT-settled linear instruments are listed. A Binance quantity is in the base asset; the
engine counts integer contracts of ``1 / underlying_to_position_multiplier`` base units, so
``qty = contracts / multiplier``. Numbers go out as strings with the step's or the tick's decimals,
as the venue sends them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal, InvalidOperation

from venueguard.sim.instruments import InstrumentSpec

__all__ = ["BinanceSymbol", "binance_symbols"]

MIN_NOTIONAL = {"BTCUSDT": Decimal("100"), "ETHUSDT": Decimal("20")}
DEFAULT_MIN_NOTIONAL = Decimal("5")
ORDER_TYPES = ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
               "TRAILING_STOP_MARKET"]
TIME_IN_FORCE = ["GTC", "IOC", "FOK", "GTX", "GTD"]


@dataclass(frozen=True, slots=True)
class BinanceSymbol:
    """One listed symbol; ``spec`` is the engine's instrument."""

    spec: InstrumentSpec
    per_unit: int  # contracts per base unit
    qty_decimals: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        step = Decimal(self.spec.lot_size) / self.per_unit
        object.__setattr__(self, "qty_decimals",
                           max(0, -int(step.normalize().as_tuple().exponent)))

    @property
    def name(self) -> str:
        return self.spec.symbol

    @property
    def base(self) -> str:
        return "BTC" if self.spec.underlying == "XBT" else self.spec.underlying

    @property
    def step(self) -> Decimal:
        return Decimal(self.spec.lot_size) / self.per_unit

    @property
    def tick(self) -> Decimal:
        return Decimal(repr(self.spec.tick_size))

    @property
    def min_notional(self) -> Decimal:
        return MIN_NOTIONAL.get(self.name, DEFAULT_MIN_NOTIONAL)

    def qty(self, contracts: float | int) -> str:
        """Engine contracts as the venue's quantity string (exact: the division by a power of
        ten is correctly rounded at the step's decimals)."""
        return f"{int(contracts) / self.per_unit:.{self.qty_decimals}f}"

    def price(self, price: float | None) -> str:
        if price is None:
            return f"{0:.{self.spec.price_decimals}f}"
        return f"{price:.{self.spec.price_decimals}f}"

    def contracts(self, qty: Decimal) -> int | None:
        """Contracts for a venue quantity, or None when it is not a multiple of the step."""
        try:
            raw = qty * self.per_unit
            whole = raw.to_integral_value(rounding=ROUND_DOWN)
        except InvalidOperation:
            return None
        if raw != whole:
            return None
        return int(whole)

    def filters(self) -> list[dict[str, object]]:
        spec = self.spec
        max_qty = self.qty(spec.max_order_qty)
        return [
            {"filterType": "PRICE_FILTER", "minPrice": self.price(spec.tick_size),
             "maxPrice": self.price(spec.max_price), "tickSize": self.price(spec.tick_size)},
            {"filterType": "LOT_SIZE", "minQty": self.qty(spec.lot_size), "maxQty": max_qty,
             "stepSize": self.qty(spec.lot_size)},
            {"filterType": "MARKET_LOT_SIZE", "minQty": self.qty(spec.lot_size),
             "maxQty": max_qty, "stepSize": self.qty(spec.lot_size)},
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
            {"filterType": "MIN_NOTIONAL", "notional": str(self.min_notional)},
            {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500",
             "multiplierDown": "0.9500", "multiplierDecimal": "4"},
        ]

    def exchange_info_row(self) -> dict[str, object]:
        spec = self.spec
        return {
            "symbol": self.name, "pair": self.name, "contractType": "PERPETUAL",
            "deliveryDate": 4133404800000, "onboardDate": 1569398400000, "status": "TRADING",
            "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000",
            "baseAsset": self.base, "quoteAsset": "USDT", "marginAsset": "USDT",
            "pricePrecision": spec.price_decimals, "quantityPrecision": self.qty_decimals,
            "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN",
            "underlyingSubType": [], "triggerProtect": "0.0500", "liquidationFee": "0.012500",
            "marketTakeBound": "0.05", "maxMoveOrderLimit": 10000, "filters": self.filters(),
            "orderTypes": ORDER_TYPES, "timeInForce": TIME_IN_FORCE,
            "permissionSets": ["GRID", "COPY"],
        }


def binance_symbols(specs: list[InstrumentSpec]) -> dict[str, BinanceSymbol]:
    """The listed symbols among ``specs``: USDT-settled linear instruments."""
    out: dict[str, BinanceSymbol] = {}
    for spec in specs:
        if spec.kind == "linear" and spec.settl_currency == "USDt" \
                and spec.underlying_to_position_multiplier:
            out[spec.symbol] = BinanceSymbol(spec, spec.underlying_to_position_multiplier)
    return out
