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
from venueguard.numbers import float_arg, int_arg

_COMMANDS = {
    "monitor": "venueguard.app.monitor",
    "sim": "venueguard.sim.cli",
    "proxy": "venueguard.proxy.cli",
    "chaos": "venueguard.app.chaos",
    "report": "venueguard.app.report",
    "gym-eval": "venueguard.gym.evaluate",
}
# Ranges of the numeric options (each refusal states its range). The simulator's rate is capped
# where one engine step still holds a bounded number of market events, so a process asked for
# more stays responsive to signals and its memory bounded (docs/commands/sim.md).
MAX_SIM_RATE = 1_000_000.0
MAX_REPLAY_SPEED = 10_000.0
MAX_REST_LIMIT = 1_000_000
MAX_SEED = 2**63 - 1
MAX_RUNS = 100_000
MAX_GYM_STEPS = 10_000_000
MAX_FLEET_SIZE = 10_000
MAX_DURATION_S = 1e9
port_number = int_arg(0, 65535)
MONITOR_REFUSES = """\
It refuses, in one line on stderr naming the problem (exit status 2, nothing
started):
  - a number that is not plain ASCII digits, not finite, or out of range (the
    message states the option's range); an unknown --venue, --log-format or
    --trade value;
  - --sim-url that is not a loopback http:// URL (its port, if written, from 1
    to 65535), or given with a venue other than sim, binance-usdm[-testnet] or
    ccxt:ID;
  - a --symbol the venue does not list (the message names the ones it lists);
  - a ccxt exchange id ccxt does not know, one without websocket support, or
    ccxt older than 4.5;
  - --trade demo on a real venue without VENUEGUARD_API_KEY and
    VENUEGUARD_API_SECRET;
  - --fleet-size without --redis, --redis without --fleet-size, or a --redis
    URL that is not redis://HOST:PORT/DB;
  - a --rules or --config file it cannot read or with a bad value (it names the
    file, line and key);
  - a journal another monitor holds (it names the holder); a --port in use.
--host beyond loopback is allowed with a warning: the dashboard has no
authentication.
"""
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

    mon = sub.add_parser("monitor", help="watch a venue: dashboard, metrics, journal, status line",
                         epilog=MONITOR_REFUSES,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    mon.add_argument("--venue", type=_venue, default="sim",
                     metavar="sim|bitmex|bitmex-testnet|binance-usdm|binance-usdm-testnet|ccxt:ID",
                     help="where to connect: sim (the embedded simulator, or the one at "
                          "--sim-url), bitmex, bitmex-testnet, binance-usdm[-testnet] (watch "
                          "only, no ccxt needed), or any ccxt exchange as ccxt:EXCHANGE_ID "
                          "(e.g. ccxt:bitmex, ccxt:binanceusdm)")
    mon.add_argument("--sim-url", default=None, help="use an external simulator at this URL")
    mon.add_argument("--symbol", default=None,
                     help="instrument to watch (XBTUSD; BTCUSDT on binance-usdm)")
    mon.add_argument("--duration", type=float_arg(above=0, high=MAX_DURATION_S), default=None,
                     metavar="SECONDS",
                     help="stop cleanly after this many seconds")
    mon.add_argument("--journal", default="./venueguard.db", metavar="PATH",
                     help="SQLite journal of events and samples (for venueguard report)")
    mon.add_argument("--host", default="127.0.0.1",
                     help="address the dashboard and /metrics bind to (the dashboard has no "
                          "authentication: bind beyond loopback only on a trusted network)")
    mon.add_argument("--port", type=port_number, default=8765,
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
    mon.add_argument("--fleet-size", type=int_arg(1, MAX_FLEET_SIZE), default=None, metavar="N",
                     help="with --redis (required): the processes sharing this account; "
                          "while Redis is unreachable each uses 1/N of the limits")

    sim = sub.add_parser("sim", help="run the BitMEX-speaking simulator alone")
    sim.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sim.add_argument("--port", type=port_number, default=0,
                     help="port to listen on (0 = any free port)")
    sim.add_argument("--scenario", default="calm", metavar="NAME|PATH",
                     help="fault scenario (shipped name or TOML file)")
    sim.add_argument("--seed", type=int_arg(0, MAX_SEED), default=1,
                     help="random seed (same seed, same run)")
    sim.add_argument("--symbols", default=None,
                     help="comma-separated, e.g. XBTUSD,ETHUSD (XBTUSD when unset; BTCUSDT with "
                          "--dialect binance-usdm)")
    sim.add_argument("--rate", type=float_arg(above=0, high=MAX_SIM_RATE), default=50.0,
                     metavar="MSGS_PER_S",
                     help="market-data messages per second in all, shared evenly among the "
                          "symbols (a scenario's [rates] scales a symbol's share)")
    sim.add_argument("--book-format", choices=["modern", "legacy"], default="modern",
                     help="orderBookL2 rows: modern (price on every row) or legacy (ids "
                          "encode the price)")
    sim.add_argument("--replay", default=None, metavar="FILE.jsonl",
                     help="serve recorded websocket messages instead of the market process")
    sim.add_argument("--replay-speed", type=float_arg(0, MAX_REPLAY_SPEED), default=1.0,
                     help="1 = recorded pace, 0 = as fast as possible")
    sim.add_argument("--api-key", default=None,
                     help="the account's API key (a documented test pair when unset)")
    sim.add_argument("--api-secret", default=None, help="the account's API secret")
    sim.add_argument("--rest-limit", type=int_arg(1, MAX_REST_LIMIT), default=None,
                     metavar="PER_MINUTE",
                     help="REST requests a minute per API key (BitMEX's 120 when unset)")
    sim.add_argument("--dialect", choices=["bitmex", "binance-usdm"], default="bitmex",
                     help="binance-usdm also serves Binance USD-M futures under /fapi and /ws "
                          "next to BitMEX (docs/binance-dialect.md)")

    proxy = sub.add_parser("proxy", help="reverse proxy in front of any venue: faults on demand "
                                         "and guarding for any bot (docs/commands/proxy.md)")
    proxy.add_argument("--upstream", default=None, metavar="URL",
                       help="the venue's REST origin, e.g. https://testnet.bitmex.com")
    proxy.add_argument("--ws-upstream", default=None, metavar="URL",
                       help="the venue's websocket origin (unset: --upstream with ws/wss)")
    proxy.add_argument("--dialect", choices=["bitmex", "binance-usdm", "generic"],
                       default="bitmex", help="what the proxy knows of the venue's messages")
    proxy.add_argument("--host", default="127.0.0.1", help="address to listen on")
    proxy.add_argument("--port", type=port_number, default=0,
                       help="port to listen on (0 = any free port)")
    proxy.add_argument("--scenario", default=None, metavar="NAME|PATH",
                       help="a fault scenario to play (shipped name or TOML file)")
    proxy.add_argument("--seed", type=int_arg(0, MAX_SEED), default=1,
                       help="seed of the faults' draws")
    proxy.add_argument("--guard", action="store_true",
                       help="classify every answer, log events, serve /metrics")
    proxy.add_argument("--dashboard-port", type=port_number, default=None,
                       metavar="PORT", help="with --guard: the live dashboard on this port "
                                            "(0 = any free port)")
    proxy.add_argument("--journal", default=None, metavar="PATH",
                       help="with --guard: the journal venueguard report reads "
                            "(default ./venueguard-proxy.db)")
    proxy.add_argument("--no-journal", action="store_true",
                       help="with --guard: keep no journal")
    proxy.add_argument("--ws-silence-s", type=float_arg(above=0, high=MAX_DURATION_S),
                       default=None, metavar="SECONDS",
                       help="close a client's stream when its upstream sent no data this long")
    proxy.add_argument("--redis", default=None, metavar="redis://HOST:PORT/DB",
                       help="share the account's limits, cooldowns and bans with other members")
    proxy.add_argument("--log-format", choices=["json", "pretty"], default="json",
                       help="event log format on stdout")

    chaos = sub.add_parser("chaos", help="seeded fault schedules checked against the invariants")
    chaos.add_argument("--seeds", type=int_arg(1, MAX_RUNS), default=20,
                       help="how many seeded schedules to run")
    chaos.add_argument("--first-seed", type=int_arg(0, MAX_SEED), default=1,
                       help="seed of the first schedule")
    chaos.add_argument("--scenario", default=None, metavar="NAME|PATH",
                       help="run this scenario instead of generated fault schedules")
    chaos.add_argument("--venue", default="sim",
                       choices=["sim", "ccxt:bitmex", "ccxt:binanceusdm"],
                       help="sim: the native stack; ccxt:ID: a guarded ccxt bot of that class")
    chaos.add_argument("--kinds", default=None, metavar="KIND[,KIND...]",
                       help="draw faults of these kinds only (names of the control API)")
    chaos.add_argument("--trace", default=None, metavar="FILE",
                       help="write every seed's history (plan, event log, outcome) as JSON lines")
    chaos.add_argument("--sockets", action="store_true",
                       help="run on loopback sockets and the real clock instead of virtual time")
    chaos.add_argument("--workers", type=int_arg(1, 256), default=None, metavar="N",
                       help="processes for virtual-time seeds (default: the usable CPUs)")
    chaos.add_argument("--fleet", type=int_arg(2, 16), default=None, metavar="N",
                       help="N order runtimes as members of one fleet on one account "
                            "(native venue)")

    rep = sub.add_parser("report", help="offline outage report from a journal")
    rep.add_argument("journal", metavar="JOURNAL", help="journal written by venueguard monitor")
    rep.add_argument("--out", default="./venueguard-report", metavar="DIR",
                     help="directory for report.html and the plots")

    gym = sub.add_parser("gym-eval", help="policies in a perfect and a faulty venue "
                                          "(needs venueguard[gym])")
    gym.add_argument("--seeds", type=int_arg(1, MAX_RUNS), default=5,
                     help="episodes per policy and mode")
    gym.add_argument("--first-seed", type=int_arg(0, MAX_SEED), default=1,
                     help="seed of the first episode")
    gym.add_argument("--steps", type=int_arg(1, MAX_GYM_STEPS), default=3000,
                     help="steps per episode (100 ms each)")
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
    except config.ConfigFileError as exc:
        print(f"venueguard: {exc}", file=sys.stderr)
        return 2
    if args.command == "config":
        return config.run_show(build_parser, args)
    try:  # Ctrl-C at any point, the imports included, ends quietly with 130
        return _run_command(args)
    except KeyboardInterrupt:
        return 130


def _run_command(args: argparse.Namespace) -> int:
    try:
        module = importlib.import_module(_COMMANDS[args.command])
    except ImportError as exc:  # an optional extra is missing
        if args.command == "report" and (getattr(exc, "name", None) or "").startswith(
                "matplotlib"):
            print(REPORT_EXTRA_HINT, file=sys.stderr)
        else:  # e.g. gym-eval: venueguard[gym]
            print(f"venueguard {args.command}: {exc}", file=sys.stderr)
        return 2
    code: int = module.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
