"""The guarding proxy's journal: what ``venueguard report`` reads, as the monitor writes it.

The journal is the monitor's (:class:`venueguard.io.journal.Journal`, SQLite in WAL mode, one
process per journal through :class:`~venueguard.io.journal_lock.JournalLock`), written by the
monitor's :class:`~venueguard.app.recorder.Recorder`:

- ``events``: every event the proxy logs (``rest.error``, ``venue.state``, ``proxy.refused``,
  ``ws.stale``, ``alert``...; keys that look like secrets are dropped, and no event carries a
  header, a query string or a body);
- ``samples``, once a second: the monitor's counters from the proxy's metrics (REST requests,
  503s, 429s, errors), the venue state (the worst account's), the outage regime, the data
  age of the stalest open stream, and the best bid, ask and spread of the first symbol whose
  top of book (BitMEX ``quote``, Binance ``bookTicker``) went through, while fresh
  (:func:`~venueguard.app.recorder.sample_rows`); and one latency sample per answered request
  (``METHOD path`` without the query, and the status).

The proxy keeps no order book, takes no snapshots and places no order, so snapshots and
position are not recorded: the report shows them as not recorded.

Call order: :meth:`ProxyJournal.open` (raises :class:`~venueguard.io.journal.JournalError` when
the journal is held by another process or unusable); :meth:`on_request` per answer;
:meth:`tick` once a second; :meth:`close` at the end (a last flush, then the lock goes).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Self

from venueguard.app.recorder import MarketFacts, Recorder, latency_row, sample_rows
from venueguard.io.clock import Clock
from venueguard.io.journal import Journal
from venueguard.io.journal_lock import JournalLock
from venueguard.telemetry.events import EventLog
from venueguard.telemetry.metrics import VENUE_STATE_CODES, Metrics

__all__ = ["ProxyJournal"]


class ProxyJournal:
    """The journal of one guarding proxy (see the module docstring)."""

    def __init__(self, path: Path, lock: JournalLock, journal: Journal, recorder: Recorder,
                 events: EventLog, symbol: str) -> None:
        self.path = path
        self._lock = lock
        self._journal = journal
        self.recorder = recorder
        self._events = events
        self._symbol = symbol
        self._reported_errors = 0

    @classmethod
    def open(cls, path: str | Path, *, events: EventLog, clock: Clock, symbol: str) -> Self:
        """Take the journal's lock, open (or create) it and start recording ``events``."""
        path = Path(path)
        lock = JournalLock.acquire(path)
        try:
            journal = Journal.open(path, wall_clock=lambda: clock.wall_ms() / 1000.0)
        except BaseException:
            lock.release()
            raise
        recorder = Recorder(journal)
        events.subscribe(recorder.on_event)
        return cls(path, lock, journal, recorder, events, symbol)

    def on_request(self, endpoint: str, status: int, latency_s: float, wall_s: float) -> None:
        """One answered request: its latency for the report's plots."""
        self.recorder.add_samples([latency_row(wall_s, endpoint, status, latency_s)])

    async def tick(self, wall_s: float, metrics: Metrics, venue_state: str, regime_code: int,
                   data_age_s: float | None, symbol: str | None = None,
                   quote: tuple[float, float] | None = None) -> None:
        """One second of samples (``quote``: ``symbol``'s best bid and ask, when fresh), then
        everything queued is written (off the event loop)."""
        bid, ask = quote if quote is not None else (None, None)
        facts = MarketFacts(symbol or self._symbol, bid, ask, data_age_s, None, None, None, None)
        self.recorder.add_samples(sample_rows(
            int(wall_s * 1000), metrics.snapshot(), facts, snapshots_produced=None,
            snapshots_missing=None, regime_code=regime_code,
            venue_state_code=VENUE_STATE_CODES.get(venue_state, -1), position=None))
        await self.flush()

    async def flush(self) -> None:
        await self.recorder.flush()
        errors = self.recorder.write_errors
        if errors and not self._reported_errors:  # once: the proxy keeps forwarding
            self._reported_errors = errors
            self._events.emit("alert", tier="critical",
                              message=f"journal {self.path} failed "
                                      f"({self.recorder.last_error}); the proxy keeps "
                                      "forwarding without recording")

    async def close(self) -> None:
        """The last flush; then the journal closes and its lock is released (idempotent)."""
        self._events.unsubscribe(self.recorder.on_event)
        try:
            await self.flush()
        finally:
            with contextlib.suppress(Exception):
                self._journal.close()
            self._lock.release()
