"""An asyncio event loop on a virtual clock with an in-memory network: a whole stack in one process.

:class:`VirtualTimeLoop` is asyncio's selector loop with three changes:

* ``time()`` is virtual. It moves only when no callback is ready and no I/O is pending: the
  loop then jumps to the next timer instead of sleeping. Timers fall on a grid of
  :data:`TICK_S` (2**-20 s), rounded up, so measured durations are exact.
  ``await asyncio.sleep(3600)`` returns at once in real time, an hour later in virtual time.
  The wall clock moves with it (``wall_ns()``, from a fixed epoch), and the project's clock
  seam (:mod:`venueguard.io.clock`) reads both while this loop runs.
* ``create_server`` / ``create_connection`` / ``sock_connect`` / ``getaddrinfo`` go to the
  loop's :class:`~venueguard.io.memnet.MemoryNetwork`: aiohttp's server and client and picows
  talk through in-memory transports, without a socket or a name lookup. A connection to an
  address nobody listens on is refused; a host name that is not an address does not resolve.
* ``run_in_executor`` (and so ``asyncio.to_thread``) runs the function inline, taking no
  virtual time: a thread finishing at some real moment would make virtual time depend on the
  machine. Work that blocks waiting for another thread must not run on this loop.

Same program, same inputs, same seeds: same order of callbacks, same virtual timestamps, so a
run is reproducible byte for byte. Nothing here is random; ports are handed out in order.

    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        runner.run(main())

Public API::

    VirtualTimeLoop(*, start_s=1000.0, wall_epoch_ms=1_767_225_600_000)
        time() -> float; wall_ns() -> int; network: MemoryNetwork
    run_virtual(coro, *, start_s=..., wall_epoch_ms=...) -> result   # a fresh loop per call
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import selectors
import socket
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

from venueguard.io.clock import VirtualTime
from venueguard.io.memnet import Listener, MemoryNetwork, MemoryTransport, ProtocolFactory

__all__ = ["DEFAULT_WALL_EPOCH_MS", "TICK_S", "VirtualTimeLoop", "run_virtual"]

T = TypeVar("T")

#: 2026-01-01T00:00:00Z: where a virtual wall clock starts unless told otherwise.
DEFAULT_WALL_EPOCH_MS = 1_767_225_600_000
_TICKS_PER_S = 2**20
#: The virtual clock's resolution (about a microsecond; a power of two, so times add exactly).
TICK_S = 1 / _TICKS_PER_S


class _VirtualSelector(selectors.BaseSelector):
    """The real selector (the loop's self-pipe, signals) polled without blocking; a wait for
    a timer becomes a jump of the virtual clock."""

    def __init__(self) -> None:
        self._real = selectors.DefaultSelector()
        self.loop: VirtualTimeLoop | None = None

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def select(self, timeout: float | None = None
               ) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout == 0:             # callbacks are ready: the real world can wait a turn
            return []
        ready = self._real.select(0)
        if ready:
            return ready
        if timeout is None:          # no timer and nothing ready: only another thread can help
            return self._real.select(None)
        assert self.loop is not None
        self.loop._advance(timeout)
        return []

    def close(self) -> None:
        self._real.close()

    def get_map(self) -> Any:
        return self._real.get_map()


class _Server(asyncio.AbstractServer):
    """What ``create_server`` returns: one listener per address."""

    def __init__(self, loop: VirtualTimeLoop, listeners: list[Listener]) -> None:
        self._loop = loop
        self._listeners = listeners

    @property
    def sockets(self) -> tuple[Any, ...]:
        from venueguard.io.memnet import VirtualSocket
        return tuple(VirtualSocket(lst.address, ("0.0.0.0", 0)) for lst in self._listeners)

    def close(self) -> None:
        for listener in self._listeners:
            listener.close()

    def close_clients(self) -> None:
        for listener in self._listeners:
            for transport in list(listener.transports):
                transport.close()

    def abort_clients(self) -> None:
        for listener in self._listeners:
            for transport in list(listener.transports):
                transport.abort()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return any(listener.serving for listener in self._listeners)

    async def start_serving(self) -> None:
        return None

    async def serve_forever(self) -> None:
        await self._loop.create_future()

    async def wait_closed(self) -> None:
        await asyncio.sleep(0)

    async def __aenter__(self) -> _Server:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
        await self.wait_closed()


def _address(host: str | None, port: Any) -> tuple[str, int]:
    """An IP literal (or ``localhost``) and a port; a name does not resolve in memory."""
    name = "127.0.0.1" if host in (None, "", "localhost") else str(host)
    try:
        ip = str(ipaddress.ip_address(name))
    except ValueError:
        raise socket.gaierror(socket.EAI_NONAME,
                              f"Name or service not known: {host}") from None
    return ip, int(port or 0)


class VirtualTimeLoop(VirtualTime, asyncio.SelectorEventLoop):
    """asyncio's selector loop on a virtual clock over an in-memory network."""

    def __init__(self, *, start_s: float = 1000.0,
                 wall_epoch_ms: int = DEFAULT_WALL_EPOCH_MS) -> None:
        selector = _VirtualSelector()
        super().__init__(selector)
        selector.loop = self
        if start_s * _TICKS_PER_S != int(start_s * _TICKS_PER_S):
            raise ValueError(f"start_s must be a multiple of {TICK_S} s")
        self._now = float(start_s)
        self._start_s = float(start_s)
        self._wall0_ns = int(wall_epoch_ms) * 1_000_000
        self._socks: dict[socket.socket, tuple[str, int]] = {}
        self.network = MemoryNetwork(self)

    # -- the clock -------------------------------------------------------------------------
    def time(self) -> float:
        return self._now

    def wall_ns(self) -> int:
        return self._wall0_ns + round((self._now - self._start_s) * 1e9)

    def _advance(self, timeout: float) -> None:
        target = self._now + timeout
        scheduled = self._scheduled  # type: ignore[attr-defined]
        if scheduled:
            when = scheduled[0].when()
            if when <= target + self._clock_resolution:  # type: ignore[attr-defined]
                target = when          # land on the timer exactly, not a rounding short of it
        self._now = max(self._now, target)

    def call_at(self, when: float, callback: Callable[..., object],  # type: ignore[override]
                *args: Any, context: Any = None) -> asyncio.TimerHandle:
        """Timers land on a binary grid (:data:`TICK_S`), rounded up: every virtual time is a
        multiple of it, so the difference of two times is exact and never less than the delay
        asked for (``t0 + 0.3`` minus ``t0`` is not always 0.3 in floating point)."""
        return super().call_at(math.ceil(when * _TICKS_PER_S) / _TICKS_PER_S, callback, *args,
                               context=context)

    # -- executors -------------------------------------------------------------------------
    def run_in_executor(self, executor: Any, func: Callable[..., T],  # type: ignore[override]
                        *args: Any) -> asyncio.Future[T]:
        future: asyncio.Future[T] = self.create_future()
        try:
            future.set_result(func(*args))
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            future.set_exception(exc)
        return future

    # -- the in-memory network -------------------------------------------------------------
    async def getaddrinfo(  # type: ignore[override]
            self, host: bytes | str | None, port: bytes | str | int | None, *, family: int = 0,
            type: int = 0, proto: int = 0, flags: int = 0,
    ) -> list[tuple[Any, Any, int, str, tuple[str, int]]]:
        name = host.decode() if isinstance(host, bytes) else host
        ip, number = _address(name, port.decode() if isinstance(port, bytes) else port)
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (ip, number))]

    async def sock_connect(self, sock: socket.socket, address: Any) -> None:
        """Connecting a real (never used) socket: remembered for ``create_connection(sock=)``."""
        target = _address(address[0], address[1])
        if not self.network.is_listening(target):
            raise self.network.refuse(target)
        self._socks[sock] = target

    async def create_connection(  # type: ignore[override]
            self, protocol_factory: ProtocolFactory, host: str | None = None,
            port: int | None = None, *, ssl: Any = None, sock: socket.socket | None = None,
            **_kwargs: Any) -> tuple[MemoryTransport, asyncio.BaseProtocol]:
        if ssl:
            raise ValueError("the in-memory network carries no TLS")
        if sock is not None:
            address = self._socks.pop(sock, None)
            sock.close()
            if address is None:
                raise OSError("create_connection(sock=) needs a socket connected by this loop")
        else:
            address = _address(host, port)
        return await self.network.connect(protocol_factory, address)

    async def create_server(  # type: ignore[override]
            self, protocol_factory: ProtocolFactory,
            host: str | Iterable[str] | None = None, port: int | None = None, *,
            ssl: Any = None, **_kwargs: Any) -> _Server:
        if ssl:
            raise ValueError("the in-memory network carries no TLS")
        hosts = [host] if host is None or isinstance(host, str) else list(host)
        listeners = []
        for one in hosts:
            ip, number = _address(one, port)
            listeners.append(self.network.listen(ip, number, protocol_factory))
        return _Server(self, listeners)


def run_virtual(coro: Coroutine[Any, Any, T], *, start_s: float = 1000.0,
                wall_epoch_ms: int = DEFAULT_WALL_EPOCH_MS) -> T:
    """Run ``coro`` to completion on a fresh :class:`VirtualTimeLoop`; close it after."""

    def factory() -> VirtualTimeLoop:
        return VirtualTimeLoop(start_s=start_s, wall_epoch_ms=wall_epoch_ms)

    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)
