"""The ccxt adapter's translation of failures into the error tree (ccxt's own exception kept as
the cause, the client id attached), and of trade rows without a client id."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import ccxt
import pytest

from venueguard import errors
from venueguard.core.kinds import Kind
from venueguard.core.reports import FillReport
from venueguard.venues.ccxt.adapter import CcxtAdapter, venue_failure
from venueguard.venues.ccxt.classify import venue_facts


def _failed(cls: type[Exception], kind: Kind, **verdict: Any) -> Exception:
    exc = cls("venue said no")
    exc.venueguard = SimpleNamespace(kind=kind, status=400, ambiguous=False,  # type: ignore[attr-defined]
                                     **verdict)
    return exc


@pytest.mark.parametrize(("kind", "expected"), [
    (Kind.OVERLOADED, errors.Overloaded), (Kind.RATE_LIMITED, errors.RateLimited),
    (Kind.DNS, errors.DnsError), (Kind.EDGE_PROTECTION, errors.TransportError),
    (Kind.DUPLICATE_CLORDID, errors.DuplicateClOrdID), (Kind.INVALID_CREDENTIALS,
                                                         errors.AuthError),
    (Kind.NONCE_EXPIRED, errors.AuthError), (Kind.ORDER_REJECTED, errors.Rejected),
    (Kind.UNKNOWN, errors.Rejected)])
def test_a_venue_failure_maps_by_its_verdict_and_keeps_the_client_id(
        kind: Kind, expected: type[errors.VenueError]) -> None:
    mapped = venue_failure(_failed(ccxt.ExchangeError, kind, retry_after_s=1.5), "cl-1")
    assert type(mapped) is expected
    assert isinstance(mapped, errors.VenueError) and mapped.cl_ord_id == "cl-1"
    assert mapped.kind is kind and "venue said no" in mapped.venue_message
    if expected is errors.RateLimited:
        assert isinstance(mapped, errors.RateLimited) and mapped.retry_after_s == 1.5


def test_an_ambiguous_verdict_and_our_own_errors() -> None:
    timeout = ccxt.RequestTimeout("no answer")
    timeout.venueguard = SimpleNamespace(kind=Kind.AMBIGUOUS_TIMEOUT,  # type: ignore[attr-defined]
                                         status=None, ambiguous=True)
    assert isinstance(venue_failure(timeout), errors.AmbiguousOutcome)
    ours = errors.CoolingDown("cooling", until=1.0)
    assert venue_failure(ours) is ours
    assert type(venue_failure(ValueError("bad"))) is errors.Rejected   # no verdict: refused


class _Calls:
    def __init__(self) -> None:
        self.endpoints: list[str] = []

    async def call(self, endpoint: str, fn: Any, *, idempotent: bool,
                   cl_ord_id: str | None = None) -> Any:
        self.endpoints.append(endpoint)
        return await fn()


def test_two_of_our_orders_filling_each_other_are_two_fills() -> None:
    # BitMEX's trade id (trdMatchID) is the match's: both sides carry it
    adapter = CcxtAdapter(_Exchange(), _Calls(), venue_facts("bitmex"))
    batch = adapter.read_private("mytrades", "update", [
        {"id": "m1", "order": "buy-order", "amount": 100, "price": 50_000.0,
         "symbol": "BTC/USD:BTC", "side": "buy", "info": {"clOrdID": "a"}},
        {"id": "m1", "order": "sell-order", "amount": 100, "price": 50_000.0,
         "symbol": "BTC/USD:BTC", "side": "sell", "info": {"clOrdID": "b"}}])
    fills = [r for r in batch.reports if isinstance(r, FillReport)]
    assert [(f.client_id, f.exec_id) for f in fills] == [("a", "m1:buy-order"),
                                                          ("b", "m1:sell-order")]


class _Exchange:
    id = "binanceusdm"
    has = {"fetchMyTrades": True}

    async def fetch_my_trades(self, symbol: str, since: int, limit: int) -> list[dict[str, Any]]:
        return [{"id": "t1", "order": "42", "amount": 0.003, "price": 50_000.0,
                 "symbol": symbol, "side": "buy", "timestamp": since + 1},
                {"id": "t2", "order": "43", "amount": 0.003, "price": 50_001.0,
                 "symbol": symbol, "side": "sell", "timestamp": since + 2},
                {"id": "t2", "order": "43", "amount": 0.003, "price": 50_001.0,   # seen twice
                 "symbol": symbol, "side": "sell", "timestamp": since + 2}]

    async def fetch_order(self, order_id: str, symbol: str) -> dict[str, Any]:
        return {"id": order_id, "clientOrderId": f"cl-{order_id}", "symbol": symbol,
                "status": "closed"}


def test_a_trade_row_without_a_client_id_gets_its_orders() -> None:
    calls = _Calls()
    adapter = CcxtAdapter(_Exchange(), calls, venue_facts("binanceusdm"),
                          symbols=["BTC/USDT:USDT"])
    adapter.rows["known"] = {"id": "42", "clientOrderId": "known"}
    fills, bad = asyncio.run(adapter.fills_since(1_000))
    assert bad == [] and all(isinstance(f, FillReport) for f in fills)
    assert [(f.exec_id, f.client_id) for f in fills] == [("t1:42", "known"), ("t2:43", "cl-43")]
    assert calls.endpoints == ["fetch_my_trades", "fetch_order"]   # one lookup, for 43


class _Lookups(_Exchange):
    def __init__(self, failure: Exception) -> None:
        self.failure = failure

    async def fetch_order(self, order_id: str, symbol: str) -> dict[str, Any]:
        raise self.failure


def test_a_failed_lookup_of_a_trades_order_is_asked_again_not_adopted() -> None:
    # Without its client id the fill would be adopted by venue id next to our own order still
    # in doubt, and credited to both once that order's report names its venue id.
    timeout = ccxt.RequestTimeout("no answer")
    timeout.venueguard = SimpleNamespace(kind=Kind.AMBIGUOUS_TIMEOUT,  # type: ignore[attr-defined]
                                         status=None, ambiguous=True)
    adapter = CcxtAdapter(_Lookups(timeout), _Calls(), venue_facts("binanceusdm"),
                          symbols=["BTC/USDT:USDT"])
    with pytest.raises(errors.VenueError) as raised:
        asyncio.run(adapter.fills_since(1_000))
    assert raised.value.__cause__ is timeout


def test_a_trades_order_the_venue_does_not_know_leaves_the_fill_to_adoption() -> None:
    gone = _failed(ccxt.OrderNotFound, Kind.ORDER_REJECTED)
    adapter = CcxtAdapter(_Lookups(gone), _Calls(), venue_facts("binanceusdm"),
                          symbols=["BTC/USDT:USDT"])
    fills, bad = asyncio.run(adapter.fills_since(1_000))
    assert bad == [] and [(f.exec_id, f.client_id) for f in fills] == [("t1:42", None),
                                                                         ("t2:43", None)]


class _Lists:
    """A venue without ``fetch_orders``: open and closed lists, the closed one only if ``has``."""

    id = "somevenue"

    def __init__(self, closed: bool) -> None:
        self.has = {"fetchOpenOrders": True, "fetchClosedOrders": closed}

    async def fetch_open_orders(self, symbol: str, since: int | None,
                                limit: int) -> list[dict[str, Any]]:
        return [{"id": "1", "clientOrderId": "a", "symbol": symbol, "status": "open"}]

    async def fetch_closed_orders(self, symbol: str, since: int | None,
                                  limit: int) -> list[dict[str, Any]]:
        return [{"id": "2", "clientOrderId": "b", "symbol": symbol, "status": "closed"}]


@pytest.mark.parametrize("closed", [True, False])
def test_history_without_fetch_orders_reads_the_open_and_closed_lists(closed: bool) -> None:
    calls = _Calls()
    adapter = CcxtAdapter(_Lists(closed), calls, venue_facts("bitmex"), symbols=["X/Y"])
    reports, complete = asyncio.run(adapter.order_history(None, 1_000))
    assert [r.client_id for r in reports] == (["a", "b"] if closed else ["a"])
    assert complete is closed                  # a list it cannot read leaves the history partial
    assert calls.endpoints == ["fetch_open_orders", "fetch_closed_orders"][:1 + closed]
