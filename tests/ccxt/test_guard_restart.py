"""A guarded ccxt bot across a restart, on its default journal: what was in doubt is settled by
the venue before anything new is sent, an order hidden longer than any grace is never called
"never placed", and an intent sent again with its client id returns the order it placed."""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import ccxt
import ccxt.pro as ccxt_pro
import pytest

from venueguard.ccxt import OrderUnknown, guard
from venueguard.ccxt.orders import default_journal
from venueguard.core.orders import ClOrdIdGenerator, OrderTable
from venueguard.io.journal import Journal
from venueguard.io.journal_lock import JournalLockedError
from venueguard.telemetry.events import EventLog

from ccxt_testkit import (
    SYMBOL,
    FakeVenue,
    SimFactory,
    bitmex,
    close,
    point_at,
    point_at_sim,
    quick_config,
)

pytestmark = [pytest.mark.system]

HIDDEN_S = 9.0     # hidden from every query longer than grace_s and settle_s, inside the horizon


def _quick() -> Any:
    base = quick_config()
    return replace(base, orders=replace(base.orders, settle_s=3.0, grace_s=2.0))


async def _bid(exchange: Any) -> float:
    book = await exchange.fetch_order_book(SYMBOL)
    return float(book["bids"][0][0])


async def _until(check: Any, timeout_s: float) -> bool:
    for _ in range(int(timeout_s / 0.1)):
        if check():
            return True
        await asyncio.sleep(0.1)
    return False


@pytest.mark.slow
async def test_a_hidden_order_whose_answer_was_lost_is_unknown_never_not_placed(
        sim_server: SimFactory) -> None:
    sim = await sim_server()
    events = EventLog()
    exchange = bitmex(sim, events=events, config=_quick())
    states: list[str | None] = []
    try:
        price = await _bid(exchange) - 300
        await sim.add_fault("timeout_after_accept", hold_s=30.0, duration_s=60.0)
        await sim.add_fault("delayed_visibility", delay_s=HIDDEN_S, duration_s=60.0)
        with pytest.raises(OrderUnknown) as raised:     # not RequestTimeout ("never placed")
            await exchange.create_order(SYMBOL, "limit", "buy", 100, price)
        cl = raised.value.cl_ord_id
        assert cl is not None
        at_venue = [o for o in (await sim.truth())["orders"] if o["clOrdID"] == cl]
        assert [o["ordStatus"] for o in at_venue] == ["New"]  # live while the bot is unsure

        def settled() -> bool:
            states.append(exchange.order_state(cl))
            return states[-1] != "UNKNOWN"

        assert await _until(settled, HIDDEN_S + 10.0), states[-3:]
        truth = await sim.truth()
    finally:
        await sim.clear_faults()
        await close(exchange)
    assert states[-1] == "NEW" and "REJECTED" not in states
    assert truth["requests"]["POST /api/v1/order"] == 1
    assert not [e for e in events.recent(event="reconcile.resolved")
                if e.get("kind") in ("unknown_not_accepted", "unknown_not_placed")]


@pytest.mark.slow
async def test_a_restart_settles_the_order_in_doubt_before_sending_and_never_doubles_it(
        sim_server: SimFactory) -> None:
    sim = await sim_server()
    first = bitmex(sim, config=_quick())
    price = await _bid(first) - 300
    await sim.add_fault("timeout_after_accept", hold_s=30.0, duration_s=60.0)
    await sim.add_fault("delayed_visibility", delay_s=HIDDEN_S, duration_s=60.0)
    with pytest.raises(OrderUnknown) as raised:
        await first.create_order(SYMBOL, "limit", "buy", 100, price,
                                 {"clientOrderId": "mybot1"})
    assert raised.value.cl_ord_id == "mybot1"
    journal = first.orders.journal_path()
    await first.orders.aclose(clean=False)          # the process dies with the order in doubt
    await first.raw.close()
    await sim.clear_faults()
    # someone places an order by hand on the account meanwhile
    status, _, _ = await sim.request("POST", "/order", {
        "symbol": "XBTUSD", "side": "Buy", "orderQty": 100, "price": price - 5,
        "clOrdID": "byhand1"})
    assert status == 200

    events = EventLog()
    second = bitmex(sim, events=events, config=_quick())
    try:
        assert second.orders.journal_path() == journal and journal is not None
        assert journal == default_journal("bitmex", second.raw.apiKey)
        assert str(journal).startswith(os.environ["VENUEGUARD_STATE_DIR"])
        async with second:                          # the journal exists: reconcile on entry
            (startup,) = [e for e in events.recent(event="reconcile.resolved")
                          if e["kind"] == "startup"]
            assert (startup["journaled"], startup["adopted"]) == (1, 1)
            assert second.order_state("byhand1") == "NEW"          # adopted, reported
            again = await second.create_order(SYMBOL, "limit", "buy", 100, price,
                                              {"clientOrderId": "mybot1"})
            assert again["clientOrderId"] == "mybot1" and again["status"] == "open"
            assert second.order_state("mybot1") == "NEW"
            armed = await _until(lambda: second.orders.dms is not None
                                 and second.orders.dms.armed, 10.0)
            assert armed                            # the switch covers what rests again
            with pytest.raises(JournalLockedError):  # one process per journal
                other = bitmex(sim, config=_quick())
                try:
                    await other.create_order(SYMBOL, "limit", "buy", 100, price - 10)
                finally:
                    await close(other)
            truth = await sim.truth()
    finally:
        await close(second)
    assert Counter(o["clOrdID"] for o in truth["orders"])["mybot1"] == 1
    assert truth["clOrdID_attempts"]["mybot1"] == 1   # sent once, across the restart
    assert any(e["kind"] == "phantom_venue" for e in events.recent(event="reconcile.mismatch"))


async def test_journal_false_opts_out_and_says_so(sim_server: SimFactory) -> None:
    sim = await sim_server()
    events = EventLog()
    raw = ccxt_pro.bitmex({"apiKey": sim.api_key, "secret": sim.api_secret, "timeout": 1500})
    point_at_sim(raw, sim)
    exchange = guard(raw, quick_config(), events=events, journal=False)
    try:
        order = await exchange.create_order(SYMBOL, "limit", "buy", 100,
                                            await _bid(exchange) - 300)
        assert order["status"] == "open"
    finally:
        await close(exchange)
    (opened,) = events.recent(event="orders.journal")
    assert opened["durable"] is False and opened["path"] is None
    assert any("not journaled" in str(a["message"]) for a in events.recent(event="alert"))
    state = Path(os.environ["VENUEGUARD_STATE_DIR"])
    assert not await asyncio.to_thread(lambda: list(state.glob("*.db")))
    with pytest.raises(ccxt.BaseError):
        await exchange.create_order(SYMBOL, "limit", "buy", 100, 1.0)   # closed: refused


async def test_a_restart_the_venue_refuses_is_tried_again_on_the_next_call(
        fake_venue: FakeVenue, tmp_path: Path) -> None:
    """Regression: the journal a failed start opened is kept, so the next call asks the venue
    again (it once met the journal's lock, held by its own process)."""
    path = tmp_path / "orders.db"
    with Journal.open(path) as journal:               # an order left in doubt by a crash
        table = OrderTable(ClOrdIdGenerator(random.Random(1)))
        journal.record_intent(table.new_order("BTC/USD:BTC", "Buy", 100, 50_000.0, now=0.0,
                                              wall_ms=1))
    raw = ccxt_pro.bitmex({"apiKey": "key", "secret": "secret", "enableRateLimit": False})
    point_at(raw, fake_venue.origin)
    fake_venue.respond((401, {"error": {"message": "Invalid API Key.", "name": "HTTPError"}}))
    exchange = guard(raw, quick_config(), journal=path)
    try:
        for _ in range(2):
            asked = len(fake_venue.seen)
            with pytest.raises(ccxt.AuthenticationError):
                await exchange.create_order(SYMBOL, "limit", "buy", 100, 50_000.0)
            assert len(fake_venue.seen) > asked       # the venue was asked each time
    finally:
        await close(exchange)
    assert not [s for s in fake_venue.seen if s.method == "POST"]   # nothing new was sent
