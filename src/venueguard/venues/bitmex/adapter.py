"""BitMEX as a :class:`venueguard.venues.base.VenueAdapter`, over the native REST session.

``BitmexAdapter(rest)`` wraps a :class:`venueguard.io.http_session.RestSession` (or anything
with the calls of :class:`BitmexRest`) and speaks reports: rows are read by
:mod:`venueguard.venues.bitmex.reports`. Errors pass through as the session raises them (the
:mod:`venueguard.errors` tree); only order-history pages that are not a list raise
``VenueError(kind=Kind.BAD_RESPONSE)`` here.

Endpoints: ``POST /order`` (post-only: ``execInst=ParticipateDoNotInitiate``), ``PUT /order``
by ``origClOrdID`` (by ``orderID`` for an order adopted without a clOrdID), ``DELETE /order``,
``DELETE /order/all``, ``POST /order/cancelAllAfter``, ``GET /order`` (filters ``clOrdID``,
``orderID``, ``open``; history by ``startTime``, page by page), ``GET /execution/tradeHistory``
and ``GET /position``. Private websocket tables: ``order``, ``execution``, ``position``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol

from venueguard import errors
from venueguard.core.kinds import Kind
from venueguard.core.reports import (
    FillReport,
    OrderReport,
    OrderStatus,
    PositionReport,
    RefusalReport,
)
from venueguard.venues.base import StreamBatch, VenueAdapter
from venueguard.venues.bitmex import reports as rr
from venueguard.venues.bitmex.timefmt import format_ms

__all__ = ["PRIVATE_TABLES", "BitmexAdapter", "BitmexRest"]

#: The private websocket tables that carry orders, fills and positions.
PRIVATE_TABLES: Final = ("order", "execution", "position")
_POST_ONLY: Final = "ParticipateDoNotInitiate"
_BAD_TRADE: Final = "trade without execID, lastQty or lastPx"

Row = dict[str, Any]


class BitmexRest(Protocol):
    """The REST calls the adapter makes (``RestSession`` has them)."""

    async def place_order(self, symbol: str, side: str, order_qty: float,
                          price: float | None = None, *, cl_ord_id: str | None = None,
                          ord_type: str | None = None, time_in_force: str | None = None,
                          exec_inst: str | None = None, text: str | None = None,
                          **extra: Any) -> dict[str, Any]: ...

    async def amend_order(self, *, order_id: str | None = None,
                          orig_cl_ord_id: str | None = None, cl_ord_id: str | None = None,
                          order_qty: float | None = None, leaves_qty: float | None = None,
                          price: float | None = None,
                          text: str | None = None) -> dict[str, Any]: ...

    async def cancel_orders(self, order_ids: Sequence[str] = (), cl_ord_ids: Sequence[str] = (),
                            text: str | None = None) -> list[dict[str, Any]]: ...

    async def cancel_all(self, symbol: str | None = None, filter: Mapping[str, Any] | None = None,
                         text: str | None = None) -> list[dict[str, Any]]: ...

    async def get_orders(self, symbol: str | None = None, filter: Mapping[str, Any] | None = None,
                         count: int = 100, reverse: bool = False) -> list[dict[str, Any]]: ...

    async def get_positions(self) -> list[dict[str, Any]]: ...

    async def request(self, verb: str, path: str, *, query: Mapping[str, Any] | None = None,
                      body: Mapping[str, Any] | None = None, idempotent: bool | None = None,
                      cl_ord_id: str | None = None, endpoint: str | None = None) -> Any: ...


class BitmexAdapter:
    """See the module docstring. ``page_count`` rows per history page, at most ``max_pages``
    pages (a longer history is reported incomplete)."""

    name = "bitmex"

    def __init__(self, rest: BitmexRest, *, page_count: int = 50, max_pages: int = 100) -> None:
        self.rest = rest
        self.page_count = page_count
        self.max_pages = max_pages

    # --------------------------------------------------------------------------- orders
    async def place_order(self, client_id: str, symbol: str, side: str, qty: float,
                          price: float | None, *, post_only: bool = False,
                          text: str | None = None,
                          extra: Mapping[str, Any] | None = None) -> OrderReport:
        """``extra``: more ``POST /order`` fields (BitMEX's names), sent as given."""
        row = await self.rest.place_order(
            symbol, side, qty, price, cl_ord_id=client_id,
            ord_type="Limit" if price is not None else "Market",
            exec_inst=_POST_ONLY if post_only else None, text=text, **dict(extra or {}))
        return rr.order_report(row)

    async def amend_order(self, client_id: str, venue_id: str | None, *,
                          qty: float | None = None, price: float | None = None) -> OrderReport:
        by_venue_id = client_id.startswith("venue:")     # adopted without a clOrdID
        row = await self.rest.amend_order(
            order_id=venue_id if by_venue_id else None,
            orig_cl_ord_id=None if by_venue_id else client_id, order_qty=qty, price=price)
        return rr.order_report(row)

    async def cancel_orders(self, client_ids: Sequence[str], venue_ids: Sequence[str] = ()
                            ) -> list[OrderReport | RefusalReport]:
        rows = await self.rest.cancel_orders(order_ids=list(venue_ids),
                                             cl_ord_ids=list(client_ids))
        return [rr.cancel_report(row) for row in rows if isinstance(row, Mapping)]

    async def cancel_all(self, symbol: str | None = None) -> list[OrderReport | RefusalReport]:
        rows = await self.rest.cancel_all(symbol)
        return [rr.cancel_report(row) for row in rows if isinstance(row, Mapping)]

    async def cancel_all_after(self, timeout_ms: int) -> Any:
        return await self.rest.request("POST", "/order/cancelAllAfter",
                                       body={"timeout": timeout_ms}, idempotent=True)

    # -------------------------------------------------------------------------- queries
    async def orders_by_client_id(self, client_ids: Sequence[str],
                                  venue_ids: Sequence[str] = ()) -> list[OrderReport]:
        out: list[OrderReport] = []
        for key, ids in (("clOrdID", client_ids), ("orderID", venue_ids)):
            if ids:
                rows = await self.rest.get_orders(filter={key: list(ids)},
                                                  count=max(100, len(ids)))
                out.extend(rr.order_report(r) for r in rows if isinstance(r, Mapping))
        return out

    async def open_orders(self, symbol: str | None = None) -> list[OrderReport]:
        rows = await self.rest.get_orders(symbol, {"open": True}, count=500)
        return [rr.order_report(r) for r in rows if isinstance(r, Mapping)]

    async def order_history(self, symbol: str | None, since_ms: int
                            ) -> tuple[list[OrderReport], bool]:
        rows, complete = await self._pages("/order", symbol, since_ms)
        return [rr.order_report(r) for r in rows], complete

    async def fills_since(self, since_ms: int
                          ) -> tuple[list[FillReport], list[Mapping[str, object]]]:
        rows, _ = await self._pages("/execution/tradeHistory", None, since_ms)
        reports, bad = _read_executions(rows, trades_only=True)
        return [r for r in reports if isinstance(r, FillReport)], bad

    async def positions(self) -> list[PositionReport]:
        return rr.position_reports(await self.rest.get_positions())

    async def _pages(self, path: str, symbol: str | None, start_ms: int
                     ) -> tuple[list[Row], bool]:
        """Every row since ``start_ms``; ``complete`` when the last page came back short."""
        out: list[Row] = []
        for page in range(self.max_pages):
            query: dict[str, Any] = {"startTime": format_ms(start_ms), "count": self.page_count,
                                     "start": page * self.page_count}
            if symbol:
                query["symbol"] = symbol
            rows = await self.rest.request("GET", path, query=query)
            if not isinstance(rows, list):
                raise errors.VenueError(f"GET {path}: expected a list", kind=Kind.BAD_RESPONSE)
            out.extend(r for r in rows if isinstance(r, dict))
            if len(rows) < self.page_count:
                return out, True
        return out, False

    # --------------------------------------------------------------- the venue's words
    def refusal_status(self, message: str) -> OrderStatus | None:
        return rr.refusal_status(message)

    def private_topics(self, symbols: Sequence[str]) -> tuple[str, ...]:
        return PRIVATE_TABLES

    def read_private(self, topic: str, action: str, rows: Sequence[Any]) -> StreamBatch:
        """``order`` (a ``partial`` is the complete open list), ``execution`` and ``position``
        table messages; other tables give an empty batch."""
        mapped = [r for r in rows if isinstance(r, Mapping)]
        if topic == "order":
            return StreamBatch(reports=tuple(rr.order_report(r) for r in mapped),
                               complete_open_list=action == "partial")
        if topic == "execution":
            reports, bad = _read_executions(mapped, trades_only=False)
            return StreamBatch(reports=tuple(reports), unreadable=tuple(bad))
        if topic == "position":
            return StreamBatch(reports=tuple(rr.position_reports(mapped)))
        return StreamBatch()


def _read_executions(rows: Sequence[Mapping[str, Any]], *, trades_only: bool
                     ) -> tuple[list[FillReport | OrderReport], list[Mapping[str, object]]]:
    """(fills and status reports of other executions in row order, unreadable trades)."""
    out: list[FillReport | OrderReport] = []
    bad: list[Mapping[str, object]] = []
    for row in rows:
        if trades_only and row.get("execType") != "Trade":
            continue
        if rr.unusable_trade(row):
            bad.append({"error": _BAD_TRADE, "exec_id": str(row.get("execID"))[:64],
                        "cl_ord_id": str(row.get("clOrdID"))[:64]})
            continue
        report = rr.execution_report(row)
        if report is not None:
            out.append(report)
    return out, bad


if TYPE_CHECKING:                      # mypy checks that the adapter implements the protocol
    def _implements(rest: BitmexRest) -> VenueAdapter:
        return BitmexAdapter(rest)
