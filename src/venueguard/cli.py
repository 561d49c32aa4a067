"""The `venueguard` command: argument parsing only; each subcommand lives in its own module.

Each subcommand module exposes ``run(args: argparse.Namespace) -> int`` and is imported lazily so
that ``venueguard sim`` does not pay for the monitor's imports and vice versa.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

_COMMANDS = {
    "monitor": "venueguard.app.monitor",
    "sim": "venueguard.sim.cli",
    "chaos": "venueguard.app.chaos",
    "report": "venueguard.app.report",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="venueguard",
        description="Keep a trading bot honest about a venue that fails.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    mon = sub.add_parser("monitor", help="watch a venue: dashboard, metrics, journal, status line")
    mon.add_argument("--venue", choices=["sim", "bitmex", "bitmex-testnet"], default="sim")
    mon.add_argument("--sim-url", default=None, help="use an external simulator at this URL")
    mon.add_argument("--symbol", default="XBTUSD")
    mon.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                     help="stop cleanly after this many seconds")
    mon.add_argument("--journal", default="./venueguard.db", metavar="PATH")
    mon.add_argument("--port", type=int, default=8765, help="dashboard port (0 = any free port)")
    mon.add_argument("--log-format", choices=["json", "pretty"], default="pretty")
    mon.add_argument("--scenario", default="503-lesson", metavar="NAME|PATH")
    mon.add_argument("--trade", choices=["none", "demo"], default="none")
    mon.add_argument("--predictor", default=None, metavar="MODULE:ATTR|NAME",
                     help="snapshot predictor (default: $VENUEGUARD_PREDICTOR or the built-in)")
    mon.add_argument("--redis", default=None, metavar="redis://HOST:PORT/DB",
                     help="share rate limits, bans and the dead man's switch with the other "
                          "processes on this account (docs/scaling.md)")
    mon.add_argument("--fleet-size", type=int, default=None, metavar="N",
                     help="with --redis: processes assumed while Redis is unreachable (each "
                          "then uses 1/N of the limits; default: the most seen at once)")

    sim = sub.add_parser("sim", help="run the BitMEX-speaking simulator alone")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=0, help="0 = any free port")
    sim.add_argument("--scenario", default="calm", metavar="NAME|PATH")
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--symbols", default="XBTUSD", help="comma-separated, e.g. XBTUSD,ETHUSD")
    sim.add_argument("--rate", type=float, default=50.0, metavar="MSGS_PER_S",
                     help="market-data messages per second per symbol")
    sim.add_argument("--book-format", choices=["modern", "legacy"], default="modern")
    sim.add_argument("--replay", default=None, metavar="FILE.jsonl")
    sim.add_argument("--replay-speed", type=float, default=1.0,
                     help="1 = recorded pace, 0 = as fast as possible")
    sim.add_argument("--api-key", default=None)
    sim.add_argument("--api-secret", default=None)
    sim.add_argument("--rest-limit", type=int, default=None, metavar="PER_MINUTE",
                     help="REST requests a minute per API key (default: BitMEX's 120)")

    chaos = sub.add_parser("chaos", help="seeded fault schedules checked against the invariants")
    chaos.add_argument("--seeds", type=int, default=20)
    chaos.add_argument("--first-seed", type=int, default=1)
    chaos.add_argument("--scenario", default=None, metavar="NAME|PATH")

    rep = sub.add_parser("report", help="offline outage report from a journal")
    rep.add_argument("journal", metavar="JOURNAL")
    rep.add_argument("--out", required=True, metavar="DIR")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module = importlib.import_module(_COMMANDS[args.command])
    try:
        code: int = module.run(args)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
