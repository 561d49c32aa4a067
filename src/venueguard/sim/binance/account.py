"""The account as Binance USDⓈ-M shows it: USDT wallet, margins, positions (one-way mode).

The wallet starts at ``initial_usdt`` and moves with realised profit and commissions of the
USDT-settled positions (the engine keeps those in USDt, 1e-6 USDT). Initial margin is
``notional * init_margin`` (the instrument's; 5% is 20x leverage) for positions and open orders;
``availableBalance = wallet + unrealised - initial margins``. A new order whose initial margin
exceeds the available balance is refused with -2019.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from venueguard.sim.binance.symbols import BinanceSymbol

if TYPE_CHECKING:
    from venueguard.sim.engine import Engine

__all__ = ["AccountView"]

MICRO = 1e6


@dataclass(frozen=True, slots=True)
class Totals:
    wallet: float
    unrealised: float
    position_margin: float
    order_margin: float
    maint_margin: float

    @property
    def margin_balance(self) -> float:
        return self.wallet + self.unrealised

    @property
    def available(self) -> float:
        return self.margin_balance - self.position_margin - self.order_margin


def _f(value: float, places: int = 8) -> str:
    return f"{value:.{places}f}"


class AccountView:
    def __init__(self, engine: Engine, symbols: dict[str, BinanceSymbol],
                 initial_usdt: float) -> None:
        self.engine = engine
        self.symbols = symbols
        self.initial_usdt = initial_usdt

    def _mark(self, name: str) -> float:
        return self.engine.markets[name].mid_price()

    def totals(self) -> Totals:
        account = self.engine.account
        wallet = self.initial_usdt
        unrealised = pos_margin = maint = 0.0
        for name, pos in account.positions.items():
            sym = self.symbols.get(name)
            if sym is None:
                continue
            pos.mark = self._mark(name)
            wallet += (pos.realised_gross - pos.comm) / MICRO
            unrealised += pos.unrealised_pnl / MICRO
            notional = abs(sym.spec.value(pos.qty, pos.mark)) / MICRO
            pos_margin += notional * sym.spec.init_margin
            maint += notional * sym.spec.maint_margin
        order_margin = 0.0
        for order in account.orders.values():
            sym = self.symbols.get(order.spec.symbol)
            if sym is None or not order.is_open:
                continue
            price = order.price if order.price is not None else self._mark(sym.name)
            order_margin += abs(sym.spec.value(order.leaves, price)) / MICRO \
                * sym.spec.init_margin
        return Totals(wallet, unrealised, pos_margin, order_margin, maint)

    def order_margin(self, sym: BinanceSymbol, contracts: int, price: float | None) -> float:
        px = price if price is not None else self._mark(sym.name)
        return abs(sym.spec.value(contracts, px)) / MICRO * sym.spec.init_margin

    def position_rows(self, symbol: str | None, now_ms: int) -> list[dict[str, Any]]:
        """``/fapi/v2|v3/positionRisk`` rows (v3 lists open positions only)."""
        rows = []
        positions = self.engine.account.positions
        for name, sym in self.symbols.items():
            if symbol is not None and name != symbol:
                continue
            pos = positions.get(name)
            qty = pos.qty if pos is not None else 0
            mark = self._mark(name)
            if pos is not None:
                pos.mark = mark
            entry = pos.avg_entry_price if pos is not None and qty else None
            notional = sym.spec.value(qty, mark) / MICRO
            upnl = pos.unrealised_pnl / MICRO if pos is not None else 0.0
            margin = abs(notional) * sym.spec.init_margin
            rows.append({
                "symbol": name, "positionSide": "BOTH", "positionAmt": sym.qty(qty),
                "entryPrice": sym.price(entry or 0.0), "breakEvenPrice": sym.price(entry or 0.0),
                "markPrice": _f(mark), "unRealizedProfit": _f(upnl),
                "liquidationPrice": "0", "isolatedMargin": "0", "notional": _f(notional),
                "marginAsset": "USDT", "isolatedWallet": "0", "initialMargin": _f(margin),
                "maintMargin": _f(abs(notional) * sym.spec.maint_margin),
                "positionInitialMargin": _f(margin), "openOrderInitialMargin": "0",
                "adl": 0, "bidNotional": "0", "askNotional": "0",
                "leverage": str(round(1 / sym.spec.init_margin)), "marginType": "cross",
                "isAutoAddMargin": "false", "maxNotionalValue": "1000000",
                "updateTime": pos.ts_ms if pos is not None else 0,
            })
        return rows

    def balance_rows(self, now_ms: int) -> list[dict[str, Any]]:
        t = self.totals()
        return [{"accountAlias": "SgsR", "asset": "USDT", "balance": _f(t.wallet),
                 "crossWalletBalance": _f(t.wallet), "crossUnPnl": _f(t.unrealised),
                 "availableBalance": _f(t.available), "maxWithdrawAmount": _f(t.available),
                 "marginAvailable": True, "updateTime": now_ms}]

    def account(self, now_ms: int) -> dict[str, Any]:
        t = self.totals()
        asset = {"asset": "USDT", "walletBalance": _f(t.wallet),
                 "unrealizedProfit": _f(t.unrealised), "marginBalance": _f(t.margin_balance),
                 "maintMargin": _f(t.maint_margin),
                 "initialMargin": _f(t.position_margin + t.order_margin),
                 "positionInitialMargin": _f(t.position_margin),
                 "openOrderInitialMargin": _f(t.order_margin), "crossWalletBalance": _f(t.wallet),
                 "crossUnPnl": _f(t.unrealised), "availableBalance": _f(t.available),
                 "maxWithdrawAmount": _f(t.available), "updateTime": now_ms}
        positions = [{"symbol": r["symbol"], "positionSide": "BOTH",
                      "positionAmt": r["positionAmt"], "unrealizedProfit": r["unRealizedProfit"],
                      "isolatedMargin": "0", "notional": r["notional"], "isolatedWallet": "0",
                      "initialMargin": r["initialMargin"], "maintMargin": r["maintMargin"],
                      "updateTime": r["updateTime"]}
                     for r in self.position_rows(None, now_ms) if float(r["positionAmt"]) != 0]
        return {"totalInitialMargin": asset["initialMargin"],
                "totalMaintMargin": asset["maintMargin"],
                "totalWalletBalance": asset["walletBalance"],
                "totalUnrealizedProfit": asset["unrealizedProfit"],
                "totalMarginBalance": asset["marginBalance"],
                "totalPositionInitialMargin": asset["positionInitialMargin"],
                "totalOpenOrderInitialMargin": asset["openOrderInitialMargin"],
                "totalCrossWalletBalance": asset["crossWalletBalance"],
                "totalCrossUnPnl": asset["crossUnPnl"],
                "availableBalance": asset["availableBalance"],
                "maxWithdrawAmount": asset["maxWithdrawAmount"], "canTrade": True,
                "canDeposit": True, "canWithdraw": True, "feeTier": 0, "updateTime": 0,
                "multiAssetsMargin": False, "assets": [asset], "positions": positions}

    def account_update(self, name: str, now_ms: int) -> dict[str, Any]:
        """An ``ACCOUNT_UPDATE`` event after a fill of ``name``."""
        t = self.totals()
        rows = self.position_rows(name, now_ms)
        return {"e": "ACCOUNT_UPDATE", "E": now_ms, "T": now_ms, "a": {
            "m": "ORDER", "B": [{"a": "USDT", "wb": _f(t.wallet), "cw": _f(t.wallet),
                                 "bc": "0"}],
            "P": [{"s": r["symbol"], "pa": r["positionAmt"], "ep": r["entryPrice"],
                   "bep": r["breakEvenPrice"], "cr": "0", "up": r["unRealizedProfit"],
                   "mt": "cross", "iw": "0", "ps": "BOTH"} for r in rows]}}
