"""Values the simulator engine hands out: published updates and request errors."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SimError", "Update"]


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

    ``symbol`` names the instrument for per-symbol topics (``orderBookL2:XBTUSD``); ``private`` marks
    account tables (order, execution, position) that only the authenticated account may see.
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
