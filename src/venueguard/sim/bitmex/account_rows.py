"""Account-level rows of the simulated venue: ``User``, ``Margin`` and ``Wallet``.

The simulator keeps no deposit history, so each settlement currency starts with a fixed wallet
balance (:data:`START_BALANCE`, in BitMEX's minor units: satoshis for ``XBt``, micro-USDT for
``USDt``). Realised PnL of the positions settled in that currency moves the wallet; unrealised PnL
and maintenance margin come from the open positions. Fields the simulator has no meaning for are
completed by :mod:`venueguard.sim.bitmex.complete` when served.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final

from venueguard.sim.positions import Position

__all__ = ["START_BALANCE", "margin_row", "user_row", "wallet_row"]

#: Starting wallet balance per settlement currency (1 XBT; 100,000 USDT).
START_BALANCE: Final[dict[str, int]] = {"XBt": 100_000_000, "USDt": 100_000_000_000}


def _held(positions: Iterable[Position], currency: str) -> list[Position]:
    return [p for p in positions if p.spec.settl_currency == currency]


def wallet_row(account: int, currency: str, positions: Iterable[Position],
               ts: str) -> dict[str, object]:
    """The ``Wallet`` row of ``currency``: start balance plus realised PnL."""
    realised = sum(p.realised_pnl for p in _held(positions, currency))
    amount = START_BALANCE.get(currency, 0) + realised
    return {"account": account, "currency": currency, "deposited": START_BALANCE.get(currency, 0),
            "withdrawn": 0, "transferIn": 0, "transferOut": 0, "amount": amount,
            "pendingCredit": 0, "pendingDebit": 0, "confirmedDebit": 0, "timestamp": ts}


def margin_row(account: int, currency: str, positions: Iterable[Position],
               ts: str) -> dict[str, object]:
    """The ``Margin`` row of ``currency``: balances and margin implied by the open positions."""
    held = _held(positions, currency)
    realised = sum(p.realised_pnl for p in held)
    unrealised = sum(p.unrealised_pnl for p in held if p.qty)
    maint = 0
    for p in held:
        if p.qty:
            maint += round(abs(p.spec.value(p.qty, p.mark)) * p.spec.maint_margin)
    wallet = START_BALANCE.get(currency, 0) + realised
    margin_balance = wallet + unrealised
    available = max(0, margin_balance - maint)
    return {"account": account, "currency": currency, "riskLimit": 1_000_000_000_000,
            "amount": wallet, "grossComm": 0, "grossOpenCost": 0, "grossOpenPremium": 0,
            "grossExecCost": 0, "grossMarkValue": 0, "riskValue": 0, "initMargin": 0,
            "maintMargin": maint, "targetExcessMargin": 0, "realisedPnl": realised,
            "unrealisedPnl": unrealised, "walletBalance": wallet,
            "marginBalance": margin_balance, "marginLeverage": 0.0, "marginUsedPcnt": 0.0,
            "excessMargin": available, "availableMargin": available,
            "withdrawableMargin": available, "makerFeeDiscount": 0.0, "takerFeeDiscount": 0.0,
            "timestamp": ts}


def user_row(account: int, created: str) -> dict[str, object]:
    """The ``User`` row of the simulated account (no personal data: neutral placeholders)."""
    return {"id": account, "username": f"sim-{account}", "accountName": f"sim-{account}",
            "isUser": True, "email": f"sim-{account}@localhost", "created": created,
            "lastUpdated": created, "preferences": {}, "TFAEnabled": "", "typ": "User"}


def currencies(positions: Iterable[Position], settle: Callable[[], Iterable[str]]) -> list[str]:
    """Every settlement currency the account has: the instruments' and the positions'."""
    seen = dict.fromkeys(settle())
    for p in positions:
        seen.setdefault(p.spec.settl_currency)
    return list(seen)
