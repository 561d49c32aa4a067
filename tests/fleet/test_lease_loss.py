"""An owner that loses its store says once that it lost the lease."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from venueguard.fleet import Fleet, FleetConfig, MemoryBackend
from venueguard.io.fleet_link import Role
from venueguard.telemetry.events import EventLog


class _Store(MemoryBackend):
    """The store as one member sees it: lease renewals can hang (``hang``), shared reads
    fail."""

    def __init__(self) -> None:
        super().__init__()
        self.hang = False
        self.pending = asyncio.Event()

    async def lease(self, member: str, ttl_s: float) -> bool:
        if self.hang:
            self.pending.set()
            await asyncio.Event().wait()        # until the caller's time limit
        return await super().lease(member, ttl_s)

    async def read_get(self, name: str) -> bytes | None:
        raise ConnectionResetError("store gone")


async def _until(test: Callable[[], bool], limit_s: float = 3.0) -> None:
    async with asyncio.timeout(limit_s):
        for _ in range(100_000):
            if test():
                return
            await asyncio.sleep(0.01)


def _lease_events(log: EventLog) -> list[bool]:
    return [bool(r["owner"]) for r in log.recent(event="fleet.lease")]


async def test_the_owner_degraded_while_renewing_says_it_lost_the_lease_once() -> None:
    store, log = _Store(), EventLog()
    fleet = Fleet(FleetConfig(lease_ttl_s=1.0), backend=store, events=log, member="a")
    await fleet.start()
    try:
        await _until(lambda: fleet.role() is Role.OWNER)
        store.hang = True
        await _until(store.pending.is_set)          # a renewal is in flight...
        assert await fleet.shared_read("sweep") is None   # ...when another call fails
        assert fleet.degraded and fleet.role() is Role.ALONE
        await asyncio.sleep(0.4)                    # the renewal times out (0.25 s)
        assert _lease_events(log) == [True, False]
    finally:
        await fleet.aclose()


async def test_an_owner_that_stops_says_it_gave_the_lease_up() -> None:
    log = EventLog()
    fleet = Fleet(FleetConfig(lease_ttl_s=1.0), backend=MemoryBackend(), events=log,
                  member="a")
    await fleet.start()
    await _until(lambda: fleet.role() is Role.OWNER)
    await fleet.aclose()
    assert _lease_events(log) == [True, False]
    assert log.recent(event="fleet.lease")[-1]["released"] is True
