"""``venueguard chaos --venue ccxt:...``: seeds through a guarded ccxt bot, both dialects.

System tests: each seed starts its own simulator (the BitMEX dialect, or Binance USD-M) and
trades through ccxt's class of that venue under ``guard()`` while its faults run, reading its
book through the guard's ``watch_order_book`` (invariant 4 on every book returned). By default
in virtual time over the loop's in-memory network (the same seed, the same digest and trace);
the ``run_chaos`` tests on 127.0.0.1 and the real clock (``--sockets``).
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest
from chaos_elsewhere import assert_same_elsewhere

from venueguard.app.chaos import exit_code, replay_command, run_chaos, run_chaos_virtual
from venueguard.app.chaos_ccxt import CCXT_KINDS, BookCheck
from venueguard.app.chaos_seed import ChaosConfig
from venueguard.cli import main

pytestmark = [pytest.mark.system]



@pytest.mark.parametrize("venue", ["ccxt:bitmex", "ccxt:binanceusdm"])
async def test_lost_answers_through_a_guarded_ccxt_bot_hold_every_invariant(venue: str) -> None:
    config = replace(ChaosConfig(venue=venue), kinds=("timeout_after_accept",
                                                      "bad_gateway_after_accept"))
    out = io.StringIO()
    report = await run_chaos([1, 2], config, out=out, concurrency=2)
    text = out.getvalue()
    assert exit_code(report) == 0, text
    assert f"({venue})" in text and "all invariants held" in text
    assert sum(r.orders for r in report.results) > 0
    hits = sum(r.fault_hits.get("timeout_after_accept", 0)
               + r.fault_hits.get("bad_gateway_after_accept", 0) for r in report.results)
    assert hits > 0, [r.fault_hits for r in report.results]   # answers were really lost


@pytest.mark.parametrize("venue", ["ccxt:bitmex", "ccxt:binanceusdm"])
def test_websocket_faults_through_watch_order_book_hold_invariant_4(venue: str) -> None:
    config = replace(ChaosConfig(venue=venue), kinds=("ws_stale_timestamps", "ws_half_open",
                                                      "ws_drop", "ws_gap"))
    out = io.StringIO()
    report = run_chaos_virtual([1, 2, 3], config, out=out)
    text = out.getvalue()
    assert exit_code(report) == 0, text
    checked = sum(r.fresh_samples for r in report.results)
    assert checked > 0 and f"{checked} fresh books checked" in text
    assert sum(r.orders for r in report.results) > 0       # the trader traded on those books
    assert all(any(k.startswith("ws_") for k in r.faults) for r in report.results)
    # the streams were really hit: dropped or half-open connections were replaced
    assert sum(r.reconnects for r in report.results) > 0, [r.faults for r in report.results]


def test_the_book_check_flags_a_stale_or_unstamped_book_and_passes_a_fresh_one() -> None:
    books = BookCheck(bound_ms=1_650, clock_ms=lambda: 1_000_000)
    books.served({"bids": [[1.0, 1.0]], "asks": [[2.0, 1.0]], "timestamp": 1_000_000 - 1_650})
    assert books.violations == [] and books.checked == 1       # at the bound: fresh
    books.served({"bids": [], "asks": [], "timestamp": 1_000_000 - 4_000})
    books.served({"bids": [], "asks": [], "timestamp": None})
    assert [v.invariant for v in books.violations] == [4, 4]
    assert "4000 ms old (bound 1650 ms)" in books.violations[0].message
    assert "without the venue's timestamp" in books.violations[1].message
    assert books.checked == 3


def test_the_ccxt_venues_draw_the_websocket_faults_but_not_dns() -> None:
    assert "dns_failure" not in CCXT_KINDS
    assert {"ws_stall", "ws_stale_timestamps", "ws_half_open", "ws_gap"} <= set(CCXT_KINDS)
    assert replay_command(7, None, "ccxt:bitmex") == (
        "venueguard chaos --first-seed 7 --seeds 1 --venue ccxt:bitmex")
    assert replay_command(7, None, "ccxt:binanceusdm", sockets=True) == (
        "venueguard chaos --first-seed 7 --seeds 1 --venue ccxt:binanceusdm --sockets")


def test_an_unknown_venue_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["chaos", "--seeds", "1", "--venue", "ccxt:nosuch"])
    assert raised.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_the_native_client_bug_is_refused_for_a_ccxt_venue(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VENUEGUARD_CHAOS_CLIENT_BUG", "resend-new-clordid")
    assert main(["chaos", "--seeds", "1", "--venue", "ccxt:bitmex"]) == 2
    assert "does not apply to --venue ccxt:bitmex" in capsys.readouterr().err


@pytest.mark.parametrize("venue", ["ccxt:bitmex", "ccxt:binanceusdm"])
@pytest.mark.parametrize("guard_bound_ms", [1_500, 30_000])
async def test_stale_timestamps_are_never_served_by_the_guard_and_flagged_when_they_are(
        venue: str, guard_bound_ms: int) -> None:
    """Under ``ws_stale_timestamps`` (4 s late, on every connection), a guard bound to 1.5 s
    never hands out a book (the bounded wait runs out); a guard loosened to 30 s hands out
    stale ones, and the check flags invariant 4."""
    import time
    from contextlib import AbstractAsyncContextManager
    from typing import Any

    from venueguard.app.chaos_ccxt import raw_exchange, read_book
    from venueguard.ccxt import GuardConfig, StreamConfig, guard
    from venueguard.sim.binance.testing import running_binance_sim
    from venueguard.sim.testing import running_sim

    sim_cm: AbstractAsyncContextManager[Any] = (
        running_sim() if venue == "ccxt:bitmex" else running_binance_sim())
    async with sim_cm as sim:
        exchange = guard(raw_exchange(venue, sim.base_url), GuardConfig(
            streams=StreamConfig(max_age_s={"orderbook": 0.6}, max_ts_age_ms=guard_bound_ms)),
            journal=None)
        symbol = "BTC/USD:BTC" if venue == "ccxt:bitmex" else "BTC/USDT:USDT"
        try:
            warm = BookCheck(bound_ms=1_650)
            for _ in range(60):                       # the first book (set-up, not under test)
                if await read_book(exchange, symbol, warm) is not None:
                    break
            assert warm.checked > 0 and warm.violations == []
            # every connection, the reconnected ones too: the stream stays stale
            await sim.add_fault("ws_stale_timestamps", delay_s=4.0, duration_s=30.0,
                                new_connections=True)
            books = BookCheck(bound_ms=1_650)
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline and not books.violations:
                await read_book(exchange, symbol, books)
        finally:
            await exchange.close()
    if guard_bound_ms < books.bound_ms:
        assert books.violations == [] and books.withheld > 0, books
    else:
        assert books.violations and books.violations[0].invariant == 4, books
        assert "ms old (bound 1650 ms)" in books.violations[0].message


# ---------------------------------------------------------------------------- virtual time
@pytest.mark.parametrize("venue", ["ccxt:bitmex", "ccxt:binanceusdm"])
def test_ccxt_seeds_in_virtual_time_give_the_same_digest_and_trace_twice(venue: str) -> None:
    seeds = [1, 2, 3, 4]
    first_trace, second_trace = io.StringIO(), io.StringIO()
    first = run_chaos_virtual(seeds, ChaosConfig(venue=venue), out=io.StringIO(),
                              trace=first_trace)
    second = run_chaos_virtual(list(reversed(seeds)), ChaosConfig(venue=venue),
                               out=io.StringIO(), trace=second_trace)
    assert exit_code(first) == 0 and exit_code(second) == 0
    digests = {r.seed: r.digest for r in first.results}
    assert digests == {r.seed: r.digest for r in second.results}
    assert len(set(digests.values())) == len(seeds)
    text = first_trace.getvalue()
    assert f'"venue":"{venue}"' in text and '"ts":"2026-01-01T00:00:0' in text
    assert "$SCRATCH" in text                # the journal's random directory is not history
    assert sorted(text.splitlines()) == sorted(second_trace.getvalue().splitlines())
    assert sum(r.orders for r in first.results) > 0


@pytest.mark.parametrize("venue", ["ccxt:bitmex", "ccxt:binanceusdm"])
def test_invariant_5_counts_every_request_the_guard_sent(venue: str) -> None:
    """Without a REST fault nothing is retried: the venue counted exactly one request per
    logical call of the guard, its set-up ones (markets, the journal's reconciliation, on
    Binance the ``exchangeInfo`` the market-data session also asks for) included, and the
    market-data session's own requests left out."""
    report = run_chaos_virtual([1, 2], replace(ChaosConfig(venue=venue), kinds=("late_fill",)),
                               out=io.StringIO())
    assert exit_code(report) == 0
    for result in report.results:
        assert result.requests == result.logical > 0, result


def test_the_cli_runs_ccxt_seeds_in_virtual_time_and_replays_the_digest(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chaos", "--seeds", "2", "--first-seed", "5", "--venue", "ccxt:binanceusdm",
                 "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "(ccxt:binanceusdm, virtual time)" in out and "all invariants held" in out
    digests = [line.split()[-1] for line in out.splitlines() if line.strip().startswith("2/2")]
    assert main(["chaos", "--seeds", "1", "--first-seed", "6", "--venue", "ccxt:binanceusdm",
                 "--workers", "1"]) == 0
    replayed = capsys.readouterr().out
    assert [line.split()[-1] for line in replayed.splitlines()
            if line.strip().startswith("1/1")] == digests


def test_ccxt_seeds_in_other_processes_give_the_same_digests(tmp_path: Path) -> None:
    """Two worker processes and another hash seed: the digests and trace bytes of this
    process's run."""
    assert_same_elsewhere(tmp_path, [3, 4], ChaosConfig(venue="ccxt:bitmex"),
                          ["--venue", "ccxt:bitmex"], "4242")
