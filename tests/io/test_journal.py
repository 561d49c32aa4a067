"""The SQLite journal: WAL, migrations, durability across SIGKILL, history, rebuild, no secrets."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from bitmex_rows import adopt, on_execution_row, on_order_row
from venueguard.core.orders import ClOrdIdGenerator, OrderState, OrderTable
from venueguard.core.reports import FillReport, OrderReport, OrderStatus
from venueguard.io.journal import (
    SCHEMA_VERSION,
    Journal,
    JournalError,
    SchemaVersionError,
    SecretInPayloadError,
)

S = OrderState


def new_table(seed: int = 3) -> OrderTable:
    return OrderTable(ClOrdIdGenerator(random.Random(seed)))


def test_opens_in_wal_mode_at_current_version(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.db", wall_clock=lambda: 1234.5) as journal:
        assert journal.journal_mode.lower() == "wal"
        assert journal.schema_version == SCHEMA_VERSION
        assert journal.created_ms == 1_234_500
    with Journal.open(tmp_path / "j.db", wall_clock=lambda: 9999.0) as journal:
        assert journal.created_ms == 1_234_500      # reopening does not move it


def test_intent_then_transitions_history_in_order(tmp_path: Path) -> None:
    table = new_table()
    with Journal.open(tmp_path / "j.db") as journal:
        order = table.new_order("XBTUSD", "Buy", 10, 100.0, now=1.0, wall_ms=1_000)
        journal.record_intent(order, {"ordType": "Limit"})
        table.on_submitted(order.cl_ord_id, 1.1)
        table.on_ambiguous(order.cl_ord_id, "timeout", 11.0)
        on_order_row(table, {"clOrdID": order.cl_ord_id, "orderID": "o1", "ordStatus": "New"}, 12)
        on_execution_row(table, {"execType": "Trade", "clOrdID": order.cl_ord_id, "execID": "e1",
                                "lastQty": 4, "lastPx": 100.5, "leavesQty": 6}, 13.0)
        assert journal.sync(table) == 4
        history = journal.history(order.cl_ord_id)
        assert [h.kind for h in history] == ["intent", "submitted", "ambiguous", "venue_new",
                                             "partial_fill"]
        assert [h.to_state for h in history] == ["PENDING_NEW", "PENDING_NEW", "UNKNOWN", "NEW",
                                                 "PARTIALLY_FILLED"]
        assert history[0].payload == {"ordType": "Limit"}
        assert history[-1].payload["exec_id"] == "e1"
        assert [o.cl_ord_id for o in journal.unfinished_orders()] == [order.cl_ord_id]


def test_duplicate_intent_is_refused(tmp_path: Path) -> None:
    table = new_table()
    with Journal.open(tmp_path / "j.db") as journal:
        order = table.new_order("XBTUSD", "Buy", 1, 1.0, now=0.0, wall_ms=0)
        journal.record_intent(order)
        with pytest.raises(JournalError, match="already journaled"):
            journal.record_intent(order)


def test_load_table_rebuilds_states_executions_and_position(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    table = new_table()
    with Journal.open(path) as journal:
        a = table.new_order("XBTUSD", "Buy", 10, 100.0, now=0.0, wall_ms=1)
        b = table.new_order("XBTUSD", "Sell", 5, 101.0, now=0.0, wall_ms=2)
        for order in (a, b):
            journal.record_intent(order)
            table.on_submitted(order.cl_ord_id, 0.1)
            on_order_row(table, {"clOrdID": order.cl_ord_id, "orderID": "o" + order.cl_ord_id,
                                "ordStatus": "New"}, 0.2)
        on_execution_row(table, {"execType": "Trade", "clOrdID": a.cl_ord_id, "execID": "x1",
                                "lastQty": 10, "lastPx": 100.0, "leavesQty": 0}, 1.0)
        on_execution_row(table, {"execType": "Trade", "clOrdID": b.cl_ord_id, "execID": "x2",
                                "lastQty": 2, "lastPx": 101.0, "leavesQty": 3}, 1.0)
        journal.set_meta("position_baseline:XBTUSD", "7")
        journal.sync(table)
        assert [o.cl_ord_id for o in journal.unfinished_orders()] == [b.cl_ord_id]
    with Journal.open(path) as journal:
        rebuilt = journal.load_table(ClOrdIdGenerator(random.Random(9)), now=500.0)
    assert rebuilt.orders[a.cl_ord_id].state is S.FILLED
    assert rebuilt.orders[b.cl_ord_id].state is S.PARTIALLY_FILLED
    assert rebuilt.orders[b.cl_ord_id].state_since == 500.0
    assert rebuilt.position("XBTUSD") == 7 + 10 - 2
    assert rebuilt.find(None, "o" + b.cl_ord_id) is rebuilt.orders[b.cl_ord_id]
    replay = {"execType": "Trade", "clOrdID": b.cl_ord_id, "execID": "x2", "lastQty": 2,
              "lastPx": 101.0, "leavesQty": 3}
    assert on_execution_row(rebuilt, replay, 501.0) is None     # exec ids survived the restart


V1_SCHEMA = [
    """CREATE TABLE orders (cl_ord_id TEXT PRIMARY KEY, symbol TEXT NOT NULL, side TEXT NOT NULL,
       qty INTEGER NOT NULL, price REAL, params TEXT NOT NULL DEFAULT '{}',
       created_ms INTEGER NOT NULL, state TEXT NOT NULL, order_id TEXT,
       cum_qty INTEGER NOT NULL DEFAULT 0, avg_px REAL, updated_ms INTEGER NOT NULL)""",
    """CREATE TABLE order_events (seq INTEGER PRIMARY KEY AUTOINCREMENT,
       cl_ord_id TEXT NOT NULL, ts_ms INTEGER NOT NULL, mono_s REAL NOT NULL, kind TEXT NOT NULL,
       from_state TEXT, to_state TEXT NOT NULL, anomaly TEXT,
       payload TEXT NOT NULL DEFAULT '{}')""",
    """CREATE TABLE executions (exec_id TEXT PRIMARY KEY, cl_ord_id TEXT NOT NULL,
       symbol TEXT NOT NULL, side TEXT NOT NULL, qty INTEGER NOT NULL, px REAL NOT NULL,
       ts_ms INTEGER NOT NULL)""",
    "CREATE TABLE schema_version (version INTEGER NOT NULL, applied_ms INTEGER NOT NULL)",
    "INSERT INTO schema_version VALUES (1, 0)",
    """INSERT INTO orders (cl_ord_id, symbol, side, qty, price, created_ms, state, order_id,
       cum_qty, updated_ms) VALUES ('old-1', 'XBTUSD', 'Sell', 3, 99.0, 5, 'NEW', 'o-old', 0, 5)""",
]


def test_migrates_an_older_schema_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for statement in V1_SCHEMA:
        conn.execute(statement)
    conn.commit()
    conn.close()
    with Journal.open(path) as journal:
        assert journal.schema_version == SCHEMA_VERSION
        (old,) = journal.unfinished_orders()
        assert (old.cl_ord_id, old.state, old.order_id, old.adopted) == ("old-1", S.NEW,
                                                                          "o-old", False)
        journal.record_sample(10, "api", "rest_503", 2.0)      # a table version 2 added
        assert journal.read_samples(0, 100)[0].value == 2.0


def test_newer_schema_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    Journal.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_version VALUES (?, 0)", (SCHEMA_VERSION + 7,))
    conn.commit()
    conn.close()
    with pytest.raises(SchemaVersionError, match="newer"):
        Journal.open(path)


def test_garbage_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(JournalError):
        Journal.open(path)


CHILD = textwrap.dedent("""
    import random, sys, time
    from venueguard.core.orders import ClOrdIdGenerator, OrderTable
    from venueguard.io.journal import Journal
    journal = Journal.open(sys.argv[1])
    table = OrderTable(ClOrdIdGenerator(random.Random(5)))
    order = table.new_order("XBTUSD", "Buy", 10, 100.0, now=0.0, wall_ms=1)
    journal.record_intent(order)
    table.on_submitted(order.cl_ord_id, 0.1)
    journal.sync(table)
    print(order.cl_ord_id, flush=True)
    time.sleep(60)
""")


def test_intent_survives_sigkill_right_after_it_is_recorded(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout is not None
        cl_ord_id = child.stdout.readline().strip()
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
    with Journal.open(path) as journal:
        (order,) = journal.unfinished_orders()
        assert order.cl_ord_id == cl_ord_id and order.state is S.PENDING_NEW
        assert [h.kind for h in journal.history(cl_ord_id)] == ["intent", "submitted"]


@pytest.mark.parametrize("key", ["api_secret", "signature", "api-signature", "API_SECRET"])
def test_redaction_guard_rejects_secret_keys_and_writes_nothing(tmp_path: Path, key: str) -> None:
    table = new_table()
    with Journal.open(tmp_path / "j.db") as journal:
        order = table.new_order("XBTUSD", "Buy", 1, 1.0, now=0.0, wall_ms=0)
        with pytest.raises(SecretInPayloadError) as info:
            journal.record_intent(order, {"headers": {key: "hunter2"}})
        assert "hunter2" not in str(info.value)
        assert journal.unfinished_orders() == []
        with pytest.raises(SecretInPayloadError):
            journal.record_event(1, "rest.error", {"details": [{key: "x"}]})
        with pytest.raises(SecretInPayloadError):
            journal.record_sample(1, "api", "latency", 1.0, {key: "x"})
        assert journal.read_events(0, 10) == [] and journal.read_samples(0, 10) == []


def test_samples_and_events_by_time_range(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.db") as journal:
        journal.record_samples([(t, "market", "spread", t / 10, {"symbol": "XBTUSD"})
                                for t in range(0, 100, 10)])
        journal.record_sample(55, "api", "rest_503", 1.0)
        journal.record_event(20, "regime.changed", {"from": "NORMAL", "to": "SAFE"})
        journal.record_event(70, "alert", {"tier": "critical", "message": "x"})
        spread = journal.read_samples(20, 50, kind="market", name="spread")
        assert [s.ts_ms for s in spread] == [20, 30, 40]
        assert spread[0].labels == {"symbol": "XBTUSD"}
        assert [s.name for s in journal.read_samples(50, 60)] == ["spread", "rest_503"]
        assert journal.read_events(0, 50) == [{"ts_ms": 20, "event": "regime.changed",
                                               "from": "NORMAL", "to": "SAFE"}]
        assert [e["event"] for e in journal.read_events(0, 100, event="alert")] == ["alert"]


def test_oversized_payload_is_refused(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.db") as journal, pytest.raises(JournalError, match="exceeds"):
        journal.record_event(1, "alert", {"message": "x" * 100_000})


def test_record_execution_is_idempotent_by_exec_id(tmp_path: Path) -> None:
    with Journal.open(tmp_path / "j.db") as journal:
        assert journal.record_execution("e1", "cl", "XBTUSD", "Buy", 3, 100.0, 5)
        assert not journal.record_execution("e1", "cl", "XBTUSD", "Buy", 3, 100.0, 5)


def test_adopted_order_gets_its_row_from_its_first_transition(tmp_path: Path) -> None:
    table = new_table()
    with Journal.open(tmp_path / "j.db") as journal:
        adopt(table, {"orderID": "v9", "symbol": "XBTUSD", "side": "Sell", "orderQty": 2,
                      "ordStatus": "New"}, 1.0, 10)
        journal.sync(table)
        (order,) = journal.unfinished_orders()
        assert order.adopted and order.cl_ord_id == "venue:v9" and order.order_id == "v9"


def test_an_execution_credited_once_stays_once_across_restarts(tmp_path: Path) -> None:
    # A fill without a client id, for an order of ours still in doubt (its venue id unknown),
    # was adopted as venue:v56; then the order's own report named v56 and the same fill came
    # again under its client id. Crediting it twice doubled the position, and since the journal
    # keeps each exec id once, every restart credited it to our order again.
    path = tmp_path / "j.db"
    table = new_table()
    fill = FillReport("t7:v56", None, "v56", 3, 100.0, "XBTUSD", "Buy", leaves_qty=None)
    with Journal.open(path) as journal:
        ours = table.new_order("XBTUSD", "Buy", 3, 100.0, now=0.0, wall_ms=1)
        journal.record_intent(ours)
        table.on_submitted(ours.cl_ord_id, 0.1)
        table.on_ambiguous(ours.cl_ord_id, "timeout", 0.2)
        table.adopt(fill, 0.3, 3)
        assert table.on_fill_report(fill, 0.3) is not None
        table.on_order_report(OrderReport(ours.cl_ord_id, "v56", OrderStatus.FILLED,
                                          symbol="XBTUSD", side="Buy", qty=3, filled_qty=3), 0.4)
        assert table.on_fill_report(replace(fill, client_id=ours.cl_ord_id), 0.5) is None
        assert table.position("XBTUSD") == 3
        journal.sync(table)
    for restart in range(3):
        with Journal.open(path) as journal:
            rebuilt = journal.load_table(ClOrdIdGenerator(random.Random(restart)), now=1.0)
            assert rebuilt.on_fill_report(replace(fill, client_id=ours.cl_ord_id), 1.0) is None
            assert rebuilt.on_fill_report(fill, 1.0) is None
            journal.sync(rebuilt)
        assert rebuilt.position("XBTUSD") == 3
        assert sum(o.cum_qty for o in rebuilt.orders.values()) == 3


def test_unsettled_symbols_include_a_filled_order_whose_execution_is_not_journaled(
        tmp_path: Path) -> None:
    # Killed after an order's row showed it filled, before its execution was fetched: the
    # restart must still fetch that symbol's executions, though no order is unfinished.
    table = new_table()
    with Journal.open(tmp_path / "j.db") as journal:
        done = table.new_order("XBTUSD", "Buy", 100, 100.0, now=0.0, wall_ms=1)
        settled = table.new_order("ETHUSD", "Sell", 5, 10.0, now=0.0, wall_ms=2)
        resting = table.new_order("SOLUSD", "Buy", 1, 1.0, now=0.0, wall_ms=3)
        for order in (done, settled, resting):
            journal.record_intent(order)
            table.on_submitted(order.cl_ord_id, 0.1)
            table.on_acked(order.cl_ord_id, "o-" + order.cl_ord_id, 0.2)
        table.on_order_report(OrderReport(done.cl_ord_id, None, OrderStatus.FILLED,
                                          filled_qty=100), 0.3)
        table.on_fill_report(FillReport("x1", settled.cl_ord_id, None, 5, 10.0, "ETHUSD",
                                        "Sell", leaves_qty=0), 0.3)
        journal.sync(table)
        assert table.orders[done.cl_ord_id].state is S.FILLED
        assert table.orders[settled.cl_ord_id].state is S.FILLED
        assert journal.unsettled_symbols() == ["SOLUSD", "XBTUSD"]
