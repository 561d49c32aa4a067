"""One symbol's book kept in step with Binance USDⓈ-M depth diffs, as Binance documents it.

The procedure ("How to manage a local order book correctly"), sans I/O:

1. Diffs arriving before a snapshot are buffered (:meth:`DepthSync.on_update` returns DROPPED).
2. The caller fetches ``GET /fapi/v1/depth`` and hands it to :meth:`DepthSync.on_snapshot`:
   the book becomes that image at ``lastUpdateId`` (L); buffered diffs with ``u < L`` are
   dropped; the first diff applied must have ``U <= L <= u``.
3. From then on every diff's ``pu`` must equal the previous applied diff's ``u``. Futures ids
   are not contiguous (``U`` is not ``u + 1``): ``pu`` is the chain.

A break (a first diff starting after L, or ``pu`` not the last ``u``) returns RESYNC with reason
``gap``: the book is invalid and the caller fetches a new snapshot
(:attr:`DepthSync.needs_snapshot`).
A diff whose ``u`` is not after the last applied one is old news (a duplicate, or one overtaken
by a later diff): it is refused (``duplicate`` / ``reorder``) without a resync, since the book
already holds what came after it. A diff with an impossible level is refused by the neutral book
(counted, and a resync follows).

Time is the caller's monotonic ``now``; this module reads no clock.
"""

from __future__ import annotations

import enum
from collections import deque

from venueguard.core.book import (
    APPLIED,
    DROPPED,
    ApplyResult,
    ApplyStatus,
    BookConfig,
    OrderBook,
)
from venueguard.venues.binance.messages import DepthSnapshot, DepthUpdate

__all__ = ["DUPLICATE", "GAP", "REORDER", "DepthSync", "SyncState"]

GAP = "gap"
DUPLICATE = "duplicate"
REORDER = "reorder"
_DUPLICATE = ApplyResult(ApplyStatus.DROPPED, DUPLICATE)
_REORDER = ApplyResult(ApplyStatus.DROPPED, REORDER)


class SyncState(enum.Enum):
    AWAITING_SNAPSHOT = "awaiting_snapshot"  # diffs are buffered
    BRIDGING = "bridging"  # snapshot applied; the next diff must span its lastUpdateId
    SYNCED = "synced"  # every diff must chain by pu


_SYNCED = SyncState.SYNCED


class DepthSync:
    """See the module docstring. ``max_buffer`` bounds the diffs kept while awaiting a
    snapshot (the oldest go first; a snapshot newer than what was lost still syncs)."""

    __slots__ = ("book", "buffer", "last_id", "snapshot_id", "state", "symbol")

    def __init__(self, symbol: str, config: BookConfig | None = None,
                 max_buffer: int = 10_000) -> None:
        self.symbol = symbol
        self.book = OrderBook(symbol, config)
        self.buffer: deque[DepthUpdate] = deque(maxlen=max_buffer)
        self.state = SyncState.AWAITING_SNAPSHOT
        self.last_id: int | None = None  # u of the last diff applied (L right after a snapshot)
        self.snapshot_id: int | None = None

    @property
    def needs_snapshot(self) -> bool:
        return self.state is SyncState.AWAITING_SNAPSHOT

    def on_update(self, update: DepthUpdate, now: float) -> ApplyResult:
        """Feed one diff, in arrival order."""
        state = self.state
        if state is _SYNCED:
            if update.prev_id == self.last_id:
                return self._apply(update, now)
            return self._out_of_chain(update)
        if state is SyncState.AWAITING_SNAPSHOT:
            self.buffer.append(update)
            self.book.dropped_rows += len(update.bids) + len(update.asks)
            return DROPPED
        return self._bridge(update, now)

    def on_snapshot(self, snapshot: DepthSnapshot, now: float) -> ApplyResult:
        """Apply a REST snapshot, then the buffered diffs that follow it."""
        result = self.book.apply_snapshot(snapshot.bids, snapshot.asks, now, snapshot.txn_ms)
        if result is not APPLIED:
            self.state = SyncState.AWAITING_SNAPSHOT
            return result
        self.state = SyncState.BRIDGING
        self.last_id = self.snapshot_id = snapshot.last_update_id
        self.book.partials += 1
        pending, self.buffer = self.buffer, deque(maxlen=self.buffer.maxlen)
        for update in pending:
            outcome = self.on_update(update, now)
            if outcome.status is ApplyStatus.RESYNC:
                return outcome
        return APPLIED

    def reset(self, reason: str) -> ApplyResult:
        """Out of sync (e.g. the connection dropped): invalid until a new snapshot."""
        self.state = SyncState.AWAITING_SNAPSHOT
        self.buffer.clear()
        self.last_id = None
        return self.book.invalidate(reason)

    def _bridge(self, update: DepthUpdate, now: float) -> ApplyResult:
        snapshot_id = self.snapshot_id
        assert snapshot_id is not None
        if update.last_id < snapshot_id:
            return DROPPED  # older than the snapshot: already in it
        if update.first_id > snapshot_id:
            return self._gap()  # the diffs that lead from the snapshot to this one are gone
        return self._apply(update, now)

    def _apply(self, update: DepthUpdate, now: float) -> ApplyResult:
        result = self.book.apply_changes(update.bids, update.asks, now, update.txn_ms)
        if result is APPLIED:
            self.state = SyncState.SYNCED
            self.last_id = update.last_id
        elif result.status is ApplyStatus.RESYNC:
            self.state = SyncState.AWAITING_SNAPSHOT
            self.buffer.clear()
        return result

    def _out_of_chain(self, update: DepthUpdate) -> ApplyResult:
        last = self.last_id
        assert last is not None
        if update.last_id == last:
            return _DUPLICATE
        if update.last_id < last:
            return _REORDER
        return self._gap()

    def _gap(self) -> ApplyResult:
        self.state = SyncState.AWAITING_SNAPSHOT
        self.buffer.clear()
        self.last_id = None
        return self.book.invalidate(GAP)
