"""The exception tree, where the sessions have always imported it from: see
:mod:`venueguard.errors` (its home, so that venue adapters need nothing from ``io``)."""

from __future__ import annotations

from venueguard.errors import (
    AmbiguousOutcome,
    AuthError,
    Blocked,
    BudgetExhausted,
    ConfigError,
    CoolingDown,
    DnsError,
    DuplicateClOrdID,
    Overloaded,
    RateLimited,
    Rejected,
    StreamError,
    Throttled,
    TransportError,
    VenueError,
    VenueguardError,
)

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
