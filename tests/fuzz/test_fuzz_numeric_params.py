"""Fuzz: hostile numbers in every query parameter of every REST route of both simulator dialects.

Unicode digits (``²``, ``⑤``, Arabic-Indic and full-width fives), signs, exponents, whitespace,
``_`` separators, NaN and infinities, huge values and repeated parameters, signed and unsigned.
Whatever comes: no 5xx, no traceback in the log, and every refusal in the dialect's own shape
(BitMEX ``{"error": {"message", "name"}}``, Binance ``{"code", "msg"}``). The routes are read from
the running server's router, so a route added later is fuzzed too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest
from fuzzcfg import FUZZ
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from venueguard.sim.binance import signing as binance_signing
from venueguard.sim.binance.limits import Limits
from venueguard.sim.binance.testing import BinanceHandle, running_binance_sim
from venueguard.sim.server import SimConfig, SimServer
from venueguard.venues.bitmex import signing as bitmex_signing

pytestmark = pytest.mark.system

# The numeric parameters each dialect reads (plus a few others, to reach past the checks a route
# makes first); a valid symbol is added to most requests for the same reason.
BITMEX_NAMES = ["count", "start", "depth", "timeout", "orderQty", "price", "leverage",
                "leavesQty", "stopPx", "symbol", "reverse"]
BINANCE_NAMES = ["limit", "recvWindow", "timestamp", "orderId", "quantity", "price", "fromId",
                 "startTime", "endTime", "symbol"]
ARABIC_FIVE, WIDE_FIVE = "\u0665", "\uff15"  # int() takes both as 5
UNICODE_DIGITS = st.characters(categories=["Nd", "No", "Nl"], min_codepoint=0x80)
HOSTILE = st.one_of(
    st.sampled_from(["²", "⑤", ARABIC_FIVE, WIDE_FIVE, "1²", ARABIC_FIVE + "0", "²", "⑤",
                     ARABIC_FIVE, "1_000", " 5", "5 ", "\t5", "+5", "-5",
                     "--5", "1e3", "1E-3", "1e999", "-1e999", "nan", "NaN", "inf", "-Infinity",
                     "0x10", "0", "00", "5.0", ".5", "5.", "1" * 25, "9" * 400, "-" + "9" * 40,
                     "", "BTCUSDT", "XBTUSD", "true"]),
    st.lists(UNICODE_DIGITS, min_size=1, max_size=4).map("".join),
    st.builds(lambda sign, digits, exp: f"{sign}{digits}{exp}",
              st.sampled_from(["", "+", "-", " ", "\u00a0"]),
              st.integers(0, 10**30).map(str),
              st.sampled_from(["", "e5", "e-5", "E308", "e309", ".5", "\u2009"])),
    st.text(max_size=12))


@pytest.fixture
async def sim() -> AsyncIterator[BinanceHandle]:
    async with running_binance_sim(rest_per_min=10**9, rest_unauth_per_min=10**9,
                                   order_per_s=10**9) as handle:
        handle.venue.configure(limits=Limits(weight_per_min=10**9, orders_per_10s=10**9,
                                             orders_per_min=10**9))
        yield handle


def _routes(prefix: str) -> list[tuple[str, str]]:
    """Every (verb, path) the simulator serves under ``prefix``, read from its router."""
    server = SimServer(SimConfig(dialect="binance-usdm", symbols=("BTCUSDT",), scenario=None))
    out: set[tuple[str, str]] = set()
    for route in server.build_app().router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or (info.get("formatter") or "")
        if not path.startswith(prefix) or route.method in ("HEAD", "OPTIONS"):
            continue
        path = path.replace("{tail}", "v1/nothing")
        out.add(("GET" if route.method == "*" else route.method, path))
    return sorted(out)


BITMEX_ROUTES = _routes("/api/v1")
BINANCE_ROUTES = [r for r in _routes("/fapi") if not r[1].endswith(("/ws", "/stream"))]


def _query(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in pairs)


class _Tracebacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def tracebacks() -> AsyncIterator[_Tracebacks]:
    handler = _Tracebacks()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler  # type: ignore[misc]
    finally:
        root.removeHandler(handler)


def _pairs(names: list[str], symbol: str) -> st.SearchStrategy[list[tuple[str, str]]]:
    hostile = st.lists(st.tuples(st.sampled_from(names), HOSTILE), min_size=1, max_size=4)
    return st.tuples(st.booleans(), hostile).map(
        lambda t: [("symbol", symbol), *t[1]] if t[0] else t[1])


PAIRS_BITMEX = _pairs(BITMEX_NAMES, "BTCUSDT")
PAIRS_BINANCE = _pairs(BINANCE_NAMES, "BTCUSDT")


def test_every_route_of_both_dialects_is_fuzzed() -> None:
    assert len(BITMEX_ROUTES) >= 15 and len(BINANCE_ROUTES) >= 20
    assert ("GET", "/fapi/v1/depth") in BINANCE_ROUTES
    assert ("GET", "/api/v1/orderBook/L2") in BITMEX_ROUTES


@pytest.mark.parametrize("route", BITMEX_ROUTES, ids=" ".join)
@FUZZ
@given(pairs=PAIRS_BITMEX, sign=st.booleans(), repeat=st.booleans())
async def test_bitmex_routes_refuse_hostile_numbers_in_bitmex_shape(
        sim: BinanceHandle, tracebacks: _Tracebacks, route: tuple[str, str],
        pairs: list[tuple[str, str]], sign: bool, repeat: bool) -> None:
    verb, path = route
    if repeat and pairs:
        pairs = [*pairs, pairs[0]]
    query = _query(pairs)
    path_qs = path + (f"?{query}" if query else "")
    headers: dict[str, str] = {}
    if sign:
        headers = bitmex_signing.auth_headers(sim.server.config.api_key,
                                              sim.server.config.api_secret, verb, path_qs,
                                              int(time.time()) + 30, b"")
    async with sim.session.request(verb, URL(sim.base_url + path_qs, encoded=True),
                                   headers=headers) as resp:
        status = resp.status
        body: Any = await resp.json(content_type=None)
    assert status < 500, (verb, path_qs, status, body)
    if status >= 400:
        assert isinstance(body, dict) and set(body) == {"error"}, body
        assert set(body["error"]) == {"message", "name"} and body["error"]["message"], body
    assert not tracebacks.records, [r.getMessage() for r in tracebacks.records]


@pytest.mark.parametrize("route", BINANCE_ROUTES, ids=" ".join)
@FUZZ
@given(pairs=PAIRS_BINANCE, sign=st.booleans(), repeat=st.booleans())
async def test_binance_routes_refuse_hostile_numbers_in_binance_shape(
        sim: BinanceHandle, tracebacks: _Tracebacks, route: tuple[str, str],
        pairs: list[tuple[str, str]], sign: bool, repeat: bool) -> None:
    verb, path = route
    if repeat and pairs:
        pairs = [*pairs, pairs[0]]
    query = _query(pairs)
    if sign:  # a valid signature over whatever was sent, hostile timestamp included
        if not any(name == "timestamp" for name, _ in pairs):
            stamp = f"timestamp={int(time.time() * 1000)}"
            query = f"{query}&{stamp}" if query else stamp
        query += "&signature=" + binance_signing.sign(sim.api_secret, query)
    status, _, body = await sim.call(verb, path, raw=query)
    assert status < 500, (verb, path, query, status, body)
    if status >= 400:
        assert isinstance(body, dict) and set(body) == {"code", "msg"}, body
        assert isinstance(body["code"], int) and body["code"] < 0 and body["msg"], body
    assert not tracebacks.records, [r.getMessage() for r in tracebacks.records]


@pytest.mark.parametrize(("path", "code"), [
    ("/fapi/v1/depth?symbol=BTCUSDT&limit=%C2%B2", -4021),     # superscript two
    ("/fapi/v1/depth?symbol=BTCUSDT&limit=%D9%A5", -4021),     # Arabic-Indic five: not 5
    ("/fapi/v1/depth?symbol=BTCUSDT&limit=%EF%BC%95", -4021),  # full-width five
    ("/fapi/v1/openOrders?timestamp=1&recvWindow=%E2%91%A4", -1100),  # circled five
])
async def test_the_red_team_requests_are_400s(sim: BinanceHandle, path: str, code: int) -> None:
    async with sim.session.get(URL(sim.base_url + path, encoded=True),
                               headers={"X-MBX-APIKEY": sim.api_key}) as resp:
        body = await resp.json()
        assert resp.status == 400 and body["code"] == code, (path, body)


async def test_a_validly_signed_unicode_timestamp_is_a_400(sim: BinanceHandle) -> None:
    query = "symbol=BTCUSDT&timestamp=%C2%B2"
    query += "&signature=" + binance_signing.sign(sim.api_secret, query)
    status, _, body = await sim.call("GET", "/fapi/v1/openOrders", raw=query)
    assert status == 400 and body["code"] == -1100 and "timestamp" in body["msg"], body


async def test_bitmex_numbers_take_ascii_digits_only(sim: BinanceHandle) -> None:
    for value, ok in (("5", True), ("5.0", True), (ARABIC_FIVE, False), (" 5", False),
                      ("1_0", False), ("²", False)):
        status, _, body = await sim.request("GET", "/orderBook/L2",
                                            query=f"symbol=BTCUSDT&depth={quote(value)}",
                                            signed=False)
        if ok:
            assert status == 200 and isinstance(body, list), (value, body)
        else:
            assert status == 400 and body["error"]["message"] == "Invalid depth", (value, body)
