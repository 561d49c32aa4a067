"""What the sessions ask of a fleet (processes sharing one account), as protocols.

:class:`~venueguard.fleet.Fleet` implements them; a session given none behaves as one process
alone. The sessions never import the fleet package: these seams are the whole contract.

Call order (REST, per attempt)::

    link.attach(health, on_change)       # once: notices from other members move ``health``
    wait = await link.reserve(order_route=..., first=..., max_wait_s=...,
                              rank=Rank.READ)    # None: over deadline
    sleep(wait); check ``health`` again (a ban may have arrived meanwhile); send
    link.on_rate_limit(limit, remaining) # the response's x-ratelimit-* headers
    link.on_venue_state(state, until, kind, now)  # health entered COOLDOWN/BLOCKED on an outcome
    granted = await link.try_retry(budget_config)  # before a retry (after the local budget)
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Protocol

from venueguard.core.budget import BudgetConfig
from venueguard.core.health import VenueHealth, VenueState
from venueguard.core.kinds import Kind

__all__ = ["DmsLink", "FleetLink", "OpenGate", "Rank", "Role"]


class Rank(enum.IntEnum):
    """Which requests go first under a shared limit (lower first)."""

    CANCEL = 0    # takes risk off
    WRITE = 1     # new orders and amends
    READ = 2      # queries: the reconciler asks again


class Role(enum.Enum):
    """Who sends the account-wide actions (dead man's switch, bulk cancel)."""

    OWNER = "owner"          # holds the lease: sends them for the whole account
    FOLLOWER = "follower"    # another member holds it: sends none
    ALONE = "alone"          # the shared store is unreachable: act as a single process would,
    #                          except never disarm the switch (another member may rely on it)


class FleetLink(Protocol):
    def attach(self, health: VenueHealth, on_change: Callable[[float], None]) -> None: ...

    async def reserve(self, *, order_route: bool, first: bool, max_wait_s: float,
                      rank: Rank = Rank.READ) -> float | None: ...

    def on_rate_limit(self, limit: int | None, remaining: int | None) -> None: ...

    def on_venue_state(self, state: VenueState, until: float | None, kind: Kind,
                       now: float) -> None: ...

    def on_reset(self, reason: str) -> None: ...

    async def try_retry(self, config: BudgetConfig) -> bool: ...


class DmsLink(Protocol):
    """The dead man's switch and bulk cancels: one owner per account."""

    def role(self) -> Role: ...

    def others_resting(self) -> int:
        """Orders the other live members report resting (the owner arms for them too)."""
        ...

    def publish_resting(self, count: Callable[[], int]) -> None:
        """This member's resting orders (``count()``), reported to the others."""
        ...


class OpenGate(Protocol):
    """The websocket connection budget shared per egress IP."""

    async def ws_open_wait(self, max_opens: int, window_s: float) -> float: ...
