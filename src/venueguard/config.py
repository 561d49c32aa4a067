"""``venueguard.toml``: one file for every command's options, thresholds and alert sinks.

The file is chosen with ``--config PATH`` or ``VENUEGUARD_CONFIG``; nothing is read otherwise.
Each value comes from the first of: the command line, the option's environment variable, the
config file, the built-in default.

Layout (the full reference is ``docs/configuration.md``)::

    [monitor]               # one table per command; a key per option, named after the option
    venue = "sim"           # --venue        (e.g. "ccxt:binanceusdm" where that venue exists)
    port = 8765             # --port         (dashboard and /metrics)
    host = "127.0.0.1"      # --host
    redis_url = "redis://127.0.0.1:6379/0"

    [thresholds]            # what counts as stale, slow or overloaded
    freshness_s = { orderBookL2 = 10.0, quote = 30.0 }

    [freshness]             # each channel learns its own stale threshold (false: the static ones)
    learned = true
    suspicion = 8.0

    [alerts]                # routing of alerts
    dedup_window_s = 60.0

    [notify.slack]          # one table per chat service
    webhook_url = "https://hooks.slack.com/services/..."

Command tables are derived from the argument parser: an option ``--foo-bar`` of ``venueguard
monitor`` is the key ``foo_bar`` of ``[monitor]`` and the environment variable
``VENUEGUARD_FOO_BAR`` (``VENUEGUARD_SIM_FOO_BAR`` for ``venueguard sim``; other commands
likewise). Adding a CLI option therefore adds its key, its environment variable and its help
suffix; a key with no option yet (or none ever) is one line in :data:`EXTRA_KEYS`.

Unknown tables or keys and values of the wrong type are one-line errors naming the file and
the line (:class:`ConfigFileError`). ``venueguard config show`` prints the effective values with
secrets masked.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from venueguard.core.freshness import FreshnessConfig
from venueguard.errors import ConfigError as ConfigError  # re-exported: the base of ConfigFileError
from venueguard.telemetry.events import REDACTED, is_secret_key

CONFIG_ENV = "VENUEGUARD_CONFIG"
ENV_PREFIX = "VENUEGUARD_"
# Options whose values never leave the process unmasked (besides secret-named keys).
SECRET_KEYS = frozenset({"api_key", "api_secret", "webhook_url", "redis_url", "bot_token"})
_NO_FILE_KEY = frozenset({"help", "config_path"})


class ConfigFileError(ConfigError, ValueError):
    """A bad config file, key or value; ``str()`` is one line naming the file and line.

    A :class:`venueguard.ConfigError` (so one ``except ConfigError`` covers bad arguments and bad
    settings alike), and a ``ValueError`` as it always was."""


@dataclass(frozen=True, slots=True)
class Key:
    """A config key without a CLI option: its type, default and one line of help."""

    type: str  # "str" | "int" | "float" | "bool" | "list[str]" | "table[float]"
    default: object
    help: str
    choices: tuple[str, ...] = ()
    positive: bool = False  # numbers only: 0 is refused too (a threshold of 0 s means nothing)


# Tables and keys that no command-line option provides. Adding a key is one line here. When an
# option with the same dest appears later (``--redis-url`` -> ``redis_url``), the option wins:
# its type and choices check the value and it reaches ``args`` like any option.
EXTRA_KEYS: dict[str, dict[str, Key]] = {
    "monitor": {
        "log_level": Key("str", "info", "level of the venueguard.* loggers",
                         ("debug", "info", "warning", "error")),
        "metrics_venue_label": Key("bool", False, "add a venue label (the --venue value) to "
                                   "every exported metric"),
    },
    "thresholds": {
        "freshness_s": Key("table[float]", {"orderBookL2": 10.0, "quote": 30.0,
                                            "instrument": 60.0},
                           "per channel (table name): seconds without data before the stream "
                           "is stale", positive=True),
        "default_freshness_s": Key("float", 10.0, "the same for channels not listed",
                                   positive=True),
        "heartbeat_ping_after_s": Key("float", 5.0, "send a ping after this much silence",
                                      positive=True),
        "heartbeat_pong_timeout_s": Key("float", 5.0, "reconnect when the pong is this late",
                                        positive=True),
        "ws_backoff_base_s": Key("float", 0.25, "first websocket reconnect delay",
                                 positive=True),
        "ws_backoff_cap_s": Key("float", 30.0, "longest websocket reconnect delay (at least "
                                "ws_backoff_base_s)", positive=True),
        "rest_backoff_base_s": Key("float", 0.25, "first REST retry delay", positive=True),
        "rest_backoff_cap_s": Key("float", 5.0, "longest REST retry delay (at least "
                                  "rest_backoff_base_s)", positive=True),
        "retry_budget_ratio": Key("float", 0.1, "REST retries allowed per request sent"),
        "safe_mode_enter": Key("float", 30.0, "overload score (weighted failures per minute) "
                               "that enters SAFE mode"),
        "safe_mode_exit": Key("float", 10.0, "score below which SAFE mode starts recovering "
                              "(below safe_mode_enter)"),
    },
    "freshness": {
        "learned": Key("bool", True, "learn each channel's stale threshold from its own rhythm "
                       "(false: the static [thresholds] freshness_s)"),
        "suspicion": Key("float", 8.0, "stale once a silence this long has a probability below "
                         "10^-suspicion under the channel's learned model (phi)"),
        "floor_s": Key("float", 1.0, "a learned threshold is never shorter"),
        "max_s": Key("float", 120.0, "a learned threshold is never longer"),
    },
    "alerts": {
        "dedup_window_s": Key("float", 60.0, "repeats of one alert key inside this window are "
                              "counted, not delivered"),
        "min_tier": Key("str", "info", "alerts below this tier are dropped",
                        ("info", "warning", "critical")),
        "webhook_url": Key("str", None, "POST every alert as generic JSON to this URL"),
    },
    "notify": {
        "rate_limit_per_minute": Key("int", 20, "at most this many messages per service per "
                                     "minute; the rest are counted and summarised",
                                     positive=True),
        "dedup_window_s": Key("float", 300.0, "one message per alert key in this window"),
    },
    "notify.slack": {
        "webhook_url": Key("str", None, "Slack incoming-webhook URL"),
        "min_tier": Key("str", "warning", "lowest tier sent", ("info", "warning", "critical")),
    },
    "notify.discord": {
        "webhook_url": Key("str", None, "Discord webhook URL"),
        "min_tier": Key("str", "warning", "lowest tier sent", ("info", "warning", "critical")),
    },
    "notify.telegram": {
        "bot_token": Key("str", None, "Telegram bot token"),
        "chat_id": Key("str", None, "chat to post to"),
        "api_url": Key("str", "https://api.telegram.org", "Bot API base URL"),
        "min_tier": Key("str", "warning", "lowest tier sent", ("info", "warning", "critical")),
    },
}


def env_name(command: str, dest: str) -> str:
    """The environment variable of an option: ``VENUEGUARD_PORT``, ``VENUEGUARD_SIM_PORT``."""
    middle = "" if command == "monitor" else f"{command.upper().replace('-', '_')}_"
    return f"{ENV_PREFIX}{middle}{dest.upper()}"


def is_secret(key: str) -> bool:
    return key in SECRET_KEYS or is_secret_key(key)


# -- reading the file ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ConfigFile:
    """A parsed, not yet validated file: its path, text and tables."""

    path: Path
    text: str
    data: Mapping[str, object]

    def where(self, table: str, key: str | None = None) -> str:
        return f"{self.path}:{_line_of(self.text, table, key)}"


def load_file(path: str | Path) -> ConfigFile:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(f"{p}: cannot read: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        raise ConfigFileError(f"{p}:{line.group(1) if line else 1}: not valid TOML: "
                          f"{str(exc).split(' (at')[0]}") from None
    return ConfigFile(p, text, data)


def _line_of(text: str, table: str, key: str | None) -> int:
    """The line of ``key`` in ``[table]`` (or of the table header); 1 when not found."""
    current = ""
    header_line = 0
    parts = table.split(".")
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        header = re.match(r"^\[\s*([^\]]+?)\s*\]", line)
        if header:
            current = header.group(1).replace('"', "").replace(" ", "")
            if current == table and header_line == 0:
                header_line = number
                if key is None:
                    return number
            continue
        if key is None:
            # a table written inline or dotted, e.g. notify.slack = {...}
            if current == "" and re.match(rf"^{re.escape(parts[0])}\s*[.=]", line):
                return number
            continue
        if current == table and re.match(rf'^"?{re.escape(key)}"?\s*=', line):
            return number
        if current == ".".join(parts[:-1]) and re.match(
                rf'^"?{re.escape(parts[-1])}"?\s*\.\s*"?{re.escape(key)}"?\s*=', line):
            return number
    return header_line or 1


# -- the effective settings ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Settings:
    """Validated values of the non-option tables (and ``monitor`` extras), defaults filled."""

    path: Path | None
    tables: Mapping[str, Mapping[str, object]] = field(default_factory=dict)

    def table(self, name: str) -> dict[str, object]:
        values = {key: spec.default for key, spec in EXTRA_KEYS.get(name, {}).items()}
        values.update(self.tables.get(name, {}))
        return values

    def value(self, table: str, key: str) -> object:
        return self.table(table)[key]


def _check_extra(cf: ConfigFile, table: str, key: str, value: object) -> object:
    spec = EXTRA_KEYS[table][key]
    where = cf.where(table, key)
    bad = f"{where}: {table}.{key} must be {_describe(spec)}, not {value!r}"
    if spec.type == "str":
        if not isinstance(value, str):
            raise ConfigFileError(bad)
        if spec.choices and value not in spec.choices:
            raise ConfigFileError(f"{where}: {table}.{key} must be one of "
                              f"{', '.join(spec.choices)}, not {value!r}")
        return value
    if spec.type == "int":
        if isinstance(value, bool) or not isinstance(value, int) \
                or value < (1 if spec.positive else 0):
            raise ConfigFileError(bad)
        return value
    if spec.type == "float":
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value) or value < 0 or (spec.positive and value == 0):
            raise ConfigFileError(bad)
        return float(value)
    if spec.type == "bool":
        if not isinstance(value, bool):
            raise ConfigFileError(bad)
        return value
    if spec.type == "list[str]":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigFileError(bad)
        return list(value)
    if spec.type == "table[float]":
        if not isinstance(value, dict) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                and v > 0 for v in value.values()):
            raise ConfigFileError(bad)
        return {str(k): float(v) for k, v in value.items()}
    raise AssertionError(spec.type)


def _describe(spec: Key) -> str:
    if spec.type == "float" and spec.positive:
        return "a number greater than 0"
    if spec.type == "int":
        return "a whole number of at least 1" if spec.positive else "a whole number of at least 0"
    return {"str": "a string", "float": "a number of at least 0",
            "bool": "true or false", "list[str]": "a list of strings",
            "table[float]": "a table of numbers greater than 0"}.get(spec.type, spec.type)


# Thresholds that only make sense together: (lower key, higher key, how they must compare).
_ORDERED = (("ws_backoff_base_s", "ws_backoff_cap_s", "at least"),
            ("rest_backoff_base_s", "rest_backoff_cap_s", "at least"),
            ("safe_mode_exit", "safe_mode_enter", "below"))


def _check_pairs(cf: ConfigFile, values: Mapping[str, object]) -> None:
    """The cross-key rules of ``[thresholds]``, named by key (defaults fill what is unset)."""
    table = {key: spec.default for key, spec in EXTRA_KEYS["thresholds"].items()}
    table.update(values)
    for low, high, how in _ORDERED:
        a, b = table[low], table[high]
        assert isinstance(a, float | int) and isinstance(b, float | int)
        if (how == "below" and not a < b) or (how == "at least" and not b >= a):
            shown = (f"thresholds.{low} must be below thresholds.{high}" if how == "below"
                     else f"thresholds.{high} must be at least thresholds.{low}")
            first, second = (low, high) if how == "below" else (high, low)
            given = first if first in values else second  # the line of the key named first
            raise ConfigFileError(f"{cf.where('thresholds', given)}: {shown} ({low} = {a:g}, "
                              f"{high} = {b:g})")


def _tables(data: Mapping[str, object]) -> Iterable[tuple[str, str, object]]:
    """``(table, key, value)`` for every value, with ``notify.slack`` style nesting flattened."""
    for name, body in data.items():
        if not isinstance(body, dict):
            yield "", name, body
            continue
        for key, value in body.items():
            nested = f"{name}.{key}"
            if isinstance(value, dict) and nested in EXTRA_KEYS:
                for inner, item in value.items():
                    yield nested, inner, item
            else:
                yield name, key, value


# -- argparse glue -------------------------------------------------------------------------------
def _option_actions(sub: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in sub._actions
            if a.option_strings and a.dest not in _NO_FILE_KEY and a.dest != argparse.SUPPRESS]


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def annotate(parser: argparse.ArgumentParser) -> None:
    """Give every subcommand ``--config`` and every option a help suffix with its default and
    environment variable (options added later by anyone get the same)."""
    for command, sub in subparsers(parser).items():
        if command == "config":
            continue
        sub.add_argument("--config", dest="config_path", default=None, metavar="PATH",
                         help=f"read option values from this TOML file (default: unset; "
                              f"env: {CONFIG_ENV})")
        for action in _option_actions(sub):
            default = action.default
            shown = "unset" if default is None else default
            if is_secret(action.dest) and default:
                shown = REDACTED
            text = (action.help or action.dest.replace("_", " ")).rstrip()
            action.help = (f"{text} (default: {shown}; env: {env_name(command, action.dest)}; "
                           f"config: [{command}] {action.dest})").replace("%", "%%")


def _explicit(build: Callable[[], argparse.ArgumentParser], argv: Sequence[str]) -> set[str]:
    """The option dests given on the command line (not left at their defaults)."""
    probe = build()
    for sub in subparsers(probe).values():
        for action in sub._actions:
            if action.option_strings:
                action.default = argparse.SUPPRESS
    namespace, _ = probe.parse_known_args(list(argv))
    return set(vars(namespace))


def _convert(action: argparse.Action, value: object, where: str) -> object:
    """A file or environment value checked like argparse checks the command line."""
    label = f"{where}: {action.dest}"
    if isinstance(action, argparse._AppendAction):  # a repeatable option: a list in the file
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            raise ConfigFileError(f"{label} must be a list, not {value!r}")
        single = argparse.Action(action.option_strings, action.dest,
                                 type=action.type if callable(action.type) else None,
                                 choices=action.choices)
        return [_convert(single, item, where) for item in items]
    if action.nargs == 0:  # store_true / store_false
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off", ""):
                return False
        if not isinstance(value, bool):
            raise ConfigFileError(f"{label} must be true or false, not {value!r}")
        return value
    kind = action.type
    if callable(kind):  # numbers too: venueguard.numbers' readers take the text of the value
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigFileError(f"{label}: must be a single value, not {value!r}")
        try:
            value = kind(str(value))
        except (TypeError, ValueError, argparse.ArgumentTypeError) as exc:
            raise ConfigFileError(f"{label}: {exc}") from None
    elif not isinstance(value, str):
        raise ConfigFileError(f"{label} must be a string, not {value!r}")
    if action.choices is not None and value not in action.choices:
        raise ConfigFileError(f"{label} must be one of {', '.join(map(str, action.choices))}, "
                          f"not {value!r}")
    return value


def resolve(build: Callable[[], argparse.ArgumentParser], args: argparse.Namespace,
            argv: Sequence[str], env: Mapping[str, str]) -> argparse.Namespace:
    """Fill ``args`` from the environment and the config file where the command line is
    silent, and attach the validated :class:`Settings` as ``args.settings``."""
    parser = build()
    commands = subparsers(parser)
    path = getattr(args, "config_path", None) or env.get(CONFIG_ENV) or None
    cf = load_file(path) if path else None
    file_values: dict[tuple[str, str], object] = {}
    extra: dict[str, dict[str, object]] = {}
    if cf is not None:
        for table, key, value in _tables(cf.data):
            if table == "":
                raise ConfigFileError(f"{cf.where(key)}: unknown table or key {key!r} (known "
                                  f"tables: {', '.join(sorted(known_tables(parser)))})")
            if table not in known_tables(parser):
                raise ConfigFileError(f"{cf.where(table)}: unknown table [{table}] (known: "
                                  f"{', '.join(sorted(known_tables(parser)))})")
            sub = commands.get(table)
            dests = {a.dest: a for a in _option_actions(sub)} if sub is not None else {}
            if key in EXTRA_KEYS.get(table, {}) and key not in dests:  # an option wins
                extra.setdefault(table, {})[key] = _check_extra(cf, table, key, value)
                continue
            if key not in dests:
                known = sorted(set(dests) | set(EXTRA_KEYS.get(table, {})))
                raise ConfigFileError(f"{cf.where(table, key)}: unknown key {key!r} in [{table}] "
                                  f"(known: {', '.join(known)})")
            file_values[(table, key)] = _convert(dests[key], value, cf.where(table, key))
    if cf is not None and "thresholds" in extra:
        _check_pairs(cf, extra["thresholds"])
    command = getattr(args, "command", None)
    sub = commands.get(command) if isinstance(command, str) else None
    if sub is not None:
        given = _explicit(build, argv)
        for action in _option_actions(sub):
            if action.dest in given:
                continue
            variable = env_name(str(command), action.dest)
            if env.get(variable):
                setattr(args, action.dest, _convert(action, env[variable], variable))
            elif (command, action.dest) in file_values:
                setattr(args, action.dest, file_values[(str(command), action.dest)])
    args.settings = Settings(cf.path if cf else None, extra)
    args.option_values = {table: {key: value for (t, key), value in file_values.items()
                                  if t == table} for table in commands}
    return args


def known_tables(parser: argparse.ArgumentParser) -> set[str]:
    return (set(subparsers(parser)) - {"config"}) | set(EXTRA_KEYS)


# -- config show ---------------------------------------------------------------------------------
def effective(parser: argparse.ArgumentParser, args: argparse.Namespace,
              env: Mapping[str, str]) -> dict[str, dict[str, object]]:
    """Every table with its effective values (command line excluded: this is ``config show``)."""
    settings: Settings = args.settings
    from_file: Mapping[str, Mapping[str, object]] = getattr(args, "option_values", {})
    out: dict[str, dict[str, object]] = {}
    for command, sub in subparsers(parser).items():
        if command == "config":
            continue
        values: dict[str, object] = {}
        for action in _option_actions(sub):
            value = action.default
            if action.dest in from_file.get(command, {}):
                value = from_file[command][action.dest]
            variable = env_name(command, action.dest)
            if env.get(variable):
                value = _convert(action, env[variable], variable)
            values[action.dest] = value
        for key, value in settings.table(command).items():
            values.setdefault(key, value)  # keys without an option (an option wins)
        out[command] = values
    for table in EXTRA_KEYS:
        if table not in out:
            out[table] = settings.table(table)
    return out


def render_toml(tables: Mapping[str, Mapping[str, object]]) -> str:
    """TOML text of ``tables`` with secrets masked; unset values are comments."""
    lines: list[str] = []
    for table, values in tables.items():
        lines.append(f"[{table}]")
        for key, value in values.items():
            if value is None:
                lines.append(f"# {key} = (not set)")
                continue
            shown = REDACTED if is_secret(key) else value
            lines.append(f"{key} = {_toml_value(shown)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Path):
        value = str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def run_show(build: Callable[[], argparse.ArgumentParser], args: argparse.Namespace) -> int:
    """``venueguard config show``: the effective configuration, secrets masked."""
    parser = build()
    print(f"# venueguard configuration (file: {args.settings.path or 'none'})")
    print(render_toml(effective(parser, args, os.environ)), end="")
    return 0


# -- typed views the monitor uses ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Thresholds:
    """The ``[thresholds]`` table, typed (defaults are the monitor's built-in values)."""

    freshness_s: Mapping[str, float] = field(default_factory=lambda: dict(
        _default("thresholds", "freshness_s")))  # type: ignore[call-overload]
    default_freshness_s: float = 10.0
    heartbeat_ping_after_s: float = 5.0
    heartbeat_pong_timeout_s: float = 5.0
    ws_backoff_base_s: float = 0.25
    ws_backoff_cap_s: float = 30.0
    rest_backoff_base_s: float = 0.25
    rest_backoff_cap_s: float = 5.0
    retry_budget_ratio: float = 0.1
    safe_mode_enter: float = 30.0
    safe_mode_exit: float = 10.0
    learned_freshness: FreshnessConfig = field(default_factory=FreshnessConfig)  # [freshness]

    @classmethod
    def from_settings(cls, settings: Settings | None) -> Thresholds:
        if settings is None:
            return cls()
        table = settings.table("thresholds")
        floats = {k: float(v) for k, v in table.items()  # type: ignore[arg-type]
                  if k != "freshness_s"}
        freshness = table["freshness_s"]
        assert isinstance(freshness, Mapping)
        learned = settings.table("freshness")
        try:
            config = FreshnessConfig(
                enabled=learned["learned"] is True,
                suspicion=float(learned["suspicion"]),  # type: ignore[arg-type]
                floor_s=float(learned["floor_s"]),  # type: ignore[arg-type]
                max_s=float(learned["max_s"]))  # type: ignore[arg-type]
        except ValueError as exc:
            raise ConfigFileError(f"{settings.path or 'config'}: [freshness] {exc}") from None
        return cls(freshness_s=dict(freshness), learned_freshness=config, **floats)


def _default(table: str, key: str) -> object:
    return EXTRA_KEYS[table][key].default
