"""Typed events a market-data session hands to its consumers (``async for ev in session.events()``).

Every event carries ``at``: the session clock's monotonic seconds when it happened. State events
mirror the event-log lines of ``docs/events.md`` (``ws.connected`` -> :class:`Connected`,
``ws.stale`` -> :class:`Stale`, ``book.gap`` -> :class:`BookGap`, ``book.resynced`` ->
:class:`BookResynced`, ``data.rejected`` -> :class:`DataRejected` ...). Data reaches consumers as
:class:`TopOfBook` (the best bid or ask of a book changed) and :class:`TableData` (rows of
trade, quote, instrument and the private tables). Refused data is never delivered as
:class:`TableData`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "BookGap",
    "BookResynced",
    "Connected",
    "DataRejected",
    "Disconnected",
    "Fresh",
    "MdEvent",
    "Reconnecting",
    "SessionFailed",
    "Stale",
    "Subscribed",
    "TableData",
    "TopOfBook",
    "TopicFailed",
]


@dataclass(frozen=True, slots=True)
class Connected:
    at: float
    attempt: int  # 0 for the first connection, then the reconnect count


@dataclass(frozen=True, slots=True)
class Subscribed:
    at: float
    topic: str


@dataclass(frozen=True, slots=True)
class TopicFailed:
    """The venue refused a topic; by rule it is not retried (unknown table, no permission)."""

    at: float
    topic: str
    kind: str
    message: str


@dataclass(frozen=True, slots=True)
class Stale:
    """The connection stopped being trustworthy (``reason``: ``data_age`` | ``pong_timeout``)."""

    at: float
    reason: str
    channel: str | None
    age_s: float
    threshold_s: float | None = None  # the limit crossed (learned or static)
    suspicion: float | None = None  # phi of the silence, where the threshold was learned


@dataclass(frozen=True, slots=True)
class Fresh:
    at: float
    channel: str


@dataclass(frozen=True, slots=True)
class DataRejected:
    """A data message was refused: it failed a check (``reason``: stale | future | reorder |
    duplicate) or was impossible on its face (malformed | unknown_action | missing_timestamp |
    bad_timestamp | invalid_price | invalid_size | invalid_id | invalid_side | off_tick |
    off_lot)."""

    at: float
    reason: str
    table: str
    symbol: str | None


@dataclass(frozen=True, slots=True)
class BookGap:
    """The local book proved out of sync (``reason`` from the book or the checks); a resync runs."""

    at: float
    table: str
    symbol: str
    reason: str


@dataclass(frozen=True, slots=True)
class BookResynced:
    """A book was rebuilt from a new partial after a reconnect or a gap."""

    at: float
    table: str
    symbol: str
    levels: int


@dataclass(frozen=True, slots=True)
class TopOfBook:
    """Best bid/ask of a book changed; (price, size) pairs or None for an empty side."""

    at: float
    table: str
    symbol: str
    best_bid: tuple[float, float] | None
    best_ask: tuple[float, float] | None


@dataclass(frozen=True, slots=True)
class TableData:
    """Accepted rows of a non-book table (trade, quote, instrument, order, execution, position)."""

    at: float
    table: str
    action: str
    symbol: str | None
    rows: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Disconnected:
    at: float
    reason: str


@dataclass(frozen=True, slots=True)
class Reconnecting:
    at: float
    attempt: int
    delay_s: float
    reason: str


@dataclass(frozen=True, slots=True)
class SessionFailed:
    """The session stopped for good (its rules say not to retry); ``kind`` is the classifier's."""

    at: float
    kind: str
    message: str


MdEvent = (
    Connected | Subscribed | TopicFailed | Stale | Fresh | DataRejected | BookGap | BookResynced
    | TopOfBook | TableData | Disconnected | Reconnecting | SessionFailed
)
