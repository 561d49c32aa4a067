"""The simulator's HTTP server: aiohttp's, with request-parser failures answered as the venue
answers errors.

A request aiohttp's parser cannot read (a malformed request line or header, a header too long,
an invalid chunk) never reaches the application or its middleware: aiohttp answers it itself,
with a plain-text 400 and an ERROR log line carrying a traceback. Here such a request gets
BitMEX's JSON error body (``{"error": {"message", "name": "HTTPError"}}``) with the same status,
and one WARNING line naming the client and the parser's reason. A client that disconnects
while being answered (for instance during a websocket handshake) is one WARNING line too, not
an ERROR with a traceback. Anything else goes to aiohttp's own handling unchanged.

aiohttp exposes no public hook for this; :class:`SimRunner` swaps in a request-handler subclass
when it builds its server. Should a future aiohttp change those internals, the runner falls
back to aiohttp's plain answers (the simulator still serves). The swap and the client-gone
answer are :class:`AnsweringRunner` and :class:`AnsweringHandler`, which the proxy's runner
shares.

aiohttp also keeps, for the whole process, each route's middleware chain in a cache keyed by the
handler and its application (1,024 entries): a stopped simulator stayed alive there with its
engine, books and rows, and a process running simulators one after another (``venueguard
chaos``, one per seed) grew by tens of MB. :class:`SimRunner` empties that cache when it cleans
up (chains are rebuilt on the next request of any simulator still running).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import orjson
from aiohttp import web, web_app
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from venueguard.venues.bitmex import errors

__all__ = ["AnsweringHandler", "AnsweringRunner", "SimRunner", "json_response",
           "server_class"]

log = logging.getLogger("venueguard.sim.http")


def json_response(data: Any, status: int = 200) -> web.Response:
    """``data`` serialised as a JSON response."""
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


class AnsweringHandler(RequestHandler):
    """aiohttp's request handler with two answers of its own: a client that left mid-answer is one
    WARNING line (no traceback), and a request the parser cannot read is answered by
    :meth:`unreadable` (which logs it) on a connection then closed."""

    __slots__ = ()
    gone_log: ClassVar[logging.Logger] = log  # where a client that left is reported

    def handle_error(self, request: BaseRequest, status: int = 500,
                     exc: BaseException | None = None, message: str | None = None
                     ) -> web.StreamResponse:
        if isinstance(exc, ConnectionError):  # the client left mid-answer: nothing to fix
            self.gone_log.warning("client %s went away: %s", request.remote, type(exc).__name__)
            if request.writer.output_size > 0:
                raise ConnectionError("response already started") from exc
            gone = web.Response(status=status, text="client went away")
            gone.force_close()
            return gone
        if not isinstance(exc, HttpProcessingError):
            return self.other_error(request, status, exc, message)
        response = self.unreadable(request, status, exc, message)
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot answer the parse error")
        response.force_close()
        return response

    def other_error(self, request: BaseRequest, status: int, exc: BaseException | None,
                    message: str | None) -> web.StreamResponse:
        """Any other error: aiohttp's own handling."""
        return super().handle_error(request, status, exc, message)

    def unreadable(self, request: BaseRequest, status: int, exc: HttpProcessingError,
                   message: str | None) -> web.Response:
        raise NotImplementedError


def server_class(handler: type[RequestHandler]) -> type[web.Server]:
    """An aiohttp server whose connections are served by ``handler``."""

    class _Server(web.Server):
        def __call__(self) -> RequestHandler:
            return handler(self, loop=self._loop, **self._kwargs)

    return _Server


class AnsweringRunner(web.AppRunner):
    """:class:`aiohttp.web.AppRunner` whose server is of ``server_type`` (see
    :func:`server_class`); should aiohttp's internals change, aiohttp's own server is kept."""

    __slots__ = ()
    server_type: ClassVar[type[web.Server]]

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        if type(made) is web.Server and hasattr(made, "_kwargs") and hasattr(made, "_loop"):
            made.__class__ = self.server_type
        return made


class _VenueErrorHandler(AnsweringHandler):
    __slots__ = ()

    def unreadable(self, request: BaseRequest, status: int, exc: HttpProcessingError,
                   message: str | None) -> web.Response:
        reason = " ".join(str(message or exc.message or type(exc).__name__).split())[:200]
        log.warning("unreadable HTTP request from %s: %s %s", request.remote, status, reason)
        body = orjson.dumps(errors.rest_error_body(f"Bad request: {reason}", errors.NAME_HTTP))
        return web.Response(status=status, body=body, content_type="application/json")


class SimRunner(AnsweringRunner):
    """:class:`aiohttp.web.AppRunner` whose server answers parser failures as the venue does."""

    __slots__ = ()
    server_type = server_class(_VenueErrorHandler)

    async def cleanup(self) -> None:
        await super().cleanup()
        chains = getattr(web_app, "_cached_build_middleware", None)
        forget = getattr(chains, "cache_clear", None)
        if callable(forget):
            forget()
