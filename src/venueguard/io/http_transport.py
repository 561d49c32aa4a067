"""The aiohttp :class:`~venueguard.io.rest_transport.RestTransport`: per-phase timeouts, every
failure as a core ``Outcome``.

:class:`AiohttpTransport` keeps the transport contract (io/rest_transport.py): it sends exactly
the bytes it is given and returns a ``RawResponse`` or raises ``TransportFailure``, and maps each
aiohttp or socket exception there, in :func:`transport_failure` (whether the request had been
written comes from aiohttp's trace hook).

The resolver is pluggable (any ``aiohttp.abc.AbstractResolver``), which is how the simulator's
``dns_failure`` fault reaches a client: ``AiohttpTransport(resolver=SimResolver(sim_url))``.

Public API::

    AiohttpTransport(*, resolver=None, keepalive=True, limit=100, max_body_bytes=8 MiB)
        async send(verb, url, headers, body, *, connect_s, sock_read_s) -> RawResponse
        async close()
    transport_failure(exc, sent) -> (Transport, sent)
"""

from __future__ import annotations

import socket
from collections.abc import Mapping

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from venueguard.core.classify import Outcome, Transport
from venueguard.io.clock import monotonic
from venueguard.io.rest_transport import RawResponse, TransportFailure

__all__ = ["AiohttpTransport", "transport_failure"]

#: A larger response body is refused (a transport failure), never handed on truncated.
MAX_BODY_BYTES = 8 * 1024 * 1024
_CHUNK_BYTES = 256 * 1024


def transport_failure(exc: BaseException, sent: bool) -> tuple[Transport, bool]:
    """What a library exception means below HTTP, and whether the request was written."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return Transport.DNS, False
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return Transport.TLS, False
    if isinstance(exc, socket.gaierror):
        return Transport.DNS, False
    if isinstance(exc, ConnectionRefusedError):
        return Transport.CONNECTION_REFUSED, False
    if isinstance(exc, aiohttp.ClientConnectorError):
        refused = isinstance(exc.os_error, ConnectionRefusedError)
        return (Transport.CONNECTION_REFUSED if refused else Transport.OTHER), False
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return Transport.CONNECT_TIMEOUT, False
    if isinstance(exc, aiohttp.SocketTimeoutError | TimeoutError):
        return (Transport.READ_TIMEOUT if sent else Transport.CONNECT_TIMEOUT), sent
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError
                  | aiohttp.ClientOSError | ConnectionResetError):
        return (Transport.RESET_AFTER_SEND if sent else Transport.CONNECTION_RESET), sent
    return Transport.OTHER, sent


class BodyTooLarge(ValueError):
    """The response body exceeded the transport's cap; nothing of it is handed on."""


async def read_body(content: aiohttp.StreamReader, limit_bytes: int) -> bytes:
    """Read a response body to its end, refusing one larger than ``limit_bytes``.

    ``StreamReader.read(n)`` returns whatever is buffered (at most n bytes), not the whole body:
    a large ``GET /order`` arrives in several chunks and a single read would truncate it.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await content.read(_CHUNK_BYTES)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit_bytes:
            raise BodyTooLarge(f"response body larger than {limit_bytes} bytes")
        chunks.append(chunk)


class _Trace:
    """Records whether the request was written (aiohttp trace hook)."""

    __slots__ = ("sent",)

    def __init__(self) -> None:
        self.sent = False


class AiohttpTransport:
    """A thin aiohttp client: one connection pool, a pluggable resolver, no retries."""

    def __init__(self, *, resolver: AbstractResolver | None = None, keepalive: bool = True,
                 limit: int = 100, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self._resolver = resolver
        self._max_body_bytes = max_body_bytes
        self._keepalive = keepalive
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                resolver=self._resolver, use_dns_cache=self._resolver is None,
                force_close=not self._keepalive, limit=self._limit)
            trace = aiohttp.TraceConfig()
            trace.on_request_headers_sent.append(_on_sent)
            self._session = aiohttp.ClientSession(connector=connector, trace_configs=[trace],
                                                  auto_decompress=True)
        return self._session

    async def send(self, verb: str, url: str, headers: Mapping[str, str], body: bytes | None,
                   *, connect_s: float, sock_read_s: float) -> RawResponse:
        """One attempt. Raises TransportFailure (never an aiohttp/OSError) when no response."""
        client = self._client()
        marker = _Trace()
        timeout = aiohttp.ClientTimeout(total=None, connect=connect_s, sock_connect=connect_s,
                                        sock_read=sock_read_s)
        start = monotonic()
        try:
            async with client.request(verb, URL(url, encoded=True), headers=dict(headers),
                                      data=body, timeout=timeout, allow_redirects=False,
                                      trace_request_ctx=marker) as resp:
                raw = await read_body(resp.content, self._max_body_bytes)
                return RawResponse(resp.status, {k.lower(): v for k, v in resp.headers.items()},
                                   raw, monotonic() - start)
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            failure, sent = transport_failure(exc, marker.sent)
            raise TransportFailure(Outcome(transport=failure, sent=sent),
                                   f"{failure.value}: {type(exc).__name__}") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _on_sent(session: aiohttp.ClientSession, ctx: object,
                   params: aiohttp.TraceRequestHeadersSentParams) -> None:
    marker = getattr(ctx, "trace_request_ctx", None)
    if isinstance(marker, _Trace):
        marker.sent = True

