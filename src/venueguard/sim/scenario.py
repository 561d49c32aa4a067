"""Scenario files: TOML schedules of faults over time.

    name = "ban-hammer"
    description = "403, then Cloudflare 522, 1010 and 1006 in turn"
    repeat_s = 150              # optional: the schedule starts over every repeat_s seconds

    [overload]                  # optional: background load shedding from t=0
    probability = 0.05
    follow_intensity = true     # 503s cluster on market bursts (or follow_load: docs/overload.md)

    [market]                    # optional: market process parameters (MarketParams)
    tau_s = 8.0                 # how long a burst takes to decay
    spread_widen_ticks = 2.0    # makers pull liquidity this far per unit of excitation

    [[burst]]                   # optional: a market burst at a scheduled time (per cycle)
    at_s = 45
    size = 8.0                  # added to the excitation: intensity jumps by this much
    move_pct = -6.0             # optional: the fair price jumps too (a flash crash)

    [[session]]                 # optional: the market's activity over the cycle, a multiplier
    at_s = 0                    # of the event rate; linear between points, flat outside them
    rate = 0.4
    name = "Asia"               # optional, for the reader

    [rates]                     # optional: per symbol, its share of --rate times this
    SOLUSDT = 0.01              # (a thin market); symbols the simulator does not run: ignored

    mark_interval_s = 5.0       # optional (top level): how often instrument rows carry the mark

    [[fault]]
    at_s = 10                   # seconds after the simulator started (per cycle)
    kind = "forbidden_403"      # any kind of venueguard.sim.faults.KINDS
    duration_s = 20             # optional; parameters sit beside kind, as in POST /_sim/faults
                                # (or in a [fault.params] table)

Shipped scenarios live in ``venueguard/sim/scenarios/NAME.toml`` and are addressed by NAME; any
other argument is read as a path. A malformed file raises :class:`ScenarioError` naming the file,
the line and the problem.

Bursts and faults share the schedule: :meth:`ScenarioRunner.due` hands out both, in time order
(a fault as :class:`~venueguard.sim.faults.FaultRequest`, a burst as :class:`MarketBurst`).
"""

from __future__ import annotations

import itertools
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from venueguard.sim.faults import FaultError, FaultRequest, parse_fault
from venueguard.sim.market import MARKET_OVERRIDES, MarketParams

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
_FAULT_HEADER = re.compile(r"^\s*\[\[\s*fault\s*\]\]")
_OVERLOAD_HEADER = re.compile(r"^\s*\[\s*overload\s*\]")
_MARKET_HEADER = re.compile(r"^\s*\[\s*market\s*\]")
_BURST_HEADER = re.compile(r"^\s*\[\[\s*burst\s*\]\]")
_RATES_HEADER = re.compile(r"^\s*\[\s*rates\s*\]")
_SESSION_HEADER = re.compile(r"^\s*\[\[\s*session\s*\]\]")
_TOP_KEYS = {"name", "description", "repeat_s", "overload", "fault", "market", "burst",
             "session", "rates", "mark_interval_s"}


class ScenarioError(ValueError):
    """A scenario that cannot be used; the message names file, line and problem."""


@dataclass(frozen=True, slots=True)
class MarketBurst:
    """A jump of ``size`` in the market excitation of ``symbol`` (None: every instrument)."""

    size: float
    symbol: str | None = None
    move_pct: float = 0.0  # the fair price jumps by this much (negative: a crash)

    @property
    def kind(self) -> str:
        return "market_burst"


@dataclass(frozen=True, slots=True)
class ScheduledFault:
    at_s: float
    request: FaultRequest


@dataclass(frozen=True, slots=True)
class ScheduledBurst:
    at_s: float
    burst: MarketBurst


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    faults: tuple[ScheduledFault, ...]
    repeat_s: float | None = None
    source: str = "<memory>"
    market: tuple[tuple[str, float], ...] = ()  # MarketParams overrides, in file order
    bursts: tuple[ScheduledBurst, ...] = ()
    sessions: tuple[tuple[float, float], ...] = ()  # (at_s, rate multiplier), by time
    rates: tuple[tuple[str, float], ...] = ()  # per-symbol rate multipliers
    mark_interval_s: float | None = None

    def market_params(self, base: MarketParams | None = None) -> MarketParams:
        """``base`` (default parameters) with this scenario's ``[market]`` overrides."""
        return (base or MarketParams()).with_overrides(dict(self.market))

    def engine_options(self) -> dict[str, Any]:
        """What the engine takes from this scenario besides ``[market]``: the activity
        profile, per-symbol rates and the mark interval (keyword arguments of ``Engine``)."""
        out: dict[str, Any] = {}
        if self.sessions:
            out["activity"] = self.activity
        if self.rates:
            out["symbol_rates"] = dict(self.rates)
        if self.mark_interval_s is not None:
            out["mark_interval_ms"] = max(1, round(self.mark_interval_s * 1000))
        return out

    def activity(self, elapsed_s: float) -> float:
        """The ``[[session]]`` rate multiplier ``elapsed_s`` after the start (1 without any)."""
        points = self.sessions
        if not points:
            return 1.0
        t = elapsed_s % self.repeat_s if self.repeat_s else elapsed_s
        if t <= points[0][0]:
            return points[0][1]
        for (t0, r0), (t1, r1) in itertools.pairwise(points):
            if t <= t1:
                return r0 + (r1 - r0) * (t - t0) / (t1 - t0) if t1 > t0 else r1
        return points[-1][1]


def shipped() -> list[str]:
    """Names of the scenarios shipped with venueguard."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))


def resolve(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    candidate = SCENARIO_DIR / f"{text}.toml"
    if "/" not in text and "\\" not in text and not text.endswith(".toml") and candidate.is_file():
        return candidate
    path = Path(text)
    if not path.is_file():
        raise ScenarioError(f"scenario {text!r} is neither a shipped scenario "
                            f"({', '.join(shipped())}) nor a readable file")
    return path


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a shipped scenario by name or a TOML file by path; raises ScenarioError."""
    path = resolve(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from None
    return parse_scenario(text, source=str(path), default_name=path.stem)


def _line_of(lines: list[str], pattern: re.Pattern[str], index: int) -> int:
    seen = -1
    for number, line in enumerate(lines, start=1):
        if pattern.match(line):
            seen += 1
            if seen == index:
                return number
    return 1


def _number(value: object, where: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScenarioError(f"{where} must be a number, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise ScenarioError(f"{where} must be {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


def parse_scenario(text: str, *, source: str = "<memory>",
                   default_name: str = "scenario") -> Scenario:
    """Parse scenario TOML text; ``source`` names the file in error messages."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: invalid TOML: {exc}") from None
    lines = text.splitlines()
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        first = next((n for n, line in enumerate(lines, 1)
                      if line.strip().split("=")[0].strip().strip("[]") in unknown), 1)
        raise ScenarioError(f"{source}:{first}: unknown key(s) {', '.join(unknown)}; "
                            f"allowed: {', '.join(sorted(_TOP_KEYS))}")
    name = doc.get("name", default_name)
    description = doc.get("description", "")
    if not isinstance(name, str) or not isinstance(description, str):
        raise ScenarioError(f"{source}:1: 'name' and 'description' must be strings")
    repeat = doc.get("repeat_s")
    repeat_s = None if repeat is None else _number(repeat, f"{source}: 'repeat_s'", positive=True)
    entries: list[ScheduledFault] = []
    overload = doc.get("overload")
    if overload is not None:
        line = _line_of(lines, _OVERLOAD_HEADER, 0)
        if not isinstance(overload, dict):
            raise ScenarioError(f"{source}:{line}: [overload] must be a table")
        entries.append(ScheduledFault(0.0, _request({"kind": "overload_503", **overload},
                                                    f"{source}:{line}")))
    raw_faults = doc.get("fault", [])
    if not isinstance(raw_faults, list):
        raise ScenarioError(f"{source}: 'fault' must be an array of tables ([[fault]])")
    for index, raw in enumerate(raw_faults):
        where = f"{source}:{_line_of(lines, _FAULT_HEADER, index)}"
        if not isinstance(raw, dict):
            raise ScenarioError(f"{where}: each [[fault]] must be a table")
        entry = dict(raw)
        if "at_s" not in entry:
            raise ScenarioError(f"{where}: [[fault]] needs 'at_s' (seconds after start)")
        at_s = _number(entry.pop("at_s"), f"{where}: 'at_s'")
        extra = entry.pop("params", {})
        if not isinstance(extra, dict):
            raise ScenarioError(f"{where}: 'params' must be a table")
        entries.append(ScheduledFault(at_s, _request({**entry, **extra}, where)))
    entries.sort(key=lambda e: e.at_s)
    market = _market(doc.get("market"), lines, source)
    bursts = sorted(_bursts(doc.get("burst", []), lines, source), key=lambda b: b.at_s)
    sessions = _sessions(doc.get("session", []), lines, source)
    last = max([e.at_s for e in entries] + [b.at_s for b in bursts] + [t for t, _ in sessions],
               default=None)
    if repeat_s is not None and last is not None and last >= repeat_s:
        raise ScenarioError(f"{source}: every at_s must be < repeat_s ({repeat_s:g})")
    rates = _rates(doc.get("rates"), lines, source)
    mark = doc.get("mark_interval_s")
    mark_s = None if mark is None else _number(mark, f"{source}: 'mark_interval_s'",
                                               positive=True)
    return Scenario(name, description, tuple(entries), repeat_s, source, market, tuple(bursts),
                    sessions, rates, mark_s)


def _sessions(raw: object, lines: list[str], source: str) -> tuple[tuple[float, float], ...]:
    if not isinstance(raw, list):
        raise ScenarioError(f"{source}: 'session' must be an array of tables ([[session]])")
    out = []
    for index, entry in enumerate(raw):
        where = f"{source}:{_line_of(lines, _SESSION_HEADER, index)}"
        if not isinstance(entry, dict):
            raise ScenarioError(f"{where}: each [[session]] must be a table")
        unknown = sorted(set(entry) - {"at_s", "rate", "name"})
        if unknown or "at_s" not in entry or "rate" not in entry:
            raise ScenarioError(f"{where}: a [[session]] has at_s and rate (and optionally "
                                f"name){'; unknown: ' + ', '.join(unknown) if unknown else ''}")
        out.append((_number(entry["at_s"], f"{where}: 'at_s'"),
                    _number(entry["rate"], f"{where}: 'rate'", positive=True)))
    if [t for t, _ in out] != sorted(t for t, _ in out):
        raise ScenarioError(f"{source}: [[session]] entries must come in time order")
    return tuple(out)


def _rates(raw: object, lines: list[str], source: str) -> tuple[tuple[str, float], ...]:
    if raw is None:
        return ()
    where = f"{source}:{_line_of(lines, _RATES_HEADER, 0)}"
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: [rates] must be a table of symbol = multiplier")
    return tuple((str(symbol).upper(), _number(value, f"{where}: [rates] {symbol!r}",
                                               positive=True))
                 for symbol, value in raw.items())


def _market(raw: object, lines: list[str], source: str) -> tuple[tuple[str, float], ...]:
    if raw is None:
        return ()
    where = f"{source}:{_line_of(lines, _MARKET_HEADER, 0)}"
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: [market] must be a table")
    unknown = sorted(set(raw) - MARKET_OVERRIDES)
    if unknown:
        raise ScenarioError(f"{where}: unknown [market] key(s) {', '.join(unknown)}; "
                            f"allowed: {', '.join(sorted(MARKET_OVERRIDES))}")
    out = tuple((k, _number(v, f"{where}: [market] {k!r}")) for k, v in raw.items())
    try:
        MarketParams().with_overrides(dict(out))
    except ValueError as exc:
        raise ScenarioError(f"{where}: {exc}") from None
    return out


def _bursts(raw: object, lines: list[str], source: str) -> list[ScheduledBurst]:
    if not isinstance(raw, list):
        raise ScenarioError(f"{source}: 'burst' must be an array of tables ([[burst]])")
    out = []
    for index, entry in enumerate(raw):
        where = f"{source}:{_line_of(lines, _BURST_HEADER, index)}"
        if not isinstance(entry, dict):
            raise ScenarioError(f"{where}: each [[burst]] must be a table")
        unknown = sorted(set(entry) - {"at_s", "size", "symbol", "move_pct"})
        if unknown or "at_s" not in entry or "size" not in entry:
            raise ScenarioError(f"{where}: a [[burst]] has at_s and size (and optionally "
                                f"symbol, move_pct)"
                                f"{'; unknown: ' + ', '.join(unknown) if unknown else ''}")
        move = entry.get("move_pct", 0.0)
        if isinstance(move, bool) or not isinstance(move, int | float) or not -50 <= move <= 50:
            raise ScenarioError(f"{where}: [[burst]] 'move_pct' must be a number in "
                                f"[-50, 50], got {move!r}")
        symbol = entry.get("symbol")
        if symbol is not None and (not isinstance(symbol, str) or not symbol):
            raise ScenarioError(f"{where}: [[burst]] 'symbol' must be a symbol name")
        out.append(ScheduledBurst(_number(entry["at_s"], f"{where}: 'at_s'"),
                                  MarketBurst(_number(entry["size"], f"{where}: 'size'",
                                                      positive=True),
                                              symbol.upper() if symbol else None,
                                              float(move))))
    return out


def _request(raw: dict[str, Any], where: str) -> FaultRequest:
    try:
        return parse_fault(raw)
    except FaultError as exc:
        raise ScenarioError(f"{where}: {exc}") from None


class ScenarioRunner:
    """Hands out scheduled faults and bursts as time passes. Call :meth:`due` with seconds
    since start."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        items: list[tuple[float, FaultRequest | MarketBurst]] = [
            (f.at_s, f.request) for f in scenario.faults]
        items += [(b.at_s, b.burst) for b in scenario.bursts]
        items.sort(key=lambda item: item[0])  # stable: faults before bursts at the same time
        self._items = items
        self._next = 0
        self._cycle = 0

    def due(self, elapsed_s: float) -> list[FaultRequest | MarketBurst]:
        out: list[FaultRequest | MarketBurst] = []
        items = self._items
        repeat = self.scenario.repeat_s
        while items:
            if self._next >= len(items):
                if repeat is None:
                    break
                self._next = 0
                self._cycle += 1
            at = items[self._next][0] + (self._cycle * repeat if repeat else 0.0)
            if at > elapsed_s:
                break
            out.append(items[self._next][1])
            self._next += 1
        return out
