"""Many processes, one account: shared rate limits, bans, retry budget, health and one owner.

``Fleet(FleetConfig(redis_url=...), api_key=...)`` links one process to the others trading the
same account (and egress IP): in process by default, on Redis with ``redis_url``
(``pip install 'venueguard[redis]'``). Pass it to the sessions (``RestSession(..., fleet=)``,
``MarketDataSession(..., opens=)``, ``DmsRunner(..., fleet=)``); see docs/scaling.md.
"""

from venueguard.fleet.backend import FleetBackend, MemoryBackend
from venueguard.fleet.fleet import Fleet, FleetConfig
from venueguard.fleet.policy import VENUE_BUCKETS, BanNotice, Bucket, FleetView, Scope
from venueguard.io.fleet_link import Role

__all__ = [
    "VENUE_BUCKETS",
    "BanNotice",
    "Bucket",
    "Fleet",
    "FleetBackend",
    "FleetConfig",
    "FleetView",
    "MemoryBackend",
    "Role",
    "Scope",
]
