"""The ``/api/v1`` route handlers. Parameters were decoded and authenticated by the middleware
(``request["params"]``); these functions talk to the engine and apply the order-path faults:

- ``overload_503`` on new orders and amends only (never cancels): the request does not reach the
  engine, as BitMEX's load shedding promises;
- ``timeout_after_accept`` / ``bad_gateway_after_accept`` after the engine accepted the write;
- ``delayed_visibility`` and ``late_fill`` through :class:`~venueguard.sim.effects.OrderEffects`;
- ``cancel_race``: the order fills before the cancel is processed, so the cancel comes back as a
  row with ``error`` (HTTP 200), as it does when a fill wins the race on the venue.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from venueguard.sim.bitmex import params as p
from venueguard.sim.bitmex.complete import complete, complete_rows
from venueguard.sim.bitmex.rest import PARAMS_KEY
from venueguard.sim.control import SERVER_KEY, fires, hold_unanswered
from venueguard.sim.effects import fill_resting
from venueguard.sim.httpserver import json_response
from venueguard.sim.model import SimError
from venueguard.sim.rows import row_matches
from venueguard.venues.bitmex import errors

if TYPE_CHECKING:
    from venueguard.sim.server import SimServer

MAX_COUNT = 1000
_WALLET_ASSETS = [
    {"asset": "XBT", "currency": "XBt", "majorCurrency": "XBT", "name": "Bitcoin",
     "currencyType": "Crypto", "scale": 8, "enabled": True, "isMarginCurrency": True,
     "minDepositAmount": 10000, "minWithdrawalAmount": 1000,
     "maxWithdrawalAmount": 100000000000000,
     "networks": [{"asset": "btc", "tokenAddress": "", "depositEnabled": True,
                   "withdrawalEnabled": True, "withdrawalFee": 20000, "minFee": 20000,
                   "maxFee": 10000000}]},
    {"asset": "USDT", "currency": "USDt", "majorCurrency": "USDT", "name": "Tether",
     "currencyType": "Crypto", "scale": 6, "enabled": True, "isMarginCurrency": True,
     "minDepositAmount": 1000000, "minWithdrawalAmount": 1000000,
     "maxWithdrawalAmount": 10000000000000,
     "networks": [{"asset": "eth", "tokenAddress": "0xdac17f958d2ee523a2206206994597c13d831ec7",
                   "depositEnabled": True, "withdrawalEnabled": True,
                   "withdrawalFee": 5000000, "minFee": 5000000, "maxFee": 100000000}]},
]


def _ctx(request: web.Request) -> tuple[SimServer, dict[str, Any], int]:
    server = request.app[SERVER_KEY]
    now_ms = server.advance_engine()
    server.pump()  # late_fill decides on executions as they are published
    return server, request[PARAMS_KEY], now_ms


def _page(prm: dict[str, Any]) -> tuple[int, int, bool]:
    return (p.opt_int(prm, "count", 100, low=1, high=MAX_COUNT),
            p.opt_int(prm, "start", 0, low=0),
            p.opt_bool(prm, "reverse"))


def _shed(server: SimServer, symbol: object) -> None:
    """Load shedding: raise the 503 when the overload fault fires for this request."""
    server.note_order_request()
    fault = server.active_fault("overload_503")
    if fault is None:
        return
    if server.overload_decision(fault, symbol):
        server.fault_hits["overload_503"] += 1
        raise SimError(503, errors.OVERLOADED, errors.NAME_HTTP)


async def _after_accept(server: SimServer, request: web.Request,
                        result: object) -> web.StreamResponse:
    """The response to an accepted write, unless an after-accept fault swallows it."""
    fault = fires(server, "timeout_after_accept")
    if fault is not None:
        return await hold_unanswered(request, fault)
    if fires(server, "bad_gateway_after_accept") is not None:
        return web.Response(status=502, text=errors.BAD_GATEWAY_HTML, content_type="text/html")
    return json_response(result)


async def post_order(request: web.Request) -> web.StreamResponse:
    server, prm, now_ms = _ctx(request)
    p.required(prm, "symbol")
    _shed(server, prm.get("symbol"))
    cl_ord_id = prm.get("clOrdID")
    if isinstance(cl_ord_id, str) and cl_ord_id:
        server.clordid_attempts[cl_ord_id] += 1
    row = server.engine.place_order(prm, now_ms)
    order_id = row.get("orderID")
    if isinstance(order_id, str):
        server.order_effects.on_order_accepted(order_id, now_ms)
    return await _after_accept(server, request, complete("Order", row))


async def put_order(request: web.Request) -> web.StreamResponse:
    server, prm, now_ms = _ctx(request)
    _shed(server, prm.get("symbol"))
    row = server.engine.amend_order(prm, now_ms)
    return await _after_accept(server, request, complete("Order", row))


async def delete_order(request: web.Request) -> web.StreamResponse:
    server, prm, now_ms = _ctx(request)
    server.note_order_request()
    order_ids = p.str_list(prm, "orderID")
    cl_ord_ids = p.str_list(prm, "clOrdID")
    if not order_ids and not cl_ord_ids:
        raise p.bad("orderID or clOrdID must be sent.")
    text = p.opt_str(prm, "text")
    fault = server.active_fault("cancel_race")
    if fault is not None and fault.roll():
        filled = fill_resting(server.engine, order_ids, cl_ord_ids, now_ms)
        if filled:
            server.fault_hits["cancel_race"] += 1
    rows = server.engine.cancel_orders(order_ids, cl_ord_ids, text, now_ms)
    return await _after_accept(server, request, complete_rows("Order", rows))


async def delete_order_all(request: web.Request) -> web.StreamResponse:
    server, prm, now_ms = _ctx(request)
    server.note_order_request()
    rows = server.engine.cancel_all(p.opt_str(prm, "symbol"), p.opt_filter(prm),
                                    p.opt_str(prm, "text"), now_ms)
    return await _after_accept(server, request, complete_rows("Order", rows))


async def cancel_all_after(request: web.Request) -> web.StreamResponse:
    server, prm, now_ms = _ctx(request)
    p.required(prm, "timeout")
    timeout_ms = p.opt_int(prm, "timeout", 0, low=0)
    return json_response(server.engine.cancel_all_after(timeout_ms, now_ms))


async def get_order(request: web.Request) -> web.StreamResponse:
    server, prm, now_ms = _ctx(request)
    count, start, reverse = _page(prm)
    rows = server.engine.get_orders(symbol=p.opt_str(prm, "symbol"), filter=p.opt_filter(prm),
                                    count=count, start=start, reverse=reverse,
                                    since_ms=p.opt_time_ms(prm, "startTime"),
                                    until_ms=p.opt_time_ms(prm, "endTime"))
    return json_response(complete_rows("Order", server.order_effects.visible_orders(rows, now_ms)))


async def get_position(request: web.Request) -> web.StreamResponse:
    server, prm, _ = _ctx(request)
    flt = p.opt_filter(prm)
    count = p.opt_int(prm, "count", 100, low=1, high=MAX_COUNT)
    rows = [server.position_view(r) for r in server.engine.get_positions()
            if row_matches(r, flt)]
    return json_response(complete_rows("Position", rows[:count]))


async def trade_history(request: web.Request) -> web.StreamResponse:
    server, prm, now_ms = _ctx(request)
    count, start, reverse = _page(prm)
    rows = server.engine.get_executions(symbol=p.opt_str(prm, "symbol"),
                                        filter=p.opt_filter(prm), count=count, start=start,
                                        reverse=reverse,
                                        since_ms=p.opt_time_ms(prm, "startTime"),
                                        until_ms=p.opt_time_ms(prm, "endTime"))
    return json_response(complete_rows(
        "Execution", server.order_effects.visible_executions(rows, now_ms)))


async def order_book(request: web.Request) -> web.StreamResponse:
    server, prm, _ = _ctx(request)
    symbol = p.required(prm, "symbol")
    if not isinstance(symbol, str):
        raise p.bad("Invalid symbol")
    depth = p.opt_int(prm, "depth", 25, low=0, high=10_000)
    return json_response(complete_rows("OrderBookL2", server.engine.get_book_l2(symbol, depth)))


async def _instruments(request: web.Request, active_only: bool) -> web.StreamResponse:
    server, prm, _ = _ctx(request)
    symbol = p.opt_str(prm, "symbol")
    flt = p.opt_filter(prm)
    count, start, reverse = _page(prm)
    rows = [r for r in server.engine.get_instruments(active_only=active_only)
            if (symbol is None or r.get("symbol") == symbol) and row_matches(r, flt)]
    if reverse:
        rows.reverse()
    return json_response(complete_rows("Instrument", rows[start:start + count]))


async def instrument(request: web.Request) -> web.StreamResponse:
    return await _instruments(request, False)


async def instrument_active(request: web.Request) -> web.StreamResponse:
    return await _instruments(request, True)


async def wallet_assets(request: web.Request) -> web.StreamResponse:
    return json_response(_WALLET_ASSETS)
