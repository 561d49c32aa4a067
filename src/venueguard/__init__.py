"""venueguard: the connectivity layer for Python trading bots that must survive a failing venue.

The stable names live here (see the README: "Use it from your bot" and the reference in docs/)::

    from venueguard import guard                       # any ccxt exchange (venueguard[ccxt])
    from venueguard import MarketDataSession, MdConfig  # BitMEX market data
    from venueguard import RestSession, RestConfig      # BitMEX REST
    from venueguard import OrderManager, OrderIntent    # orders: journal, reconcile, safe mode
    from venueguard import VenueguardError, AmbiguousOutcome, ...   # one error tree

``guard``, ``GuardConfig`` and ``GuardedExchange`` are imported on first use, so
``import venueguard`` works without ccxt installed.
"""

from __future__ import annotations

from typing import Any

from venueguard.config import ConfigFileError
from venueguard.core.backoff import BackoffConfig, Jitter
from venueguard.core.book import BookConfig
from venueguard.core.budget import BudgetConfig
from venueguard.core.dms import DmsConfig
from venueguard.core.freshness import FreshnessConfig
from venueguard.core.liveness import LivenessConfig
from venueguard.core.reconcile import ReconcileConfig
from venueguard.core.regime import RegimeConfig
from venueguard.core.rules import RulesError, RuleSet, load_rules
from venueguard.core.safemode import SafeModeConfig
from venueguard.core.throttle import ThrottleConfig
from venueguard.io.errors import (
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
from venueguard.io.http_session import RestConfig, RestSession, Timeouts
from venueguard.io.journal import Journal, JournalError
from venueguard.io.md_events import (
    BookGap,
    BookResynced,
    Connected,
    DataRejected,
    Disconnected,
    Fresh,
    MdEvent,
    Reconnecting,
    SessionFailed,
    Stale,
    Subscribed,
    TableData,
    TopicFailed,
    TopOfBook,
)
from venueguard.io.order_manager import (
    NotReady,
    OrderIntent,
    OrderManager,
    OrderManagerConfig,
    OrdersBlocked,
)
from venueguard.io.ws_session import BookView, MarketDataSession, MdConfig
from venueguard.telemetry.events import EventLog
from venueguard.telemetry.metrics import Metrics

__version__ = "0.1.0"

__all__ = [
    "AmbiguousOutcome",
    "AuthError",
    "BackoffConfig",
    "Blocked",
    "BookConfig",
    "BookGap",
    "BookResynced",
    "BookView",
    "BudgetConfig",
    "BudgetExhausted",
    "ConfigError",
    "ConfigFileError",
    "Connected",
    "CoolingDown",
    "DataRejected",
    "Disconnected",
    "DmsConfig",
    "DnsError",
    "DuplicateClOrdID",
    "EventLog",
    "Fresh",
    "FreshnessConfig",
    "GuardConfig",
    "GuardedExchange",
    "Jitter",
    "Journal",
    "JournalError",
    "LivenessConfig",
    "MarketDataSession",
    "MdConfig",
    "MdEvent",
    "Metrics",
    "NotReady",
    "OrderIntent",
    "OrderManager",
    "OrderManagerConfig",
    "OrdersBlocked",
    "Overloaded",
    "RateLimited",
    "ReconcileConfig",
    "Reconnecting",
    "RegimeConfig",
    "Rejected",
    "RestConfig",
    "RestSession",
    "RuleSet",
    "RulesError",
    "SafeModeConfig",
    "SessionFailed",
    "Stale",
    "StreamError",
    "Subscribed",
    "TableData",
    "ThrottleConfig",
    "Throttled",
    "Timeouts",
    "TopOfBook",
    "TopicFailed",
    "TransportError",
    "VenueError",
    "VenueguardError",
    "__version__",
    "guard",
    "load_rules",
]

_LAZY = frozenset({"guard", "GuardConfig", "GuardedExchange"})


def __getattr__(name: str) -> Any:
    # the ccxt bridge needs the optional extra; import it only when asked for
    if name in _LAZY:
        from venueguard import ccxt as bridge

        return getattr(bridge, name)
    raise AttributeError(f"module 'venueguard' has no attribute {name!r}")
