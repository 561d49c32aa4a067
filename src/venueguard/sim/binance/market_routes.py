"""Public ``/fapi`` routes: ping, time, exchangeInfo, depth, tickers."""

from __future__ import annotations

from typing import Any

from venueguard.numbers import ascii_digits
from venueguard.sim.binance import errors
from venueguard.sim.binance.http import Call, Params, endpoint
from venueguard.sim.binance.symbols import BinanceSymbol

DEPTH_LIMITS = (5, 10, 20, 50, 100, 500, 1000)


def depth_weight(params: Params) -> int:
    raw = params.get("limit", "500")
    limit = int(raw) if ascii_digits(raw, 7) else 500
    return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20


def symbol_of(call: Call, required: bool = True) -> BinanceSymbol | None:
    raw = call.params.get("symbol")
    if raw is None or raw == "":
        if required:
            raise errors.mandatory("symbol")
        return None
    sym = call.venue.symbols.get(raw.upper()) if raw.isalnum() else None
    if sym is None:
        raise errors.invalid_symbol()
    return sym


@endpoint(1)
async def ping(call: Call) -> Any:
    return {}


@endpoint(1)
async def server_time(call: Call) -> Any:
    return {"serverTime": int(call.venue.server.clock.wall_s() * 1000)}


@endpoint(1)
async def exchange_info(call: Call) -> Any:
    limits = call.venue.limiter.limits
    return {
        "timezone": "UTC", "serverTime": int(call.venue.server.clock.wall_s() * 1000),
        "futuresType": "U_MARGINED",
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": limits.weight_per_min},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1,
             "limit": limits.orders_per_min},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
             "limit": limits.orders_per_10s}],
        "exchangeFilters": [],
        "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
        "symbols": call.venue.exchange_info_rows(),
    }


@endpoint(depth_weight)
async def depth(call: Call) -> Any:
    venue = call.venue
    raw_limit = call.params.get("limit", "500")
    if not ascii_digits(raw_limit, 7) or int(raw_limit) not in DEPTH_LIMITS:
        raise errors.bad(-4021, "Invalid depth limit.")
    limit = int(raw_limit)
    name = call.params.get("symbol", "")
    recorded = venue.recorded_depth(name.upper(), limit) if name else None
    if recorded is not None:
        return recorded
    sym = symbol_of(call)
    assert sym is not None
    bids: list[tuple[float, int]] = []
    asks: list[tuple[float, int]] = []
    for row in venue.server.engine.get_book_l2(sym.name, 0):
        price, size = row.get("price"), row.get("size")
        if isinstance(price, int | float) and isinstance(size, int):
            (bids if row.get("side") == "Buy" else asks).append((float(price), size))
    bids.sort(reverse=True)
    asks.sort()
    now_ms = call.now_ms
    return {"lastUpdateId": venue.feed.snapshot_id(sym.name), "E": now_ms, "T": now_ms,
            "bids": [[sym.price(p), sym.qty(q)] for p, q in bids[:limit]],
            "asks": [[sym.price(p), sym.qty(q)] for p, q in asks[:limit]]}


def _book_ticker(call: Call, sym: BinanceSymbol) -> dict[str, Any]:
    book = call.venue.server.engine.markets[sym.name].book
    bid, bid_size, ask, ask_size = book.top()
    spec = sym.spec
    return {"symbol": sym.name, "bidPrice": sym.price(spec.price(bid) if bid else 0.0),
            "bidQty": sym.qty(bid_size), "askPrice": sym.price(spec.price(ask) if ask else 0.0),
            "askQty": sym.qty(ask_size), "time": call.now_ms,
            "lastUpdateId": call.venue.feed.ticker_id(sym.name)}


def _each(call: Call) -> list[BinanceSymbol]:
    sym = symbol_of(call, required=False)
    return [sym] if sym is not None else list(call.venue.symbols.values())


def _per_symbol(one: int, every: int) -> Any:
    return lambda params: one if params.get("symbol") else every


@endpoint(_per_symbol(2, 5))
async def book_ticker(call: Call) -> Any:
    rows = [_book_ticker(call, s) for s in _each(call)]
    return rows[0] if call.params.get("symbol") else rows


@endpoint(_per_symbol(1, 2))
async def ticker_price(call: Call) -> Any:
    rows = [{"symbol": s.name, "price": s.price(call.venue.server.engine.markets[s.name]
                                                 .mid_price()), "time": call.now_ms}
            for s in _each(call)]
    return rows[0] if call.params.get("symbol") else rows


@endpoint(_per_symbol(1, 40))
async def ticker_24hr(call: Call) -> Any:
    rows = []
    for s in _each(call):
        market = call.venue.server.engine.markets[s.name]
        last = market.mid_price()
        rows.append({"symbol": s.name, "priceChange": "0", "priceChangePercent": "0.000",
                     "weightedAvgPrice": s.price(last), "lastPrice": s.price(last),
                     "lastQty": s.qty(s.spec.lot_size), "openPrice": s.price(last),
                     "highPrice": s.price(last), "lowPrice": s.price(last),
                     "volume": "0", "quoteVolume": "0", "openTime": call.now_ms - 86_400_000,
                     "closeTime": call.now_ms, "firstId": 0, "lastId": 0, "count": 0})
    return rows[0] if call.params.get("symbol") else rows


@endpoint(1)
async def not_found(call: Call) -> Any:
    raise errors.BinanceError(404, -5000, f"Path {call.request.path}, Method {call.request.method} "
                                   "is invalid")
