"""What consumers of a market-data session hold: a book view and an event stream.

Both are created by :class:`~venueguard.io.ws_session.MarketDataSession` (``session.book(symbol)``
and ``session.events()``) and read the session's live state; they are re-exported from
``venueguard.io.ws_session``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

from venueguard.core.book import OrderBook
from venueguard.io import md_events as ev

if TYPE_CHECKING:
    from venueguard.io.ws_session import MarketDataSession

__all__ = ["BookView", "EventStream"]


class BookView:
    """One symbol's book as the session sees it; freshness is read from the session's clock."""

    def __init__(self, session: MarketDataSession, table: str, symbol: str) -> None:
        self._session = session
        self.table = table
        self.symbol = symbol

    @property
    def book(self) -> OrderBook:
        return self._session.state.books[self.table].book(self.symbol)

    @property
    def age_s(self) -> float:
        """Seconds since this book was last known current (``inf`` before its first partial)."""
        book = self.book
        if not book.valid or book.last_update_now is None:
            return float("inf")
        known = book.last_update_now
        last_data = self._session.state.last_data_now
        if last_data is not None and last_data > known:
            known = last_data  # a later message on the same ordered stream: nothing was missed
        return max(0.0, self._session.clock.monotonic() - known)

    @property
    def is_fresh(self) -> bool:
        """In sync, on a live (not stale) connection, and current within ``book_max_age_s``."""
        session = self._session
        return (session.live and self.book.valid
                and self.age_s <= session.book_max_age_s)

    def best_bid(self) -> tuple[float, float] | None:
        return self.book.best_bid()

    def best_ask(self) -> tuple[float, float] | None:
        return self.book.best_ask()

    def mid(self) -> float | None:
        return self.book.mid()

    def spread(self) -> float | None:
        return self.book.spread()

    def sides(self) -> dict[str, dict[float, float]]:
        return self.book.sides()


class EventStream:
    """An async iterator over a session's events; ``close()`` (or the session's end) ends it."""

    def __init__(self, session: MarketDataSession, maxlen: int) -> None:
        self._session = session
        self.queue: deque[ev.MdEvent] = deque(maxlen=maxlen)
        self.ready = asyncio.Event()
        self._closed = False

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> ev.MdEvent:
        while True:
            if self.queue:
                return self.queue.popleft()
            if self._closed or self._session._closed.is_set():
                self.close()
                raise StopAsyncIteration
            self.ready.clear()
            await self.ready.wait()

    def close(self) -> None:
        self._closed = True
        self.ready.set()
        self._session._drop_stream(self)
