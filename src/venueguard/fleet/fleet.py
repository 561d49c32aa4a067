"""``Fleet``: one process's link to the state it shares with the other processes of its account.

It implements the sessions' seams (:mod:`venueguard.io.fleet_link`) over a backend
(:class:`~venueguard.fleet.backend.MemoryBackend` by default, Redis with ``redis_url=``) and
feeds what it learns into the sessions' own core objects: a ban another member saw moves this
process's :class:`~venueguard.core.health.VenueHealth` (``on_shared``), so the existing gate
stops the requests; the rate-limit buckets are reserved before every attempt.

A store failure never stops trading safety. Every call is bounded by ``slow_ms`` (20 ms): an
error, or ``slow_strikes`` slow calls in a row, and the process goes on alone on a conservative
local share (each bucket's limit divided by the expected fleet size), logs ``fleet.degraded``
once, probes the store, and after ``rejoin_after`` quick answers logs ``fleet.rejoined``,
publishes the bans it recorded meanwhile, tells the shared buckets what the venue's headers
said was left, and applies the bans the others recorded.

Usage::

    fleet = Fleet(FleetConfig(redis_url="redis://127.0.0.1:6379/0", venue="bitmex"),
                  api_key=key, events=events)
    await fleet.start()
    rest = RestSession(config, fleet=fleet, ...)         # buckets, bans, retry budget
    runtime = OrdersRuntime(..., fleet=fleet)            # publishes its resting orders
    fleet.set_status(lambda: {"regime": ..., "health": ...})
    fleet.role() / fleet.view                            # owner lease; the fleet's regime
    await fleet.aclose()
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import TypeVar

from venueguard.core.budget import BudgetConfig
from venueguard.core.health import VenueHealth, VenueState
from venueguard.core.kinds import Kind
from venueguard.fleet.backend import FleetBackend, MemoryBackend, StoreAuthError
from venueguard.fleet.policy import (
    BAN_SCOPES,
    BanNotice,
    Bucket,
    FleetView,
    Gcra,
    Scope,
    account_tag,
    buckets_for,
    fleet_view,
    live_statuses,
)
from venueguard.io.clock import SYSTEM_CLOCK, Clock
from venueguard.io.fleet_link import Rank, Role
from venueguard.telemetry.events import EventLog

__all__ = ["Fleet", "FleetConfig"]

T = TypeVar("T")
READ_LIMIT_S = 0.25      # a shared answer is a few kB: bounded like the status exchange
StatusSource = Callable[[], Mapping[str, object]]


@dataclass(frozen=True, slots=True)
class FleetConfig:
    """Settings of one member. ``fleet_size``: the members assumed when the store is
    unreachable (None: the most seen live at once, at least 1)."""

    redis_url: str | None = None
    venue: str = "bitmex"
    egress: str = "default"          # members with the same label share an egress IP
    rest_limit: int | None = None    # per-minute request limit, if not the venue's documented one
    fleet_size: int | None = None
    slow_ms: float = 20.0
    slow_strikes: int = 5            # slow answers in a row before going alone (a busy
    #                                  event loop makes a few look slow; one error is enough)
    probe_s: float = 0.25
    rejoin_after: int = 3
    lease_ttl_s: float = 5.0
    status_s: float = 0.5
    status_max_age_s: float = 3.0
    block_ttl_s: float = 3600.0      # how long a shared BLOCKED lasts without a reset

    def __post_init__(self) -> None:
        if self.fleet_size is not None and self.fleet_size < 1:
            raise ValueError("fleet_size must be >= 1")
        if not self.slow_ms > 0 or self.slow_strikes < 1 or self.rejoin_after < 1:
            raise ValueError("slow_ms > 0, slow_strikes >= 1 and rejoin_after >= 1 needed")
        if not self.lease_ttl_s >= 1.0:
            raise ValueError("lease_ttl_s must be >= 1 s")


class _StoreDown(Exception):
    """The store failed or is too slow for this call: use the local share."""


def _reason(exc: BaseException) -> str:
    """One line for ``fleet.degraded``: a refused credential says how to fix it."""
    if isinstance(exc, StoreAuthError):
        return str(exc)[:300]
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:200]


class Fleet:
    """See the module docstring."""

    def __init__(self, config: FleetConfig | None = None, *, api_key: str | None = None,
                 events: EventLog | None = None, clock: Clock = SYSTEM_CLOCK,
                 backend: FleetBackend | None = None, member: str | None = None) -> None:
        self.config = cfg = config or FleetConfig()
        self.events = events if events is not None else EventLog()
        self.clock = clock
        self.account = account_tag(cfg.venue, api_key)
        self.member = member or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        if backend is None:
            if cfg.redis_url is None:
                backend = MemoryBackend(clock)
            else:
                from venueguard.fleet.redis_backend import RedisBackend

                backend = RedisBackend(cfg.redis_url, venue=cfg.venue, account=self.account,
                                       egress=cfg.egress)
        self.backend = backend
        self.shared = cfg.redis_url is not None
        self.buckets: tuple[Bucket, ...] = buckets_for(cfg.venue, cfg.rest_limit)
        self.degraded = False
        self.degraded_total = 0
        self.rejoined_total = 0
        self.view = FleetView(1, "NORMAL", "HEALTHY", 0, 0)
        self.statuses: dict[str, dict[str, object]] = {}   # the live members' last records
        self.max_members = 1
        self._strikes = 0
        self._local: dict[str, Gcra] = {}
        self._health: list[tuple[VenueHealth, Callable[[float], None]]] = []
        self._unpublished: dict[Scope, BanNotice] = {}
        self._last_remaining: int | None = None
        self._status: StatusSource = dict
        self._resting: Callable[[], int] | None = None
        self._owner_until: float | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._rejoined = asyncio.Event()
        self._rejoined.set()
        self._listening = asyncio.Event()
        self._closed = False
        self.notices_applied = 0

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Start listening and the lease, status and probe loops (ready to use at once: until
        the store answers, the process runs on its local share)."""
        loops: list[tuple[str, Callable[[], Coroutine[None, None, None]]]] = [
            ("listen", self._listen_loop), ("lease", self._lease_loop),
            ("status", self._status_loop)]
        for name, loop in loops:
            self._tasks.append(asyncio.create_task(loop(), name=f"fleet-{name}"))
        with contextlib.suppress(_StoreDown):
            await self._apply_current_bans()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await self._listening.wait()

    async def aclose(self) -> None:
        """Give the lease up (another member takes over at once), stop, close the store."""
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:   # bounded: a loop stuck in its store client does not hold the stop
            done, _ = await asyncio.wait(list(self._tasks), timeout=1.0)
            for task in done:
                if not task.cancelled():
                    task.exception()
        if self._owner_until is not None and not self.degraded:
            with contextlib.suppress(_StoreDown):
                await self._call(self.backend.release(self.member), limit_s=0.5)
            self.events.emit("fleet.lease", owner=False, member=self.member,
                             ttl_s=self.config.lease_ttl_s, released=True)
        self._owner_until = None
        await self.backend.aclose()

    # ------------------------------------------------------------------ the store, bounded
    async def _call(self, call: Awaitable[T], *, limit_s: float | None = None) -> T:
        """Run one store call within ``slow_ms``; degrade on an error or too many slow ones."""
        if self.degraded:
            if asyncio.iscoroutine(call):
                call.close()
            raise _StoreDown
        try:
            async with asyncio.timeout(limit_s or self.config.slow_ms / 1000.0):
                result = await call
        except TimeoutError:
            self._strikes += 1
            if self._strikes >= self.config.slow_strikes:
                self._degrade(f"{self._strikes} calls slower than {self.config.slow_ms:g} ms")
            raise _StoreDown from None
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the store's errors: connection refused, reset, script error
            self._degrade(_reason(exc))
            raise _StoreDown from exc
        self._strikes = 0
        return result

    def _degrade(self, reason: str) -> None:
        if self.degraded or self._closed:
            return
        was_owner = self.role() is Role.OWNER
        self.degraded = True
        self.degraded_total += 1
        self._rejoined.clear()
        self._owner_until = None
        if was_owner:
            self.events.emit("fleet.lease", owner=False, member=self.member,
                             ttl_s=self.config.lease_ttl_s)
        now = self.clock.monotonic()
        members = self.expected_size
        self._local = {}
        for bucket in self.buckets:   # start the share empty: the fleet may have spent it all
            gcra = self._local[bucket.name] = Gcra()
            gcra.floor_remaining(bucket.share(members), 1, now)
        self.events.emit("fleet.degraded", reason=reason, share_of=members,
                         backend="redis" if self.shared else "memory")
        self._tasks.append(asyncio.create_task(self._probe_loop(), name="fleet-probe"))

    @property
    def expected_size(self) -> int:
        return self.config.fleet_size or max(1, self.max_members)

    async def _probe_loop(self) -> None:
        cfg, good = self.config, 0
        while good < cfg.rejoin_after:
            await asyncio.sleep(cfg.probe_s)
            try:
                async with asyncio.timeout(cfg.slow_ms / 1000.0):
                    await self.backend.ping()
                good += 1
            except asyncio.CancelledError:
                raise
            except Exception:
                good = 0
        await self._rejoin()

    async def _rejoin(self) -> None:
        with contextlib.suppress(Exception):
            await self.backend.reset()
        self.degraded = False
        self._strikes = 0
        published = 0
        wall = self.clock.wall_ms() / 1000.0
        try:
            for scope, notice in list(self._unpublished.items()):
                if notice.active(wall):
                    await self._call(self.backend.publish_ban(notice, self._ban_ttl(notice)),
                                     limit_s=0.5)
                    published += 1
                del self._unpublished[scope]
            if self._last_remaining is not None:
                for bucket in self.buckets:
                    if not bucket.order_routes_only and self._last_remaining < bucket.burst:
                        await self._call(self.backend.floor_remaining(
                            bucket, self._last_remaining), limit_s=0.5)
            await self._apply_current_bans()
        except _StoreDown:
            return               # degraded again; the probe starts over
        self.rejoined_total += 1
        self.events.emit("fleet.rejoined", published_bans=published)
        self._rejoined.set()

    # ------------------------------------------------------------------ bans
    def attach(self, health: VenueHealth, on_change: Callable[[float], None]) -> None:
        """Apply the notices of other members to ``health``; ``on_change(now)`` reports."""
        self._health.append((health, on_change))

    def _apply(self, notice: BanNotice) -> None:
        if notice.origin == self.member:
            return
        now = self.clock.monotonic()
        wall = self.clock.wall_ms() / 1000.0
        until = (None if notice.until_wall_s is None
                 else now + (notice.until_wall_s - wall))
        state = VenueState(notice.state)
        reason = f"fleet: {notice.kind} seen by {notice.origin}"
        self.notices_applied += 1
        for health, on_change in self._health:
            health.on_shared(state, until, reason, now)
            on_change(now)
        self.events.emit("fleet.ban_applied", state=notice.state, kind=notice.kind,
                         origin=notice.origin, scope=notice.scope.value)

    async def _apply_current_bans(self) -> None:
        for notice in await self._call(self.backend.current_bans(), limit_s=0.5):
            self._apply(notice)

    def on_venue_state(self, state: VenueState, until: float | None, kind: Kind,
                       now: float) -> None:
        """This process's health entered COOLDOWN/BLOCKED on an outcome: tell the fleet."""
        if state not in (VenueState.COOLDOWN, VenueState.BLOCKED):
            return
        wall = self.clock.wall_ms() / 1000.0
        notice = BanNotice(BAN_SCOPES.get(kind, Scope.ACCOUNT), state.value,
                           None if until is None else wall + (until - now), kind.value,
                           f"{kind.value}", self.member)
        self._publish(notice)

    def on_reset(self, reason: str) -> None:
        for scope in Scope:
            self._publish(BanNotice(scope, "HEALTHY", None, "reset", reason, self.member))

    def _publish(self, notice: BanNotice) -> None:
        if self.degraded:
            self._keep_unpublished(notice)
            return
        task = asyncio.get_running_loop().create_task(self._send_notice(notice))
        self._tasks.append(task)
        task.add_done_callback(self._forget)

    def _keep_unpublished(self, notice: BanNotice) -> None:
        if notice.state == "HEALTHY":
            self._unpublished.pop(notice.scope, None)
            return
        held = self._unpublished.get(notice.scope)
        if held is None or held.state != "BLOCKED":
            self._unpublished[notice.scope] = notice

    async def _send_notice(self, notice: BanNotice) -> None:
        try:
            await self._call(self.backend.publish_ban(notice, self._ban_ttl(notice)),
                             limit_s=max(0.1, self.config.slow_ms / 1000.0))
        except _StoreDown:
            self._keep_unpublished(notice)

    def _ban_ttl(self, notice: BanNotice) -> float:
        if notice.state == "COOLDOWN" and notice.until_wall_s is not None:
            return max(0.001, notice.until_wall_s - self.clock.wall_ms() / 1000.0)
        return self.config.block_ttl_s

    def _forget(self, task: asyncio.Task[None]) -> None:
        with contextlib.suppress(ValueError):
            self._tasks.remove(task)

    async def _listen_loop(self) -> None:
        while True:
            await self._rejoined.wait()
            ready = asyncio.Event()
            listen = asyncio.create_task(self.backend.listen(self._apply, ready))
            waiter = asyncio.create_task(ready.wait())
            try:
                await asyncio.wait({listen, waiter}, return_when=asyncio.FIRST_COMPLETED)
                if ready.is_set():
                    self._listening.set()
                    if not self.degraded:   # a ban published while subscribing is read here
                        with contextlib.suppress(_StoreDown):
                            await self._apply_current_bans()
                await listen
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                task = asyncio.current_task()
                if self._closed or (task is not None and task.cancelling()):
                    raise asyncio.CancelledError from exc
                self._degrade(_reason(exc) if isinstance(exc, StoreAuthError)
                              else f"subscription lost: {_reason(exc)}")
            finally:
                waiter.cancel()
                listen.cancel()
            await asyncio.sleep(self.config.probe_s)

    # ------------------------------------------------------------------ buckets and retries
    async def reserve(self, *, order_route: bool, first: bool, max_wait_s: float,
                      rank: Rank = Rank.READ) -> float | None:
        """The wait before this attempt may be sent (its slot is taken), or None when that
        would exceed ``max_wait_s`` (nothing taken). ``rank``: see ``policy.HELD_BACK``."""
        buckets = [b.ranked(rank) for b in self.buckets
                   if order_route or not b.order_routes_only]
        if not self.degraded:
            waits: list[float] = []
            counted = False
            try:
                for scope in Scope:
                    group = [b for b in buckets if b.scope is scope]
                    if not group:
                        continue
                    wait = await self._call(self.backend.reserve(
                        group, max_wait_s, count_request=first and not counted))
                    counted = True
                    if wait is None:
                        return None
                    waits.append(wait)
                return max(waits, default=0.0)
            except _StoreDown:
                pass
        return self._reserve_local(buckets, max_wait_s)

    def _reserve_local(self, buckets: list[Bucket], max_wait_s: float) -> float | None:
        now = self.clock.monotonic()
        members = self.expected_size
        pairs = [(self._local.setdefault(b.name, Gcra()), b.share(members)) for b in buckets]
        wait = max((g.wait_s(b, now) for g, b in pairs), default=0.0)
        if wait > max_wait_s:
            return None
        for gcra, bucket in pairs:
            gcra.commit(bucket, now + wait)
        return wait

    def on_rate_limit(self, limit: int | None, remaining: int | None) -> None:
        """The venue's ``x-ratelimit-*``: learn the per-minute limit it states and, when it has
        fewer requests left than the shared bucket believes, lower the bucket."""
        if limit is not None and limit > 0:
            self.buckets = tuple(
                b.with_limit(limit) if b.period_s == 60.0 and not b.order_routes_only
                and b.limit != limit else b for b in self.buckets)
        if remaining is None:
            return
        self._last_remaining = remaining
        for bucket in self.buckets:
            if bucket.order_routes_only or bucket.period_s != 60.0:
                continue
            if remaining < bucket.burst and not self.degraded:
                task = asyncio.get_running_loop().create_task(self._floor(bucket, remaining))
                self._tasks.append(task)
                task.add_done_callback(self._forget)
            if self.degraded:
                self._local.setdefault(bucket.name, Gcra()).floor_remaining(
                    bucket.share(self.expected_size), remaining, self.clock.monotonic())

    async def _floor(self, bucket: Bucket, remaining: int) -> None:
        with contextlib.suppress(_StoreDown):
            await self._call(self.backend.floor_remaining(bucket, remaining))

    async def try_retry(self, config: BudgetConfig) -> bool:
        """The fleet's retry budget (the process's own is asked first); alone: granted."""
        try:
            return await self._call(self.backend.try_retry(config.ratio, config.min_per_s,
                                                           config.window_s))
        except _StoreDown:
            return True

    async def ws_open_wait(self, max_opens: int, window_s: float) -> float:
        """The wait before a websocket open (per egress IP); alone: the local limiter rules."""
        try:
            return await self._call(self.backend.ws_open(max_opens, window_s))
        except _StoreDown:
            return 0.0

    # ------------------------------------------------------------------ status and owner
    def set_status(self, source: StatusSource) -> None:
        """``source()`` -> ``{"regime", "health"}`` (and, for a trading member,
        ``"positions": {symbol: qty}``) published every ``status_s``, with ``"resting"`` from
        :meth:`publish_resting`."""
        self._status = source

    def publish_resting(self, count: Callable[[], int]) -> None:
        """``count()``: this member's orders that rest, or may; published with its status, so
        that the lease owner arms the dead man's switch for them too. An order runtime given
        this fleet calls it."""
        self._resting = count

    def regime(self, local: str) -> str:
        """The more cautious of ``local`` and the fleet's (alone: ``local``)."""
        from venueguard.fleet.policy import worst_regime

        return local if self.degraded else worst_regime((local, self.view.regime))

    async def _status_loop(self) -> None:
        cfg = self.config
        while True:
            if not self.degraded:
                try:
                    status = dict(self._status())
                    if self._resting is not None:
                        status["resting"] = self._resting()
                except Exception:  # a status source must never stop the loop
                    status = {}
                wall = status["wall"] = self.clock.wall_ms() / 1000.0
                with contextlib.suppress(_StoreDown):
                    statuses = await self._call(self.backend.exchange_status(
                        self.member, status, cfg.status_max_age_s), limit_s=0.25)
                    self.view = fleet_view(statuses, self.member, wall,
                                           cfg.status_max_age_s)
                    self.statuses = live_statuses(statuses, wall, cfg.status_max_age_s)
                    self.max_members = max(self.max_members, self.view.members)
            await asyncio.sleep(cfg.status_s)

    def member_positions(self, symbol: str, *,
                         newer_than_wall_s: float | None = None) -> dict[str, float] | None:
        """The positions in ``symbol`` the live trading members published (``positions`` in
        their status: see :meth:`set_status`); members that publish none do not trade. None
        while a trading member's last record is not newer than ``newer_than_wall_s``."""
        out: dict[str, float] = {}
        for member, status in self.statuses.items():
            positions = status.get("positions")
            wall = status.get("wall")
            if (newer_than_wall_s is not None and isinstance(positions, dict)
                    and not (isinstance(wall, int | float) and wall > newer_than_wall_s)):
                return None
            if isinstance(positions, dict):
                qty = positions.get(symbol)
                if isinstance(qty, int | float) and not isinstance(qty, bool):
                    out[member] = float(qty)
        return out

    def role(self) -> Role:
        if self.degraded:
            return Role.ALONE
        until = self._owner_until
        return Role.OWNER if until is not None and self.clock.monotonic() < until \
            else Role.FOLLOWER

    # ------------------------------------------------------------------ shared reads
    def sharing(self) -> bool:
        """Whether answers can be shared now (False while degraded: each member alone)."""
        return not self.degraded and not self._closed

    async def shared_read(self, name: str) -> bytes | None:
        """The answer ``name`` a member published (None: none, or the store is away)."""
        try:
            return await self._call(self.backend.read_get(name), limit_s=READ_LIMIT_S)
        except _StoreDown:
            return None

    async def claim_read(self, name: str, ttl_s: float) -> bool | None:
        """True: this member reads ``name`` for the fleet now; False: another member is
        reading it; None: the store is away (read alone, publish nothing)."""
        try:
            return await self._call(self.backend.read_claim(name, self.member, ttl_s),
                                    limit_s=READ_LIMIT_S)
        except _StoreDown:
            return None

    async def publish_read(self, name: str, raw: bytes, ttl_s: float) -> bool:
        try:
            await self._call(self.backend.read_put(name, raw, ttl_s), limit_s=READ_LIMIT_S)
        except _StoreDown:
            return False
        return True

    def others_resting(self) -> int:
        return 0 if self.degraded else self.view.others_resting

    async def _lease_loop(self) -> None:
        ttl = self.config.lease_ttl_s
        while True:
            if not self.degraded:
                sent = self.clock.monotonic()
                was = self.role() is Role.OWNER
                try:
                    owner = await self._call(self.backend.lease(self.member, ttl),
                                             limit_s=min(0.25, ttl / 4))
                except _StoreDown:
                    owner = False
                # degraded meanwhile (by this call or another): going alone dropped the lease
                # and said so; saying it again would count one loss twice
                if not self.degraded:
                    # valid from when it was asked, minus a margin for clock rates
                    self._owner_until = sent + ttl * 0.9 if owner else None
                    if owner != was:
                        self.events.emit("fleet.lease", owner=owner, member=self.member,
                                         ttl_s=ttl)
            await asyncio.sleep(ttl / 5)
