"""Account and venue-info routes under ``/api/v1``: the API root (server time), ``/user``,
``/user/margin``, ``/user/wallet``, ``/execution``, the public ``/trade`` tape and
``/position/leverage``. Rows are completed to BitMEX's full models
(:mod:`venueguard.sim.bitmex.complete`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from venueguard import numbers
from venueguard.sim.bitmex import params as p
from venueguard.sim.bitmex.account_rows import currencies, margin_row, user_row, wallet_row
from venueguard.sim.bitmex.complete import complete, complete_rows
from venueguard.sim.bitmex.rest import PARAMS_KEY
from venueguard.sim.control import SERVER_KEY
from venueguard.sim.httpserver import json_response
from venueguard.sim.rows import row_matches

if TYPE_CHECKING:
    from venueguard.sim.positions import Position
    from venueguard.sim.server import SimServer

#: The version string the root reports (BitMEX's API generation; the build suffix is ours).
API_VERSION = "1.2.0-venueguard-sim"
MAX_COUNT = 1000
_LEVERAGE_MAX = 100.0


def _ctx(request: web.Request) -> tuple[SimServer, dict[str, Any], int]:
    server = request.app[SERVER_KEY]
    now_ms = server.advance_engine()
    return server, request[PARAMS_KEY], now_ms


def _positions(server: SimServer) -> list[Position]:
    return list(server.engine.account.positions.values())


def _currency_list(server: SimServer, asked: str | None) -> tuple[list[str], bool]:
    """The currencies asked for (``all`` -> every one) and whether a list is answered."""
    engine = server.engine
    every = currencies(_positions(server),
                       lambda: (engine.spec(s).settl_currency for s in engine.symbols))
    if asked is None:
        return ["XBt"], False
    if asked.lower() == "all":
        return every, True
    return [asked], False


async def api_root(request: web.Request) -> web.StreamResponse:
    """``GET /api/v1``: name, version and the server's clock (epoch milliseconds)."""
    server, _, now_ms = _ctx(request)
    del server
    return json_response({"name": "BitMEX API", "version": API_VERSION, "timestamp": now_ms})


async def user(request: web.Request) -> web.StreamResponse:
    server, _, _ = _ctx(request)
    engine = server.engine
    return json_response(complete("User", user_row(engine.account_id, engine.iso(0))))


async def _per_currency(request: web.Request, model: str,
                        build: Callable[[int, str, list[Position], str], dict[str, object]],
                        ) -> web.StreamResponse:
    """One ``model`` row per asked currency (``all``: a list of every one)."""
    server, prm, now_ms = _ctx(request)
    wanted, as_list = _currency_list(server, p.opt_str(prm, "currency"))
    engine = server.engine
    ts = engine.iso(now_ms)
    rows = [complete(model, build(engine.account_id, c, _positions(server), ts)) for c in wanted]
    return json_response(rows if as_list else rows[0])


async def user_margin(request: web.Request) -> web.StreamResponse:
    return await _per_currency(request, "Margin", margin_row)


async def user_wallet(request: web.Request) -> web.StreamResponse:
    return await _per_currency(request, "Wallet", wallet_row)


def _page(prm: dict[str, Any]) -> tuple[int, int, bool]:
    return (p.opt_int(prm, "count", 100, low=1, high=MAX_COUNT),
            p.opt_int(prm, "start", 0, low=0),
            p.opt_bool(prm, "reverse"))


async def executions(request: web.Request) -> web.StreamResponse:
    """``GET /execution``: every execution (trades, new, canceled, ...), not only trades."""
    server, prm, now_ms = _ctx(request)
    count, start, reverse = _page(prm)
    rows = server.engine.get_executions(symbol=p.opt_str(prm, "symbol"),
                                        filter=p.opt_filter(prm), count=count, start=start,
                                        reverse=reverse, exec_types=None)
    return json_response(complete_rows(
        "Execution", server.order_effects.visible_executions(rows, now_ms)))


async def trades(request: web.Request) -> web.StreamResponse:
    """``GET /trade``: the recent public trades the market process printed (oldest first)."""
    server, prm, _ = _ctx(request)
    count, start, reverse = _page(prm)
    symbol = p.opt_str(prm, "symbol")
    flt = p.opt_filter(prm)
    rows: list[dict[str, object]] = []
    for name, market in server.engine.markets.items():
        if symbol is None or name == symbol:
            rows.extend(r for r in market.trades if row_matches(r, flt))
    rows.sort(key=lambda r: str(r["timestamp"]), reverse=reverse)
    return json_response(complete_rows("Trade", rows[start:start + count]))


async def position_leverage(request: web.Request) -> web.StreamResponse:
    """``POST /position/leverage``: remember the leverage (0 = cross) and answer the position."""
    server, prm, now_ms = _ctx(request)
    symbol = p.required(prm, "symbol")
    if not isinstance(symbol, str) or symbol not in server.engine.markets:
        raise p.bad("Invalid symbol")
    raw = p.required(prm, "leverage")
    try:
        leverage = numbers.read_float(raw) if isinstance(raw, str) else float(raw)
    except (TypeError, ValueError, OverflowError):  # NumberError is a ValueError
        raise p.bad("Invalid leverage") from None
    if not math.isfinite(leverage) or not 0 <= leverage <= _LEVERAGE_MAX:
        raise p.bad("Invalid leverage")
    engine = server.engine
    account = engine.account
    market = engine.markets[symbol]
    pos = account.positions.get(symbol)
    if pos is None:
        from venueguard.sim.positions import Position as _Position

        pos = _Position(engine.spec(symbol), engine.account_id, market.mid_price(), now_ms)
    server.leverage[symbol] = leverage
    return json_response(complete("Position", server.position_view(account.position_row(pos))))


def add_routes(app: web.Application, prefix: str) -> None:
    r = app.router
    r.add_get(prefix, api_root)
    r.add_get(f"{prefix}/", api_root)
    r.add_get(f"{prefix}/user", user)
    r.add_get(f"{prefix}/user/margin", user_margin)
    r.add_get(f"{prefix}/user/wallet", user_wallet)
    r.add_get(f"{prefix}/execution", executions)
    r.add_get(f"{prefix}/trade", trades)
    r.add_post(f"{prefix}/position/leverage", position_leverage)
