"""The monitor's journal recorder: events and per-second samples into the journal."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from venueguard.app.recorder import MarketFacts, Recorder, sample_rows
from venueguard.core.playbook import Series
from venueguard.io.journal import Journal
from venueguard.telemetry.events import EventLog
from venueguard.telemetry.metrics import Metrics

T_MS = 1_795_435_200_000
FACTS = MarketFacts(symbol="XBTUSD", best_bid=100.0, best_ask=100.5, data_age_s=0.2,
                    last_trade_age_s=1.5, imbalance=0.3, trade_rate=4.0, volume_rate=120.0)


def by_name(rows: list[tuple[int, str, str, float, object]]) -> dict[tuple[str, str], float]:
    return {(kind, name): value for _, kind, name, value, _ in rows}


def test_sample_rows_read_the_metrics() -> None:
    m = Metrics()
    m.rest_requests_total.labels(method="POST", endpoint="/order", status="200").inc(7)
    m.rest_requests_total.labels(method="POST", endpoint="/order", status="503").inc(3)
    m.rest_requests_total.labels(method="GET", endpoint="/instrument", status="429").inc(1)
    m.rest_errors_total.labels(kind="overloaded").inc(3)
    m.rest_errors_total.labels(kind="rate_limited").inc(1)
    m.retries_total.inc(2)
    m.ws_reconnects_total.inc(4)
    m.ws_stale_total.labels(reason="data_age").inc()
    rows = sample_rows(T_MS, m.snapshot(), FACTS, snapshots_produced=9, snapshots_missing=1,
                       regime_code=2, venue_state_code=1, position=-5.0)
    got = by_name(rows)  # type: ignore[arg-type]
    assert got[Series.REQUESTS_TOTAL] == 11
    assert got[Series.HTTP_503_TOTAL] == 3
    assert got[Series.HTTP_429_TOTAL] == 1
    assert got[Series.ERRORS_TOTAL] == 4
    assert got[Series.RETRIES_TOTAL] == 2
    assert got[Series.RECONNECTS_TOTAL] == 4
    assert got[Series.STALE_TOTAL] == 1
    assert got[Series.SPREAD] == 0.5
    assert got[Series.SNAPSHOTS_TOTAL] == 9 and got[Series.SNAPSHOTS_MISSING_TOTAL] == 1
    assert got[Series.REGIME] == 2 and got[Series.VENUE_STATE] == 1
    assert got[Series.POSITION] == -5.0
    assert all(ts == T_MS for ts, *_ in rows)


def test_unknown_market_values_are_left_out() -> None:
    empty = MarketFacts("XBTUSD", None, None, None, None, None, None, float("nan"))
    got = by_name(sample_rows(T_MS, Metrics().snapshot(), empty,  # type: ignore[arg-type]
                              snapshots_produced=0, snapshots_missing=0, regime_code=0,
                              venue_state_code=0, position=None))
    assert Series.SPREAD not in got and Series.POSITION not in got
    assert ("market", "volume_rate") not in got
    assert got[Series.REQUESTS_TOTAL] == 0


async def test_recorder_writes_events_and_samples(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "j.db")
    recorder = Recorder(journal)
    log = EventLog(wall_clock=lambda: T_MS / 1000)
    log.subscribe(recorder.on_event)
    log.emit("regime.changed", from_="NORMAL", to="SAFE", reason="503s")
    log.emit("ws.connected", url="ws://127.0.0.1/realtime", api_secret="hunter2-secret")
    recorder.add_samples(sample_rows(T_MS, Metrics().snapshot(), FACTS, snapshots_produced=1,
                                     snapshots_missing=0, regime_code=0, venue_state_code=0,
                                     position=0.0))
    await recorder.flush()
    assert recorder.write_errors == 0 and recorder.written_events == 2
    events = journal.read_events(0, T_MS + 1)
    assert [e["event"] for e in events] == ["regime.changed", "ws.connected"]
    assert events[0]["from"] == "NORMAL" and events[0]["ts_ms"] == T_MS
    assert "api_secret" not in events[1]  # the journal refuses secret-looking keys: dropped
    spread = journal.read_samples(0, T_MS + 1, kind="market", name="spread")
    assert [s.value for s in spread] == [0.5] and spread[0].labels == {"symbol": "XBTUSD"}
    await recorder.flush()  # nothing queued: no write, no error
    assert recorder.written_events == 2
    journal.close()


async def test_recorder_is_bounded_and_survives_a_closed_journal(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "j.db")
    recorder = Recorder(journal, max_pending_events=3)
    for i in range(5):
        recorder.on_event({"ts": "2026-11-23T12:00:00.000Z", "event": "book.gap", "n": i})
    assert recorder.dropped_events == 2
    journal.close()
    await recorder.flush()
    assert recorder.write_errors == 1 and recorder.last_error is not None


class SlowJournal:
    """Stands in for the journal: each sample batch takes 0.2 s to write."""

    def __init__(self) -> None:
        self.samples: list[object] = []

    def record_samples(self, rows: list[object]) -> None:
        time.sleep(0.2)
        self.samples.extend(rows)

    def record_event(self, ts_ms: int, event: str, fields: object) -> None:
        raise AssertionError("no events in this test")


async def test_a_cancelled_flush_still_completes_and_the_next_waits_for_it() -> None:
    journal = SlowJournal()
    recorder = Recorder(journal)  # type: ignore[arg-type]
    first = [(T_MS, "market", "spread", 1.0, None)]
    second = [(T_MS + 1000, "market", "spread", 2.0, None)]
    recorder.add_samples(first)
    task = asyncio.create_task(recorder.flush())
    await asyncio.sleep(0.05)  # the write is under way in its thread
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    recorder.add_samples(second)
    await recorder.flush()
    assert journal.samples == first + second  # nothing lost, order kept
    assert recorder.write_errors == 0 and recorder.written_samples == 2
