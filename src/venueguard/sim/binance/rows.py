"""Engine rows (BitMEX-shaped) as Binance USDⓈ-M REST rows and user-stream events.

Order ids: the engine names orders with UUIDs; the venue numbers them. :class:`Ids` hands out
integers in first-seen order (orders and trades separately) and maps them back; the venue shows
them every execution first, oldest first, so ids rise with time (``BinanceVenue.number_history``).
"""

from __future__ import annotations

from typing import Any

from venueguard.sim.binance.symbols import BinanceSymbol
from venueguard.sim.matching import FOK_TEXT, IOC_TEXT, POST_ONLY_TEXT
from venueguard.venues.bitmex import timefmt

__all__ = ["Ids", "order_row", "status_of", "trade_row"]

_STATUS = {"New": "NEW", "PartiallyFilled": "PARTIALLY_FILLED", "Filled": "FILLED",
           "Canceled": "CANCELED", "Rejected": "REJECTED"}
_TIF = {"GoodTillCancel": "GTC", "ImmediateOrCancel": "IOC", "FillOrKill": "FOK", "Day": "GTC"}
_EXPIRED_TEXTS = (POST_ONLY_TEXT, IOC_TEXT, FOK_TEXT)


class Ids:
    """Venue integers for engine UUIDs, in first-seen order."""

    def __init__(self, first: int) -> None:
        self._next = first
        self.by_uuid: dict[str, int] = {}
        self.by_int: dict[int, str] = {}

    def of(self, uuid: str) -> int:
        found = self.by_uuid.get(uuid)
        if found is None:
            found = self.by_uuid[uuid] = self._next
            self.by_int[found] = uuid
            self._next += 1
        return found


def ms(value: object) -> int:
    parsed = timefmt.parse_ms_or_none(value)
    return parsed if parsed is not None else 0


def status_of(row: dict[str, Any]) -> str:
    """The venue status: an order the book did not keep (IOC, FOK, GTX) ends EXPIRED."""
    status = str(row.get("ordStatus", ""))
    if status == "Canceled" and str(row.get("text", "")).startswith(_EXPIRED_TEXTS):
        return "EXPIRED"
    return _STATUS.get(status, status.upper())


def tif_of(row: dict[str, Any]) -> str:
    if "ParticipateDoNotInitiate" in str(row.get("execInst", "")):
        return "GTX"
    return _TIF.get(str(row.get("timeInForce", "")), "GTC")


def order_row(sym: BinanceSymbol, row: dict[str, Any], order_id: int) -> dict[str, Any]:
    """``GET/POST/DELETE /fapi/v1/order`` (RESULT form)."""
    cum = int(row.get("cumQty") or 0)
    avg = row.get("avgPx")
    avg_f = float(avg) if isinstance(avg, int | float) and cum else 0.0
    cum_quote = float(sym.qty(cum)) * avg_f
    ord_type = "MARKET" if row.get("ordType") == "Market" else "LIMIT"
    update_ms = ms(row.get("timestamp"))
    reduce_only = "ReduceOnly" in str(row.get("execInst", ""))
    price = row.get("price")
    return {
        "orderId": order_id, "symbol": sym.name, "status": status_of(row),
        "clientOrderId": row.get("clOrdID") or "",
        "price": sym.price(float(price) if isinstance(price, int | float) else 0.0),
        "avgPrice": sym.price(avg_f), "origQty": sym.qty(int(row.get("orderQty") or 0)),
        "executedQty": sym.qty(cum), "cumQty": sym.qty(cum),
        "cumQuote": f"{cum_quote:.5f}", "timeInForce": tif_of(row), "type": ord_type,
        "reduceOnly": reduce_only, "closePosition": False,
        "side": "BUY" if row.get("side") == "Buy" else "SELL", "positionSide": "BOTH",
        "stopPrice": sym.price(0.0), "workingType": "CONTRACT_PRICE", "priceProtect": False,
        "origType": ord_type, "priceMatch": "NONE", "selfTradePreventionMode": "NONE",
        "goodTillDate": 0, "time": ms(row.get("transactTime")) or update_ms,
        "updateTime": update_ms,
    }


def trade_row(sym: BinanceSymbol, row: dict[str, Any], trade_id: int,
              order_id: int) -> dict[str, Any]:
    """``GET /fapi/v1/userTrades`` row from a trade execution."""
    qty = int(row.get("lastQty") or 0)
    price = float(row.get("lastPx") or 0.0)
    comm = abs(int(row.get("execComm") or 0)) / 1e6
    return {
        "buyer": row.get("side") == "Buy", "commission": f"{comm:.8f}",
        "commissionAsset": "USDT", "id": trade_id,
        "maker": row.get("lastLiquidityInd") == "AddedLiquidity", "orderId": order_id,
        "price": sym.price(price), "qty": sym.qty(qty),
        "quoteQty": f"{float(sym.qty(qty)) * price:.5f}", "realizedPnl": "0",
        "side": "BUY" if row.get("side") == "Buy" else "SELL", "positionSide": "BOTH",
        "symbol": sym.name, "time": ms(row.get("timestamp")),
    }


_EXEC_TYPE = {"New": "NEW", "Trade": "TRADE", "Canceled": "CANCELED", "Replaced": "AMENDMENT",
              "Rejected": "REJECTED"}


def order_event(sym: BinanceSymbol, row: dict[str, Any], order_id: int, trade_id: int,
                now_ms: int) -> dict[str, Any]:
    """An ``ORDER_TRADE_UPDATE`` event from one execution row."""
    status = status_of(row)
    exec_type = _EXEC_TYPE.get(str(row.get("execType")), "NEW")
    if exec_type == "CANCELED" and status == "EXPIRED":
        exec_type = "EXPIRED"
    last_qty = int(row.get("lastQty") or 0)
    last_px = float(row.get("lastPx") or 0.0)
    cum = int(row.get("cumQty") or 0)
    avg = row.get("avgPx")
    price = row.get("price")
    ts = ms(row.get("timestamp")) or now_ms
    trade = exec_type == "TRADE"
    return {"e": "ORDER_TRADE_UPDATE", "E": now_ms, "T": ts, "o": {
        "s": sym.name, "c": row.get("clOrdID") or "",
        "S": "BUY" if row.get("side") == "Buy" else "SELL",
        "o": "MARKET" if row.get("ordType") == "Market" else "LIMIT", "f": tif_of(row),
        "q": sym.qty(int(row.get("orderQty") or 0)),
        "p": sym.price(float(price) if isinstance(price, int | float) else 0.0),
        "ap": sym.price(float(avg) if isinstance(avg, int | float) and cum else 0.0),
        "sp": sym.price(0.0), "x": exec_type, "X": status, "i": order_id,
        "l": sym.qty(last_qty), "z": sym.qty(cum), "L": sym.price(last_px),
        "N": "USDT", "n": f"{abs(int(row.get('execComm') or 0)) / 1e6:.8f}", "T": ts,
        "t": trade_id if trade else 0, "b": "0", "a": "0",
        "m": row.get("lastLiquidityInd") == "AddedLiquidity", "R": "ReduceOnly" in str(
            row.get("execInst", "")), "wt": "CONTRACT_PRICE",
        "ot": "MARKET" if row.get("ordType") == "Market" else "LIMIT", "ps": "BOTH",
        "cp": False, "rp": "0", "pP": False, "si": 0, "ss": 0, "V": "NONE", "pm": "NONE",
        "gtd": 0}}
