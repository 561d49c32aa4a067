"""What a market-data session needs from its venue's pipeline (frames in; books, tapes, quotes,
checks and control messages out), so that one session loop serves every venue.

:class:`~venueguard.io.md_state.MdState` (BitMEX) and
:class:`~venueguard.io.binance_md.BinanceMdState` (Binance USDⓈ-M) both satisfy
:class:`MdPipeline`; the session only ever talks to this shape.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from venueguard.core.book import OrderBook
from venueguard.core.liveness import Liveness
from venueguard.core.trades import TradeTape

__all__ = ["BookTable", "MdPipeline"]


class BookTable(Protocol):
    """The books of one book channel (a BitMEX L2 table, Binance's depth), by symbol."""

    @property
    def books(self) -> Mapping[str, OrderBook]: ...

    def book(self, symbol: str) -> OrderBook: ...


class MdPipeline(Protocol):
    """Per session: books, tapes, quotes; per connection: the liveness checks."""

    liveness: Liveness
    last_data_now: float | None
    resync_reason: str | None

    @property
    def books(self) -> Mapping[str, BookTable]: ...

    @property
    def tapes(self) -> Mapping[str, TradeTape]: ...

    @property
    def quotes(self) -> Mapping[str, Mapping[str, Any]]: ...

    @property
    def table_counts(self) -> Mapping[str, int]: ...

    def begin(self, now: float) -> None: ...

    def expect(self, topics: Iterable[str]) -> None: ...

    def on_subscribed(self, topic: str, now: float) -> None: ...

    def take_control(self) -> list[Any]: ...

    def on_frame(self, payload: bytes, now: float, wall_ms: int) -> bool: ...

    def on_frames(self, payloads: Sequence[bytes], now: float, wall_ms: int) -> bool: ...
