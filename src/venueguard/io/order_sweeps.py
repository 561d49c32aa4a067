"""The periodic sweep shared by the members of a fleet: one reads, the others take its answer.

Each bot on an account sweeps its open orders and the executions since its last sweep every
``sweep_interval_s`` (the websocket is the first source; the sweep catches what it missed).
With a share (the fleet: :class:`~venueguard.fleet.Fleet`), a member whose sweep comes due:

1. takes the last published :class:`~venueguard.core.shared_reads.SweepSnapshot` when it is
   usable (answered at most ``max_age_s`` ago; for the first sweep after a start, asked
   after it): only its own orders are kept, rows about orders changed since the question
   are not evidence, the visibility grace counts from the snapshot's question time, and its
   executions are taken when they reach back far enough (else the member asks for its own);
2. otherwise claims the read (for ``max_wait_s + max_age_s`` at most: a member that dies
   holds nothing for long; publishing ends the claim): it asks the venue itself for both
   lists at once, the executions at least ``fills_lookback_s`` back (so the others' sweeps
   are covered), and publishes them;
3. while another member holds the claim (its read waits its turn), postpones its sweep by
   ``postpone_s``, never longer in all than ``max_wait_s``: then it asks itself. The first
   sweep after a start never waits: it asks itself. The manager's loop never waits here:
   cancels, lookups by client id and every other read go on;
4. with the store away or the fleet degraded, sweeps as a bot alone.

Only the routine sweep is shared. A lookup by client id, the executions of a fill known to be
missing and the order history are always the member's own requests.

:meth:`venueguard.io.order_manager.OrderManager.share_sweeps` sets this up; the manager's
``step`` hands a due sweep to :meth:`SharedSweeps.sweep`.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol

from venueguard.core.reports import OrderReport
from venueguard.core.shared_reads import (
    ShareConfig,
    SweepSnapshot,
    covers,
    decode,
    encode,
    still_evidence,
    usable,
)
from venueguard.io import errors

if TYPE_CHECKING:
    from venueguard.io.order_manager import OrderManager

__all__ = ["SWEEP", "SharedSweeps", "SweepOutcome", "SweepShare"]

SWEEP = "sweep"          # the answer's name in the fleet's store


class SweepShare(Protocol):
    """What the sweep needs of a fleet (:class:`~venueguard.fleet.Fleet` has it)."""

    def sharing(self) -> bool: ...

    async def shared_read(self, name: str) -> bytes | None: ...

    async def claim_read(self, name: str, ttl_s: float) -> bool | None: ...

    async def publish_read(self, name: str, raw: bytes, ttl_s: float) -> bool: ...


class SweepOutcome(enum.Enum):
    OWN = "own"              # not shared: the manager sweeps as usual
    ORDERS = "orders"        # the open orders are done; the executions are fetched as usual
    DONE = "done"            # both done (or the sweep postponed): skip its executions


class SharedSweeps:
    """See the module docstring. Counts: ``taken`` (sweeps answered by another member's
    read), ``read`` (reads made and published for the fleet), ``postponed``."""

    def __init__(self, manager: OrderManager, share: SweepShare,
                 config: ShareConfig | None = None) -> None:
        self.manager = manager
        self.share = share
        self.config = config or ShareConfig()
        self.taken = 0
        self.read = 0
        self.postponed = 0
        self._postponed_since: float | None = None
        self._swept = False

    async def sweep(self, symbol: str | None, fills_from_ms: int | None) -> SweepOutcome:
        """The due sweep (``FetchOpenOrders(symbol)``, and ``FetchExecutions(fills_from_ms,
        sweep=True)`` when it was polled with it: None otherwise)."""
        share, m, cfg = self.share, self.manager, self.config
        if not share.sharing():
            return SweepOutcome.OWN
        snap = decode(await share.shared_read(SWEEP))
        if snap is not None and usable(snap, symbol=symbol, now_wall_ms=m.clock.wall_ms(),
                                       config=cfg, not_before_wall_ms=None if self._swept
                                       else m.started_wall_ms):
            return self._take(snap, symbol, fills_from_ms)
        claimed = await share.claim_read(SWEEP, cfg.claim_ttl_s)
        if claimed is None:
            return SweepOutcome.OWN
        now = m.clock.monotonic()
        if not claimed and self._swept:     # the first sweep (the start) never waits
            if self._postponed_since is None:
                self._postponed_since = now
            since = self._postponed_since
            if now + cfg.postpone_s - since <= cfg.max_wait_s:
                m.reconciler.postpone_sweep(now, cfg.postpone_s)
                self.postponed += 1
                return SweepOutcome.DONE
        return await self._read(symbol, fills_from_ms)

    def _take(self, snap: SweepSnapshot, symbol: str | None,
              fills_from_ms: int | None) -> SweepOutcome:
        m, rec = self.manager, self.manager.reconciler
        now, wall = m.clock.monotonic(), m.clock.wall_ms()
        asked_at = now - (wall - snap.asked_wall_ms) / 1000.0
        ours = m.ours(snap.orders)
        m.venue_open = sum(1 for r in ours if r.status is not None and r.status.is_open)
        rec.on_open_orders([r for r in ours if self._evidence(r, asked_at)], now,
                           snap.asked_wall_ms, asked_at=asked_at, symbol=symbol)
        self._done()
        self.taken += 1
        if fills_from_ms is None or not covers(snap, fills_from_ms):
            return SweepOutcome.ORDERS
        assert snap.fills_asked_wall_ms is not None       # covers() says so
        rec.on_fill_reports(m.ours(snap.fills), now, wall)
        rec.sweep_asked_at(snap.fills_asked_wall_ms)
        m.drain()
        return SweepOutcome.DONE

    def _evidence(self, report: OrderReport, asked_at: float) -> bool:
        order = self.manager.table.find(report.client_id, report.venue_id)
        return order is None or still_evidence(order.state_since, asked_at)

    async def _read(self, symbol: str | None, fills_from_ms: int | None) -> SweepOutcome:
        """Ask the venue (open orders and executions, at once: both wait their turn under the
        shared limit together) and publish both for the fleet."""
        m, rec, clock = self.manager, self.manager.reconciler, self.manager.clock
        asked, asked_wall = clock.monotonic(), clock.wall_ms()
        start = None if fills_from_ms is None else min(
            fills_from_ms, asked_wall - round(self.config.fills_lookback_s * 1000))
        reads: list[Awaitable[Any]] = [m.venue.open_orders(symbol)]
        if start is not None:
            reads.append(m.venue.fills_since(start))
        answers = await asyncio.gather(*reads, return_exceptions=True)
        answered_wall = clock.wall_ms()
        for answer in answers:
            if isinstance(answer, BaseException) and not isinstance(answer, errors.VenueError):
                raise answer
        orders, fills = answers[0], answers[1] if len(answers) > 1 else None
        if isinstance(orders, BaseException):
            self._done()
            return SweepOutcome.ORDERS     # asked again next sweep; its executions as usual
        found = m.ours(orders)
        m.venue_open = len(found)
        rec.on_open_orders(found, clock.monotonic(), clock.wall_ms(), asked_at=asked,
                           symbol=symbol)
        self._done()
        snap = SweepSnapshot(symbol, asked_wall, answered_wall, tuple(orders))
        outcome = SweepOutcome.ORDERS      # without executions: fetched as usual
        if start is not None and fills is not None and not isinstance(fills, BaseException):
            rows, unreadable = fills
            m.report_unreadable("execution", unreadable)
            rec.on_fill_reports(m.ours(rows), clock.monotonic(), clock.wall_ms())
            rec.sweep_asked_at(asked_wall)
            m.drain()
            snap = SweepSnapshot(symbol, asked_wall, answered_wall, tuple(orders), start,
                                 asked_wall, tuple(rows))
            outcome = SweepOutcome.DONE
        if await self.share.publish_read(SWEEP, encode(snap), self.config.max_age_s):
            self.read += 1
        return outcome

    def _done(self) -> None:
        self._postponed_since = None
        self._swept = True
        self.manager.drain()
