"""``venueguard chaos --venue ccxt:...``: seeds through a guarded ccxt bot, both dialects.

System tests: each seed starts its own simulator on 127.0.0.1 (the BitMEX dialect, or Binance
USD-M) and trades through ccxt's class of that venue under ``guard()`` while its faults run.
"""

from __future__ import annotations

import io
from dataclasses import replace

import pytest

from venueguard.app.chaos import exit_code, replay_command, run_chaos
from venueguard.app.chaos_ccxt import CCXT_KINDS
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


def test_the_ccxt_venues_draw_only_faults_a_rest_trader_meets() -> None:
    assert "dns_failure" not in CCXT_KINDS and not any(k.startswith("ws_") for k in CCXT_KINDS)
    assert replay_command(7, None, "ccxt:bitmex") == (
        "venueguard chaos --first-seed 7 --seeds 1 --venue ccxt:bitmex")


def test_an_unknown_venue_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["chaos", "--seeds", "1", "--venue", "ccxt:nosuch"])
    assert raised.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
