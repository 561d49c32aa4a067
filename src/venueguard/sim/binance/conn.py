"""One websocket connection of the Binance dialect: its streams, listenKey and keepalive.

The queue, the writer, the fault state and the close are
:class:`~venueguard.sim.conn.SimConnection`'s (below both dialects). Faults in their Binance form
(a hit connection stays broken until it closes): ``ws_stall`` (data stops, pings answered; on a
user-data connection the listenKey expires first: ``listenKeyExpired``, then silence),
``ws_half_open`` (data and pongs stop), ``ws_drop`` (transport aborted), ``ws_reorder`` /
``ws_duplicate`` (an event held back / sent twice), ``ws_stale_timestamps`` /
``ws_future_timestamps`` (``E`` and ``T`` moved), ``ws_gap`` (the next ``count`` depth events are
not sent: the following event's ``pu`` differs from the last ``u`` the client saw, which is how a
client detects the loss).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson
from aiohttp import web

from venueguard.sim.conn import SimConnection

log = logging.getLogger(__name__)

__all__ = ["BinanceConn", "shift_event_times"]


def shift_event_times(data: dict[str, Any], shift_ms: int) -> dict[str, Any]:
    """An event with its ``E`` (event time) and ``T`` (transaction time) moved by ``shift_ms``."""
    shifted = dict(data)
    for key in ("E", "T"):
        if isinstance(shifted.get(key), int):
            shifted[key] += shift_ms
    return shifted


class BinanceConn(SimConnection):
    """One Binance websocket connection: its streams, listenKey, keepalive and incoming rate."""

    name = "binance ws connection"
    _rng_tag = "binance-conn"
    _task_name = "sim-binance-ws"

    def __init__(self, serial: int, ws: web.WebSocketResponse, transport: Any, *,
                 combined: bool, opened_s: float, max_queue: int, seed: int) -> None:
        super().__init__(serial, ws, transport, max_queue=max_queue, seed=seed)
        self.combined = combined
        self.opened_s = opened_s
        self.streams: dict[str, str] = {}  # fan-out key -> the name the client subscribed
        self.listen_key: str | None = None
        self.key_expired = False
        self.last_ping_s = opened_s
        self.last_pong_s = opened_s
        self.incoming_second = -1
        self.incoming = 0
        self._pings: set[asyncio.Task[None]] = set()

    def _on_overflow(self) -> None:
        log.warning("%s %d is too slow (%d queued); disconnecting",
                    self.name, self.serial, self.max_queue)
        self.abort()

    def frame(self, name: str, raw: bytes) -> bytes:
        if not self.combined:
            return raw
        return b'{"stream":"' + name.encode() + b'","data":' + raw + b"}"

    def send_event(self, name: str, raw: bytes, data: dict[str, Any], *, depth: bool) -> None:
        """One event; ``raw`` is ``data`` serialised (shared by every subscriber). A gap takes
        depth events; any event may be held back or repeated."""
        if not self.fx.kinds:
            self.push(self.frame(name, raw))
            return
        self.send_faulted(
            self.frame(name, raw),
            lambda ms: self.frame(name, orjson.dumps(shift_event_times(data, ms))),
            gap=depth, shuffle=True)

    def ping(self, now_s: float) -> None:
        """A server ping (the venue sends one every 3 minutes); a half-open path loses it."""
        self.last_ping_s = now_s
        if not self.fx.half_open and not self.closed and not self.ws.closed:
            task = asyncio.get_running_loop().create_task(self._ping())
            self._pings.add(task)
            task.add_done_callback(self._pings.discard)

    async def _ping(self) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.ping(b"")
