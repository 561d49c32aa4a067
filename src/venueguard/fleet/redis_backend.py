"""The Redis backend: the fleet's shared state in Redis, one atomic Lua script per call.

Keys (see docs/scaling.md) live under two namespaces, each with a Redis Cluster hash tag so
that every script touches one slot:

- the account's: ``vg:<venue>:{a.<sha256 of the key, 20 hex>}:<name>`` -- rate-limit buckets
  (one integer each, the GCRA's theoretical arrival time in microseconds of Redis' clock; a
  bucket the store does not hold starts empty, so a restarted Redis never grants a burst the
  venue's own bucket may not have), the
  retry budget's per-second counters (two hashes), the account's ban, the members' status hash
  and the owner lease; the API key itself is never stored;
- the egress IP's: ``vg:<venue>:{ip.<egress>}:<name>`` -- per-IP buckets, the IP's ban and the
  websocket opens (a sorted set).

Bans are also published on ``<namespace>:bans`` (pub/sub), so every member applies one within a
round trip of it being seen. Time inside the scripts is Redis' ``TIME``: members on several
machines never compare their own clocks.

Cancellation: every call runs in a task of its own that the caller awaits through
:func:`asyncio.shield`, so a caller that is cancelled (a stop, a timeout) is released at once
whatever the client does with the cancellation it then passes on. On CPython 3.11, redis-py
(every release measured, 5.2 to 8.2) awaits its socket writes through ``asyncio.wait_for``
when a ``socket_timeout`` is set, and that ``wait_for`` drops a cancellation that arrives as
the write completes: the call returns normally and the cancelled task goes on running. The
client is therefore made without ``socket_timeout`` (every call is bounded by the caller's own
``asyncio.timeout`` instead), and a call that lost its cancellation only finishes its one round
trip, in a task nobody awaits.

Needs the ``redis`` package (``pip install 'venueguard[redis]'``).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import orjson

from venueguard.fleet.backend import NoticeHandler, StoreAuthError
from venueguard.fleet.policy import BanNotice, Bucket, Scope
from venueguard.numbers import NumberError, ascii_digits, url_port

try:
    import redis.asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
    from redis.exceptions import AuthenticationError as RedisAuthError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import RedisError
    from redis.exceptions import ResponseError as RedisResponseError
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("the Redis backend needs the redis package: "
                      "pip install 'venueguard[redis]'") from exc

__all__ = ["RedisBackend", "RedisError", "check_redis_url", "detached"]

T = TypeVar("T")

_NOW_US = ("local t = redis.call('TIME') "
           "local now = tonumber(t[1]) * 1000000 + tonumber(t[2]) ")

# KEYS: the buckets' keys, then the request-count hash.
# ARGV: max_wait_us, count_request (0|1), window_s, then interval_us, tolerance_us per bucket.
_RESERVE = _NOW_US + """
local n = #KEYS - 1
local allow = now
local tats = {}
for i = 1, n do
  -- a bucket the store does not hold (first use, or the store lost its state) starts empty:
  -- the venue's own bucket may be spent
  local tat = tonumber(redis.call('GET', KEYS[i]) or (now + tonumber(ARGV[3 + 2 * i])))
  if tat < now then tat = now end
  tats[i] = tat
  local a = tat - tonumber(ARGV[3 + 2 * i])
  if a > allow then allow = a end
end
local wait = allow - now
if wait > tonumber(ARGV[1]) then return -1 end
for i = 1, n do
  local tat = tats[i]
  if allow > tat then tat = allow end
  tat = tat + tonumber(ARGV[2 + 2 * i])
  redis.call('SET', KEYS[i], string.format('%.0f', tat), 'PX',
             math.floor((tat - now + tonumber(ARGV[3 + 2 * i])) / 1000) + 60000)
end
if ARGV[2] == '1' then
  local counts = KEYS[n + 1]
  local window = tonumber(ARGV[3])
  redis.call('HINCRBY', counts, t[1], 1)
  redis.call('EXPIRE', counts, window + 5)
  if redis.call('HLEN', counts) > 2 * window + 4 then
    local sec = tonumber(t[1])
    for _, field in ipairs(redis.call('HKEYS', counts)) do
      if tonumber(field) <= sec - window then redis.call('HDEL', counts, field) end
    end
  end
end
return wait
"""

# KEYS[1]: a bucket. ARGV: interval_us, burst, remaining.
_FLOOR = _NOW_US + """
local floor = now + (tonumber(ARGV[2]) - tonumber(ARGV[3])) * tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
-- more left than the burst (the venue's window is not ours): nothing to lower
if floor > now and tat < floor then
  redis.call('SET', KEYS[1], string.format('%.0f', floor), 'PX',
             math.floor((floor - now) / 1000) + 1000)
  return 1
end
return 0
"""

# KEYS: request-count hash, retry-count hash. ARGV: ratio, min_per_s, window_s.
_RETRY = """
local sec = tonumber(redis.call('TIME')[1])
local window = tonumber(ARGV[3])
local function total(key)
  local sum = 0
  local flat = redis.call('HGETALL', key)
  for i = 1, #flat, 2 do
    if tonumber(flat[i]) > sec - window then sum = sum + tonumber(flat[i + 1])
    else redis.call('HDEL', key, flat[i]) end
  end
  return sum
end
local requests = total(KEYS[1])
local retries = total(KEYS[2])
if retries + 1 > tonumber(ARGV[1]) * requests + tonumber(ARGV[2]) * window then return 0 end
redis.call('HINCRBY', KEYS[2], sec, 1)
redis.call('EXPIRE', KEYS[2], window + 5)
return 1
"""

# KEYS: the ban key. ARGV: channel, notice JSON, ttl_ms (0: a reset, delete the ban).
_BAN = """
if ARGV[3] == '0' then redis.call('DEL', KEYS[1])
else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return redis.call('PUBLISH', ARGV[1], ARGV[2])
"""

# KEYS: the lease. ARGV: member, ttl_ms.
_LEASE = """
local owner = redis.call('GET', KEYS[1])
if not owner then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
if owner == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: the opens' sorted set. ARGV: max_opens, window_us, a unique member.
_WS_OPEN = _NOW_US + """
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tonumber(first[2]) + window - now
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.floor(window / 1000) + 1000)
return 0
"""

# KEYS: the status hash. ARGV: member, status JSON, now_wall_s, ttl_s.
_STATUS = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[4]) * 4))
return redis.call('HGETALL', KEYS[1])
"""


def check_redis_url(url: str) -> str:
    """``redis://HOST:PORT/DB`` (or ``rediss://``, ``unix://``); raises ValueError saying why."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"redis URL must start with redis://, rediss:// or unix://: {url!r}")
    if parts.scheme != "unix" and not parts.hostname:
        raise ValueError(f"redis URL needs a host: {url!r}")
    db = parts.path.strip("/") if parts.scheme != "unix" else ""  # unix://: the socket's path
    if db and not ascii_digits(db, 5):  # str.isdigit() takes '²', which redis-py's int() refuses
        raise ValueError(f"redis URL database must be a number: {url!r}")
    try:
        url_port(url)
    except NumberError as exc:
        raise ValueError(f"redis URL {exc}: {url!r}") from None
    return url


async def detached(call: Coroutine[Any, Any, T], running: set[asyncio.Task[Any]]) -> T:
    """Await ``call`` in a task of its own; a cancelled caller raises ``CancelledError`` at
    once (the call's task is cancelled too, and kept in ``running`` until it ends)."""
    task = asyncio.get_running_loop().create_task(call)
    running.add(task)
    task.add_done_callback(_settled(running))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.cancel()
        raise


def _settled(running: set[asyncio.Task[Any]]) -> Any:
    def done(task: asyncio.Task[Any]) -> None:
        running.discard(task)
        if not task.cancelled():
            task.exception()      # retrieved: an abandoned call's error is not logged as lost
    return done


_AUTH_FIX = ("Redis refused this member's credentials ({why}): give them in the URL, "
             "redis://:PASSWORD@HOST:PORT/DB (or redis://USER:PASSWORD@... with ACL users)")


async def _explained(call: Coroutine[Any, Any, T]) -> T:
    """Turn the client's refusal of the credentials into one line that names the fix."""
    try:
        return await call
    except RedisAuthError as exc:
        raise StoreAuthError(_AUTH_FIX.format(why=_first_line(exc))) from None
    except RedisResponseError as exc:
        text = str(exc)
        if text.startswith(("NOAUTH", "WRONGPASS", "NOPERM")) or "AUTH" in text[:40]:
            raise StoreAuthError(_AUTH_FIX.format(why=_first_line(exc))) from None
        raise


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]


def _us(seconds: float) -> int:
    return round(seconds * 1_000_000)


class RedisBackend:
    """See the module docstring. ``account`` and ``egress`` are tags (no secrets)."""

    def __init__(self, url: str, *, venue: str, account: str, egress: str = "default",
                 connect_timeout_s: float = 1.0) -> None:
        check_redis_url(url)
        self.url = url
        # one immediate retry on a dropped connection: after a restart the pool's sockets
        # are dead, and the first command on each finds out. No socket_timeout: see the
        # module docstring (the callers bound every call themselves).
        self.client: Any = aioredis.Redis.from_url(
            url, socket_connect_timeout=connect_timeout_s,
            health_check_interval=0, retry_on_timeout=False,
            retry=Retry(NoBackoff(), 1), retry_on_error=[RedisConnectionError])
        self.ns = {Scope.ACCOUNT: f"vg:{venue}:{{a.{account}}}",
                   Scope.IP: f"vg:{venue}:{{ip.{egress}}}"}
        self._reserve = self.client.register_script(_RESERVE)
        self._floor = self.client.register_script(_FLOOR)
        self._retry = self.client.register_script(_RETRY)
        self._ban = self.client.register_script(_BAN)
        self._lease = self.client.register_script(_LEASE)
        self._release = self.client.register_script(_RELEASE)
        self._ws_open = self.client.register_script(_WS_OPEN)
        self._status = self.client.register_script(_STATUS)
        self._window_s = 10
        self.running: set[asyncio.Task[Any]] = set()   # calls in flight (see ``detached``)

    def _run(self, call: Coroutine[Any, Any, T]) -> Coroutine[Any, Any, T]:
        return detached(_explained(call), self.running)

    def key(self, scope: Scope, name: str) -> str:
        return f"{self.ns[scope]}:{name}"

    async def reserve(self, buckets: Sequence[Bucket], max_wait_s: float, *,
                      count_request: bool) -> float | None:
        if not buckets:
            return 0.0
        scope = buckets[0].scope
        if any(b.scope is not scope for b in buckets):
            raise ValueError("one reservation covers buckets of one scope")
        keys = [self.key(scope, f"bucket:{b.name}") for b in buckets]
        keys.append(self.key(Scope.ACCOUNT if scope is Scope.ACCOUNT else scope, "requests"))
        args: list[int | str] = [_us(max_wait_s), "1" if count_request else "0",
                                 self._window_s]
        for bucket in buckets:
            args += [_us(bucket.interval_s), _us(bucket.tolerance_s)]
        wait_us = int(await self._run(self._reserve(keys=keys, args=args)))
        return None if wait_us < 0 else wait_us / 1_000_000

    async def floor_remaining(self, bucket: Bucket, remaining: int) -> None:
        await self._run(self._floor(keys=[self.key(bucket.scope, f"bucket:{bucket.name}")],
                                    args=[_us(bucket.interval_s), bucket.burst, remaining]))

    async def try_retry(self, ratio: float, min_per_s: float, window_s: float) -> bool:
        self._window_s = max(1, round(window_s))
        keys = [self.key(Scope.ACCOUNT, "requests"), self.key(Scope.ACCOUNT, "retries")]
        return bool(await self._run(
            self._retry(keys=keys, args=[ratio, min_per_s, self._window_s])))

    async def publish_ban(self, notice: BanNotice, ttl_s: float) -> None:
        ttl_ms = 0 if notice.state == "HEALTHY" else max(1, round(ttl_s * 1000))
        await self._run(self._ban(keys=[self.key(notice.scope, "ban")],
                                  args=[self.key(notice.scope, "bans"),
                                        orjson.dumps(notice.to_json()), ttl_ms]))

    async def current_bans(self) -> list[BanNotice]:
        raw = await self._run(self.client.mget([self.key(s, "ban") for s in Scope]))
        return [n for n in (_notice(r) for r in raw if r) if n is not None]

    async def listen(self, on_notice: NoticeHandler, ready: asyncio.Event) -> None:
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        try:
            await self._run(pubsub.subscribe(*(self.key(s, "bans") for s in Scope)))
            ready.set()
            while True:
                message = await self._run(pubsub.get_message(timeout=1.0))
                if message is None or message.get("type") != "message":
                    continue
                notice = _notice(message.get("data"))
                if notice is not None:
                    on_notice(notice)
        finally:
            with contextlib.suppress(RedisError, OSError, RuntimeError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._run(pubsub.aclose())

    async def exchange_status(self, member: str, status: Mapping[str, object],
                              ttl_s: float) -> dict[str, dict[str, object]]:
        flat = await self._run(self._status(keys=[self.key(Scope.ACCOUNT, "members")],
                                            args=[member, orjson.dumps(dict(status)), 0,
                                                  ttl_s]))
        out: dict[str, dict[str, object]] = {}
        for name, value in zip(flat[::2], flat[1::2], strict=True):
            with contextlib.suppress(orjson.JSONDecodeError):
                record = orjson.loads(value)
                if isinstance(record, dict):
                    out[name.decode() if isinstance(name, bytes) else str(name)] = record
        return out

    async def lease(self, member: str, ttl_s: float) -> bool:
        return bool(await self._run(self._lease(keys=[self.key(Scope.ACCOUNT, "owner")],
                                                args=[member, max(1, round(ttl_s * 1000))])))

    async def release(self, member: str) -> None:
        await self._run(self._release(keys=[self.key(Scope.ACCOUNT, "owner")], args=[member]))

    async def read_get(self, name: str) -> bytes | None:
        raw = await self._run(self.client.get(self.key(Scope.ACCOUNT, f"read:{name}")))
        return None if raw is None else bytes(raw)

    async def read_put(self, name: str, raw: bytes, ttl_s: float) -> None:
        key = self.key(Scope.ACCOUNT, f"read:{name}")
        pipe = self.client.pipeline(transaction=True)     # one slot: the account's tag
        pipe.set(key, raw, px=max(1, round(ttl_s * 1000)))
        pipe.delete(f"{key}:claim")
        await self._run(pipe.execute())

    async def read_claim(self, name: str, member: str, ttl_s: float) -> bool:
        return bool(await self._run(self.client.set(
            self.key(Scope.ACCOUNT, f"read:{name}:claim"), member, nx=True,
            px=max(1, round(ttl_s * 1000)))))

    async def ws_open(self, max_opens: int, window_s: float) -> float:
        wait_us = await self._run(self._ws_open(
            keys=[self.key(Scope.IP, "ws_opens")],
            args=[max_opens, _us(window_s), secrets.token_hex(8)]))
        return max(0.0, int(wait_us) / 1_000_000)

    async def ping(self) -> None:
        await self._run(self.client.ping())

    async def reset(self) -> None:
        """Drop every pooled connection (after the store came back: they are dead)."""
        await self._run(self.client.connection_pool.disconnect())

    async def aclose(self, timeout_s: float = 1.0) -> None:
        """Close the pool within ``timeout_s``; calls still in flight are cancelled first, and
        given their turn to end (a call cancelled while it connects gives its connection back
        to the pool only then; closed before that, the connection's socket would leak)."""
        for task in list(self.running):
            task.cancel()
        with contextlib.suppress(RedisError, OSError, RuntimeError, TimeoutError):
            async with asyncio.timeout(timeout_s):
                if self.running:
                    await asyncio.wait(list(self.running))
                await self._run(self.client.aclose())


def _notice(raw: object) -> BanNotice | None:
    if not isinstance(raw, bytes | str):
        return None
    try:
        data = orjson.loads(raw)
        return BanNotice.from_json(data) if isinstance(data, dict) else None
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return None
