"""Playing a recording into one connection, below both dialects (``venueguard sim --replay``).

A :class:`Player` sends one subscription its recorded messages from the recording's start, in
order, spaced as recorded divided by ``speed`` (2 plays twice as fast; 0 as fast as the client
reads them). A slow reader is waited for, never dropped: past half the connection's queue the
player waits until the writer has caught up. It gives the event loop back every
``YIELD_EVERY`` messages, so a fast replay never holds REST requests or other connections.

A dialect's player (:mod:`venueguard.sim.bitmex.replay`, :mod:`venueguard.sim.binance.replay`)
says which recorded messages the subscription gets (:meth:`Player.items`, with their recorded
times) and how one is sent (:meth:`Player.send`).

Call order: create, :meth:`Player.start` once, :meth:`Player.cancel` to stop (it also stops by
itself when the connection closes or the recording ends); :meth:`Player.wait` for its end.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Generic, TypeVar

from venueguard.sim.conn import SimConnection

__all__ = ["YIELD_EVERY", "Player", "ReplayError"]

YIELD_EVERY = 256  # messages sent between two turns given to the event loop

T = TypeVar("T")


class ReplayError(ValueError):
    """The recording cannot be used; the message names the file and line."""


class Player(Generic[T]):
    """Plays recorded items of type ``T`` into one connection."""

    def __init__(self, conn: SimConnection, *, speed: float, name: str) -> None:
        self.conn = conn
        self.speed = speed
        self.name = name
        self.sent = 0
        self._task: asyncio.Task[None] | None = None

    # -- the dialect's hooks -------------------------------------------------------------------
    def items(self) -> Iterator[tuple[int | None, T]]:
        """The items to send, in order, each with its recorded time (epoch ms; None or 0 when
        the recording has none: sent without waiting)."""
        raise NotImplementedError

    def send(self, item: T) -> None:
        raise NotImplementedError

    # -- running -------------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._play(), name=self.name)

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def wait(self) -> None:
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _play(self) -> None:
        conn = self.conn
        loop = asyncio.get_running_loop()
        start_s = loop.time()
        first_ts: int | None = None
        high_water = max(1, conn.max_queue // 2)
        for ts_ms, item in self.items():
            if conn.closed:
                return
            if self.speed > 0 and ts_ms:
                first_ts = ts_ms if first_ts is None else first_ts
                delay_s = start_s + (ts_ms - first_ts) / 1000.0 / self.speed - loop.time()
                if delay_s > 0:
                    await asyncio.sleep(delay_s)
            if conn.queued >= high_water:
                await conn.wait_below(high_water // 2)  # let the writer catch up, never drop
            self.send(item)
            self.sent += 1
            if self.sent % YIELD_EVERY == 0:
                await asyncio.sleep(0)
