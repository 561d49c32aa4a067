"""Websocket transports: open a connection and pump frames into a handler, nothing more.

The market-data session is written against two small protocols, so the library underneath is a
choice (see docs/performance.md for the measurement behind the default):

* :func:`connect_picows` (the session's default): picows calls :meth:`WsHandler.on_text`
  straight from the socket's ``data_received``, with no per-message task switch or queue (or,
  for a handler that takes them, ``on_texts`` once per read with all its text frames);
* :func:`connect_aiohttp`: aiohttp's client, read by one task (no extra compiled dependency
  path; about 25% more CPU per message through the pipeline, and on loopback its read flow
  control was seen to leave a fast stream waiting for tens of milliseconds at a time).

Frames are delivered synchronously, in order, as ``bytes`` (aiohttp runs with
``decode_text=False``, so no UTF-8 round trip); the handler must not block. Protocol ping frames
from the server are answered here; protocol pongs are reported (:meth:`WsHandler.on_pong_frame`).
Text ``ping``/``pong`` heartbeats are the session's business (they are ordinary text frames).

Errors while connecting raise :class:`ConnectFailed` carrying a core ``Outcome`` (HTTP status,
headers and body of a refused upgrade, or a transport failure) for the classifier; the session
maps it to its own errors. No library exception escapes a connector.

Public API::

    class WsHandler(Protocol): on_text(payload: bytes); on_pong_frame(); on_closed()
                               (optional: on_texts(payloads: list[bytes]), a read's texts)
    class WsConnection(Protocol): send_text(data); send_ping(); abort(); async wait_closed()
    WsConnector = Callable[[str, WsHandler, Mapping[str, str], float], Awaitable[WsConnection]]
    async connect_picows(url, handler, headers, timeout_s) -> WsConnection
    async connect_aiohttp(url, handler, headers, timeout_s) -> WsConnection
    class ConnectFailed(Exception): outcome: Outcome
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, Protocol

import aiohttp

from venueguard.core.classify import Outcome, Transport
from venueguard.io.clock import virtual_time
from venueguard.io.http_transport import transport_failure

__all__ = [
    "ConnectFailed",
    "WsConnection",
    "WsConnector",
    "WsHandler",
    "connect_aiohttp",
    "connect_picows",
]

_MAX_FRAME_BYTES = 16 * 1024 * 1024


class WsHandler(Protocol):
    """Receives a connection's frames, in order, synchronously.

    A handler may also have ``on_texts(payloads: list[bytes])``: :func:`connect_picows` then
    hands it the text frames of each read together, in order, instead of one ``on_text`` each.
    """

    def on_text(self, payload: bytes) -> None: ...

    def on_pong_frame(self) -> None: ...

    def on_closed(self) -> None: ...


class WsConnection(Protocol):
    """An open websocket; every method returns at once."""

    def send_text(self, data: bytes | str) -> None: ...

    def send_ping(self) -> None: ...

    def abort(self) -> None: ...

    async def wait_closed(self) -> None: ...


WsConnector = Callable[[str, WsHandler, Mapping[str, str], float], Awaitable[WsConnection]]


class ConnectFailed(Exception):
    """Opening the websocket failed; ``outcome`` says how, for the classifier."""

    def __init__(self, outcome: Outcome, detail: str) -> None:
        super().__init__(detail)
        self.outcome = outcome


def _transport_failure(exc: BaseException) -> Transport:
    failure, _ = transport_failure(exc, sent=False)
    return Transport.CONNECT_TIMEOUT if failure is Transport.READ_TIMEOUT else failure


# ---- picows -----------------------------------------------------------------------------------


class _PicowsConnection:
    __slots__ = ("_transport",)

    def __init__(self, transport: Any) -> None:
        self._transport = transport

    def send_text(self, data: bytes | str) -> None:
        from picows import WSMsgType

        payload = data.encode() if isinstance(data, str) else data
        if not self._transport.is_disconnected:
            self._transport.send(WSMsgType.TEXT, payload)

    def send_ping(self) -> None:
        if not self._transport.is_disconnected:
            self._transport.send_ping()

    def abort(self) -> None:
        self._transport.disconnect(graceful=False)

    async def wait_closed(self) -> None:
        await self._transport.wait_disconnected()


async def connect_picows(url: str, handler: WsHandler, headers: Mapping[str, str],
                         timeout_s: float) -> WsConnection:
    """Open ``url`` with picows and pump its frames into ``handler``."""
    from picows import WSListener, WSMsgType, ws_connect
    from picows.common import WSError, WSHandshakeError

    text, pong, close, ping = WSMsgType.TEXT, WSMsgType.PONG, WSMsgType.CLOSE, WSMsgType.PING
    # on a virtual-time loop the connection must go through the loop's own (in-memory)
    # create_connection, not picows' socket fast path
    loop_only: dict[str, Any] = {"use_aiofastnet": False} if virtual_time() else {}

    on_texts: Callable[[list[bytes]], None] | None = getattr(handler, "on_texts", None)

    class _Listener(WSListener):
        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            kind = frame.msg_type
            if kind is text:
                handler.on_text(frame.get_payload_as_bytes())
            elif kind is pong:
                handler.on_pong_frame()
            elif kind is close:
                transport.disconnect(graceful=False)

        def on_ws_disconnected(self, transport: Any) -> None:
            handler.on_closed()

    listener: type[Any] = _Listener
    if on_texts is not None:
        deliver: Callable[[list[bytes]], None] = on_texts

        class _ReadListener(_Listener):
            """Hands the text frames of one read over together (picows marks the last frame of
            each read), in order: a frame of another kind first hands over the texts before it.
            Pings are answered here, not by picows, whose answer would skip this listener and
            so leave the texts before a ping that ends a read waiting for the next read."""

            def __init__(self) -> None:
                super().__init__()
                self.texts: list[bytes] = []

            def on_ws_frame(self, transport: Any, frame: Any) -> None:
                texts = self.texts
                if frame.msg_type is text:
                    texts.append(frame.get_payload_as_bytes())
                    if frame.last_in_buffer:
                        self.texts = []
                        deliver(texts)
                    return
                if texts:
                    self.texts = []
                    deliver(texts)
                if frame.msg_type is ping:
                    transport.send_pong(frame.get_payload_as_bytes())
                else:
                    super().on_ws_frame(transport, frame)

            def on_ws_disconnected(self, transport: Any) -> None:
                if self.texts:
                    texts, self.texts = self.texts, []
                    deliver(texts)
                handler.on_closed()

        listener = _ReadListener

    try:
        async with asyncio.timeout(timeout_s):
            transport, _ = await ws_connect(
                listener, url, websocket_handshake_timeout=timeout_s,
                enable_auto_pong=on_texts is None, max_frame_size=_MAX_FRAME_BYTES,
                extra_headers=dict(headers) or None, max_redirects=0, **loop_only,
            )
    except WSHandshakeError as exc:
        response = exc.response
        status = int(response.status) if response is not None and response.status else None
        resp_headers = dict(response.headers) if response is not None else None
        outcome = Outcome(status=status, headers=resp_headers, body=exc.raw_body,
                          transport=None if status else Transport.OTHER, sent=True)
        raise ConnectFailed(outcome, f"websocket upgrade refused (status {status})") from exc
    except (WSError, OSError, TimeoutError) as exc:
        failure = _transport_failure(exc)
        raise ConnectFailed(Outcome(transport=failure, sent=False),
                            f"websocket connect failed: {failure.value}") from exc
    return _PicowsConnection(transport)


# ---- aiohttp ----------------------------------------------------------------------------------


class _AiohttpConnection:
    def __init__(self, session: aiohttp.ClientSession,
                 ws: aiohttp.ClientWebSocketResponse[Literal[False]],
                 handler: WsHandler) -> None:
        self._session = session
        self._ws = ws
        self._handler = handler
        self._closed = asyncio.Event()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        ws, handler = self._ws, self._handler
        receive, on_text = ws.receive, handler.on_text  # bound once: this loop runs per frame
        kinds = aiohttp.WSMsgType
        text, binary, ping, pong = kinds.TEXT, kinds.BINARY, kinds.PING, kinds.PONG
        try:
            while True:
                msg = await receive()
                kind = msg.type
                if kind is text or kind is binary:
                    on_text(msg.data)  # bytes: decode_text=False, no UTF-8 round trip
                elif kind is ping:
                    await ws.pong(msg.data)
                elif kind is pong:
                    handler.on_pong_frame()
                else:  # CLOSE, CLOSING, CLOSED, ERROR
                    break
        except (aiohttp.ClientError, OSError, RuntimeError):
            pass
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        with contextlib.suppress(aiohttp.ClientError, OSError, RuntimeError, TimeoutError):
            async with asyncio.timeout(0.5):
                await self._ws.close()
        await self._session.close()
        self._handler.on_closed()

    def send_text(self, data: bytes | str) -> None:
        payload = data.decode() if isinstance(data, bytes) else data
        if not self._ws.closed:
            asyncio.get_running_loop().create_task(self._send(payload))

    async def _send(self, payload: str) -> None:
        with contextlib.suppress(aiohttp.ClientError, OSError, RuntimeError):
            await self._ws.send_str(payload)

    def send_ping(self) -> None:
        if not self._ws.closed:
            asyncio.get_running_loop().create_task(self._ping())

    async def _ping(self) -> None:
        with contextlib.suppress(aiohttp.ClientError, OSError, RuntimeError):
            await self._ws.ping()

    def abort(self) -> None:
        self._reader.cancel()

    async def wait_closed(self) -> None:
        await self._closed.wait()


async def connect_aiohttp(url: str, handler: WsHandler, headers: Mapping[str, str],
                          timeout_s: float) -> WsConnection:
    """Open ``url`` with aiohttp and pump its frames into ``handler`` from one task."""
    session = aiohttp.ClientSession()
    try:
        async with asyncio.timeout(timeout_s):
            ws = await session.ws_connect(
                url, headers=dict(headers), autoping=False, max_msg_size=_MAX_FRAME_BYTES,
                timeout=aiohttp.ClientWSTimeout(ws_close=0.5), compress=0, decode_text=False,
            )
    except aiohttp.WSServerHandshakeError as exc:
        await session.close()
        headers_out = dict(exc.headers) if exc.headers else None
        raise ConnectFailed(Outcome(status=exc.status, headers=headers_out, sent=True),
                            f"websocket upgrade refused (status {exc.status})") from exc
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        await session.close()
        failure = _transport_failure(exc)
        raise ConnectFailed(Outcome(transport=failure, sent=False),
                            f"websocket connect failed: {failure.value}") from exc
    except BaseException:
        await session.close()
        raise
    return _AiohttpConnection(session, ws, handler)
