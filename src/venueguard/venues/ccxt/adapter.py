"""Any ccxt exchange as a :class:`venueguard.venues.base.VenueAdapter`.

``CcxtAdapter(exchange, calls, facts)`` speaks reports over ccxt's unified methods: every call
goes through ``calls.call`` (the guarded request pipeline, ``venueguard.ccxt.rest.CcxtRest``),
rows are read by :mod:`venueguard.venues.ccxt.reports`. What it calls:

* orders: ``create_order`` (the client id in the venue's own parameter, ``venues.toml``),
  ``edit_order``, ``cancel_order`` (by venue id, and by client id through ccxt's unified
  ``clientOrderId``), ``cancel_all_orders``, the dead man's switch (``dms_endpoint`` or
  ``cancel_all_orders_after``);
* queries: by client id as ``client_id_query`` says (a ``fetch_orders`` filter, or a
  ``fetch_order`` parameter), else the open and closed lists; ``fetch_open_orders``,
  ``fetch_orders`` / ``fetch_closed_orders`` (history), ``fetch_my_trades``,
  ``fetch_positions``; per symbol traded (``symbols``), as most venues want one.

Failures leave as the :mod:`venueguard.errors` tree, each raised ``from`` ccxt's own
exception (the guard gives that one back to the bot): the pipeline's own refusals and
``OrderUnknown`` pass as they are; a failure the venue reported is mapped by its verdict
(``error.venueguard``): not processed, duplicate client id, authentication, else a refusal.
``rows`` keeps the last ccxt dict seen per client id, ``failures`` the last exception of an
order call per client id (the guard answers with them, in ccxt's shapes).
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
_AUTH: Final = frozenset({Kind.INVALID_CREDENTIALS, Kind.NONCE_EXPIRED})
_PAGE: Final = 500
_MAX_PAGES: Final = 20

Row = dict[str, Any]


class CcxtCalls(Protocol):
    """The guarded request pipeline (``CcxtRest`` has it)."""

    async def call(self, endpoint: str, fn: Callable[[], Awaitable[Any]], *, idempotent: bool,
                   cl_ord_id: str | None = None) -> Any: ...


def _named(exc: BaseException, name: str) -> bool:
    return any(klass.__name__ == name for klass in type(exc).__mro__)


def venue_failure(exc: BaseException, cl_ord_id: str | None = None) -> errors.VenueguardError:
    """A failed ccxt call as the io.errors tree (raise it ``from exc``)."""
    if isinstance(exc, errors.VenueguardError):
        return exc
    verdict = getattr(exc, "venueguard", None)
    kind = getattr(verdict, "kind", None)
    kind = kind if isinstance(kind, Kind) else Kind.UNKNOWN
    common: dict[str, Any] = {"kind": kind, "status": getattr(verdict, "status", None),
                              "venue_message": str(exc)[:300]}
    error = _mapped(kind, verdict, f"{type(exc).__name__}: {kind.value}", common)
    error.cl_ord_id = cl_ord_id
    return error


def _mapped(kind: Kind, verdict: object, text: str,
            common: dict[str, Any]) -> errors.VenueError:
    if kind is Kind.DUPLICATE_CLORDID:
        return errors.DuplicateClOrdID(text, **common)
    if kind in (Kind.OVERLOADED,):
        return errors.Overloaded(text, **common)
    if kind is Kind.RATE_LIMITED:
        return errors.RateLimited(text, retry_after_s=getattr(verdict, "retry_after_s", None),
                                  **common)
    if kind in (Kind.DNS,):
        return errors.DnsError(text, **common)
    if kind in NOT_PROCESSED_KINDS:
        return errors.TransportError(text, **common)
    if kind in _AUTH:
        return errors.AuthError(text, **common)
    if getattr(verdict, "ambiguous", False):
        return errors.AmbiguousOutcome(text, **common)
    return errors.Rejected(text, **common)


class CcxtAdapter:
    """See the module docstring."""

    rule_overrides = ""   # the pipeline classifies with the venue's rules already

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
        self.last_failure: BaseException | None = None   # of the last failed query
        self.last_venue_failure: BaseException | None = None
        self.last_bulk: Any = None             # ccxt's answer to the last bulk cancel
        self.bulk_failure: BaseException | None = None
        #: ccxt's ``type``, ``side`` and ``params`` for the next amend of a client id.
        self.amend_extra: dict[str, Mapping[str, Any]] = {}

    @property
    def has(self) -> Mapping[str, Any]:
        return getattr(self.exchange, "has", None) or {}

    # ------------------------------------------------------------------------- helpers
    async def _call(self, endpoint: str, fn: Callable[[], Awaitable[Any]], *,
                    write: bool = False, cl_ord_id: str | None = None) -> Any:
        try:
            return await self.calls.call(endpoint, fn, idempotent=not write,
                                         cl_ord_id=cl_ord_id)
        except errors.VenueguardError as exc:
            self._failed(exc, cl_ord_id)
            raise
        except Exception as exc:
            self._failed(exc, cl_ord_id)
            raise venue_failure(exc, cl_ord_id) from exc

    def _failed(self, exc: BaseException, cl_ord_id: str | None) -> None:
        if cl_ord_id is not None:
            self.failures[cl_ord_id] = exc
        else:
            self.last_failure = exc
            if not isinstance(exc, errors.VenueguardError):
                self.last_venue_failure = exc   # what the venue said (not a local refusal)

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
        """An inverse contract's order in the unit orders are placed and filled in.

        ccxt (4.5.78, bitmex) puts an inverse order's size in ``cost`` (contracts), leaves
        ``amount`` to be derived and gives ``filled`` in the base currency (contracts divided by
        the average price), while its trades count contracts: read size and fill in contracts.
        """
        markets = getattr(self.exchange, "markets", None) or {}
        market = markets.get(report.symbol) if isinstance(markets, Mapping) else None
        cost = row.get("cost")
        if not (isinstance(market, Mapping) and market.get("inverse")
                and isinstance(cost, int | float) and not isinstance(cost, bool)):
            return report
        qty = float(cost)
        filled, average = row.get("filled"), row.get("average")
        contracts = None
        if isinstance(filled, int | float) and filled == 0:
            contracts = 0.0
        elif isinstance(filled, int | float) and isinstance(average, int | float | str):
            contracts = round(float(filled) * float(average), 8)   # undo ccxt's division
        return replace(report, qty=qty, filled_qty=contracts)

    def _symbols(self, symbol: str | None) -> list[str]:
        return [symbol] if symbol else sorted(self.symbols)

    # -------------------------------------------------------------------------- orders
    async def place_order(self, client_id: str, symbol: str, side: str, qty: float,
                          price: float | None, *, post_only: bool = False,
                          text: str | None = None,
                          extra: Mapping[str, Any] | None = None) -> OrderReport:
        """``extra``: ``type`` (ccxt's order type) and ``params`` (ccxt's params)."""
        raw = self.exchange
        more = dict(extra or {})
        params = dict(more.get("params") or {})
        params[self.facts.client_id_param] = client_id
        if post_only:
            params.setdefault("postOnly", True)
        order_type = str(more.get("type") or ("limit" if price is not None else "market"))
        self.symbols.add(symbol)
        self.failures.pop(client_id, None)
        row = await self._call("create_order", lambda: raw.create_order(
            symbol, order_type, side.lower(), qty, price, params), write=True,
            cl_ord_id=client_id)
        return self._report(row, client_id)

    async def amend_order(self, client_id: str, venue_id: str | None, *,
                          qty: float | None = None, price: float | None = None,
                          extra: Mapping[str, Any] | None = None) -> OrderReport:
        """``extra``: ccxt's ``type``, ``side`` and ``params`` of ``edit_order``."""
        raw = self.exchange
        more = dict(extra or self.amend_extra.pop(client_id, None) or {})
        row_before = self.rows.get(client_id, {})
        symbol = self.symbol_of(client_id) or row_before.get("symbol")
        order_type = more.get("type") or row_before.get("type") or "limit"
        side = more.get("side") or row_before.get("side")
        params = dict(more.get("params") or {})
        self.failures.pop(client_id, None)
        row = await self._call("edit_order", lambda: raw.edit_order(
            venue_id, symbol, order_type, side, qty, price, params), write=True,
            cl_ord_id=client_id)
        return self._report(row, client_id)

    async def cancel_orders(self, client_ids: Sequence[str], venue_ids: Sequence[str] = ()
                            ) -> list[OrderReport | RefusalReport]:
        out: list[OrderReport | RefusalReport] = []
        raw = self.exchange
        for cl in client_ids:
            row = self.rows.get(cl, {})
            venue_id = row.get("id")
            symbol = self.symbol_of(cl) or row.get("symbol")
            params = {"clientOrderId": cl}
            self.failures.pop(cl, None)
            try:
                answer = await self._call("cancel_order", partial(
                    raw.cancel_order, venue_id, symbol, params), write=True, cl_ord_id=cl)
            except errors.Rejected as exc:
                cause = exc.__cause__
                if cause is not None and _named(cause, "OrderNotFound"):
                    out.append(RefusalReport(cl, venue_id, str(cause)[:200], not_found=True))
                    continue
                raise
            out.append(self._cancel_answer(answer, cl, venue_id))
        for venue_id in venue_ids:
            cl = f"venue:{venue_id}"
            symbol = self.symbol_of(cl)
            answer = await self._call("cancel_order", partial(raw.cancel_order, venue_id, symbol),
                                      write=True, cl_ord_id=cl)
            out.append(self._cancel_answer(answer, None, venue_id))
        return out

    def _cancel_answer(self, answer: Any, cl: str | None, venue_id: str | None) -> OrderReport:
        report = self._report(answer, cl)
        if report.status is None:      # an answer without a status: the cancel was accepted
            report = OrderReport(cl or report.client_id, report.venue_id or venue_id,
                                 OrderStatus.CANCELED)
        return report

    async def cancel_all(self, symbol: str | None = None) -> list[OrderReport | RefusalReport]:
        raw = self.exchange
        out: list[OrderReport | RefusalReport] = []
        targets: list[str | None] = [symbol] if symbol else [*sorted(self.symbols)] or [None]
        for each in targets:
            try:
                answer = await self._call("cancel_all_orders",
                                          partial(raw.cancel_all_orders, each), write=True)
            except errors.VenueguardError as exc:
                self.bulk_failure = exc
                raise
            self.last_bulk = answer
            if isinstance(answer, list):
                out.extend(self._report(row) for row in answer if isinstance(row, dict))
        return list(out)

    async def cancel_all_after(self, timeout_ms: int) -> Any:
        raw, facts = self.exchange, self.facts
        if facts.dms_endpoint:
            method = getattr(raw, facts.dms_endpoint)
            request = {facts.dms_param: int(timeout_ms)}
            return await self._call("cancel_all_orders_after", lambda: method(request))
        return await self._call("cancel_all_orders_after",
                                lambda: raw.cancel_all_orders_after(timeout_ms))

    # ------------------------------------------------------------------------- queries
    async def orders_by_client_id(self, client_ids: Sequence[str],
                                  venue_ids: Sequence[str] = ()) -> list[OrderReport]:
        raw, query = self.exchange, self.facts.client_id_query
        out: list[OrderReport] = []
        if query.startswith("filter:") and client_ids:
            field = query.split(":", 1)[1]
            rows = await self._call("fetch_orders", lambda: raw.fetch_orders(
                None, None, max(100, len(client_ids)), {"filter": {field: list(client_ids)}}))
            wanted = set(client_ids)
            out.extend(self._report(r) for r in rows
                       if isinstance(r, dict) and client_id_of(r) in wanted)
        elif query and client_ids:
            for cl in client_ids:
                symbol = self.symbol_of(cl)
                try:
                    row = await self._call("fetch_order", partial(
                        raw.fetch_order, None, symbol, {query: cl}))
                except errors.VenueError as exc:
                    if exc.__cause__ is not None and _named(exc.__cause__, "OrderNotFound"):
                        continue
                    raise
                if isinstance(row, dict) and client_id_of(row) in (cl, None):
                    out.append(self._report(row, cl))
        elif client_ids:
            out.extend(await self._search_lists(client_ids))
        for venue_id in venue_ids:
            symbol = self.symbol_of(f"venue:{venue_id}")
            try:
                row = await self._call("fetch_order", partial(raw.fetch_order, venue_id, symbol))
            except errors.VenueError as exc:
                if exc.__cause__ is not None and _named(exc.__cause__, "OrderNotFound"):
                    continue
                raise
            if isinstance(row, dict):
                out.append(self._report(row))
        return out

    async def _search_lists(self, client_ids: Sequence[str]) -> list[OrderReport]:
        """Open and closed orders of every symbol traded (a venue without a query by id)."""
        wanted = set(client_ids)
        out: list[OrderReport] = []
        symbols = sorted({s for cl in client_ids if (s := self.symbol_of(cl))} | self.symbols)
        for symbol in symbols:
            rows, _ = await self._history(symbol, None)
            out.extend(self._report(r) for r in rows if client_id_of(r) in wanted)
        return out

    async def open_orders(self, symbol: str | None = None) -> list[OrderReport]:
        raw = self.exchange
        out: list[OrderReport] = []
        for each in self._symbols(symbol):
            rows = await self._call("fetch_open_orders", partial(raw.fetch_open_orders, each))
            out.extend(self._report(r) for r in rows if isinstance(r, dict))
        return out

    async def order_history(self, symbol: str | None, since_ms: int
                            ) -> tuple[list[OrderReport], bool]:
        out: list[OrderReport] = []
        complete = True
        for each in self._symbols(symbol):
            rows, whole = await self._history(each, since_ms)
            out.extend(self._report(r) for r in rows)
            complete = complete and whole
        return out, complete

    async def _history(self, symbol: str, since_ms: int | None) -> tuple[list[Row], bool]:
        raw, has = self.exchange, self.has
        if has.get("fetchOrders"):
            rows = await self._call("fetch_orders", lambda: raw.fetch_orders(
                symbol, since_ms, _PAGE))
            return [r for r in rows if isinstance(r, dict)], len(rows) < _PAGE
        found: list[Row] = []
        complete = True
        for method in ("fetch_open_orders", "fetch_closed_orders"):
            if has.get("fetchOpenOrders" if method == "fetch_open_orders" else
                       "fetchClosedOrders"):
                rows = await self._call(method, partial(getattr(raw, method), symbol,
                                                        since_ms, _PAGE))
                found.extend(r for r in rows if isinstance(r, dict))
                complete = complete and len(rows) < _PAGE
            else:
                complete = False
        return found, complete

    async def fills_since(self, since_ms: int
                          ) -> tuple[list[FillReport], list[Mapping[str, object]]]:
        raw = self.exchange
        fills: list[FillReport] = []
        bad: list[Mapping[str, object]] = []
        if not self.has.get("fetchMyTrades"):
            return [], []
        for symbol in sorted(self.symbols):
            since, seen = since_ms, set[object]()
            for _ in range(_MAX_PAGES):
                trades = await self._call("fetch_my_trades",
                                          partial(raw.fetch_my_trades, symbol, since, _PAGE))
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
        """A fill whose trade row carries no client id (Binance's) gets its order's: a fill
        must land on the order it belongs to, not on an order adopted by venue id.

        Only the venue saying it has no such order leaves the fill without a client id (to be
        adopted by venue id). A lookup that failed otherwise proves nothing: it raises, and the
        executions are fetched again later. Passing the fill on would adopt a second local
        order for one of ours still in doubt (its venue id not known yet), and the fill would
        be credited to both once the order's own report names its venue id.
        """
        if fill.client_id is not None or fill.venue_id is None:
            return fill
        cl = next((c for c, row in self.rows.items() if row.get("id") == fill.venue_id), None)
        if cl is None:
            raw = self.exchange
            try:
                row = await self._call("fetch_order", partial(raw.fetch_order, fill.venue_id,
                                                              symbol))
            except errors.VenueError as exc:
                if exc.__cause__ is not None and _named(exc.__cause__, "OrderNotFound"):
                    return fill
                raise
            if not isinstance(row, dict) or str(row.get("id")) != fill.venue_id:
                return fill                  # not this fill's order: no evidence
            cl = self._report(row).client_id
        return fill if cl is None else replace(fill, client_id=cl)

    async def positions(self) -> list[PositionReport]:
        raw = self.exchange
        if not self.has.get("fetchPositions"):
            return []
        symbols = sorted(self.symbols) or None
        rows = await self._call("fetch_positions", lambda: raw.fetch_positions(symbols))
        out = []
        for row in rows:
            if not isinstance(row, dict) or not isinstance(row.get("symbol"), str):
                continue
            contracts = row.get("contracts") or 0
            if not isinstance(contracts, int | float):
                continue
            sign = -1 if row.get("side") == "short" else 1
            qty = sign * abs(float(contracts))
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
            fills: list[FillReport] = []
            bad: list[Mapping[str, object]] = []
            for trade in rows:
                fill = _fill(trade)
                if fill is None:
                    bad.append({"error": "trade without id, amount or price"})
                else:
                    fills.append(fill)
            return StreamBatch(reports=tuple(fills), unreadable=tuple(bad))
        return StreamBatch()


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
