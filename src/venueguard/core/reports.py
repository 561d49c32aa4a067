"""Venue-neutral reports: what a venue adapter tells the core about orders, fills, positions and
public trades.

Every venue adapter (see :mod:`venueguard.venues`) turns the venue's own rows, messages and error
texts into these frozen facts; ``core`` reads nothing else. Feed them to
:class:`venueguard.core.reconcile.Reconciler` (``on_order_reports``, ``on_fill_reports``,
``on_cancel_reports``, ``on_order_lookup``, ``on_open_orders``, ``on_order_history``,
``on_position``), which applies them to :class:`venueguard.core.orders.OrderTable`
(``on_order_report``, ``on_fill_report``, ``on_refusal_report``).

Conventions:

* ``client_id`` is the id we chose and sent with the order (journaled before the send);
  ``venue_id`` is the venue's id for it. Either may be None when the venue leaves it out; the
  table finds an order by ``client_id`` first, then by ``venue_id``.
* ``side`` is ``"Buy"`` or ``"Sell"`` (adapters map ``"buy"``/``"sell"``, ``"BUY"``, ...).
* Quantities and prices are ``float`` in the venue's own unit (contracts, coins, lots).
  Float rather than ``Decimal`` because every source already speaks float: ccxt's unified
  structures carry floats, venues send JSON numbers, metrics and the journal store reals.
  Integer contract counts stay exact (every integer below 2**53 is a float), and the order
  table rounds each sum it keeps (``core.orders.QTY_DIGITS``) so fractional fills add up
  to the order quantity exactly (0.1 + 0.2 fills complete a 0.3 order).
* ``ts_venue_ms`` is the venue's own timestamp (epoch milliseconds) where it sends one.
* A field the venue did not send is None, never a made-up default: a sparse update says only
  what changed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

__all__ = [
    "SIDES",
    "FillReport",
    "OrderReport",
    "OrderStatus",
    "PositionReport",
    "RefusalReport",
    "Report",
    "TradeReport",
    "normalize_side",
]

#: The two sides as the core spells them.
SIDES: Final = ("Buy", "Sell")


class OrderStatus(enum.StrEnum):
    """An order's state as the venue states it (not our local belief, see ``OrderState``)."""

    NEW = "new"                         # resting, nothing filled
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"               # includes expired and venue-side cancels
    REJECTED = "rejected"               # the venue refused it after accepting the request

    @property
    def is_open(self) -> bool:
        return self in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


def normalize_side(text: object) -> str | None:
    """``"Buy"``/``"Sell"`` from any spelling of a side, else None."""
    if not isinstance(text, str):
        return None
    low = text.strip().lower()
    return "Buy" if low == "buy" else "Sell" if low == "sell" else None


@dataclass(frozen=True, slots=True)
class OrderReport:
    """One order as the venue shows it: a REST answer, a lookup row, an open-orders or history
    row, or a websocket insert/update (which may be sparse: ``status`` None names no state).

    ``qty`` is the order's total quantity now (after any amend, filled part included);
    ``filled_qty`` the venue's cumulative filled quantity; ``leaves_qty`` what still rests.
    ``reason`` carries the venue's text for a reject or cancel, when it gives one.
    """

    client_id: str | None
    venue_id: str | None
    status: OrderStatus | None = None
    symbol: str | None = None
    side: str | None = None
    qty: float | None = None
    price: float | None = None
    filled_qty: float | None = None
    leaves_qty: float | None = None
    avg_price: float | None = None
    ts_venue_ms: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class FillReport:
    """One execution (a trade of one of our orders); applied once per ``exec_id``.

    ``leaves_qty`` is what the venue says still rests after this fill (0: the order is done);
    None when the venue does not say, and the table then adds up the fills itself.
    ``liquidity`` is ``"maker"``/``"taker"`` where known; ``fee`` in ``fee_currency``.
    """

    exec_id: str
    client_id: str | None
    venue_id: str | None
    qty: float
    price: float
    symbol: str | None = None
    side: str | None = None
    leaves_qty: float | None = None
    fee: float | None = None
    fee_currency: str | None = None
    liquidity: str | None = None
    ts_venue_ms: int | None = None
    #: The order's total quantity, where the fill carries it (adopting an unknown order).
    order_qty: float | None = None


@dataclass(frozen=True, slots=True)
class RefusalReport:
    """The venue definitely refused one of our requests about an existing order (a cancel or an
    amend), as read by the adapter from its error.

    ``status``: the order state the refusal names ("already filled" -> FILLED), else None.
    ``not_found``: the venue says it has no such order (evidence of absence, like a lookup).
    """

    client_id: str | None
    venue_id: str | None
    reason: str
    status: OrderStatus | None = None
    not_found: bool = False


@dataclass(frozen=True, slots=True)
class PositionReport:
    """The venue's position in one symbol: signed ``qty`` (long > 0, short < 0, flat 0)."""

    symbol: str
    qty: float
    entry_price: float | None = None
    ts_venue_ms: int | None = None


@dataclass(frozen=True, slots=True)
class TradeReport:
    """One public trade (anyone's): ``side`` is the aggressor's; ``timestamp`` the venue's
    text for it, ``trade_id`` its id (a resubscribe may send the same trade again)."""

    symbol: str | None
    price: float
    size: float
    side: str
    timestamp: str | None = None
    trade_id: str | None = None


Report = OrderReport | FillReport | RefusalReport | PositionReport | TradeReport
