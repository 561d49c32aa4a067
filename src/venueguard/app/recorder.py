"""What the monitor journals for the report: per-second samples and every event.

The :class:`Recorder` subscribes to the EventLog (every record is queued, bounded) and is handed
a row of samples once per second by the monitor (:func:`sample_rows`). :meth:`Recorder.flush`
writes both to the journal's ``samples`` and ``events`` tables in a worker thread, so the event
loop never waits on the disk. The series names are :class:`venueguard.core.playbook.Series`,
which the report reads back.

Call order: ``Recorder(journal)``; ``events.subscribe(recorder.on_event)``; every second
``recorder.add_samples(sample_rows(...))`` then ``await recorder.flush()``; at the end one last
``await recorder.flush()`` before the journal is closed.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from venueguard.core.playbook import Series
from venueguard.io.journal import Journal, JournalError, guard

SampleRow = tuple[int, str, str, float, Mapping[str, object] | None]


@dataclass(frozen=True, slots=True)
class MarketFacts:
    """The market context of one second (None where unknown)."""

    symbol: str
    best_bid: float | None
    best_ask: float | None
    data_age_s: float | None
    last_trade_age_s: float | None
    imbalance: float | None
    trade_rate: float | None
    volume_rate: float | None


def _iso_ms(text: object, fallback_ms: int) -> int:
    if not isinstance(text, str):
        return fallback_ms
    try:
        return int(datetime.fromisoformat(text).timestamp() * 1000)
    except ValueError:
        return fallback_ms


def _clean_fields(record: Mapping[str, object]) -> dict[str, object]:
    """The record minus ``ts``/``event``, minus any key the journal refuses as secret-looking."""
    out: dict[str, object] = {}
    for key, value in record.items():
        if key in ("ts", "event"):
            continue
        try:
            guard({key: value})
        except JournalError:
            continue
        out[key] = value
    return out


def _total(value: object, label_filter: str | None = None) -> float:
    """Sum of a metrics-snapshot entry (a number, or a dict of labelled numbers)."""
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, Mapping):
        return sum(float(v) for k, v in value.items() if isinstance(v, int | float)
                   and (label_filter is None or label_filter in str(k).split(",")))
    return 0.0


def latency_row(wall_s: float, endpoint: str, status: int, latency_s: float) -> SampleRow:
    """The sample of one REST request's latency (the report's latency plots)."""
    return (int(wall_s * 1000), *Series.LATENCY_MS, latency_s * 1000.0,
            {"endpoint": endpoint, "status": str(status)})


def sample_rows(ts_ms: int, metrics: Mapping[str, object], market: MarketFacts, *,
                snapshots_produced: int | None, snapshots_missing: int | None,
                regime_code: int | None, venue_state_code: int,
                position: float | None) -> list[SampleRow]:
    """One second of samples from a :meth:`Metrics.snapshot` and the monitor's own facts.
    Facts a process does not have (None: no snapshots, no regime) are not recorded, so the
    report says "no data" rather than "not seen"."""
    sym = {"symbol": market.symbol}
    http_503 = _total(metrics.get("rest_requests_total"), "status=503")
    counters: list[tuple[tuple[str, str], float]] = [
        (Series.REQUESTS_TOTAL, _total(metrics.get("rest_requests_total"))),
        (Series.HTTP_503_TOTAL, http_503),
        (Series.HTTP_429_TOTAL, _total(metrics.get("rest_requests_total"), "status=429")),
        (Series.ERRORS_TOTAL, _total(metrics.get("rest_errors_total"))),
        (Series.RETRIES_TOTAL, _total(metrics.get("retries_total"))),
        (Series.RECONNECTS_TOTAL, _total(metrics.get("ws_reconnects_total"))),
        (Series.STALE_TOTAL, _total(metrics.get("ws_stale_total"))),
        (Series.VENUE_STATE, float(venue_state_code)),
    ]
    if snapshots_produced is not None and snapshots_missing is not None:
        counters += [(Series.SNAPSHOTS_TOTAL, float(snapshots_produced)),
                     (Series.SNAPSHOTS_MISSING_TOTAL, float(snapshots_missing))]
    if regime_code is not None:
        counters.append((Series.REGIME, float(regime_code)))
    rows: list[SampleRow] = [(ts_ms, kind, name, value, None) for (kind, name), value in counters]
    bid, ask = market.best_bid, market.best_ask
    optional: list[tuple[tuple[str, str], float | None, Mapping[str, object] | None]] = [
        (Series.BEST_BID, bid, sym),
        (Series.BEST_ASK, ask, sym),
        (Series.SPREAD, ask - bid if bid is not None and ask is not None else None, sym),
        (Series.DATA_AGE_S, market.data_age_s, None),
        (Series.LAST_TRADE_AGE_S, market.last_trade_age_s, None),
        (("market", "imbalance"), market.imbalance, sym),
        (("market", "trade_rate"), market.trade_rate, sym),
        (("market", "volume_rate"), market.volume_rate, sym),
        (Series.POSITION, position, sym),
    ]
    rows += [(ts_ms, kind, name, value, labels) for (kind, name), value, labels in optional
             if value is not None and math.isfinite(value)]
    return rows


class Recorder:
    """Queues events and samples; :meth:`flush` writes them to the journal off the loop."""

    def __init__(self, journal: Journal, *, max_pending_events: int = 20_000,
                 max_pending_samples: int = 100_000) -> None:
        self._journal = journal
        self._events: deque[tuple[int, str, dict[str, object]]] = deque()
        self._samples: deque[SampleRow] = deque()
        self._max_events = max_pending_events
        self._max_samples = max_pending_samples
        self.dropped_events = 0
        self.dropped_samples = 0
        self.write_errors = 0
        self.last_error: str | None = None
        self.written_events = 0
        self.written_samples = 0
        self._inflight: asyncio.Future[None] | None = None

    def on_event(self, record: Mapping[str, object]) -> None:
        """EventLog subscriber: queue the record (the oldest is dropped beyond the bound)."""
        if len(self._events) >= self._max_events:
            self._events.popleft()
            self.dropped_events += 1
        ts_ms = _iso_ms(record.get("ts"), 0)
        self._events.append((ts_ms, str(record.get("event", "")), _clean_fields(record)))

    def add_samples(self, rows: Iterable[SampleRow]) -> None:
        for row in rows:
            if len(self._samples) >= self._max_samples:
                self._samples.popleft()
                self.dropped_samples += 1
            self._samples.append(row)

    def _write(self, events: list[tuple[int, str, dict[str, object]]],
               samples: list[SampleRow]) -> None:
        """Runs in a worker thread; never raises (a journal error is counted)."""
        try:
            if samples:
                self._journal.record_samples(samples)
                self.written_samples += len(samples)
            for ts_ms, event, fields in events:
                self._journal.record_event(ts_ms, event, fields)
                self.written_events += 1
        except Exception as exc:  # JournalError, OSError, sqlite3 errors: count, keep running
            self.write_errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"

    async def flush(self) -> None:
        """Write everything queued so far. A write already under way finishes first; if the
        caller is cancelled, the write it started still completes (the next flush waits)."""
        if self._inflight is not None and not self._inflight.done():
            await asyncio.shield(self._inflight)
        events, samples = list(self._events), list(self._samples)
        self._events.clear()
        self._samples.clear()
        if not events and not samples:
            return
        loop = asyncio.get_running_loop()
        self._inflight = loop.run_in_executor(None, self._write, events, samples)
        await asyncio.shield(self._inflight)
