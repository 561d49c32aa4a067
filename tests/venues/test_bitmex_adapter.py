"""The BitMEX adapter: rows and error texts become neutral reports, and nothing else does."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from venueguard.core.orders import ClOrdIdGenerator, OrderError, OrderState, OrderTable
from venueguard.core.reports import (
    FillReport,
    OrderReport,
    OrderStatus,
    PositionReport,
    RefusalReport,
    TradeReport,
)
from venueguard.io import errors
from venueguard.venues.base import VenueAdapter
from venueguard.venues.bitmex import reports as rr
from venueguard.venues.bitmex.adapter import BitmexAdapter

CORE = Path(__file__).resolve().parents[2] / "src" / "venueguard" / "core"
#: BitMEX row fields: read in venues/bitmex only.
ROW_FIELDS = ("ordStatus", "clOrdID", "leavesQty", "lastPx", "lastQty", "execID", "orderID",
              "cumQty", "avgPx", "orderQty", "execType", "currentQty", "trdMatchID",
              "origClOrdID", "execInst", "lastLiquidityInd")


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_reads_no_bitmex_row_field(path: Path) -> None:
    text = path.read_text("utf-8")
    found = [name for name in ROW_FIELDS if re.search(rf"\b{name}\b", text)]
    assert found == [], f"{path.name} names BitMEX fields {found}"


@pytest.mark.parametrize("name", ["orders.py", "reconcile.py", "reports.py", "safemode.py",
                                  "dms.py", "trades.py", "classify.py", "responses.py"])
def test_order_core_names_no_venue(name: str) -> None:
    assert "bitmex" not in (CORE / name).read_text("utf-8").lower()


def test_order_rows_become_reports() -> None:
    row = {"orderID": "o1", "clOrdID": "c1", "symbol": "XBTUSD", "side": "Sell",
           "orderQty": 300, "price": 50_000.5, "ordStatus": "PartiallyFilled", "cumQty": 100,
           "leavesQty": 200, "avgPx": 50_000.5, "timestamp": "2026-01-02T03:04:05.678Z"}
    report = rr.order_report(row)
    assert report == OrderReport("c1", "o1", OrderStatus.PARTIALLY_FILLED, "XBTUSD", "Sell",
                                 300, 50_000.5, 100, 200, 50_000.5, 1_767_323_045_678)
    sparse = rr.order_report({"orderID": "o1", "price": 50_001.0})
    assert sparse.status is None and sparse.client_id is None and sparse.qty is None
    assert rr.order_report({"ordStatus": "Expired"}).status is OrderStatus.CANCELED
    assert rr.order_report({"ordStatus": "Bogus", "cumQty": True}).status is None
    assert rr.order_report({"ordStatus": "Bogus", "cumQty": True}).filled_qty is None


def test_execution_rows_are_fills_or_statuses() -> None:
    trade = {"execType": "Trade", "execID": "e1", "clOrdID": "c1", "orderID": "o1",
             "symbol": "XBTUSD", "side": "Buy", "lastQty": 100, "lastPx": 49_999.5,
             "leavesQty": 0, "execComm": 37, "settlCurrency": "XBt",
             "lastLiquidityInd": "AddedLiquidity", "orderQty": 300}
    fill = rr.execution_report(trade)
    assert fill == FillReport("e1", "c1", "o1", 100, 49_999.5, "XBTUSD", "Buy", 0, 37, "XBt",
                              "maker", order_qty=300)
    status = rr.execution_report({"execType": "Canceled", "clOrdID": "c1",
                                  "ordStatus": "Canceled"})
    assert isinstance(status, OrderReport) and status.status is OrderStatus.CANCELED
    assert rr.execution_report({"execType": "Funding", "clOrdID": "c1"}) is None
    with pytest.raises(ValueError, match="execID"):
        rr.execution_report({"execType": "Trade", "clOrdID": "c1", "lastQty": 1})
    assert rr.unusable_trade({"execType": "Trade", "execID": "e", "lastQty": 0, "lastPx": 1.0})
    assert not rr.unusable_trade({"execType": "Funding"})


def test_cancel_rows_and_refusal_texts() -> None:
    gone = rr.cancel_report({"clOrdID": "c1", "error":
                             "Unable to cancel order: Not found or not owned by user"})
    assert gone == RefusalReport("c1", None, "Unable to cancel order: Not found or not owned "
                                 "by user", None, not_found=True)
    filled = rr.cancel_report({"orderID": "o1", "error":
                               "Unable to cancel order due to existing state: Filled"})
    assert isinstance(filled, RefusalReport)
    assert filled.status is OrderStatus.FILLED and not filled.not_found
    done = rr.cancel_report({"clOrdID": "c1", "ordStatus": "Canceled", "cumQty": 5})
    assert isinstance(done, OrderReport) and done.filled_qty == 5
    assert rr.refusal_status("Invalid ordStatus: Filled") is OrderStatus.FILLED
    assert rr.refusal_status("Invalid ordStatus: New") is None         # names nothing new
    assert rr.refusal_status("Invalid price") is None
    assert rr.refusal_status("Oops. Invalid ordStatus: Filled") is None


def test_positions_and_trades() -> None:
    positions = rr.position_reports([{"symbol": "XBTUSD", "currentQty": -300,
                                      "avgEntryPrice": 50_000.0},
                                     {"symbol": "ETHUSD", "markPrice": 1.0}, "junk"])
    assert positions == [PositionReport("XBTUSD", -300, 50_000.0)]
    trades, bad = rr.trade_reports([{"symbol": "XBTUSD", "price": 1.5, "size": 2,
                                     "side": "Sell", "trdMatchID": "t1"},
                                    {"price": "1", "size": 1, "side": "Buy"}, 7])
    assert trades == [TradeReport("XBTUSD", 1.5, 2, "Sell", None, "t1")] and bad == 2


class PagedRest:
    """GET pages of a fixed row list; records the queries."""

    def __init__(self, rows: list[dict[str, Any]], *, broken: bool = False) -> None:
        self.rows, self.broken, self.queries = rows, broken, []  # type: ignore[var-annotated]

    async def request(self, verb: str, path: str, *, query: Mapping[str, Any] | None = None,
                      **kwargs: Any) -> Any:
        assert query is not None
        self.queries.append(dict(query))
        if self.broken:
            return {"error": "not a list"}
        start, count = int(query["start"]), int(query["count"])
        return self.rows[start:start + count]

    async def get_orders(self, symbol: str | None = None,
                         filter: Mapping[str, Any] | None = None, count: int = 100,
                         reverse: bool = False) -> list[dict[str, Any]]:
        self.queries.append({"filter": dict(filter or {}), "symbol": symbol})
        return [r for r in self.rows if "ordStatus" in r]

    async def cancel_orders(self, order_ids: Sequence[str] = (),
                            cl_ord_ids: Sequence[str] = (), text: str | None = None
                            ) -> list[Any]:
        self.queries.append({"order_ids": list(order_ids), "cl_ord_ids": list(cl_ord_ids)})
        return [{"clOrdID": c, "ordStatus": "Canceled"} for c in cl_ord_ids] + ["junk"]


async def test_history_pages_until_a_short_page() -> None:
    rows = [{"clOrdID": f"c{i}", "ordStatus": "Canceled"} for i in range(5)]
    adapter = BitmexAdapter(PagedRest(rows), page_count=2, max_pages=10)  # type: ignore[arg-type]
    reports, complete = await adapter.order_history("XBTUSD", 1_700_000_000_000)
    assert complete and [r.client_id for r in reports] == [f"c{i}" for i in range(5)]
    queries = adapter.rest.queries  # type: ignore[attr-defined]
    assert [q["start"] for q in queries] == [0, 2, 4]
    assert queries[0]["startTime"] == "2023-11-14T22:13:20.000Z"
    assert queries[0]["symbol"] == "XBTUSD"
    short = BitmexAdapter(PagedRest(rows), page_count=2, max_pages=2)  # type: ignore[arg-type]
    assert (await short.order_history(None, 0))[1] is False          # cut short: incomplete
    broken = BitmexAdapter(PagedRest([], broken=True))  # type: ignore[arg-type]
    with pytest.raises(errors.VenueError, match="expected a list"):
        await broken.order_history(None, 0)


async def test_fills_since_reports_unreadable_trades() -> None:
    rows: list[dict[str, Any]] = [
        {"execType": "Trade", "execID": "e1", "clOrdID": "c1", "lastQty": 1, "lastPx": 2.0},
        {"execType": "Trade", "execID": "e2", "clOrdID": "c1", "lastQty": "x", "lastPx": 2.0},
        {"execType": "Funding", "clOrdID": "c1", "ordStatus": "New"}]
    adapter = BitmexAdapter(PagedRest(rows))  # type: ignore[arg-type]
    fills, bad = await adapter.fills_since(0)
    assert [f.exec_id for f in fills] == ["e1"]
    assert bad == [{"error": "trade without execID, lastQty or lastPx", "exec_id": "e2",
                    "cl_ord_id": "c1"}]


async def test_queries_and_cancels_split_client_and_venue_ids() -> None:
    rest = PagedRest([{"clOrdID": "c1", "ordStatus": "New"}])
    adapter = BitmexAdapter(rest)  # type: ignore[arg-type]
    found = await adapter.orders_by_client_id(["c1"], ["o9"])
    assert [r.client_id for r in found] == ["c1", "c1"]
    assert [q["filter"] for q in rest.queries] == [{"clOrdID": ["c1"]}, {"orderID": ["o9"]}]
    assert await adapter.orders_by_client_id([]) == []
    answers = await adapter.cancel_orders(["c1"])
    assert answers == [OrderReport("c1", None, OrderStatus.CANCELED)]    # junk rows dropped


def test_private_messages_keep_their_order() -> None:
    adapter = BitmexAdapter(PagedRest([]))  # type: ignore[arg-type]
    assert isinstance(adapter, VenueAdapter)
    assert adapter.private_topics(["XBTUSD"]) == ("order", "execution", "position")
    batch = adapter.read_private("execution", "insert", [
        {"execType": "Trade", "execID": "e1", "clOrdID": "c1", "lastQty": 1, "lastPx": 2.0,
         "leavesQty": 0},
        {"execType": "Canceled", "clOrdID": "c1", "ordStatus": "Canceled"},
        {"execType": "Trade", "execID": "e2", "clOrdID": "c1"}, "junk"])
    assert [type(r).__name__ for r in batch.reports] == ["FillReport", "OrderReport"]
    assert [u["exec_id"] for u in batch.unreadable] == ["e2"]
    partial = adapter.read_private("order", "partial", [{"clOrdID": "c1", "ordStatus": "New"}])
    assert partial.complete_open_list and len(partial.reports) == 1
    assert not adapter.read_private("order", "update", []).complete_open_list
    position = adapter.read_private("position", "update", [{"symbol": "XBTUSD",
                                                            "currentQty": 5}])
    assert position.reports == (PositionReport("XBTUSD", 5),)
    assert adapter.read_private("trade", "insert", [{"price": 1}]).reports == ()


def test_rows_applied_to_a_table_in_one_call() -> None:
    table = OrderTable(ClOrdIdGenerator(random.Random(3)))
    order = table.new_order("XBTUSD", "Buy", 100, 50_000.0, now=0.0, wall_ms=0)
    cl = order.cl_ord_id
    table.on_submitted(cl, 0.0)
    assert rr.apply_order_row(table, {"clOrdID": cl, "orderID": "o1", "ordStatus": "New"}, 0.1)
    assert order.state is OrderState.NEW
    stranger = {"execType": "Trade", "clOrdID": "someone-else"}
    assert rr.apply_execution_row(table, stranger, 0.2) is None      # not ours: not read
    with pytest.raises(OrderError, match="execID"):
        rr.apply_execution_row(table, {"execType": "Trade", "clOrdID": cl, "lastQty": 1}, 0.3)
    fill = {"execType": "Trade", "clOrdID": cl, "execID": "e1", "lastQty": 100,
            "lastPx": 50_000.0, "leavesQty": 0}
    assert rr.apply_execution_row(table, fill, 0.4) is not None
    assert order.state is OrderState.FILLED and table.position("XBTUSD") == 100
    refused = rr.apply_cancel_row(table, {"clOrdID": cl, "error": "Unable to cancel order "
                                          "due to existing state: Filled"}, 0.5)
    assert refused is not None and refused.kind == "cancel_rejected_filled"
