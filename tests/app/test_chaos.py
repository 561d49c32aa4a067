"""``venueguard chaos``: plans, invariant checks, seeds in virtual time (the same digest every
time, here and in another process), a broken client caught and replayed, 200 seeds, and a
smoke run on real sockets.

The seed runs are system tests: each seed runs its own simulator and the whole client stack
(market data, REST, order runtime) under the seed's faults; in virtual time over the loop's
in-memory network, with ``--sockets`` on 127.0.0.1.
"""

from __future__ import annotations

import io
import itertools
import random
import re
import time
from pathlib import Path
from typing import Any

import pytest
from chaos_elsewhere import assert_same_elsewhere

from venueguard.app import chaos_checks as checks
from venueguard.app.chaos import CLIENT_BUG_ENV, exit_code, run_chaos, run_chaos_virtual
from venueguard.app.chaos_plan import DEFAULT_KINDS, PlanConfig, plan_for
from venueguard.app.chaos_seed import ChaosConfig
from venueguard.cli import main
from venueguard.core.budget import BudgetConfig, RetryBudget

ROW = re.compile(r"^\s*\d+/\d+\s+(\d+)\s+(\d+) (\S+)\s+(\d+)\s+(\d)/7\s+(ok|FAIL [\d,]+)\s+"
                 r"([\d.]+)  ([0-9a-f]{16})$")
REPLAY = re.compile(r"replay with: (\S+=\S+ )?(venueguard chaos .*)$", re.M)


# ---------------------------------------------------------------------------- plans
def test_plan_is_a_function_of_the_seed() -> None:
    assert plan_for(42) == plan_for(42)
    assert plan_for(42).digest() == plan_for(42).digest()
    assert len({plan_for(s).digest() for s in range(1, 30)}) == 29


def test_plan_faults_fit_the_window_and_use_contract_kinds() -> None:
    cfg = PlanConfig()
    for seed in range(1, 200):
        plan = plan_for(seed, cfg)
        assert 1 <= len(plan.faults) <= cfg.max_faults
        for fault in plan.faults:
            assert fault.kind in DEFAULT_KINDS
            assert fault.start_s >= 0 and fault.start_s + fault.duration_s <= cfg.window_s + 0.01
    seen = {f.kind for s in range(1, 200) for f in plan_for(s).faults}
    assert seen == set(DEFAULT_KINDS)          # 200 seeds cover every kind drawn
    assert {"invalid_key", "cloudflare_1010"}.isdisjoint(DEFAULT_KINDS)


def test_plan_kinds_filter_and_bad_kind() -> None:
    plan = plan_for(3, kinds=("ws_stall",))
    assert set(plan.kinds()) == {"ws_stall"}
    with pytest.raises(ValueError, match="unknown or no fault kinds"):
        PlanConfig(kinds=("no_such_fault",))


# ---------------------------------------------------------------------------- checks
def _order(cl: str, text: str, status: str = "New", oid: str | None = None) -> dict[str, Any]:
    return {"clOrdID": cl, "orderID": oid or f"id-{cl}", "symbol": "XBTUSD", "text": text,
            "ordStatus": status}


def test_invariant_1_catches_a_resend_under_a_new_clordid() -> None:
    truth = {"orders": [_order("a", "chaos-1-1"), _order("b", "chaos-1-1"),
                        _order("c", "chaos-1-2")]}
    found = checks.check_no_double(truth, "XBTUSD", "chaos-1-")
    assert [v.invariant for v in found] == [1]
    assert "chaos-1-1 placed 2 times" in found[0].message
    assert checks.check_no_double({"orders": [_order("a", "x"), _order("c", "y")]},
                                  "XBTUSD", "chaos-1-") == []
    dup = checks.check_no_double({"orders": [_order("a", "x"), _order("a", "y")]}, "XBTUSD", "q")
    assert "clOrdID a placed 2 times" in dup[0].message


def test_invariant_2_phantoms_unknown_and_unseen_orders() -> None:
    truth = {"orders": [_order("a", "t", "New"), _order("b", "t", "Canceled"),
                        _order("z", "t", "New")]}
    local = [checks.LocalOrder("a", "id-a", "NEW"), checks.LocalOrder("b", "id-b", "NEW"),
             checks.LocalOrder("u", None, "UNKNOWN")]
    messages = [v.message for v in checks.check_converged(truth, "XBTUSD", local)]
    assert any("z" in m and "unknown locally" in m for m in messages)
    assert any(m.startswith("b believed NEW") for m in messages)
    assert any("u still UNKNOWN" in m for m in messages)
    good = [checks.LocalOrder("a", "id-a", "NEW"), checks.LocalOrder("b", "id-b", "CANCELED"),
            checks.LocalOrder("z", "id-z", "PENDING_CANCEL")]
    assert checks.check_converged(truth, "XBTUSD", good) == []


def test_invariant_3_position() -> None:
    truth = {"positions": [{"symbol": "XBTUSD", "currentQty": -200}]}
    assert checks.check_position(truth, "XBTUSD", -200) == []
    assert checks.check_position(truth, "XBTUSD", 0)[0].invariant == 3


def test_invariant_5_bound_holds_for_a_real_budget_and_catches_amplification() -> None:
    budget = BudgetConfig(ratio=0.2, min_per_s=1.0, window_s=2.0)
    rb, rng = RetryBudget(budget), random.Random(4)
    now, logical, retries = 0.0, 0, 0
    while now < 30.0:                      # a storm: every request wants every retry it can get
        now += rng.uniform(0.0, 0.05)
        rb.on_request(now)
        logical += 1
        while rb.try_retry(now):
            retries += 1
    assert retries <= checks.retry_bound(logical, now, budget)
    truth = {"requests": {"POST /api/v1/order": logical + retries, "GET /_sim/truth": 999}}
    assert checks.check_budget(truth, logical=logical, sent=logical + retries, duration_s=now,
                               budget=budget, max_attempts=4) == []
    storm = {"requests": {"POST /api/v1/order": logical * 3}}
    found = checks.check_budget(storm, logical=logical, sent=logical * 3, duration_s=now,
                                budget=budget, max_attempts=4)
    assert found and {v.invariant for v in found} == {5}


def test_invariant_7_replay_detects_a_journal_that_disagrees() -> None:
    spec = {"cl_ord_id": "c1", "symbol": "XBTUSD", "side": "Buy", "qty": 100, "price": 1.0,
            "adopted": False}
    history = [(None, "PENDING_NEW", {}), ("PENDING_NEW", "PENDING_NEW", {"type": "Submitted"}),
               ("PENDING_NEW", "NEW", {"type": "Acked", "order_id": "o1"}),
               ("NEW", "CANCELED", {"type": "Canceled", "reason": "x"})]
    assert checks.replay_transitions(spec, history) == []
    forged = [*history[:3], ("NEW", "FILLED", {"type": "Canceled", "reason": "x"})]
    assert checks.replay_transitions(spec, forged)[0].invariant == 7


# ---------------------------------------------------------------------------- real seeds
def _rows(out: str) -> list[re.Match[str]]:
    return [m for line in out.splitlines() if (m := ROW.match(line))]


def test_a_few_seeds_in_virtual_time_print_the_table_and_exit_zero(
        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["chaos", "--seeds", "3", "--first-seed", "1", "--workers", "1"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "virtual time" in out
    rows = _rows(out)
    assert [int(m.group(1)) for m in rows] == [1, 2, 3]        # in seed order
    for m in rows:
        assert m.group(6) == "ok" and m.group(5) == "7"
        assert m.group(3).split(",")[0] in DEFAULT_KINDS
    assert sum(int(m.group(4)) for m in rows) > 0      # orders were placed under faults
    assert len({m.group(8) for m in rows}) == 3
    assert "seed" in out and "verdict" in out and "all invariants held" in out


def test_every_seed_run_twice_gives_the_same_digest_and_trace() -> None:
    seeds = range(1, 9)
    first_trace, second_trace = io.StringIO(), io.StringIO()
    first = run_chaos_virtual(seeds, out=io.StringIO(), trace=first_trace)
    second = run_chaos_virtual(seeds, out=io.StringIO(), trace=second_trace)
    assert first.ok and second.ok
    digests = [r.digest for r in first.results]
    assert digests == [r.digest for r in second.results]
    assert len(set(digests)) == len(digests)
    assert first_trace.getvalue() == second_trace.getvalue()
    text = first_trace.getvalue()
    assert text.count('"event":"order.intent"') == sum(r.orders for r in first.results) > 0
    assert '"ts":"2026-01-01T00:00:0' in text      # stamped by the virtual wall clock


def test_the_same_seeds_in_other_processes_give_the_same_digests(tmp_path: Path) -> None:
    """Two worker processes, another hash seed: the digests and the trace bytes are those of
    this process's run."""
    assert_same_elsewhere(tmp_path, range(5, 11), ChaosConfig(), [], "12345")


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:  # the argument parser states the range
        main(["chaos", "--seeds", "0"])
    assert refused.value.code == 2
    assert "--seeds: must be a whole number from 1 to 100000, not '0'" in capsys.readouterr().err
    assert main(["chaos", "--seeds", "1", "--scenario", "/no/such/scenario.toml"]) == 2
    assert "scenario" in capsys.readouterr().err
    assert main(["chaos", "--seeds", "1", "--kinds", "ws_stall,no_such_fault"]) == 2
    assert "unknown or no fault kinds" in capsys.readouterr().err
    assert main(["chaos", "--seeds", "1", "--trace", "/no/such/dir/trace.jsonl"]) == 2
    assert "--trace" in capsys.readouterr().err


def test_an_unknown_client_bug_is_refused(capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CLIENT_BUG_ENV, "no-such-bug")
    assert main(["chaos", "--seeds", "1"]) == 2
    assert "resend-new-clordid" in capsys.readouterr().err


#: Faults that cover most of the trading window.
LONG_TIMEOUTS = PlanConfig(min_duration_s=1.8, max_duration_s=2.2,
                           kinds=("timeout_after_accept",))


def _timeout_heavy_seed() -> int:
    """A seed whose plan times out nearly every order write for most of the window."""
    for seed in range(1, 500):
        faults = plan_for(seed, LONG_TIMEOUTS).faults
        if all(dict(f.params)["probability"] >= 0.8 for f in faults):
            return seed
    raise AssertionError("no such seed")


def test_a_client_that_resends_under_a_new_clordid_is_caught_by_invariant_1() -> None:
    seed = _timeout_heavy_seed()
    out = io.StringIO()
    config = ChaosConfig(plan=LONG_TIMEOUTS, client_bug="resend-new-clordid")
    report = run_chaos_virtual([seed], config, out=out)
    text = out.getvalue()
    assert exit_code(report) == 1
    failed = report.failed[0]
    assert failed.seed == seed and 1 in failed.failed_invariants()
    assert (f"replay with: {CLIENT_BUG_ENV}=resend-new-clordid venueguard chaos --first-seed "
            f"{seed} --seeds 1") in text
    assert "invariant 1: intent chaos-" in text
    # the same seed with the real client holds every invariant
    good = run_chaos_virtual([seed], ChaosConfig(plan=LONG_TIMEOUTS), out=io.StringIO())
    assert exit_code(good) == 0, [str(v) for v in good.results[0].violations]


def test_a_broken_client_is_found_and_its_seed_replays_to_the_same_failure(
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The switch breaks the client; the run names a failing seed and the one command that
    replays it; that command gives the same violations and the same digest, trace included."""
    first_trace = tmp_path / "run.jsonl"
    monkeypatch.setenv(CLIENT_BUG_ENV, "resend-new-clordid")
    code = main(["chaos", "--seeds", "12", "--workers", "1", "--kinds", "timeout_after_accept",
                 "--trace", str(first_trace)])
    out = capsys.readouterr().out
    assert code == 1, out
    found = REPLAY.findall(out)
    assert found, out
    env, command = found[0]
    assert env == f"{CLIENT_BUG_ENV}=resend-new-clordid "
    assert command.startswith("venueguard chaos --first-seed ")
    assert "--kinds timeout_after_accept" in command
    seed = int(command.split()[3])
    failed_row = next(m for m in _rows(out) if int(m.group(1)) == seed)
    assert failed_row.group(6).startswith("FAIL") and "1" in failed_row.group(6)
    violations = _violations_after(out, command)
    assert any("invariant 1: intent chaos-" in v for v in violations)

    replay_trace = tmp_path / "replay.jsonl"
    code = main([*command.split()[1:], "--workers", "1", "--trace", str(replay_trace)])
    replayed = capsys.readouterr().out
    assert code == 1
    assert REPLAY.findall(replayed) == [(env, command)]
    row = _rows(replayed)[0]
    assert (int(row.group(1)), row.group(6), row.group(8)) == (
        seed, failed_row.group(6), failed_row.group(8))
    assert _violations_after(replayed, command) == violations
    seed_lines = first_trace.read_text(encoding="utf-8").splitlines(True)
    start = next(i for i, line in enumerate(seed_lines) if line.startswith(f'{{"seed":{seed},'))
    end = next(i for i, line in enumerate(seed_lines)
               if i > start and line.startswith(f'{{"seed":{seed},'))
    assert "".join(seed_lines[start:end + 1]) == replay_trace.read_text(encoding="utf-8")


def _violations_after(out: str, command: str) -> list[str]:
    """The indented violation lines printed under ``command``'s seed."""
    lines = out.split(command, 1)[1].splitlines()[1:]
    return [line.strip() for line in itertools.takewhile(lambda x: x.startswith("  "), lines)]


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_200_seeds_hold_every_invariant_within_ci_time(
        capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    code = main(["chaos", "--seeds", "200", "--workers", "1"])   # the suite runs in parallel
    wall_s = time.monotonic() - started
    out = capsys.readouterr().out
    assert code == 0, out[-4000:]
    assert [int(m.group(1)) for m in _rows(out)] == list(range(1, 201))
    assert wall_s < 300, f"200 seeds took {wall_s:.0f} s"


def test_a_few_seeds_on_sockets_print_the_table_and_exit_zero(
        capsys: pytest.CaptureFixture[str]) -> None:
    """The real-socket mode: each seed's simulator on 127.0.0.1, the real clock."""
    started = time.monotonic()
    code = main(["chaos", "--seeds", "3", "--first-seed", "1", "--sockets"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "virtual time" not in out
    rows = _rows(out)
    assert sorted(int(m.group(1)) for m in rows) == [1, 2, 3]
    assert all(m.group(6) == "ok" for m in rows)
    assert sum(int(m.group(4)) for m in rows) > 0
    assert time.monotonic() - started < 60


async def test_run_chaos_on_sockets_reports_a_broken_client_with_a_sockets_replay() -> None:
    seed = _timeout_heavy_seed()
    out = io.StringIO()
    config = ChaosConfig(plan=LONG_TIMEOUTS, client_bug="resend-new-clordid")
    report = await run_chaos([seed], config, out=out)
    assert exit_code(report) == 1 and 1 in report.failed[0].failed_invariants()
    assert (f"replay with: {CLIENT_BUG_ENV}=resend-new-clordid venueguard chaos --first-seed "
            f"{seed} --seeds 1 --sockets") in out.getvalue()


def test_an_interrupted_virtual_run_prints_the_summary_of_the_seeds_done(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from venueguard.app import chaos as chaos_app
    from venueguard.app.chaos_virtual import iter_virtual

    def two_then_interrupt(*args: Any, **kwargs: Any) -> Any:
        for n, item in enumerate(iter_virtual(*args, **kwargs)):
            if n == 2:
                raise KeyboardInterrupt
            yield item

    monkeypatch.setattr(chaos_app, "iter_virtual", two_then_interrupt)
    out = io.StringIO()
    report = run_chaos_virtual(range(1, 10), out=out)
    text = out.getvalue()
    assert [r.seed for r in report.results] == [1, 2] and report.interrupted
    assert "interrupted after 2 of 9 seed(s)" in text
    assert "all invariants held (interrupted: 2 of the seeds asked for ran)" in text
    assert exit_code(report) == 130
    assert report.cpu_s is not None and report.cpu_s > 0
