"""`venueguard report` on a `503-lesson` run: do the 503s and the spread move together?

Runs ``venueguard monitor --duration SECONDS`` (embedded simulator, scenario ``503-lesson``, no
trading: the monitor's health probe places and cancels one far-off order every two seconds, which
is what meets the 503s), then evaluates the report's playbook on the journal and prints the
"spread jumps when 503s arrive" finding: how many buckets had 503s, the mean spread in those
buckets against the others, the correlation of 503s per bucket with the mean spread, and the
verdict. With ``--baseline-ref REF`` the simulator and monitor of that git ref run alongside, in
the same minutes, from sources extracted with ``git archive``.

    .venv/bin/python bench/overload_report.py [--seconds 600] [--baseline-ref main]
    .venv/bin/python bench/overload_report.py --journal PATH     # evaluate an existing journal

Buckets are the report's: 60 s for a 10-minute run, 15 s for a 2-minute one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

_EVALUATE = """
import json, sys
from pathlib import Path
from venueguard.app.report import load_recording
from venueguard.core.playbook import bucket_size_s, evaluate
rec = load_recording(Path(sys.argv[1]))
for f in evaluate(rec):
    if f.symptom.key == "spread_with_503":
        print(json.dumps({"verdict": f.verdict.value, "evidence": list(f.evidence),
                          "bucket_s": bucket_size_s(rec.duration_s),
                          "duration_s": round(rec.duration_s, 1)}))
"""


async def run_monitor(name: str, src: Path, journal: Path, seconds: float) -> None:
    env = {**os.environ, "PYTHONPATH": str(src)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "venueguard", "monitor", "--duration", str(seconds), "--port",
        "0", "--journal", str(journal), "--log-format", "json", "--scenario", "503-lesson",
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    code = await proc.wait()
    if code != 0:
        raise RuntimeError(f"{name}: venueguard monitor exited with {code}")


def extract(ref: str, into: Path) -> Path:
    """The ``src`` tree of git ``ref``, extracted under ``into``; returns its path."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref, "src"], check=True,
                             capture_output=True).stdout
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def evaluate(src: Path, journal: Path) -> str:
    out = subprocess.run([sys.executable, "-c", _EVALUATE, str(journal)], check=True,
                         capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(src)}).stdout.strip()
    return out


def show(name: str, line: str) -> None:
    data = json.loads(line)
    print(f"{name}: {data['verdict'].upper()} over {data['duration_s']} s "
          f"(buckets of {data['bucket_s']:g} s)")
    for item in data["evidence"]:
        print(f"    {item}")


async def main(args: argparse.Namespace) -> None:
    if args.journal:
        show("journal", evaluate(REPO / "src", Path(args.journal)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        runs = [("current", REPO / "src", Path(tmp) / "current.db")]
        if args.baseline_ref:
            runs.append((f"baseline ({args.baseline_ref})",
                         extract(args.baseline_ref, Path(tmp) / "baseline"),
                         Path(tmp) / "baseline.db"))
        print(f"running venueguard monitor --scenario 503-lesson for {args.seconds:g} s "
              f"({len(runs)} at once)...", flush=True)
        await asyncio.gather(*(run_monitor(n, s, j, args.seconds) for n, s, j in runs))
        for name, src, journal in runs:
            # each journal is read by the report of its own version
            show(name, evaluate(src, journal))
            if args.keep:
                for part in journal.parent.glob(journal.name + "*"):  # with -wal and -shm
                    (Path(args.keep) / part.name).write_bytes(part.read_bytes())


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--baseline-ref", default=None)
    parser.add_argument("--journal", default=None, help="only evaluate this journal")
    parser.add_argument("--keep", default=None, metavar="DIR", help="copy the journals here")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
