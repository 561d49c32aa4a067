"""The documentation states the contracts: generated pages match their sources, every command,
fault kind, alert and event name is written down, and nothing cites a file outside the repo."""

from __future__ import annotations

import re
from pathlib import Path

from venueguard import cli, config_doc
from venueguard.config import subparsers
from venueguard.sim.faults import KINDS
from venueguard.telemetry import metrics_doc
from venueguard.telemetry.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def test_metrics_reference_matches_the_registry() -> None:
    page = (DOCS / "metrics.md").read_text()
    assert page == metrics_doc.render(), "run `make metrics-doc`"
    for info in Metrics().catalogue:
        assert f"| `{info.name}` | {info.kind} |" in page


def test_configuration_reference_matches_the_parser_and_extra_keys() -> None:
    page = (DOCS / "configuration.md").read_text()
    assert page == config_doc.render(), "run `make config-doc`"
    for command, sub in subparsers(cli.build_parser()).items():
        if command == "config":
            continue
        assert f"## `[{command}]`" in page
        for action in sub._actions:
            if action.option_strings and action.dest not in ("help", "config_path"):
                assert f"| `{action.dest}` | `{max(action.option_strings, key=len)}` |" in page
    for key in ("redis_url", "freshness_s", "webhook_url", "bot_token", "safe_mode_enter"):
        assert f"| `{key}` |" in page


def test_every_command_has_a_page_in_the_navigation() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    for command in subparsers(cli.build_parser()):
        assert (DOCS / "commands" / f"{command}.md").is_file(), command
        assert f"commands/{command}.md" in nav


def test_control_api_page_lists_every_fault_kind_and_route() -> None:
    page = (DOCS / "control-api.md").read_text()
    for kind in KINDS:
        assert f"| `{kind}` |" in page, kind
    for route in ("POST /_sim/faults", "DELETE /_sim/faults", "GET /_sim/faults",
                  "GET /_sim/truth", "GET /_sim/resolve"):
        assert route in page


def test_alert_page_lists_every_rule() -> None:
    rules = re.findall(r"- alert: (\w+)", (ROOT / "deploy/prometheus/alerts.yml").read_text())
    page = (DOCS / "alerts.md").read_text()
    assert len(rules) >= 9
    for rule in rules:
        assert f"`{rule}`" in page, rule


def test_event_page_lists_the_event_names_tools_rely_on() -> None:
    page = (DOCS / "events.md").read_text()
    for name in ("monitor.ready", "ws.connected", "ws.subscribed", "ws.stale", "ws.disconnected",
                 "ws.reconnecting", "book.resynced", "book.gap", "data.rejected", "rest.error",
                 "venue.state", "regime.changed", "order.intent", "order.sent", "order.acked",
                 "order.unknown", "order.filled", "order.canceled", "reconcile.mismatch",
                 "reconcile.resolved", "alert"):
        assert f"`{name}`" in page, name


def test_nothing_cites_a_design_file_outside_the_repository() -> None:
    offenders = []
    for base in ("src", "docs", "tests", "bench", "deploy"):
        for path in (ROOT / base).rglob("*"):
            if (path.suffix in (".py", ".md", ".yml", ".toml", ".json") and path.is_file()
                    and path != Path(__file__)
                    and "DESIGN.md" in path.read_text(errors="replace")):
                offenders.append(str(path.relative_to(ROOT)))
    readme = (ROOT / "README.md").read_text()
    assert "DESIGN" not in readme
    assert offenders == []
