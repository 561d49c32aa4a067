"""Scenario files: shipped ones load, bad ones say where and why, schedules fire on time."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from venueguard.sim.scenario import (
    ScenarioError,
    ScenarioRunner,
    load_scenario,
    parse_scenario,
    shipped,
)

SHIPPED = {"calm", "503-lesson", "silent-stall", "ban-hammer", "flaky-acks"}


def test_shipped_scenarios_load_by_name() -> None:
    assert set(shipped()) >= SHIPPED
    kinds = {name: {f.request.kind for f in load_scenario(name).faults} for name in SHIPPED}
    assert kinds["calm"] == set()
    assert {"overload_503", "ws_stall"} <= kinds["503-lesson"]
    assert kinds["silent-stall"] == {"ws_stall"}
    assert kinds["ban-hammer"] == {"forbidden_403", "cloudflare_522", "cloudflare_1010",
                                   "cloudflare_1006"}
    assert {"timeout_after_accept", "delayed_visibility", "late_fill",
            "cancel_race"} <= kinds["flaky-acks"]
    lesson = load_scenario("503-lesson")
    # overload follows the market load, and the market has scheduled bursts to follow
    assert any(f.request.params.get("follow_load") for f in lesson.faults)
    assert lesson.bursts and all(b.burst.size > 2 for b in lesson.bursts)
    assert lesson.market_params().spread_widen_ticks > 0


def test_path_works_and_overload_section(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('[overload]\nprobability = 0.2\nfollow_intensity = true\n\n'
                    '[[fault]]\nat_s = 3\nkind = "latency"\n[fault.params]\nms = 40\n')
    scenario = load_scenario(path)
    assert scenario.name == "mine"
    first, second = scenario.faults
    assert (first.at_s, first.request.kind, first.request.params["follow_intensity"]) == \
        (0.0, "overload_503", True)
    assert (second.at_s, second.request.params["ms"]) == (3.0, 40.0)


@pytest.mark.parametrize(("text", "needle"), [
    ('name = "x"\n[[fault]\nat_s = 1', "invalid TOML"),
    ('[[fault]]\nat_s = 1\nkind = "latency"\n\n[[fault]]\nat_s = 2\nkind = "boom"\n',
     "bad.toml:5: unknown fault kind 'boom'"),
    ('\n\n[[fault]]\nkind = "latency"\n', "bad.toml:3: [[fault]] needs 'at_s'"),
    ('[[fault]]\nat_s = -1\nkind = "latency"\n', "bad.toml:1: 'at_s' must be >= 0"),
    ('[[fault]]\nat_s = 1\nkind = "latency"\nms = "fast"\n', "bad.toml:1: fault latency"),
    ('colour = "red"\n', "bad.toml:1: unknown key(s) colour"),
    ('repeat_s = 10\n[[fault]]\nat_s = 12\nkind = "latency"\n', "must be < repeat_s"),
])
def test_malformed_scenarios_name_file_line_and_problem(text: str, needle: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, source="bad.toml")
    assert needle in str(info.value)
    assert str(info.value).startswith("bad.toml")


def test_unknown_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario("no-such-scenario")
    assert "calm" in str(info.value) and "503-lesson" in str(info.value)


def test_runner_schedules_and_repeats() -> None:
    scenario = parse_scenario('repeat_s = 10\n[[fault]]\nat_s = 2\nkind = "forbidden_403"\n'
                              '[[fault]]\nat_s = 5\nkind = "cloudflare_522"\n')
    runner = ScenarioRunner(scenario)
    assert runner.due(1.9) == []
    assert [r.kind for r in runner.due(2.0)] == ["forbidden_403"]
    assert runner.due(4.0) == []
    assert [r.kind for r in runner.due(12.5)] == ["cloudflare_522", "forbidden_403"]
    assert [r.kind for r in runner.due(100.0)][:2] == ["cloudflare_522", "forbidden_403"]


async def test_server_applies_the_schedule(sim_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "soon.toml"
    path.write_text('[[fault]]\nat_s = 0.2\nkind = "forbidden_403"\nduration_s = 30\n')
    sim = await sim_server(scenario=str(path))
    assert (await sim.request("GET", "/position"))[0] == 200
    await asyncio.sleep(0.35)
    assert [f["kind"] for f in await sim.faults()] == ["forbidden_403"]
    assert (await sim.request("GET", "/position"))[0] == 403


def test_market_table_and_bursts_parse_and_interleave_with_faults() -> None:
    scenario = parse_scenario('repeat_s = 10\n[market]\ntau_s = 5\nspread_widen_ticks = 3\n'
                              '[[burst]]\nat_s = 4\nsize = 6\nsymbol = "ethusd"\n'
                              '[[fault]]\nat_s = 2\nkind = "forbidden_403"\n'
                              '[[burst]]\nat_s = 1\nsize = 2.5\n')
    params = scenario.market_params()
    assert (params.tau_ms, params.spread_widen_ticks) == (5000.0, 3.0)
    assert [(b.at_s, b.burst.symbol) for b in scenario.bursts] == [(1.0, None), (4.0, "ETHUSD")]
    runner = ScenarioRunner(scenario)
    assert [r.kind for r in runner.due(4.0)] == ["market_burst", "forbidden_403", "market_burst"]
    assert [r.kind for r in runner.due(11.0)] == ["market_burst"]


@pytest.mark.parametrize(("text", "needle"), [
    ("[market]\nspeed = 2\n", "unknown [market] key(s) speed"),
    ("[market]\ntau_s = 0\n", "'tau_s' must be > 0"),
    ("[market]\ntau_s = 100\nshock_beta_per_s = 0.5\n", "must stay below 1"),
    ("[market]\ntau_s = true\n", "must be a number"),
    ("[[burst]]\nat_s = 1\n", "a [[burst]] has at_s and size"),
    ("[[burst]]\nat_s = 1\nsize = 0\n", "'size' must be > 0"),
    ("[[burst]]\nat_s = 1\nsize = 2\nwhen = 3\n", "unknown: when"),
    ("repeat_s = 5\n[[burst]]\nat_s = 6\nsize = 2\n", "every at_s must be < repeat_s"),
])
def test_bad_market_and_burst_entries_name_the_line(text: str, needle: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, source="m.toml")
    assert needle in str(info.value) and str(info.value).startswith("m.toml")
