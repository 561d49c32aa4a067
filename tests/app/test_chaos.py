"""``venueguard chaos``: plans, invariant checks, a few real seeds, a broken client, 200 seeds.

The seed runs are system tests: each seed starts its own simulator on 127.0.0.1 and runs the
whole client stack against it (market data, REST, order runtime) under the seed's faults.
"""

from __future__ import annotations

import io
import random
import re
import time
from typing import Any

import pytest

from venueguard.app import chaos_checks as checks
from venueguard.app.chaos import exit_code, run_chaos
from venueguard.app.chaos_plan import DEFAULT_KINDS, PlanConfig, plan_for
from venueguard.app.chaos_seed import ChaosConfig
from venueguard.cli import main
from venueguard.core.budget import BudgetConfig, RetryBudget
from venueguard.io import errors
from venueguard.io.http_session import RestConfig, RestSession, new_cl_ord_id
from venueguard.telemetry.events import EventLog

ROW = re.compile(r"^\s*\d+/\d+\s+(\d+)\s+(\d+) (\S+)\s+(\d+)\s+(\d)/7\s+(ok|FAIL [\d,]+)\s+"
                 r"([\d.]+)$")


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
def test_a_few_seeds_print_the_table_and_exit_zero(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    code = main(["chaos", "--seeds", "3", "--first-seed", "1"])
    out = capsys.readouterr().out
    assert code == 0, out
    rows = [m for line in out.splitlines() if (m := ROW.match(line))]
    assert sorted(int(m.group(1)) for m in rows) == [1, 2, 3]
    for m in rows:
        assert m.group(6) == "ok" and m.group(5) == "7"
        assert m.group(3).split(",")[0] in DEFAULT_KINDS
    assert sum(int(m.group(4)) for m in rows) > 0      # orders were placed under faults
    assert "seed" in out and "verdict" in out and "all invariants held" in out
    assert time.monotonic() - started < 60


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:  # the argument parser states the range
        main(["chaos", "--seeds", "0"])
    assert refused.value.code == 2
    assert "--seeds: must be a whole number from 1 to 100000, not '0'" in capsys.readouterr().err
    assert main(["chaos", "--seeds", "1", "--scenario", "/no/such/scenario.toml"]) == 2
    assert "scenario" in capsys.readouterr().err


class ResendsOnTimeout(RestSession):
    """A client bug on purpose: after a timeout it places the order again under a NEW clOrdID."""

    async def place_order(self, symbol: str, side: str, order_qty: float,
                          price: float | None = None, **kw: Any) -> dict[str, Any]:
        try:
            return await super().place_order(symbol, side, order_qty, price, **kw)
        except errors.AmbiguousOutcome:
            kw["cl_ord_id"] = new_cl_ord_id()
            return await super().place_order(symbol, side, order_qty, price, **kw)


def _broken(config: RestConfig, events: EventLog, resolver: Any,
            rng: random.Random) -> RestSession:
    return ResendsOnTimeout(config, events=events, resolver=resolver, rng=rng)


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


async def test_a_client_that_resends_under_a_new_clordid_is_caught_by_invariant_1() -> None:
    seed = _timeout_heavy_seed()
    out = io.StringIO()
    config = ChaosConfig(plan=LONG_TIMEOUTS)
    report = await run_chaos([seed], config, out=out, rest_factory=_broken)
    text = out.getvalue()
    assert exit_code(report) == 1
    failed = report.failed[0]
    assert failed.seed == seed and 1 in failed.failed_invariants()
    assert f"replay with: venueguard chaos --first-seed {seed} --seeds 1" in text
    assert "invariant 1: intent chaos-" in text
    # the same seed with the real client holds every invariant
    good = await run_chaos([seed], config, out=io.StringIO())
    assert exit_code(good) == 0, [str(v) for v in good.results[0].violations]


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_200_seeds_hold_every_invariant_within_ci_time(
        capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    code = main(["chaos", "--seeds", "200"])
    wall_s = time.monotonic() - started
    out = capsys.readouterr().out
    assert code == 0, out[-4000:]
    assert len([line for line in out.splitlines() if ROW.match(line)]) == 200
    assert wall_s < 300, f"200 seeds took {wall_s:.0f} s"

