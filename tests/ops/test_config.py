"""venueguard.toml: precedence, one-line errors naming file and line, config show, help text."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from venueguard import cli, config
from venueguard.app.monitor import MonitorConfig, config_from_args


def resolve(argv: list[str], env: dict[str, str] | None = None) -> argparse.Namespace:
    args = cli.build_parser().parse_args(argv)
    return config.resolve(cli.build_parser, args, argv, env or {})


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "venueguard.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_command_line_beats_environment_beats_file_beats_default(tmp_path: Path) -> None:
    path = write(tmp_path, '[monitor]\nport = 9100\nsymbol = "ETHUSD"\nlog_format = "json"\n')
    args = resolve(["monitor", "--config", str(path), "--port", "9200"],
                   {"VENUEGUARD_SYMBOL": "SOLUSD"})
    assert args.port == 9200            # command line
    assert args.symbol == "SOLUSD"      # environment
    assert args.log_format == "json"    # file
    assert args.trade == "none"         # default
    assert args.settings.path == path


def test_config_chosen_by_environment_variable(tmp_path: Path) -> None:
    path = write(tmp_path, '[sim]\nseed = 7\nrate = 12.5\n')
    args = resolve(["sim"], {"VENUEGUARD_CONFIG": str(path)})
    assert args.seed == 7 and args.rate == 12.5


def test_every_cli_option_has_a_key_an_env_var_and_help_with_its_default() -> None:
    parser = cli.build_parser()
    seen = 0
    for command, sub in config.subparsers(parser).items():
        for action in sub._actions:
            if not action.option_strings or action.dest == "help":
                continue
            assert action.help, (command, action.dest)
            assert "default" in action.help or action.dest == "config_path", (command, action.dest)
            if action.dest == "config_path":
                assert config.CONFIG_ENV in (action.help or "")
                continue
            assert config.env_name(command, action.dest) in action.help, (command, action.dest)
            assert f"[{command}] {action.dest}" in action.help
            seen += 1
    assert seen >= 20


@pytest.mark.parametrize(("text", "line", "words"), [
    ('[monitor]\nport = 8765\nprot = 1\n', 3, "unknown key 'prot' in [monitor]"),
    ('[monitr]\nport = 1\n', 1, "unknown table [monitr]"),
    ('\n[monitor]\nport = "high"\n', 3, "port: must be a whole number from 0 to 65535, not 'high'"),
    ('[monitor]\n\ntrade = "yolo"\n', 3, "trade must be one of none, demo"),
    ('[thresholds]\nheartbeat_pong_timeout_s = -1\n', 2, "must be a number greater than 0"),
    ('[thresholds]\ndefault_freshness_s = 0\n', 2,
     "thresholds.default_freshness_s must be a number greater than 0, not 0"),
    ('[thresholds]\nws_backoff_cap_s = 0.1\n', 2,
     "thresholds.ws_backoff_cap_s must be at least thresholds.ws_backoff_base_s"),
    ('[thresholds]\nsafe_mode_exit = 40\n', 2,
     "thresholds.safe_mode_exit must be below thresholds.safe_mode_enter"),
    ('[notify]\nrate_limit_per_minute = 0\n', 2, "must be a whole number of at least 1"),
    ('[sim]\nrate = nan\n', 2, "rate: must be a number greater than 0 and at most 1000000"),
    ('[sim]\nrate = 1e9\n', 2, "rate: must be a number greater than 0 and at most 1000000"),
    ('[monitor]\nfleet_size = 0\n', 2, "fleet_size: must be a whole number from 1 to 10000"),
    ('[notify.slack]\nmin_tier = "loud"\n', 2, "min_tier must be one of info, warning"),
    ('[notify]\nslack.webhook = "x"\n', 2, "unknown key 'webhook' in [notify.slack]"),
    ('[monitor]\nport = 1\nport = 2\n', 3, "not valid TOML"),
    ('stray = 1\n', 1, "unknown table or key 'stray'"),
])
def test_bad_files_are_one_line_errors_naming_file_and_line(tmp_path: Path, text: str, line: int,
                                                            words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(config.ConfigError) as info:
        resolve(["monitor", "--config", str(path)])
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:{line}: "), message
    assert words in message


def test_missing_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["monitor", "--config", str(tmp_path / "nope.toml"), "--duration", "1"])
    assert code == 2
    err = capsys.readouterr().err
    assert "nope.toml: cannot read" in err and err.count("\n") == 1


def test_thresholds_alerts_and_notify_reach_the_monitor_config(tmp_path: Path) -> None:
    path = write(tmp_path, """
[monitor]
host = "0.0.0.0"
venue = "bitmex-testnet"
log_level = "warning"

[thresholds]
freshness_s = { orderBookL2 = 4.0, trade = 60 }
heartbeat_pong_timeout_s = 8
safe_mode_enter = 50
safe_mode_exit = 20

[alerts]
dedup_window_s = 30
min_tier = "warning"

[notify]
rate_limit_per_minute = 5

[notify.slack]
webhook_url = "http://127.0.0.1:9/hook"
""")
    args = resolve(["monitor", "--config", str(path)])
    cfg = config_from_args(args, {})
    assert isinstance(cfg, MonitorConfig)
    assert cfg.host == "0.0.0.0" and not cfg.loopback_only and cfg.venue == "bitmex-testnet"
    assert cfg.thresholds.freshness_s == {"orderBookL2": 4.0, "trade": 60.0}
    assert cfg.thresholds.heartbeat_pong_timeout_s == 8.0
    assert cfg.regime_config().safe_enter == 50.0
    assert cfg.alert_dedup_window_s == 30.0 and cfg.alert_min_tier == "warning"
    assert cfg.notify["notify"]["rate_limit_per_minute"] == 5
    assert cfg.notify["notify.slack"]["webhook_url"] == "http://127.0.0.1:9/hook"
    assert cfg.log_level == "warning"


def test_inconsistent_thresholds_are_a_startup_error(tmp_path: Path) -> None:
    path = write(tmp_path, "[thresholds]\nsafe_mode_enter = 5\nsafe_mode_exit = 9\n")
    # refused while the file is read (config show too), naming both keys
    with pytest.raises(config.ConfigError,
                       match=r":3: thresholds.safe_mode_exit must be below "
                             r"thresholds.safe_mode_enter \(safe_mode_exit = 9, "):
        resolve(["monitor", "--config", str(path)])


def test_freshness_table_reaches_the_sessions_liveness(tmp_path: Path) -> None:
    from venueguard.app.feeds import liveness_config

    path = write(tmp_path, "[freshness]\nsuspicion = 6.5\nfloor_s = 0.5\nmax_s = 90\n")
    cfg = config_from_args(resolve(["monitor", "--config", str(path)]), {})
    learned = liveness_config(cfg.thresholds).freshness
    assert (learned.enabled, learned.suspicion, learned.floor_s, learned.max_s) == (
        True, 6.5, 0.5, 90.0)
    path = write(tmp_path, "[freshness]\nlearned = false\n")
    cfg = config_from_args(resolve(["monitor", "--config", str(path)]), {})
    assert not liveness_config(cfg.thresholds).freshness.enabled  # static mode
    assert liveness_config(config.Thresholds()).freshness.enabled  # learned by default


def test_freshness_table_reaches_every_monitor_venue(tmp_path: Path) -> None:
    """The native Binance session and a guarded ccxt exchange take the same ``[freshness]``
    table as the BitMEX session (the guard hands it on to the native sessions it starts:
    tests/ccxt/test_guard_native.py)."""
    pytest.importorskip("ccxt")
    from venueguard.app.binance_feeds import liveness_config as binance_liveness
    from venueguard.app.ccxt_feeds import guard_config

    path = write(tmp_path, "[freshness]\nsuspicion = 6.5\nfloor_s = 0.5\nmax_s = 90\n")
    cfg = config_from_args(resolve(["monitor", "--config", str(path)]), {})
    wanted = cfg.thresholds.learned_freshness
    assert (wanted.suspicion, wanted.floor_s, wanted.max_s) == (6.5, 0.5, 90.0)
    assert binance_liveness(cfg.thresholds).freshness == wanted
    guarded = guard_config(cfg)
    assert guarded.streams.freshness == wanted
    assert guarded.streams.liveness().freshness == wanted  # ccxt's readers, checked by the guard
    path = write(tmp_path, "[freshness]\nlearned = false\n")
    cfg = config_from_args(resolve(["monitor", "--config", str(path)]), {})
    assert not binance_liveness(cfg.thresholds).freshness.enabled
    assert not guard_config(cfg).streams.liveness().freshness.enabled


def test_a_bad_freshness_table_is_one_line_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[freshness]\nfloor_s = 5\nmax_s = 2\n")
    with pytest.raises(config.ConfigError, match=r"venueguard.toml: \[freshness\] .*floor_s"):
        config_from_args(resolve(["monitor", "--config", str(path)]), {})


def test_config_show_prints_effective_values_with_secrets_masked(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, """
[monitor]
port = 9300
redis_url = "redis://:hunter22@127.0.0.1:6379/0"
[sim]
api_secret = "s3cr3t-value"
[notify.telegram]
bot_token = "123456:ABCDEF-token"
chat_id = "-100200"
""")
    monkeypatch.setenv("VENUEGUARD_SYMBOL", "ETHUSD")
    assert cli.main(["config", "show", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"file: {path}" in out
    assert "port = 9300" in out and 'symbol = "ETHUSD"' in out
    assert 'chat_id = "-100200"' in out
    for secret in ("hunter22", "s3cr3t-value", "ABCDEF-token"):
        assert secret not in out
    assert 'bot_token = "***"' in out and 'api_secret = "***"' in out
    assert "[thresholds]" in out and "[notify.slack]" in out
    import tomllib
    parsed = tomllib.loads(out)
    assert parsed["monitor"]["port"] == 9300


def test_host_option_defaults_to_loopback() -> None:
    args = resolve(["monitor"])
    cfg = config_from_args(args, {})
    assert cfg.host == "127.0.0.1" and cfg.loopback_only
    assert MonitorConfig(host="::1").loopback_only and MonitorConfig(host="localhost").loopback_only
    assert not MonitorConfig(host="10.1.2.3").loopback_only


def test_report_without_matplotlib_says_how_to_install(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    import sys

    monkeypatch.delitem(sys.modules, "venueguard.app.report", raising=False)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as when not installed
    monkeypatch.delitem(sys.modules, "matplotlib.axes", raising=False)
    monkeypatch.delitem(sys.modules, "matplotlib.figure", raising=False)
    assert cli.main(["report", str(tmp_path / "j.db")]) == 2
    assert "pip install 'venueguard[report]'" in capsys.readouterr().err


def test_an_option_takes_over_an_extra_key_of_the_same_name(tmp_path: Path) -> None:
    def build() -> argparse.ArgumentParser:
        parser = cli.build_parser()
        monitor = config.subparsers(parser)["monitor"]
        monitor.add_argument("--log-level", default="warning", choices=["warning", "error"])
        return parser

    path = write(tmp_path, '[monitor]\nlog_level = "error"\n')
    argv = ["monitor", "--config", str(path)]
    args = config.resolve(build, build().parse_args(argv), argv, {})
    assert args.log_level == "error"  # reached args like any option, not the extra table
    assert "log_level" not in args.settings.tables.get("monitor", {})
    bad = write(tmp_path, '[monitor]\nlog_level = "info"\n')  # the option's own choices
    with pytest.raises(config.ConfigError, match="must be one of warning, error"):
        config.resolve(build, build().parse_args(argv), ["monitor", "--config", str(bad)], {})


def test_redis_url_from_file_and_environment(tmp_path: Path) -> None:
    path = write(tmp_path, '[monitor]\nredis_url = "redis://127.0.0.1:6379/2"\n')
    argv = ["monitor", "--config", str(path)]
    assert resolve(argv).redis_url == "redis://127.0.0.1:6379/2"
    env = {"VENUEGUARD_REDIS_URL": "redis://127.0.0.1:6379/5"}
    assert resolve(argv, env).redis_url.endswith("/5")
    assert resolve([*argv, "--redis", "redis://10.0.0.1:6379/0"], env).redis_url == \
        "redis://10.0.0.1:6379/0"


def test_metrics_venue_label_reaches_the_monitor(tmp_path: Path) -> None:
    path = write(tmp_path, "[monitor]\nmetrics_venue_label = true\n")
    cfg = config_from_args(resolve(["monitor", "--config", str(path)]), {})
    assert cfg.metrics_venue_label is True
    bad = write(tmp_path, "[monitor]\nmetrics_venue_label = 1\n")
    with pytest.raises(config.ConfigError, match="true or false"):
        resolve(["monitor", "--config", str(bad)])


def test_the_shipped_example_file_is_valid_and_matches_the_defaults() -> None:
    example = Path(__file__).resolve().parents[2] / "deploy" / "venueguard.example.toml"
    args = resolve(["monitor", "--config", str(example)])
    cfg = config_from_args(args, {})
    default = config_from_args(resolve(["monitor"]), {})
    assert cfg.thresholds == default.thresholds
    assert (cfg.host, cfg.port, cfg.scenario) == (default.host, default.port, default.scenario)


@pytest.mark.parametrize(("text", "words"), [
    ("[monitor]\nport = 70000\n", "port: must be a whole number from 0 to 65535, not '70000'"),
    ("[monitor]\nduration = -5\n",
     "duration: must be a number greater than 0 and at most 1000000000"),
    ("[sim]\nport = true\n", "port: must be a single value"),
])
def test_range_checks_of_options_apply_to_file_values_too(tmp_path: Path, text: str,
                                                          words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(config.ConfigError) as info:
        resolve(["monitor", "--config", str(path)])
    assert str(info.value).startswith(f"{path}:2: ") and words in str(info.value)


def test_range_checks_apply_to_environment_values(capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VENUEGUARD_PORT", "99999")
    assert cli.main(["monitor", "--duration", "1"]) == 2
    err = capsys.readouterr().err
    assert "VENUEGUARD_PORT: port: must be a whole number from 0 to 65535" in err
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["monitor", "--port", "-1"])


def test_repeatable_options_take_lists_in_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[gym-eval]\npolicy = ["mm", "random"]\nscenario = "calm"\n')
    args = resolve(["gym-eval", "--config", str(path)])
    assert args.policy == ["mm", "random"] and args.scenario == ["calm"]
    bad = write(tmp_path, '[gym-eval]\npolicy = [1, 2]\n')
    with pytest.raises(config.ConfigError, match=r":2: policy must be a string"):
        resolve(["gym-eval", "--config", str(bad)])
