"""A lean HTTP/1.1 client for the REST hop: keep-alive connections to one upstream origin.

The proxy forwards requests it has already read whole, to one origin, and hands the answer back
whole: it needs no cookie jar, redirects, proxy support or decompression, and the general client
machinery cost more per request than everything else the proxy does (docs/performance.md). So:

- a pool of idle keep-alive connections (:mod:`asyncio` streams; TLS with the default context,
  which checks the certificate and the host name); an idle connection older than ``idle_s`` is
  closed rather than reused (the upstream may have dropped it);
- a request is written as one buffer: request line with the path and query bytes as received,
  ``Host``, the headers given, ``Content-Length``;
- the answer is read by its framing: ``Content-Length``, chunked (decoded; the client gets a
  ``Content-Length`` instead), or until the upstream closes; interim 1xx answers are skipped; no
  body for ``HEAD``, 204 and 304. A connection goes back to the pool unless either side said
  ``Connection: close`` or the body ran to the end of the stream;
- a ``GET`` or ``HEAD`` that finds a reused connection closed before any answer byte is sent
  once more on a fresh connection; any other request is not (the venue may have taken it), and
  the failure surfaces as :class:`UpstreamClosed`.

Errors: :class:`UpstreamError` and its subclasses, always raised ``from`` the cause; timeouts are
``TimeoutError``.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlsplit

from venueguard.numbers import ascii_digits

__all__ = ["Answer", "UpstreamClosed", "UpstreamError", "UpstreamPool", "UpstreamUnreachable"]

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")


class UpstreamError(Exception):
    """The upstream could not be used for this request."""


class UpstreamUnreachable(UpstreamError):
    """No connection could be made (refused, name lookup, TLS handshake or certificate)."""


class UpstreamClosed(UpstreamError):
    """The connection closed, or the answer was malformed, after the request was written."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(slots=True)
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0
    reused: bool = False


class UpstreamPool:
    """Keep-alive connections to ``origin`` (``http://`` or ``https://HOST[:PORT]``)."""

    def __init__(self, origin: str, *, connect_timeout_s: float = 10.0,
                 read_timeout_s: float = 300.0, idle_s: float = 15.0, max_idle: int = 64) -> None:
        parts = urlsplit(origin)
        self.host = parts.hostname or ""
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        default_port = 443 if self.tls else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = host if self.port == default_port else f"{host}:{self.port}"
        self._ssl = ssl.create_default_context() if self.tls else None
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.idle_s = idle_s
        self.max_idle = max_idle
        self._idle: deque[_Conn] = deque()

    async def close(self) -> None:
        while self._idle:
            conn = self._idle.pop()
            conn.writer.close()

    async def _connect(self) -> _Conn:
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                reader, writer = await asyncio.open_connection(
                    self.host, self.port, ssl=self._ssl, limit=MAX_HEAD_BYTES,
                    server_hostname=self.host if self.tls else None)
        except TimeoutError as exc:
            raise UpstreamUnreachable("connect timed out") from exc
        except (OSError, ssl.SSLError) as exc:
            raise UpstreamUnreachable(type(exc).__name__) from exc
        return _Conn(reader, writer)

    def _take(self) -> _Conn | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if now - conn.idle_since < self.idle_s and not conn.writer.is_closing() \
                    and not conn.reader.at_eof():
                conn.reused = True
                return conn
            conn.writer.close()
        return None

    def _give_back(self, conn: _Conn) -> None:
        if len(self._idle) >= self.max_idle:
            conn.writer.close()
            return
        conn.idle_since = time.monotonic()
        self._idle.append(conn)

    async def request(self, method: str, target: str, headers: list[tuple[str, str]],
                      body: bytes) -> Answer:
        """Send one request (``target``: path and query as received) and read its answer."""
        head = [f"{method} {target} HTTP/1.1\r\nHost: {self.host_header}\r\n"]
        head += [f"{name}: {value}\r\n" for name, value in headers]
        if body or method in ("POST", "PUT", "PATCH"):
            head.append(f"Content-Length: {len(body)}\r\n")
        # the bytes as received (aiohttp decoded them as UTF-8 with surrogate escapes)
        data = "".join(head).encode("utf-8", "surrogateescape") + b"\r\n" + body
        conn = self._take()
        if conn is None:
            conn = await self._connect()
        try:
            return await self._exchange(conn, method, data)
        except _StaleConnection as exc:
            if method not in ("GET", "HEAD"):
                raise UpstreamClosed("connection closed before any answer") from exc.__cause__
        return await self._exchange(await self._connect(), method, data)

    async def _exchange(self, conn: _Conn, method: str, data: bytes) -> Answer:
        reader, writer = conn.reader, conn.writer
        done = False
        try:
            writer.write(data)
            async with asyncio.timeout(self.read_timeout_s):
                try:
                    raw_head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError) as exc:
                    if conn.reused and not getattr(exc, "partial", b""):
                        raise _StaleConnection from exc
                    raise UpstreamClosed("connection closed before the answer") from exc
                status, reason, headers, keep = _head(raw_head)
                while 100 <= status < 200:  # interim answers: the final one follows
                    status, reason, headers, keep = _head(await reader.readuntil(b"\r\n\r\n"))
                body, keep_body = await _body(reader, method, status, headers)
            done = keep and keep_body
            return Answer(status, reason, headers, body)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError,
                ValueError) as exc:
            raise UpstreamClosed(type(exc).__name__) from exc
        finally:
            if done:
                self._give_back(conn)
            else:
                writer.close()


class _StaleConnection(Exception):
    """A reused connection was closed before any answer byte: safe to resend a read."""


def _head(raw: bytes) -> tuple[int, str, list[tuple[str, str]], bool]:
    lines = raw[:-4].decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or not ascii_digits(code, 3) or len(code) != 3:
        raise ValueError("malformed status line")
    headers: list[tuple[str, str]] = []
    keep = version == "HTTP/1.1"
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise ValueError("malformed header line")
        value = value.strip()
        if name.lower() == "connection":
            tokens = {t.strip().lower() for t in value.split(",")}
            keep = "close" not in tokens and (keep or "keep-alive" in tokens)
        headers.append((name, value))
    return int(code), reason, headers, keep


async def _body(reader: asyncio.StreamReader, method: str, status: int,
                headers: list[tuple[str, str]]) -> tuple[bytes, bool]:
    """The body and whether the connection can be reused after it."""
    if method == "HEAD" or status in (204, 304):
        return b"", True
    lowered = {name.lower(): value for name, value in headers}
    if "chunked" in lowered.get("transfer-encoding", "").lower():
        parts: list[bytes] = []
        size_total = 0
        while True:
            line = await reader.readuntil(b"\r\n")
            size_text = line.split(b";", 1)[0].strip()
            if _HEX.fullmatch(size_text) is None:  # int(x, 16) takes '0x1f', '1_f', '+1f'
                raise ValueError("bad chunk size")
            size = int(size_text, 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                    pass
                return b"".join(parts), True
            size_total += size
            if size_total > MAX_BODY_BYTES:
                raise ValueError("answer body too large")
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = lowered.get("content-length")
    if length is not None:
        if not ascii_digits(length, 19):  # int() takes ' 5', '+5', '1_0' and non-ASCII digits
            raise ValueError("bad content-length")
        n = int(length)
        if n > MAX_BODY_BYTES:
            raise ValueError("bad content-length")
        return await reader.readexactly(n), True
    chunks = []
    total = 0
    while chunk := await reader.read(65536):
        total += len(chunk)
        if total > MAX_BODY_BYTES:
            raise ValueError("answer body too large")
        chunks.append(chunk)
    return b"".join(chunks), False

