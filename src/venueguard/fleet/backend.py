"""The one small interface the fleet's shared state sits behind, and its in-process backend.

Every call is one round trip to the store (one atomic script on Redis). ``Fleet``
(:mod:`venueguard.fleet.fleet`) wraps a backend with the time limit and the local fallback; a
backend itself raises whatever its store raises.

Public API::

    class FleetBackend(Protocol):
        reserve(buckets, max_wait_s, *, count_request) -> float | None   # wait, or None
        floor_remaining(bucket, remaining) -> None    # the venue's x-ratelimit-remaining
        try_retry(ratio, min_per_s, window_s) -> bool # the shared retry budget
        publish_ban(notice, ttl_s) / current_bans() / listen(on_notice, ready)
        exchange_status(member, status, ttl_s) -> {member: status}
        lease(member, ttl_s) -> bool; release(member)  # one owner per account
        ws_open(max_opens, window_s) -> float          # wait before a websocket open (per IP)
        read_get(name) -> bytes | None; read_put(name, raw, ttl_s)   # a shared answer
                                                       # (putting it ends the claim)
        read_claim(name, member, ttl_s) -> bool        # one member reads it at a time
        ping(); reset(); aclose()
    MemoryBackend(clock=SYSTEM_CLOCK)                  # one process, no setup
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from venueguard.fleet.policy import BanNotice, Bucket, Gcra, Scope
from venueguard.io.clock import SYSTEM_CLOCK, Clock

__all__ = ["FleetBackend", "MemoryBackend", "NoticeHandler", "StoreAuthError"]

NoticeHandler = Callable[[BanNotice], None]


class StoreAuthError(Exception):
    """The store refused this member's credentials; the message is one line naming the fix
    (and never holds the credentials)."""


class FleetBackend(Protocol):
    async def reserve(self, buckets: Sequence[Bucket], max_wait_s: float, *,
                      count_request: bool) -> float | None:
        """Reserve one request's slot in every bucket at once; the wait before sending it, or
        None (nothing reserved) when it would exceed ``max_wait_s``. ``count_request``: a first
        attempt, counted for the retry budget."""
        ...

    async def floor_remaining(self, bucket: Bucket, remaining: int) -> None: ...

    async def try_retry(self, ratio: float, min_per_s: float, window_s: float) -> bool: ...

    async def publish_ban(self, notice: BanNotice, ttl_s: float) -> None: ...

    async def current_bans(self) -> list[BanNotice]: ...

    async def listen(self, on_notice: NoticeHandler, ready: asyncio.Event) -> None:
        """Deliver every notice published by any member until cancelled (or the store fails:
        then raise); set ``ready`` once subscribed."""
        ...

    async def exchange_status(self, member: str, status: Mapping[str, object],
                              ttl_s: float) -> dict[str, dict[str, object]]: ...

    async def lease(self, member: str, ttl_s: float) -> bool: ...

    async def release(self, member: str) -> None: ...

    async def ws_open(self, max_opens: int, window_s: float) -> float: ...

    async def read_get(self, name: str) -> bytes | None:
        """The answer ``name`` one member published for the account (None: none live)."""
        ...

    async def read_put(self, name: str, raw: bytes, ttl_s: float) -> None:
        """Publish the answer ``name`` for ``ttl_s``, and end the claim on it."""
        ...

    async def read_claim(self, name: str, member: str, ttl_s: float) -> bool:
        """True when ``member`` may read ``name`` now: no other member claimed it in the
        last ``ttl_s`` (the claim expires by itself, so a member that dies holds nothing)."""
        ...

    async def ping(self) -> None: ...

    async def reset(self) -> None:
        """Forget connections that may be dead (called before rejoining)."""
        ...

    async def aclose(self) -> None: ...


class MemoryBackend:
    """Shared state for the sessions of one process (the default: nothing to run)."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self._gcra: dict[str, Gcra] = {}
        self._requests: deque[float] = deque()
        self._retries: deque[float] = deque()
        self._bans: dict[Scope, BanNotice] = {}
        self._listeners: list[NoticeHandler] = []
        self._status: dict[str, dict[str, object]] = {}
        self._lease: tuple[str, float] | None = None
        self._opens: deque[float] = deque()
        self._reads: dict[str, tuple[bytes, float]] = {}    # name -> (answer, expiry)
        self._claims: dict[str, tuple[str, float]] = {}     # name -> (member, expiry)

    def _wall_s(self) -> float:
        return self.clock.wall_ms() / 1000.0

    async def reserve(self, buckets: Sequence[Bucket], max_wait_s: float, *,
                      count_request: bool) -> float | None:
        now = self.clock.monotonic()
        states = [self._gcra.setdefault(b.name, Gcra()) for b in buckets]
        wait = max((g.wait_s(b, now) for g, b in zip(states, buckets, strict=True)),
                   default=0.0)
        if wait > max_wait_s:
            return None
        for gcra, bucket in zip(states, buckets, strict=True):
            gcra.commit(bucket, now + wait)
        if count_request:
            self._requests.append(now)
        return wait

    async def floor_remaining(self, bucket: Bucket, remaining: int) -> None:
        self._gcra.setdefault(bucket.name, Gcra()).floor_remaining(
            bucket, remaining, self.clock.monotonic())

    async def try_retry(self, ratio: float, min_per_s: float, window_s: float) -> bool:
        now = self.clock.monotonic()
        for times in (self._requests, self._retries):
            while times and times[0] <= now - window_s:
                times.popleft()
        if len(self._retries) + 1 > ratio * len(self._requests) + min_per_s * window_s:
            return False
        self._retries.append(now)
        return True

    async def publish_ban(self, notice: BanNotice, ttl_s: float) -> None:
        if notice.state == "HEALTHY":
            self._bans.pop(notice.scope, None)
        else:
            self._bans[notice.scope] = notice
        for listener in list(self._listeners):
            listener(notice)

    async def current_bans(self) -> list[BanNotice]:
        wall = self._wall_s()
        return [n for n in self._bans.values() if n.active(wall)]

    async def listen(self, on_notice: NoticeHandler, ready: asyncio.Event) -> None:
        self._listeners.append(on_notice)
        ready.set()
        try:
            await asyncio.Event().wait()      # until cancelled
        finally:
            if on_notice in self._listeners:
                self._listeners.remove(on_notice)

    async def exchange_status(self, member: str, status: Mapping[str, object],
                              ttl_s: float) -> dict[str, dict[str, object]]:
        self._status[member] = dict(status)
        return {m: dict(s) for m, s in self._status.items()}

    async def lease(self, member: str, ttl_s: float) -> bool:
        now = self.clock.monotonic()
        if self._lease is None or self._lease[0] == member or self._lease[1] <= now:
            self._lease = (member, now + ttl_s)
            return True
        return False

    async def release(self, member: str) -> None:
        if self._lease is not None and self._lease[0] == member:
            self._lease = None

    async def ws_open(self, max_opens: int, window_s: float) -> float:
        now = self.clock.monotonic()
        opens = self._opens
        while opens and opens[0] <= now - window_s:
            opens.popleft()
        if len(opens) >= max_opens:
            return max(0.0, opens[0] + window_s - now)
        opens.append(now)
        return 0.0

    async def read_get(self, name: str) -> bytes | None:
        held = self._reads.get(name)
        return held[0] if held is not None and held[1] > self.clock.monotonic() else None

    async def read_put(self, name: str, raw: bytes, ttl_s: float) -> None:
        self._reads[name] = (raw, self.clock.monotonic() + ttl_s)
        self._claims.pop(name, None)

    async def read_claim(self, name: str, member: str, ttl_s: float) -> bool:
        now = self.clock.monotonic()
        held = self._claims.get(name)
        if held is not None and held[1] > now:
            return False
        self._claims[name] = (member, now + ttl_s)
        return True

    async def ping(self) -> None:
        return None

    async def reset(self) -> None:
        return None

    async def aclose(self) -> None:
        return None            # shared by the sessions of the process: nothing to release
