"""Fleets of REST sessions on one account, against the simulator over loopback, sharing a real
redis-server: the limit holds, a ban reaches every member, Redis failures degrade and rejoin."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import AsyncIterator, Callable

import pytest

from venueguard.fleet import Fleet, FleetConfig, MemoryBackend, Role
from venueguard.fleet.testing import RedisServer
from venueguard.io import errors
from venueguard.io.http_session import RestConfig, RestSession
from venueguard.io.rest_transport import Timeouts
from venueguard.sim.testing import SimHandle, running_sim
from venueguard.telemetry.events import EventLog

pytestmark = pytest.mark.system


@pytest.fixture
async def sim() -> AsyncIterator[SimHandle]:
    async with running_sim(scenario="calm", seed=3, rate_msgs_s=5.0, symbols=("XBTUSD",),
                           rest_per_min=60) as handle:
        yield handle


async def _until(predicate: Callable[[], bool], timeout_s: float, step_s: float = 0.002) -> None:
    deadline = time.monotonic() + timeout_s
    for _ in range(1_000_000):
        if predicate() or time.monotonic() > deadline:
            return
        await asyncio.sleep(step_s)


async def redis_server_flush(server: RedisServer) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(server.url)
    try:
        await client.flushall()
    finally:
        await client.aclose()


def _rest(sim: SimHandle, fleet: Fleet, log: EventLog) -> RestSession:
    return RestSession(RestConfig(base_url=sim.api_url, api_key=sim.api_key,
                                  api_secret=sim.api_secret, throttle=None,
                                  timeouts=Timeouts(connect_s=1.0, sock_read_s=1.0,
                                                    total_s=30.0)),
                       events=log, fleet=fleet, rng=random.Random(1))


def _fleet(url: str | None, sim: SimHandle, log: EventLog, **kw: object) -> Fleet:
    return Fleet(FleetConfig(redis_url=url, venue="bitmex", lease_ttl_s=1.0, **kw),  # type: ignore[arg-type]
                 api_key=sim.api_key, events=log)


@pytest.mark.slow
async def test_four_sessions_stay_within_the_per_key_limit(
        sim: SimHandle, redis_server: RedisServer) -> None:
    logs = [EventLog() for _ in range(4)]
    fleets = [_fleet(redis_server.url, sim, log) for log in logs]
    for fleet in fleets:
        await fleet.start()
    rests = [_rest(sim, fleet, log) for fleet, log in zip(fleets, logs, strict=True)]

    async def hammer(rest: RestSession) -> int:
        count = 0
        end = time.monotonic() + 4.0
        while time.monotonic() < end:
            await rest.request("GET", "/instrument", query={"symbol": "XBTUSD", "count": 1})
            count += 1
        return count

    start = time.monotonic()
    try:
        counts = await asyncio.gather(*(hammer(r) for r in rests))
        elapsed = time.monotonic() - start
        responses = (await sim.truth())["responses"]
    finally:
        for rest in rests:
            await rest.close()
        for fleet in fleets:
            await fleet.aclose()
    rejected = sum(n for name, n in responses.items() if name.endswith(" 429"))
    # 60/min (learned from the venue's x-ratelimit-limit): uncoordinated, 4 tight loops
    # would be refused; together they never get more than the venue's burst and rate
    assert rejected <= 1
    assert sum(counts) <= 60 + elapsed + 1
    assert sum(counts) >= 3
    assert all(not any(r["event"] == "rest.error" for r in log.recent()) for log in logs)


async def test_a_ban_seen_by_one_stops_the_others_within_100_ms(
        sim: SimHandle, redis_server: RedisServer) -> None:
    # a fresh account in the store, as the simulator is fresh: the test before spent the
    # shared bucket, and a read then waits its turn (reads rank last) inside "seen" below
    await redis_server_flush(redis_server)
    logs = [EventLog() for _ in range(3)]
    fleets = [_fleet(redis_server.url, sim, log) for log in logs]
    for fleet in fleets:
        await fleet.start()
    rests = [_rest(sim, fleet, log) for fleet, log in zip(fleets, logs, strict=True)]
    try:
        await sim.add_fault("forbidden_403")
        seen = time.monotonic()
        with pytest.raises(errors.CoolingDown):
            await rests[0].get_positions()
        await _until(lambda: all(r.health.state.value == "COOLDOWN" for r in rests[1:]), 2.0)
        applied = time.monotonic()
        assert [r.health.state.value for r in rests] == ["COOLDOWN"] * 3
        assert applied - seen < 0.1 + 0.05   # the 403 round trip itself is in "seen"
        before = (await sim.truth())["requests"]
        for rest in rests[1:]:
            with pytest.raises(errors.CoolingDown):
                await rest.get_positions()
        assert (await sim.truth())["requests"] == before      # nothing more was sent
        assert rests[1].health.until == pytest.approx(rests[0].health.until, abs=0.2)
        state = logs[1].recent(event="venue.state")[-1]
        assert state["state"] == "COOLDOWN" and "fleet" in str(state["reason"])
    finally:
        for rest in rests:
            await rest.close()
        for fleet in fleets:
            await fleet.aclose()


@pytest.mark.slow
async def test_redis_down_degrades_once_uses_the_share_and_rejoins(
        sim: SimHandle) -> None:
    server = RedisServer.start()
    log_a, log_b = EventLog(), EventLog()
    a = _fleet(server.url, sim, log_a, fleet_size=4)
    b = _fleet(server.url, sim, log_b, fleet_size=4)
    await a.start()
    await b.start()
    rest_a, rest_b = _rest(sim, a, log_a), _rest(sim, b, log_b)
    try:
        await rest_a.get_positions()
        server.kill()
        await rest_a.get_positions()          # no crash: the local share serves it
        await asyncio.sleep(0.3)
        assert a.degraded
        assert len(log_a.recent(event="fleet.degraded")) == 1
        # alone, one process gets 60 / 4 = 15 a minute, starting from an empty share (the
        # fleet may have spent the venue's burst): one request every 60 / (15 * 0.98) s
        waits = [await a.reserve(order_route=False, first=True, max_wait_s=60.0)
                 for _ in range(5)]
        assert all(w is not None for w in waits)
        steps = [b - a for a, b in itertools.pairwise(waits)]  # type: ignore[operator]
        assert steps == pytest.approx([60 / (15 * 0.98)] * 4, abs=0.05)
        assert await a.reserve(order_route=False, first=True, max_wait_s=1.0) is None
        # a ban seen while Redis is down is kept and published on rejoin
        await sim.add_fault("forbidden_403")
        with pytest.raises(errors.CoolingDown):
            await rest_a.get_positions()
        await sim.clear_faults()
        assert rest_b.health.state.value != "COOLDOWN"
        server.restart()
        await _until(lambda: not (a.degraded or b.degraded
                                  or rest_b.health.state.value != "COOLDOWN"), 5.0, 0.05)
        assert not a.degraded and not b.degraded
        assert rest_b.health.state.value == "COOLDOWN"       # a's ban reached b on rejoin
        rejoined = log_a.recent(event="fleet.rejoined")
        assert len(rejoined) == 1 and rejoined[0]["published_bans"] == 1
        assert len(log_a.recent(event="fleet.degraded")) == 1
    finally:
        await rest_a.close()
        await rest_b.close()
        await a.aclose()
        await b.aclose()
        server.stop()


async def test_one_owner_and_takeover_within_the_lease(redis_server: RedisServer,
                                                       sim: SimHandle) -> None:
    fleets = [_fleet(redis_server.url, sim, EventLog()) for _ in range(3)]
    for fleet in fleets:
        await fleet.start()
    try:
        await asyncio.sleep(0.5)
        roles = [f.role() for f in fleets]
        assert roles.count(Role.OWNER) == 1 and roles.count(Role.FOLLOWER) == 2
        owner = fleets[roles.index(Role.OWNER)]
        # the owner dies without releasing: its lease (1 s) runs out, another takes it
        for task in owner._tasks:
            task.cancel()
        died = time.monotonic()
        rest = [f for f in fleets if f is not owner]
        await _until(lambda: any(f.role() is Role.OWNER for f in rest), 3.0, 0.02)
        assert [f.role() for f in rest].count(Role.OWNER) == 1
        assert time.monotonic() - died < 1.0 + 0.3
    finally:
        for fleet in fleets:
            await fleet.aclose()


async def test_in_process_backend_needs_no_setup(sim: SimHandle) -> None:
    backend = MemoryBackend()
    logs = [EventLog(), EventLog()]
    fleets = [Fleet(FleetConfig(), api_key=sim.api_key, events=log, backend=backend)
              for log in logs]
    for fleet in fleets:
        await fleet.start()
    rests = [_rest(sim, f, log) for f, log in zip(fleets, logs, strict=True)]
    try:
        await sim.add_fault("cloudflare_1006")
        with pytest.raises(errors.Blocked):
            await rests[0].get_positions()
        await asyncio.sleep(0.01)
        assert rests[1].health.state.value == "BLOCKED"
        rests[0].reset_venue("operator")
        await asyncio.sleep(0.01)
        assert rests[1].health.state.value == "HEALTHY"
        assert [f.role() for f in fleets].count(Role.OWNER) == 1
    finally:
        for rest in rests:
            await rest.close()
        for fleet in fleets:
            await fleet.aclose()
