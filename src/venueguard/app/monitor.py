"""``venueguard monitor``: the main job (see ``docs/commands/monitor.md``).

With no arguments it starts the embedded simulator with the scenario ``503-lesson``, connects to
it, serves the dashboard on http://127.0.0.1:8765 (metrics on /metrics), journals to
``./venueguard.db`` and prints a one-line live status. Once listening it logs ``monitor.ready``
with ``dashboard_url`` and ``metrics_url``. ``--duration``, SIGINT and SIGTERM stop it cleanly
(exit 0): the strategy stops first (a trader cancels and disarms its dead man's switch), then
the journal is flushed and everything closes.

What runs, supervised in one TaskGroup (a component that fails is reported with a critical
alert while the others keep running, and the exit code is then 1):

- the market-data session (websocket: book, trades, liveness), see :mod:`venueguard.app.feeds`;
- the REST health probe (:mod:`venueguard.app.probe`): ``GET /instrument`` every few seconds on
  any venue; on the simulator only, also a tiny post-only order far from the market, cancelled
  at once, because the simulator (like BitMEX) sheds load only on new orders and amends;
- the one-second tick (:class:`venueguard.app.ticker.Ticker`): snapshots and predictor, regime,
  liveness alerts, market metrics, dashboard series, journal samples, the status line;
- the journal writer (:mod:`venueguard.app.recorder`: samples and every event, for
  ``venueguard report``);
- with ``--trade demo``, the trader made by ``venueguard.app.demo.create_trader(ctx)`` (imported
  only then; see :class:`Trader` and :class:`MonitorContext`). The monitor pauses it after 3
  failed reconnects and while the regime is SAFE.

Exit codes: 0 stopped cleanly, 1 a component failed while running or the trader's journal and
the venue disagreed after reconciliation (a position mismatch: critical alert, safe mode,
``monitor.halted``), 2 could not start (bad options, journal unusable, port taken, predictor
not loadable).

Options may also come from ``venueguard.toml`` (:mod:`venueguard.config`): thresholds
(``[thresholds]``), alert routing (``[alerts]``) and chat notifications (``[notify.*]``).
``--host`` chooses the dashboard's bind address (loopback by default; any other address prints
a warning, since the dashboard has no authentication). ``--rules FILE`` merges a failure-rules
file over the defaults.

Environment: ``VENUEGUARD_API_KEY`` / ``VENUEGUARD_API_SECRET`` (for real venues only: with
``--venue sim`` the simulator's own documented pair is used, or ``VENUEGUARD_SIM_API_KEY`` /
``VENUEGUARD_SIM_API_SECRET`` for a simulator started with other credentials; the user's key is
never sent to it, and ``monitor.credentials`` says so once), ``VENUEGUARD_ALERT_WEBHOOK``
(alerts are also POSTed there as JSON), ``VENUEGUARD_PREDICTOR`` (see
:mod:`venueguard.app.predictor`), ``VENUEGUARD_SIM_SEED``
(the embedded simulator's seed, default 1).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import ipaddress
import logging
import os
import signal
import sqlite3
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO, cast
from urllib.parse import urlsplit

from venueguard.app.dashboard import DashboardServer, create_dashboard_app, start_dashboard
from venueguard.app.predictor import Predictor, PredictorLoadError, load_predictor
from venueguard.app.recorder import Recorder
from venueguard.app.status import StatusAwareStream, StatusLine
from venueguard.app.stop_deadline import StopDeadline
from venueguard.app.ticker import MarketInput, Ticker, TickerParts, VenueInput
from venueguard.cli import MAX_SEED
from venueguard.config import Settings, Thresholds
from venueguard.core.regime import RegimeConfig, RegimeDetector
from venueguard.core.rules import RulesError, RuleSet, load_rules
from venueguard.core.snapshots import SnapshotConfig, SnapshotManager
from venueguard.io.clock import SYSTEM_CLOCK, Clock
from venueguard.io.errors import ConfigError as VenueguardConfigError
from venueguard.io.journal import Journal, JournalError
from venueguard.io.journal_lock import JournalLock
from venueguard.numbers import NumberError, read_int, url_port
from venueguard.telemetry.alerts import Alerts, LogSink, Tier, WebhookSink
from venueguard.telemetry.chat import ChatSink, sinks_from_settings
from venueguard.telemetry.events import EventLog
from venueguard.telemetry.metrics import Metrics
from venueguard.telemetry.series import SeriesStore
from venueguard.venues.bitmex import signing
from venueguard.venues.bitmex.rules import bitmex_rules

VENUE_URLS: Mapping[str, tuple[str, str]] = {
    "bitmex": ("https://www.bitmex.com", "wss://ws.bitmex.com/realtime"),
    "bitmex-testnet": ("https://testnet.bitmex.com", "wss://ws.testnet.bitmex.com/realtime"),
}
BINANCE_VENUE_NAMES = frozenset({"binance-usdm", "binance-usdm-testnet"})  # native, watch only
STOP_TIMEOUT_S = 10.0
# From a stop request to the process's end, at most (the trader's stop included): past it the
# process exits with code 1 (see venueguard.app.stop_deadline).
STOP_DEADLINE_S = STOP_TIMEOUT_S + 4.0
# One snapshot a second; a book older than 5 s is not the present market for a model (the
# session's own stall detection, 10 s by default, decides when to reconnect).
SNAPSHOT_CONFIG = SnapshotConfig(interval_s=1.0, window_s=10.0, max_data_age_s=5.0)


class StartupError(VenueguardConfigError):
    """The monitor cannot start with these options; the message says why."""


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    venue: str = "sim"
    symbol: str = "XBTUSD"
    sim_url: str | None = None  # an external simulator; None = start the embedded one
    scenario: str = "503-lesson"
    sim_seed: int = 1
    journal: Path = Path("venueguard.db")
    host: str = "127.0.0.1"
    port: int = 8765
    log_format: str = "pretty"
    trade: str = "none"
    duration_s: float | None = None
    api_key: str | None = None
    api_secret: str | None = field(default=None, repr=False)
    api_password: str | None = field(default=None, repr=False)  # ccxt venues that need one
    webhook_url: str | None = field(default=None, repr=False)
    predictor: str | None = None
    rules: RuleSet | None = None  # --rules FILE merged over BitMEX's table; None: that table
    rules_text: str | None = field(default=None, repr=False)  # the file, for a ccxt venue's table
    rules_path: str | None = None
    sim_credentials: bool = False  # --venue sim set aside the user's VENUEGUARD_API_KEY
    probe_interval_s: float = 5.0
    order_probe_interval_s: float = 2.0
    redis_url: str | None = None  # a fleet on Redis (venueguard.fleet); None: alone
    fleet_size: int | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    alert_dedup_window_s: float = 60.0
    alert_min_tier: str = "info"
    notify: Mapping[str, Mapping[str, object]] = field(default_factory=dict, repr=False)
    log_level: str = "info"
    metrics_venue_label: bool = False
    native_streams: bool = True  # ccxt:bitmex / ccxt:binanceusdm read by venueguard's sessions

    @property
    def loopback_only(self) -> bool:
        """True when the dashboard binds a loopback address only."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def regime_config(self) -> RegimeConfig:
        t, base = self.thresholds, RegimeConfig()
        return RegimeConfig(safe_enter=t.safe_mode_enter, safe_exit=t.safe_mode_exit,
                            cautious_enter=min(base.cautious_enter, t.safe_mode_enter),
                            cautious_exit=min(base.cautious_exit, t.safe_mode_exit))

    @property
    def is_sim(self) -> bool:
        return self.venue == "sim"

    @property
    def is_ccxt(self) -> bool:
        return self.venue.startswith("ccxt:")

    @property
    def is_binance(self) -> bool:
        return self.venue in BINANCE_VENUE_NAMES

    @property
    def embedded_sim(self) -> bool:
        return self.is_sim and self.sim_url is None


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def _check_sim_url(url: str) -> None:
    """A simulator's URL: http:// on a loopback name, its port (if written) a real port."""
    try:
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname
    except ValueError:  # an unbalanced [v6] bracket
        scheme, host = "", None
    if scheme != "http" or host not in LOOPBACK_NAMES:
        raise StartupError("--sim-url must be a loopback http:// URL (the simulator binds "
                           f"127.0.0.1), not {url!r}")
    try:
        url_port(url)
    except NumberError as exc:
        raise StartupError(f"--sim-url: {exc}") from None


def config_from_args(args: argparse.Namespace, env: Mapping[str, str]) -> MonitorConfig:
    """Validate the command line and the environment; raises StartupError with the reason."""
    venue = str(args.venue)
    sim_url = (args.sim_url or "").rstrip("/") or None
    ccxt_venue = venue.startswith("ccxt:")
    binance = venue in BINANCE_VENUE_NAMES
    if sim_url is not None and venue != "sim" and not ccxt_venue and not binance:
        raise StartupError("--sim-url needs --venue sim, binance-usdm[-testnet] or "
                           "--venue ccxt:EXCHANGE_ID")
    if binance and args.trade == "demo":
        raise StartupError(f"--trade demo is not available on {venue} (watch only)")
    symbol = args.symbol or ("BTCUSDT" if binance else "XBTUSD")
    if sim_url is not None:
        _check_sim_url(sim_url)
    if args.duration is not None and not args.duration > 0:
        raise StartupError("--duration must be a positive number of seconds")
    if not 0 <= int(args.port) <= 65535:
        raise StartupError("--port must be within 0..65535")
    key = env.get("VENUEGUARD_API_KEY") or None
    secret = env.get("VENUEGUARD_API_SECRET") or None
    if (key is None) != (secret is None):
        raise StartupError("set both VENUEGUARD_API_KEY and VENUEGUARD_API_SECRET, or neither")
    # A simulator gets its own documented key pair, never the user's real one.
    to_sim = venue == "sim" or (ccxt_venue and sim_url is not None)
    sim_credentials = to_sim and key is not None
    if to_sim:
        key = env.get("VENUEGUARD_SIM_API_KEY") or signing.TEST_API_KEY
        secret = env.get("VENUEGUARD_SIM_API_SECRET") or signing.TEST_API_SECRET
    if ccxt_venue:
        from venueguard.app.ccxt_feeds import check_venue

        try:
            check_venue(venue)
        except Exception as exc:  # ConfigError: one line that names the fix
            raise StartupError(str(exc)) from None
    if venue != "sim" and args.trade == "demo" and key is None:
        raise StartupError("--trade demo on a real venue needs VENUEGUARD_API_KEY and "
                           "VENUEGUARD_API_SECRET")
    redis_url = getattr(args, "redis_url", None) or None
    if redis_url is not None:
        from venueguard.fleet.redis_backend import check_redis_url

        try:
            check_redis_url(redis_url)
        except ValueError as exc:
            raise StartupError(f"--redis: {exc}") from None
    fleet_size = getattr(args, "fleet_size", None)
    if fleet_size is not None and (redis_url is None or fleet_size < 1):
        raise StartupError("--fleet-size needs --redis and must be >= 1")
    if redis_url is not None and fleet_size is None:
        # without it, a member that cannot reach Redis at start would take the whole limit
        raise StartupError("--redis needs --fleet-size N (the processes sharing this account: "
                           "while Redis is unreachable each uses 1/N of the limits)")
    try:
        seed = read_int(env.get("VENUEGUARD_SIM_SEED", "1"), low=0, high=MAX_SEED)
    except NumberError as exc:
        raise StartupError(f"VENUEGUARD_SIM_SEED {exc}") from None
    rules_path = getattr(args, "rules", None)
    rules, rules_text = _read_rules(rules_path)
    settings = getattr(args, "settings", None)
    if not isinstance(settings, Settings):
        settings = Settings(None)
    alerts = settings.table("alerts")
    thresholds = Thresholds.from_settings(settings)
    config = MonitorConfig(
        venue=venue, symbol=str(symbol).upper(), sim_url=sim_url,
        scenario=str(args.scenario), sim_seed=seed, journal=Path(args.journal),
        host=str(getattr(args, "host", None) or "127.0.0.1"),
        port=int(args.port), log_format=str(args.log_format), trade=str(args.trade),
        duration_s=args.duration, api_key=key, api_secret=secret,
        api_password=env.get("VENUEGUARD_API_PASSWORD") or None,
        webhook_url=(env.get("VENUEGUARD_ALERT_WEBHOOK") or _str_or_none(alerts["webhook_url"])),
        predictor=getattr(args, "predictor", None) or env.get("VENUEGUARD_PREDICTOR") or None,
        thresholds=thresholds, alert_dedup_window_s=float(str(alerts["dedup_window_s"])),
        alert_min_tier=str(alerts["min_tier"]),
        notify={name: settings.table(name) for name in
                ("notify", "notify.slack", "notify.discord", "notify.telegram")},
        log_level=str(settings.value("monitor", "log_level")),
        metrics_venue_label=settings.value("monitor", "metrics_venue_label") is True,
        rules=rules, rules_text=rules_text, rules_path=rules_path,
        sim_credentials=sim_credentials, redis_url=redis_url,
        fleet_size=fleet_size, native_streams=env.get("VENUEGUARD_NATIVE_STREAMS", "1") != "0")
    try:
        config.regime_config()
    except ValueError as exc:
        raise StartupError(f"thresholds: {exc}") from None
    return config


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _read_rules(path: str | None) -> tuple[RuleSet | None, str | None]:
    """The ``--rules`` file merged over BitMEX's table (what the native sessions classify with),
    and its text (a ``ccxt:`` venue merges it over that venue's own table); StartupError naming
    file, line, problem."""
    if path is None:
        return None, None
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StartupError(f"--rules {path}: cannot read: {exc}") from None
    try:
        return load_rules(text, path, base=bitmex_rules()), text
    except RulesError as exc:
        raise StartupError(f"--rules: {exc}") from None


# -- the seams: market data, REST, trader --------------------------------------------------
class MarketSource(Protocol):
    """The market-data side as the monitor sees it (an adapter over the session)."""

    async def run(self) -> None: ...

    def market_input(self, now: float) -> MarketInput: ...


class VenueSource(Protocol):
    """The REST side: the health probe loop and the venue health state."""

    async def run(self) -> None: ...

    def venue_input(self, now: float, wall_s: float) -> VenueInput: ...

    async def aclose(self) -> None: ...


class Trader(Protocol):
    """A strategy the monitor runs with ``--trade demo``."""

    async def run(self) -> None: ...

    def pause(self, reason: str) -> None: ...

    def resume(self) -> None: ...

    async def stop(self) -> None: ...

    def state(self) -> Mapping[str, object]: ...


@dataclass(slots=True)
class MonitorContext:
    """Everything a trader may use; ``market``/``rest`` are the live session objects."""

    config: MonitorConfig
    events: EventLog
    metrics: Metrics
    alerts: Alerts
    journal: Journal
    clock: Clock
    rest_url: str
    ws_url: str
    market: Any = None
    rest: Any = None
    regime: Callable[[], str] = lambda: "NORMAL"
    on_request: Callable[[str, int | None, float | None, float], None] | None = None
    fleet: Any = None  # a venueguard.fleet.Fleet with --redis (shared limits, bans, owner)
    instrument: Any = None  # the symbol's instrument row read at startup, when one came


@dataclass(slots=True)
class Endpoints:
    rest_url: str  # base URL, e.g. http://127.0.0.1:PORT (REST is under /api/v1)
    ws_url: str


SourceFactory = Callable[[MonitorContext], Awaitable[tuple[MarketSource, VenueSource]]]


class _Stop(Exception):
    """Raised inside the TaskGroup to end it: a signal, or --duration elapsed."""


class JournalFailed(Exception):
    """A database error while the journal was being written: the run cannot go on."""


def _database_error(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) is a journal or SQLite error."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, JournalFailed | JournalError | sqlite3.Error):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class Monitor:
    """One monitor run; ``await Monitor(config).run()`` returns the exit code."""

    def __init__(self, config: MonitorConfig, *, stdout: TextIO | None = None,
                 stderr: TextIO | None = None, clock: Clock = SYSTEM_CLOCK,
                 sources: SourceFactory | None = None, exit_on_overrun: bool = False) -> None:
        self.config = config
        self.clock = clock
        self._stderr = stderr or sys.stderr
        self.status = StatusLine(self._stderr)
        logging.getLogger("venueguard").setLevel(config.log_level.upper())
        stream = cast(TextIO, StatusAwareStream(stdout or sys.stdout, self.status))
        self.events = EventLog(stream,
                               fmt=config.log_format,
                               wall_clock=lambda: clock.wall_ms() / 1000.0)
        if config.api_secret:
            self.events.register_secret(config.api_secret)
        self.metrics = Metrics(venue=config.venue if config.metrics_venue_label else None)
        self.series = SeriesStore()
        self.alerts = Alerts([LogSink(self.events)], metrics=self.metrics,
                             wall_clock=lambda: clock.wall_ms() / 1000.0,
                             dedup_window_s=config.alert_dedup_window_s,
                             min_tier=Tier(config.alert_min_tier))
        self._webhook: WebhookSink | None = None
        if config.webhook_url:
            self._webhook = WebhookSink(config.webhook_url)
            self.alerts.add_sink(self._webhook)
        self.chat_sinks: list[ChatSink] = sinks_from_settings(config.notify,
                                                              clock=clock.monotonic)
        for sink in self.chat_sinks:
            self.alerts.add_sink(sink)
        self._sources = sources
        self.trader: Trader | None = None
        self.ticker: Ticker | None = None
        self.failures: list[str] = []
        self.stop_reason = "stopped"
        self.journal_error: str | None = None
        self.dashboard: DashboardServer | None = None
        self.ready = False  # monitor.ready was logged
        self._sim_started: dict[str, object] | None = None
        self.scenario: str | None = None  # what the simulator runs (monitor.ready), if known
        self.signals_installed: list[signal.Signals] = []
        self._stop: asyncio.Event | None = None
        # the command exits the process past the deadline; a run inside a program re-cancels
        self.stop_deadline = StopDeadline(
            STOP_DEADLINE_S, on_slow=self._slow_stop, stderr=self._stderr,
            exit_process=os._exit if exit_on_overrun else None)

    # -- lifecycle -----------------------------------------------------------------------------
    async def run(self) -> int:
        """Run until ``--duration``, SIGINT/SIGTERM or :meth:`request_stop`; the exit code."""
        stop = self._stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, self.request_stop, signum.name)
                self.signals_installed.append(signum)
        try:
            return await self._run(stop)
        except StartupError as exc:
            if self.config.log_format == "json":  # for tools; a person reads the line below
                self.events.emit("monitor.error", error=str(exc))
            self.status.close(f"venueguard monitor: {exc}")
            return 2
        finally:
            for signum in self.signals_installed:
                loop.remove_signal_handler(signum)
            self.signals_installed.clear()
            self.stop_deadline.disarm(keep_watchdog=True)

    def request_stop(self, reason: str = "requested") -> None:
        """Stop cleanly (what SIGINT and SIGTERM do); safe to call more than once. The process
        ends within ``STOP_DEADLINE_S`` of the first call, whatever happens while stopping."""
        if self._stop is not None and not self._stop.is_set():
            self.stop_reason = reason
            self._stop.set()
            self.stop_deadline.arm()

    def _slow_stop(self, names: list[str]) -> None:
        self.events.emit("monitor.stop_slow", tasks=names)

    async def _run(self, stop: asyncio.Event) -> int:
        cfg = self.config
        if cfg.sim_credentials:
            self.events.emit("monitor.credentials", venue="sim",
                             message="using the simulator's own key pair; VENUEGUARD_API_KEY "
                                     "is kept for real venues and not sent to the simulator")
        try:
            predictor = load_predictor(cfg.predictor)
        except PredictorLoadError as exc:
            raise StartupError(str(exc)) from exc
        try:
            lock = JournalLock.acquire(cfg.journal)  # one process per journal
        except JournalError as exc:
            raise StartupError(f"journal {exc}") from exc
        except OSError as exc:
            raise StartupError(f"journal {cfg.journal}: cannot take its lock: {exc}") from exc
        try:
            journal = Journal.open(cfg.journal, wall_clock=lambda: self.clock.wall_ms() / 1000.0)
        except (JournalError, OSError) as exc:
            lock.release()
            raise StartupError(f"journal {cfg.journal}: {exc}") from exc
        recorder = Recorder(journal)
        self.events.subscribe(recorder.on_event)
        try:
            async with contextlib.AsyncExitStack() as stack:
                await self._open_dashboard(stack)
                endpoints = await self._endpoints(stack)
                ctx = MonitorContext(cfg, self.events, self.metrics, self.alerts, journal,
                                     self.clock, endpoints.rest_url, endpoints.ws_url)
                ctx.fleet = await self._join_fleet(stack)
                market, venue = await self._open_sources(ctx, stack)
                ticker = self.ticker = self._make_ticker(predictor, recorder)
                ctx.regime = lambda: ticker.p.regime.regime.value
                if ctx.fleet is not None:
                    self._share_status(ctx, ticker)
                ctx.on_request = ticker.on_request
                if cfg.trade == "demo":
                    self.trader = self._make_trader(ctx)
                self._announce_ready()
                code = await self._supervise_all(stop, market, venue, recorder)
                await self._stop_trader()
                return 1 if self._halted() else code
        finally:
            if self.ready:  # it was running (monitor.ready was logged)
                self.events.emit("monitor.stopped", reason=self.stop_reason,
                                 failures=list(self.failures))
            self.events.unsubscribe(recorder.on_event)
            await recorder.flush()
            if self.journal_error is not None:
                self.status.close(f"venueguard monitor: the journal {cfg.journal} failed "
                                  f"({self.journal_error}); the run stopped")
            elif recorder.write_errors:
                self.status.close(f"journal: {recorder.write_errors} write errors "
                                  f"({recorder.last_error})")
            journal.close()
            lock.release()
            if self._webhook is not None:
                await self._webhook.aclose()
            for sink in self.chat_sinks:
                await sink.aclose()
            self.status.close()

    async def _endpoints(self, stack: contextlib.AsyncExitStack) -> Endpoints:
        cfg = self.config
        if cfg.sim_url is not None:  # an external simulator: ask it what it runs
            self.scenario = await external_scenario(cfg.sim_url)
        if cfg.is_ccxt:  # ccxt knows the venue's own URLs; a simulator replaces them
            if cfg.sim_url is None:
                return Endpoints(cfg.venue, cfg.venue)
            return Endpoints(cfg.sim_url, cfg.sim_url.replace("http://", "ws://", 1)
                             + "/realtime")
        if cfg.is_binance:
            from venueguard.app.binance_feeds import endpoints

            return Endpoints(*endpoints(cfg.venue, cfg.sim_url))
        if not cfg.is_sim:
            rest, ws = VENUE_URLS[cfg.venue]
            return Endpoints(rest, ws)
        if cfg.sim_url is not None:
            return Endpoints(cfg.sim_url, cfg.sim_url.replace("http://", "ws://", 1)
                             + "/realtime")
        from venueguard.sim.server import SimConfig, SimServer

        try:
            server = SimServer(SimConfig(seed=cfg.sim_seed, symbols=(cfg.symbol,),
                                         scenario=cfg.scenario))
        except Exception as exc:  # a bad scenario name or file: say which and why
            detail = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            raise StartupError(f"simulator: {detail}") from exc
        try:
            base = await server.start()
        except OSError as exc:
            raise StartupError(f"simulator: cannot listen: {exc.strerror or exc}") from exc
        stack.push_async_callback(server.stop)
        runner = server.scenario_runner
        self.scenario = runner.scenario.name if runner is not None else None
        # logged with monitor.ready, after the dashboard's URL (_announce_ready)
        self._sim_started = {"url": base, "scenario": self.scenario, "seed": cfg.sim_seed}
        return Endpoints(base, server.ws_url)

    async def _join_fleet(self, stack: contextlib.AsyncExitStack) -> Any:
        """With --redis: the link to the other processes on this account (closed last)."""
        cfg = self.config
        if cfg.redis_url is None:
            return None
        try:
            from venueguard.fleet import Fleet, FleetConfig

            fleet = Fleet(FleetConfig(redis_url=cfg.redis_url,
                                      venue="bitmex" if cfg.is_sim else cfg.venue,
                                      fleet_size=cfg.fleet_size),
                          api_key=cfg.api_key, events=self.events, clock=self.clock)
        except ImportError as exc:
            raise StartupError(f"--redis: {exc}") from exc
        await fleet.start()
        stack.push_async_callback(fleet.aclose)
        self.events.emit("fleet.joined", member=fleet.member, degraded=fleet.degraded)
        return fleet

    def _share_status(self, ctx: MonitorContext, ticker: Ticker) -> None:
        """Publish this member's regime, venue health and resting orders; trade on the
        fleet's regime (its most cautious member's)."""
        fleet = ctx.fleet

        def local_regime() -> str:
            return ticker.p.regime.regime.value

        def status() -> dict[str, object]:
            # "resting" comes from the trader's order runtime (``Fleet.publish_resting``)
            state = self._trader_state()
            health = getattr(getattr(ctx.rest, "health", None), "state", None)
            out: dict[str, object] = {
                "regime": local_regime(),
                "health": health.value if health is not None else "HEALTHY"}
            position = state.get("position")
            if state.get("ready") and isinstance(position, int | float):
                out["positions"] = {self.config.symbol: position}   # the account check's
            return out

        fleet.set_status(status)
        ctx.regime = lambda: str(fleet.regime(local_regime()))

    async def _open_sources(self, ctx: MonitorContext, stack: contextlib.AsyncExitStack
                            ) -> tuple[MarketSource, VenueSource]:
        factory = self._sources
        if factory is None and self.config.is_ccxt:
            from venueguard.app.ccxt_feeds import open_sources as open_ccxt_sources

            factory = open_ccxt_sources
        if factory is None and self.config.is_binance:
            from venueguard.app.binance_feeds import open_sources as open_binance_sources

            factory = open_binance_sources
        if factory is None:
            from venueguard.app.feeds import open_sources

            factory = open_sources
        try:
            market, venue = await factory(ctx)
        except StartupError:  # already one line in the user's terms (e.g. an unknown symbol)
            raise
        except VenueguardConfigError as exc:  # a setting the venue refused: its own words
            raise StartupError(str(exc)) from exc
        except Exception as exc:  # anything else: name it, exit 2
            raise StartupError(f"cannot open the venue's sessions: {type(exc).__name__}: {exc}"
                               ) from exc
        stack.push_async_callback(venue.aclose)
        return market, venue

    def _make_ticker(self, predictor: Predictor, recorder: Recorder) -> Ticker:
        now = self.clock.monotonic()
        ticker = Ticker(TickerParts(
            symbol=self.config.symbol, events=self.events, metrics=self.metrics,
            series=self.series, alerts=self.alerts,
            snapshots=SnapshotManager(self.config.symbol, SNAPSHOT_CONFIG, start=now),
            predictor=predictor,
            regime=RegimeDetector(self.config.regime_config(), now=now), status=self.status,
            recorder=recorder,
            venue_name=self.config.venue, trading=self.config.trade,
            on_pause=self._pause_trader, on_resume=self._resume_trader,
            extra_state=self._trader_state, started_at=now, clock=self.clock.monotonic))
        self.events.subscribe(ticker.on_event)
        return ticker

    def _make_trader(self, ctx: MonitorContext) -> Trader:
        try:
            demo = importlib.import_module("venueguard.app.demo")
            trader: Trader = demo.create_trader(ctx)
        except Exception as exc:
            raise StartupError(f"--trade demo: {type(exc).__name__}: {exc}") from exc
        return trader

    def _pause_trader(self, reason: str) -> None:
        if self.trader is not None:
            self.trader.pause(reason)

    def _resume_trader(self) -> None:
        if self.trader is not None:
            self.trader.resume()

    def _trader_state(self) -> Mapping[str, object]:
        if self.trader is None:
            return {}
        try:
            return dict(self.trader.state())
        except Exception:  # the dashboard must keep working whatever the trader does
            return {}

    def _dashboard_state(self) -> dict[str, object]:
        if self.ticker is None:  # the page says "no answer from the monitor" until then
            raise RuntimeError("the monitor is still starting")
        return self.ticker.state(self.clock.wall_ms() / 1000.0)

    async def _open_dashboard(self, stack: contextlib.AsyncExitStack) -> None:
        """Listen first: a port in use fails before anything else starts."""
        cfg = self.config
        app = create_dashboard_app(self._dashboard_state,
                                   self.metrics, series=self.series, events=self.events,
                                   wall_clock=lambda: self.clock.wall_ms() / 1000.0,
                                   allowed_hosts=[cfg.host])  # requests may name --host
        try:
            self.dashboard = await start_dashboard(app, host=cfg.host, port=cfg.port)
        except OSError as exc:
            raise StartupError(f"dashboard port {cfg.port} on {cfg.host}: {exc.strerror or exc}"
                               ) from exc
        if not cfg.loopback_only:
            warning = (f"the dashboard and /metrics on {cfg.host}:{self.dashboard.port} have no "
                       "authentication: anyone who can reach this address can read them")
            self.events.emit("monitor.warning", message=warning, host=cfg.host)
            print(f"venueguard monitor: warning: {warning}", file=self._stderr, flush=True)
        stack.push_async_callback(self.dashboard.close)

    def _announce_ready(self) -> None:
        """Everything runs: with --log-format pretty the dashboard's URL comes first (a
        person's first useful line), then ``sim.started`` and ``monitor.ready``."""
        assert self.dashboard is not None
        self.ready = True
        if self.config.log_format == "pretty":
            print(f"venueguard monitor: dashboard {self.dashboard.url} (Ctrl-C stops)",
                  file=self._stderr, flush=True)
        if self._sim_started is not None:
            self.events.emit("sim.started", **self._sim_started)
        self.events.emit("monitor.ready", dashboard_url=self.dashboard.url,
                         metrics_url=self.dashboard.metrics_url, venue=self.config.venue,
                         symbol=self.config.symbol, journal=str(self.config.journal),
                         scenario=self.scenario,
                         trade=self.config.trade)

    async def _supervise_all(self, stop: asyncio.Event, market: MarketSource,
                             venue: VenueSource, recorder: Recorder) -> int:
        tasks: list[tuple[str, Awaitable[None]]] = [
            ("market", market.run()), ("probe", venue.run()),
            ("tick", self._tick_loop(market, venue)), ("journal", self._flush_loop(recorder))]
        if self.trader is not None:
            tasks.append(("trader", self.trader.run()))
        try:
            async with asyncio.TaskGroup() as group:
                for name, coro in tasks:
                    group.create_task(self._supervised(name, coro), name=f"monitor-{name}")
                group.create_task(self._until_stop(stop), name="monitor-stop")
        except* _Stop:
            pass
        return 1 if self.failures else 0

    async def _supervised(self, name: str, coro: Awaitable[None]) -> None:
        try:
            await coro
        except Exception as exc:  # reported, never unhandled; the others keep running
            self.failures.append(name)
            error = f"{type(exc).__name__}: {exc}"[:500]
            self.events.emit("monitor.task_failed", task=name, error=error)
            self.alerts.fire(Tier.CRITICAL, f"monitor component {name} stopped: {error}",
                             now=self.clock.monotonic(), key=f"monitor.{name}")
            if _database_error(exc):
                self._journal_failed(error)

    def _journal_failed(self, error: str) -> None:
        """A database error: nothing more can be recorded, so the run ends (non-zero), after
        the trader is paused (no new orders) and then stopped (its open orders cancelled)."""
        if self.journal_error is not None:
            return
        self.journal_error = error
        self._pause_trader("journal failed")
        self.alerts.fire(Tier.CRITICAL, f"journal {self.config.journal} failed: {error}; "
                         "stopping (open orders are cancelled)",
                         now=self.clock.monotonic(), key="monitor.journal")
        self.request_stop("journal_error")

    async def _until_stop(self, stop: asyncio.Event) -> None:
        if self.config.duration_s is None:
            await stop.wait()
        else:
            try:
                async with asyncio.timeout(self.config.duration_s):
                    await stop.wait()
            except TimeoutError:
                self.stop_reason = "duration"
        self.stop_deadline.arm()
        raise _Stop

    def _halted(self) -> bool:
        """Whether the trader's journal and the venue disagreed after reconciliation in this
        run (reported once as ``monitor.halted``; the exit code is then 1)."""
        halts = self._trader_state().get("halts")
        if not isinstance(halts, list) or not halts:
            return False
        self.failures.append("reconcile")
        self.events.emit("monitor.halted", reasons=[str(h)[:200] for h in halts[:10]])
        return True

    async def _stop_trader(self) -> None:
        if self.trader is None:
            return
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await self.trader.stop()
        except Exception as exc:  # TimeoutError included: report and go on closing
            self.failures.append("trader.stop")
            self.events.emit("monitor.task_failed", task="trader.stop",
                             error=f"{type(exc).__name__}: {exc}"[:500])

    async def _tick_loop(self, market: MarketSource, venue: VenueSource) -> None:
        ticker = self.ticker
        assert ticker is not None
        while True:
            delay = ticker.p.snapshots.next_deadline() - self.clock.monotonic()
            await asyncio.sleep(max(0.0, delay))
            now = self.clock.monotonic()
            wall_s = self.clock.wall_ms() / 1000.0
            ticker.tick(now, wall_s, market.market_input(now), venue.venue_input(now, wall_s),
                        self.metrics.snapshot())

    async def _flush_loop(self, recorder: Recorder, interval_s: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval_s)
            await recorder.flush()
            if recorder.write_errors:
                raise JournalFailed(recorder.last_error or "write error")


async def external_scenario(sim_url: str, timeout_s: float = 3.0) -> str | None:
    """The scenario an external simulator runs, from its control API (``GET /_sim/faults``);
    None when it does not say (an older simulator, a proxy, no answer): then none is claimed."""
    import aiohttp

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as s, \
                s.get(sim_url.rstrip("/") + "/_sim/faults") as resp:
            body = await resp.json(content_type=None) if resp.status == 200 else None
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    scenario = body.get("scenario") if isinstance(body, dict) else None
    return scenario if isinstance(scenario, str) else None


def run(args: argparse.Namespace) -> int:
    """Entry point of ``venueguard monitor``."""
    try:
        config = config_from_args(args, os.environ)
    except StartupError as exc:
        print(f"venueguard monitor: {exc}", file=sys.stderr)
        return 2
    monitor = Monitor(config, exit_on_overrun=True)
    try:
        return asyncio.run(monitor.run())
    finally:
        monitor.stop_deadline.disarm()
