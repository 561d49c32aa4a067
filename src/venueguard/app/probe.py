"""The monitor's low-rate REST health probe: so that 503s and latency show up with no strategy.

Every ``instrument_every_s`` it reads ``GET /instrument`` for the symbol (any venue: public,
cheap, rate-limit friendly). A real BitMEX sheds load only on new orders and amends, and so does
the simulator's ``overload_503``: a read never sees a 503. So on the simulator only
(``order_every_s`` set; the monitor never sets it for a real venue) it also places a tiny
post-only buy far below the market and cancels it at once. The order cannot fill (post-only,
``offset_frac`` below the best bid) and is cancelled by its clOrdID, so an ambiguous outcome
(timeout, 502) is cleaned up on the next round and at stop, never left resting.

In a fleet (processes sharing one account and its rate limit) only one member needs to probe:
``active()`` says whether this process probes now (the monitor passes "not a follower of the
fleet's lease"), so the fleet spends one probe's requests per interval, not one per member.

A session that is busy needs no probe: ``traffic()`` (the count of requests the session has
sent, the probe's own included) lets it skip an instrument read when other requests went out
since its previous round (a trading bot's orders and reads: their outcomes reach the venue
health exactly as the probe's would). An idle session is probed every interval as before.

Outcomes are the REST session's: its classifier, venue health and metrics see every probe
request. The probe reports each request to ``on_request(endpoint, status, latency_s, wall_s)``
(status None when no response came) for the latency charts and the journal.

Call order: ``HealthProbe(client, config, ...)``; run :meth:`HealthProbe.run` in a task (until
cancelled); after cancelling it, ``await probe.cleanup()`` while the client is still open.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from venueguard.io.clock import Clock
from venueguard.io.errors import (
    AmbiguousOutcome,
    Blocked,
    BudgetExhausted,
    CoolingDown,
    Overloaded,
    Rejected,
    Throttled,
    VenueError,
)

INSTRUMENT = "GET /instrument"
PLACE = "POST /order"
CANCEL = "DELETE /order"
RequestHook = Callable[[str, int | None, float | None, float], None]
_NOT_SENT = (CoolingDown, Blocked, Throttled, BudgetExhausted)  # refused locally: no request


class ProbeClient(Protocol):
    """The three REST calls the probe makes; each raises a ``VenueError`` on failure."""

    async def get_instrument(self, symbol: str) -> Mapping[str, object] | None: ...

    async def place_post_only(self, symbol: str, cl_ord_id: str, qty: int, price: float
                              ) -> None: ...

    async def cancel(self, cl_ord_ids: list[str]) -> None: ...


@dataclass(frozen=True, slots=True)
class ProbeConfig:
    instrument_every_s: float = 5.0
    order_every_s: float | None = None  # None: no order probe (always so on a real venue)
    offset_frac: float = 0.05  # the probe order rests this far below the best bid
    tick_size: float = 0.5
    lot_size: int = 100
    max_pending: int = 50  # probe orders awaiting a confirmed cancel, at most
    cl_ord_prefix: str = "vgprobe-"


class HealthProbe:
    """Runs the probe loop; see the module docstring."""

    def __init__(self, client: ProbeClient, config: ProbeConfig, *, symbol: str, clock: Clock,
                 best_bid: Callable[[], float | None], on_request: RequestHook | None = None,
                 rng: random.Random | None = None,
                 active: Callable[[], bool] | None = None,
                 traffic: Callable[[], int] | None = None) -> None:
        self.client = client
        self.config = config
        self.symbol = symbol
        self.clock = clock
        self.best_bid = best_bid
        self.on_request = on_request
        self.active = active
        self.traffic = traffic
        self._traffic_seen = -1    # the session's count after the last round (-1: none yet)
        self._rng = rng or random.Random()
        self._seq = itertools.count(1)
        self.tick_size = config.tick_size  # updated from the instrument row when it is read
        self.lot_size = config.lot_size
        self.pending: list[str] = []  # clOrdIDs whose cancel is not confirmed
        self.placed = 0
        self.overloaded = 0
        self.ambiguous = 0
        self.skipped = 0
        self.skipped_busy = 0      # instrument reads not made: the session was busy anyway

    async def run(self) -> None:
        cfg = self.config
        next_instrument = next_order = self.clock.monotonic()
        while True:
            now = self.clock.monotonic()
            if self.active is not None and not self.active():
                # another member probes for the account; look again at the next interval
                next_instrument = max(next_instrument, now + cfg.instrument_every_s)
                if cfg.order_every_s is not None:
                    next_order = max(next_order, now + cfg.order_every_s)
            if now >= next_instrument:
                next_instrument = now + cfg.instrument_every_s
                if self._busy():
                    self.skipped_busy += 1
                else:
                    await self._call(INSTRUMENT, self._read_instrument())
                if self.traffic is not None:
                    self._traffic_seen = self.traffic()
            if cfg.order_every_s is not None and now >= next_order:
                next_order = now + cfg.order_every_s
                await self.order_round()
            wake = next_instrument if cfg.order_every_s is None else min(next_instrument,
                                                                          next_order)
            await asyncio.sleep(max(0.0, wake - self.clock.monotonic()))

    def _busy(self) -> bool:
        """Whether the session sent other requests since the probe's previous round."""
        return self.traffic is not None and 0 <= self._traffic_seen < self.traffic()

    async def _read_instrument(self) -> None:
        row = await self.client.get_instrument(self.symbol)
        if row is None:
            return
        tick, lot = row.get("tickSize"), row.get("lotSize")
        if isinstance(tick, int | float) and math.isfinite(tick) and tick > 0:
            self.tick_size = float(tick)
        if isinstance(lot, int | float) and math.isfinite(lot) and lot >= 1:
            self.lot_size = int(lot)

    async def order_round(self) -> None:
        """Retry unconfirmed cancels, then place one probe order and cancel it."""
        if self.pending:
            ids = self.pending[:10]
            if await self._call(CANCEL, self.client.cancel(ids)) == "ok":
                del self.pending[:len(ids)]
        price = self._probe_price()
        if price is None or len(self.pending) >= self.config.max_pending:
            self.skipped += 1
            return
        cl_ord_id = f"{self.config.cl_ord_prefix}{next(self._seq)}-{self._rng.getrandbits(32):08x}"
        outcome = await self._call(PLACE, self.client.place_post_only(
            self.symbol, cl_ord_id, self.lot_size, price))
        if outcome == "overloaded":
            self.overloaded += 1  # a 503 means not processed: nothing rests
            return
        if outcome in ("not_sent", "rejected"):
            return
        if outcome == "ok":
            self.placed += 1
        else:
            self.ambiguous += 1
        if await self._call(CANCEL, self.client.cancel([cl_ord_id])) != "ok":
            self.pending.append(cl_ord_id)

    async def cleanup(self, timeout_s: float = 5.0) -> None:
        """Cancel every probe order whose cancel was not confirmed (call before closing)."""
        if not self.pending:
            return
        try:
            async with asyncio.timeout(timeout_s):
                if await self._call(CANCEL, self.client.cancel(list(self.pending))) == "ok":
                    self.pending.clear()
        except TimeoutError:
            pass

    def _probe_price(self) -> float | None:
        bid = self.best_bid()
        if bid is None or not math.isfinite(bid) or bid <= 0:
            return None
        tick = self.tick_size
        price = math.floor(bid * (1.0 - self.config.offset_frac) / tick) * tick
        return round(price, 10) if price > 0 else None

    async def _call(self, endpoint: str, request: Awaitable[None]) -> str:
        """Await one request; report it; 'ok' | 'overloaded' | 'ambiguous' | 'not_sent' |
        'rejected' | 'failed'."""
        started = self.clock.monotonic()
        status: int | None = 200
        outcome = "ok"
        try:
            await request
        except _NOT_SENT:
            return "not_sent"
        except AmbiguousOutcome as exc:
            status, outcome = exc.status, "ambiguous"
        except Overloaded as exc:
            status, outcome = exc.status or 503, "overloaded"
        except VenueError as exc:
            status = exc.status
            outcome = ("overloaded" if exc.status == 503
                       else "rejected" if isinstance(exc, Rejected) or (
                           exc.status is not None and 400 <= exc.status < 500)
                       else "failed")
        latency_s = self.clock.monotonic() - started
        if self.on_request is not None:
            self.on_request(endpoint, status, latency_s if status is not None else None,
                            self.clock.wall_ms() / 1000.0)
        return outcome
