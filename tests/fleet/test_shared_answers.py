"""The fleet's shared answers (``Fleet.shared_read`` / ``claim_read`` / ``publish_read``): one
claim at a time, publishing ends it, and a store that fails degrades the member, which then
reads alone (None: nothing shared, nothing published)."""

from __future__ import annotations

from venueguard.fleet import Fleet, FleetConfig, MemoryBackend
from venueguard.io.clock import ManualClock
from venueguard.telemetry.events import EventLog


class _Broken(MemoryBackend):
    async def read_get(self, name: str) -> bytes | None:
        raise ConnectionError("store gone")


async def test_one_claim_at_a_time_and_the_answer_ends_it() -> None:
    clock = ManualClock()
    backend = MemoryBackend(clock)
    a = Fleet(FleetConfig(), clock=clock, backend=backend, member="a")
    b = Fleet(FleetConfig(), clock=clock, backend=backend, member="b")
    assert a.sharing() and await a.shared_read("sweep") is None
    assert await a.claim_read("sweep", 5.0) is True
    assert await b.claim_read("sweep", 5.0) is False
    assert await a.publish_read("sweep", b"answer", 2.0)
    assert await b.shared_read("sweep") == b"answer"
    assert await b.claim_read("sweep", 5.0) is True          # the answer ended a's claim
    clock.advance(2.1)
    assert await b.shared_read("sweep") is None              # expired
    clock.advance(3.0)
    assert await a.claim_read("sweep", 5.0) is True          # b's claim expired


async def test_a_failing_store_means_reading_alone() -> None:
    clock = ManualClock()
    events = EventLog()
    fleet = Fleet(FleetConfig(), clock=clock, backend=_Broken(clock), events=events)
    assert await fleet.shared_read("sweep") is None
    assert fleet.degraded and not fleet.sharing()
    assert await fleet.claim_read("sweep", 5.0) is None
    assert not await fleet.publish_read("sweep", b"x", 1.0)
    await fleet.aclose()
