"""Demo bots sharing one account: do they keep to their own orders, and what do they get done?

Runs :func:`venueguard.fleet.rehearsal.rehearse`: a simulator (``venueguard sim --scenario
calm --rest-limit LIMIT``), a redis-server (unless ``--no-redis``) and MEMBERS ``venueguard
monitor --trade demo`` processes on the simulator's one key, for SECONDS; with ``--outage``
Redis is killed a third of the way in and restarted at two thirds. Prints, from the venue's
ground truth and the bots' event logs and journals (one JSON line):

- orders placed (``POST /order`` answered 200), all requests, and 429s at the venue;
- useful share: order writes (place, cancel, amend) among all REST requests the venue answered;
- account-wide cancels (``DELETE /order/all``) and orders cancelled by the dead man's switch;
- position mismatches (``reconcile.mismatch`` kind ``position``), halts (``monitor.halted``),
  and bots that did not exit 0;
- the venue's answers by endpoint, and each bot's requests by endpoint (``by_member``).

    .venv/bin/python bench/fleet_demo.py [--members 4] [--seconds 60] [--rest-limit 60]
                                         [--outage] [--no-redis] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from venueguard.fleet.rehearsal import rehearse


def run(members: int, seconds: float, limit: int, outage: bool, redis: bool,
        keep: Path | None = None) -> dict[str, Any]:
    return rehearse(members, seconds, limit, redis=redis, keep=keep,
                    outage=(seconds / 3, seconds / 3) if outage else None).summary()


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
