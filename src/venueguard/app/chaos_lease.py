"""The lease checks of ``venueguard chaos --fleet N``, and the handover a seed plans.

A fleet seed may plan a :class:`~venueguard.app.chaos_plan.LeaseCut`: while the seed's faults
run, the member then holding the lease loses its fleet store (:class:`CutStore`: every call
refused, or every call left unanswered until it times out), as one process would when its link
to Redis breaks: it goes on alone (``fleet.degraded``), its lease lapses, and another member
takes the lease; when the store answers again it rejoins as a follower. Or its bot stops
cleanly (:class:`Bots`), giving the lease up, and starts again on its journal later.

:class:`OwnerWatch` samples every member's role and checks:

* never two owners at once (and some member owns the lease);
* after a cut, the member cut off stops acting as owner once its lease has lapsed (the time
  to live), and another member takes the lease within the time to live plus
  :data:`HANDOVER_MARGIN_S`;
* after the faults end and the fleet converged, while the fleet's orders rest at the venue,
  the owner's dead man's switch is armed, or counts them and so is being armed (a request
  refused by the venue or by the local adaptive throttle is retried):
  :meth:`OwnerWatch.check_switch`.

Call order::

    store = CutStore(backend)                    # one per member, its Fleet's backend
    watch = OwnerWatch(members, ttl_s)           # members: .name, .fleet.role(), .store
    run watch.run() in a task                    # samples until cancelled
    await cut_owner(cut, members, watch, t0, bots)   # the planned handover, if any
    violations = await watch.check_switch(...)   # once converged
    watch.finish()                               # the handover's verdict -> watch.violations
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from venueguard.app import chaos_checks as checks
from venueguard.app.chaos_plan import CUT_WAYS, LeaseCut
from venueguard.fleet.backend import FleetBackend, NoticeHandler
from venueguard.fleet.fleet import Fleet
from venueguard.fleet.policy import BanNotice, Bucket
from venueguard.io.clock import monotonic
from venueguard.io.fleet_link import Role

__all__ = ["HANDOVER_MARGIN_S", "LEASE_SAMPLE_S", "Bots", "CutStore", "OwnerWatch",
           "StaleOwnerFleet", "cut_owner"]

T = TypeVar("T")
#: How often every member's role is sampled.
LEASE_SAMPLE_S = 0.05
#: Beyond the lease's time to live: a follower's renewal pace (a fifth of it) and sampling.
HANDOVER_MARGIN_S = 0.5
_MAX_FINDINGS = 3                 # two owners at once: said at most this often


class CutStore:
    """One member's view of the fleet's store, which the harness can cut: ``refused`` fails
    every call at once and drops the subscription (a reset connection); ``hung`` leaves every
    call unanswered until the store is restored (the caller's time limit ends it) and the
    subscription deaf. Uncut, every call goes through to the shared backend."""

    def __init__(self, inner: FleetBackend) -> None:
        self.inner = inner
        self.way: str | None = None
        self.granted = False              # the last lease answer this member got
        self._restored = asyncio.Event()
        self._restored.set()
        self._cut = asyncio.Event()

    def cut(self, way: str) -> None:
        if way not in CUT_WAYS:
            raise ValueError(f"unknown cut {way!r}; known: {CUT_WAYS}")
        self.way = way
        self._restored.clear()
        self._cut.set()

    def restore(self) -> None:
        self.way = None
        self._cut.clear()
        self._restored.set()

    async def _through(self, call: Callable[[], Awaitable[T]]) -> T:
        if self.way == "refused":
            raise ConnectionRefusedError("fleet store unreachable")
        if self.way == "hung":
            await self._restored.wait()   # a late answer, unless the caller gave up
        return await call()

    async def reserve(self, buckets: Sequence[Bucket], max_wait_s: float, *,
                      count_request: bool) -> float | None:
        return await self._through(lambda: self.inner.reserve(
            buckets, max_wait_s, count_request=count_request))

    async def floor_remaining(self, bucket: Bucket, remaining: int) -> None:
        await self._through(lambda: self.inner.floor_remaining(bucket, remaining))

    async def try_retry(self, ratio: float, min_per_s: float, window_s: float) -> bool:
        return await self._through(lambda: self.inner.try_retry(ratio, min_per_s, window_s))

    async def publish_ban(self, notice: BanNotice, ttl_s: float) -> None:
        await self._through(lambda: self.inner.publish_ban(notice, ttl_s))

    async def current_bans(self) -> list[BanNotice]:
        return await self._through(self.inner.current_bans)

    async def listen(self, on_notice: NoticeHandler, ready: asyncio.Event) -> None:
        def deliver(notice: BanNotice) -> None:
            if self.way is None:          # a cut member hears nothing
                on_notice(notice)

        async def subscribed() -> None:
            await self.inner.listen(deliver, ready)

        listening = asyncio.ensure_future(self._through(subscribed))
        dropped = asyncio.ensure_future(self._cut.wait())
        try:
            while True:
                await asyncio.wait({listening, dropped}, return_when=asyncio.FIRST_COMPLETED)
                if listening.done():
                    listening.result()
                    return
                if self.way == "refused":
                    raise ConnectionResetError("fleet store subscription lost")
                await self._restored.wait()   # hung: deaf until restored, then hears again
                dropped = asyncio.ensure_future(self._cut.wait())
        finally:
            listening.cancel()
            dropped.cancel()

    async def exchange_status(self, member: str, status: Mapping[str, object],
                              ttl_s: float) -> dict[str, dict[str, object]]:
        return await self._through(lambda: self.inner.exchange_status(member, status, ttl_s))

    async def lease(self, member: str, ttl_s: float) -> bool:
        granted = await self._through(lambda: self.inner.lease(member, ttl_s))
        self.granted = granted
        return granted

    async def release(self, member: str) -> None:
        await self._through(lambda: self.inner.release(member))

    async def ws_open(self, max_opens: int, window_s: float) -> float:
        return await self._through(lambda: self.inner.ws_open(max_opens, window_s))

    async def read_get(self, name: str) -> bytes | None:
        return await self._through(lambda: self.inner.read_get(name))

    async def read_put(self, name: str, raw: bytes, ttl_s: float) -> None:
        await self._through(lambda: self.inner.read_put(name, raw, ttl_s))

    async def read_claim(self, name: str, member: str, ttl_s: float) -> bool:
        return await self._through(lambda: self.inner.read_claim(name, member, ttl_s))

    async def ping(self) -> None:
        await self._through(self.inner.ping)

    async def reset(self) -> None:
        await self.inner.reset()          # forgets connections: local, never waits on the store

    async def aclose(self) -> None:
        await self.inner.aclose()


class StaleOwnerFleet(Fleet):
    """Test-only (``stale-owner``): a member that trusts the last lease answer it got, so it
    goes on acting as owner while its store is silent and its lease has lapsed."""

    def __init__(self, *args: Any, store: CutStore, **kwargs: Any) -> None:
        super().__init__(*args, backend=store, **kwargs)
        self._store = store

    def role(self) -> Role:
        return Role.OWNER if self._store.granted else super().role()


class _Role(Protocol):
    def role(self) -> Role: ...


class _Watched(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def fleet(self) -> _Role: ...


class OwnerWatch:
    """See the module docstring: every member's role, every :data:`LEASE_SAMPLE_S`."""

    def __init__(self, members: Sequence[_Watched], ttl_s: float) -> None:
        self.members = members
        self.ttl_s = ttl_s
        self.samples = 0
        self.owned = 0                    # samples with an owner
        self.violations: list[checks.Violation] = []
        self.cut_member: str | None = None
        self.cut_at: float | None = None
        self.cut_way = ""
        self.restored_at: float | None = None
        self.taken: tuple[str, float] | None = None   # who took the lease after the cut, when
        self._stale_said = False
        self._many_said = 0

    def owners(self) -> list[str]:
        return [m.name for m in self.members if m.fleet.role() is Role.OWNER]

    async def run(self) -> None:
        while True:
            await asyncio.sleep(LEASE_SAMPLE_S)
            self.sample(monotonic())

    def sample(self, now: float) -> None:
        owners = self.owners()
        self.samples += 1
        self.owned += bool(owners)
        if len(owners) > 1 and self._many_said < _MAX_FINDINGS:
            self._many_said += 1
            self.violations.append(checks.Violation(
                2, f"fleet: {len(owners)} lease owners at once ({', '.join(owners)})"))
        cut, at = self.cut_member, self.cut_at
        if cut is None or at is None:
            return
        if self.taken is None:
            others = [o for o in owners if o != cut]
            if others:
                self.taken = (others[0], now)
        if (cut in owners and self.restored_at is None and now >= at + self.ttl_s
                and not self._stale_said):
            self._stale_said = True
            self.violations.append(checks.Violation(
                2, f"fleet: {cut} still acts as the lease owner {now - at:.2f} s after it was "
                   f"cut off ({self.cut_way}; the lease lives {self.ttl_s:g} s)"))

    def on_cut(self, member: str, now: float, way: str) -> None:
        self.cut_member, self.cut_at, self.cut_way = member, now, way

    def on_restore(self, now: float) -> None:
        self.restored_at = now

    def finish(self) -> None:
        """The handover's verdict: another member took the lease in time."""
        if self.cut_member is None or self.cut_at is None:
            return
        bound = self.ttl_s + HANDOVER_MARGIN_S
        if self.taken is None or self.taken[1] - self.cut_at > bound:
            when = ("never" if self.taken is None
                    else f"{self.taken[0]} after {self.taken[1] - self.cut_at:.2f} s")
            self.violations.append(checks.Violation(
                2, f"fleet: the lease did not change hands within {bound:g} s of "
                   f"{self.cut_member} being cut off ({self.cut_way}; {when})"))

    async def check_switch(self, open_orders: Callable[[], Awaitable[set[str]]],
                           armed: Callable[[str], bool], bound_s: float
                           ) -> list[checks.Violation]:
        """While the fleet's orders rest at the venue, the owner's switch is armed (``armed``
        of a member: armed, or being armed): given up to ``bound_s`` (the status exchange
        and the switch's poll); a violation only when an order rested through it all, and
        no single owner's switch was."""
        resting = await open_orders()
        if not resting:
            return []
        deadline = monotonic() + bound_s
        while monotonic() < deadline:
            owners = self.owners()
            if len(owners) == 1 and armed(owners[0]):
                return []
            await asyncio.sleep(LEASE_SAMPLE_S)
        owners = self.owners()
        if len(owners) == 1 and armed(owners[0]):
            return []
        if not resting & await open_orders():
            return []                 # nothing rested through the wait
        who = owners[0] if len(owners) == 1 else f"{len(owners)} owners"
        return [checks.Violation(
            2, f"fleet: orders rested at the venue {bound_s:g} s after convergence and the "
               f"lease owner's dead man's switch was neither armed nor arming ({who})")]


class _Cuttable(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def store(self) -> CutStore: ...


class Bots(Protocol):
    """Stops a member's bot cleanly and starts it again on its journal (the ``stop`` cut)."""

    async def stop(self, name: str) -> None: ...

    async def restart(self, name: str) -> None: ...


async def cut_owner(cut: LeaseCut | None, members: Sequence[_Cuttable], watch: OwnerWatch,
                    t0: float, bots: Bots) -> None:
    """Run the seed's handover: at ``t0 + cut.start_s`` take the lease's holder away (waiting
    up to the lease's time to live for one): cut its store, or stop its bot (the cut counts
    from when it stopped, its lease given up); ``cut.duration_s`` later restore the store or
    start the bot again, and return no sooner than the handover's bound after the cut."""
    if cut is None:
        return
    await asyncio.sleep(max(0.0, t0 + cut.start_s - monotonic()))
    owners = watch.owners()
    for _ in range(round(watch.ttl_s / LEASE_SAMPLE_S)):   # a lease being taken: up to its ttl
        if owners:
            break
        await asyncio.sleep(LEASE_SAMPLE_S)
        owners = watch.owners()
    if len(owners) != 1:
        watch.violations.append(checks.Violation(
            2, f"fleet: {len(owners)} lease owners when the handover was due"))
        return
    [victim] = [m for m in members if m.name == owners[0]]
    if cut.way == "stop":
        await bots.stop(victim.name)
    else:
        victim.store.cut(cut.way)
    at = monotonic()
    watch.on_cut(victim.name, at, cut.way)
    try:
        await asyncio.sleep(cut.duration_s)
    finally:
        if cut.way == "stop":
            await bots.restart(victim.name)
        else:
            victim.store.restore()
        watch.on_restore(monotonic())
    await asyncio.sleep(max(0.0, at + watch.ttl_s + HANDOVER_MARGIN_S - monotonic()))
