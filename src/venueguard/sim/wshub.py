"""The websocket connections of one endpoint, below both dialects: serve, read, fault, forget.

:meth:`ConnectionHub.serve` runs one accepted connection from start to end: it registers it,
starts its writer, applies the websocket faults that hit new connections, lets the dialect open
it (welcome, the streams named in the URL), runs the read loop, and when the loop ends for any
reason takes the connection out of the fan-out index (:meth:`ConnectionHub.forget`) and closes it.

The read loop answers protocol pings by hand (so a half-open fault can stop answering them),
closes on the client's close frame (a half-open connection ignores it) and hands text to the
dialect. A dialect specialises it by small hooks: ``on_text`` (its commands), ``on_binary``,
``on_pong``, ``keys_of`` (the fan-out keys a connection is in), ``ended`` (what else ends with
it, e.g. its replay) and ``hold_half_open_close`` (a half-open connection that got a close frame
holds the TCP connection until the client drops it, rather than returning at once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import ClassVar, Generic, TypeVar

from aiohttp import WSMsgType

from venueguard.sim.conn import SimConnection
from venueguard.sim.faults import Fault

log = logging.getLogger(__name__)

__all__ = ["ConnectionHub"]

C = TypeVar("C", bound=SimConnection)


class ConnectionHub(Generic[C]):
    """All websocket connections of one endpoint and the fan-out index (key -> connections)."""

    hold_half_open_close: ClassVar[bool] = False

    def __init__(self) -> None:
        self.connections: dict[int, C] = {}
        # key -> its connections, in the order they subscribed (a dict as an ordered set: a
        # set would fan out in an order that depends on memory addresses, not on the run)
        self.index: dict[str, dict[C, None]] = {}
        self.opened_total = 0

    def next_serial(self) -> int:
        """The serial of a connection being opened (counted in ``opened_total``)."""
        self.opened_total += 1
        return self.opened_total

    def subscribers(self, key: str) -> int:
        return len(self.index.get(key, ()))

    def hit_open(self, fault: Fault) -> int:
        """Apply a websocket fault to every open connection; returns how many were hit."""
        conns = [c for c in self.connections.values() if not c.closed]
        for conn in conns:
            conn.hit(fault)
        return len(conns)

    async def close_all(self) -> None:
        for conn in list(self.connections.values()):
            conn.abort()

    # -- one connection ------------------------------------------------------------------------
    async def serve(self, conn: C, faults: Iterable[Fault], opened: Callable[[C], None]) -> None:
        """Run ``conn`` until it ends; ``faults`` are the active websocket faults, ``opened``
        sends what the dialect sends first."""
        self.connections[conn.serial] = conn
        conn.start()
        for fault in faults:
            if fault.new_connections:
                conn.hit(fault)
        try:
            opened(conn)
            await self._read_loop(conn)
        except (ConnectionError, RuntimeError) as exc:  # the peer went away mid-write
            log.debug("%s %d ended: %s", conn.name, conn.serial, exc)
        finally:
            self.forget(conn)
            await conn.finish()

    def forget(self, conn: C) -> None:
        """Take an ended connection out of the hub and the fan-out index."""
        self.connections.pop(conn.serial, None)
        for key in self.keys_of(conn):
            group = self.index.get(key)
            if group is not None:
                group.pop(conn, None)
                if not group:
                    del self.index[key]
        self.ended(conn)

    async def _read_loop(self, conn: C) -> None:
        ws = conn.ws
        while not conn.closed:
            msg = await ws.receive()
            kind = msg.type
            if kind is WSMsgType.TEXT:
                self.on_text(conn, msg.data)
            elif kind is WSMsgType.BINARY:
                self.on_binary(conn, msg.data)
            elif kind is WSMsgType.PING:
                if not conn.half_open:
                    await ws.pong(msg.data)
            elif kind is WSMsgType.PONG:
                self.on_pong(conn)
            elif kind is WSMsgType.CLOSE and not conn.half_open:
                await ws.close()
                return
            elif kind in (WSMsgType.CLOSE, WSMsgType.CLOSING) and self.hold_half_open_close:
                await _wait_transport_gone(conn)
                return
            else:  # CLOSED, ERROR
                return

    # -- the dialect's hooks -------------------------------------------------------------------
    def on_text(self, conn: C, text: str) -> None:
        raise NotImplementedError

    def on_binary(self, conn: C, data: bytes) -> None:
        """A binary message: ignored unless the dialect reads them."""

    def on_pong(self, conn: C) -> None:
        """A pong frame: ignored unless the dialect keeps the connection alive with pings."""

    def keys_of(self, conn: C) -> Iterable[str]:
        raise NotImplementedError

    def ended(self, conn: C) -> None:
        """Called once a connection left the hub."""


async def _wait_transport_gone(conn: SimConnection) -> None:
    """Half-open: ignore the client's close frame and hold the TCP connection until it drops."""
    while not conn.closed:
        transport = conn.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(0.2)
