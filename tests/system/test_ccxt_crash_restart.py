"""Kill -9 a guarded ccxt bot at random points; every restart on its journal settles what was
in doubt, and nothing is doubled or forgotten.

ccxt's bitmex class against the BitMEX dialect and its binanceusdm class against the Binance
USD-M dialect, each under ``flaky-acks`` stepped once per round (answers lost after acceptance,
502s, orders hidden for a while, late fills, cancel races). The bot is killed with SIGKILL
before and after its own restart reconciliation; the next one restarts on the same default
journal. At the end a guarded exchange on that journal converges (nothing UNKNOWN or pending,
exactly the venue's open orders open locally, the venue's position), and the simulator's truth
shows no client id twice, no intent POSTed twice and no order of ours unknown to the journal.
``VENUEGUARD_CCXT_CRASH_KILLS`` (default 50) kills are shared by the two dialects;
``VENUEGUARD_CCXT_CRASH_SEED`` draws another run.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from ccxt_crash_worker import DIALECTS, exchange_for
from test_crash_restart import RoundFaults
from zygote_kit import zygote

from venueguard.core.orders import ClOrdIdGenerator, OrderState
from venueguard.io.journal import Journal
from venueguard.sim.binance.limits import Limits
from venueguard.sim.binance.testing import running_binance_sim
from venueguard.sim.scenario import Scenario
from venueguard.sim.testing import SimHandle, running_sim

pytestmark = [pytest.mark.system, pytest.mark.slow]

KILLS = int(os.environ.get("VENUEGUARD_CCXT_CRASH_KILLS", "50"))
SEED = int(os.environ.get("VENUEGUARD_CCXT_CRASH_SEED", "20261207"))
WORKER = Path(__file__).with_name("ccxt_crash_worker.py")
PENDING = frozenset({OrderState.UNKNOWN, OrderState.PENDING_NEW, OrderState.PENDING_CANCEL,
                     OrderState.PENDING_AMEND})


@asynccontextmanager
async def simulator(dialect: str, scenario: Scenario) -> AsyncIterator[SimHandle]:
    limits: dict[str, Any] = {"rest_per_min": 1_000_000, "rest_unauth_per_min": 1_000_000,
                              "order_per_s": 100_000, "scenario": scenario,
                              "seed": SEED % 1000}
    if dialect == "bitmex":
        async with running_sim(**limits) as sim:
            yield sim
    else:
        async with running_binance_sim(**limits) as sim:
            sim.venue.configure(limits=Limits(weight_per_min=10_000_000,
                                              orders_per_10s=1_000_000,
                                              orders_per_min=10_000_000))
            yield sim


def ours(truth: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in truth["orders"] if str(r.get("clOrdID") or "").startswith("vg")]


async def converged(exchange: Any, sim: SimHandle, dialect: str, timeout_s: float) -> str:
    """Poll until the guard agrees with the venue's truth; '' or a description of the gap."""
    manager = exchange.orders.runtime.manager
    d = DIALECTS[dialect]
    # the engine counts contracts; Binance's quantity is base units (per_unit contracts each)
    per_unit = 1 if dialect == "bitmex" else sim.server.binance.symbols[d.venue_symbol].per_unit
    gap = "not checked"
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                truth = await sim.truth()
                pending = [o.cl_ord_id for o in manager.table.orders.values()
                           if o.state in PENDING]
                local = {o.cl_ord_id for o in manager.open_orders()}
                venue_open = {r["clOrdID"] for r in ours(truth)
                              if r.get("ordStatus") in ("New", "PartiallyFilled")}
                position = next((float(p["currentQty"]) for p in truth["positions"]
                                 if p["symbol"] == d.venue_symbol), 0.0) / per_unit
                gap = ""
                if not manager.ready:
                    gap = "not ready"
                elif pending:
                    gap = "pending " + "; ".join(
                        f"{cl} {manager.table.orders[cl].state.value}" for cl in pending[:3])
                elif unseen := {r["clOrdID"] for r in ours(truth)} - set(manager.table.orders):
                    gap = f"venue orders unknown locally {sorted(unseen)[:5]}"
                elif {cl for cl in local if cl.startswith("vg")} != venue_open:
                    odd = (local ^ venue_open)
                    rows = [(r["clOrdID"], r.get("ordStatus")) for r in ours(truth)
                            if r["clOrdID"] in odd]
                    hist = [(cl, [(t.kind, t.to_state.value) for t in
                                  manager.table.orders[cl].history]) for cl in odd
                            if cl in manager.table.orders]
                    gap = (f"open local-only {local - venue_open} venue-only "
                           f"{venue_open - local}; venue {rows}; local {hist}")
                elif abs(manager.position(d.symbol) - position) > 1e-9:
                    gap = (f"position local {manager.position(d.symbol)} venue {position}; "
                           f"{_fill_gaps(manager, truth, per_unit)}")
                if not gap:
                    return ""
                await asyncio.sleep(0.1)
    except TimeoutError:
        return gap


def _fill_gaps(manager: Any, truth: dict[str, Any], per_unit: int) -> str:
    """Orders whose filled quantity differs between the venue and the guard (for a failure)."""
    venue: Counter[str] = Counter()
    for row in truth["executions"]:
        if row.get("execType") == "Trade" and row.get("clOrdID"):
            venue[row["clOrdID"]] += float(row.get("lastQty") or 0) / per_unit
    local = {cl: float(o.cum_qty) for cl, o in manager.table.orders.items()}
    odd = {cl: (local.get(cl), round(qty, 9)) for cl, qty in venue.items()
           if abs(local.get(cl, 0.0) - qty) > 1e-9}
    odd.update({cl: (qty, 0) for cl, qty in local.items() if qty and cl not in venue})
    return f"cum local/venue by client id {dict(list(odd.items())[:6])}"


@pytest.mark.parametrize("dialect", ["bitmex", "binanceusdm"])
async def test_kills_of_a_guarded_ccxt_bot_converge_without_duplicates(dialect: str) -> None:
    kills = KILLS // 2
    rng = random.Random(SEED + len(dialect))
    stats: Counter[str] = Counter()
    start = time.monotonic()
    # flaky-acks' 200 s cycle in the rounds: each of its five faults is on for a fifth of them
    faults = RoundFaults("flaky-acks", step_s=200.0 / kills)
    async with zygote(WORKER) as z, simulator(dialect, faults.market()) as sim:
        for round_no in range(kills):
            await faults.enter(sim, round_no)
            pid = await z.spawn(dialect, sim.base_url, SEED + round_no)
            if rng.random() < 0.2:           # kill early: maybe during its own restart
                await asyncio.sleep(rng.uniform(0.0, 0.5))
                stats["early"] += 1
            else:
                assert await z.wait_line("ready", pid, 30.0), f"worker {pid} never got ready"
                await asyncio.sleep(rng.uniform(0.05, 0.6))
            z.kill(pid)
            assert await z.wait_line("exited", pid, 10.0), f"worker {pid} did not die"
            assert not z.failures, z.failures
        await sim.clear_faults()
        exchange = exchange_for(dialect, sim.base_url, read_timeout_ms=2000)
        try:
            await exchange.start_orders()
            gap = await converged(exchange, sim, dialect, 30.0)
            journal_path = exchange.orders.journal_path()
        finally:
            await exchange.close()
        assert gap == "", f"final: no convergence: {gap}"
        truth = await sim.truth()
    counts = Counter(r["clOrdID"] for r in ours(truth))
    assert counts and max(counts.values()) == 1, "a client id exists twice at the venue"
    attempts = {k: v for k, v in truth["clOrdID_attempts"].items() if k.startswith("vg")}
    assert max(attempts.values()) == 1, "an intent was POSTed twice"
    assert journal_path is not None
    with Journal.open(journal_path) as journal:
        journaled = set(journal.load_table(ClOrdIdGenerator(random.Random(0)), 0.0).orders)
    forgotten = set(counts) - journaled
    assert not forgotten, f"venue orders unknown to the journal: {forgotten}"
    assert sum(z.orders.values()) >= kills, "the bots hardly traded"
    hits = truth["fault_hits"]
    assert hits.get("timeout_after_accept", 0) > 0, f"no answer was ever lost: {hits}"
    restarts = [r for r in z.ready if r[0] > 0]
    unfinished = sum(r[0] for r in restarts)
    at_once = sum(r[1] for r in restarts)
    adopted = sum(r[3] for r in z.ready)
    print(f"\n{dialect}: {kills} kills ({stats['early']} before ready), {len(ours(truth))} "
          f"orders, {unfinished} unfinished at restarts ({at_once} resolved at once, "
          f"{adopted} adopted); fault hits {truth['fault_hits']}; "
          f"{time.monotonic() - start:.1f} s")
