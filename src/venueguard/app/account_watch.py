"""The fleet owner's account check: the account's position against its members' sum.

Bots sharing an account each check only their own orders (``own_prefix_only``) and never the
account's position (``check_position=False``). The member holding the fleet's lease checks
the account instead: every ``interval_s`` it reads the venue's position and the positions the
live members publish, and feeds :class:`~venueguard.core.account_position.AccountPositionCheck`
(a new reference only from a difference two rounds in a row agree on).
An account-level mismatch is the reason for the only account-wide cancel a member sends: it
logs ``reconcile.mismatch`` (kind ``account_position``), fires a critical alert, sends ONE
``cancel_account`` and logs ``orders.account_cancel`` with the reason and whose orders it took
(a count per client-id prefix, one prefix per bot).

Call order: ``watch = AccountWatch(fleet, manager, ...)``; run :meth:`AccountWatch.run` in a
task (until cancelled).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, Protocol

from venueguard.core.account_position import (
    AccountCheckConfig,
    AccountMismatch,
    AccountPositionCheck,
    AccountResolved,
)
from venueguard.core.reports import OrderReport
from venueguard.io import errors
from venueguard.io.clock import Clock
from venueguard.io.fleet_link import Role
from venueguard.io.order_manager import OrderManager
from venueguard.telemetry.events import EventLog

__all__ = ["AccountWatch", "owner_of"]

FILL_LAG_S = 0.25        # a fill reaches its bot (websocket) this long after the venue, at most
MEMBERS_WAIT_S = 3.0     # how long to wait for every member's record from after the answer


class FleetPositions(Protocol):
    def role(self) -> Role: ...

    def member_positions(self, symbol: str, *, newer_than_wall_s: float | None = None
                         ) -> dict[str, float] | None: ...


def owner_of(client_id: str | None) -> str:
    """The bot an order belongs to: its client id's prefix (``vg1a2b3c`` of
    ``vg1a2b3c-17-...``); ``other`` for an order without one."""
    if not client_id or "-" not in client_id:
        return "other"
    return client_id.split("-", 1)[0] or "other"


class AccountWatch:
    """See the module docstring."""

    def __init__(self, fleet: FleetPositions, manager: OrderManager, *, symbol: str,
                 clock: Clock, events: EventLog, interval_s: float = 10.0,
                 config: AccountCheckConfig | None = None) -> None:
        if not interval_s > 0:
            raise ValueError("interval_s must be > 0")
        self.fleet = fleet
        self.manager = manager
        self.symbol = symbol
        self.clock = clock
        self.events = events
        self.interval_s = interval_s
        self.check = AccountPositionCheck(config)
        self.account_cancels = 0
        self._candidate: tuple[frozenset[str], float] | None = None   # a reference to confirm

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            if self.fleet.role() is Role.OWNER and self.manager.ready:
                await self.check_once()

    async def check_once(self) -> None:
        if not self.fleet.member_positions(self.symbol):
            return
        try:
            positions = await self.manager.venue.positions()
        except errors.VenueError:
            return                      # asked again next round
        # the members' positions as of the answer, not the question: a read can wait its
        # turn under the shared limit for seconds, and fills in that time are in the answer.
        # Every member's record must be from after the answer (plus the time a fill takes to
        # reach it); they are published twice a second
        members = await self._members_after(self.clock.wall_ms() / 1000.0 + FILL_LAG_S)
        if not members:
            return
        venue_qty = next((float(p.qty) for p in positions if p.symbol == self.symbol), 0.0)
        if not self._settled(venue_qty, members):
            return
        for decision in self.check.on_sample(self.symbol, venue_qty, members,
                                             self.clock.monotonic()):
            if isinstance(decision, AccountMismatch):
                await self._on_mismatch(decision)
            elif isinstance(decision, AccountResolved):
                self.events.emit("reconcile.resolved", kind="account_position",
                                 symbol=decision.symbol)

    def _settled(self, venue_qty: float, members: dict[str, float]) -> bool:
        """Whether this sample may go to the check. A new reference (at the start, or when a
        member joined or left) is taken only from a difference two rounds in a row agree on:
        a fill still on its way to its member makes one round's difference a passing one,
        and a reference taken from it would make every later, settled, round look like an
        unexplained change."""
        if self.check.has_reference(self.symbol, members):
            self._candidate = None
            return True
        seen = (frozenset(members), venue_qty - sum(members.values()))
        candidate, self._candidate = self._candidate, seen
        return candidate is not None and candidate[0] == seen[0] \
            and abs(candidate[1] - seen[1]) <= self.check.config.tolerance

    async def _members_after(self, wall_s: float) -> dict[str, float] | None:
        for _ in range(round(MEMBERS_WAIT_S / 0.1)):
            members = self.fleet.member_positions(self.symbol, newer_than_wall_s=wall_s)
            if members is not None:
                return members
            await asyncio.sleep(0.1)
        return None               # a member is late: no sample this round

    async def _on_mismatch(self, mismatch: AccountMismatch) -> None:
        reason = f"account position mismatch: {mismatch.detail}"
        self.events.emit("reconcile.mismatch", kind="account_position", detail=mismatch.detail)
        self.manager.alert("critical", reason + "; cancelling every order on the account",
                           key="account_position")
        reports: Any = await self.manager.cancel_account(self.symbol)
        self.account_cancels += 1
        taken = Counter(owner_of(r.client_id) for r in reports or ()
                        if isinstance(r, OrderReport))
        self.events.emit("orders.account_cancel", reason=reason, symbol=self.symbol,
                         answered=reports is not None, taken=dict(sorted(taken.items())))
