"""A member's resting orders reach the lease owner from its order runtime, with no status
source wired by hand: the owner's dead man's switch then covers them.

Regression: only the monitor (and the chaos harness) put ``resting`` in what a member
published, so a library bot built as documented (``OrdersRuntime(..., fleet=fleet)``) had an
owner whose switch armed for the owner's own orders only.
"""

from __future__ import annotations

import asyncio
import random
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))
from test_order_manager import INTENT, FakeVenue, config

from venueguard.fleet import Fleet, FleetConfig, MemoryBackend
from venueguard.io.fleet_link import Role
from venueguard.io.journal import Journal
from venueguard.io.orders_runtime import OrdersRuntime, RuntimeConfig
from venueguard.telemetry.events import EventLog
from venueguard.venues.bitmex.adapter import BitmexAdapter


async def _until(test: Callable[[], bool], limit_s: float = 5.0) -> None:
    async with asyncio.timeout(limit_s):
        for _ in range(100_000):
            if test():
                return
            await asyncio.sleep(0.02)


async def test_a_members_runtime_publishes_its_resting_orders_to_the_owner(
        tmp_path: Path) -> None:
    backend = MemoryBackend()
    cfg = FleetConfig(lease_ttl_s=1.0, status_s=0.05)
    owner = Fleet(cfg, backend=backend, events=EventLog(), member="a")
    await owner.start()
    await _until(lambda: owner.role() is Role.OWNER)
    member = Fleet(cfg, backend=backend, events=EventLog(), member="b")
    await member.start()
    runtime = OrdersRuntime(
        BitmexAdapter(FakeVenue()), Journal.open(tmp_path / "b.db"), symbols=("XBTUSD",),
        events=EventLog(), rng=random.Random(1),
        config=RuntimeConfig(manager=config(), dms=None), regime_source=lambda: "NORMAL",
        fleet=member)
    try:
        await runtime.start()
        assert owner.others_resting() == 0
        await runtime.submit(INTENT)
        await runtime.submit(INTENT)
        assert runtime.manager.resting_count() == 2
        await _until(lambda: owner.others_resting() == 2)
        assert member.role() is Role.FOLLOWER
    finally:
        await runtime.stop(clean=False)
        runtime.manager.journal.close()
        await member.aclose()
        await owner.aclose()
