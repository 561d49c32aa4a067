"""One BitMEX ``/realtime`` connection: its topics, and how a table message is sent and shifted.

The queue, the writer, the fault state and the close are
:class:`~venueguard.sim.conn.SimConnection`'s (below both dialects); a fault's time shift moves
every row's ``timestamp`` / ``transactTime``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from venueguard.sim.conn import SimConnection
from venueguard.venues.bitmex import timefmt

_TIME_FIELDS = ("timestamp", "transactTime")


class WsConnection(SimConnection):
    """One ``/realtime`` connection: its topics, authentication and error count."""

    def __init__(self, serial: int, ws: web.WebSocketResponse, transport: asyncio.Transport | None,
                 peer: str, *, max_queue: int, seed: int) -> None:
        super().__init__(serial, ws, transport, max_queue=max_queue, seed=seed)
        self.peer = peer
        self.topics: set[str] = set()
        self.authenticated = False
        self.errors = 0

    def send_data(self, payload: bytes, msg: Mapping[str, Any], *, delta: bool = True,
                  public: bool = True) -> None:
        """A table message; ``payload`` is ``msg`` already serialised (shared by subscribers).
        A gap takes public deltas; only deltas are held back or repeated."""
        if not self.fx.kinds:
            self.push(payload)
            return
        self.send_faulted(payload, lambda ms: orjson.dumps(shift_times(msg, ms)),
                          gap=delta and public, shuffle=delta)


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
