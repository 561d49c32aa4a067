"""Order-level faults: delayed visibility, late fills, cancel races."""

from __future__ import annotations

import asyncio

import orjson

from venueguard.sim.testing import SimHandle
from venueguard.venues.bitmex import errors

RESTING = {"symbol": "XBTUSD", "side": "Buy", "orderQty": 100, "price": 30000}
MARKET = {"symbol": "XBTUSD", "side": "Buy", "orderQty": 100, "ordType": "Market"}


async def test_delayed_visibility(sim: SimHandle) -> None:
    await sim.add_fault("delayed_visibility", delay_s=0.4)
    status, _, row = await sim.request("POST", "/order", {**RESTING, "clOrdID": "slow-show"})
    assert status == 200
    _, _, early = await sim.request("GET", "/order", query={"filter": {"clOrdID": "slow-show"}})
    assert early == []
    truth = await sim.truth()
    assert [o["orderID"] for o in truth["orders"]] == [row["orderID"]]  # it exists all along
    await asyncio.sleep(0.5)
    _, _, later = await sim.request("GET", "/order", query={"filter": {"clOrdID": "slow-show"}})
    assert [o["orderID"] for o in later] == [row["orderID"]]


async def test_late_fill_delays_executions(sim: SimHandle) -> None:
    async with sim.session.ws_connect(f"{sim.ws_url}?{sim.ws_auth_query()}"
                                      "&subscribe=execution,order") as ws:
        await sim.add_fault("late_fill", delay_s=0.5)
        status, _, row = await sim.request("POST", "/order", MARKET)
        assert status == 200 and row["ordStatus"] == "Filled"
        _, _, early = await sim.request("GET", "/execution/tradeHistory")
        assert early == []
        seen: list[tuple[str, str]] = []
        deadline = asyncio.get_running_loop().time() + 3.0
        while asyncio.get_running_loop().time() < deadline:
            msg = orjson.loads((await ws.receive(timeout=3)).data)
            if msg.get("action") in ("insert", "update") and msg.get("table") in ("order",
                                                                                 "execution"):
                for r in msg["data"]:
                    seen.append((msg["table"], str(r.get("execType", r.get("ordStatus")))))
            if ("execution", "Trade") in seen:
                break
        # the order's fill is visible before its trade execution arrives
        assert ("order", "Filled") in seen and ("execution", "Trade") in seen
        assert seen.index(("order", "Filled")) < seen.index(("execution", "Trade"))
        _, _, later = await sim.request("GET", "/execution/tradeHistory")
        # one execution per price level the market order took
        assert later and {e["orderID"] for e in later} == {row["orderID"]}
        assert sum(e["lastQty"] for e in later) == 100


async def test_cancel_race_the_fill_wins(sim: SimHandle) -> None:
    # a buy just below the best ask rests at the top of the bid side
    _, _, book = await sim.request("GET", "/orderBook/L2", query={"symbol": "XBTUSD",
                                                                  "depth": "1"}, signed=False)
    best_bid = max(r["price"] for r in book if r["side"] == "Buy")
    status, _, row = await sim.request("POST", "/order", {**RESTING, "price": best_bid,
                                                          "clOrdID": "racer"})
    assert status == 200 and row["ordStatus"] == "New"
    await sim.add_fault("cancel_race")
    status, _, rows = await sim.request("DELETE", "/order", {"orderID": row["orderID"]})
    assert status == 200
    assert rows[0]["error"] == errors.cancel_state_text("Filled")
    truth = await sim.truth()
    order = next(o for o in truth["orders"] if o["orderID"] == row["orderID"])
    assert order["ordStatus"] == "Filled" and order["cumQty"] == 100
    assert truth["fault_hits"]["cancel_race"] == 1
