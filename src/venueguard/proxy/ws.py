"""Websocket bridging: one upstream connection per client connection, frame by frame.

A client's upgrade request opens the upstream connection first, at the same path and query on
the websocket upstream, with the client's headers (but the handshake's own) and subprotocols; if
that fails the client gets the upstream's refusal status, or 502 when it cannot be reached. Then
two pumps run until either side closes:

- upstream -> client: text, binary, ping and pong frames are written to the client as whole
  frames, in order, through a bounded queue (:class:`~venueguard.sim.fanout.FrameSender`), so a
  slow client slows the upstream reads (TCP back-pressure) instead of growing memory;
- client -> upstream: text, binary, ping and pong are sent on; a close is passed on with its code.

Neither side answers pings itself: pings travel end to end, so a stall injected here answers
pings exactly as the upstream does. Towards the client at most ``_HIGH_FRAMES`` frames wait in
the queue; past that the upstream is not read until the client has taken all but
``_LOW_FRAMES`` (a frame from the client is sent on before the next one is read).

Faults (a hit connection stays broken until it closes, as in the simulator):
``ws_stall`` data stops, control messages (pongs, acks) and ping frames still pass;
``ws_half_open`` nothing reaches the client any more, its pings go nowhere;
``ws_drop`` the client's connection is cut without a close frame;
``ws_reorder`` / ``ws_duplicate`` a data message is held back / sent twice;
``ws_stale_timestamps`` / ``ws_future_timestamps`` the dialect's timestamps move;
``ws_gap`` the next ``count`` deltas (BitMEX public deltas, Binance depth updates) are dropped.

With ``silence_s`` set (guarding), a connection whose upstream sent no data for that long is
closed towards the client (close code 1011), so the client's own reconnect runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

import aiohttp
import orjson
from aiohttp import WSMsgType, web
from yarl import URL

from venueguard.proxy.dialects import Dialect, Frame
from venueguard.proxy.rest import origin_form, request_headers
from venueguard.sim.fanout import FrameSender, text_frame
from venueguard.sim.faults import Fault
from venueguard.sim.wsfaults import Effect, WsFaultState

if TYPE_CHECKING:
    from venueguard.proxy.server import ProxyServer

log = logging.getLogger(__name__)

__all__ = ["Bridge", "handle"]

_HANDSHAKE = frozenset({"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
                        "sec-websocket-protocol", "sec-websocket-accept"})
_HIGH_FRAMES = 4096  # queued towards the client: stop reading the upstream until below LOW
_LOW_FRAMES = 1024
_MAX_QUEUE = 100_000
_OP_BINARY, _OP_PING, _OP_PONG = 0x2, 0x9, 0xA
_NOT_SENDABLE = frozenset({1005, 1006, 1015})  # reported locally, never sent in a close frame


def _frame(opcode: int, payload: bytes) -> bytes:
    """A final, unmasked frame (server to client) with ``opcode``."""
    n = len(payload)
    first = 0x80 | opcode
    if n < 126:
        return bytes((first, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", first, 126, n) + payload
    return struct.pack("!BBQ", first, 127, n) + payload


class Bridge:
    """One client connection and its upstream, with the faults that hit it."""

    def __init__(self, serial: int, client: web.WebSocketResponse, transport: asyncio.Transport,
                 upstream: aiohttp.ClientWebSocketResponse, dialect: Dialect, seed: int) -> None:
        self.serial = serial
        self.client = client
        self.transport = transport
        self.upstream = upstream
        self.dialect = dialect
        self.sender = FrameSender(transport, max_queue=_MAX_QUEUE, on_overflow=self._overflow,
                                  halted=lambda: client.closed)
        self.fx = WsFaultState(random.Random(f"{seed}/proxy-conn/{serial}"))
        self.dropped = False
        self.last_data_s = 0.0
        self.messages = 0  # data messages from the upstream
        self.counted = 0  # of which the guard's metrics already counted
        self.silenced = False
        #: With a guard recording the market: told each symbol's best bid and ask from the
        #: venue's top-of-book messages, at most once a second per connection.
        self.on_quote: Callable[[str, float, float], None] | None = None
        self.quote_due_s = math.inf

    # -- faults --------------------------------------------------------------------------------
    def hit(self, fault: Fault) -> None:
        effect = self.fx.hit(fault)
        if effect is Effect.CLEAR:
            self.sender.clear()
        elif effect is Effect.CUT:
            self.drop()

    @property
    def half_open(self) -> bool:
        return self.fx.half_open

    def watch_quotes(self, sink: Callable[[str, float, float], None]) -> None:
        """Tell ``sink`` each symbol's best bid and ask the venue sends on this connection
        (its top-of-book messages: BitMEX ``quote``, Binance ``bookTicker``), at most once a
        second; other messages cost one comparison."""
        self.on_quote = sink
        self.quote_due_s = 0.0

    def drop(self) -> None:
        """Cut the client's connection without a close frame (the upstream is closed cleanly)."""
        self.dropped = True
        self.sender.close()
        self.transport.abort()

    def _overflow(self) -> None:
        log.warning("proxy ws connection %d: the client is too slow; disconnecting", self.serial)
        self.drop()

    # -- upstream -> client --------------------------------------------------------------------
    def _text(self, text: str) -> None:
        fx = self.fx
        if not fx.kinds:
            self.sender.push(text_frame(text.encode()))
            return
        if fx.half_open:
            return
        kind, decoded = self.dialect.frame(text)
        if kind is Frame.CONTROL:
            self.sender.push(text_frame(text.encode()))
            return
        if fx.stalled:
            return
        if kind is Frame.DELTA and fx.take_gap():
            return
        payload = text.encode()
        if fx.shift_ms:
            shifted = self.dialect.shift(decoded, fx.shift_ms)
            if shifted is not None:
                payload = shifted
        self._data(text_frame(payload), kind is not Frame.SNAPSHOT)

    def _quote(self, text: str, now_s: float) -> None:
        marker = self.dialect.quote_marker
        if marker is None or self.on_quote is None or marker not in text:
            return
        try:
            decoded = orjson.loads(text)
        except orjson.JSONDecodeError:
            return
        quotes = self.dialect.quotes(decoded)
        for symbol, bid, ask in quotes:
            self.on_quote(symbol, bid, ask)
        if quotes:
            self.quote_due_s = now_s + 1.0

    def _data(self, frame: bytes, shuffle: bool) -> None:
        for data in self.fx.release(frame, shuffle):
            self.sender.push(data)

    async def pump_up(self, now: Callable[[], float]) -> None:
        """Upstream -> client until the upstream closes; ``now()`` is monotonic seconds."""
        upstream, sender = self.upstream, self.sender
        while True:
            msg = await upstream.receive()
            kind = msg.type
            if kind is WSMsgType.TEXT:
                data = msg.data
                if data != "pong":
                    self.last_data_s = at = now()
                    self.messages += 1
                    if at >= self.quote_due_s:
                        self._quote(data, at)
                self._text(data)
            elif kind is WSMsgType.BINARY:
                self.last_data_s = now()
                self.messages += 1
                if not (self.fx.stalled or self.fx.half_open):
                    self._data(_frame(_OP_BINARY, msg.data), True)
            elif kind is WSMsgType.PING:
                if not self.half_open:
                    sender.push(_frame(_OP_PING, msg.data))
            elif kind is WSMsgType.PONG:
                if not self.half_open:
                    sender.push(_frame(_OP_PONG, msg.data))
            else:  # CLOSE, CLOSING, CLOSED, ERROR
                return
            if len(sender) > _HIGH_FRAMES:
                await sender.wait_below(_LOW_FRAMES)

    # -- client -> upstream --------------------------------------------------------------------
    async def pump_down(self) -> None:
        client, upstream = self.client, self.upstream
        while True:
            msg = await client.receive()
            kind = msg.type
            if self.half_open and kind in (WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.PING):
                continue  # the path is dead: nothing gets through, nothing comes back
            if kind is WSMsgType.TEXT:
                await upstream.send_str(msg.data)
            elif kind is WSMsgType.BINARY:
                await upstream.send_bytes(msg.data)
            elif kind is WSMsgType.PING:
                await upstream.ping(msg.data)
            elif kind is WSMsgType.PONG:
                await upstream.pong(msg.data)
            else:
                return

    async def run(self, now: Callable[[], float], silence_s: float | None) -> None:
        """Pump both ways until either side ends (or the upstream stays silent ``silence_s``)."""
        self.last_data_s = now()
        loop = asyncio.get_running_loop()
        writer = loop.create_task(self._write(), name=f"proxy-ws-writer-{self.serial}")
        tasks = {loop.create_task(self.pump_up(now)), loop.create_task(self.pump_down())}
        if silence_s is not None:
            tasks.add(loop.create_task(self._watch(now, silence_s)))
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            for result in results:
                if isinstance(result, Exception):
                    log.debug("proxy ws connection %d ended: %r", self.serial, result)
            self.sender.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await asyncio.shield(writer)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
                await writer

    async def _write(self) -> None:
        try:
            await self.sender.run()
        except (ConnectionError, RuntimeError) as exc:
            log.debug("proxy ws connection %d: send failed: %s", self.serial, exc)

    async def _watch(self, now: Callable[[], float], silence_s: float) -> None:
        step_s = max(0.05, silence_s / 4)
        while True:
            await asyncio.sleep(step_s)
            if now() - self.last_data_s > silence_s:
                self.silenced = True
                return

    async def close(self) -> None:
        """Flush briefly and close both sides; the client gets the upstream's close code, or
        loses its connection without a close frame when the upstream's was lost that way."""
        self.sender.close()
        up_code = self.upstream.close_code
        code: int
        if self.silenced:
            code = aiohttp.WSCloseCode.INTERNAL_ERROR
        elif up_code is None or up_code in _NOT_SENDABLE:
            if not self.client.closed:
                self.drop()  # as the client would have seen the venue's connection die
            code = aiohttp.WSCloseCode.OK
        else:
            code = up_code
        if not self.dropped:
            with contextlib.suppress(ConnectionError, RuntimeError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await self.client.close(code=code, message=b"upstream silent"
                                            if self.silenced else b"")
        down_code = self.client.close_code
        if down_code is None or down_code in _NOT_SENDABLE:
            down_code = aiohttp.WSCloseCode.OK
        with contextlib.suppress(ConnectionError, RuntimeError, TimeoutError, ValueError):
            async with asyncio.timeout(1.0):
                await self.upstream.close(code=down_code)


def _upstream_headers(request: web.Request) -> dict[str, str]:
    return {k: v for k, v in request_headers(request.headers) if k.lower() not in _HANDSHAKE}


async def handle(proxy: ProxyServer, request: web.Request) -> web.StreamResponse:
    """Bridge one websocket upgrade request."""
    protocols = tuple(p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "")
                      .split(",") if p.strip())
    client = web.WebSocketResponse(autoping=False, protocols=protocols, compress=False,
                                   max_msg_size=proxy.max_frame)
    if not client.can_prepare(request).ok:  # a malformed upgrade: no upstream connection for it
        return web.Response(status=400, text="malformed websocket upgrade request\n")
    url = proxy.ws_upstream_base + origin_form(request)
    try:
        upstream = await proxy.session.ws_connect(
            URL(url, encoded=True), headers=_upstream_headers(request),
            protocols=protocols, autoping=False, autoclose=False, max_msg_size=proxy.max_frame,
            compress=0, timeout=aiohttp.ClientWSTimeout(ws_close=2.0))
    except aiohttp.WSServerHandshakeError as exc:
        return web.Response(status=exc.status if 400 <= exc.status < 600 else 502,
                            text=f"upstream refused the websocket: {exc.status}\n")
    except (aiohttp.ClientError, ConnectionError, TimeoutError):
        return web.Response(status=502, text="upstream websocket unreachable\n")
    except ValueError:
        return web.Response(status=400, text="request cannot be forwarded\n")
    try:
        await client.prepare(request)
    except BaseException:
        await upstream.close()
        raise
    transport = request.transport
    if transport is None:  # the client left during the handshake
        await upstream.close()
        return client
    bridge = proxy.open_bridge(client, transport, upstream)
    try:
        await bridge.run(proxy.clock.monotonic_s, proxy.config.ws_silence_s)
    finally:
        proxy.close_bridge(bridge)
        await bridge.close()
    return client
