"""The agent's market data: what the client's websocket delivered, not the engine's truth.

The feed reads the simulated book while its connection delivers; a stall-like fault freezes it
(the data age grows) until the age passes ``stale_after_s``, when the client gives up, reconnects
for ``reconnect_steps`` and resyncs from a fresh partial (one gap event). A lost delta makes the
client resync for ``resync_steps``. Features come from the monitor's
:class:`~venueguard.core.snapshots.SnapshotManager`, one snapshot a second, as in the monitor.

Call order per step: :meth:`on_public` for the public updates drained from the engine (only
while :attr:`delivering`), then :meth:`tick` with the new time.
"""

from __future__ import annotations

import math

from venueguard.core.snapshots import MarketView, Snapshot, SnapshotConfig, SnapshotManager
from venueguard.gym.spaces import MARKET_HIGH, MARKET_LOW
from venueguard.sim.book import Book
from venueguard.sim.faults import Fault

__all__ = ["Feed"]

_STALL_KINDS = frozenset({"ws_stall", "ws_half_open", "ws_stale_timestamps",
                          "ws_future_timestamps"})
_N_MARKET = 8  # snapshot features used before data_age_s
_LOW = tuple(float(v) for v in MARKET_LOW[:_N_MARKET])
_HIGH = tuple(float(v) for v in MARKET_HIGH[:_N_MARKET])


class Feed:
    """One symbol's market data as the agent sees it (module docstring)."""

    def __init__(self, book: Book, symbol: str, *, stale_after_s: float, reconnect_steps: int,
                 resync_steps: int, step_s: float) -> None:
        self._book = book
        self._stale_after_s = stale_after_s
        self._reconnect_steps = reconnect_steps
        self._resync_steps = resync_steps
        self._step_s = step_s
        self.snapshots = SnapshotManager(symbol, SnapshotConfig(interval_s=1.0, window_s=10.0),
                                         start=0.0)
        self._next_snapshot_s = self.snapshots.next_deadline()
        self.hit = False  # the open connection is broken by a stall-like fault
        self.down_until_step: int | None = None  # reconnecting (or resyncing) until this step
        self.resyncing = False
        self.last_data_s = 0.0
        self.bid_tick: int | None = None
        self.ask_tick: int | None = None
        self.bid_qty = 0
        self.ask_qty = 0
        self.features: list[float] = [0.0] * _N_MARKET
        self.features[7] = -1.0
        self.gaps = 0
        self.reconnects = 0
        self.rejected = 0
        self._top_changes = 0
        self._trades = 0
        self._volume = 0
        self._any_data = False
        self._read_top()

    # -- state ---------------------------------------------------------------------------------
    @property
    def delivering(self) -> bool:
        """True while the connection hands data on (not broken, not reconnecting)."""
        return not self.hit and self.down_until_step is None

    def data_age_s(self, now_s: float) -> float:
        return max(0.0, now_s - self.last_data_s)

    def fresh(self, now_s: float) -> bool:
        """The client's verdict: connected, a book, and data younger than ``stale_after_s``
        (a silent connection looks fresh until its data is that old, as it does to a client)."""
        return (self.down_until_step is None and self.bid_tick is not None
                and self.ask_tick is not None and now_s - self.last_data_s < self._stale_after_s)

    # -- faults --------------------------------------------------------------------------------
    def on_fault(self, fault: Fault, step: int, *, stale_on: bool, gap_on: bool) -> None:
        """A websocket fault started: it hits the connection open now."""
        kind = fault.kind
        if kind in _STALL_KINDS and stale_on and self.down_until_step is None:
            self.hit = True
        elif kind == "ws_drop" and gap_on:
            self._go_down(step, self._reconnect_steps)
        elif kind == "ws_gap" and gap_on and self.delivering:
            self.resyncing = True
            self._go_down(step, self._resync_steps)

    def _go_down(self, step: int, steps: int) -> None:
        self.hit = False
        self.down_until_step = step + max(1, steps)

    # -- data ----------------------------------------------------------------------------------
    def on_public(self, top_changes: int, trades: int, volume: int, any_data: bool) -> None:
        self._top_changes += top_changes
        self._trades += trades
        self._volume += volume
        self._any_data = self._any_data or any_data

    def on_rejected(self, count: int) -> None:
        self.rejected += count

    def tick(self, step: int, now_s: float, *, hit_again: bool, regime: str,
             venue_state: str) -> bool:
        """Advance to ``step`` (time ``now_s``); returns True when the feed came back (resync)."""
        came_back = False
        if self.hit and now_s - self.last_data_s >= self._stale_after_s:
            self._go_down(step, self._reconnect_steps)  # the client gives up on the connection
            self.reconnects += 1
        elif self.down_until_step is not None and step >= self.down_until_step:
            if hit_again and not self.resyncing:  # the new connection is silent too
                self.down_until_step = None
                self.hit = True
            else:
                self.down_until_step = None
                self.resyncing = False
                self.gaps += 1
                self.snapshots.on_gap(now_s)
                self._any_data = True
                came_back = True
        snapshots = self.snapshots
        if self.delivering:
            if self._any_data:
                self.last_data_s = now_s
                self._read_top()
            if self._top_changes:
                snapshots.on_top_changes(self._top_changes, now_s)
            if self._trades:
                snapshots.on_trades(self._trades, float(self._volume), now_s)
        self._top_changes = self._trades = self._volume = 0
        self._any_data = False
        if now_s >= self._next_snapshot_s:
            self._snapshot(now_s, regime, venue_state)
        return came_back

    def _read_top(self) -> None:
        bid, bid_qty, ask, ask_qty = self._book.top()
        self.bid_tick, self.ask_tick, self.bid_qty, self.ask_qty = bid, ask, bid_qty, ask_qty

    def _snapshot(self, now_s: float, regime: str, venue_state: str) -> None:
        tick = self._book.spec.tick_size
        bid = None if self.bid_tick is None else self.bid_tick * tick
        ask = None if self.ask_tick is None else self.ask_tick * tick
        view = MarketView(self.fresh(now_s), bid, ask, float(self.bid_qty), float(self.ask_qty),
                          self.data_age_s(now_s), regime, venue_state)
        for outcome in self.snapshots.poll(now_s, view):
            if isinstance(outcome, Snapshot):
                values = outcome.features()
                self.features = [min(max(v, low), high) if math.isfinite(v) else 0.0
                                 for v, low, high in zip(values[:_N_MARKET], _LOW, _HIGH,
                                                         strict=False)]
        self._next_snapshot_s = self.snapshots.next_deadline()
