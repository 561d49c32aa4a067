"""Values the simulator engine hands out: published updates and request errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["SimError", "Update", "make_update"]


class SimError(Exception):
    """A request the venue refuses; the server answers ``{"error": {"message", "name"}}``.

    ``status`` is the HTTP status, ``message`` BitMEX's exact text, ``name`` the error class
    BitMEX reports (``HTTPError``, ``ValidationError``, ``WebsocketError``...).
    """

    def __init__(self, status: int, message: str, name: str = "HTTPError") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.name = name

    def body(self) -> dict[str, object]:
        return {"error": {"message": self.message, "name": self.name}}


@dataclass(frozen=True, slots=True)
class Update:
    """One websocket data message: ``{"table", "action", "data": rows}``.

    ``symbol`` names the instrument for per-symbol topics (``orderBookL2:XBTUSD``); ``private``
    marks account tables (order, execution, position) only the authenticated account may see.
    Rows are plain dicts shaped as on BitMEX; treat them as read-only (copy before changing).
    """

    table: str
    action: str
    symbol: str | None
    rows: list[dict[str, object]]
    private: bool = False

    def message(self) -> dict[str, object]:
        """The wire form without partial metadata."""
        return {"table": self.table, "action": self.action, "data": self.rows}


_new = object.__new__
_slot: dict[str, Any] = {name: Update.__dict__[name].__set__ for name in Update.__slots__}
_set_table = _slot["table"]
_set_action = _slot["action"]
_set_symbol = _slot["symbol"]
_set_rows = _slot["rows"]
_set_private = _slot["private"]


def make_update(
    table: str, action: str, symbol: str | None, rows: list[dict[str, object]],
    private: bool = False,
) -> Update:
    """``Update(...)`` for the hot path: same object, about half the construction cost (it
    fills the slots directly instead of going through the frozen dataclass ``__init__``)."""
    u: Update = _new(Update)
    _set_table(u, table)
    _set_action(u, action)
    _set_symbol(u, symbol)
    _set_rows(u, rows)
    _set_private(u, private)
    return u
