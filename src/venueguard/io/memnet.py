"""An in-memory network: listeners on virtual host:port addresses and pairs of asyncio transports.

:class:`MemoryNetwork` belongs to one event loop (:class:`~venueguard.io.vloop.VirtualTimeLoop`
owns one). A server registers a :class:`Listener` on ``(host, port)``; a connection to that
address builds a :class:`MemoryTransport` pair wired to the two protocols, so aiohttp's server
and client and picows run over it unmodified. A connection to an address nobody listens on is
refused (``ConnectionRefusedError``), as a closed TCP port refuses.

Delivery is ordered and coalesced like a stream socket: ``write`` queues bytes, one callback
later the peer's protocol receives everything queued (``data_received``, or ``get_buffer`` /
``buffer_updated`` for a buffered protocol). No byte is lost or reordered; delivery takes no
virtual time. Flow control is real: the writer is paused above its high-water mark while the
peer does not read (``pause_reading``), and resumed when the queue drains below the low mark.

``close()`` flushes what is queued, then the peer reads end of stream (``eof_received``; unless
it asks to stay half-open, its transport closes too). ``abort()`` drops the queue and the peer
sees ``connection_lost(ConnectionResetError)``, as after a TCP reset.

Public API::

    MemoryNetwork(loop)
        listen(host, port, protocol_factory) -> Listener   # port 0: the next free port
        is_listening((host, port)) -> bool
        async connect(protocol_factory, (host, port)) -> (MemoryTransport, protocol)
    Listener: address, close()
    MemoryTransport(asyncio.Transport)
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Listener", "MemoryNetwork", "MemoryTransport", "VirtualSocket"]

Address = tuple[str, int]
ProtocolFactory = Callable[[], asyncio.BaseProtocol]

_HIGH_WATER = 64 * 1024
_FIRST_PORT = 40_000


class VirtualSocket:
    """What ``get_extra_info("socket")`` returns: names and options, no file descriptor.

    ``fileno()`` is -1, so a library that writes to the descriptor directly (picows' fast path)
    gets ``EBADF`` and falls back to ``transport.write``.
    """

    __slots__ = ("_local", "_peer")
    family = socket.AF_INET
    type = socket.SOCK_STREAM
    proto = 0

    def __init__(self, local: Address, peer: Address) -> None:
        self._local = local
        self._peer = peer

    def fileno(self) -> int:
        return -1

    def getsockname(self) -> Address:
        return self._local

    def getpeername(self) -> Address:
        return self._peer

    def setsockopt(self, *_args: Any) -> None:
        """Options (TCP_NODELAY, SO_KEEPALIVE...) mean nothing in memory."""

    def getsockopt(self, *_args: Any) -> int:
        return 0


@dataclass(slots=True)
class Listener:
    """A server's bound address on the in-memory network."""

    network: MemoryNetwork
    address: Address
    protocol_factory: ProtocolFactory
    serving: bool = True
    transports: set[MemoryTransport] = field(default_factory=set)

    def close(self) -> None:
        """Stop accepting connections; open ones go on (as with ``asyncio.Server.close``)."""
        if self.serving:
            self.serving = False
            self.network._listeners.pop(self.address, None)


class MemoryNetwork:
    """Listeners and connections of one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._listeners: dict[Address, Listener] = {}
        self._next_port = _FIRST_PORT

    def _free_port(self, host: str) -> int:
        while (host, self._next_port) in self._listeners:
            self._next_port += 1
        port = self._next_port
        self._next_port += 1
        return port

    def listen(self, host: str, port: int, protocol_factory: ProtocolFactory) -> Listener:
        """Bind ``(host, port)``; ``port`` 0 takes the next free port (deterministic order)."""
        port = self._free_port(host) if port == 0 else port
        address = (host, port)
        if address in self._listeners:
            raise OSError(errno.EADDRINUSE, f"address already in use: {host}:{port}")
        listener = Listener(self, address, protocol_factory)
        self._listeners[address] = listener
        return listener

    def is_listening(self, address: Address) -> bool:
        return (address[0], int(address[1])) in self._listeners

    def refuse(self, address: Address) -> ConnectionRefusedError:
        return ConnectionRefusedError(errno.ECONNREFUSED,
                                      f"connect to {address[0]}:{address[1]} refused")

    async def connect(self, protocol_factory: ProtocolFactory,
                      address: Address) -> tuple[MemoryTransport, asyncio.BaseProtocol]:
        """Open a connection to ``address``; both protocols see ``connection_made`` first."""
        listener = self._listeners.get((address[0], int(address[1])))
        if listener is None or not listener.serving:
            raise self.refuse(address)
        client_addr = ("127.0.0.1", self._free_port("127.0.0.1"))
        server_addr = listener.address
        client_proto = protocol_factory()
        server_proto = listener.protocol_factory()
        client = MemoryTransport(self._loop, client_proto, VirtualSocket(client_addr, server_addr))
        server = MemoryTransport(self._loop, server_proto, VirtualSocket(server_addr, client_addr))
        client._peer, server._peer = server, client
        server._listener = listener
        listener.transports.add(server)
        server_proto.connection_made(server)
        client_proto.connection_made(client)
        await asyncio.sleep(0)   # a connect completes on a later turn of the loop, as a socket's
        return client, client_proto


class MemoryTransport(asyncio.Transport):
    """One end of an in-memory stream connection."""

    def __init__(self, loop: asyncio.AbstractEventLoop, protocol: asyncio.BaseProtocol,
                 sock: VirtualSocket) -> None:
        super().__init__()
        self._loop = loop
        self._protocol = protocol
        self._sock = sock
        self._peer: MemoryTransport | None = None
        self._listener: Listener | None = None
        self._queue = bytearray()          # written here, not yet delivered to the peer
        self._flush_scheduled = False
        self._eof_pending = False          # write_eof/close: peer reads EOF after the queue
        self._closing = False
        self._lost = False
        self._reading = True               # this side's protocol accepts data
        self._writing_paused = False
        self._high = _HIGH_WATER
        self._low = _HIGH_WATER // 4
        self._eof_received = False

    # -- BaseTransport ---------------------------------------------------------------------
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "socket":
            return self._sock
        if name == "peername":
            return self._sock.getpeername()
        if name == "sockname":
            return self._sock.getsockname()
        return default

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        """Flush what is queued, then the peer reads end of stream; this side is lost."""
        if self._closing:
            return
        self._closing = True
        self._eof_pending = True
        self._schedule_flush()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    # -- ReadTransport ---------------------------------------------------------------------
    def is_reading(self) -> bool:
        return self._reading and not self._closing

    def pause_reading(self) -> None:
        self._reading = False

    def resume_reading(self) -> None:
        if not self._reading:
            self._reading = True
            peer = self._peer
            if peer is not None and (peer._queue or peer._eof_pending):
                peer._schedule_flush()

    # -- WriteTransport --------------------------------------------------------------------
    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        high = _HIGH_WATER if high is None else high
        low = high // 4 if low is None else low
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high, self._low = high, low
        self._check_pause()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low, self._high

    def get_write_buffer_size(self) -> int:
        return len(self._queue)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._eof_pending or self._lost or not data:
            return                 # asyncio's transports drop writes after close likewise
        self._queue += data
        self._schedule_flush()
        self._check_pause()

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def write_eof(self) -> None:
        if self._eof_pending:
            return
        self._eof_pending = True
        self._schedule_flush()

    def can_write_eof(self) -> bool:
        return True

    def abort(self) -> None:
        """Drop the queue; the peer sees a reset."""
        if self._lost:
            return
        self._closing = True
        self._queue.clear()
        peer = self._peer
        self._lose(None)
        if peer is not None and not peer._lost:
            peer._closing = True
            peer._queue.clear()
            peer._lose(ConnectionResetError(errno.ECONNRESET, "connection reset by peer"))

    # -- delivery --------------------------------------------------------------------------
    def _check_pause(self) -> None:
        size = len(self._queue)
        if not self._writing_paused and size > self._high:
            self._writing_paused = True
            self._protocol.pause_writing()
        elif self._writing_paused and size <= self._low:
            self._writing_paused = False
            self._protocol.resume_writing()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled and not self._lost:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        peer = self._peer
        if self._lost or peer is None:
            return
        if peer._lost:            # writing to a closed peer: a reset, unless closing anyway
            self._lose(None if self._closing else
                       ConnectionResetError(errno.ECONNRESET, "connection reset by peer"))
            return
        if self._queue and peer._reading:
            data = bytes(self._queue)
            self._queue.clear()
            peer._receive(data)
            if self._lost:
                return
            self._check_pause()
        if self._queue or not self._eof_pending or not peer._reading:
            return
        # everything delivered: end of stream reaches the peer
        self._eof_pending = False
        if not peer._eof_received:
            peer._eof_received = True
            keep_open = peer._protocol_eof()
            if not keep_open and not peer._closing:
                peer.close()
        if self._closing:
            self._lose(None)

    def _receive(self, data: bytes) -> None:
        protocol = self._protocol
        if isinstance(protocol, asyncio.BufferedProtocol):
            view = memoryview(data)
            while view:
                buf = memoryview(protocol.get_buffer(len(view)))
                n = min(len(buf), len(view))
                if n == 0:
                    raise RuntimeError("get_buffer() returned an empty buffer")
                buf[:n] = view[:n]
                protocol.buffer_updated(n)
                view = view[n:]
        else:
            protocol.data_received(data)  # type: ignore[attr-defined]

    def _protocol_eof(self) -> bool:
        eof_received = getattr(self._protocol, "eof_received", None)
        return bool(eof_received()) if eof_received is not None else False

    def _lose(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._closing = True
        self._queue.clear()
        if self._listener is not None:
            self._listener.transports.discard(self)
        self._loop.call_soon(self._protocol.connection_lost, exc)
