"""What the proxy knows about each venue: which requests write orders, what its refusals look
like, and where its stream messages carry timestamps and sequence numbers.

Every fault answer is the one the simulator gives in the same dialect (the simulator's edge pages,
error bodies and texts are imported from it, not copied), so a client sees the same effect whether
a fault is posted to the proxy or to the simulator:

============================  ===============================  ===============================
kind                          bitmex                           binance-usdm
============================  ===============================  ===============================
``overload_503``              503 ``{"error": {...}}``         503 ``{"timestamp","path","msg"}``
                              (order not forwarded)            (forwarded or not: a seeded coin)
``rate_limit_429``            429 RateLimitError, Retry-After  429 -1003, Retry-After
``forbidden_403`` ...         Cloudflare / nginx HTML pages    CloudFront HTML pages
``timeout_after_accept``      forwarded, answer held           forwarded, 408 -1007
``bad_gateway_after_accept``  forwarded, 502 HTML              forwarded, 502 HTML
============================  ===============================  ===============================

``generic`` knows no venue: order writes are POST, PUT and PATCH requests (never DELETE, so a
cancel is never shed), refusals are plain HTML pages, and only the stream faults that need no
knowledge of the messages are offered (no timestamp shifts, no gaps).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

import orjson
from aiohttp import web

from venueguard.core.rules import RuleSet, default_rules
from venueguard.sim import edge
from venueguard.sim.binance import errors as binance_errors
from venueguard.sim.binance.conn import shift_event_times
from venueguard.sim.binance.http import edge_fault as binance_edge_fault
from venueguard.sim.binance.limits import Limits
from venueguard.sim.binance.order_routes import BAD_GATEWAY_HTML as BINANCE_BAD_GATEWAY_HTML
from venueguard.sim.bitmex.conn import shift_times
from venueguard.sim.faults import KINDS, KindSpec
from venueguard.venues.bitmex import errors as bitmex_errors
from venueguard.venues.bitmex.rules import bitmex_rules

__all__ = ["DIALECTS", "Dialect", "Frame"]

#: Fault kinds that need no knowledge of the venue's messages.
GENERIC_KINDS = ("overload_503", "rate_limit_429", "forbidden_403", "cloudflare_522",
                 "cloudflare_1010", "cloudflare_1006", "latency", "timeout_after_accept",
                 "bad_gateway_after_accept", "ws_stall", "ws_half_open", "ws_drop", "ws_reorder",
                 "ws_duplicate")
#: Kinds that need to know where a message's timestamps and sequence numbers are.
DIALECT_KINDS = ("ws_stale_timestamps", "ws_future_timestamps", "ws_gap")
_BITMEX_PRIVATE = frozenset({"order", "execution", "position", "margin", "wallet",
                             "transact", "affiliate", "privateNotifications"})
_PINGS = frozenset({"ping", "pong"})


class Frame(Enum):
    """What a stream message is to the faults."""

    CONTROL = "control"  # pongs, acks, errors: only a half-open path loses them
    DATA = "data"  # data a stall stops; reorder and duplicate apply
    DELTA = "delta"  # data that a gap drops (BitMEX public deltas, Binance depth updates)
    SNAPSHOT = "snapshot"  # data a stall stops, never reordered, duplicated or dropped by a gap


class Dialect(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def kinds(self) -> Mapping[str, KindSpec]: ...

    @property
    def key_headers(self) -> tuple[str, ...]:
        """The headers that carry the account's API key (the account is a hash of it)."""
        ...

    def rules(self) -> RuleSet: ...

    def sheds(self, method: str, path: str) -> bool:
        """Whether ``overload_503`` applies to this request (new orders and amends)."""
        ...

    def writes(self, method: str, path: str) -> bool:
        """Whether the after-accept faults apply to this request (order writes)."""
        ...

    def overloaded(self, path: str, wall_ms: int) -> web.Response: ...

    @property
    def overload_may_forward(self) -> bool:
        """Binance's overload 503 means "execution status unknown": the order may have gone."""
        ...

    def rate_limited(self, retry_after_s: int) -> web.Response: ...

    def edge(self, source: edge.FaultSource) -> web.Response | None: ...

    def timeout_answer(self) -> web.Response | None:
        """The answer to an accepted write under ``timeout_after_accept`` (None: hold)."""
        ...

    def bad_gateway(self) -> web.Response: ...

    def frame(self, text: str) -> tuple[Frame, Any]:
        """What a text message is, and its decoded JSON (None when not decoded)."""
        ...

    def shift(self, decoded: Any, shift_ms: int) -> bytes | None:
        """The message with its timestamps moved (None: nothing to move)."""
        ...

    @property
    def quote_marker(self) -> str | None:
        """Text found in every top-of-book message (None: the dialect knows none)."""
        ...

    def quotes(self, decoded: Any) -> list[tuple[str, float, float]]:
        """``(symbol, best bid, best ask)`` of a decoded top-of-book message ([] otherwise)."""
        ...


def _price(value: object) -> float | None:
    """A positive finite price from a JSON number or a numeric string (Binance)."""
    try:
        price = float(value) if isinstance(value, int | float | str) else math.nan
    except ValueError:
        return None
    return price if math.isfinite(price) and price > 0 else None


def _quote(symbol: object, bid: object, ask: object) -> list[tuple[str, float, float]]:
    b, a = _price(bid), _price(ask)
    if not isinstance(symbol, str) or b is None or a is None or a < b:
        return []
    return [(symbol, b, a)]


def _json(data: object, status: int, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json",
                        headers=headers)


def _kinds(names: tuple[str, ...]) -> Mapping[str, KindSpec]:
    return {name: KINDS[name] for name in names}


@dataclass(frozen=True, slots=True)
class Bitmex:
    name: str = "bitmex"
    prefix: str = "/api/v1"
    key_headers: tuple[str, ...] = ("api-key",)

    @property
    def kinds(self) -> Mapping[str, KindSpec]:
        return _kinds(GENERIC_KINDS + DIALECT_KINDS)

    def rules(self) -> RuleSet:
        return bitmex_rules()

    def sheds(self, method: str, path: str) -> bool:
        return method in ("POST", "PUT") and path == f"{self.prefix}/order"

    def writes(self, method: str, path: str) -> bool:
        return self.sheds(method, path)

    def overloaded(self, path: str, wall_ms: int) -> web.Response:
        return _json(bitmex_errors.rest_error_body(bitmex_errors.OVERLOADED,
                                                   bitmex_errors.NAME_HTTP), 503)

    @property
    def overload_may_forward(self) -> bool:
        return False

    def rate_limited(self, retry_after_s: int) -> web.Response:
        body = bitmex_errors.rest_error_body(bitmex_errors.rate_limit_text(max(retry_after_s, 1)),
                                             bitmex_errors.NAME_RATE_LIMIT)
        return _json(body, 429, {"Retry-After": str(retry_after_s),
                                 "x-ratelimit-remaining": "0"})

    def edge(self, source: edge.FaultSource) -> web.Response | None:
        return edge.edge_fault(source)

    def timeout_answer(self) -> web.Response | None:
        return None

    def bad_gateway(self) -> web.Response:
        return web.Response(status=502, text=bitmex_errors.BAD_GATEWAY_HTML,
                            content_type="text/html")

    def frame(self, text: str) -> tuple[Frame, Any]:
        if text in _PINGS:
            return Frame.CONTROL, None
        decoded = _loads(text)
        if not isinstance(decoded, dict) or "table" not in decoded:
            return Frame.CONTROL, decoded
        if decoded.get("action") == "partial":
            return Frame.SNAPSHOT, decoded
        if decoded.get("table") in _BITMEX_PRIVATE:
            return Frame.DATA, decoded
        return Frame.DELTA, decoded

    def shift(self, decoded: Any, shift_ms: int) -> bytes | None:
        if not isinstance(decoded, dict):
            return None
        return orjson.dumps(shift_times(decoded, shift_ms))

    @property
    def quote_marker(self) -> str | None:
        return '"table":"quote"'

    def quotes(self, decoded: Any) -> list[tuple[str, float, float]]:
        if not isinstance(decoded, dict) or decoded.get("table") != "quote":
            return []
        rows = decoded.get("data")
        if not isinstance(rows, list):
            return []
        last = {row.get("symbol"): row for row in rows if isinstance(row, dict)}
        return [q for row in last.values()
                for q in _quote(row.get("symbol"), row.get("bidPrice"), row.get("askPrice"))]


@dataclass(frozen=True, slots=True)
class BinanceUsdm:
    name: str = "binance-usdm"
    key_headers: tuple[str, ...] = ("X-MBX-APIKEY",)

    @property
    def kinds(self) -> Mapping[str, KindSpec]:
        return _kinds(GENERIC_KINDS + DIALECT_KINDS)

    def rules(self) -> RuleSet:
        from venueguard.venues.ccxt.classify import venue_facts

        return venue_facts("binanceusdm").rules

    def sheds(self, method: str, path: str) -> bool:
        return method == "POST" and path.startswith("/fapi/") and path.endswith("/order")

    def writes(self, method: str, path: str) -> bool:
        return method in ("POST", "PUT") and path.startswith("/fapi/") and path.endswith("/order")

    def overloaded(self, path: str, wall_ms: int) -> web.Response:
        return _json(binance_errors.unknown_503_body(path, wall_ms), 503)

    @property
    def overload_may_forward(self) -> bool:
        return True

    def rate_limited(self, retry_after_s: int) -> web.Response:
        exc = binance_errors.too_many(Limits().weight_per_min)  # the venue's documented limit
        return _json(exc.body(), 429, {"Retry-After": str(max(1, retry_after_s))})

    def edge(self, source: edge.FaultSource) -> web.Response | None:
        return binance_edge_fault(source)

    def timeout_answer(self) -> web.Response | None:
        return _json({"code": -1007, "msg": binance_errors.TIMEOUT_TEXT}, 408)

    def bad_gateway(self) -> web.Response:
        return web.Response(status=502, text=BINANCE_BAD_GATEWAY_HTML, content_type="text/html")

    def frame(self, text: str) -> tuple[Frame, Any]:
        if text in _PINGS:
            return Frame.CONTROL, None
        decoded = _loads(text)
        if not isinstance(decoded, dict):
            return Frame.CONTROL, decoded
        event = decoded.get("data") if "stream" in decoded else decoded
        if not isinstance(event, dict) or "e" not in event:
            return Frame.CONTROL, decoded
        return (Frame.DELTA if event.get("e") == "depthUpdate" else Frame.DATA), decoded

    def shift(self, decoded: Any, shift_ms: int) -> bytes | None:
        if not isinstance(decoded, dict):
            return None
        if "stream" in decoded and isinstance(decoded.get("data"), dict):
            return orjson.dumps({**decoded, "data": shift_event_times(decoded["data"], shift_ms)})
        return orjson.dumps(shift_event_times(decoded, shift_ms))

    @property
    def quote_marker(self) -> str | None:
        return '"e":"bookTicker"'

    def quotes(self, decoded: Any) -> list[tuple[str, float, float]]:
        if not isinstance(decoded, dict):
            return []
        event = decoded.get("data") if "stream" in decoded else decoded
        if not isinstance(event, dict) or event.get("e") != "bookTicker":
            return []
        return _quote(event.get("s"), event.get("b"), event.get("a"))


_GENERIC_PAGES = {
    "forbidden_403": (403, "403 Forbidden"),
    "cloudflare_522": (522, "522 Connection timed out"),
    "cloudflare_1010": (403, "403 Forbidden: error code 1010"),
    "cloudflare_1006": (403, "403 Forbidden: error code 1006"),
}


def _page(title: str) -> str:
    return (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
            f"<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n")


@dataclass(frozen=True, slots=True)
class Generic:
    name: str = "generic"
    key_headers: tuple[str, ...] = ("api-key", "X-MBX-APIKEY")

    @property
    def kinds(self) -> Mapping[str, KindSpec]:
        return _kinds(GENERIC_KINDS)

    def rules(self) -> RuleSet:
        return default_rules()

    def sheds(self, method: str, path: str) -> bool:
        return method in ("POST", "PUT", "PATCH")

    def writes(self, method: str, path: str) -> bool:
        return self.sheds(method, path)

    def overloaded(self, path: str, wall_ms: int) -> web.Response:
        return web.Response(status=503, text=_page("503 Service Temporarily Unavailable"),
                            content_type="text/html")

    @property
    def overload_may_forward(self) -> bool:
        return False

    def rate_limited(self, retry_after_s: int) -> web.Response:
        return web.Response(status=429, text=_page("429 Too Many Requests"),
                            content_type="text/html",
                            headers={"Retry-After": str(retry_after_s)})

    def edge(self, source: edge.FaultSource) -> web.Response | None:
        for kind, (status, title) in _GENERIC_PAGES.items():
            fault = source.active_fault(kind)
            if fault is not None and fault.roll():
                source.fault_hits[kind] += 1
                return web.Response(status=status, text=_page(title), content_type="text/html")
        return None

    def timeout_answer(self) -> web.Response | None:
        return None

    def bad_gateway(self) -> web.Response:
        return web.Response(status=502, text=bitmex_errors.BAD_GATEWAY_HTML,
                            content_type="text/html")

    def frame(self, text: str) -> tuple[Frame, Any]:
        return (Frame.CONTROL if text.lower() in _PINGS else Frame.DATA), None

    def shift(self, decoded: Any, shift_ms: int) -> bytes | None:
        return None

    @property
    def quote_marker(self) -> str | None:
        return None

    def quotes(self, decoded: Any) -> list[tuple[str, float, float]]:
        return []


def _loads(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


DIALECTS: Mapping[str, Dialect] = {d.name: d for d in (Bitmex(), BinanceUsdm(), Generic())}
