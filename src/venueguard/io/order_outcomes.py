"""What a failed order request proves: processed, not processed, or unknown.

Shared by the order manager's submit and cancel and by its amends
(:mod:`venueguard.io.order_manager`, :mod:`venueguard.io.order_amend`).
"""

from __future__ import annotations

from venueguard.core.kinds import NOT_PROCESSED_KINDS, Kind
from venueguard.io import errors

__all__ = ["NOT_PROCESSED", "NOT_SENT", "failure_reason", "not_processed"]

#: Failure kinds after which the venue certainly did not process the request.
#: (``core.kinds.NOT_PROCESSED_KINDS``, plus the local refusals: nothing was sent.)
NOT_PROCESSED: frozenset[Kind] = NOT_PROCESSED_KINDS | {Kind.COOLDOWN, Kind.BLOCKED,
                                                         Kind.THROTTLED}
#: Exception types raised before anything reached the venue's engine.
NOT_SENT = (errors.Overloaded, errors.RateLimited, errors.CoolingDown, errors.Blocked,
            errors.Throttled, errors.TransportError, errors.AuthError)


def not_processed(exc: BaseException) -> bool:
    """The failure proves the venue did not process the request."""
    return isinstance(exc, NOT_SENT) or (isinstance(exc, errors.BudgetExhausted)
                                         and exc.kind in NOT_PROCESSED)


def failure_reason(exc: BaseException) -> str:
    """A short reason for the journal and the events: kind and the venue's text."""
    if isinstance(exc, errors.VenueError):
        kind = exc.kind.value
        text = exc.venue_message or kind
        return f"{kind}: {text}"[:200] if text != kind else kind
    return type(exc).__name__
