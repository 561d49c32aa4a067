"""Demo bots sharing one account against the simulator: run them, and count what happened.

Starts a simulator (``venueguard sim --scenario calm --rest-limit LIMIT``), a redis-server
(unless ``redis=False``) and MEMBERS ``venueguard monitor --trade demo`` processes on the
simulator's one key, for SECONDS; with ``outage=(at_s, for_s)`` Redis is killed ``at_s`` in
and restarted ``for_s`` later. :func:`rehearse` returns a :class:`Rehearsal`: the venue's
ground truth (``/_sim/truth``), every bot's events, each bot's requests by endpoint (as its
journal's request samples record them: the symbol check at startup is not among them) and
exit code; :meth:`Rehearsal.summary` counts:

- orders placed (``POST /order`` answered 200), all requests, and 429s at the venue;
- useful share: order writes (place, cancel, amend) among all REST requests the venue answered;
- account-wide cancels (``DELETE /order/all``) and orders cancelled by the dead man's switch;
- position mismatches (``reconcile.mismatch`` kind ``position``), account mismatches, halts
  (``monitor.halted``), and bots that did not exit 0.

``bench/fleet_demo.py`` prints it; the system tests assert on it. Needs redis-server (see
:mod:`venueguard.fleet.testing`) and the ``redis`` extra unless ``redis=False``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from venueguard.fleet.testing import RedisServer

__all__ = ["Rehearsal", "event_lines", "rehearse"]


@dataclass(frozen=True, slots=True)
class Rehearsal:
    members: int
    seconds: float
    redis: bool
    outage: bool
    truth: dict[str, Any]                        # the simulator's /_sim/truth
    records: list[dict[str, Any]]                # every bot's JSON events
    by_member: list[dict[str, int]]              # each bot's requests, by endpoint
    exit_codes: list[int]

    def api(self) -> dict[str, int]:
        """The venue's answers by ``"VERB /api/v1/path STATUS"``."""
        responses: dict[str, int] = self.truth["responses"]
        return {k: n for k, n in responses.items() if "/api/v1/" in k}

    def count(self, prefix: str, status: str | None = None) -> int:
        return sum(n for k, n in self.api().items()
                   if k.startswith(prefix) and (status is None or k.endswith(" " + status)))

    def events(self, name: str, **fields: object) -> list[dict[str, Any]]:
        return [e for e in self.records if e.get("event") == name
                and all(e.get(k) == v for k, v in fields.items())]

    def summary(self) -> dict[str, Any]:
        api = self.api()
        total = sum(api.values())
        writes = (self.count("POST /api/v1/order ") + self.count("DELETE /api/v1/order ")
                  + self.count("PUT /api/v1/order ") + self.count("DELETE /api/v1/order/all"))
        dms = sum(1 for o in self.truth.get("orders", [])
                  if "Cancel-all-after" in str(o.get("text", "")))
        return {
            "members": self.members, "seconds": self.seconds, "redis": self.redis,
            "outage": self.outage,
            "orders_placed": self.count("POST /api/v1/order ", "200"),
            "requests": total, "429": sum(n for k, n in api.items() if k.endswith(" 429")),
            "useful_share": round(writes / total, 3) if total else 0.0,
            "account_wide_cancels": self.count("DELETE /api/v1/order/all"),
            "dms_cancelled": dms,
            "position_mismatches": len(self.events("reconcile.mismatch", kind="position")),
            "account_mismatches": len(self.events("reconcile.mismatch",
                                                  kind="account_position")),
            "halts": len(self.events("monitor.halted")),
            "exit_codes": self.exit_codes,
            "by_endpoint": dict(sorted(api.items(), key=lambda kv: -kv[1])),
            "by_member": self.by_member,
        }


def rehearse(members: int, seconds: float, limit: int = 60, *,
             outage: tuple[float, float] | None = None, redis: bool = True,
             keep: Path | None = None) -> Rehearsal:
    """Run the bots (see the module docstring); ``keep``: leave their logs and journals in a
    new folder under it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VENUEGUARD_")}
    server = RedisServer.start() if redis else None
    sim = subprocess.Popen([sys.executable, "-m", "venueguard", "sim", "--scenario", "calm",
                            "--rate", "5", "--rest-limit", str(limit)],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    procs: list[subprocess.Popen[bytes]] = []
    with contextlib.ExitStack() as stack:
        tmp = Path(tempfile.mkdtemp(dir=keep) if keep is not None
                   else stack.enter_context(tempfile.TemporaryDirectory()))
        logs = [tmp / f"m{i}.jsonl" for i in range(members)]
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
                         "--journal", str(tmp / f"m{i}.db"), "--duration", str(seconds)],
                        stdout=out, stderr=subprocess.DEVNULL, env=env, cwd=tmp))
            if outage is not None and server is not None:
                time.sleep(outage[0])
                server.kill()
                time.sleep(outage[1])
                server.restart()
            codes = []
            for proc in procs:
                try:
                    codes.append(proc.wait(seconds + 60))
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGKILL)
                    codes.append(proc.wait())
            with urllib.request.urlopen(base + "/_sim/truth", timeout=5) as response:
                truth = dict(json.load(response))
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
        records = [e for path in logs for e in event_lines(path)]
        by_member = [_requests(tmp / f"m{i}.db") for i in range(members)]
    return Rehearsal(members, seconds, redis, outage is not None, truth, records, by_member,
                     codes)


def event_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON event lines of a monitor's output file (other lines and unreadable ones skipped)."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def _requests(journal: Path) -> dict[str, int]:
    """One bot's requests by endpoint: its journal's request samples (one per response)."""
    counts: Counter[str] = Counter()
    if not journal.exists():
        return {}
    with contextlib.closing(sqlite3.connect(journal)) as db, contextlib.suppress(sqlite3.Error):
        for (labels,) in db.execute("SELECT labels FROM samples WHERE kind = 'api' "
                                    "AND name = 'latency_ms'"):
            with contextlib.suppress(ValueError, TypeError, KeyError):
                counts[str(json.loads(labels)["endpoint"])] += 1
    return dict(sorted(counts.items()))
