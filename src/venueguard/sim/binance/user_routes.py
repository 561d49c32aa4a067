"""Signed account routes (balance, account, positions, leverage brackets) and the listenKey."""

from __future__ import annotations

from typing import Any

from venueguard.sim.binance import errors
from venueguard.sim.binance.http import Call, endpoint
from venueguard.sim.binance.market_routes import symbol_of


@endpoint(5, signed=True)
async def balance(call: Call) -> Any:
    return call.venue.account.balance_rows(call.now_ms)


@endpoint(5, signed=True)
async def account(call: Call) -> Any:
    return call.venue.account.account(call.now_ms)


@endpoint(5, signed=True)
async def position_risk_v2(call: Call) -> Any:
    sym = symbol_of(call, required=False)
    return call.venue.account.position_rows(sym.name if sym else None, call.now_ms)


@endpoint(5, signed=True)
async def position_risk_v3(call: Call) -> Any:
    sym = symbol_of(call, required=False)
    rows = call.venue.account.position_rows(sym.name if sym else None, call.now_ms)
    return [r for r in rows if float(r["positionAmt"]) != 0]


@endpoint(1, signed=True)
async def leverage_bracket(call: Call) -> Any:
    sym = symbol_of(call, required=False)
    names = [sym.name] if sym else list(call.venue.symbols)
    rows = []
    for name in names:
        spec = call.venue.symbols[name].spec
        rows.append({"symbol": name, "brackets": [{
            "bracket": 1, "initialLeverage": round(1 / spec.init_margin),
            "notionalCap": 1_000_000, "notionalFloor": 0, "maintMarginRatio": spec.maint_margin,
            "cum": 0.0}]})
    return rows[0] if sym else rows


@endpoint(1, key_only=True)
async def listen_key_post(call: Call) -> Any:
    venue = call.venue
    return {"listenKey": venue.listen_keys.create(venue.server.clock.monotonic_s())}


@endpoint(1, key_only=True)
async def listen_key_put(call: Call) -> Any:
    venue = call.venue
    key = call.params.get("listenKey") or None
    if not venue.listen_keys.keepalive(key, venue.server.clock.monotonic_s()):
        raise errors.bad(-1125, "This listenKey does not exist.")
    return {}


@endpoint(1, key_only=True)
async def listen_key_delete(call: Call) -> Any:
    call.venue.listen_keys.close(call.params.get("listenKey") or None)
    return {}
