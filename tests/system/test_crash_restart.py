"""Kill -9 a trading process fifty times; every restart converges and nothing is doubled.

Guards invariants 1-3 of docs/invariants.md across crashes: a process trading against the
simulator under ``flaky-acks`` (its schedule stepped once per round, so that every fault of the
scenario is active during the run however fast the machine is) is killed with SIGKILL at seeded
random points, before and after it finished its own restart reconciliation. After each kill an
order manager on the same journal restarts and must converge: nothing UNKNOWN or pending, and
exactly the venue's open orders open locally. At the end the simulator's truth shows no clOrdID
twice, no clOrdID posted twice, no venue order unknown to the journal, and the same position as
the journal.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from crash_worker import SYMBOL, open_runtime
from zygote_kit import zygote

from venueguard.core.orders import ClOrdIdGenerator, OrderState
from venueguard.io.journal import Journal
from venueguard.io.orders_runtime import OrdersRuntime
from venueguard.sim.faults import FaultRequest
from venueguard.sim.scenario import Scenario, load_scenario
from venueguard.sim.testing import SimHandle, running_sim

pytestmark = pytest.mark.system

KILLS = int(os.environ.get("VENUEGUARD_CRASH_KILLS", "50"))  # e.g. 1000 for a long run


def loop_time() -> float:
    return asyncio.get_running_loop().time()


SEED = 20261123
WORKER = Path(__file__).with_name("crash_worker.py")
PENDING = frozenset({OrderState.UNKNOWN, OrderState.PENDING_NEW, OrderState.PENDING_CANCEL,
                     OrderState.PENDING_AMEND})


class RoundFaults:
    """A shipped scenario's faults on a clock that moves one step per round, not with the wall.

    Round ``n`` meets the faults the scenario has active at ``n * step_s`` (modulo its repeat),
    however fast the machine runs the rounds. On a wall-clock schedule a loaded machine ran
    fewer rounds a second, whole fault windows passed between two rounds, and a run could end
    without a single lost answer to recover from. The simulator gets the scenario's market
    without its schedule (:meth:`market`); :meth:`enter` posts each round's faults.
    """

    def __init__(self, name: str, step_s: float) -> None:
        self.scenario = load_scenario(name)
        self.step_s = step_s
        self._posted: tuple[FaultRequest, ...] | None = None

    def market(self) -> Scenario:
        return replace(self.scenario, faults=())

    def due(self, round_no: int) -> tuple[FaultRequest, ...]:
        at = round_no * self.step_s
        if self.scenario.repeat_s:
            at %= self.scenario.repeat_s
        return tuple(f.request for f in self.scenario.faults if f.at_s <= at and (
            f.request.duration_s is None or at < f.at_s + f.request.duration_s))

    async def enter(self, sim: SimHandle, round_no: int) -> None:
        due = self.due(round_no)
        if due != self._posted:
            await sim.clear_faults()
            for request in due:
                await sim.add_fault(request.kind, **request.params)
            self._posted = due


def venue_open(truth: dict[str, Any]) -> set[str]:
    return {r["clOrdID"] for r in truth["orders"]
            if r.get("ordStatus") in ("New", "PartiallyFilled") and r.get("clOrdID")}


async def converged(runtime: OrdersRuntime, sim: SimHandle, timeout_s: float,
                    position: bool = False) -> str:
    """Poll until the manager agrees with the venue's truth; '' or a description of the gap."""
    manager = runtime.manager
    gap = "not checked"
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                truth = await sim.truth()
                pending = [o.cl_ord_id for o in manager.table.orders.values()
                           if o.state in PENDING]
                local = {o.cl_ord_id for o in manager.open_orders()}
                gap = ""
                if not manager.ready:
                    gap = "not ready"
                elif pending:
                    gap = "pending " + "; ".join(
                        f"{cl} {manager.table.orders[cl].state.value} "
                        f"{[(t.kind, t.to_state.value) for t in manager.table.orders[cl].history]}"
                        for cl in pending[:3])
                elif unseen := {r["clOrdID"] for r in truth["orders"]} - set(manager.table.orders):
                    gap = f"venue orders unknown locally {sorted(unseen)[:5]}"
                elif local != venue_open(truth):
                    gap = f"open local-only {local - venue_open(truth)} " \
                          f"venue-only {venue_open(truth) - local}"
                elif position:
                    venue = next((p["currentQty"] for p in truth["positions"]
                                  if p["symbol"] == SYMBOL), 0)
                    if manager.position(SYMBOL) != venue:
                        gap = f"position local {manager.position(SYMBOL)} venue {venue}"
                if not gap:
                    return ""
                await asyncio.sleep(0.05)
    except TimeoutError:
        return gap


async def position_detail(runtime: OrdersRuntime, sim: SimHandle) -> str:
    """Which executions the two sides disagree on (for a failure message)."""
    truth = await sim.truth()
    venue = {r["execID"]: r["clOrdID"] for r in truth["executions"]
             if r.get("execType") == "Trade"}
    local = {e: o.cl_ord_id for o in runtime.manager.table.orders.values() for e in o.exec_ids}
    return (f"executions only local {sorted(set(local) - set(venue))[:5]}, only at the venue "
            f"{sorted(set(venue) - set(local))[:5]}, venue positions {truth['positions']}")


@pytest.mark.slow
async def test_fifty_kills_converge_without_duplicates(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    journal_path = tmp_path / "crash.db"
    # flaky-acks' 200 s cycle in fifty rounds: each of its five faults is on for seven or eight
    faults = RoundFaults("flaky-acks", step_s=4.0)
    stats: Counter[str] = Counter()
    async with zygote(WORKER) as z, \
            running_sim(scenario=faults.market(), seed=SEED % 1000, rest_per_min=1_000_000,
                        rest_unauth_per_min=1_000_000, order_per_s=100_000) as sim:
        for round_no in range(KILLS):
            await faults.enter(sim, round_no)
            t0 = loop_time()
            pid = await z.spawn(sim.base_url, journal_path, SEED + round_no)
            if rng.random() < 0.2:        # kill early: maybe during its own restart
                await asyncio.sleep(rng.uniform(0.0, 0.5))
                stats["early"] += 1
            else:
                assert await z.wait_line("ready", pid, 30.0), f"worker {pid} never got ready"
                stats["t_ready"] += loop_time() - t0
                await asyncio.sleep(rng.uniform(0.02, 0.6))
            z.kill(pid)
            assert await z.wait_line("exited", pid, 10.0), f"worker {pid} did not die"
            assert not z.failures, z.failures
            t1 = loop_time()
            async with open_runtime(sim.base_url, journal_path, seed=SEED * 7 + round_no,
                                    config=None) as runtime:
                stats["t_start"] += loop_time() - t1
                gap = await converged(runtime, sim, 25.0)
                stats["t_conv"] += loop_time() - t1
                assert gap == "", f"round {round_no}: no convergence: {gap} {stats}"
                resolved = Counter(str(r.get("kind")) for r in
                                   runtime.events.recent(event="reconcile.resolved"))
                stats["unknown_resolved"] += resolved["unknown"]
                stats["never_placed"] += resolved["unknown_not_placed"]
        await sim.clear_faults()
        async with open_runtime(sim.base_url, journal_path, seed=SEED * 11) as runtime:
            gap = await converged(runtime, sim, 30.0, position=True)
            detail = await position_detail(runtime, sim) if gap else ""
            assert gap == "", f"final: no convergence: {gap}; {detail}"
        truth = await sim.truth()

    ours = [r for r in truth["orders"] if str(r.get("clOrdID", "")).startswith("vg-")]
    counts = Counter(r["clOrdID"] for r in truth["orders"] if r.get("clOrdID"))
    assert ours and max(counts.values()) == 1, "a clOrdID exists twice at the venue"
    attempts = {k: v for k, v in truth["clOrdID_attempts"].items() if k.startswith("vg-")}
    assert max(attempts.values()) == 1, "an intent was POSTed twice"
    with Journal.open(journal_path) as journal:
        journaled = set(journal.load_table(ClOrdIdGenerator(random.Random(0)), 0.0).orders)
    unknown_to_journal = {r["clOrdID"] for r in truth["orders"]} - journaled
    assert not unknown_to_journal, f"venue orders unknown to the journal: {unknown_to_journal}"
    assert sum(z.orders.values()) >= KILLS, "the workers hardly traded"
    hits = truth["fault_hits"]
    for kind in ("timeout_after_accept", "bad_gateway_after_accept"):
        assert hits.get(kind, 0) > 0, f"{kind} never hit: {hits}"
    assert stats["unknown_resolved"] + stats["never_placed"] > 0, "no restart met an UNKNOWN"
    print(f"\n{len(ours)} orders, {KILLS} kills ({stats['early']} before ready); after restarts "
          f"{stats['unknown_resolved']} UNKNOWN found at the venue, {stats['never_placed']} "
          f"proven never placed; fault hits {hits}; seconds: spawn-to-ready "
          f"{stats['t_ready']:.1f}, restart {stats['t_start']:.1f}, restart-to-converged "
          f"{stats['t_conv']:.1f}")
