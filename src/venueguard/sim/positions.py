"""Position keeping for the simulated account (one position per symbol, BitMEX one-way mode).

``cost`` is the signed contract value of the open position at its entry prices (see
``InstrumentSpec.value``). Opening adds ``value(qty, price)``; closing realises
``value(closed, exit) - value(closed, entry)`` where the entry value is the proportional share of
``cost``. Unrealised PnL is ``value(qty, mark) - cost``; realised PnL includes commissions (a maker
rebate is a negative commission), as on BitMEX.
"""

from __future__ import annotations

from collections.abc import Callable

from venueguard.sim.instruments import InstrumentSpec

__all__ = ["Position"]


class Position:
    __slots__ = (
        "account", "comm", "cost", "exec_buy_qty", "exec_sell_qty", "mark", "qty",
        "realised_gross", "spec", "ts_ms",
    )

    def __init__(self, spec: InstrumentSpec, account: int, mark: float, now_ms: int) -> None:
        self.spec = spec
        self.account = account
        self.qty = 0
        self.cost = 0.0
        self.realised_gross = 0.0
        self.comm = 0.0
        self.exec_buy_qty = 0
        self.exec_sell_qty = 0
        self.mark = mark
        self.ts_ms = now_ms

    def apply_fill(self, buy: bool, qty: int, price: float, comm: float, now_ms: int) -> None:
        """Book one fill of ``qty`` (> 0) contracts at ``price``; ``comm`` in settlement units."""
        spec = self.spec
        self.comm += comm
        if buy:
            self.exec_buy_qty += qty
        else:
            self.exec_sell_qty += qty
        signed = qty if buy else -qty
        if self.qty == 0 or (self.qty > 0) == buy:
            self.cost += spec.value(signed, price)
            self.qty += signed
        else:
            closing = min(qty, abs(self.qty))
            part = closing if self.qty > 0 else -closing
            entry_value = self.cost * closing / abs(self.qty)
            self.realised_gross += spec.value(part, price) - entry_value
            self.cost -= entry_value
            self.qty -= part
            rest = qty - closing
            if rest:
                opened = rest if buy else -rest
                self.cost = spec.value(opened, price)
                self.qty = opened
            elif self.qty == 0:
                self.cost = 0.0
        self.ts_ms = now_ms

    @property
    def avg_entry_price(self) -> float | None:
        if self.qty == 0 or self.cost == 0:
            return None
        spec = self.spec
        if spec.kind == "inverse":
            raw = spec.multiplier * self.qty / self.cost
        else:
            raw = self.cost / (spec.multiplier * self.qty)
        return round(raw, spec.price_decimals + 2)

    @property
    def unrealised_pnl(self) -> int:
        if self.qty == 0:
            return 0
        return round(self.spec.value(self.qty, self.mark) - self.cost)

    @property
    def realised_pnl(self) -> int:
        return round(self.realised_gross - self.comm)

    def row(self, iso: Callable[[int], str], open_buy_qty: int, open_sell_qty: int) -> dict[
        str, object
    ]:
        """The BitMEX ``Position`` row."""
        spec = self.spec
        mark_value = round(spec.value(self.qty, self.mark)) if self.qty else 0
        cost = round(self.cost)
        row: dict[str, object] = {
            "account": self.account,
            "symbol": spec.symbol,
            "currency": spec.settl_currency,
            "underlying": spec.underlying,
            "quoteCurrency": spec.quote_currency,
            "commission": spec.taker_fee,
            "initMarginReq": spec.init_margin,
            "maintMarginReq": spec.maint_margin,
            "leverage": round(1 / spec.init_margin, 2),
            "crossMargin": True,
            "openOrderBuyQty": open_buy_qty,
            "openOrderSellQty": open_sell_qty,
            "execBuyQty": self.exec_buy_qty,
            "execSellQty": self.exec_sell_qty,
            "currentQty": self.qty,
            "currentCost": cost,
            "currentComm": round(self.comm),
            "unrealisedCost": cost,
            "isOpen": self.qty != 0,
            "markPrice": self.mark,
            "markValue": mark_value,
            "homeNotional": spec.home_notional(self.qty, self.mark),
            "foreignNotional": -spec.foreign_notional(self.qty, self.mark) if self.qty else 0.0,
            "realisedPnl": self.realised_pnl,
            "unrealisedPnl": self.unrealised_pnl,
            "maintMargin": round(abs(mark_value) * spec.maint_margin),
            "posState": "",
            "currentTimestamp": iso(self.ts_ms),
            "timestamp": iso(self.ts_ms),
            "lastPrice": self.mark,
        }
        entry = self.avg_entry_price
        if entry is not None:
            row["avgEntryPrice"] = entry
            row["avgCostPrice"] = entry
            row["unrealisedPnlPcnt"] = round(self.unrealised_pnl / abs(cost), 4) if cost else 0.0
        return row
