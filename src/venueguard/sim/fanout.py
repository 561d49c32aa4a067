"""Websocket fan-out without blocking the event loop: frame once, write in batches, yield.

The simulator serves REST and every websocket subscriber from one event loop. Writing one frame
per message and per subscriber through aiohttp's ``send_frame`` never gives the loop back while
the socket accepts data (an uncompressed ``send_frame`` only suspends when the transport is
paused), so a connection with a backlog could hold the loop for as long as its backlog took to
write, and REST requests waited behind it. Here:

- :func:`text_frame` builds a complete server-to-client text frame (header + payload; server
  frames are never masked) once per message; the same bytes go to every subscriber;
- :class:`FrameSender` queues frames per connection and its :meth:`FrameSender.run` loop writes
  whatever is queued in batches of at most ``BATCH_FRAMES`` with one ``transport.write`` each,
  giving the loop back after every batch and waiting while the transport's buffer is above
  ``HIGH_WATER_BYTES`` (the client reads slower than the venue sends).

The writer bypasses aiohttp's websocket writer, so it is used only on connections that did not
negotiate compression (the simulator's websocket endpoints never offer it). Control frames that
aiohttp writes itself (pong, close) are whole frames written synchronously, so they never split
one of ours. The measurements behind this choice are in ``docs/performance.md``.

Call order: ``FrameSender(transport, max_queue=...)``; run :meth:`FrameSender.run` in a task;
:meth:`push` frames; :meth:`close` (then await the task) to stop after what is queued.
"""

from __future__ import annotations

import asyncio
import struct
from collections import deque
from collections.abc import Callable

__all__ = ["BATCH_FRAMES", "HIGH_WATER_BYTES", "FrameSender", "text_frame"]

BATCH_FRAMES = 256  # one transport write (about 50 KB of book deltas), then the loop gets a turn
HIGH_WATER_BYTES = 1 << 20  # transport buffer above this: wait for the client to read
_DRAIN_POLL_S = 0.002
_PACK2 = struct.Struct("!BBH").pack
_PACK8 = struct.Struct("!BBQ").pack
_TEXT_FIN = 0x81


def text_frame(payload: bytes) -> bytes:
    """A final, unmasked websocket text frame carrying ``payload`` (RFC 6455 section 5.2)."""
    n = len(payload)
    if n < 126:
        return bytes((_TEXT_FIN, n)) + payload
    if n < 65536:
        return _PACK2(_TEXT_FIN, 126, n) + payload
    return _PACK8(_TEXT_FIN, 127, n) + payload


class FrameSender:
    """The outbound frame queue of one websocket connection and the loop that writes it.

    ``push`` never blocks; past ``max_queue`` frames the client is too slow, the queue is
    dropped and ``on_overflow`` is called once (the owner closes the connection). ``halted``
    is asked before every write: once it says True (e.g. the websocket's close frame went out)
    nothing more is written.
    """

    __slots__ = ("_closed", "_drained", "_halted", "_low_water", "_queue", "_transport",
                 "_wake", "max_queue", "on_overflow", "overflowed", "sent_frames")

    def __init__(self, transport: asyncio.Transport, *, max_queue: int,
                 on_overflow: Callable[[], None] | None = None,
                 halted: Callable[[], bool] | None = None) -> None:
        self._transport = transport
        self._halted = halted
        self.max_queue = max_queue
        self.on_overflow = on_overflow
        self._queue: deque[bytes] = deque()
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._low_water = 0
        self._closed = False
        self.overflowed = False
        self.sent_frames = 0

    def __len__(self) -> int:
        return len(self._queue)

    def push(self, frame: bytes) -> None:
        """Queue one complete frame (see :func:`text_frame`)."""
        if self._closed:
            return
        queue = self._queue
        if len(queue) >= self.max_queue:
            self._overflow()
            return
        queue.append(frame)
        if len(queue) == 1:
            self._wake.set()

    def push_many(self, frames: list[bytes]) -> None:
        """Queue several complete frames, in order (one call for a publisher's batch)."""
        if self._closed or not frames:
            return
        queue = self._queue
        if len(queue) + len(frames) > self.max_queue:
            self._overflow()
            return
        was_empty = not queue
        queue.extend(frames)
        if was_empty:
            self._wake.set()

    def _overflow(self) -> None:
        self.overflowed = True
        self._queue.clear()
        self.close()
        if self.on_overflow is not None:
            self.on_overflow()

    def clear(self) -> None:
        """Forget what is queued (a stalled stream stops now, not after its backlog)."""
        self._queue.clear()
        self._drained.set()

    def close(self) -> None:
        """Stop after what is queued; :meth:`run` returns once it is written."""
        self._closed = True
        self._wake.set()
        self._drained.set()

    async def wait_below(self, low_water: int) -> None:
        """Wait until at most ``low_water`` frames are queued (or the sender stopped)."""
        while len(self._queue) > low_water and not self._closed:
            self._low_water = low_water
            self._drained.clear()
            await self._drained.wait()

    async def run(self) -> None:
        """Write queued frames until :meth:`close`; raises ConnectionError if the peer left."""
        queue, transport = self._queue, self._transport
        popleft = queue.popleft
        while True:
            if not queue:
                if self._closed:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if self._halted is not None and self._halted():
                return
            if transport.is_closing():
                raise ConnectionResetError("the websocket transport is closing")
            count = len(queue)
            if count <= BATCH_FRAMES:
                data = b"".join(queue)
                queue.clear()
            else:
                count = BATCH_FRAMES
                data = b"".join([popleft() for _ in range(count)])
            if len(queue) <= self._low_water:
                self._drained.set()
            transport.write(data)
            self.sent_frames += count
            await asyncio.sleep(0)  # the loop's other work (REST, other connections) goes next
            while transport.get_write_buffer_size() > HIGH_WATER_BYTES:
                if transport.is_closing():
                    raise ConnectionResetError("the websocket transport is closing")
                await asyncio.sleep(_DRAIN_POLL_S)
