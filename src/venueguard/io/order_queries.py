"""REST queries the order manager makes for the reconciler, and checks on what comes back.

* :func:`history_pages` — every row of ``GET /order`` or ``GET /execution/tradeHistory`` since
  a time, page by page (small pages keep each response small); ``complete`` says whether the
  last page came back short, which alone lets the reconciler treat absence as proof;
* :func:`usable_executions` — splits execution rows into those the order table can apply and
  trades lacking their id, quantity or price (reported by the caller, never applied);
* :func:`venue_qty` — the venue's position for a symbol from ``GET /position`` rows;
* :func:`amend_reject_status` — the order state a refused ``PUT /order`` names
  (``Invalid ordStatus: Filled`` -> ``Filled``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from venueguard.io import errors
from venueguard.venues.bitmex.errors import INVALID_ORD_STATUS
from venueguard.venues.bitmex.timefmt import format_ms

__all__ = ["amend_reject_status", "history_pages", "usable_executions", "venue_qty"]

#: States an amend refusal may name; an open state names nothing new.
_CLOSED_STATUSES = frozenset({"Filled", "Canceled", "Rejected"})

Row = dict[str, Any]


class Requester(Protocol):
    async def request(self, verb: str, path: str, *, query: Any = None, body: Any = None,
                      idempotent: bool | None = None, cl_ord_id: str | None = None,
                      endpoint: str | None = None) -> Any: ...


async def history_pages(rest: Requester, path: str, symbol: str | None, start_ms: int, *,
                        page_count: int, max_pages: int) -> tuple[list[Row], bool]:
    """Every row since ``start_ms`` (raises ``VenueError``); ``complete`` when the last page
    came back short."""
    out: list[Row] = []
    for page in range(max_pages):
        query: dict[str, Any] = {"startTime": format_ms(start_ms), "count": page_count,
                                 "start": page * page_count}
        if symbol:
            query["symbol"] = symbol
        rows = await rest.request("GET", path, query=query)
        if not isinstance(rows, list):
            raise errors.VenueError(f"GET {path}: expected a list", kind="bad_response")
        out.extend(r for r in rows if isinstance(r, dict))
        if len(rows) < page_count:
            return out, True
    return out, False


def usable_executions(rows: Sequence[Row]) -> tuple[list[Row], list[Row]]:
    """(rows the table can apply, trades without execID, a positive lastQty or a lastPx)."""
    good: list[Row] = []
    bad: list[Row] = []
    for row in rows:
        qty, px, exec_id = row.get("lastQty"), row.get("lastPx"), row.get("execID")
        usable = (row.get("execType") != "Trade"
                  or (isinstance(exec_id, str) and bool(exec_id)
                      and isinstance(qty, int) and not isinstance(qty, bool) and qty > 0
                      and isinstance(px, int | float) and not isinstance(px, bool)))
        (good if usable else bad).append(row)
    return good, bad


def venue_qty(rows: Sequence[Row], symbol: str) -> int:
    """``currentQty`` of ``symbol`` in ``GET /position`` rows (0 when it has none)."""
    for row in rows:
        qty = row.get("currentQty")
        if row.get("symbol") == symbol and isinstance(qty, int) and not isinstance(qty, bool):
            return qty
    return 0


def amend_reject_status(message: str) -> str | None:
    """The closed state named by an amend refusal (``Invalid ordStatus: Filled``), else None
    (other refusals, such as ``Invalid price``, say nothing about the order's state)."""
    head, sep, rest = message.partition(INVALID_ORD_STATUS)
    if not sep or head.strip():
        return None
    words = rest.lstrip(": ").split()
    status = words[0].rstrip(".,;") if words else ""
    return status if status in _CLOSED_STATUSES else None
