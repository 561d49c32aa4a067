"""Any ccxt exchange as a :class:`venueguard.venues.base.VenueAdapter`.

``CcxtAdapter(exchange, calls, facts)`` reads ccxt's unified methods into the reports of
:mod:`venueguard.core.reports` (rows by :mod:`venueguard.venues.ccxt.reports`), per symbol traded
(``symbols``); every call goes through ``calls.call`` (the guarded pipeline,
``venueguard.ccxt.rest.CcxtRest``). The client id travels in the venue's own parameter and is
looked up as ``client_id_query`` says (``venues.toml``); the dead man's switch is
``dms_endpoint`` or ``cancel_all_orders_after``.

Failures leave as the :mod:`venueguard.errors` tree raised ``from`` ccxt's own exception (the
guard gives that one back to the bot). ``rows`` keeps the last ccxt dict per client id,
``failures`` the last exception of an order call per client id, ``last_failure`` that of any
other call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any, Final, Protocol

from venueguard import errors
from venueguard.core.kinds import NOT_PROCESSED_KINDS, Kind
from venueguard.core.reports import (
    FillReport,
    OrderReport,
    OrderStatus,
    PositionReport,
    RefusalReport,
)
from venueguard.venues.base import StreamBatch, VenueAdapter
from venueguard.venues.ccxt.classify import VenueFacts
from venueguard.venues.ccxt.reports import client_id_of, fill_report, order_report

__all__ = ["PRIVATE_STREAMS", "CcxtAdapter", "CcxtCalls"]

#: The private streams the guard feeds (``watch_orders``, ``watch_my_trades``).
PRIVATE_STREAMS: Final = ("orders", "mytrades")
_PAGE: Final = 500
_ALL_ORDERS: Final = (("fetch_orders", "fetchOrders"),)
_OPEN_AND_CLOSED: Final = (("fetch_open_orders", "fetchOpenOrders"),
                            ("fetch_closed_orders", "fetchClosedOrders"))
_MAX_PAGES: Final = 20

Row = dict[str, Any]


class CcxtCalls(Protocol):
    """The guarded request pipeline (``CcxtRest`` has it)."""

    async def call(self, endpoint: str, fn: Callable[[], Awaitable[Any]], *, idempotent: bool,
                   cl_ord_id: str | None = None) -> Any: ...


#: The error a kind the venue reported becomes; other kinds: ``TransportError`` when nothing
#: was processed, ``AmbiguousOutcome`` when the verdict says so, else ``Rejected``.
_ERROR_OF: Final[Mapping[Kind, type[errors.VenueError]]] = {
    Kind.DUPLICATE_CLORDID: errors.DuplicateClOrdID, Kind.OVERLOADED: errors.Overloaded,
    Kind.RATE_LIMITED: errors.RateLimited, Kind.DNS: errors.DnsError,
    Kind.INVALID_CREDENTIALS: errors.AuthError, Kind.NONCE_EXPIRED: errors.AuthError}


def venue_failure(exc: BaseException, cl_ord_id: str | None = None) -> errors.VenueguardError:
    """A failed ccxt call as the errors tree (raise it ``from exc``)."""
    if isinstance(exc, errors.VenueguardError):
        return exc
    verdict = getattr(exc, "venueguard", None)
    kind = getattr(verdict, "kind", None)
    kind = kind if isinstance(kind, Kind) else Kind.UNKNOWN
    klass = _ERROR_OF.get(kind) or (
        errors.TransportError if kind in NOT_PROCESSED_KINDS
        else errors.AmbiguousOutcome if getattr(verdict, "ambiguous", False) else errors.Rejected)
    text = f"{type(exc).__name__}: {kind.value}"
    common: dict[str, Any] = {"kind": kind, "status": getattr(verdict, "status", None),
                              "venue_message": str(exc)[:300]}
    if klass is errors.RateLimited:
        common["retry_after_s"] = getattr(verdict, "retry_after_s", None)
    error = klass(text, **common)
    error.cl_ord_id = cl_ord_id
    return error


class CcxtAdapter:
    """See the module docstring."""

    def __init__(self, exchange: Any, calls: CcxtCalls, facts: VenueFacts, *,
                 symbols: Sequence[str] = ()) -> None:
        self.exchange = exchange
        self.calls = calls
        self.facts = facts
        self.name = f"ccxt:{facts.exchange_id}"
        self.symbols: set[str] = set(symbols)
        #: The symbol of a client id (the guard points it at its order table).
        self.symbol_of: Callable[[str], str | None] = lambda _cl: None
        self.rows: dict[str, Row] = {}
        self.failures: dict[str, BaseException] = {}
        self.last_failure: BaseException | None = None        # of the last other failed call
        self.last_venue_failure: BaseException | None = None  # ... that the venue answered
        self.last_bulk: Any = None             # ccxt's answer to the last bulk cancel
        #: ccxt's ``type``, ``side`` and ``params`` for the next amend of a client id.
        self.amend_extra: dict[str, Mapping[str, Any]] = {}

    @property
    def has(self) -> Mapping[str, Any]:
        return getattr(self.exchange, "has", None) or {}

    # ------------------------------------------------------------------------- helpers
    async def _call(self, method: str, *args: Any, write: bool = False,
                    cl_ord_id: str | None = None, endpoint: str | None = None) -> Any:
        """``exchange.<method>(*args)`` through the pipeline; a failure is remembered (per
        client id, else as ``last_failure``) and raised as the errors tree."""
        if cl_ord_id is not None:
            self.failures.pop(cl_ord_id, None)
        try:
            fn = partial(getattr(self.exchange, method), *args)
            return await self.calls.call(endpoint or method, fn, idempotent=not write,
                                         cl_ord_id=cl_ord_id)
        except Exception as exc:
            if cl_ord_id is not None:
                self.failures[cl_ord_id] = exc
            else:
                self.last_failure = exc
                if not isinstance(exc, errors.VenueguardError):
                    self.last_venue_failure = exc   # what the venue said (not a local refusal)
            if isinstance(exc, errors.VenueguardError):
                raise
            raise venue_failure(exc, cl_ord_id) from exc

    async def _fetch_order(self, venue_id: str | None, symbol: str | None,
                           *params: Any) -> Row | None:
        """``fetch_order``'s dict; None when the venue has no such order."""
        try:
            row = await self._call("fetch_order", venue_id, symbol, *params)
        except errors.VenueError as exc:
            if _not_found(exc):
                return None
            raise
        return row if isinstance(row, dict) else None

    def _report(self, row: Any, cl_ord_id: str | None = None) -> OrderReport:
        """Read one ccxt order dict, remembering it under its client id."""
        if not isinstance(row, dict):
            return OrderReport(cl_ord_id, None, None)
        cl = client_id_of(row) or cl_ord_id
        if cl is not None and not row.get("clientOrderId"):
            row["clientOrderId"] = cl    # the unified field, filled where ccxt left it empty
        report = self._in_contracts(order_report(row), row)
        if cl is not None:
            self.rows[cl] = row
            if isinstance(report.symbol, str):
                self.symbols.add(report.symbol)
        return report

    def _in_contracts(self, report: OrderReport, row: Mapping[str, Any]) -> OrderReport:
        """An inverse contract's order in contracts, the unit orders are placed and filled in:
        ccxt (4.5.78, bitmex) puts its size in ``cost`` and its ``filled`` in the base currency
        (contracts divided by the average price), while its trades count contracts."""
        markets = getattr(self.exchange, "markets", None) or {}
        market = markets.get(report.symbol) if isinstance(markets, Mapping) else None
        cost = row.get("cost")
        if not (isinstance(market, Mapping) and market.get("inverse")
                and isinstance(cost, int | float) and not isinstance(cost, bool)):
            return report
        filled, average = row.get("filled"), row.get("average")
        contracts = None
        if isinstance(filled, int | float) and filled == 0:
            contracts = 0.0
        elif isinstance(filled, int | float) and isinstance(average, int | float | str):
            contracts = round(float(filled) * float(average), 8)   # undo ccxt's division
        return replace(report, qty=float(cost), filled_qty=contracts)

    # -------------------------------------------------------------------------- orders
    async def place_order(self, client_id: str, symbol: str, side: str, qty: float,
                          price: float | None, *, post_only: bool = False,
                          text: str | None = None,
                          extra: Mapping[str, Any] | None = None) -> OrderReport:
        """``extra``: ``type`` (ccxt's order type) and ``params`` (ccxt's params)."""
        more = extra or {}
        params = {**(more.get("params") or {}), self.facts.client_id_param: client_id}
        if post_only:
            params.setdefault("postOnly", True)
        order_type = str(more.get("type") or ("limit" if price is not None else "market"))
        self.symbols.add(symbol)
        row = await self._call("create_order", symbol, order_type, side.lower(), qty, price,
                               params, write=True, cl_ord_id=client_id)
        return self._report(row, client_id)

    async def amend_order(self, client_id: str, venue_id: str | None, *,
                          qty: float | None = None, price: float | None = None) -> OrderReport:
        """ccxt's ``type``, ``side`` and ``params`` of ``edit_order`` come from
        ``amend_extra``, else from the order's last row."""
        more = self.amend_extra.pop(client_id, None) or {}
        before = self.rows.get(client_id, {})
        symbol = self.symbol_of(client_id) or before.get("symbol")
        order_type = more.get("type") or before.get("type") or "limit"
        side = more.get("side") or before.get("side")
        row = await self._call("edit_order", venue_id, symbol, order_type, side, qty, price,
                               dict(more.get("params") or {}), write=True, cl_ord_id=client_id)
        return self._report(row, client_id)

    async def cancel_orders(self, client_ids: Sequence[str], venue_ids: Sequence[str] = ()
                            ) -> list[OrderReport | RefusalReport]:
        out: list[OrderReport | RefusalReport] = []
        for cl in client_ids:
            row = self.rows.get(cl, {})
            venue_id = row.get("id")
            try:
                answer = await self._call("cancel_order", venue_id,
                                          self.symbol_of(cl) or row.get("symbol"),
                                          {"clientOrderId": cl}, write=True, cl_ord_id=cl)
            except errors.Rejected as exc:
                if not _not_found(exc):
                    raise
                out.append(RefusalReport(cl, venue_id, str(exc.__cause__)[:200], not_found=True))
                continue
            out.append(self._cancel_answer(answer, cl, venue_id))
        for venue_id in venue_ids:
            cl = f"venue:{venue_id}"
            answer = await self._call("cancel_order", venue_id, self.symbol_of(cl), write=True,
                                      cl_ord_id=cl)
            out.append(self._cancel_answer(answer, None, venue_id))
        return out

    def _cancel_answer(self, answer: Any, cl: str | None, venue_id: str | None) -> OrderReport:
        report = self._report(answer, cl)
        if report.status is None:      # an answer without a status: the cancel was accepted
            report = OrderReport(cl or report.client_id, report.venue_id or venue_id,
                                 OrderStatus.CANCELED)
        return report

    async def cancel_all(self, symbol: str | None = None) -> list[OrderReport | RefusalReport]:
        out: list[OrderReport | RefusalReport] = []
        targets: list[str | None] = [symbol] if symbol else [*sorted(self.symbols)] or [None]
        for each in targets:
            self.last_bulk = await self._call("cancel_all_orders", each, write=True)
            if isinstance(self.last_bulk, list):
                out.extend(self._report(row) for row in self.last_bulk if isinstance(row, dict))
        return out

    async def cancel_all_after(self, timeout_ms: int) -> Any:
        facts = self.facts
        if facts.dms_endpoint:
            return await self._call(facts.dms_endpoint, {facts.dms_param: int(timeout_ms)},
                                    endpoint="cancel_all_orders_after")
        return await self._call("cancel_all_orders_after", timeout_ms)

    # ------------------------------------------------------------------------- queries
    async def orders_by_client_id(self, client_ids: Sequence[str],
                                  venue_ids: Sequence[str] = ()) -> list[OrderReport]:
        query = self.facts.client_id_query
        out: list[OrderReport] = []
        if query.startswith("filter:") and client_ids:
            field = query.split(":", 1)[1]
            rows = await self._call("fetch_orders", None, None, max(100, len(client_ids)),
                                    {"filter": {field: list(client_ids)}})
            wanted = set(client_ids)
            out.extend(self._report(r) for r in rows
                       if isinstance(r, dict) and client_id_of(r) in wanted)
        elif query and client_ids:
            for cl in client_ids:
                row = await self._fetch_order(None, self.symbol_of(cl), {query: cl})
                if row is not None and client_id_of(row) in (cl, None):
                    out.append(self._report(row, cl))
        elif client_ids:
            out.extend(await self._search_lists(client_ids))
        for venue_id in venue_ids:
            row = await self._fetch_order(venue_id, self.symbol_of(f"venue:{venue_id}"))
            if row is not None:
                out.append(self._report(row))
        return out

    async def _search_lists(self, client_ids: Sequence[str]) -> list[OrderReport]:
        """Open and closed orders of every symbol traded (a venue without a query by id)."""
        wanted = set(client_ids)
        out: list[OrderReport] = []
        for symbol in sorted({s for cl in client_ids if (s := self.symbol_of(cl))} | self.symbols):
            rows, _ = await self._history(symbol, None)
            out.extend(self._report(r) for r in rows if client_id_of(r) in wanted)
        return out

    async def open_orders(self, symbol: str | None = None) -> list[OrderReport]:
        out: list[OrderReport] = []
        for each in [symbol] if symbol else sorted(self.symbols):
            rows = await self._call("fetch_open_orders", each)
            out.extend(self._report(r) for r in rows if isinstance(r, dict))
        return out

    async def order_history(self, symbol: str | None, since_ms: int
                            ) -> tuple[list[OrderReport], bool]:
        out: list[OrderReport] = []
        complete = True
        for each in [symbol] if symbol else sorted(self.symbols):
            rows, whole = await self._history(each, since_ms)
            out.extend(self._report(r) for r in rows)
            complete = complete and whole
        return out, complete

    async def _history(self, symbol: str, since_ms: int | None) -> tuple[list[Row], bool]:
        """``fetch_orders``, else ``fetch_open_orders`` and ``fetch_closed_orders``; complete
        when no page was full and no list was missing."""
        lists = _ALL_ORDERS if self.has.get("fetchOrders") else _OPEN_AND_CLOSED
        found: list[Row] = []
        complete = True
        for method, capability in lists:
            if not self.has.get(capability):
                complete = False
                continue
            rows = await self._call(method, symbol, since_ms, _PAGE)
            found.extend(r for r in rows if isinstance(r, dict))
            complete = complete and len(rows) < _PAGE
        return found, complete

    async def fills_since(self, since_ms: int
                          ) -> tuple[list[FillReport], list[Mapping[str, object]]]:
        fills: list[FillReport] = []
        bad: list[Mapping[str, object]] = []
        if not self.has.get("fetchMyTrades"):
            return [], []
        for symbol in sorted(self.symbols):
            since, seen = since_ms, set[object]()
            for _ in range(_MAX_PAGES):
                trades = await self._call("fetch_my_trades", symbol, since, _PAGE)
                fresh = 0
                for trade in trades:
                    fill = _fill(trade)
                    key = fill.exec_id if fill is not None else id(trade)
                    if not isinstance(trade, dict) or key in seen:
                        continue
                    seen.add(key)
                    fresh += 1
                    if fill is None:
                        bad.append({"error": "trade without id, amount or price",
                                    "exec_id": str(trade.get("id"))[:64]})
                    else:
                        fills.append(await self._with_client_id(fill, symbol))
                stamps = [t["timestamp"] for t in trades if isinstance(t, dict)
                          and isinstance(t.get("timestamp"), int)]
                if len(trades) < _PAGE or not fresh or not stamps:
                    break
                since = max(stamps)
        return fills, bad

    async def _with_client_id(self, fill: FillReport, symbol: str) -> FillReport:
        """A fill whose trade row carries no client id (Binance's) gets its order's, so that it
        lands on that order, not on one adopted by venue id. Only the venue saying it has no
        such order leaves it without; a failed lookup proves nothing and raises (the executions
        are fetched again later)."""
        if fill.client_id is not None or fill.venue_id is None:
            return fill
        cl = next((c for c, row in self.rows.items() if row.get("id") == fill.venue_id), None)
        if cl is None:
            row = await self._fetch_order(fill.venue_id, symbol)
            if row is None or str(row.get("id")) != fill.venue_id:
                return fill                  # not this fill's order: no evidence
            cl = self._report(row).client_id
        return fill if cl is None else replace(fill, client_id=cl)

    async def positions(self) -> list[PositionReport]:
        if not self.has.get("fetchPositions"):
            return []
        rows = await self._call("fetch_positions", sorted(self.symbols) or None)
        out = []
        for row in rows:
            if not isinstance(row, dict) or not isinstance(row.get("symbol"), str):
                continue
            contracts = row.get("contracts") or 0
            if not isinstance(contracts, int | float):
                continue
            qty = (-1 if row.get("side") == "short" else 1) * abs(float(contracts))
            out.append(PositionReport(row["symbol"], int(qty) if qty.is_integer() else qty))
        return out

    # ----------------------------------------------------------------- the venue's words
    def refusal_status(self, message: str) -> OrderStatus | None:
        return None

    def private_topics(self, symbols: Sequence[str]) -> tuple[str, ...]:
        return PRIVATE_STREAMS

    def read_private(self, topic: str, action: str, rows: Sequence[Any]) -> StreamBatch:
        """``orders`` (``watch_orders``) and ``mytrades`` (``watch_my_trades``) results."""
        if topic == "orders":
            return StreamBatch(reports=tuple(self._report(r) for r in rows
                                             if isinstance(r, dict)))
        if topic == "mytrades":
            fills = [_fill(trade) for trade in rows]
            return StreamBatch(reports=tuple(f for f in fills if f is not None),
                               unreadable=tuple({"error": "trade without id, amount or price"}
                                                for f in fills if f is None))
        return StreamBatch()


def _not_found(exc: BaseException) -> bool:
    """Whether the venue answered that it has no such order (ccxt's ``OrderNotFound``)."""
    cause = exc.__cause__
    return cause is not None and any(k.__name__ == "OrderNotFound" for k in type(cause).__mro__)


def _fill(trade: object) -> FillReport | None:
    """A trade of ours as a fill whose id is unique per fill: ccxt's trade id is the venue's
    match id on some venues (BitMEX's ``trdMatchID``), which both sides of a match share, so
    two of our own orders filling each other would look like one fill; the order id keeps
    them apart."""
    fill = fill_report(trade) if isinstance(trade, Mapping) else None
    if fill is None or fill.venue_id is None:
        return fill
    return replace(fill, exec_id=f"{fill.exec_id}:{fill.venue_id}")


if TYPE_CHECKING:                      # mypy checks that the adapter implements the protocol
    def _implements(exchange: Any, calls: CcxtCalls, facts: VenueFacts) -> VenueAdapter:
        return CcxtAdapter(exchange, calls, facts)
