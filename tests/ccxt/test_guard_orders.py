"""Orders through guarded ccxt bitmex against the simulator: the journal before the send, the
dead man's switch through ccxt's cancelAllOrdersAfter, safe mode's one bulk cancel."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import ccxt
import pytest

from venueguard.ccxt import OrdersRefused
from venueguard.ccxt.errors import OrderUnknown
from venueguard.core.dms import DmsConfig
from venueguard.core.reconcile import ReconcileConfig
from venueguard.io.journal import Journal
from venueguard.telemetry.events import EventLog

from ccxt_testkit import SYMBOL, SimFactory, bitmex, close, quick_config

pytestmark = [pytest.mark.system]


async def _eventually(check: Callable[[], Any], *, awaited: bool = False,
                      timeout_s: float = 10.0) -> None:
    for _ in range(int(timeout_s / 0.05)):
        if (await check()) if awaited else check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


def _armed(exchange: Any) -> bool:
    return exchange.orders.dms is not None and bool(exchange.orders.dms.armed)


async def _bulk_cancels(sim: Any) -> bool:
    return bool((await sim.truth())["requests"].get("DELETE /api/v1/order/all", 0) >= 1)


async def _bid(exchange: Any) -> float:
    book = await exchange.fetch_order_book(SYMBOL)
    return float(book["bids"][0][0])


async def test_the_intent_is_journaled_before_the_order_leaves(sim_server: SimFactory,
                                                               tmp_path: Path) -> None:
    sim = await sim_server()
    journal = Journal.open(tmp_path / "vg.db")
    exchange = bitmex(sim)
    exchange.orders.journal = journal
    raw = exchange.raw
    send = raw.create_order
    at_send: list[list[str]] = []

    async def watched_send(*args: Any, **kwargs: Any) -> Any:
        client_id = args[5]["clOrdID"]  # the venue's own parameter, set by the guard
        at_send.append([row.kind for row in journal.history(client_id)])
        return await send(*args, **kwargs)

    raw.create_order = watched_send
    try:
        order = await exchange.create_order(SYMBOL, "limit", "buy", 100, await _bid(exchange) - 300)
        history = [row.kind for row in journal.history(order["clientOrderId"])]
    finally:
        await close(exchange)
        journal.close()
    assert at_send == [["intent"]]  # on disk before the request was made
    assert history[0] == "intent" and len(history) >= 3  # then sent, then acked
    assert exchange.order_state(order["clientOrderId"]) == "NEW"


async def test_dead_mans_switch_is_armed_while_orders_rest_and_disarmed_on_close(
        sim_server: SimFactory) -> None:
    sim = await sim_server()
    config = quick_config(dms=DmsConfig(timeout_s=30.0, refresh_s=0.5))
    exchange = bitmex(sim, config=config)
    try:
        await exchange.create_order(SYMBOL, "limit", "buy", 100, await _bid(exchange) - 300)
        await _eventually(lambda: _armed(exchange))
        armed = (await sim.truth())["requests"].get("POST /api/v1/order/cancelAllAfter", 0)
    finally:
        await close(exchange)
    after = (await sim.truth())["requests"].get("POST /api/v1/order/cancelAllAfter", 0)
    assert armed >= 1 and after == armed + 1  # one more: the disarm (timeout 0) on a clean stop
    resting = [o for o in (await sim.truth())["orders"] if o["ordStatus"] == "New"]
    assert resting  # a clean stop disarms; it does not cancel (nor does a 30 s timer at 30 ms)


@pytest.mark.slow
async def test_safe_mode_refuses_new_orders_after_one_bulk_cancel(sim_server: SimFactory) -> None:
    sim = await sim_server()
    events = EventLog()
    exchange = bitmex(sim, events=events)
    try:
        bid = await _bid(exchange)
        for step in range(3):
            await exchange.create_order(SYMBOL, "limit", "buy", 100, bid - 300 - step)
        exchange.orders.enter_safe_mode("test")
        await _eventually(lambda: _bulk_cancels(sim), awaited=True)
        with pytest.raises(OrdersRefused):
            await exchange.create_order(SYMBOL, "limit", "buy", 100, bid - 400)
        await asyncio.sleep(0.5)
        truth = await sim.truth()
    finally:
        await close(exchange)
    assert truth["requests"].get("DELETE /api/v1/order/all") == 1  # one bulk cancel, no storm
    assert truth["requests"].get("DELETE /api/v1/order", 0) == 0
    assert all(o["ordStatus"] != "New" for o in truth["orders"])
    assert any(r["event"] == "order.refused" for r in events.recent())


async def test_create_orders_gives_each_entry_its_own_client_id_and_outcome(
        sim_server: SimFactory, tmp_path: Path) -> None:
    sim = await sim_server()
    journal = Journal.open(tmp_path / "vg.db")
    exchange = bitmex(sim)
    exchange.orders.journal = journal
    try:
        bid = await _bid(exchange)
        results = await exchange.create_orders([
            {"symbol": SYMBOL, "type": "limit", "side": "buy", "amount": 100, "price": bid - 300},
            {"symbol": SYMBOL, "type": "limit", "side": "buy", "amount": 100, "price": bid - 301,
             "params": {"clientOrderId": "mine1"}},
            {"symbol": SYMBOL, "type": "limit", "side": "buy", "amount": 100,
             "price": 2_000_000},                    # above the instrument's maximum: refused
        ])
        truth = await sim.truth()
        ids = [r["clientOrderId"] for r in results]
        histories = {cl: [row.kind for row in journal.history(cl)] for cl in ids}
        with pytest.raises(ccxt.ArgumentsRequired, match="entry 0 lacks amount"):
            await exchange.create_orders([{"symbol": SYMBOL, "type": "limit", "side": "buy"}])
        with pytest.raises(ccxt.ArgumentsRequired, match="non-empty list"):
            await exchange.create_orders([])
        with pytest.raises(ccxt.InvalidOrder):                # every entry refused: raised
            await exchange.create_orders([{"symbol": SYMBOL, "type": "limit", "side": "buy",
                                           "amount": 100, "price": 2_000_000}])
    finally:
        await close(exchange)
        journal.close()
    assert len(results) == 3 and len(set(ids)) == 3 and ids[1] == "mine1"
    assert [r["status"] for r in results] == ["open", "open", "rejected"]
    assert results[2]["info"]["error"] == "InvalidOrder"
    assert "Invalid price" in results[2]["info"]["message"]
    at_venue = {row["clOrdID"] for row in truth["orders"]}
    assert set(ids[:2]) <= at_venue and ids[2] not in at_venue
    assert all(h and h[0] == "intent" for h in histories.values())  # each journaled first
    assert exchange.order_state(ids[0]) == "NEW" and exchange.order_state(ids[2]) == "REJECTED"


async def test_create_orders_settles_lost_answers_by_client_id_without_resending(
        sim_server: SimFactory) -> None:
    sim = await sim_server()
    events = EventLog()
    exchange = bitmex(sim, events=events)
    try:
        bid = await _bid(exchange)
        await sim.add_fault("timeout_after_accept", duration_s=30.0)
        results = await exchange.create_orders([
            {"symbol": SYMBOL, "type": "limit", "side": "buy", "amount": 100,
             "price": bid - 300 - i} for i in range(3)])
        truth = await sim.truth()
    finally:
        await close(exchange)
    ids = [r["clientOrderId"] for r in results]
    assert len(set(ids)) == 3 and all(r["status"] == "open" for r in results)
    sent = [row["clOrdID"] for row in truth["orders"]]
    assert sorted(sent) == sorted(ids)                        # each at the venue exactly once
    assert truth["requests"]["POST /api/v1/order"] == 3       # answers lost, never resent
    assert {e["cl_ord_id"] for e in events.recent(event="rest.ambiguous")} == set(ids)


@pytest.mark.slow
async def test_an_amend_whose_answer_is_lost_is_settled_by_the_venue_not_resent(
        sim_server: SimFactory) -> None:
    sim = await sim_server()
    events = EventLog()
    exchange = bitmex(sim, events=events)
    try:
        bid = await _bid(exchange)
        order = await exchange.create_order(SYMBOL, "limit", "buy", 100, bid - 300)
        await sim.add_fault("timeout_after_accept", duration_s=30.0)
        edited = await exchange.edit_order(order["id"], SYMBOL, "limit", "buy", 100, bid - 310)
        truth = await sim.truth()
    finally:
        await close(exchange)
    cl = order["clientOrderId"]
    assert edited["price"] == bid - 310 and edited["status"] == "open"
    assert [r["price"] for r in truth["orders"] if r["clOrdID"] == cl] == [bid - 310]
    assert truth["requests"]["PUT /api/v1/order"] == 1        # the answer was lost; not resent
    assert [e["cl_ord_id"] for e in events.recent(event="order.amend_unknown")] == [cl]
    resolved = events.recent(event="reconcile.resolved")
    assert any(e["kind"] == "amend_lookup" and "amend applied" in str(e["detail"])
               for e in resolved)
    assert exchange.order_state(cl) == "NEW"


@pytest.mark.slow
async def test_an_amend_the_venue_refused_whose_answer_is_lost_is_found_not_applied(
        sim_server: SimFactory) -> None:
    sim = await sim_server()
    events = EventLog()
    exchange = bitmex(sim, events=events)
    try:
        bid = await _bid(exchange)
        order = await exchange.create_order(SYMBOL, "limit", "buy", 100, bid - 300)
        # the answer comes after the client gave up (an ambiguous outcome); the venue refused
        # the amend (a price above the instrument's maximum), so the order rests unchanged
        await sim.add_fault("latency", ms=2_500.0, duration_s=3.0)
        with pytest.raises(ccxt.BaseError) as raised:
            await exchange.edit_order(order["id"], SYMBOL, "limit", "buy", 100, 2_000_000)
        truth = await sim.truth()
    finally:
        await close(exchange)
    cl = order["clientOrderId"]
    assert not isinstance(raised.value, OrderUnknown)          # settled: it was not applied
    assert isinstance(raised.value, ccxt.RequestTimeout)       # ccxt's own error for the call
    assert [e["cl_ord_id"] for e in events.recent(event="order.amend_unknown")] == [cl]
    assert [r["price"] for r in truth["orders"] if r["clOrdID"] == cl] == [bid - 300]
    assert truth["requests"]["PUT /api/v1/order"] == 1
    assert any(e["kind"] == "amend_lookup" and "amend not applied" in str(e["detail"])
               for e in events.recent(event="reconcile.resolved"))
    assert exchange.order_state(cl) == "NEW"


@pytest.mark.slow
async def test_a_whole_reconcile_configuration_is_taken_as_given(sim_server: SimFactory) -> None:
    # lookup budgets in and out of safe mode are the reconciler's; OrdersConfig's own fields
    # derive a configuration, and a given one replaces it (the position is checked only where
    # ccxt can fetch it)
    sim = await sim_server()
    given = ReconcileConfig(query_interval_s=0.2, budget_queries=40, safe_budget_queries=10,
                            budget_interval_s=1.0, unknown_window_s=3.0,
                            acceptance_window_s=3.0)
    configs = []
    for config in (quick_config(), quick_config(reconcile=given)):   # one default journal
        chosen = bitmex(sim, config=config)
        try:
            await chosen.start_orders()
            configs.append(chosen.orders.runtime.manager.reconciler.config)
        finally:
            await close(chosen)
    default, ours = configs
    assert ours == given                      # ccxt's bitmex class fetches positions
    assert (default.query_interval_s, default.safe_budget_queries,
            default.budget_interval_s) == (0.3, 3, 10.0)
    no_positions = dict(chosen.raw.has, fetchPositions=False)
    chosen.raw.has = no_positions
    assert chosen.orders._runtime_config().manager.reconcile == replace(
        given, check_position=False)


async def test_cancel_all_orders_answers_as_ccxt_and_fails_with_ccxts_error(
        sim_server: SimFactory) -> None:
    sim = await sim_server()
    exchange = bitmex(sim)
    try:
        placed = await exchange.create_order(SYMBOL, "limit", "buy", 100,
                                             await _bid(exchange) - 300)
        cl = placed["clientOrderId"]
        answer = await exchange.cancel_all_orders(SYMBOL)
        assert [row["clientOrderId"] for row in answer] == [cl]     # ccxt's own answer
        assert exchange.order_state(cl) == "CANCELED"
        await sim.add_fault("invalid_key", duration_s=30.0)
        with pytest.raises(ccxt.AuthenticationError) as refused:    # the venue's, as ccxt raised it
            await exchange.cancel_all_orders(SYMBOL)
        assert refused.value.venueguard.kind.value == "invalid_credentials"
    finally:
        await sim.clear_faults()
        await close(exchange)
