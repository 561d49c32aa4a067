"""``venueguard gym-eval`` on a small N: built-in policies, a user policy, bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("gymnasium", reason="venueguard[gym] is not installed")

from venueguard.cli import main
from venueguard.gym.evaluate import evaluate, format_table, summarize
from venueguard.gym.policies import MarketMakerPolicy, load_policy

ORDERS: list[int] = []


class PlaceEveryTenSteps:
    """A user policy loaded as MODULE:ATTR: one order every ten steps."""

    def __init__(self, env: Any) -> None:
        self.env = env
        self.step = 0

    def act(self, obs: dict[str, Any]) -> np.ndarray:
        self.step += 1
        if self.step % 10:
            return np.zeros(5, dtype=np.int64)
        ORDERS.append(self.step)
        return np.array([1, self.step // 10 % 2, 13, 0, 0])


def test_gym_eval_prints_the_table_and_writes_the_plot(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "eval.png"
    code = main(["gym-eval", "--seeds", "1", "--steps", "100", "--plot", str(png)])
    out = capsys.readouterr().out
    assert code == 0
    lines = [line for line in out.splitlines() if line.startswith("| ")]
    assert lines[0].split("|")[1].strip() == "policy"
    rows = {tuple(c.strip() for c in line.split("|")[1:3]): line for line in lines[1:]}
    assert set(rows) == {("mm", "perfect"), ("mm", "faulty"), ("random", "perfect"),
                         ("random", "faulty")}
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"


def test_faulty_mode_rejects_and_loses_answers_the_perfect_one_does_not() -> None:
    results = evaluate(["random"], ["perfect", "faulty"], [1, 2], steps=300)
    rows = {r["mode"]: r for r in summarize(results)}
    assert rows["perfect"]["rejected"] == 0.0 and rows["perfect"]["unknown"] == 0.0
    faulty_rejected = rows["faulty"]["rejected"]
    faulty_unknown = rows["faulty"]["unknown"]
    assert isinstance(faulty_rejected, float) and isinstance(faulty_unknown, float)
    assert faulty_rejected > 0 and faulty_unknown > 0
    table = format_table(summarize(results))
    assert "random | faulty" in table.replace("  ", " ").replace("  ", " ")


def test_user_policy_as_module_attr(capsys: pytest.CaptureFixture[str]) -> None:
    ORDERS.clear()
    code = main(["gym-eval", "--seeds", "1", "--steps", "100", "--modes", "perfect",
                 "--policy", f"{__name__}:PlaceEveryTenSteps", "--plot", ""])
    assert code == 0
    assert list(range(10, 101, 10)) == ORDERS
    assert f"{__name__}:PlaceEveryTenSteps" in capsys.readouterr().out


@pytest.mark.parametrize("spec", ["nope", "no_such_module_xyz:Policy", f"{__name__}:Missing"])
def test_bad_policy_is_a_clear_error(spec: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gym-eval", "--seeds", "1", "--steps", "10", "--policy", spec,
                 "--plot", ""]) == 2
    assert "gym-eval: policy" in capsys.readouterr().err


def test_market_maker_follows_the_demo_rules() -> None:
    from venueguard.gym import VenueEnv

    env = VenueEnv("perfect", max_steps=400)
    policy = load_policy("mm", env)
    assert isinstance(policy, MarketMakerPolicy)
    policy.reset(1)
    obs, _ = env.reset(seed=1)
    kinds = []
    open_counts = []
    for _ in range(400):
        action = policy.act(obs)
        kinds.append(int(action[0]))
        obs, _, _, _, _ = env.step(action)
        open_counts.append(int(np.count_nonzero(obs["order_state"] == 2)))
    acted = [i for i, k in enumerate(kinds) if k]
    assert acted and all(i % 5 == 0 for i in acted)  # one decision every 0.5 s
    assert max(open_counts) <= 3
    assert 3 in kinds  # orders older than their time are canceled


def test_without_the_extra_gym_eval_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    for name in [n for n in sys.modules if n == "venueguard.gym" or n.startswith(
            ("venueguard.gym.", "gymnasium"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "gymnasium", None)  # as if it were not installed
    assert main(["gym-eval", "--seeds", "1"]) == 2
    assert "pip install 'venueguard[gym]'" in capsys.readouterr().err
