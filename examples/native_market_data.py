"""venueguard's own BitMEX market-data session: a live-checked book in a few lines.

    venueguard sim --port 8800 &
    python examples/native_market_data.py --sim-url http://127.0.0.1:8800 --seconds 3
"""

from __future__ import annotations

import argparse
import asyncio

from venueguard import MarketDataSession, MdConfig, TopOfBook
from venueguard.numbers import float_arg


async def main(sim_url: str, seconds: float) -> int:
    ws_url = sim_url.replace("http://", "ws://", 1) + "/realtime"
    session = MarketDataSession(MdConfig(url=ws_url, topics=("orderBookL2:XBTUSD",)))
    changes = 0
    async with session:
        await session.wait_synced(10.0)
        try:
            async with asyncio.timeout(seconds):
                async for event in session.events():
                    if isinstance(event, TopOfBook):
                        changes += 1
        except TimeoutError:
            pass
        book = session.book("XBTUSD")
        print(f"XBTUSD {book.best_bid()} / {book.best_ask()}, fresh {book.is_fresh}, "
              f"{changes} top-of-book changes in {seconds:g} s")
    return 0 if changes else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim-url", default="http://127.0.0.1:8800")
    parser.add_argument("--seconds", type=float_arg(above=0, high=3600), default=3.0)
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(args.sim_url.rstrip("/"), args.seconds)))
