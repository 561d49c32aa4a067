"""ccxt's clock reads, routed through the clock seam for one guarded exchange object.

Under a virtual-time loop a guarded exchange signs, stamps and keeps its websocket keepalive
on the loop's wall clock; ccxt's class, its modules and other exchange objects keep the
system clock. On a real loop the routed reads are the system clock's.
"""

from __future__ import annotations

import asyncio
import time

import ccxt
import ccxt.pro as ccxt_pro
import pytest

from venueguard.app.chaos_ccxt import raw_exchange
from venueguard.ccxt import guard
from venueguard.ccxt.clock import route_clock
from venueguard.io.clock import wall_ns
from venueguard.io.vloop import DEFAULT_WALL_EPOCH_MS, run_virtual
from venueguard.sim.testing import running_sim

DAY_MS = 86_400_000


def _far_from_epoch(ms: int) -> bool:
    return abs(ms - DEFAULT_WALL_EPOCH_MS) > DAY_MS


def test_a_guarded_exchange_reads_the_virtual_clock_and_nothing_else_does() -> None:
    async def main() -> tuple[int, ...]:
        await asyncio.sleep(90.5)
        routed = ccxt_pro.bitmex()
        guard(routed, journal=None)
        plain = ccxt_pro.bitmex()
        try:
            return (wall_ns() // 1_000_000, routed.milliseconds(), routed.seconds(),
                    routed.microseconds() // 1000, routed.nonce(), plain.milliseconds(),
                    ccxt.Exchange.milliseconds())
        finally:
            await routed.close()
            await plain.close()

    now_ms, ms, s, us_ms, nonce, plain_ms, class_ms = run_virtual(main())
    assert now_ms == DEFAULT_WALL_EPOCH_MS + 90_500
    assert ms == us_ms == nonce == now_ms and s == now_ms // 1000
    # the class and an object nobody routed still read the system clock
    assert _far_from_epoch(plain_ms) and _far_from_epoch(class_ms)


def test_on_a_real_loop_the_routed_reads_are_the_system_clock() -> None:
    exchange = ccxt_pro.binanceusdm()
    route_clock(exchange)
    before = time.time_ns() // 1_000_000
    read = exchange.milliseconds()
    after = time.time_ns() // 1_000_000
    assert before <= read <= after
    asyncio.run(exchange.close())


def test_the_websocket_client_of_a_routed_exchange_reads_the_virtual_clock() -> None:
    """ccxt's websocket client stamps its connection and its keepalive's pong from the clock:
    the routed object's clients read the loop's; a client of an unrouted object does not."""

    async def main() -> tuple[int, int | None, int | None]:
        async with running_sim() as sim:
            routed = raw_exchange("ccxt:bitmex", sim.base_url)
            route_clock(routed)
            plain = raw_exchange("ccxt:bitmex", sim.base_url)
            try:
                await asyncio.sleep(30.0)
                await routed.watch_order_book("BTC/USD:BTC")
                await plain.watch_order_book("BTC/USD:BTC")
                started = wall_ns() // 1_000_000
                routed_client = next(iter(routed.clients.values()))
                plain_client = next(iter(plain.clients.values()))
                return (started, routed_client.connectionStarted,
                        plain_client.connectionStarted)
            finally:
                await routed.close()
                await plain.close()

    now_ms, routed_started, plain_started = run_virtual(main())
    assert routed_started is not None and abs(routed_started - now_ms) < 1_000
    assert plain_started is not None and _far_from_epoch(plain_started)


def test_the_throttler_of_a_routed_exchange_refills_on_the_virtual_clock() -> None:
    """Ten tokens in debt at one token a second: ten virtual seconds to wait. On the system
    clock each of its 1 ms virtual naps would refill only the few microseconds that really
    passed, and the wait would last far longer in virtual time."""

    async def main() -> float:
        exchange = ccxt_pro.bitmex()
        route_clock(exchange)
        throttler = exchange.throttler
        throttler.config.update(tokens=-10.0, refillRate=1 / 1000, capacity=1.0)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await throttler(1)
        waited = loop.time() - started
        await exchange.close()
        return waited

    waited = run_virtual(main())
    assert 9.9 <= waited <= 10.2, waited


def test_routing_twice_is_once() -> None:
    exchange = ccxt_pro.bitmex()
    route_clock(exchange)
    client = exchange.client
    route_clock(exchange)
    assert exchange.client is client
    asyncio.run(exchange.close())


@pytest.mark.parametrize("venue", ["ccxt:bitmex", "ccxt:binanceusdm"])
def test_ccxt_own_books_arrive_in_virtual_time_over_the_memory_network(venue: str) -> None:
    """With ccxt's own websocket readers (native streams off), a guarded bot gets fresh books
    in virtual time, two virtual minutes on (the keepalive on the loop's clock, not the
    machine's), stamped by the simulator's virtual clock."""
    from venueguard.ccxt import GuardConfig
    from venueguard.sim.binance.testing import running_binance_sim

    async def main() -> tuple[int, int, int, int]:
        sim_cm = running_sim() if venue == "ccxt:bitmex" else running_binance_sim()
        async with sim_cm as sim:
            exchange = guard(raw_exchange(venue, sim.base_url),
                             GuardConfig(native_streams=False), journal=None)
            symbol = "BTC/USD:BTC" if venue == "ccxt:bitmex" else "BTC/USDT:USDT"
            try:
                async with asyncio.timeout(10.0):
                    first = await exchange.watch_order_book(symbol)
                first_ts, first_at = first["timestamp"], wall_ns() // 1_000_000  # ccxt's book
                # object is updated in place: its timestamp read now
                await asyncio.sleep(120.0)
                async with asyncio.timeout(10.0):
                    later = await exchange.watch_order_book(symbol)
                return first_ts, first_at, later["timestamp"], wall_ns() // 1_000_000
            finally:
                await exchange.close()

    first_ts, first_at, later_ts, later_at = run_virtual(main())
    assert 0 <= first_at - first_ts <= 2_500
    assert 0 <= later_at - later_ts <= 2_500
    assert later_ts - first_ts >= 120_000
