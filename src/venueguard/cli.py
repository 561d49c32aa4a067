"""The `venueguard` command: argument parsing only; each subcommand lives in its own module.

Each subcommand module exposes ``run(args: argparse.Namespace) -> int`` and is imported lazily so
that ``venueguard sim`` does not pay for the monitor's imports and vice versa.

Every option also reads an environment variable and a key of the config file (see
:mod:`venueguard.config`); :func:`venueguard.config.annotate` appends the default, the variable
and the key to each option's help, so a new option needs only its ``add_argument`` line.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from venueguard import config

_COMMANDS = {
    "monitor": "venueguard.app.monitor",
    "sim": "venueguard.sim.cli",
    "chaos": "venueguard.app.chaos",
    "report": "venueguard.app.report",
    "gym-eval": "venueguard.gym.evaluate",
}
REPORT_EXTRA_HINT = ("venueguard report needs matplotlib, which the 'report' extra installs: "
                     "pip install 'venueguard[report]'")


def _venue(text: str) -> str:
    """``--venue``: a native venue, or ``ccxt:EXCHANGE_ID`` (checked when the monitor starts)."""
    if text in ("sim", "bitmex", "bitmex-testnet", "binance-usdm", "binance-usdm-testnet"):
        return text
    if text.startswith("ccxt:") and len(text) > len("ccxt:"):
        return text
    raise argparse.ArgumentTypeError(
        f"invalid venue {text!r} (choose sim, bitmex, bitmex-testnet, binance-usdm, "
        "binance-usdm-testnet or ccxt:EXCHANGE_ID)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="venueguard",
        description="Keep a trading bot honest about a venue that fails.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    mon = sub.add_parser("monitor", help="watch a venue: dashboard, metrics, journal, status line")
    mon.add_argument("--venue", type=_venue, default="sim",
                     help="where to connect: the embedded simulator, a BitMEX venue, a "
                          "Binance USD-M venue (binance-usdm[-testnet], watch only, no ccxt "
                          "needed), or any ccxt exchange as ccxt:EXCHANGE_ID (e.g. ccxt:bitmex)")
    mon.add_argument("--sim-url", default=None, help="use an external simulator at this URL")
    mon.add_argument("--symbol", default=None,
                     help="instrument to watch (XBTUSD; BTCUSDT on binance-usdm)")
    mon.add_argument("--duration", type=config.positive_float, default=None, metavar="SECONDS",
                     help="stop cleanly after this many seconds")
    mon.add_argument("--journal", default="./venueguard.db", metavar="PATH",
                     help="SQLite journal of events and samples (for venueguard report)")
    mon.add_argument("--host", default="127.0.0.1",
                     help="address the dashboard and /metrics bind to (the dashboard has no "
                          "authentication: bind beyond loopback only on a trusted network)")
    mon.add_argument("--port", type=config.port_number, default=8765,
                     help="dashboard port (0 = any free port)")
    mon.add_argument("--log-format", choices=["json", "pretty"], default="pretty",
                     help="events on stdout as JSON lines or as readable lines")
    mon.add_argument("--scenario", default="503-lesson", metavar="NAME|PATH",
                     help="embedded simulator's fault scenario (shipped name or TOML file)")
    mon.add_argument("--trade", choices=["none", "demo"], default="none",
                     help="none: watch only; demo: place and cancel small orders around mid")
    mon.add_argument("--rules", default=None, metavar="FILE",
                     help="a rules file (TOML) merged over the default failure rules")
    mon.add_argument("--predictor", default=None, metavar="MODULE:ATTR|NAME",
                     help="snapshot predictor (the built-in one when unset)")
    mon.add_argument("--redis", dest="redis_url", default=None, metavar="redis://HOST:PORT/DB",
                     help="share rate limits, bans and the dead man's switch with the other "
                          "processes on this account (docs/scaling.md)")
    mon.add_argument("--fleet-size", type=int, default=None, metavar="N",
                     help="with --redis: processes assumed while Redis is unreachable (each "
                          "then uses 1/N of the limits; unset: the most seen at once)")

    sim = sub.add_parser("sim", help="run the BitMEX-speaking simulator alone")
    sim.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sim.add_argument("--port", type=config.port_number, default=0,
                     help="port to listen on (0 = any free port)")
    sim.add_argument("--scenario", default="calm", metavar="NAME|PATH",
                     help="fault scenario (shipped name or TOML file)")
    sim.add_argument("--seed", type=int, default=1, help="random seed (same seed, same run)")
    sim.add_argument("--symbols", default=None,
                     help="comma-separated, e.g. XBTUSD,ETHUSD (XBTUSD when unset; BTCUSDT with "
                          "--dialect binance-usdm)")
    sim.add_argument("--rate", type=float, default=50.0, metavar="MSGS_PER_S",
                     help="market-data messages per second per symbol")
    sim.add_argument("--book-format", choices=["modern", "legacy"], default="modern",
                     help="orderBookL2 rows: modern (price on every row) or legacy (ids "
                          "encode the price)")
    sim.add_argument("--replay", default=None, metavar="FILE.jsonl",
                     help="serve recorded websocket messages instead of the market process")
    sim.add_argument("--replay-speed", type=float, default=1.0,
                     help="1 = recorded pace, 0 = as fast as possible")
    sim.add_argument("--api-key", default=None,
                     help="the account's API key (a documented test pair when unset)")
    sim.add_argument("--api-secret", default=None, help="the account's API secret")
    sim.add_argument("--rest-limit", type=int, default=None, metavar="PER_MINUTE",
                     help="REST requests a minute per API key (BitMEX's 120 when unset)")
    sim.add_argument("--dialect", choices=["bitmex", "binance-usdm"], default="bitmex",
                     help="binance-usdm also serves Binance USD-M futures under /fapi and /ws "
                          "next to BitMEX (docs/binance-dialect.md)")

    chaos = sub.add_parser("chaos", help="seeded fault schedules checked against the invariants")
    chaos.add_argument("--seeds", type=int, default=20, help="how many seeded schedules to run")
    chaos.add_argument("--first-seed", type=int, default=1, help="seed of the first schedule")
    chaos.add_argument("--scenario", default=None, metavar="NAME|PATH",
                       help="run this scenario instead of generated fault schedules")

    rep = sub.add_parser("report", help="offline outage report from a journal")
    rep.add_argument("journal", metavar="JOURNAL", help="journal written by venueguard monitor")
    rep.add_argument("--out", default="./venueguard-report", metavar="DIR",
                     help="directory for report.html and the plots")

    gym = sub.add_parser("gym-eval", help="policies in a perfect and a faulty venue "
                                          "(needs venueguard[gym])")
    gym.add_argument("--seeds", type=int, default=5, help="episodes per policy and mode")
    gym.add_argument("--first-seed", type=int, default=1, help="seed of the first episode")
    gym.add_argument("--steps", type=int, default=3000, help="steps per episode (100 ms each)")
    gym.add_argument("--policy", action="append", default=None, metavar="mm|random|MOD:ATTR",
                     help="repeatable; unset: mm and random")
    gym.add_argument("--modes", default="perfect,faulty",
                     help="comma-separated venue modes: perfect, faulty")
    gym.add_argument("--scenario", action="append", default=None, metavar="NAME|PATH",
                     help="faulty mode's scenarios (repeatable; unset: 503-lesson, flaky-acks)")
    gym.add_argument("--plot", default="gym-eval.png", metavar="PATH",
                     help="where the PNG goes ('' for none)")

    cfg = sub.add_parser("config", help="the configuration file (venueguard.toml)")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    show = cfg_sub.add_parser("show", help="print the effective configuration, secrets masked")
    show.add_argument("--config", dest="config_path", default=None, metavar="PATH",
                      help=f"the TOML file to read (default: unset; env: {config.CONFIG_ENV})")
    config.annotate(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(arguments)
    try:
        args = config.resolve(build_parser, args, arguments, os.environ)
    except config.ConfigError as exc:
        print(f"venueguard: {exc}", file=sys.stderr)
        return 2
    if args.command == "config":
        return config.run_show(build_parser, args)
    try:
        module = importlib.import_module(_COMMANDS[args.command])
    except ImportError as exc:  # an optional extra is missing
        if args.command == "report" and (getattr(exc, "name", None) or "").startswith(
                "matplotlib"):
            print(REPORT_EXTRA_HINT, file=sys.stderr)
        else:  # e.g. gym-eval: venueguard[gym]
            print(f"venueguard {args.command}: {exc}", file=sys.stderr)
        return 2
    try:
        code: int = module.run(args)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
