"""A ccxt bot with venueguard underneath: market data, one order, its cancel, and what failed.

Run a simulator, then this bot against it (or against a real venue with your own keys):

    venueguard sim --port 8800 &
    python examples/ccxt_bot.py --sim-url http://127.0.0.1:8800

It reads a few fresh books, places a post-only buy below the market, cancels it, and prints
the venue's health state; an order whose outcome is ambiguous is reported as UNKNOWN, never
sent twice. Orders are journaled by default (``guard(raw)``: one file per exchange and account
under ``$VENUEGUARD_STATE_DIR``, else ``~/.local/state/venueguard``); run it again after a crash
and the order left in doubt is settled by the venue before anything new is sent.
"""

from __future__ import annotations

import argparse
import asyncio

import ccxt
import ccxt.pro

from venueguard import guard
from venueguard.ccxt import OrderUnknown
from venueguard.numbers import int_arg
from venueguard.venues.bitmex.signing import TEST_API_KEY, TEST_API_SECRET


async def main(sim_url: str, symbol: str, books: int) -> int:
    raw = ccxt.pro.bitmex({"apiKey": TEST_API_KEY, "secret": TEST_API_SECRET})
    ws_url = sim_url.replace("http://", "ws://", 1) + "/realtime"
    raw.urls["api"] = {"public": sim_url, "private": sim_url, "ws": ws_url}
    async with guard(raw) as exchange:            # journaled: exchange.orders.journal_path()
        print(f"journal: {exchange.orders.journal_path()}")
        for _ in range(books):
            book = await exchange.watch_order_book(symbol)
        bid, ask = book["bids"][0][0], book["asks"][0][0]
        print(f"book: {bid} / {ask} (fresh: {exchange.is_fresh('orderbook', symbol)})")
        try:
            order = await exchange.create_order(symbol, "limit", "buy", 100, bid - 50,
                                                {"postOnly": True})
        except OrderUnknown as unknown:
            print(f"order {unknown.cl_ord_id}: UNKNOWN until the venue says; not resent")
            return 1
        except ccxt.BaseError as error:
            verdict = getattr(error, "venueguard", None)
            kind = verdict.kind.value if verdict is not None else "unclassified"
            print(f"order refused: {type(error).__name__} ({kind})")
            return 1
        print(f"order {order['clientOrderId']}: {order['status']} "
              f"({exchange.order_state(order['clientOrderId'])})")
        canceled = await exchange.cancel_order(order["id"], symbol)
        print(f"canceled: {canceled['status']}; venue {exchange.venue_state}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim-url", default="http://127.0.0.1:8800")
    parser.add_argument("--symbol", default="BTC/USD:BTC")
    parser.add_argument("--books", type=int_arg(1, 1000), default=5)
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(args.sim_url.rstrip("/"), args.symbol, args.books)))
