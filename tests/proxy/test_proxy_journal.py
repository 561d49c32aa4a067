"""The guarding proxy journals what ``venueguard report`` reads: the simulator plays the venue,
orders go through the proxy while the venue sheds load (overload_503), and the report on the
proxy's journal shows those 503s, the requests and their latency. No secret reaches the
journal. One process per journal."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sqlite3
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from venueguard import cli
from venueguard.app import report
from venueguard.core.playbook import Series, total_increase
from venueguard.io.journal_lock import JournalLock
from venueguard.proxy.cli import DEFAULT_JOURNAL, config_from_args
from venueguard.proxy.dialects import DIALECTS
from venueguard.proxy.server import ProxyConfig, ProxyServer
from venueguard.proxy.testing import Proxied, ProxyHandle
from venueguard.sim.testing import SimHandle

pytestmark = pytest.mark.system

_SIGNATURE_IN_QUERY = "5e1f0c4b9d7a3e2f8c6b1a0d9e8f7c6b5a4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b"


async def _order(sim: SimHandle, base_url: str, cid: str) -> int:
    body = orjson.dumps({"symbol": "XBTUSD", "side": "Buy", "orderQty": 100, "price": 1000.0,
                         "clOrdID": cid})
    headers = {"content-type": "application/json",
               **sim.signed_headers("POST", "/api/v1/order", body)}
    async with sim.session.post(base_url + "/api/v1/order", data=body,
                                headers=headers) as resp:
        await resp.read()
        return resp.status


async def _signed_read(sim: SimHandle, proxy: ProxyHandle) -> int:
    """A read whose query carries a signature (as Binance signs): it must stay out."""
    path_qs = f"/api/v1/position?signature={_SIGNATURE_IN_QUERY}"
    async with sim.session.get(proxy.base_url + path_qs,
                               headers=sim.signed_headers("GET", path_qs)) as resp:
        await resp.read()
        return resp.status


def _journal_text(path: Path) -> str:
    """Every value of every table, and the raw bytes of the files beside it."""
    db = sqlite3.connect(path)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        rows = [repr(row) for table in tables for row in db.execute(f"SELECT * FROM {table}")]
    finally:
        db.close()
    raw = b"".join(p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name))
    return "\n".join(rows) + raw.decode("latin-1")


async def test_report_on_the_proxys_journal_shows_the_503s_that_went_through_it(
        proxied: Proxied, tmp_path: Path) -> None:
    journal = tmp_path / "proxy.db"
    sim, proxy = await proxied(guard=True, journal=journal)
    ws = await sim.session.ws_connect(proxy.ws_base + "/realtime?subscribe=quote:XBTUSD")
    quoted: list[dict[str, float]] = []
    while not quoted:  # the market's top of book, through the proxy
        msg = orjson.loads((await ws.receive(timeout=10)).data)
        if msg.get("table") == "quote":
            quoted = [row for row in msg["data"] if row["symbol"] == "XBTUSD"]
    await ws.close()
    await sim.add_fault("overload_503", probability=1.0, duration_s=60)  # the venue sheds
    shed = [await _order(sim, proxy.base_url, f"j503-{i}") for i in range(6)]
    await sim.clear_faults()
    accepted = [await _order(sim, proxy.base_url, f"jok-{i}") for i in range(4)]
    assert shed == [503] * 6 and accepted == [200] * 4
    assert await _signed_read(sim, proxy) == 200
    assert (tmp_path / "proxy.db.lock").exists()
    await proxy.server.stop()  # the last flush; the lock goes
    assert not (tmp_path / "proxy.db.lock").exists()

    rec = report.load_recording(journal)
    assert total_increase(rec.series(Series.HTTP_503_TOTAL)) == 6
    assert total_increase(rec.series(Series.REQUESTS_TOTAL)) == 11
    assert len(rec.series(Series.LATENCY_MS)) == 11
    errors = rec.named("rest.error")
    assert len(errors) == 6 and {e.fields["kind"] for e in errors} == {"overloaded"}
    assert {e.fields["endpoint"] for e in errors} == {"POST /api/v1/order"}
    spread = rec.series(Series.SPREAD)
    assert spread and all(v > 0 for _, v in spread)
    assert proxy.server.guard.quoted_symbol == "XBTUSD"
    changes = rec.named("regime.changed")  # six 503s in a minute: the monitor's CAUTIOUS
    assert [(e.fields["from"], e.fields["to"]) for e in changes] == [("NORMAL", "CAUTIOUS")]
    assert rec.series(Series.REGIME)[-1][1] == 1.0

    out = tmp_path / "report"
    assert cli.main(["report", str(journal), "--out", str(out)]) == 0
    page = (out / "report.html").read_text()
    summary = dict(re.findall(r"<tr><th>([^<]+)</th><td>([^<]*)</td></tr>", page))
    assert summary["HTTP 503"] == "6" and summary["REST requests"] == "11"
    assert summary["failed requests"] == "6"
    assert "no spread recorded" not in page
    assert re.fullmatch(r"\d+ ms / \d+ ms / \d+ ms", summary["REST latency p50 / p95 / p99"])
    for name in ("timeline.png", "latency.png", "spread_vs_503.png"):
        assert (out / name).stat().st_size > 10_000

    text = _journal_text(journal)
    for secret in (sim.api_key, sim.api_secret, _SIGNATURE_IN_QUERY):
        assert secret not in text
    signed = sim.signed_headers("POST", "/api/v1/order", b"{}")
    assert signed["api-signature"] not in text


async def test_one_proxy_per_journal(proxied: Proxied, tmp_path: Path) -> None:
    journal = tmp_path / "shared.db"
    sim, first = await proxied(guard=True, journal=journal)
    second = ProxyServer(ProxyConfig(upstream=sim.base_url, guard=True, journal=journal))
    with pytest.raises(ValueError, match="in use by process"):
        await second.start()
    await first.server.stop()
    third = ProxyServer(ProxyConfig(upstream=sim.base_url, guard=True, journal=journal))
    await third.start()
    await third.stop()


def _args(*argv: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(["proxy", "--upstream", "http://127.0.0.1:9", *argv])


@pytest.mark.parametrize(("option", "url", "message"), [
    ("--upstream", "http://127.0.0.1:\u00b2", "--upstream: port must be a whole number from 1 "
                                               "to 65535, not '\u00b2'"),
    ("--upstream", "http://127.0.0.1:\u0668\u0668", "--upstream: port must be a whole number"),
    ("--upstream", "http://127.0.0.1:0", "--upstream: port must be a whole number from 1 to "
                                         "65535, not '0'"),
    ("--ws-upstream", "ws://127.0.0.1:99999", "--ws-upstream: port must be a whole number from "
                                              "1 to 65535, not '99999'"),
    ("--upstream", "http://[::1", "--upstream must be http or https://HOST"),
])
def test_upstream_ports_are_read_as_every_number(option: str, url: str, message: str) -> None:
    """urllib's own words ('Port could not be cast to integer value') named neither the option
    nor what a port must be, and it took port 0."""
    argv = ["proxy", "--upstream", "http://127.0.0.1:9", option, url]
    with pytest.raises(ValueError, match=re.escape(message)):
        config_from_args(cli.build_parser().parse_args(argv))


def test_journal_options() -> None:
    assert config_from_args(_args("--guard")).journal == DEFAULT_JOURNAL
    assert config_from_args(_args("--guard", "--journal", "x.db")).journal == "x.db"
    assert config_from_args(_args("--guard", "--no-journal")).journal is None
    assert config_from_args(_args()).journal is None
    with pytest.raises(ValueError, match="add --guard"):
        config_from_args(_args("--journal", "x.db"))
    with pytest.raises(ValueError, match="contradict"):
        config_from_args(_args("--guard", "--journal", "x.db", "--no-journal"))


def _env() -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[2] / "src")
    return {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}


async def test_the_command_journals_until_it_is_stopped(proxied: Proxied,
                                                        tmp_path: Path) -> None:
    """``venueguard proxy --guard --journal PATH``, stopped by SIGTERM, leaves a journal the
    report reads, with every request up to the end."""
    sim, _ = await proxied()
    journal = tmp_path / "cmd.db"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "venueguard", "proxy", "--upstream", sim.base_url, "--guard",
        "--journal", str(journal), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=_env(), cwd=tmp_path)
    try:
        assert proc.stdout is not None
        url = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().split()[-1]
        second = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert f"journal {journal}" in second
        await sim.add_fault("overload_503", probability=1.0, duration_s=60)
        assert [await _order(sim, url, f"c{i}") for i in range(3)] == [503] * 3
    finally:
        proc.terminate()
        await proc.communicate()
    assert proc.returncode == 0
    assert not (tmp_path / "cmd.db.lock").exists()
    rec = report.load_recording(journal)
    assert total_increase(rec.series(Series.HTTP_503_TOTAL)) == 3
    assert [e.fields["kind"] for e in rec.named("rest.error")] == ["overloaded"] * 3


def test_the_command_refuses_a_journal_in_use(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "held.db"
    with JournalLock.acquire(journal):
        code = cli.main(["proxy", "--upstream", "http://127.0.0.1:9", "--guard",
                         "--journal", str(journal)])
    assert code == 2
    err = capsys.readouterr().err
    assert f"journal {journal} is in use by process {os.getpid()}" in err


@pytest.mark.parametrize(("dialect", "text", "expected"), [
    ("bitmex", '{"table":"quote","action":"insert","data":[{"symbol":"XBTUSD","bidPrice":'
               '100.5,"askPrice":101.0},{"symbol":"XBTUSD","bidPrice":100.0,"askPrice":100.5}]}',
     [("XBTUSD", 100.0, 100.5)]),
    ("bitmex", '{"table":"quote","action":"insert","data":[{"symbol":"XBTUSD","bidPrice":null,'
               '"askPrice":101.0}]}', []),
    ("bitmex", '{"table":"trade","data":[{"symbol":"XBTUSD","price":1.0}]}', []),
    ("binance-usdm", '{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","s":"BTCUSDT",'
                     '"b":"65000.10","a":"65000.20"}}', [("BTCUSDT", 65000.10, 65000.20)]),
    ("binance-usdm", '{"e":"bookTicker","s":"BTCUSDT","b":"65000.3","a":"65000.2"}', []),
    ("binance-usdm", '{"e":"bookTicker","s":"BTCUSDT","b":"nan","a":"1"}', []),
    ("generic", '{"e":"bookTicker","s":"BTCUSDT","b":"1","a":"2"}', []),
])
def test_top_of_book_from_the_dialects_messages(dialect: str, text: str,
                                                expected: list[tuple[str, float, float]]
                                                ) -> None:
    d = DIALECTS[dialect]
    assert d.quotes(orjson.loads(text)) == expected
    if expected:
        assert d.quote_marker is not None and d.quote_marker in text


async def test_binance_book_ticker_through_the_proxy_gives_the_market_gauges(
        proxied: Proxied) -> None:
    sim, proxy = await proxied(dialect="binance-usdm", rate=200.0, guard=True)
    ws = await sim.session.ws_connect(proxy.ws_base + "/stream?streams=btcusdt@bookTicker")
    seen: dict[str, object] = {}
    while not seen:
        msg = orjson.loads((await ws.receive(timeout=10)).data)
        if isinstance(msg, dict) and msg.get("data", {}).get("e") == "bookTicker":
            seen = msg["data"]
    await ws.close()
    guard = proxy.server.guard
    assert guard.quoted_symbol == "BTCUSDT" and guard.metrics is not None
    snap: dict[str, Any] = dict(guard.metrics.snapshot())
    bid, ask = snap["best_bid"]["symbol=BTCUSDT"], snap["best_ask"]["symbol=BTCUSDT"]
    assert 0 < bid <= ask
    assert snap["spread"]["symbol=BTCUSDT"] == pytest.approx(ask - bid)
