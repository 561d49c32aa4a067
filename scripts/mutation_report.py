"""Print the mutation score of every core module from mutmut's results.

Usage: ``python scripts/mutation_report.py [--min PERCENT] [--survivors]`` after
``mutmut run`` (``make mutation`` runs both). It reads ``mutants/**/*.meta`` (one JSON file per
mutated module, written by mutmut) and the equivalent-mutant list
``tests/core/mutation_equivalents.txt``, and prints one row per module:

    module  generated  killed  survived  equivalent  score

A mutant counts as killed when a test failed, timed out, crashed the worker or when the type
checker rejected it. ``score`` is ``killed / (generated - equivalent)``: a mutant listed as
equivalent (it changes no observable behaviour) is left out of the denominator.

Each line of the equivalents file reads ``NAME :: CHANGED CODE :: REASON``: the mutant's name,
the line as the mutant has it, and why no test can tell it apart. The changed code is checked
against the mutant mutmut generated, so an entry whose mutant was renumbered after an edit is
caught instead of silently excusing another mutant. A listed equivalent that the tests now
kill, a name that no longer exists, a changed line that does not match, or an entry without a
reason is an error: the list has to describe the current code.

``--min`` makes the exit status non-zero when any module scores below ``PERCENT`` or when
some mutants were not run; ``--survivors`` lists the survivors that are not listed as
equivalent, each with its changed line (``mutmut show NAME`` prints the whole diff).
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "mutants"
META_ROOT = MUTANTS / "src"
EQUIVALENTS = ROOT / "tests" / "core" / "mutation_equivalents.txt"

# mutmut's exit codes (mutmut/stats.py): what counts as a kill. 1: a test failed; 3: pytest's
# internal error; 36/24/-24/152/255: timeout; -11/-9: the worker crashed; 37: the type checker
# rejected the mutant. 0 is a survivor; None was never run; anything else (no tests, skipped,
# suspicious) is not a kill either.
KILLED_CODES = frozenset({1, 3, 36, 24, -24, 152, 255, -11, -9, 37})


@dataclass(frozen=True, slots=True)
class ModuleScore:
    module: str
    generated: int
    killed: int
    survived: tuple[str, ...]
    equivalent: int
    not_run: int

    @property
    def score(self) -> float | None:
        counted = self.generated - self.equivalent
        return None if counted == 0 else 100.0 * self.killed / counted


@dataclass(frozen=True, slots=True)
class Equivalent:
    code: str
    reason: str


def read_equivalents(path: Path) -> dict[str, Equivalent]:
    """``{mutant name: Equivalent}`` from lines ``NAME :: CODE :: REASON``; ``#`` comments."""
    out: dict[str, Equivalent] = {}
    if not path.exists():
        return out
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [part.strip() for part in line.split(" :: ", 2)]
        if len(parts) != 3 or not all(parts):
            raise SystemExit(f"{path}:{number}: expected NAME :: CHANGED CODE :: REASON")
        name, code, reason = parts
        if name in out:
            raise SystemExit(f"{path}:{number}: {name} is listed twice")
        out[name] = Equivalent(code, reason)
    return out


class MutantSource:
    """The functions of the files mutmut wrote, to show what a mutant changed."""

    def __init__(self) -> None:
        self._functions: dict[Path, dict[str, str]] = {}

    def _functions_of(self, path: Path) -> dict[str, str]:
        if path not in self._functions:
            found: dict[str, str] = {}
            if path.exists():
                text = path.read_text(encoding="utf-8")
                for node in ast.walk(ast.parse(text)):
                    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (
                            "__mutmut_" in node.name):
                        found[node.name] = textwrap.dedent(ast.get_source_segment(text, node) or "")
            self._functions[path] = found
        return self._functions[path]

    def changed(self, source_file: Path, mutant: str) -> str:
        """The lines the mutant has and the original lacks, joined by `` / ``."""
        function = mutant.rsplit(".", 1)[1]
        functions = self._functions_of(source_file)
        original_name = re.sub(r"__mutmut_\d+$", "__mutmut_orig", function)
        original = functions.get(original_name, "")
        mutated = functions.get(function, "").replace(function, original_name, 1)
        diff = difflib.ndiff(original.splitlines(), mutated.splitlines())
        return " / ".join(line[2:].strip() for line in diff if line.startswith("+ "))


def module_of(meta: Path) -> str:
    return meta.relative_to(META_ROOT).as_posix().removesuffix(".py.meta")


def score_module(meta: Path, equivalents: dict[str, Equivalent], source: MutantSource,
                 errors: list[str]) -> ModuleScore:
    codes: dict[str, int | None] = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    killed = equivalent = not_run = 0
    survived: list[str] = []
    for name, code in sorted(codes.items()):
        if code is None:
            not_run += 1
        elif code in KILLED_CODES:
            killed += 1
            if name in equivalents:
                errors.append(f"{name} is listed as equivalent but the tests kill it")
        elif name in equivalents:
            equivalent += 1
            changed = source.changed(meta.with_name(meta.name.removesuffix(".meta")), name)
            if " ".join(changed.split()) != " ".join(equivalents[name].code.split()):
                errors.append(f"{name} now changes {changed!r}, not {equivalents[name].code!r}")
        else:
            survived.append(name)
    return ModuleScore(module_of(meta), len(codes), killed, tuple(survived), equivalent, not_run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min", type=float, default=None, help="fail below this score (percent)")
    parser.add_argument("--survivors", action="store_true", help="list unexplained survivors")
    args = parser.parse_args(argv)

    equivalents = read_equivalents(EQUIVALENTS)
    metas = sorted(META_ROOT.glob("**/*.py.meta"))
    if not metas:
        print("no mutmut results under mutants/: run `make mutation`", file=sys.stderr)
        return 2
    errors: list[str] = []
    source = MutantSource()
    rows = [score_module(m, equivalents, source, errors) for m in metas]
    rows = [r for r in rows if r.generated]
    known = {name for m in metas
             for name in json.loads(m.read_text(encoding="utf-8"))["exit_code_by_key"]}
    errors += [f"{name} is listed as equivalent but is not a mutant" for name in equivalents
               if name not in known]

    header = ("module", "generated", "killed", "survived", "equivalent", "score")
    width = max(len(header[0]), *(len(r.module) for r in rows))
    print(f"{header[0]:<{width}}  " + "  ".join(f"{h:>10}" for h in header[1:]))
    failing: list[str] = []
    for r in rows:
        score = r.score
        shown = "-" if score is None else f"{score:.1f} %"
        if r.not_run:
            shown = f"- ({r.not_run} not run)"
            failing.append(f"{r.module}: {r.not_run} mutants not run")
        if args.min is not None and score is not None and score < args.min:
            failing.append(f"{r.module}: {score:.1f} % < {args.min:g} %")
        print(f"{r.module:<{width}}  {r.generated:>10}  {r.killed:>10}  {len(r.survived):>10}  "
              f"{r.equivalent:>10}  {shown:>10}")
    total_generated = sum(r.generated for r in rows)
    total_killed = sum(r.killed for r in rows)
    total_equivalent = sum(r.equivalent for r in rows)
    total_survived = sum(len(r.survived) for r in rows)
    counted = total_generated - total_equivalent
    total = f"{100.0 * total_killed / counted:.1f} %" if counted else "-"
    print(f"{'total':<{width}}  {total_generated:>10}  {total_killed:>10}  {total_survived:>10}  "
          f"{total_equivalent:>10}  {total:>10}")

    if args.survivors:
        for r in rows:
            meta = META_ROOT / f"{r.module}.py.meta"
            for name in r.survived:
                changed = source.changed(meta.with_name(meta.name.removesuffix(".meta")), name)
                print(f"survived: {name} :: {changed}")
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    if args.min is not None:
        for failure in failing:
            print(f"below target: {failure}", file=sys.stderr)
    return 1 if errors or (args.min is not None and failing) else 0


if __name__ == "__main__":
    sys.exit(main())
