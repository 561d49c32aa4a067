"""One check for every kind of chaos seed: run here, then again in another process (two
workers, another hash seed), a seed gives the same digest and the same trace bytes."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from venueguard.app.chaos import run_chaos_virtual
from venueguard.app.chaos_seed import ChaosConfig

SRC = Path(__file__).resolve().parents[2] / "src"
_ROW = re.compile(r"\d+/\d+")


def assert_same_elsewhere(tmp_path: Path, seeds: Sequence[int], config: ChaosConfig,
                          args: Sequence[str], hash_seed: str) -> None:
    """``seeds`` (consecutive) run here with ``config`` and by ``venueguard chaos ... args``
    in a subprocess: the same digests, row by row, and the same trace, byte for byte."""
    here = io.StringIO()
    report = run_chaos_virtual(seeds, config, out=io.StringIO(), trace=here)
    trace = tmp_path / "trace.jsonl"
    env = {**os.environ, "PYTHONPATH": str(SRC), "PYTHONHASHSEED": hash_seed}
    done = subprocess.run(
        [sys.executable, "-m", "venueguard", "chaos", "--first-seed", str(seeds[0]),
         "--seeds", str(len(seeds)), *args, "--workers", "2", "--trace", str(trace)],
        capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = [line.split() for line in done.stdout.splitlines()]
    digests = [fields[-1] for fields in rows if fields and _ROW.fullmatch(fields[0])]
    assert digests == [r.digest for r in report.results]
    assert trace.read_text(encoding="utf-8") == here.getvalue()
