"""Order-level faults: what the venue shows about accepted orders, and when.

- ``delayed_visibility``: an order accepted while the fault is active stays out of ``GET /order``
  for ``delay_s`` (order existence is eventually consistent on the real venue).
- ``late_fill``: trade executions published while the fault is active reach the ``execution``
  table and ``GET /execution/tradeHistory`` ``delay_s`` late; the ``order`` table already shows
  the fill, so a client sees the order filled before it sees the execution.
- ``cancel_race`` is decided in the REST cancel route (the order fills before the cancel lands).

The engine's ground truth is never changed by these: ``GET /_sim/truth`` always shows everything.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from venueguard.sim.clock import SimClock
from venueguard.sim.engine import Engine
from venueguard.sim.faults import FaultBook
from venueguard.sim.model import Update


@dataclass(slots=True)
class _Held:
    release_ms: int
    update: Update


class OrderEffects:
    """Visibility and delivery delays for orders and executions. Times are simulated epoch ms."""

    def __init__(self, faults: FaultBook, clock: SimClock) -> None:
        self._faults = faults
        self._clock = clock
        self._hidden_orders: dict[str, int] = {}  # orderID -> visible from (ms)
        self._hidden_execs: dict[str, int] = {}  # execID -> visible from (ms)
        self._held: list[_Held] = []

    def _param(self, kind: str, name: str) -> float | None:
        fault = self._faults.first(kind, self._clock.monotonic_s())
        return None if fault is None else float(fault.params[name])

    # -- delayed visibility ------------------------------------------------------------------
    def on_order_accepted(self, order_id: str, now_ms: int) -> None:
        delay_s = self._param("delayed_visibility", "delay_s")
        if delay_s is not None and order_id:
            self._hidden_orders[order_id] = now_ms + int(delay_s * 1000)

    def visible_orders(self, rows: list[dict[str, object]], now_ms: int) -> list[dict[str, object]]:
        if not self._hidden_orders:
            return rows
        for oid in [o for o, t in self._hidden_orders.items() if t <= now_ms]:
            del self._hidden_orders[oid]
        return [r for r in rows if r.get("orderID") not in self._hidden_orders]

    # -- late fills ---------------------------------------------------------------------------
    def holds_updates(self) -> bool:
        return self._param("late_fill", "delay_s") is not None

    def filter_execution_update(self, update: Update, now_ms: int) -> Update:
        """Split trade rows out of an execution update and hold them; returns the rest."""
        delay_s = self._param("late_fill", "delay_s")
        if delay_s is None:
            return update
        trades = [r for r in update.rows if r.get("execType") == "Trade"]
        if not trades:
            return update
        release_ms = now_ms + int(delay_s * 1000)
        for row in trades:
            exec_id = row.get("execID")
            if isinstance(exec_id, str):
                self._hidden_execs[exec_id] = release_ms
        self._held.append(_Held(release_ms, Update(update.table, "insert", update.symbol, trades,
                                                   update.private)))
        rest = [r for r in update.rows if r.get("execType") != "Trade"]
        return Update(update.table, update.action, update.symbol, rest, update.private)

    def release_due(self, now_ms: int) -> list[Update]:
        """Held execution updates whose delay has passed, in the order they were held."""
        if not self._held:
            return []
        due = [h.update for h in self._held if h.release_ms <= now_ms]
        self._held = [h for h in self._held if h.release_ms > now_ms]
        return due

    def visible_executions(self, rows: list[dict[str, object]],
                           now_ms: int) -> list[dict[str, object]]:
        if not self._hidden_execs:
            return rows
        for eid in [e for e, t in self._hidden_execs.items() if t <= now_ms]:
            del self._hidden_execs[eid]
        return [r for r in rows if r.get("execID") not in self._hidden_execs]

    def on_clear(self) -> None:
        """Faults were cleared: what was hidden becomes visible now."""
        self._hidden_orders.clear()
        self._hidden_execs.clear()
        for held in self._held:
            held.release_ms = 0


def fill_resting(engine: Engine, order_ids: Sequence[str], cl_ord_ids: Sequence[str],
                 now_ms: int) -> int:
    """Fill the named open resting orders completely (``cancel_race``); returns how many."""
    return engine.fill_resting(order_ids, cl_ord_ids, now_ms)
