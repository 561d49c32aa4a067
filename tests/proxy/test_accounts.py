"""Venue health per account key: a ban of key A refuses A's requests while key B's pass, at one
proxy and across proxies sharing Redis; a ban of the egress IP stops every key; the raw key is
never logged or exposed, only its hash."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import aiohttp
import orjson
import pytest
from aiohttp import web

from venueguard.core.classify import Outcome, classify
from venueguard.core.health import VenueState
from venueguard.core.kinds import Kind
from venueguard.fleet.policy import account_tag
from venueguard.fleet.testing import RedisServer, RedisUnavailable
from venueguard.proxy.accounts import PUBLIC, Accounts, key_of
from venueguard.proxy.dialects import DIALECTS
from venueguard.proxy.testing import ProxyHandle, running_proxy
from venueguard.telemetry.events import EventLog

KEY_A = "kA-7f3c9e1d-never-logged"
KEY_B = "kB-2b8a4f60-never-logged"
KEY_C = "kC-91d0e2aa-never-logged"
_PATHS = {"bitmex": "/api/v1/order", "binance-usdm": "/fapi/v1/order"}


# -- the registry, without sockets ------------------------------------------------------------
class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now

    def wall_ms(self) -> int:
        return int(1_700_000_000_000 + self.now * 1000)


def _accounts(max_accounts: int = 256) -> tuple[Accounts, EventLog, _Clock]:
    events = EventLog(keep=100)
    clock = _Clock()
    dialect = DIALECTS["bitmex"]
    return (Accounts(venue="bitmex", rules=dialect.rules(), events=events, metrics=None,
                     clock=clock, max_accounts=max_accounts), events, clock)


def test_the_account_is_the_hash_of_the_dialects_key_header() -> None:
    accounts, _, _ = _accounts()
    bitmex, binance = DIALECTS["bitmex"].key_headers, DIALECTS["binance-usdm"].key_headers
    assert accounts.tag_of({"api-key": KEY_A}, bitmex) == account_tag("bitmex", KEY_A)
    assert accounts.tag_of({"X-MBX-APIKEY": KEY_A}, bitmex) == PUBLIC  # not BitMEX's header
    assert key_of({"X-MBX-APIKEY": KEY_B}, binance) == KEY_B
    assert key_of({"X-MBX-APIKEY": ""}, binance) is None
    assert accounts.tag_of({}, bitmex) == PUBLIC
    tag = accounts.tag_of({"api-key": KEY_A}, bitmex)
    assert KEY_A not in tag and tag != accounts.tag_of({"api-key": KEY_B}, bitmex)


def _ban(accounts: Accounts, tag: str, status: int, body: bytes, now: float) -> None:
    account = accounts.account(tag)
    verdict = classify(Outcome(status=status, body=body, wall_ms=0), accounts.rules)
    account.health.on_outcome(verdict, now)
    accounts.poll(now, account)
    accounts.entered(account, account.health.state, account.health.until, verdict.kind, now)


def test_a_key_ban_is_that_keys_and_an_egress_ban_is_everyones() -> None:
    accounts, events, clock = _accounts()
    a, b = account_tag("bitmex", KEY_A), account_tag("bitmex", KEY_B)
    accounts.account(b)
    _ban(accounts, a, 403, b"<html>403 Forbidden</html>", clock.now)
    assert not accounts.account(a).health.allows_requests(clock.now)
    assert accounts.account(b).health.allows_requests(clock.now)
    states = events.recent(event="venue.state")
    assert [(s["account"], s["state"]) for s in states] == [(a, "COOLDOWN")]
    page = b"<html><title>Access denied | error code: 1006</title>error code: 1006</html>"
    verdict = classify(Outcome(status=403, body=page, wall_ms=0), accounts.rules)
    assert verdict.kind is Kind.IP_BANNED  # the egress IP's ban, not a key's
    _ban(accounts, b, 403, page, clock.now)
    assert accounts.account(b).health.state is VenueState.BLOCKED
    assert accounts.account(a).health.state is VenueState.BLOCKED
    later = accounts.account(account_tag("bitmex", KEY_C))  # first seen after the ban
    assert later.health.state is VenueState.BLOCKED
    assert not accounts.account(PUBLIC).health.allows_requests(clock.now)


def test_the_registry_is_bounded_and_evicts_a_healthy_account_first() -> None:
    accounts, _, clock = _accounts(max_accounts=3)
    evicted: list[str] = []
    accounts.on_evict = lambda account: evicted.append(account.tag)
    _ban(accounts, "t0", 403, b"<html>403 Forbidden</html>", clock.now)
    accounts.account("t1")
    accounts.account("t2")
    accounts.account("t3")  # t0 is the least recently used, but cooling down: t1 goes
    assert evicted == ["t1"] and len(accounts) == 3
    assert not accounts.account("t0").health.allows_requests(clock.now)  # its ban is kept


# -- through proxies, over a real redis-server -------------------------------------------------
@dataclass
class _Venue:
    """An upstream that answers 403 to the keys it bans and counts requests per key."""

    dialect: str
    banned: set[str] = field(default_factory=set)
    hits: Counter[str] = field(default_factory=Counter)
    base_url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        key = key_of(request.headers, DIALECTS[self.dialect].key_headers) or "none"
        self.hits[key] += 1
        if key in self.banned:
            return web.Response(status=403, text="<html><body>403 Forbidden</body></html>",
                                content_type="text/html")
        return web.Response(body=orjson.dumps({"orderID": "o1", "ordStatus": "New"}),
                            content_type="application/json")


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    pytest.importorskip("redis", reason="the redis extra is not installed "
                                        "(pip install 'venueguard[redis]')")
    try:
        server = RedisServer.start()
    except RedisUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as exits:
        yield exits


async def _venue(stack: AsyncExitStack, dialect: str) -> _Venue:
    venue = _Venue(dialect)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", venue.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    venue.base_url = f"http://127.0.0.1:{port}"
    return venue


async def _send(session: aiohttp.ClientSession, proxy: ProxyHandle, dialect: str,
                key: str | None) -> int:
    header = DIALECTS[dialect].key_headers[0]
    headers = {header: key} if key is not None else {}
    async with session.post(proxy.base_url + _PATHS[dialect], data=b"{}",
                            headers={"content-type": "application/json", **headers}) as resp:
        await resp.read()
        return resp.status


async def _until_refused(session: aiohttp.ClientSession, proxy: ProxyHandle, dialect: str,
                         key: str, venue: _Venue) -> tuple[int, int]:
    """Send ``key``'s request until the proxy refuses it (a ban notice travels through Redis);
    returns the last status and how many of those requests reached the venue."""
    before, status = venue.hits[key], 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = await _send(session, proxy, dialect, key)
        if status == 429:
            break
        await asyncio.sleep(0.1)
    return status, venue.hits[key] - before


def _no_raw_key(events: EventLog, metrics_text: str, *keys: str) -> None:
    text = orjson.dumps(events.recent()).decode() + metrics_text
    for key in keys:
        assert key not in text


@pytest.mark.system
@pytest.mark.parametrize("dialect", ["bitmex", "binance-usdm"])
async def test_a_ban_of_key_a_refuses_a_and_lets_b_pass_at_one_and_across_proxies(
        redis_server: RedisServer, stack: AsyncExitStack, dialect: str) -> None:
    venue = await _venue(stack, dialect)
    events_1, events_2 = EventLog(keep=500), EventLog(keep=500)
    first = await stack.enter_async_context(running_proxy(
        venue.base_url, dialect=dialect, redis_url=redis_server.url, guard=True,
        events=events_1))
    second = await stack.enter_async_context(running_proxy(
        venue.base_url, dialect=dialect, redis_url=redis_server.url, guard=True,
        events=events_2))
    session = first.session
    for proxy in (first, second):  # both keys join their accounts at both proxies
        assert await _send(session, proxy, dialect, KEY_B) == 200
    assert await _send(session, second, dialect, None) == 200  # the public account

    venue.banned.add(KEY_A)
    assert await _send(session, first, dialect, KEY_A) == 403  # the venue bans key A
    venue.banned.clear()  # from here on only the proxies refuse A
    reached = venue.hits[KEY_A]
    assert await _send(session, first, dialect, KEY_A) == 429  # refused at once, here
    assert venue.hits[KEY_A] == reached
    b_before = venue.hits[KEY_B]
    assert await _send(session, first, dialect, KEY_B) == 200  # B's pass
    assert await _send(session, first, dialect, None) == 200  # and keyless ones
    # the second proxy never saw key A: it joins A's account and finds the ban there
    assert await _until_refused(session, second, dialect, KEY_A, venue) == (429, 0)
    assert await _send(session, second, dialect, KEY_B) == 200
    assert venue.hits[KEY_B] == b_before + 2

    tag_a = account_tag(dialect, KEY_A)
    refused = events_1.recent(event="proxy.refused") + events_2.recent(event="proxy.refused")
    assert refused and {r["account"] for r in refused} == {tag_a}
    assert all(r["state"] == "COOLDOWN" for r in refused)
    states = events_1.recent(event="venue.state")
    assert [(s["account"], s["state"]) for s in states] == [(tag_a, "COOLDOWN")]
    async with session.get(first.base_url + "/metrics") as resp:
        metrics_text = await resp.text()
    assert f'venueguard_venue_state{{state="COOLDOWN",venue="{dialect}"}} 1.0' in metrics_text
    _no_raw_key(events_1, metrics_text, KEY_A, KEY_B)
    _no_raw_key(events_2, "", KEY_A, KEY_B)


@pytest.mark.system
async def test_an_egress_ban_seen_on_one_key_refuses_every_key(
        redis_server: RedisServer, stack: AsyncExitStack) -> None:
    venue = await _venue(stack, "bitmex")
    events = EventLog(keep=500)
    first = await stack.enter_async_context(running_proxy(
        venue.base_url, dialect="bitmex", redis_url=redis_server.url, guard=True,
        events=events))
    second = await stack.enter_async_context(running_proxy(
        venue.base_url, dialect="bitmex", redis_url=redis_server.url))
    session = first.session
    assert await _send(session, first, "bitmex", KEY_B) == 200
    assert await _send(session, second, "bitmex", KEY_B) == 200
    await first.add_fault("cloudflare_1006", duration_s=30)  # the edge bans the IP
    assert await _send(session, first, "bitmex", KEY_A) == 403
    await first.clear_faults()
    before = sum(venue.hits.values())
    for key in (KEY_A, KEY_B, KEY_C, None):  # C was never seen: it starts under the ban
        assert await _send(session, first, "bitmex", key) == 429
    assert await _until_refused(session, second, "bitmex", KEY_B, venue) == (429, 0)
    assert sum(venue.hits.values()) == before
    blocked = {s["account"] for s in events.recent(event="venue.state")
               if s["state"] == "BLOCKED"}
    assert blocked == {account_tag("bitmex", k) for k in (KEY_A, KEY_B, KEY_C)} | {PUBLIC}
    _no_raw_key(events, "", KEY_A, KEY_B, KEY_C)


async def _hammer(session: aiohttp.ClientSession, base_url: str, headers: dict[str, str],
                  seconds: float) -> Counter[int]:
    """A bot in a tight loop of signed reads for ``seconds``: the statuses it got."""
    got: Counter[int] = Counter()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        async with session.get(base_url + "/api/v1/position", headers=headers) as resp:
            await resp.read()
            got[resp.status] += 1
    return got


@pytest.mark.system
@pytest.mark.slow
@pytest.mark.parametrize("shared", [False, True], ids=["alone", "redis"])
async def test_bots_behind_two_proxies_keep_one_accounts_limit_only_when_shared(
        redis_server: RedisServer, stack: AsyncExitStack, shared: bool) -> None:
    """Four bots, two behind each of two proxies, one key, against the simulator's per-key
    limit (120 a minute, BitMEX's). Alone, each proxy lets its own bots through and the venue
    answers 429s. Sharing Redis, the two proxies send the venue one account's rate between
    them (the shared bucket starts empty, since the fleet cannot know what the venue's burst
    has left, then refills at 120 a minute less the 2 % headroom), the venue refuses nothing,
    and every bot gets its turn."""
    from venueguard.sim.testing import running_sim

    sim = await stack.enter_async_context(running_sim(scenario=None, rate_msgs_s=5.0))
    redis_url = redis_server.url if shared else None
    proxies = [await stack.enter_async_context(running_proxy(
        sim.base_url, dialect="bitmex", redis_url=redis_url)) for _ in range(2)]
    headers = sim.signed_headers("GET", "/api/v1/position")
    start = time.monotonic()
    seen = await asyncio.gather(*(_hammer(sim.session, proxy.base_url, headers, 3.0)
                                  for proxy in proxies for _ in range(2)))
    elapsed = time.monotonic() - start
    truth = await sim.truth()
    reached = truth["requests"].get("GET /api/v1/position", 0)
    venue_429 = sum(n for name, n in truth["responses"].items() if name.endswith(" 429"))
    if not shared:
        assert venue_429 > 0 and reached > 120
        return
    assert venue_429 == 0
    # one account's rate for both proxies together (each on its own would send twice that)
    assert 4 <= reached <= 120 * 0.98 / 60 * elapsed + 2
    assert all(s[200] >= 1 for s in seen)
    assert sum(seen, Counter())[200] == reached
