"""One websocket connection's outbound side, below both dialects: queue, writer, faults, close.

The publisher serialises and frames each update once and hands the same bytes to every subscriber
(:meth:`SimConnection.push_frame`); the writer sends them in batches and gives the event loop back
between batches (:mod:`venueguard.sim.fanout`). A connection a fault hit takes the slow path
(:meth:`SimConnection.send_faulted`), where its :class:`~venueguard.sim.wsfaults.WsFaultState`
drops, shifts, holds back or repeats messages for that connection only. When the queue grows past
``max_queue`` frames the client is too slow: the connection is closed rather than letting memory
grow.

A dialect's connection (:mod:`venueguard.sim.bitmex.conn`, :mod:`venueguard.sim.binance.conn`)
adds its subscriptions and how one of its data messages is framed and shifted in time.

Call order: create, :meth:`SimConnection.start` (spawns the writer), ``send_*`` / ``push*`` any
number of times, :meth:`SimConnection.finish` once the reader loop has ended (stops the writer and
closes the socket).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping
from typing import ClassVar

import orjson
from aiohttp import web

from venueguard.sim.fanout import FrameSender, text_frame
from venueguard.sim.faults import Fault
from venueguard.sim.wsfaults import Effect, WsFaultState

log = logging.getLogger(__name__)

__all__ = ["SimConnection"]


class SimConnection:
    """Outbound state of one client connection (its subscriptions live in the dialect's hub)."""

    name: ClassVar[str] = "ws connection"  # in log lines
    _rng_tag: ClassVar[str] = "conn"  # with the seed and serial, names the fault draws' stream
    _task_name: ClassVar[str] = "sim-ws-writer"

    def __init__(self, serial: int, ws: web.WebSocketResponse,
                 transport: asyncio.Transport | None, *, max_queue: int, seed: int) -> None:
        self.serial = serial
        self.ws = ws
        self.transport = transport
        self.max_queue = max_queue
        self.closed = transport is None
        self.dropped_slow = False
        self.fx = WsFaultState(random.Random(f"{seed}/{self._rng_tag}/{serial}"))
        # frames a publisher deferred while publishing a batch; flushed in order before
        # anything else is queued
        self.pending: list[bytes] = []
        self._sender = FrameSender(transport, max_queue=max_queue,
                                   on_overflow=self._on_overflow,
                                   halted=lambda: ws.closed) if transport is not None else None
        self._writer: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._writer = asyncio.get_running_loop().create_task(
            self._write_loop(), name=f"{self._task_name}-{self.serial}")

    @property
    def faulted(self) -> bool:
        """Has a fault hit this connection? (Its data then takes :meth:`send_faulted`.)"""
        return bool(self.fx.kinds)

    @property
    def half_open(self) -> bool:
        return self.fx.half_open

    @property
    def queued(self) -> int:
        return len(self._sender) if self._sender is not None else 0

    async def wait_below(self, low_water: int) -> None:
        """Wait until at most ``low_water`` frames are queued (or the connection ended)."""
        if self._sender is not None and not self.closed:
            await self._sender.wait_below(low_water)

    def hit(self, fault: Fault) -> None:
        """Apply a websocket fault to this connection; it stays until the connection ends."""
        self.flush_pending()  # published before the fault: queued as they were
        effect = self.fx.hit(fault)
        if effect is Effect.CLEAR and self._sender is not None:
            self._sender.clear()
        elif effect is Effect.CUT:
            self.abort()

    # -- sending -----------------------------------------------------------------------------
    def _on_overflow(self) -> None:
        log.warning("%s %d is too slow (%d queued); disconnecting",
                    self.name, self.serial, self.max_queue)
        self.dropped_slow = True
        self.closed = True

    def flush_pending(self) -> None:
        """Queue the frames a publisher deferred (see ``pending``)."""
        frames, self.pending = self.pending, []
        if frames and not self.closed and self._sender is not None:
            self._sender.push_many(frames)

    def push_frame(self, frame: bytes) -> None:
        """Queue a complete frame (:func:`~venueguard.sim.fanout.text_frame`) as it is: the
        publisher's fast path for a connection with no faults, one frame for all subscribers."""
        if self.pending:
            self.flush_pending()
        if not self.closed and self._sender is not None:
            self._sender.push(frame)

    def push(self, payload: bytes) -> None:
        """Queue one text message (serialised JSON) as it is."""
        self.push_frame(text_frame(payload))

    def send_control(self, payload: bytes) -> None:
        """Acks, errors, pongs: stopped only by a half-open fault."""
        if not self.fx.half_open:
            self.push(payload)

    def send_json(self, obj: Mapping[str, object]) -> None:
        self.send_control(orjson.dumps(obj))

    def send_faulted(self, payload: bytes, shifted: Callable[[int], bytes], *, gap: bool,
                     shuffle: bool) -> None:
        """A data message on a connection a fault hit. ``payload`` is the message as sent;
        ``shifted(ms)`` builds it with its timestamps moved by ``ms``; a ``gap`` fault may drop
        it when ``gap``; it may be held back or repeated when ``shuffle``."""
        fx = self.fx
        if fx.stalled or fx.half_open or self.closed:
            return
        if gap and fx.take_gap():
            return
        if fx.shift_ms:
            payload = shifted(fx.shift_ms)
        for data in fx.release(payload, shuffle):
            self.push(data)

    async def _write_loop(self) -> None:
        if self._sender is None:
            return
        try:
            await self._sender.run()
        except (ConnectionError, RuntimeError) as exc:
            log.debug("%s %d: send failed: %s", self.name, self.serial, exc)
        if self.dropped_slow and not self.ws.closed:
            # the client is not reading: a close handshake would wait on it, so cut it off
            self.abort()

    # -- closing -----------------------------------------------------------------------------
    def abort(self) -> None:
        """Drop the TCP connection without a close frame."""
        self.closed = True
        if self._sender is not None:
            self._sender.close()
        if self.transport is not None:
            self.transport.abort()

    async def finish(self, flush_timeout_s: float = 1.0) -> None:
        """Send what is queued (briefly), stop the writer and close the socket (idempotent)."""
        self.closed = True
        if self._sender is not None:
            self._sender.close()
        writer, self._writer = self._writer, None
        if writer is not None:
            if not writer.done():
                try:
                    async with asyncio.timeout(flush_timeout_s):
                        await asyncio.shield(writer)
                except TimeoutError:
                    writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        if not self.ws.closed and not self.fx.half_open:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await self.ws.close()
        if not self.ws.closed:
            self.abort()
