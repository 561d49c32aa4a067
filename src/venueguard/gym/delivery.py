"""Where the venue's private rows (``order`` and ``execution``) go: to the agent's order table at
once, or held back by the contract.

- An UNKNOWN order's rows are withheld until its evidence step (:meth:`PrivateRows.hold`), then
  released in order (:meth:`PrivateRows.release_held`); the caller looks the order up after.
- Trade executions published while ``late_fill`` is active reach the table ``delay`` steps late.
- While the connection is down, every row waits and is applied when the feed resyncs
  (:meth:`PrivateRows.flush_queued`): the reconciliation a reconnecting client does.

Execution rows other than ``Trade`` are dropped: the order rows carry the same status.
"""

from __future__ import annotations

from venueguard.core.orders import OrderTable
from venueguard.venues.bitmex.reports import apply_execution_row, apply_order_row

__all__ = ["PrivateRows", "Row"]

Row = dict[str, object]


class PrivateRows:
    def __init__(self, table: OrderTable) -> None:
        self.table = table
        self.held: dict[str, list[tuple[bool, Row]]] = {}  # UNKNOWN orders' rows until evidence
        self.evidence_at: dict[str, int] = {}  # clOrdID -> step its evidence arrives
        self.late: list[tuple[int, Row]] = []  # (release step, execution row)
        self.queued: list[tuple[bool, Row]] = []  # rows while the connection is down

    def on_rows(self, is_exec: bool, rows: list[Row], *, step: int, now_s: float,
                late_steps: int | None, delivering: bool) -> None:
        """Rows of one update; ``late_steps`` is set while late fills are on."""
        held = self.held
        for row in rows:
            if is_exec and row.get("execType") != "Trade":
                continue
            cl = row.get("clOrdID")
            if isinstance(cl, str) and cl in held:
                held[cl].append((is_exec, row))
            elif is_exec and late_steps is not None:
                self.late.append((step + late_steps, row))
            elif not delivering:
                self.queued.append((is_exec, row))
            else:
                self.apply(is_exec, row, now_s)

    def apply(self, is_exec: bool, row: Row, now_s: float) -> None:
        if is_exec:
            apply_execution_row(self.table, row, now_s)
        else:
            apply_order_row(self.table, row, now_s)

    def hold(self, cl_ord_id: str, until_step: int) -> None:
        """Withhold ``cl_ord_id``'s rows until ``until_step`` (the later of two holds wins)."""
        self.held.setdefault(cl_ord_id, [])
        self.evidence_at[cl_ord_id] = max(self.evidence_at.get(cl_ord_id, 0), until_step)

    def due_evidence(self, step: int) -> list[str]:
        return [cl for cl, at in self.evidence_at.items() if at <= step]

    def release_held(self, cl_ord_id: str, now_s: float) -> None:
        del self.evidence_at[cl_ord_id]
        for is_exec, row in self.held.pop(cl_ord_id, []):
            self.apply(is_exec, row, now_s)

    def release_late(self, step: int, now_s: float, *, delivering: bool) -> int:
        """Apply (or queue) the late executions due at ``step``; returns how many."""
        due = [row for at, row in self.late if at <= step]
        if due:
            self.late = [(at, row) for at, row in self.late if at > step]
            for row in due:
                if delivering:
                    self.apply(True, row, now_s)
                else:
                    self.queued.append((True, row))
        return len(due)

    def flush_queued(self, now_s: float) -> None:
        queued, self.queued = self.queued, []
        for is_exec, row in queued:
            self.apply(is_exec, row, now_s)
