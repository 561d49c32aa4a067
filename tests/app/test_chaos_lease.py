"""The lease handover of ``venueguard chaos --fleet``: the seed's draw, the cut store, and the
checks of :class:`~venueguard.app.chaos_lease.OwnerWatch`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from venueguard.app.chaos_lease import HANDOVER_MARGIN_S, CutStore, OwnerWatch, cut_owner
from venueguard.app.chaos_plan import CUT_WAYS, LeaseCut, PlanConfig, lease_cut_for, plan_for
from venueguard.fleet import Fleet, FleetConfig, MemoryBackend
from venueguard.fleet.policy import BanNotice, Scope
from venueguard.io.clock import monotonic
from venueguard.io.fleet_link import Role
from venueguard.telemetry.events import EventLog


def test_the_cut_is_drawn_from_the_seed_alone() -> None:
    cuts = [lease_cut_for(seed) for seed in range(1, 201)]
    assert cuts == [lease_cut_for(seed) for seed in range(1, 201)]
    planned = [c for c in cuts if c is not None]
    assert 130 <= len(planned) <= 170                  # three in four, give or take
    assert {c.way for c in planned} == set(CUT_WAYS)
    assert len({(c.start_s, c.duration_s) for c in planned}) > 100
    window = PlanConfig().window_s
    assert all(0.0 <= c.start_s <= 0.8 * window and 1.3 <= c.duration_s <= 2.0
               for c in planned)
    bounded = lease_cut_for(next(s for s, c in enumerate(cuts, 1) if c), min_duration_s=5.0,
                            max_duration_s=6.0)
    assert bounded is not None and 5.0 <= bounded.duration_s <= 6.0
    # a stream of its own: the seed's faults and moves are those of a single bot
    assert plan_for(7) == plan_for(7)
    with pytest.raises(ValueError, match="min_duration_s"):
        lease_cut_for(1, min_duration_s=2.0, max_duration_s=1.0)


async def test_a_refused_store_fails_every_call_and_drops_the_subscription() -> None:
    inner = MemoryBackend()
    store = CutStore(inner)
    heard: list[BanNotice] = []
    ready = asyncio.Event()
    listening = asyncio.get_running_loop().create_task(store.listen(heard.append, ready))
    await ready.wait()
    notice = BanNotice(Scope.ACCOUNT, "COOLDOWN", None, "rate_limited", "x", "other")
    await inner.publish_ban(notice, 1.0)
    assert heard == [notice]
    store.cut("refused")
    with pytest.raises(ConnectionRefusedError):
        await store.lease("a", 1.0)
    with pytest.raises(ConnectionResetError):
        await listening
    await inner.publish_ban(notice, 1.0)
    assert heard == [notice]                           # nothing heard once cut
    store.restore()
    assert await store.lease("a", 1.0) and store.granted
    with pytest.raises(ValueError, match="unknown cut"):
        store.cut("gone")


async def test_a_hung_store_answers_nothing_until_restored() -> None:
    inner = MemoryBackend()
    store = CutStore(inner)
    store.cut("hung")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await store.lease("a", 1.0)
    assert await inner.lease("b", 1.0)                 # the timed-out call reached nothing
    late = asyncio.get_running_loop().create_task(store.lease("a", 1.0))
    await asyncio.sleep(0.02)
    assert not late.done()
    store.restore()
    assert await late is False                         # answered late: b holds it
    assert store.granted is False


@dataclass
class _Role:
    role_now: Role = Role.FOLLOWER

    def role(self) -> Role:
        return self.role_now


@dataclass
class _Member:
    name: str
    fleet: _Role
    store: CutStore


@dataclass
class _Real:
    name: str
    fleet: Fleet
    store: CutStore


def _members(n: int) -> list[_Member]:
    return [_Member(f"m{i}", _Role(Role.OWNER if i == 0 else Role.FOLLOWER),
                    CutStore(MemoryBackend())) for i in range(n)]


def test_the_lease_must_change_hands_within_the_ttl_and_the_margin() -> None:
    members = _members(2)
    watch = OwnerWatch(members, 1.0)
    watch.on_cut("m0", 10.0, "hung")
    members[0].fleet.role_now = Role.ALONE
    watch.sample(10.5)
    watch.sample(10.0 + 1.0 + HANDOVER_MARGIN_S + 0.05)
    members[1].fleet.role_now = Role.OWNER
    watch.sample(11.6)                                 # too late
    watch.finish()
    assert [v.message for v in watch.violations] == [
        "fleet: the lease did not change hands within 1.5 s of m0 being cut off "
        "(hung; m1 after 1.60 s)"]

    never = OwnerWatch(_members(2), 1.0)
    never.on_cut("m0", 0.0, "stop")
    never.finish()
    assert "(stop; never)" in never.violations[0].message

    in_time = OwnerWatch(members, 1.0)
    in_time.on_cut("m0", 10.0, "refused")
    in_time.sample(11.2)
    in_time.finish()
    assert in_time.violations == [] and in_time.taken == ("m1", 11.2)


def test_the_cut_owner_acting_as_owner_after_its_lease_lapsed_is_a_violation() -> None:
    members = _members(2)
    watch = OwnerWatch(members, 1.0)
    watch.on_cut("m0", 10.0, "refused")
    watch.sample(10.9)                                 # its lease may still run
    assert watch.violations == []
    watch.sample(11.0)
    watch.sample(11.05)                                # said once
    assert [v.message for v in watch.violations] == [
        "fleet: m0 still acts as the lease owner 1.00 s after it was cut off "
        "(refused; the lease lives 1 s)"]
    restored = OwnerWatch(members, 1.0)
    restored.on_cut("m0", 10.0, "hung")
    restored.on_restore(10.5)                          # back, and the lease was free
    restored.sample(11.5)
    assert restored.violations == []


async def test_the_owner_switch_must_be_armed_while_orders_rest() -> None:
    members = _members(2)
    watch = OwnerWatch(members, 1.0)
    resting = {"vgm1-a"}

    async def open_orders() -> set[str]:
        return set(resting)

    armed: set[str] = set()
    found = await watch.check_switch(open_orders, armed.__contains__, 0.2)
    assert [v.message for v in found] == [
        "fleet: orders rested at the venue 0.2 s after convergence and the lease owner's "
        "dead man's switch was neither armed nor arming (m0)"]
    armed.add("m0")
    assert await watch.check_switch(open_orders, armed.__contains__, 0.2) == []
    resting.clear()                                    # nothing rests: nothing to arm
    assert await watch.check_switch(open_orders, lambda _: False, 0.2) == []


class _NoBots:
    async def stop(self, name: str) -> None:
        raise AssertionError("a store cut stops no bot")

    async def restart(self, name: str) -> None:
        raise AssertionError("a store cut starts no bot")


async def test_stopping_the_owner_bot_and_starting_it_again() -> None:
    members = _members(2)
    watch = OwnerWatch(members, 1.0)
    said: list[str] = []

    class Bots:
        async def stop(self, name: str) -> None:
            said.append(f"stop {name}")
            members[0].fleet.role_now = Role.FOLLOWER     # gave the lease up
            members[1].fleet.role_now = Role.OWNER

        async def restart(self, name: str) -> None:
            said.append(f"restart {name}")

    sampler = asyncio.get_running_loop().create_task(watch.run())
    await cut_owner(LeaseCut("stop", 0.0, 0.1), members, watch, monotonic(), Bots())
    sampler.cancel()
    assert said == ["stop m0", "restart m0"]
    assert watch.cut_member == "m0" and watch.restored_at is not None
    assert watch.restored_at - (watch.cut_at or 0) >= 0.1
    assert not members[0].store.way                    # the store was never cut
    watch.finish()
    assert watch.violations == [] and watch.taken is not None and watch.taken[0] == "m1"


async def test_cutting_the_owner_store_hands_the_lease_to_another_member() -> None:
    """Real members over one backend: the owner's store refuses, it goes alone, its lease
    lapses and the other member takes it; restored, it rejoins as a follower."""
    backend = MemoryBackend()
    logs = [EventLog(), EventLog()]
    stores = [CutStore(backend), CutStore(backend)]
    fleets = [Fleet(FleetConfig(lease_ttl_s=1.0, probe_s=0.05), backend=store, events=log,
                    member=f"m{i}") for i, (store, log) in enumerate(zip(stores, logs,
                                                                         strict=True))]
    await fleets[0].start()
    await fleets[1].start()
    members = [_Real(f"m{i}", fleets[i], stores[i]) for i in range(2)]
    watch = OwnerWatch(members, 1.0)
    sampler = asyncio.get_running_loop().create_task(watch.run())
    try:
        assert watch.owners() == ["m0"]
        await cut_owner(LeaseCut("refused", 0.0, 1.3), members, watch, monotonic(), _NoBots())
        await asyncio.sleep(0.5)                       # three good probes: rejoined
        assert watch.cut_member == "m0" and watch.taken is not None
        assert watch.taken[0] == "m1" and watch.taken[1] - (watch.cut_at or 0) < 1.5
        assert fleets[0].role() is Role.FOLLOWER and watch.owners() == ["m1"]
        watch.finish()
        assert watch.violations == []
        assert [r["event"] for r in logs[0].recent()
                if r["event"] in ("fleet.lease", "fleet.degraded", "fleet.rejoined")] == [
            "fleet.lease", "fleet.lease", "fleet.degraded", "fleet.rejoined"]
    finally:
        sampler.cancel()
        for fleet in fleets:
            await fleet.aclose()
