"""One websocket connection of the Binance dialect: its streams, queue, writer and faults.

Faults in their Binance form (a hit connection stays broken until it closes):
``ws_stall`` (data stops, pings answered; on a user-data connection the listenKey expires
first: ``listenKeyExpired``, then silence), ``ws_half_open`` (data and pongs stop), ``ws_drop``
(transport aborted), ``ws_reorder`` / ``ws_duplicate`` (an event held back / sent twice),
``ws_stale_timestamps`` / ``ws_future_timestamps`` (``E`` and ``T`` moved), ``ws_gap`` (the next
``count`` depth events are not sent: the following event's ``pu`` differs from the last ``u``
the client saw, which is how a client detects the loss).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any

import orjson
from aiohttp import web

from venueguard.sim.fanout import FrameSender, SenderConnection, text_frame
from venueguard.sim.faults import Fault

log = logging.getLogger(__name__)

__all__ = ["BinanceConn", "shift_event_times"]


def shift_event_times(data: dict[str, Any], shift_ms: int) -> dict[str, Any]:
    """An event with its ``E`` (event time) and ``T`` (transaction time) moved by ``shift_ms``."""
    shifted = dict(data)
    for key in ("E", "T"):
        if isinstance(shifted.get(key), int):
            shifted[key] += shift_ms
    return shifted


class BinanceConn(SenderConnection):
    def __init__(self, serial: int, ws: web.WebSocketResponse, transport: Any, *,
                 combined: bool, opened_s: float, max_queue: int, seed: int) -> None:
        self.serial = serial
        self.ws = ws
        self.transport = transport
        self.combined = combined
        self.opened_s = opened_s
        self.max_queue = max_queue
        self.streams: dict[str, str] = {}  # fan-out key -> the name the client subscribed
        self.listen_key: str | None = None
        self.key_expired = False
        self.closed = transport is None
        self.faulted = False
        self.stalled = False
        self.half_open = False
        self.gap_left = 0
        self.reorder_p = 0.0
        self.duplicate_p = 0.0
        self.shift_ms = 0
        self.last_ping_s = opened_s
        self.last_pong_s = opened_s
        self.incoming_second = -1
        self.incoming = 0
        self._held: bytes | None = None
        self._rng = random.Random(f"{seed}/binance-conn/{serial}")
        # frames are written in batches that give the event loop back (venueguard.sim.fanout)
        self._sender = FrameSender(transport, max_queue=max_queue, on_overflow=self._on_overflow,
                                   halted=lambda: ws.closed) if transport is not None else None
        self._writer: asyncio.Task[None] | None = None
        self._pings: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._writer = asyncio.get_running_loop().create_task(
            self._write_loop(), name=f"sim-binance-ws-{self.serial}")

    # -- faults --------------------------------------------------------------------------------
    def hit(self, fault: Fault) -> None:
        self.faulted = True
        kind, p = fault.kind, fault.params
        if kind == "ws_stall":
            self.stalled = True
            self._clear()
        elif kind == "ws_half_open":
            self.half_open = True
            self._clear()
        elif kind == "ws_drop":
            self.abort()
        elif kind == "ws_reorder":
            self.reorder_p = max(self.reorder_p, float(p["probability"]))
        elif kind == "ws_duplicate":
            self.duplicate_p = max(self.duplicate_p, float(p["probability"]))
        elif kind == "ws_stale_timestamps":
            self.shift_ms -= int(float(p["delay_s"]) * 1000)
        elif kind == "ws_future_timestamps":
            self.shift_ms += int(float(p["ahead_s"]) * 1000)
        elif kind == "ws_gap":
            self.gap_left += int(p["count"])

    # -- sending -------------------------------------------------------------------------------
    @property
    def sent(self) -> int:
        return self._sender.sent_frames if self._sender is not None else 0

    @property
    def queued(self) -> int:
        return len(self._sender) if self._sender is not None else 0

    async def wait_below(self, low_water: int) -> None:
        """Wait until at most ``low_water`` frames are queued (a replay's back-pressure)."""
        if self._sender is not None and not self.closed:
            await self._sender.wait_below(low_water)

    def _clear(self) -> None:
        if self._sender is not None:
            self._sender.clear()

    def _on_overflow(self) -> None:
        log.warning("binance ws connection %d is too slow; disconnecting", self.serial)
        self.abort()

    def push_frame(self, frame: bytes) -> None:
        """Queue a complete frame (:func:`~venueguard.sim.fanout.text_frame`), shared by the
        subscribers of one event."""
        if not self.closed and self._sender is not None:
            self._sender.push(frame)

    def push(self, payload: bytes) -> None:
        self.push_frame(text_frame(payload))

    def send_control(self, obj: Any) -> None:
        if not self.half_open:
            self.push(orjson.dumps(obj))

    def frame(self, name: str, raw: bytes) -> bytes:
        if not self.combined:
            return raw
        return b'{"stream":"' + name.encode() + b'","data":' + raw + b"}"

    def send_event(self, name: str, raw: bytes, data: dict[str, Any], *, depth: bool) -> None:
        """One event; ``raw`` is ``data`` serialised (shared by every subscriber)."""
        if not self.faulted:
            self.push(self.frame(name, raw))
            return
        if self.stalled or self.half_open or self.closed:
            return
        if depth and self.gap_left > 0:
            self.gap_left -= 1
            return
        if self.shift_ms:
            raw = orjson.dumps(shift_event_times(data, self.shift_ms))
        payload = self.frame(name, raw)
        if self.reorder_p and self._held is None and self._rng.random() < self.reorder_p:
            self._held = payload
            return
        self.push(payload)
        if self.duplicate_p and self._rng.random() < self.duplicate_p:
            self.push(payload)
        if self._held is not None and self._held is not payload:
            held, self._held = self._held, None
            self.push(held)

    async def _write_loop(self) -> None:
        if self._sender is None:
            return
        try:
            await self._sender.run()
        except (ConnectionError, RuntimeError) as exc:
            log.debug("binance ws connection %d: send failed: %s", self.serial, exc)

    def ping(self, now_s: float) -> None:
        """A server ping (the venue sends one every 3 minutes); a half-open path loses it."""
        self.last_ping_s = now_s
        if not self.half_open and not self.closed and not self.ws.closed:
            task = asyncio.get_running_loop().create_task(self._ping())
            self._pings.add(task)
            task.add_done_callback(self._pings.discard)

    async def _ping(self) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.ping(b"")
