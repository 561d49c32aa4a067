"""Errors a guarded ccxt exchange raises that ccxt itself would not.

Each is both a venueguard error (``venueguard.io.errors``) and a ccxt exception, so a bot that
catches ccxt's classes keeps working and a bot that wants venueguard's categories can have them.
Failures the venue reported are re-raised as ccxt raised them, with the verdict attached as
``error.venueguard`` (a :class:`venueguard.core.classify.Classification`).

::

    VenueCoolingDown     errors.CoolingDown + ccxt.ExchangeNotAvailable   nothing was sent
    VenueBlocked         errors.Blocked + ccxt.ExchangeNotAvailable       nothing was sent
    RequestThrottled     errors.Throttled + ccxt.RateLimitExceeded        nothing was sent
    RetryBudgetExhausted errors.BudgetExhausted + ccxt.NetworkError       retries refused
    OrdersRefused        errors.Rejected + ccxt.ExchangeError             safe mode: not sent
    OrderUnknown         errors.AmbiguousOutcome + ccxt.RequestTimeout    may exist: look it up
"""

from __future__ import annotations

import ccxt

from venueguard.io import errors

__all__ = [
    "OrderUnknown",
    "OrdersRefused",
    "RequestThrottled",
    "RetryBudgetExhausted",
    "VenueBlocked",
    "VenueCoolingDown",
]


class VenueCoolingDown(errors.CoolingDown, ccxt.ExchangeNotAvailable):
    """The venue is in COOLDOWN (a rule said so); the call was not sent."""


class VenueBlocked(errors.Blocked, ccxt.ExchangeNotAvailable):
    """The venue is BLOCKED until an explicit ``reset_venue()``; the call was not sent."""


class RequestThrottled(errors.Throttled, ccxt.RateLimitExceeded):
    """Adaptive throttling refused the call locally; it was not sent."""


class RetryBudgetExhausted(errors.BudgetExhausted, ccxt.NetworkError):
    """A retry was needed but the retry budget or the call's deadline refused it."""


class OrdersRefused(errors.Rejected, ccxt.ExchangeError):
    """Safe mode (or a failed start) refuses new orders; nothing was sent."""


class OrderUnknown(errors.AmbiguousOutcome, ccxt.RequestTimeout):
    """The venue may hold this order: it stays UNKNOWN until venue evidence settles it.

    ``cl_ord_id`` is the client order id it was sent with; ``guarded.order_state(cl_ord_id)``
    tells what venueguard knows, and the order is never sent again.
    """
