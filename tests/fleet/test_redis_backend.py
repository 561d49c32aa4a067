"""The Redis backend's scripts against a real redis-server (see conftest)."""

from __future__ import annotations

import asyncio
import itertools
import re
import time

import pytest
import redis.asyncio as aioredis

from venueguard.fleet.policy import BanNotice, Bucket, Scope, account_tag
from venueguard.fleet.redis_backend import RedisBackend, check_redis_url
from venueguard.fleet.testing import RedisServer

SECRET_KEY = "k3y-that-must-never-be-stored"


def _backend(server: RedisServer, account: str | None = None) -> RedisBackend:
    return RedisBackend(server.url, venue="bitmex",
                        account=account or account_tag("bitmex", SECRET_KEY))


async def _flush(server: RedisServer) -> None:
    client = aioredis.Redis.from_url(server.url)
    await client.flushall()
    await client.aclose()


async def test_reservations_of_many_clients_never_exceed_the_bucket(
        redis_server: RedisServer) -> None:
    await _flush(redis_server)
    bucket = Bucket("rest", Scope.ACCOUNT, 20, 0.5, headroom=0.0)   # 40/s, burst 20
    backends = [_backend(redis_server) for _ in range(4)]
    granted: list[float] = []

    async def client(backend: RedisBackend) -> None:
        for _ in range(15):
            wait = await backend.reserve([bucket], 10.0, count_request=True)
            assert wait is not None
            granted.append(time.monotonic() + wait)

    start = time.monotonic()
    await asyncio.gather(*(client(b) for b in backends))
    granted.sort()
    # a new bucket starts empty (the venue's may be spent): 60 requests, one every 25 ms
    assert granted[-1] - start == pytest.approx(59 * 0.025, abs=0.25)
    gaps = [b - a for a, b in itertools.pairwise(granted)]
    assert sum(gaps[:20]) >= 19 * 0.025 - 0.05          # no burst from an empty bucket
    # and once idle it fills up to its burst again
    await asyncio.sleep(max(0.0, granted[-1] - time.monotonic()) + 0.6)
    waits = [await backends[0].reserve([bucket], 10.0, count_request=False) for _ in range(20)]
    assert waits == [0.0] * 20
    for backend in backends:
        await backend.aclose()


async def test_reserve_refuses_past_max_wait(redis_server: RedisServer) -> None:
    await _flush(redis_server)
    bucket = Bucket("rest", Scope.ACCOUNT, 1, 10.0, headroom=0.0)
    backend = _backend(redis_server)
    assert await backend.reserve([bucket], 0.0, count_request=False) == 0.0
    assert await backend.reserve([bucket], 1.0, count_request=False) is None
    wait = await backend.reserve([bucket], 20.0, count_request=False)
    assert wait == pytest.approx(10.0, abs=0.1)
    await backend.aclose()


async def test_two_buckets_in_one_reservation(redis_server: RedisServer) -> None:
    await _flush(redis_server)
    minute = Bucket("rest", Scope.ACCOUNT, 6000, 60.0, headroom=0.0)
    second = Bucket("order", Scope.ACCOUNT, 2, 1.0, headroom=0.0, order_routes_only=True)
    backend = _backend(redis_server)
    waits = [await backend.reserve([minute, second], 5.0, count_request=True)
             for _ in range(3)]
    # the slower of the two rules: one every 0.5 s from an empty start
    assert waits == pytest.approx([0.0, 0.5, 1.0], abs=0.05)
    await backend.aclose()


async def test_floor_remaining_follows_the_venue(redis_server: RedisServer) -> None:
    await _flush(redis_server)
    bucket = Bucket("rest", Scope.ACCOUNT, 10, 10.0, headroom=0.0)
    backend = _backend(redis_server)
    await backend.floor_remaining(bucket, 0)     # the venue says nothing is left
    wait = await backend.reserve([bucket], 5.0, count_request=False)
    assert wait == pytest.approx(1.0, abs=0.05)
    await backend.aclose()


async def test_more_left_at_the_venue_than_the_burst_lowers_nothing(
        redis_server: RedisServer) -> None:
    """Regression: a remaining count above the burst (the venue's limit, headroom aside) set
    a negative expiry, and the script's error sent a rejoining member back to degraded."""
    await _flush(redis_server)
    bucket = Bucket("rest", Scope.ACCOUNT, 60, 60.0)          # burst 58 of the venue's 60
    backend = _backend(redis_server)
    await backend.floor_remaining(bucket, 60)
    assert await backend.reserve([bucket], 0.0, count_request=False) == 0.0
    await backend.aclose()


async def test_shared_retry_budget(redis_server: RedisServer) -> None:
    await _flush(redis_server)
    bucket = Bucket("rest", Scope.ACCOUNT, 100_000, 60.0)
    a, b = _backend(redis_server), _backend(redis_server)
    for _ in range(20):
        await a.reserve([bucket], 1.0, count_request=True)
    # allowance = 0.1 * 20 requests + 0.1/s * 10 s = 3 retries, shared by both processes
    grants = [await backend.try_retry(0.1, 0.1, 10.0) for backend in (a, b, a, b, a)]
    assert grants == [True, True, True, False, False]
    await a.aclose()
    await b.aclose()


async def test_a_ban_reaches_every_listener_fast_and_is_stored(
        redis_server: RedisServer) -> None:
    await _flush(redis_server)
    publisher = _backend(redis_server)
    listeners = [_backend(redis_server) for _ in range(3)]
    received: list[tuple[float, BanNotice]] = []
    readies = [asyncio.Event() for _ in listeners]
    tasks = [asyncio.create_task(b.listen(lambda n: received.append((time.monotonic(), n)),
                                          ready))
             for b, ready in zip(listeners, readies, strict=True)]
    for ready in readies:
        await asyncio.wait_for(ready.wait(), 5)
    notice = BanNotice(Scope.IP, "COOLDOWN", time.time() + 30, "forbidden", "403", "m1")
    sent = time.monotonic()
    await publisher.publish_ban(notice, 30.0)
    for _ in range(400):
        if len(received) >= 3:
            break
        await asyncio.sleep(0.005)
    assert [n for _, n in received] == [notice] * 3
    assert max(at for at, _ in received) - sent < 0.1
    assert await listeners[0].current_bans() == [notice]
    await publisher.publish_ban(BanNotice(Scope.IP, "HEALTHY", None, "reset", "", "m1"), 0)
    assert await listeners[0].current_bans() == []
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for backend in (publisher, *listeners):
        await backend.aclose()


async def test_lease_has_one_owner_and_expires(redis_server: RedisServer) -> None:
    await _flush(redis_server)
    a, b = _backend(redis_server), _backend(redis_server)
    assert await a.lease("a", 0.3)
    assert not await b.lease("b", 0.3)
    assert await a.lease("a", 0.3)          # renewal
    await asyncio.sleep(0.4)                # a died: its lease ran out
    assert await b.lease("b", 0.3)
    assert not await a.lease("a", 0.3)
    await a.release("a")                    # only the owner releases
    assert not await a.lease("a", 0.3)
    await b.release("b")
    assert await a.lease("a", 0.3)
    await a.aclose()
    await b.aclose()


async def test_websocket_opens_are_shared_per_ip(redis_server: RedisServer) -> None:
    await _flush(redis_server)
    a = RedisBackend(redis_server.url, venue="bitmex", account="x", egress="203.0.113.9")
    b = RedisBackend(redis_server.url, venue="bitmex", account="y", egress="203.0.113.9")
    other = RedisBackend(redis_server.url, venue="bitmex", account="x", egress="198.51.100.1")
    assert [await a.ws_open(3, 60.0), await b.ws_open(3, 60.0), await a.ws_open(3, 60.0)] \
        == [0.0, 0.0, 0.0]
    assert await b.ws_open(3, 60.0) == pytest.approx(60.0, abs=0.5)
    assert await other.ws_open(3, 60.0) == 0.0
    for backend in (a, b, other):
        await backend.aclose()


async def test_keys_name_a_hash_of_the_account_never_the_key(
        redis_server: RedisServer) -> None:
    await _flush(redis_server)
    backend = _backend(redis_server)
    await backend.reserve([Bucket("rest", Scope.ACCOUNT, 10, 1.0)], 1.0, count_request=True)
    await backend.lease("member", 5.0)
    await backend.exchange_status("member", {"regime": "NORMAL", "wall": time.time()}, 3.0)
    await backend.publish_ban(BanNotice(Scope.ACCOUNT, "BLOCKED", None, "x", "y", "m"), 5)
    client = aioredis.Redis.from_url(redis_server.url)
    keys = [k.decode() for k in await client.keys("*")]
    assert len(keys) >= 5
    tag = account_tag("bitmex", SECRET_KEY)
    assert all(k.startswith("vg:bitmex:{") for k in keys)
    assert any(tag in k for k in keys)
    for key in keys:
        kind = (await client.type(key)).decode()
        dump = str(await client.get(key)) if kind == "string" else str(
            await client.hgetall(key) if kind == "hash" else await client.zrange(key, 0, -1))
        assert SECRET_KEY not in key and SECRET_KEY not in dump
    await client.aclose()
    await backend.aclose()


def test_redis_url_is_checked() -> None:
    assert check_redis_url("redis://127.0.0.1:6379/0")
    assert check_redis_url("unix:///run/redis/redis.sock")
    for bad in ("http://x:1/0", "redis://:6379/0", "redis://h:1/abc", "redis://h:99999/0"):
        with pytest.raises(ValueError):
            check_redis_url(bad)


@pytest.mark.parametrize(("url", "why"), [
    ("redis://h:6379/\u00b2", "database must be a number"),         # '²'.isdigit() is True
    ("redis://h:6379/\u0665", "database must be a number"),         # Arabic-Indic five
    ("redis://h:\u0666\u0663/0", "port must be a whole number from 1 to 65535, not"),
    ("redis://h:0/0", "port must be a whole number from 1 to 65535, not '0'"),
    ("redis://h:+6379/0", "port must be a whole number from 1 to 65535, not '+6379'")])
def test_redis_url_numbers_are_ascii_digits_in_range(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=re.escape(why)):
        check_redis_url(url)


async def test_a_shared_answer_one_claim_at_a_time_and_publishing_ends_the_claim(
        redis_server: RedisServer) -> None:
    await _flush(redis_server)
    a, b = _backend(redis_server), _backend(redis_server)
    other = _backend(redis_server, account="another-key")
    try:
        assert await a.read_get("sweep") is None
        assert await a.read_claim("sweep", "a", ttl_s=5.0)
        assert not await b.read_claim("sweep", "b", ttl_s=5.0)      # a is reading
        assert await other.read_claim("sweep", "c", ttl_s=5.0)      # another account
        await a.read_put("sweep", b'{"x":1}', ttl_s=0.3)
        assert await b.read_get("sweep") == b'{"x":1}'
        assert await other.read_get("sweep") is None
        assert await b.read_claim("sweep", "b", ttl_s=0.2)          # the claim ended
        await asyncio.sleep(0.35)
        assert await b.read_get("sweep") is None                    # expired
        assert await a.read_claim("sweep", "a", ttl_s=5.0)          # b's claim expired
    finally:
        for backend in (a, b, other):
            await backend.aclose()
