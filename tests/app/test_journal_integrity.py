"""The journal at the edges: a database error ends the run (non-zero, trader stopped first),
``report`` reads without writing anything beside the file and says what went wrong, and one
journal never has two writers."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sqlite3
import sys
from pathlib import Path

import pytest

from venueguard.app.monitor import Monitor, MonitorConfig, MonitorContext
from venueguard.app.report import JournalReadError, load_recording
from venueguard.app.ticker import MarketInput, VenueInput
from venueguard.io.journal import Journal
from venueguard.io.journal_lock import JournalLock, JournalLockedError, lock_path


class QuietMarket:
    def __init__(self, ctx: MonitorContext) -> None:
        self.ctx = ctx

    async def run(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            self.ctx.events.emit("ws.subscribed", topic="orderBookL2:XBTUSD")

    def market_input(self, now: float) -> MarketInput:
        return MarketInput(fresh=True, best_bid=100.0, best_ask=100.5, bid_qty=1.0,
                           ask_qty=1.0, data_age_s=0.05, top_changes_total=1, trades_total=0,
                           volume_total=0.0, last_trade_now=None, connected=True,
                           connection_age_s=1.0, pong_age_s=0.1)


class QuietVenue:
    def __init__(self, ctx: MonitorContext) -> None:
        self.ctx = ctx

    async def run(self) -> None:
        await asyncio.Event().wait()

    def venue_input(self, now: float, wall_s: float) -> VenueInput:
        return VenueInput("HEALTHY")

    async def aclose(self) -> None:
        return None


class RecordingTrader:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def run(self) -> None:
        await asyncio.Event().wait()

    def pause(self, reason: str) -> None:
        self.calls.append(f"pause:{reason}")

    def resume(self) -> None:
        self.calls.append("resume")

    async def stop(self) -> None:
        self.calls.append("stop")

    def state(self) -> dict[str, object]:
        return {}


async def sources(ctx: MonitorContext) -> tuple[QuietMarket, QuietVenue]:
    return QuietMarket(ctx), QuietVenue(ctx)


def monitor_config(journal: Path, **kw: object) -> MonitorConfig:
    base: dict[str, object] = {"sim_url": "http://127.0.0.1:9", "journal": journal, "port": 0,
                               "log_format": "json", "duration_s": 20.0}
    base.update(kw)
    return MonitorConfig(**base)  # type: ignore[arg-type]


def corrupt_after_schema(path: Path) -> None:
    """A journal whose header and schema pages are intact but whose data pages are garbage."""
    with Journal.open(path) as journal:
        journal.record_samples([(i, "market", "spread", 1.0, {"k": "v" * 50})
                                for i in range(20_000)])
    size = path.stat().st_size
    with path.open("r+b") as handle:
        handle.seek(size // 3)
        handle.write(os.urandom(size - size // 3))


async def test_a_database_error_ends_the_run_non_zero_after_stopping_the_trader(
        tmp_path: Path) -> None:
    path = tmp_path / "damaged.db"
    corrupt_after_schema(path)
    out, err = io.StringIO(), io.StringIO()
    trader = RecordingTrader()
    monitor = Monitor(monitor_config(path, trade="demo"), stdout=out, stderr=err,
                      sources=sources)  # type: ignore[arg-type]
    monitor._make_trader = lambda ctx: trader  # type: ignore[method-assign]
    code = await asyncio.wait_for(monitor.run(), 15)  # long before --duration (20 s)
    assert code == 1
    assert monitor.stop_reason == "journal_error"
    assert trader.calls[:1] == ["pause:journal failed"] and "stop" in trader.calls
    assert "the journal" in err.getvalue() and "failed" in err.getvalue()
    records = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    assert any(r["event"] == "alert" and r.get("tier") == "critical"
               and "journal" in str(r.get("message")) for r in records)


def make_journal(path: Path) -> None:
    with Journal.open(path) as journal:
        journal.record_samples([(1_000, "market", "spread", 0.5, {"symbol": "XBTUSD"})])
        journal.record_event(1_000, "ws.connected", {"url": "ws://x"})


def test_report_reads_a_closed_journal_without_creating_files_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    make_journal(path)
    before = sorted(os.listdir(tmp_path))
    assert before == ["j.db"]
    rec = load_recording(path)
    assert rec.series(("market", "spread")) == [(1.0, 0.5)]
    assert rec.events[0].event == "ws.connected"
    assert sorted(os.listdir(tmp_path)) == before


def test_report_reads_a_journal_still_being_written(tmp_path: Path) -> None:
    path = tmp_path / "live.db"
    with Journal.open(path) as journal:
        journal.record_samples([(1_000, "market", "spread", 0.5, None)])
        journal.record_samples([(2_000, "market", "spread", 0.7, None)])
        before = sorted(os.listdir(tmp_path))
        rec = load_recording(path)
        assert rec.series(("market", "spread")) == [(1.0, 0.5), (2.0, 0.7)]  # still in -wal
        assert sorted(os.listdir(tmp_path)) == before


@pytest.mark.parametrize(("content", "words"), [
    (b"hello, not a database at all" * 10, "not an SQLite database"),
    (None, r"without the events and samples table\(s\)"),
])
def test_report_says_what_is_wrong_with_the_file(tmp_path: Path, content: bytes | None,
                                                 words: str) -> None:
    path = tmp_path / "x.db"
    if content is None:
        sqlite3.connect(path).execute("CREATE TABLE other (a)").connection.close()
    else:
        path.write_bytes(content)
    with pytest.raises(JournalReadError, match=words):
        load_recording(path)
    with pytest.raises(JournalReadError, match="no such journal file"):
        load_recording(tmp_path / "absent.db")


def test_a_second_holder_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with JournalLock.acquire(path) as first:
        assert lock_path(path).read_text().strip() == str(os.getpid())
        with pytest.raises(JournalLockedError) as err:
            JournalLock.acquire(path)
        assert err.value.holder == os.getpid() and str(os.getpid()) in str(err.value)
        assert first.held
    assert not lock_path(path).exists()
    JournalLock.acquire(path).release()  # free again


async def test_a_second_monitor_on_the_same_journal_refuses_naming_the_holder(
        tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c",
        "import sys, time\nfrom venueguard.io.journal_lock import JournalLock\n"
        f"lock = JournalLock.acquire({str(path)!r})\nprint('held', flush=True)\ntime.sleep(60)",
        stdout=asyncio.subprocess.PIPE)
    assert holder.stdout is not None
    try:
        assert (await asyncio.wait_for(holder.stdout.readline(), 20)).strip() == b"held"
        err = io.StringIO()
        monitor = Monitor(monitor_config(path), stdout=io.StringIO(), stderr=err,
                          sources=sources)  # type: ignore[arg-type]
        assert await monitor.run() == 2
        assert f"in use by process {holder.pid}" in err.getvalue()
        assert not path.exists()  # the refused monitor did not even create the journal
    finally:
        holder.kill()  # SIGKILL: the kernel drops its lock
        await holder.wait()
    JournalLock.acquire(path).release()  # the stale lock file does not block the next run
