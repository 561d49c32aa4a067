"""The one exception tree of venueguard (``venueguard.io.errors`` re-exports it).

Every failure a session reports is one of these; library exceptions (aiohttp, asyncio timeouts,
``OSError``, orjson) are mapped at the boundary with ``raise ... from exc`` and never escape.
``asyncio.CancelledError`` is never caught or mapped: cancellation always propagates.

::

    VenueguardError
    +-- ConfigError                  bad arguments or settings (our mistake, never retried)
    |   +-- ConfigFileError          a bad config file, key or value (``venueguard.config``)
    |   +-- StartupError             the monitor cannot start with these options
    +-- OrdersBlocked                the order runtime refuses new orders (safe mode, closed)
    +-- JournalError                 the order journal cannot be read or written
    +-- VenueError                   the venue, or the path to it, failed; carries kind/status
        +-- Rejected                 processed and refused (validation, balance, unknown symbol...)
        |   +-- DuplicateClOrdID     the clOrdID already exists at the venue: look it up
        +-- AuthError                invalid key, bad signature, expired request: never retried
        +-- AmbiguousOutcome         the request may have been processed (timeout after send,
        |                            502, 504, connection lost after send); carries cl_ord_id
        +-- Overloaded               503 load shedding, retries exhausted (not processed)
        +-- RateLimited              429; carries retry_after_s
        +-- CoolingDown              the venue is in COOLDOWN until ``until`` (monotonic s)
        +-- Blocked                  the venue is BLOCKED (banned); needs an explicit reset
        +-- BudgetExhausted          a retry was needed but the retry budget / deadline said no
        +-- Throttled                refused locally by adaptive throttling (nothing was sent)
        +-- TransportError           the request never completed below HTTP (DNS, refused, reset)
        |   +-- DnsError             the venue's name did not resolve
        +-- StreamError              the websocket session cannot continue (no retry by rule)

Messages never contain secrets: only the endpoint, the status, the kind and the venue's text.
"""

from __future__ import annotations

from venueguard.core.kinds import Kind

__all__ = [
    "AmbiguousOutcome",
    "AuthError",
    "Blocked",
    "BudgetExhausted",
    "ConfigError",
    "CoolingDown",
    "DnsError",
    "DuplicateClOrdID",
    "Overloaded",
    "RateLimited",
    "Rejected",
    "StreamError",
    "Throttled",
    "TransportError",
    "VenueError",
    "VenueguardError",
]


class VenueguardError(Exception):
    """Root of every error a venueguard session raises."""


class ConfigError(VenueguardError):
    """A session, the command line or a config file gave values venueguard cannot use."""


class VenueError(VenueguardError):
    """The venue or the path to it failed.

    ``kind`` is a ``venueguard.core.kinds.Kind`` (its ``.value`` is the stable string used in
    metric labels and events), ``status`` the
    HTTP status when a response was read, ``endpoint`` the logical endpoint (``POST /order``),
    ``cl_ord_id`` the order the request concerned, when it concerned one.
    """

    def __init__(self, message: str, *, kind: Kind = Kind.UNKNOWN, status: int | None = None,
                 endpoint: str | None = None, venue_message: str = "",
                 cl_ord_id: str | None = None) -> None:
        super().__init__(message)
        if not isinstance(kind, Kind):  # a ``**common`` mapping escapes the type checker
            raise TypeError(f"VenueError.kind must be a Kind, got {kind!r}")
        self.kind: Kind = kind
        self.status = status
        self.endpoint = endpoint
        self.venue_message = venue_message
        self.cl_ord_id = cl_ord_id


class Rejected(VenueError):
    """The venue processed the request and refused it; sending it again will not help."""


class DuplicateClOrdID(Rejected):
    """The clOrdID already exists at the venue (an earlier attempt went through)."""


class AuthError(VenueError):
    """Credentials refused (invalid key, bad signature, expired request)."""


class AmbiguousOutcome(VenueError):
    """The venue may or may not have processed the request: resolve by lookup, never resend.

    For orders ``cl_ord_id`` names the order to look up (``RestSession.find_order``).
    """


class Overloaded(VenueError):
    """BitMEX load shedding (503): the request was not processed; retries ran out."""


class RateLimited(VenueError):
    """HTTP 429: wait ``retry_after_s`` before the next request."""

    def __init__(self, message: str, *, retry_after_s: float | None = None,
                 kind: Kind = Kind.UNKNOWN, status: int | None = None,
                 endpoint: str | None = None, venue_message: str = "") -> None:
        super().__init__(message, kind=kind, status=status, endpoint=endpoint,
                         venue_message=venue_message)
        self.retry_after_s = retry_after_s


class CoolingDown(VenueError):
    """The venue is cooling down until ``until`` (monotonic seconds); nothing was sent."""

    def __init__(self, message: str, *, until: float, kind: Kind = Kind.UNKNOWN,
                 status: int | None = None,
                 endpoint: str | None = None, venue_message: str = "") -> None:
        super().__init__(message, kind=kind, status=status, endpoint=endpoint,
                         venue_message=venue_message)
        self.until = until


class Blocked(VenueError):
    """The venue is BLOCKED (software or IP banned); nothing is sent until an explicit reset."""


class BudgetExhausted(VenueError):
    """A retry was needed but the retry budget or the request deadline refused it."""


class Throttled(VenueError):
    """Adaptive throttling refused the request locally; nothing was sent."""


class TransportError(VenueError):
    """The request failed below HTTP before any response (refused, reset, connect timeout)."""


class DnsError(TransportError):
    """The venue's host name did not resolve."""


class StreamError(VenueError):
    """The websocket session stopped for a reason its rules say not to retry (auth, topic)."""
