"""``venueguard chaos --fleet N``: N order runtimes, members of one fleet on one account.

System tests in virtual time: each seed runs one simulator and N members (market data, REST
through the fleet's shared buckets and budget, journal, order runtime) in one process; the same
seed gives the same digest and trace, and a fleet broken on purpose is caught and replays to
the same failure.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from chaos_elsewhere import assert_same_elsewhere

from venueguard.app.chaos import CLIENT_BUG_ENV, exit_code, replay_command, run_chaos_virtual
from venueguard.app.chaos_fleet import _cut_for
from venueguard.app.chaos_lease import OwnerWatch
from venueguard.app.chaos_seed import ChaosConfig
from venueguard.cli import main
from venueguard.io.fleet_link import Role

pytestmark = [pytest.mark.system]

REPLAY = re.compile(r"replay with: (\S+=\S+ )?(venueguard chaos .*)$", re.M)


def test_fleet_seeds_give_the_same_digest_and_trace_twice_in_any_order() -> None:
    seeds = [1, 2, 3]
    config = ChaosConfig(fleet=2)
    first_trace, second_trace = io.StringIO(), io.StringIO()
    first = run_chaos_virtual(seeds, config, out=io.StringIO(), trace=first_trace)
    second = run_chaos_virtual(list(reversed(seeds)), config, out=io.StringIO(),
                               trace=second_trace)
    assert exit_code(first) == 0, [str(v) for r in first.results for v in r.violations]
    assert exit_code(second) == 0
    digests = {r.seed: r.digest for r in first.results}
    assert digests == {r.seed: r.digest for r in second.results}
    assert len(set(digests.values())) == len(seeds)
    assert sorted(first_trace.getvalue().splitlines()) == sorted(
        second_trace.getvalue().splitlines())
    text = first_trace.getvalue()
    # both members traded, and the lease was taken
    assert '"event":"order.intent","cl_ord_id":"vgm0-' in text
    assert '"event":"order.intent","cl_ord_id":"vgm1-' in text
    assert '"event":"fleet.lease","owner":true' in text
    assert sum(r.orders for r in first.results) > 0
    # the seeds that plan a handover (1: the owner's bot stops and starts again on its
    # journal, 2: its store refuses) show the lease taken by a second member; seed 3 plans
    # none and keeps one owner
    cuts = {seed: _cut_for(seed, config) for seed in seeds}
    assert {seed: cut.way for seed, cut in cuts.items() if cut} == {1: "stop", 2: "refused"}
    for seed, cut in cuts.items():
        head, owners, events = _lease_of(text, seed)
        assert head["lease_cut"] == (cut.as_dict() if cut else None)
        assert owners == (["m0", "m1"] if cut else ["m0"]), (seed, owners)
        startups = [r for r in events if r.get("kind") == "startup"]
        assert len(startups) == (3 if cut and cut.way == "stop" else 2)   # m0 twice
        assert ("fleet.degraded" in {r.get("event") for r in events}) == (
            cut is not None and cut.way != "stop")


def test_fleet_seeds_in_other_processes_give_the_same_digests(tmp_path: Path) -> None:
    assert_same_elsewhere(tmp_path, [7, 8], ChaosConfig(fleet=2), ["--fleet", "2"], "777")


def test_three_members_hold_every_invariant_and_the_header_names_the_fleet() -> None:
    out = io.StringIO()
    report = run_chaos_virtual([4, 5], ChaosConfig(fleet=3), out=out)
    assert exit_code(report) == 0, out.getvalue()
    assert "(sim, fleet of 3, virtual time)" in out.getvalue()
    assert all(r.requests > 0 and r.logical > 0 for r in report.results)


def test_members_sharing_one_prefix_are_caught_and_the_seed_replays_to_the_same_failure(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The test-only switch gives both members one client-id prefix (two bots configured
    alike): each takes the other's orders for its own, and the fleet's checks say so."""
    monkeypatch.setenv(CLIENT_BUG_ENV, "shared-prefix")
    code = main(["chaos", "--seeds", "2", "--fleet", "2", "--workers", "1"])
    out = capsys.readouterr().out
    assert code == 1, out
    found = REPLAY.findall(out)
    assert found, out
    env, command = found[0]
    assert env == f"{CLIENT_BUG_ENV}=shared-prefix "
    assert command.endswith("--seeds 1 --fleet 2")
    assert "fleet: order" in out and "held by m0, m1" in out
    seed = int(command.split()[3])
    digest = _digest(out, seed)
    violations = _violations_after(out, command)
    assert main([*command.split()[1:], "--workers", "1"]) == 1
    replayed = capsys.readouterr().out
    assert REPLAY.findall(replayed) == [(env, command)]
    assert _digest(replayed, seed) == digest
    assert _violations_after(replayed, command) == violations


def test_a_member_acting_as_owner_after_its_lease_lapsed_is_caught_and_replays(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The test-only switch makes every member trust the last lease answer it got: the owner
    whose store was cut goes on acting as owner after its lease lapsed and another member
    took it; the handover check says so, and the seed replays to the same failure."""
    monkeypatch.setenv(CLIENT_BUG_ENV, "stale-owner")
    assert _cut_for(2, ChaosConfig(fleet=2)) is not None   # seed 2 cuts the owner's store
    code = main(["chaos", "--first-seed", "2", "--seeds", "1", "--fleet", "2", "--workers",
                 "1"])
    out = capsys.readouterr().out
    assert code == 1, out
    [(env, command)] = REPLAY.findall(out)
    assert env == f"{CLIENT_BUG_ENV}=stale-owner "
    assert command == "venueguard chaos --first-seed 2 --seeds 1 --fleet 2"
    violations = _violations_after(out, command)
    assert any(v.startswith("invariant 2: fleet: m0 still acts as the lease owner")
               for v in violations), violations
    assert "invariant 2: fleet: 2 lease owners at once (m0, m1)" in violations
    digest = _digest(out, 2)
    assert main([*command.split()[1:], "--workers", "1"]) == 1
    replayed = capsys.readouterr().out
    assert _digest(replayed, 2) == digest
    assert _violations_after(replayed, command) == violations


def _lease_of(trace: str, seed: int
              ) -> tuple[dict[str, Any], list[str], list[dict[str, Any]]]:
    """A seed's head line, the members that took the lease (in the trace's order), and the
    seed's events."""
    lines = [orjson.loads(line) for line in trace.splitlines()]
    start = next(i for i, r in enumerate(lines) if r.get("seed") == seed and "plan" in r)
    end = next(i for i, r in enumerate(lines) if i > start and r.get("seed") == seed)
    events = lines[start + 1:end]
    owners = [str(r["member"]) for r in events
              if r.get("event") == "fleet.lease" and r.get("owner")]
    return lines[start], owners, events


def _digest(out: str, seed: int) -> str:
    for line in out.splitlines():
        fields = line.split()
        if len(fields) > 2 and "/" in fields[0] and fields[1] == str(seed):
            return fields[-1]
    raise AssertionError(f"no row for seed {seed}")


def _violations_after(out: str, command: str) -> list[str]:
    lines = out.split(command, 1)[1].splitlines()[1:]
    out_lines = []
    for line in lines:
        if not line.startswith("  "):
            break
        out_lines.append(line.strip())
    return out_lines


def test_bad_fleet_arguments_exit_2(capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit) as refused:
        main(["chaos", "--seeds", "1", "--fleet", "1"])
    assert refused.value.code == 2
    capsys.readouterr()
    assert main(["chaos", "--seeds", "1", "--fleet", "2", "--venue", "ccxt:bitmex"]) == 2
    assert "--fleet runs native members" in capsys.readouterr().err
    monkeypatch.setenv(CLIENT_BUG_ENV, "shared-prefix")     # a fleet bug needs a fleet
    assert main(["chaos", "--seeds", "1"]) == 2
    assert "resend-new-clordid" in capsys.readouterr().err
    assert replay_command(3, fleet=2, client_bug="shared-prefix") == (
        f"{CLIENT_BUG_ENV}=shared-prefix venueguard chaos --first-seed 3 --seeds 1 --fleet 2")


@dataclass
class _FakeFleet:
    role_now: Role

    def role(self) -> Role:
        return self.role_now


@dataclass
class _FakeMember:
    name: str
    fleet: _FakeFleet


async def test_two_owners_at_once_are_a_violation() -> None:
    import asyncio

    members = [_FakeMember("m0", _FakeFleet(Role.OWNER)), _FakeMember("m1", _FakeFleet(
        Role.FOLLOWER))]
    sampler = OwnerWatch(members, 1.0)
    task = asyncio.get_running_loop().create_task(sampler.run())
    await asyncio.sleep(0.12)
    assert sampler.samples >= 1 and sampler.owned == sampler.samples
    assert sampler.violations == []
    members[1].fleet.role_now = Role.OWNER
    await asyncio.sleep(0.12)
    task.cancel()
    assert sampler.violations and "2 lease owners at once (m0, m1)" in \
        sampler.violations[0].message
