"""The account's orders as the venue keeps them, and the BitMEX ``Order`` and ``Execution`` rows.

An :class:`Order` is mutable venue state (the matching engine changes it in place); rows are
snapshots built on demand. Texts follow BitMEX: a new order says ``Submitted via API.``, every later
event prepends a line (``Canceled: Canceled via API.\\nSubmitted via API.``).
"""

from __future__ import annotations

from collections.abc import Callable

from venueguard.sim.instruments import InstrumentSpec

__all__ = ["OPEN_STATUSES", "Order", "execution_row", "order_row", "order_update_row"]

OPEN_STATUSES = frozenset({"New", "PartiallyFilled"})


class Order:
    """One order of the account. ``ahead`` is market quantity queued before it at its price."""

    __slots__ = (
        "account", "ahead", "avg_px", "buy", "cl_ord_id", "cum", "exec_inst", "fill_value",
        "leaves", "ord_type", "order_id", "order_qty", "price", "rej_reason", "seq", "spec",
        "status", "text", "tick", "tif", "transact_ms", "ts_ms",
    )

    def __init__(
        self, *, order_id: str, cl_ord_id: str, account: int, spec: InstrumentSpec, buy: bool,
        order_qty: int, tick: int | None, ord_type: str, tif: str, exec_inst: str, text: str,
        now_ms: int, seq: int,
    ) -> None:
        self.order_id = order_id
        self.cl_ord_id = cl_ord_id
        self.account = account
        self.spec = spec
        self.buy = buy
        self.order_qty = order_qty
        self.tick = tick
        self.price: float | None = None if tick is None else spec.price(tick)
        self.ord_type = ord_type
        self.tif = tif
        self.exec_inst = exec_inst
        self.text = text
        self.status = "New"
        self.leaves = order_qty
        self.cum = 0
        self.fill_value = 0.0  # sum of qty * price over fills, for avgPx
        self.avg_px: float | None = None
        self.rej_reason = ""
        self.transact_ms = now_ms
        self.ts_ms = now_ms
        self.ahead = 0
        self.seq = seq

    @property
    def side(self) -> str:
        return "Buy" if self.buy else "Sell"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def post_only(self) -> bool:
        return "ParticipateDoNotInitiate" in self.exec_inst

    def apply_fill(self, qty: int, price: float, now_ms: int) -> None:
        self.leaves -= qty
        self.cum += qty
        self.fill_value += qty * price
        self.avg_px = round(self.fill_value / self.cum, self.spec.price_decimals + 4)
        self.status = "Filled" if self.leaves == 0 else "PartiallyFilled"
        self.transact_ms = now_ms
        self.ts_ms = now_ms

    def close(self, status: str, reason_line: str, now_ms: int) -> None:
        """End the order (Canceled/Rejected); ``reason_line`` is prepended to ``text``."""
        self.status = status
        self.leaves = 0
        self.text = f"{reason_line}\n{self.text}"
        self.ts_ms = now_ms


Iso = Callable[[int], str]


def order_row(o: Order, iso: Iso) -> dict[str, object]:
    """The full ``Order`` row (REST replies, ``order`` inserts and partials)."""
    spec = o.spec
    row: dict[str, object] = {
        "orderID": o.order_id,
        "clOrdID": o.cl_ord_id,
        "clOrdLinkID": None,  # BitMEX sends null (not "") where no link or contingency is set
        "account": o.account,
        "symbol": spec.symbol,
        "side": o.side,
        "orderQty": o.order_qty,
        "price": o.price,
        "currency": spec.quote_currency,
        "settlCurrency": spec.settl_currency,
        "ordType": o.ord_type,
        "timeInForce": o.tif,
        "execInst": o.exec_inst or None,
        "contingencyType": None,
        "exDestination": "XBME",
        "ordStatus": o.status,
        "workingIndicator": o.is_open,
        "ordRejReason": o.rej_reason or None,
        "leavesQty": o.leaves,
        "cumQty": o.cum,
        "avgPx": o.avg_px,
        "text": o.text,
        "transactTime": iso(o.transact_ms),
        "timestamp": iso(o.ts_ms),
    }
    return row


def order_update_row(o: Order, iso: Iso) -> dict[str, object]:
    """An ``order`` table update: the key, the changing state and its context."""
    return {
        "orderID": o.order_id,
        "clOrdID": o.cl_ord_id,
        "account": o.account,
        "symbol": o.spec.symbol,
        "orderQty": o.order_qty,
        "price": o.price,
        "ordStatus": o.status,
        "workingIndicator": o.is_open,
        "leavesQty": o.leaves,
        "cumQty": o.cum,
        "avgPx": o.avg_px,
        "text": o.text,
        "transactTime": iso(o.transact_ms),
        "timestamp": iso(o.ts_ms),
    }


def execution_row(
    o: Order, iso: Iso, *, exec_id: str, exec_type: str, now_ms: int, last_qty: int = 0,
    last_px: float | None = None, liquidity: str = "", fee: float = 0.0, exec_comm: int = 0,
    match_id: str = "00000000-0000-0000-0000-000000000000",
) -> dict[str, object]:
    """One ``Execution`` row (``execution`` table and ``GET /execution/tradeHistory``)."""
    spec = o.spec
    row = order_row(o, iso)
    row["execID"] = exec_id
    row["execType"] = exec_type
    row["transactTime"] = row["timestamp"] = iso(now_ms)
    row["trdMatchID"] = match_id
    if exec_type == "Trade" and last_px is not None:
        signed = last_qty if o.buy else -last_qty
        row["lastQty"] = last_qty
        row["lastPx"] = last_px
        row["lastMkt"] = "XBME"
        row["lastLiquidityInd"] = liquidity
        row["commission"] = fee
        row["execCost"] = round(spec.value(signed, last_px))
        row["execComm"] = exec_comm
        row["homeNotional"] = spec.home_notional(signed, last_px)
        row["foreignNotional"] = -spec.foreign_notional(signed, last_px)
        row["tradePublishIndicator"] = "PublishTrade"
    else:
        row["lastQty"] = 0
        row["execCost"] = 0
        row["execComm"] = 0
    return row
