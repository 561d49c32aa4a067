"""The REST transport seam: what a :class:`~venueguard.io.http_session.RestSession` sends through.

A transport makes one HTTP exchange and nothing more: no retries, no signing, no classification
(the session does those). It sends exactly the bytes it is given (the URL is not re-encoded, so
a signature over the path and query stays valid) and returns a :class:`RawResponse`, or raises
:class:`TransportFailure` whose ``outcome`` says what happened below HTTP and whether the request
had been written (``sent``): a failure while connecting means nothing reached the venue; a
failure after that (read timeout, reset) leaves the outcome ambiguous. It never raises a library
or socket error.

Two implementations:

- :class:`~venueguard.io.http_transport.AiohttpTransport`, the default: aiohttp, one connection
  pool, a pluggable resolver, per-phase timeouts;
- :class:`MemoryTransport`, in memory: each request is handed to a function (or coroutine) that
  returns the answer, so a test scripts every outcome without a socket::

      def venue(request: RestRequest) -> RawResponse | TransportFailure:
          if request.verb == "POST":
              return TransportFailure(Outcome(transport=Transport.READ_TIMEOUT, sent=True),
                                      "read timeout after the send")
          return RawResponse(200, {}, b"[]", latency_s=0.01)

      transport = MemoryTransport(venue)
      rest = RestSession(config, transport=transport)
      ...
      assert [r.verb for r in transport.requests] == ["POST"]

Any object with the two methods below is a transport (wrap one to observe or delay it, as the
monitor does to chart every response's latency).

Public API::

    class RestTransport(Protocol):
        async send(verb, url, headers, body, *, connect_s, sock_read_s) -> RawResponse
        async close()
    MemoryTransport(handler)          # handler(RestRequest) -> RawResponse | TransportFailure,
        .requests: list[RestRequest]  #   or a coroutine returning one; raising one works too
        .closes: int
    RestRequest(verb, url, headers, body, connect_s, sock_read_s)   .target: path and query
    RawResponse(status, headers, body, latency_s)
    class TransportFailure(Exception): outcome, detail
    Timeouts(connect_s=5.0, sock_read_s=10.0, total_s=30.0)   # total_s: per logical request
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from venueguard.core.classify import Outcome

__all__ = ["Handler", "MemoryTransport", "RawResponse", "RestRequest", "RestTransport",
           "Timeouts", "TransportFailure"]


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Per-phase limits of one attempt, and the deadline of a logical request across retries."""

    connect_s: float = 5.0
    sock_read_s: float = 10.0
    total_s: float = 30.0

    def __post_init__(self) -> None:
        if not (self.connect_s > 0 and self.sock_read_s > 0 and self.total_s > 0):
            raise ValueError("timeouts must be > 0")


@dataclass(frozen=True, slots=True)
class RawResponse:
    status: int
    headers: Mapping[str, str]  # lower-cased names
    body: bytes
    latency_s: float


class TransportFailure(Exception):
    """No usable response; ``outcome`` carries the transport failure and ``sent``."""

    def __init__(self, outcome: Outcome, detail: str) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail


class RestTransport(Protocol):
    """One HTTP exchange per :meth:`send`; see the module docstring for the contract."""

    async def send(self, verb: str, url: str, headers: Mapping[str, str], body: bytes | None,
                   *, connect_s: float, sock_read_s: float) -> RawResponse:
        """One attempt: the response, or ``TransportFailure`` (never a library error)."""
        ...

    async def close(self) -> None:
        """Release connections; a later :meth:`send` may open new ones."""
        ...


@dataclass(frozen=True, slots=True)
class RestRequest:
    """One request as a transport received it (headers as sent, body bytes unchanged)."""

    verb: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None
    connect_s: float
    sock_read_s: float

    @property
    def target(self) -> str:
        """The path and query, as signed (``/api/v1/order?symbol=XBTUSD``)."""
        parts = urlsplit(self.url)
        return parts.path + (f"?{parts.query}" if parts.query else "")


Answer = RawResponse | TransportFailure
Handler = Callable[[RestRequest], Answer | Awaitable[Answer]]


class MemoryTransport:
    """A :class:`RestTransport` that answers from ``handler``, in this process, without a socket.

    Every request is recorded in :attr:`requests` before the handler runs (a request the handler
    fails was still put on the "wire"). A returned or raised :class:`TransportFailure` reaches
    the session as a transport failure; any other exception from the handler propagates
    unchanged (a broken script should fail its test, not pass as a network fault).
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self.requests: list[RestRequest] = []
        self.closes = 0

    async def send(self, verb: str, url: str, headers: Mapping[str, str], body: bytes | None,
                   *, connect_s: float, sock_read_s: float) -> RawResponse:
        request = RestRequest(verb, url, dict(headers), body, connect_s, sock_read_s)
        self.requests.append(request)
        answer = self._handler(request)
        if inspect.isawaitable(answer):
            answer = await answer
        if isinstance(answer, TransportFailure):
            raise answer
        if not isinstance(answer, RawResponse):
            raise TypeError(f"a MemoryTransport handler returned {type(answer).__name__}, "
                            "expected RawResponse or TransportFailure")
        return answer

    async def close(self) -> None:
        self.closes += 1
