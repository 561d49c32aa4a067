"""``venueguard gym-eval``: the same policies in the perfect and the faulty venue, over N seeds.

For every policy, mode and seed it runs one episode of ``VenueEnv`` and measures, from the
venue's truth: PnL (equity at the end, settlement currency), fill ratio (filled over placed
quantity), inventory (mean absolute position in lots), maximum drawdown of the equity curve, and,
from ``info``: actions rejected by the venue, refused by the client, and left UNKNOWN. It prints
the means per policy and mode as a table and draws them (PNG, one panel per measure).
Exit codes: 0 done, 2 bad arguments (a policy that cannot be loaded, a bad scenario).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from venueguard.gym.contract import Contract, contract_for
from venueguard.gym.env import VenueEnv
from venueguard.gym.policies import load_policy
from venueguard.sim.scenario import ScenarioError

__all__ = ["EpisodeResult", "evaluate", "format_table", "plot", "run", "run_episode",
           "summarize"]

# ``run(args)`` takes the arguments ``venueguard gym-eval`` parses (see venueguard.cli).

MEASURES: tuple[tuple[str, str], ...] = (
    ("pnl", "PnL"), ("fill_ratio", "fill ratio"), ("inventory", "inventory (lots)"),
    ("rejected", "rejected"), ("refused", "refused"), ("unknown", "UNKNOWN"),
    ("max_drawdown", "max drawdown"),
)


@dataclass(frozen=True, slots=True)
class EpisodeResult:
    policy: str
    mode: str
    seed: int
    pnl: float
    fill_ratio: float
    inventory: float
    rejected: int
    refused: int
    unknown: int
    max_drawdown: float
    steps: int


def run_episode(policy_spec: str, mode: str, seed: int, *, steps: int,
                contract: Contract | None = None) -> EpisodeResult:
    """One episode of ``policy_spec`` in ``mode`` (see the module docstring for the measures)."""
    env = VenueEnv(mode, contract=contract_for(mode, contract), max_steps=steps)
    policy = load_policy(policy_spec, env)
    reset = getattr(policy, "reset", None)
    if callable(reset):
        reset(seed)
    obs, _ = env.reset(seed=seed)
    lot = env.venue.spec.lot_size
    peak = drawdown = 0.0
    inventory = 0.0
    rejected = refused = 0
    truncated = terminated = False
    done = 0
    while not (truncated or terminated):
        obs, _, terminated, truncated, info = env.step(policy.act(obs))
        done += 1
        equity = float(info["equity"])
        peak = max(peak, equity)
        drawdown = max(drawdown, peak - equity)
        inventory += abs(int(info["venue_position"])) / lot
        for effect in info["effects"]:
            result = effect["result"]
            if result == "rejected":
                rejected += 1
            elif result == "refused":
                refused += 1
    venue = env.venue
    placed = venue.stats["placed_qty"]
    env.close()
    return EpisodeResult(
        policy=policy_spec, mode=mode, seed=seed, pnl=venue.equity(),
        fill_ratio=venue.filled_qty() / placed if placed else 0.0,
        inventory=inventory / max(1, done), rejected=rejected, refused=refused,
        unknown=venue.stats["unknown"], max_drawdown=drawdown, steps=done)


def evaluate(policies: Sequence[str], modes: Sequence[str], seeds: Sequence[int], *,
             steps: int, scenarios: Sequence[str] | None = None) -> list[EpisodeResult]:
    results = []
    for policy in policies:
        for mode in modes:
            contract = contract_for(mode)
            if scenarios is not None and mode == "faulty":
                contract = Contract(scenarios=tuple(scenarios))
            for seed in seeds:
                results.append(run_episode(policy, mode, seed, steps=steps, contract=contract))
    return results


def summarize(results: Sequence[EpisodeResult]) -> list[dict[str, object]]:
    """Means over seeds per (policy, mode), in the order first seen."""
    groups: dict[tuple[str, str], list[EpisodeResult]] = {}
    for result in results:
        groups.setdefault((result.policy, result.mode), []).append(result)
    rows: list[dict[str, object]] = []
    for (policy, mode), group in groups.items():
        row: dict[str, object] = {"policy": policy, "mode": mode, "seeds": len(group)}
        for name, _ in MEASURES:
            row[name] = statistics.fmean(float(getattr(r, name)) for r in group)
        rows.append(row)
    return rows


def format_table(rows: Sequence[dict[str, object]]) -> str:
    header = ["policy", "mode", "seeds", *(label for _, label in MEASURES)]
    lines = [header]
    for row in rows:
        cells = [str(row["policy"]), str(row["mode"]), str(row["seeds"])]
        for name, _ in MEASURES:
            value = row[name]
            assert isinstance(value, float)
            cells.append(f"{value:.3f}" if name in ("fill_ratio", "inventory")
                         else f"{value:.2f}" if name in ("pnl", "max_drawdown")
                         else f"{value:.1f}")
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for index, line in enumerate(lines):
        out.append("| " + " | ".join(c.ljust(w) if i < 2 else c.rjust(w)
                                     for i, (c, w) in enumerate(zip(line, widths, strict=True)))
                   + " |")
        if index == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def plot(rows: Sequence[dict[str, object]], path: Path) -> None:
    """One bar panel per measure: each policy's perfect and faulty means side by side."""
    from matplotlib.figure import Figure

    policies = list(dict.fromkeys(str(r["policy"]) for r in rows))
    modes = list(dict.fromkeys(str(r["mode"]) for r in rows))
    fig = Figure(figsize=(12.0, 6.5), layout="constrained")
    axes = fig.subplots(2, 4).flatten()
    width = 0.8 / max(1, len(modes))
    colors = {"perfect": "#4c72b0", "faulty": "#dd5555"}
    for ax, (name, label) in zip(axes, MEASURES, strict=False):
        for m_index, mode in enumerate(modes):
            values = []
            for policy in policies:
                match = [r for r in rows if r["policy"] == policy and r["mode"] == mode]
                value = match[0][name] if match else 0.0
                values.append(float(value) if isinstance(value, float | int) else 0.0)
            xs = [p + m_index * width for p in range(len(policies))]
            ax.bar(xs, values, width, label=mode, color=colors.get(mode, "#888888"))
        ax.set_title(label)
        ax.set_xticks([p + width * (len(modes) - 1) / 2 for p in range(len(policies))],
                      policies)
        ax.axhline(0.0, color="#333333", linewidth=0.6)
    axes[0].legend()
    axes[-1].axis("off")
    fig.suptitle("venueguard gym-eval: the same policies in a perfect and a faulty venue")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def run(args: argparse.Namespace) -> int:
    modes = [m.strip() for m in str(args.modes).split(",") if m.strip()]
    policies = args.policy or ["mm", "random"]
    if args.seeds < 1 or args.steps < 1:
        print("gym-eval: --seeds and --steps must be >= 1", file=sys.stderr)
        return 2
    try:
        for mode in modes:
            contract_for(mode)
        probe = VenueEnv("perfect", max_steps=1)
        for spec in policies:
            load_policy(spec, probe)
        seeds = list(range(args.first_seed, args.first_seed + args.seeds))
        results = evaluate(policies, modes, seeds, steps=args.steps, scenarios=args.scenario)
    except (ValueError, ScenarioError) as exc:
        print(f"gym-eval: {exc}", file=sys.stderr)
        return 2
    rows = summarize(results)
    print(f"gym-eval: {len(seeds)} seeds x {args.steps} steps of 100 ms; means per episode")
    print(format_table(rows))
    if args.plot:
        plot(rows, Path(args.plot))
        print(f"plot: {args.plot}")
    return 0


assert {f.name for f in fields(EpisodeResult)} >= {name for name, _ in MEASURES}
