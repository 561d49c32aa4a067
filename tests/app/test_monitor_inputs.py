"""What the monitor takes from outside: ``--rules FILE`` and the credentials it sends where."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from venueguard.app.monitor import Monitor, MonitorContext, StartupError, config_from_args
from venueguard.cli import build_parser
from venueguard.core.classify import classify_text
from venueguard.core.kinds import Action, Kind
from venueguard.venues.bitmex import errors as bx
from venueguard.venues.bitmex import signing

USER_ENV = {"VENUEGUARD_API_KEY": "real-user-key", "VENUEGUARD_API_SECRET": "real-user-secret"}


def parse(*argv: str) -> object:
    return build_parser().parse_args(["monitor", *argv])


def test_rules_file_is_merged_over_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text("[kinds.overloaded]\naction = 'cooldown'\ncooldown_s = 42\n")
    cfg = config_from_args(parse("--rules", str(path)), {})  # type: ignore[arg-type]
    assert cfg.rules is not None
    rule = cfg.rules.rule(Kind.OVERLOADED)
    assert rule.action is Action.COOLDOWN and rule.cooldown_s == 42.0
    assert cfg.rules.rule(Kind.RATE_LIMITED).action is not None  # the defaults are still there
    assert config_from_args(parse(), {}).rules is None  # type: ignore[arg-type]


def test_rules_file_keeps_bitmex_texts_and_reaches_a_ccxt_venue(tmp_path: Path) -> None:
    """Regression: the user's file is merged over BitMEX's table (the native sessions classify
    BitMEX's answers), not over the venue-neutral defaults, which hold no venue's texts."""
    path = tmp_path / "mine.toml"
    path.write_text("[kinds.overloaded]\naction = 'cooldown'\ncooldown_s = 42\n")
    cfg = config_from_args(parse("--rules", str(path)), {})  # type: ignore[arg-type]
    assert cfg.rules is not None
    assert classify_text(bx.DUPLICATE_CLORDID, rules=cfg.rules) is Kind.DUPLICATE_CLORDID
    ccxt_cfg = config_from_args(parse("--rules", str(path), "--venue", "ccxt:binanceusdm"),
                                {})  # type: ignore[arg-type]
    assert ccxt_cfg.rules_text == path.read_text() and ccxt_cfg.rules_path == str(path)


@pytest.mark.parametrize(("text", "words"), [
    ("[kinds.overloaded]\naction = 'cooldown'\ncooldown_s = nan\n",
     "mine.toml, line 3: .*cooldown_s"),
    ("replace_patterns = 'yes'\n", "replace_patterns"),
    (None, "cannot read"),
])
def test_a_bad_rules_file_is_a_startup_error_naming_it(tmp_path: Path, text: str | None,
                                                        words: str) -> None:
    path = tmp_path / "mine.toml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(StartupError, match=words):
        config_from_args(parse("--rules", str(path)), {})  # type: ignore[arg-type]


def test_the_simulator_never_gets_the_users_real_key() -> None:
    cfg = config_from_args(parse(), USER_ENV)  # type: ignore[arg-type]
    assert cfg.api_key == signing.TEST_API_KEY and cfg.api_secret == signing.TEST_API_SECRET
    assert cfg.sim_credentials
    external = config_from_args(parse("--sim-url", "http://127.0.0.1:9"),  # type: ignore[arg-type]
                                {**USER_ENV, "VENUEGUARD_SIM_API_KEY": "simk",
                                 "VENUEGUARD_SIM_API_SECRET": "sims"})
    assert (external.api_key, external.api_secret) == ("simk", "sims")
    real = config_from_args(parse("--venue", "bitmex-testnet"), USER_ENV)  # type: ignore[arg-type]
    assert real.api_key == "real-user-key" and not real.sim_credentials
    plain = config_from_args(parse(), {})  # type: ignore[arg-type]
    assert not plain.sim_credentials


async def test_the_monitor_says_once_that_it_uses_the_simulators_pair(tmp_path: Path) -> None:
    cfg = config_from_args(parse("--journal", str(tmp_path / "j.db"), "--log-format", "json",
                                 "--port", "0"), USER_ENV)  # type: ignore[arg-type]
    sent: list[tuple[str | None, str | None]] = []

    async def sources(ctx: MonitorContext) -> tuple[object, object]:
        sent.append((ctx.config.api_key, ctx.config.api_secret))
        raise RuntimeError("no sessions in this test")

    out = io.StringIO()
    code = await Monitor(cfg, stdout=out, stderr=io.StringIO(),
                         sources=sources).run()  # type: ignore[arg-type]
    assert code == 2
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    notes = [line for line in lines if line["event"] == "monitor.credentials"]
    assert len(notes) == 1 and "simulator's own key pair" in notes[0]["message"]
    assert sent == [(signing.TEST_API_KEY, signing.TEST_API_SECRET)]
    assert "real-user-key" not in out.getvalue() and "real-user-secret" not in out.getvalue()
