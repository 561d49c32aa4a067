"""The simulator fans an update out to its subscribers in the order they subscribed.

A regression test: the fan-out index held each key's connections in a set, which iterates in
an order set by memory addresses, so with several clients on one stream (a fleet's members)
who got a frame first changed from one run of a seed to the next. Checked on both dialects, in
virtual time, with a dozen subscribers (a set of a dozen objects hashed by address is almost
never in creation order).
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from typing import Any

import aiohttp
import pytest

from venueguard.io.vloop import run_virtual
from venueguard.sim.binance.testing import running_binance_sim
from venueguard.sim.testing import running_sim

CLIENTS = 12


@pytest.mark.parametrize("dialect", ["bitmex", "binance-usdm"])
def test_subscribers_are_served_in_subscription_order(dialect: str) -> None:
    async def main() -> tuple[list[int], list[int]]:
        sim_cm: AbstractAsyncContextManager[Any] = (
            running_sim() if dialect == "bitmex" else running_binance_sim())
        async with sim_cm as sim, aiohttp.ClientSession() as http:
            if dialect == "bitmex":
                url, key = sim.ws_url + "?subscribe=orderBookL2:XBTUSD", "orderBookL2:XBTUSD"
                hub = sim.server.hub
            else:
                url, key = sim.ws_base + "/ws/btcusdt@depth@100ms", None
                hub = sim.venue.hub
            sockets = []
            for _ in range(CLIENTS):
                sockets.append(await http.ws_connect(url))
                await asyncio.sleep(0.01)     # subscribed before the next one connects
            try:
                if key is None:
                    key = next(iter(hub.index))
                served = [conn.serial for conn in hub.index[key]]
                opened = sorted(hub.connections)
                return served, opened
            finally:
                for ws in sockets:
                    await ws.close()

    served, opened = run_virtual(main())
    assert len(served) == CLIENTS
    assert served == opened
