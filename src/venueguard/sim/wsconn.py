"""One websocket connection's outbound side: a bounded send queue, a writer task, and its faults.

The publisher serialises each update once and hands the same bytes to every subscriber
(:meth:`WsConnection.send_data`). A connection that is hit by a fault takes a slower path that
rewrites or drops messages for that connection only. When the queue grows past ``max_queue``
messages the client is too slow: the connection is closed rather than letting memory grow.

Call order: create, :meth:`start` (spawns the writer), ``send_*`` any number of times,
:meth:`finish` once the reader loop has ended (stops the writer and closes the socket).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from venueguard.sim.faults import Fault
from venueguard.venues.bitmex import timefmt

log = logging.getLogger(__name__)

_TIME_FIELDS = ("timestamp", "transactTime")


class WsConnection:
    """Outbound state of one client connection (subscriptions live in the hub's index)."""

    def __init__(self, serial: int, ws: web.WebSocketResponse, transport: asyncio.Transport | None,
                 peer: str, *, max_queue: int, seed: int) -> None:
        self.serial = serial
        self.ws = ws
        self.transport = transport
        self.peer = peer
        self.max_queue = max_queue
        self.topics: set[str] = set()
        self.authenticated = False
        self.errors = 0
        self.closed = False
        self.sent_messages = 0
        self.dropped_slow = False
        # fault state: anything non-default sends data through the slow path
        self.faults: list[str] = []
        self.stalled = False
        self.half_open = False
        self.gap_left = 0
        self.reorder_p = 0.0
        self.duplicate_p = 0.0
        self.shift_ms = 0
        self._held: bytes | None = None
        self._rng = random.Random(f"{seed}/conn/{serial}")
        self._queue: deque[bytes] = deque()
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._low_water = 0
        self._writer: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._writer = asyncio.get_running_loop().create_task(
            self._write_loop(), name=f"sim-ws-writer-{self.serial}")

    async def finish(self, flush_timeout_s: float = 1.0) -> None:
        """Send what is queued (briefly), stop the writer and close the socket (idempotent)."""
        self.closed = True
        self._wake.set()
        self._drained.set()
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
        if not self.ws.closed and not self.half_open:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await self.ws.close()
        if not self.ws.closed:
            self.abort()

    def abort(self) -> None:
        """Drop the TCP connection without a close frame."""
        self.closed = True
        self._wake.set()
        self._drained.set()
        if self.transport is not None:
            self.transport.abort()

    @property
    def plain(self) -> bool:
        return not self.faults

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def wait_below(self, low_water: int) -> None:
        """Wait until at most ``low_water`` messages are queued (or the connection ended)."""
        while len(self._queue) > low_water and not self.closed:
            self._low_water = low_water
            self._drained.clear()
            await self._drained.wait()

    # -- fault hits ----------------------------------------------------------------------------
    def hit(self, fault: Fault) -> None:
        """Apply a websocket fault to this connection; it stays until the connection ends."""
        self.faults.append(fault.kind)
        p = fault.params
        if fault.kind == "ws_stall":
            self.stalled = True
            self._queue.clear()  # the stream stops now, not after what is already queued
        elif fault.kind == "ws_half_open":
            self.half_open = True
            self._queue.clear()
        elif fault.kind == "ws_drop":
            self.abort()
        elif fault.kind == "ws_reorder":
            self.reorder_p = max(self.reorder_p, float(p["probability"]))
        elif fault.kind == "ws_duplicate":
            self.duplicate_p = max(self.duplicate_p, float(p["probability"]))
        elif fault.kind == "ws_stale_timestamps":
            self.shift_ms -= int(float(p["delay_s"]) * 1000)
        elif fault.kind == "ws_future_timestamps":
            self.shift_ms += int(float(p["ahead_s"]) * 1000)
        elif fault.kind == "ws_gap":
            self.gap_left += int(p["count"])

    # -- sending ---------------------------------------------------------------------------
    def push(self, payload: bytes) -> None:
        """Queue bytes as they are (the publisher's fast path for a connection with no faults)."""
        if self.closed:
            return
        if len(self._queue) >= self.max_queue:
            log.warning("ws connection %d is too slow (%d queued); disconnecting",
                        self.serial, len(self._queue))
            self.dropped_slow = True
            self._queue.clear()
            self.closed = True
            self._wake.set()
            return
        self._queue.append(payload)
        self._wake.set()

    def send_control(self, payload: bytes) -> None:
        """Acks, errors, pongs: stopped only by a half-open fault."""
        if not self.half_open:
            self.push(payload)

    def send_json(self, obj: Mapping[str, object]) -> None:
        self.send_control(orjson.dumps(obj))

    def send_data(self, payload: bytes, msg: Mapping[str, Any], *, delta: bool = True,
                  public: bool = True) -> None:
        """A table message; ``payload`` is ``msg`` already serialised (shared by subscribers)."""
        if self.plain:
            self.push(payload)
            return
        if self.stalled or self.half_open or self.closed:
            return
        if self.gap_left > 0 and delta and public:
            self.gap_left -= 1
            return
        if self.shift_ms:
            payload = orjson.dumps(_shift_times(msg, self.shift_ms))
        if self.reorder_p and delta and self._held is None and self._rng.random() < self.reorder_p:
            self._held = payload
            return
        self.push(payload)
        if self.duplicate_p and delta and self._rng.random() < self.duplicate_p:
            self.push(payload)
        if self._held is not None and self._held is not payload:
            held, self._held = self._held, None
            self.push(held)

    async def _write_loop(self) -> None:
        queue, ws = self._queue, self.ws
        try:
            while True:
                if not queue:
                    if self.closed:
                        break
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                payload = queue.popleft()
                if len(queue) <= self._low_water:
                    self._drained.set()
                if ws.closed:
                    break
                await ws.send_frame(payload, WSMsgType.TEXT)
                self.sent_messages += 1
        except (ConnectionError, RuntimeError) as exc:
            log.debug("ws connection %d: send failed: %s", self.serial, exc)
        if self.dropped_slow and not ws.closed:
            # the client is not reading: a close handshake would wait on it, so cut it off
            self.abort()


def _shift_times(msg: Mapping[str, Any], shift_ms: int) -> dict[str, Any]:
    out = dict(msg)
    rows = msg.get("data")
    if isinstance(rows, list):
        new_rows = []
        for row in rows:
            if isinstance(row, dict):
                row = dict(row)
                for name in _TIME_FIELDS:
                    ts = timefmt.parse_ms_or_none(row.get(name))
                    if ts is not None:
                        row[name] = timefmt.format_ms(ts + shift_ms)
            new_rows.append(row)
        out["data"] = new_rows
    return out
