"""venueguard under any ccxt exchange: ``guard(exchange)`` (needs the extra ``venueguard[ccxt]``).

See :mod:`venueguard.ccxt.guarded` and the README, "Use it from your bot"::

    import ccxt.pro
    from venueguard.ccxt import guard
    exchange = guard(ccxt.pro.binanceusdm({"apiKey": KEY, "secret": SECRET}))
"""

from __future__ import annotations

from venueguard.ccxt.checks import require_ccxt

require_ccxt()  # a clear one-line error when ccxt is missing or too old

from venueguard.ccxt.errors import (  # noqa: E402
    OrdersRefused,
    OrderUnknown,
    RequestThrottled,
    RetryBudgetExhausted,
    VenueBlocked,
    VenueCoolingDown,
)
from venueguard.ccxt.guarded import GuardConfig, GuardedExchange, guard  # noqa: E402
from venueguard.ccxt.orders import OrdersConfig  # noqa: E402
from venueguard.ccxt.streams import StreamConfig  # noqa: E402

__all__ = [
    "GuardConfig",
    "GuardedExchange",
    "OrderUnknown",
    "OrdersConfig",
    "OrdersRefused",
    "RequestThrottled",
    "RetryBudgetExhausted",
    "StreamConfig",
    "VenueBlocked",
    "VenueCoolingDown",
    "guard",
]
