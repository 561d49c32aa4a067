"""Demo bots sharing one account: do they keep to their own orders, and what do they get done?

Starts a simulator (``venueguard sim --scenario calm --rest-limit LIMIT``), a redis-server
(unless ``--no-redis``) and MEMBERS ``venueguard monitor --trade demo`` processes on the
simulator's one key, for SECONDS; with ``--outage`` Redis is killed a third of the way in and
restarted at two thirds. Prints, from the venue's ground truth and the bots' event logs:

- orders placed (``POST /order`` answered 200), all requests, and 429s at the venue;
- useful share: order writes (place, cancel, amend) among all REST requests the venue answered;
- account-wide cancels (``DELETE /order/all``) and orders cancelled by the dead man's switch;
- position mismatches (``reconcile.mismatch`` kind ``position``), halts (``monitor.halted``),
  and bots that did not exit 0.

    .venv/bin/python bench/fleet_demo.py [--members 4] [--seconds 60] [--rest-limit 60]
                                         [--outage] [--no-redis]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from venueguard.fleet.testing import RedisServer


def events(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def truth(base: str) -> dict[str, Any]:
    with urllib.request.urlopen(base + "/_sim/truth", timeout=5) as response:
        return dict(json.load(response))


def run(members: int, seconds: float, limit: int, outage: bool, redis: bool,
        keep: Path | None = None) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VENUEGUARD_")}
    server = RedisServer.start() if redis else None
    sim = subprocess.Popen([sys.executable, "-m", "venueguard", "sim", "--scenario", "calm",
                            "--rate", "5", "--rest-limit", str(limit)],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    procs: list[subprocess.Popen[bytes]] = []
    with contextlib.ExitStack() as stack:
        tmp = (tempfile.mkdtemp(dir=keep) if keep is not None
               else stack.enter_context(tempfile.TemporaryDirectory()))
        logs = [Path(tmp) / f"m{i}.jsonl" for i in range(members)]
        try:
            assert sim.stdout is not None
            base = sim.stdout.readline().decode().split()[-1]
            for i in range(members):
                fleet = (["--redis", server.url, "--fleet-size", str(members)]
                         if server is not None else [])
                with logs[i].open("wb") as out:
                    procs.append(subprocess.Popen(
                        [sys.executable, "-m", "venueguard", "monitor", "--sim-url", base,
                         "--trade", "demo", *fleet, "--log-format", "json", "--port", "0",
                         "--journal", str(Path(tmp) / f"m{i}.db"),
                         "--duration", str(seconds)],
                        stdout=out, stderr=subprocess.DEVNULL, env=env, cwd=tmp))
            if outage and server is not None:
                time.sleep(seconds / 3)
                server.kill()
                time.sleep(seconds / 3)
                server.restart()
            codes = []
            for proc in procs:
                try:
                    codes.append(proc.wait(seconds + 60))
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGKILL)
                    codes.append(proc.wait())
            venue = truth(base)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            sim.terminate()
            sim.wait(10)
            if sim.stdout is not None:
                sim.stdout.close()
            if server is not None:
                server.stop()
        records = [e for path in logs for e in events(path)]
    responses: dict[str, int] = venue["responses"]
    api = {k: n for k, n in responses.items() if "/api/v1/" in k}

    def count(prefix: str, status: str | None = None) -> int:
        return sum(n for k, n in api.items()
                   if k.startswith(prefix) and (status is None or k.endswith(" " + status)))

    total = sum(api.values())
    writes = (count("POST /api/v1/order ") + count("DELETE /api/v1/order ")
              + count("PUT /api/v1/order ") + count("DELETE /api/v1/order/all"))
    dms = sum(1 for o in venue.get("orders", [])
              if "Cancel-all-after" in str(o.get("text", "")))
    return {
        "members": members, "seconds": seconds, "redis": redis, "outage": outage,
        "orders_placed": count("POST /api/v1/order ", "200"),
        "requests": total, "429": sum(n for k, n in api.items() if k.endswith(" 429")),
        "useful_share": round(writes / total, 3) if total else 0.0,
        "account_wide_cancels": count("DELETE /api/v1/order/all"),
        "dms_cancelled": dms,
        "position_mismatches": sum(1 for e in records if e["event"] == "reconcile.mismatch"
                                   and e.get("kind") == "position"),
        "account_mismatches": sum(1 for e in records if e["event"] == "reconcile.mismatch"
                                  and e.get("kind") == "account_position"),
        "halts": sum(1 for e in records if e["event"] == "monitor.halted"),
        "exit_codes": codes,
        "by_endpoint": dict(sorted(api.items(), key=lambda kv: -kv[1])),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rest-limit", type=int, default=60)
    parser.add_argument("--outage", action="store_true")
    parser.add_argument("--no-redis", action="store_true")
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep the bots' logs and journals in a new folder under this one")
    opts = parser.parse_args()
    print(json.dumps(run(opts.members, opts.seconds, opts.rest_limit, opts.outage,
                         not opts.no_redis, opts.keep)), flush=True)


if __name__ == "__main__":
    main()
