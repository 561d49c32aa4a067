"""One websocket connection's outbound side: a bounded send queue, a writer task, and its faults.

The publisher serialises and frames each update once and hands the same bytes to every subscriber
(:meth:`WsConnection.push_frame`); the writer sends them in batches and gives the event loop back
between batches (:mod:`venueguard.sim.fanout`). A connection that is hit by a fault takes a slower
path (:meth:`WsConnection.send_data`) that rewrites or drops messages for that connection only.
When the queue grows past ``max_queue`` messages the client is too slow: the connection is closed
rather than letting memory grow.

Call order: create, :meth:`start` (spawns the writer), ``send_*`` any number of times,
:meth:`finish` once the reader loop has ended (stops the writer and closes the socket).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from venueguard.sim.fanout import FrameSender, SenderConnection, text_frame
from venueguard.sim.faults import Fault
from venueguard.venues.bitmex import timefmt

log = logging.getLogger(__name__)

_TIME_FIELDS = ("timestamp", "transactTime")


class WsConnection(SenderConnection):
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
        self.closed = transport is None
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
        # frames the hub deferred while publishing a batch (WsHub.batch); flushed in order
        # before anything else is queued
        self.pending: list[bytes] = []
        self._rng = random.Random(f"{seed}/conn/{serial}")
        self._sender = FrameSender(transport, max_queue=max_queue,
                                   on_overflow=self._on_overflow,
                                   halted=lambda: ws.closed) if transport is not None else None
        self._writer: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._writer = asyncio.get_running_loop().create_task(
            self._write_loop(), name=f"sim-ws-writer-{self.serial}")

    @property
    def plain(self) -> bool:
        return not self.faults

    @property
    def queued(self) -> int:
        return len(self._sender) if self._sender is not None else 0

    @property
    def sent_messages(self) -> int:
        return self._sender.sent_frames if self._sender is not None else 0

    async def wait_below(self, low_water: int) -> None:
        """Wait until at most ``low_water`` messages are queued (or the connection ended)."""
        if self._sender is not None and not self.closed:
            await self._sender.wait_below(low_water)

    # -- fault hits ----------------------------------------------------------------------------
    def hit(self, fault: Fault) -> None:
        """Apply a websocket fault to this connection; it stays until the connection ends."""
        self.flush_pending()  # published before the fault: queued as they were
        self.faults.append(fault.kind)
        p = fault.params
        if fault.kind == "ws_stall":
            self.stalled = True
            self._clear_queue()  # the stream stops now, not after what is already queued
        elif fault.kind == "ws_half_open":
            self.half_open = True
            self._clear_queue()
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
    def _clear_queue(self) -> None:
        if self._sender is not None:
            self._sender.clear()

    def _on_overflow(self) -> None:
        log.warning("ws connection %d is too slow (%d queued); disconnecting",
                    self.serial, self.max_queue)
        self.dropped_slow = True
        self.closed = True

    def flush_pending(self) -> None:
        """Queue the frames the hub deferred (see ``pending``)."""
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
            payload = orjson.dumps(shift_times(msg, self.shift_ms))
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
        ws = self.ws
        if self._sender is None:
            return
        try:
            await self._sender.run()
        except (ConnectionError, RuntimeError) as exc:
            log.debug("ws connection %d: send failed: %s", self.serial, exc)
        if self.dropped_slow and not ws.closed:
            # the client is not reading: a close handshake would wait on it, so cut it off
            self.abort()


def shift_times(msg: Mapping[str, Any], shift_ms: int) -> dict[str, Any]:
    """A BitMEX table message with every row's ``timestamp`` / ``transactTime`` moved by
    ``shift_ms`` (the other fields and rows as they were)."""
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
