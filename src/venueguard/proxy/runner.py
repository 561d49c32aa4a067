"""The proxy's HTTP server: aiohttp's, with requests its parser cannot read answered quietly.

aiohttp answers a request it cannot parse (a malformed request line or header, a header too long,
a bad chunk) itself, with an ERROR log line whose message quotes the offending bytes. In front of
a venue those bytes can be a signed query string, so here the answer is a plain 400 (or the
parser's status) and the log line names the client, the status and the error's type, never the
request's content. The swap uses aiohttp internals (written once, in
:mod:`venueguard.sim.httpserver`, for the simulator and the proxy); should they change, the runner
falls back to aiohttp's own handling (the proxy still serves).
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from venueguard.sim.httpserver import AnsweringHandler, AnsweringRunner, server_class

__all__ = ["ProxyRunner"]

log = logging.getLogger("venueguard.proxy.http")


class _QuietHandler(AnsweringHandler):
    __slots__ = ()
    gone_log = log

    def other_error(self, request: BaseRequest, status: int, exc: BaseException | None,
                    message: str | None) -> web.StreamResponse:
        log.warning("error serving a request from %s: %s", request.remote,
                    type(exc).__name__ if exc is not None else status)
        return RequestHandler.handle_error(self, request, status, None, None)

    def unreadable(self, request: BaseRequest, status: int, exc: HttpProcessingError,
                   message: str | None) -> web.Response:
        log.warning("unreadable HTTP request from %s: %s %s", request.remote, status,
                    type(exc).__name__)
        return web.Response(status=status, text=f"{status} unreadable request\n")


class ProxyRunner(AnsweringRunner):
    """:class:`aiohttp.web.AppRunner` whose server never logs a request's content."""

    __slots__ = ()
    server_type = server_class(_QuietHandler)
