"""Fleet monitors stop when told: ``venueguard monitor --redis URL`` run again and again.

Starts its own redis-server and, for each run, one ``venueguard monitor --redis URL --port 0``
(the embedded simulator): the duration runs end by ``--duration``, the signal runs get SIGINT
or SIGTERM at a random moment after ``monitor.ready``. It prints, per kind, the runs that ended
with exit 0 within the bound, the slowest stop, and every run that did not (killed after the
bound). Exit status 1 when any run missed.

    .venv/bin/python bench/fleet_stop.py [--runs 20] [--duration 8] [--bound 15] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from venueguard.fleet.testing import RedisServer


def one_run(url: str, workdir: Path, kind: str, duration_s: float, bound_s: float,
            rng: random.Random) -> tuple[int | None, float]:
    """(exit code or None when killed at the bound, seconds from start or signal to exit)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VENUEGUARD_")}
    journal = workdir / f"m{time.monotonic_ns()}.db"
    args = [sys.executable, "-m", "venueguard", "monitor", "--redis", url, "--fleet-size", "1",
            "--port", "0", "--log-format", "json", "--journal", str(journal)]
    if kind == "duration":
        args += ["--duration", str(duration_s)]
    started = time.monotonic()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                            cwd=workdir)
    assert proc.stdout is not None
    if kind != "duration":
        for line in proc.stdout:
            if b'"monitor.ready"' in line:
                break
        time.sleep(rng.uniform(0.0, duration_s))
        proc.send_signal(signal.SIGINT if kind == "sigint" else signal.SIGTERM)
        started = time.monotonic()
    try:
        code: int | None = proc.wait(bound_s - (time.monotonic() - started))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        code = None
    proc.stdout.close()
    return code, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--bound", type=float, default=15.0)
    parser.add_argument("--seed", type=int, default=1)
    opts = parser.parse_args()
    rng = random.Random(opts.seed)
    server = RedisServer.start()
    missed = 0
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for kind in ("duration", "sigint", "sigterm"):
                # a signal run is bounded from the signal; a duration run from its start
                bound = opts.bound if kind == "duration" else opts.bound - opts.duration
                results = [one_run(server.url, Path(tmp), kind, opts.duration, opts.bound
                                   if kind == "duration" else bound, rng)
                           for _ in range(opts.runs)]
                good = [t for c, t in results if c == 0]
                bad = [(c, round(t, 1)) for c, t in results if c != 0]
                missed += len(bad)
                print(f"{kind:8s}: {len(good)}/{opts.runs} exit 0 within {bound:g} s; "
                      f"slowest {max((t for _, t in results), default=0):.1f} s"
                      + (f"; missed: {bad}" if bad else ""), flush=True)
    finally:
        server.stop()
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
