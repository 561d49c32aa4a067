"""The proxy's HTTP server: aiohttp's, with requests its parser cannot read answered quietly.

aiohttp answers a request it cannot parse (a malformed request line or header, a header too long,
a bad chunk) itself, with an ERROR log line whose message quotes the offending bytes. In front of
a venue those bytes can be a signed query string, so here the answer is a plain 400 (or the
parser's status) and the log line names the client, the status and the error's type, never the
request's content. The swap uses aiohttp internals; should they change, the runner falls back to
aiohttp's own handling (the proxy still serves).
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

__all__ = ["ProxyRunner"]

log = logging.getLogger("venueguard.proxy.http")


class _QuietHandler(RequestHandler):
    __slots__ = ()

    def handle_error(self, request: BaseRequest, status: int = 500,
                     exc: BaseException | None = None, message: str | None = None
                     ) -> web.StreamResponse:
        if isinstance(exc, ConnectionError):
            log.warning("client %s went away: %s", request.remote, type(exc).__name__)
            if request.writer.output_size > 0:
                raise ConnectionError("response already started") from exc
            gone = web.Response(status=status, text="client went away")
            gone.force_close()
            return gone
        if not isinstance(exc, HttpProcessingError):
            log.warning("error serving a request from %s: %s", request.remote,
                        type(exc).__name__ if exc is not None else status)
            return super().handle_error(request, status, None, None)
        log.warning("unreadable HTTP request from %s: %s %s", request.remote, status,
                    type(exc).__name__)
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot answer the parse error")
        response = web.Response(status=status, text=f"{status} unreadable request\n")
        response.force_close()
        return response


class _Server(web.Server):
    def __call__(self) -> RequestHandler:
        return _QuietHandler(self, loop=self._loop, **self._kwargs)


class ProxyRunner(web.AppRunner):
    """:class:`aiohttp.web.AppRunner` whose server never logs a request's content."""

    __slots__ = ()

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        if type(server) is web.Server and hasattr(server, "_kwargs") and hasattr(server, "_loop"):
            server.__class__ = _Server
        return server
