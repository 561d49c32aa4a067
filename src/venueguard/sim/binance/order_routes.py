"""Signed order routes: create, query, cancel, open/all orders, user trades.

Validation happens before the engine sees the order, in the venue's order of checks, with its
codes: symbol (-1121), side (-1117), type (-1116), positionSide (-4061), quantity (-1102 missing,
-1100 malformed, -4003 not positive, -1111 precision, -1013 "Invalid quantity.", -4005 too
large), price (-4013/-4016 range, -4014 tick), client order id (-4015 malformed, -4116 reused),
notional (-4164), reduce-only (-2022), margin (-2019).

Order-path faults in their Binance form:
- ``overload_503``: HTTP 503 "Unknown error, please check your request or try again later."
  (no code), execution status unknown: the order reaches the engine or not, a seeded coin flip;
- ``timeout_after_accept``: the order reaches the engine, the answer is HTTP 408 -1007;
- ``bad_gateway_after_accept``: the order reaches the engine, the answer is a 502 HTML page;
- ``cancel_race``: the order fills before the cancel, which then gets -2011;
- ``delayed_visibility`` / ``late_fill``: queries do not show the order / the trade yet.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from venueguard.numbers import ascii_digits
from venueguard.sim.binance import errors, history
from venueguard.sim.binance.errors import BinanceError
from venueguard.sim.binance.http import EXTRA_HEADERS, Call, endpoint
from venueguard.sim.binance.market_routes import symbol_of
from venueguard.sim.binance.rows import order_row, trade_row
from venueguard.sim.binance.symbols import BinanceSymbol
from venueguard.sim.control import fires
from venueguard.sim.effects import fill_resting
from venueguard.sim.model import SimError
from venueguard.venues.bitmex import errors as bitmex_errors

CLIENT_ID_RE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
_TIF = {"GTC": "GoodTillCancel", "IOC": "ImmediateOrCancel", "FOK": "FillOrKill",
        "GTX": "GoodTillCancel"}
_KNOWN_TYPES = ("LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
                "TRAILING_STOP_MARKET")
BAD_GATEWAY_HTML = ("<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
                    "<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n")


def _decimal(call: Call, name: str) -> Decimal | None:
    raw = call.params.get(name)
    if raw is None or raw == "":
        return None
    if len(raw) > 41 or not re.fullmatch(r"[0-9]{1,20}(\.[0-9]{1,20})?|-[0-9.]{1,39}", raw):
        raise errors.bad(-1100, f"Illegal characters found in parameter '{name}'; legal range "
                                "is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.")
    try:
        return Decimal(raw)
    except InvalidOperation:
        raise errors.invalid_value(name) from None


def _bool(call: Call, name: str) -> bool:
    raw = call.params.get(name, "false").lower()
    if raw not in ("true", "false"):
        raise errors.bad(-1102, f"Parameter '{name}' was not sent, was empty/null, or "
                                "malformed.")
    return raw == "true"


def _quantity(call: Call, sym: BinanceSymbol) -> int:
    qty = _decimal(call, "quantity")
    if qty is None:
        raise errors.mandatory("quantity")
    if qty <= 0:
        raise errors.bad(-4003, "Quantity less than or equal to zero.")
    if -int(qty.normalize().as_tuple().exponent) > sym.qty_decimals:
        raise errors.bad(-1111, "Precision is over the maximum defined for this asset.")
    contracts = sym.contracts(qty)
    if contracts is None or contracts % sym.spec.lot_size:
        raise errors.bad(-1013, "Invalid quantity.")
    if contracts > sym.spec.max_order_qty:
        raise errors.bad(-4005, "Quantity greater than max quantity.")
    return contracts


def _price(call: Call, sym: BinanceSymbol) -> float:
    price = _decimal(call, "price")
    if price is None:
        raise errors.mandatory("price")
    if price < sym.tick:
        raise errors.bad(-4013, "Price less than min price.")
    if price > Decimal(repr(sym.spec.max_price)):
        raise errors.bad(-4016, "Price greater than max price.")
    if price % sym.tick:
        raise errors.bad(-4014, "Price not increased by tick size.")
    return float(price)


def _client_id(call: Call) -> str:
    venue = call.venue
    cid = call.params.get("newClientOrderId")
    if cid is None or cid == "":
        return venue.new_client_id()
    if not CLIENT_ID_RE.match(cid):
        raise errors.bad(-4015, errors.BAD_CLIENT_ID)
    if cid in venue.server.engine.account.by_cl:
        raise errors.bad(-4116, errors.DUPLICATE_CLIENT_ID)
    return cid


def _engine_params(call: Call) -> tuple[BinanceSymbol, dict[str, Any], float | None, int]:
    """Validate a new order; returns (symbol, engine parameters, price, contracts)."""
    sym = symbol_of(call)
    assert sym is not None
    side = call.params.get("side")
    if side is None or side == "":
        raise errors.mandatory("side")
    if side not in ("BUY", "SELL"):
        raise errors.bad(-1117, "Invalid side.")
    ord_type = call.params.get("type")
    if ord_type is None or ord_type == "":
        raise errors.mandatory("type")
    if ord_type not in ("LIMIT", "MARKET"):
        raise errors.bad(-1116, "Invalid orderType." if ord_type not in _KNOWN_TYPES
                         else "Invalid orderType: only LIMIT and MARKET are simulated.")
    if call.params.get("positionSide", "BOTH") != "BOTH":
        raise errors.bad(-4061, "Order's position side does not match user's setting.")
    contracts = _quantity(call, sym)
    reduce_only = _bool(call, "reduceOnly")
    price: float | None = None
    tif = call.params.get("timeInForce")
    if ord_type == "LIMIT":
        if not tif:
            raise errors.mandatory("timeInForce")
        if tif not in _TIF:
            raise errors.bad(-1115, "Invalid timeInForce.")
        price = _price(call, sym)
    elif call.params.get("price"):
        raise errors.bad(-1106, "Parameter 'price' sent when not required.")
    notional = Decimal(sym.qty(contracts)) * Decimal(repr(
        price if price is not None else call.venue.server.engine.markets[sym.name].mid_price()))
    if not reduce_only and notional < sym.min_notional:
        raise errors.min_notional(str(sym.min_notional))
    cid = _client_id(call)
    exec_inst = []
    if tif == "GTX":
        exec_inst.append("ParticipateDoNotInitiate")
    if reduce_only:
        exec_inst.append("ReduceOnly")
    params: dict[str, Any] = {
        "symbol": sym.name, "side": "Buy" if side == "BUY" else "Sell", "orderQty": contracts,
        "ordType": "Limit" if ord_type == "LIMIT" else "Market", "clOrdID": cid,
        "execInst": ",".join(exec_inst)}
    if price is not None:
        params["price"] = price
        params["timeInForce"] = _TIF[str(tif)]
    return sym, params, price, contracts


def _check_account(call: Call, sym: BinanceSymbol, params: dict[str, Any], price: float | None,
                   contracts: int) -> None:
    account = call.venue.server.engine.account
    pos = account.positions.get(sym.name)
    current = pos.qty if pos is not None else 0
    buy = params["side"] == "Buy"
    if "ReduceOnly" in params["execInst"]:
        if current == 0 or (current > 0) == buy:
            raise errors.bad(-2022, "ReduceOnly Order is rejected.")
        return
    needed = call.venue.account.order_margin(sym, contracts, price)
    if needed > call.venue.account.totals().available:
        raise errors.bad(-2019, errors.MARGIN)


@endpoint(0, signed=True)
async def post_order(call: Call) -> Any:
    venue = call.venue
    server = venue.server
    sym, params, price, contracts = _engine_params(call)
    _check_account(call, sym, params, price, contracts)
    call.request[EXTRA_HEADERS] = venue.limiter.count_order(str(call.api_key),
                                                            server.clock.wall_s())
    server.clordid_attempts[params["clOrdID"]] += 1
    overload = venue.overload_fires(sym.name)
    if overload and not venue.coin():
        raise _unknown_503(call)
    try:
        row = server.engine.place_order(params, call.now_ms)
    except SimError as exc:
        if exc.message == bitmex_errors.DUPLICATE_CLORDID:
            raise errors.bad(-4116, errors.DUPLICATE_CLIENT_ID) from None
        raise errors.bad(-1000, errors.UNKNOWN[1]) from None
    order_id = str(row.get("orderID"))
    server.order_effects.on_order_accepted(order_id, call.now_ms)
    server.pump()
    if overload:
        raise _unknown_503(call)
    after = _after_accept(call)
    if after is not None:
        return after
    return order_row(sym, row, venue.order_ids.of(order_id))


def _unknown_503(call: Call) -> BinanceError:
    call.venue.server.fault_hits["overload_503"] += 1
    return BinanceError(503, 0, errors.UNKNOWN_503)


def _after_accept(call: Call) -> web.StreamResponse | None:
    server = call.venue.server
    if fires(server, "timeout_after_accept") is not None:
        raise BinanceError(408, -1007, errors.TIMEOUT_TEXT)
    if fires(server, "bad_gateway_after_accept") is not None:
        return web.Response(status=502, text=BAD_GATEWAY_HTML, content_type="text/html")
    return None


def _find(call: Call, sym: BinanceSymbol, *, visible: bool) -> dict[str, Any] | None:
    """The engine row named by ``orderId`` or ``origClientOrderId`` (None when unknown)."""
    venue = call.venue
    account = venue.server.engine.account
    raw_id = call.params.get("orderId")
    cid = call.params.get("origClientOrderId")
    order = None
    if raw_id:
        if not ascii_digits(raw_id, 19):
            raise errors.illegal_chars("orderId")
        uuid = venue.order_ids.by_int.get(int(raw_id))
        order = account.orders.get(uuid) if uuid is not None else None
    elif cid:
        order = account.by_cl.get(cid)
    else:
        raise errors.bad(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both "
                                "were empty/null!")
    if order is None or order.spec.symbol != sym.name:
        return None
    rows = venue.server.engine.get_orders(symbol=sym.name, filter={"orderID": order.order_id})
    if visible:
        rows = venue.server.order_effects.visible_orders(rows, call.now_ms)
    return rows[0] if rows else None


@endpoint(1, signed=True)
async def get_order(call: Call) -> Any:
    sym = symbol_of(call)
    assert sym is not None
    row = _find(call, sym, visible=True)
    if row is None:
        raise errors.bad(-2013, errors.NO_SUCH_ORDER)
    return order_row(sym, row, call.venue.order_ids.of(str(row["orderID"])))


@endpoint(1, signed=True)
async def delete_order(call: Call) -> Any:
    venue = call.venue
    server = venue.server
    server.note_order_request()
    sym = symbol_of(call)
    assert sym is not None
    row = _find(call, sym, visible=False)
    if row is None or row.get("ordStatus") not in ("New", "PartiallyFilled"):
        raise errors.bad(-2011, errors.UNKNOWN_ORDER)
    order_id = str(row["orderID"])
    fault = server.active_fault("cancel_race")
    if fault is not None and fault.roll() and fill_resting(server.engine, [order_id], [],
                                                           call.now_ms):
        server.fault_hits["cancel_race"] += 1
        server.pump()
        raise errors.bad(-2011, errors.UNKNOWN_ORDER)
    rows = server.engine.cancel_orders([order_id], [], None, call.now_ms)
    server.pump()
    if not rows or "error" in rows[0]:
        raise errors.bad(-2011, errors.UNKNOWN_ORDER)
    return order_row(sym, rows[0], venue.order_ids.of(order_id))


@endpoint(1, signed=True)
async def delete_all_open(call: Call) -> Any:
    sym = symbol_of(call)
    assert sym is not None
    call.venue.server.note_order_request()
    call.venue.server.engine.cancel_all(sym.name, None, None, call.now_ms)
    call.venue.server.pump()
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


def _orders(call: Call, sym: BinanceSymbol | None, *, open_only: bool,
            win: history.Window | None = None) -> list[dict[str, Any]]:
    venue = call.venue
    flt = {"open": True} if open_only else None
    since, until = (win.since_ms, win.until_ms) if win is not None else (None, None)
    rows = venue.server.engine.get_orders(symbol=sym.name if sym else None, filter=flt,
                                          count=1_000_000, since_ms=since, until_ms=until)
    rows = venue.server.order_effects.visible_orders(rows, call.now_ms)
    out = []
    for row in rows:
        s = venue.symbols.get(str(row.get("symbol")))
        if s is not None:
            out.append(order_row(s, row, venue.order_ids.of(str(row["orderID"]))))
    return out


@endpoint(lambda p: 1 if p.get("symbol") else 40, signed=True)
async def open_orders(call: Call) -> Any:
    return _orders(call, symbol_of(call, required=False), open_only=True)


def _limit(call: Call, default: int, high: int) -> int:
    raw = call.params.get("limit", str(default))
    if not ascii_digits(raw, 9):
        raise errors.illegal_chars("limit")
    return max(1, min(high, int(raw)))


@endpoint(5, signed=True)
async def all_orders(call: Call) -> Any:
    """Orders whose last update (``updateTime``) is in the window, from ``orderId`` on when it
    is sent (module :mod:`~venueguard.sim.binance.history`)."""
    sym = symbol_of(call)
    from_id = history.id_param(call.params, "orderId")
    win = history.window(call.params, call.now_ms, anchored=from_id is not None)
    limit = _limit(call, 500, 1000)
    rows = sorted(_orders(call, sym, open_only=False, win=win), key=lambda r: int(r["orderId"]))
    if from_id is not None:
        rows = [r for r in rows if r["orderId"] >= from_id]
    return history.page(rows, limit, win)


@endpoint(5, signed=True)
async def user_trades(call: Call) -> Any:
    """The account's trades of ``symbol`` in the window, from ``fromId`` on, or those of
    ``orderId`` (module :mod:`~venueguard.sim.binance.history`); ``fromId`` with a time is
    -1128."""
    venue = call.venue
    sym = symbol_of(call)
    assert sym is not None
    from_id = history.id_param(call.params, "fromId")
    order_id = history.id_param(call.params, "orderId")
    if from_id is not None and (call.params.get("startTime") or call.params.get("endTime")):
        raise errors.bad_combination()
    win = history.window(call.params, call.now_ms,
                         anchored=from_id is not None or order_id is not None)
    limit = _limit(call, 500, 1000)
    rows = venue.server.engine.get_executions(symbol=sym.name, count=1_000_000,
                                              since_ms=win.since_ms, until_ms=win.until_ms)
    rows = venue.server.order_effects.visible_executions(rows, call.now_ms)
    out = [trade_row(sym, r, venue.trade_ids.of(str(r["execID"])),
                     venue.order_ids.of(str(r["orderID"]))) for r in rows]
    out.sort(key=lambda t: int(t["id"]))
    if from_id is not None:
        out = [t for t in out if t["id"] >= from_id]
    if order_id is not None:
        out = [t for t in out if t["orderId"] == order_id]
    return history.page(out, limit, win)


@endpoint(1, signed=True)
async def get_open_order(call: Call) -> Any:
    sym = symbol_of(call)
    assert sym is not None
    row = _find(call, sym, visible=True)
    if row is None or row.get("ordStatus") not in ("New", "PartiallyFilled"):
        raise errors.bad(-2013, errors.NO_SUCH_ORDER)
    return order_row(sym, row, call.venue.order_ids.of(str(row["orderID"])))


@endpoint(1, signed=True)
async def put_order(call: Call) -> Any:
    """Modify a LIMIT order's price and quantity (``side`` must be the order's); a new price
    or a larger quantity loses the queue position, as the engine's amend does."""
    venue = call.venue
    server = venue.server
    sym = symbol_of(call)
    assert sym is not None
    row = _find(call, sym, visible=False)
    if row is None or row.get("ordStatus") not in ("New", "PartiallyFilled"):
        raise errors.bad(-2013, errors.NO_SUCH_ORDER)
    side = call.params.get("side")
    if side not in ("BUY", "SELL") or (side == "BUY") != (row.get("side") == "Buy"):
        raise errors.bad(-1117, "Invalid side.")
    contracts = _quantity(call, sym)
    price = _price(call, sym)
    call.request[EXTRA_HEADERS] = venue.limiter.count_order(str(call.api_key),
                                                            server.clock.wall_s())
    try:
        amended = server.engine.amend_order(
            {"orderID": row["orderID"], "orderQty": contracts, "price": price}, call.now_ms)
    except SimError as exc:
        if exc.message == bitmex_errors.INVALID_AMEND_UNCHANGED:
            raise errors.bad(-5027, "No need to modify the order.") from None
        if exc.message == bitmex_errors.INVALID_ORDER_QTY:
            raise errors.bad(-4005 if contracts > sym.spec.max_order_qty else -1013,
                             "Invalid quantity.") from None
        raise errors.bad(-2013, errors.NO_SUCH_ORDER) from None
    server.pump()
    after = _after_accept(call)
    if after is not None:
        return after
    return order_row(sym, amended, venue.order_ids.of(str(amended["orderID"])))
