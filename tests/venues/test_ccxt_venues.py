"""Venue knowledge for the ccxt bridge: error bodies, rule overrides, client id parameters,
and ccxt structures as neutral reports."""

from __future__ import annotations

import inspect
import re

import ccxt.async_support as ccxt_async
import pytest

from venueguard.core.kinds import Kind, Transport
from venueguard.core.reports import OrderStatus
from venueguard.venues.ccxt.bodies import neutral_body, venue_error
from venueguard.venues.ccxt.classify import Reply, classify_call, transport_of, venue_facts
from venueguard.venues.ccxt.reports import client_id_of, fill_report, order_report


@pytest.mark.parametrize(("body", "expected"), [
    ({"error": {"message": "Invalid API Key.", "name": "HTTPError"}},
     ("HTTPError", "Invalid API Key.")),
    ({"error": ["EAPI:Invalid nonce", "EGeneral:Internal error"], "result": {}},
     ("EAPI:Invalid nonce", "EAPI:Invalid nonce; EGeneral:Internal error")),
    ({"error": [], "result": {"unixtime": 1}}, (None, None)),
    ({"retCode": 0, "retMsg": "OK", "result": {}}, (None, None)),
    ({"retCode": 10006, "retMsg": "Too many visits!"}, ("10006", "Too many visits!")),
    ({"code": "0", "msg": "", "data": [{"sCode": "0"}]}, (None, None)),
    ({"code": "1", "msg": "failed", "data": [{"sCode": "51008", "sMsg": "Insufficient"}]},
     ("51008", "Insufficient")),
    ({"code": -1021, "msg": "Timestamp outside recvWindow."}, ("-1021", "Timestamp outside "
                                                                "recvWindow.")),
    ({"timestamp": 1, "path": "/fapi/v1/order", "msg": "Unknown error"}, (None, "Unknown error")),
    ({"error": "INSUFFICIENT_FUND", "message": "no money"}, ("INSUFFICIENT_FUND", "no money")),
    ({"success": False, "error_response": {"error": "INSUFFICIENT_FUND", "message": "m"}},
     ("INSUFFICIENT_FUND", "m")),
    ({"symbol": "BTC", "message": "a data field"}, (None, None)),  # data, not an error
    ([{"orderId": 1}, {"code": -4164, "msg": "notional"}], ("-4164", "notional")),
    ("<html><title>502 Bad Gateway</title></html>", (None, None)),
])
def test_venue_error_reads_each_venue_shape(body: object, expected: tuple[object, ...]) -> None:
    assert venue_error(body) == expected


def test_an_html_page_stays_text_for_the_cloudflare_rules() -> None:
    page = "<html><title>Attention Required!</title>Error 1010</html>"
    assert neutral_body(page) == page
    verdict = classify_call(ValueError("x"), Reply(403, {}, page), venue_facts("okx").rules)
    assert verdict.kind is Kind.SOFTWARE_BANNED


def test_user_rules_merge_over_the_venue_overrides() -> None:
    user = '[[patterns]]\nkind = "overloaded"\nname = "-1021"\ntext = ""\n'
    facts = venue_facts("binanceusdm", user, "mine.toml")
    body = '{"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}'
    assert classify_call(ValueError("x"), Reply(400, {}, body), facts.rules).kind \
        is Kind.OVERLOADED
    assert classify_call(ValueError("x"), Reply(400, {}, body),
                         venue_facts("binanceusdm").rules).kind is Kind.NONCE_EXPIRED


@pytest.mark.parametrize("exchange_id", ["bitmex", "binance", "binanceusdm", "bybit", "okx",
                                         "kraken", "coinbase"])
def test_the_client_id_parameter_is_the_one_ccxt_reads(exchange_id: str) -> None:
    # ccxt's own class reads the parameter out of ``params`` (safe_string_2(params, ...))
    facts = venue_facts(exchange_id)
    klass = getattr(ccxt_async, exchange_id)
    source = "".join(inspect.getsource(k) for k in klass.__mro__
                     if k.__module__.startswith("ccxt.async_support.")
                     and "base" not in k.__module__)
    reads = re.compile(r"safe_\w+\(params, [^)]*'" + re.escape(facts.client_id_param) + "'")
    # or the request carries it and ccxt merges params over the request (coinbase)
    merged = (f"'{facts.client_id_param}':" in inspect.getsource(klass.create_order)
              and "extend(request, params)" in inspect.getsource(klass.create_order))
    assert reads.search(source) or merged, facts.client_id_param
    if facts.client_id_query and not facts.client_id_query.startswith("filter:"):
        query = re.compile(r"safe_\w+\(params, [^)]*'" + re.escape(facts.client_id_query) + "'")
        assert query.search(source), facts.client_id_query


def test_transport_failures_are_read_from_the_cause_chain() -> None:
    def raised(cause: BaseException) -> BaseException:
        try:
            try:
                raise cause
            except BaseException as exc:
                raise RuntimeError("ccxt wrapper") from exc
        except RuntimeError as outer:
            return outer

    assert transport_of(raised(ConnectionRefusedError())) == (Transport.CONNECTION_REFUSED,
                                                               False)
    assert transport_of(raised(TimeoutError())) == (Transport.READ_TIMEOUT, True)
    assert transport_of(RuntimeError("no cause")) is None


def test_ccxt_orders_and_trades_become_reports() -> None:
    order = {"id": "42", "clientOrderId": None, "status": "open", "symbol": "BTC/USDT",
             "side": "buy", "amount": 0.3, "filled": 0.1, "remaining": 0.2, "price": 100.0,
             "average": 99.5, "timestamp": 1_700_000_000_000,
             "info": {"orderLinkId": "vgABC1"}}
    report = order_report(order)
    assert (report.client_id, report.venue_id, report.status, report.side) == \
        ("vgABC1", "42", OrderStatus.PARTIALLY_FILLED, "Buy")
    assert (report.qty, report.filled_qty, report.leaves_qty) == (0.3, 0.1, 0.2)
    assert order_report({**order, "status": "closed"}).status is OrderStatus.FILLED
    assert order_report({**order, "status": "expired"}).status is OrderStatus.CANCELED
    assert order_report({**order, "status": None}).status is None
    assert client_id_of({"clientOrderId": "mine"}) == "mine"
    fill = fill_report({"id": "t1", "order": "42", "amount": 0.1, "price": 99.5,
                        "side": "buy", "fee": {"cost": 0.01, "currency": "USDT"},
                        "info": {"clOrdId": "vgABC1"}})
    assert fill is not None and (fill.exec_id, fill.client_id, fill.fee) == ("t1", "vgABC1", 0.01)
    assert fill_report({"id": "t2", "amount": 0, "price": 1.0}) is None
