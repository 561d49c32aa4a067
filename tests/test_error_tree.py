"""One error tree: every venue error carries a ``Kind``, the tree is exported, names are unique.

``VenueError.kind`` is a :class:`~venueguard.core.kinds.Kind`; its ``.value`` is the stable string
in metric labels and events. Each public name means one thing across the modules a user imports
from (the exception ``Rejected``, the order event ``OrderRejected``, the data event
``DataRejected``).
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

import venueguard
from venueguard import config, errors
from venueguard.app.monitor import StartupError
from venueguard.core.kinds import CLASSIFIED_KINDS, LOCAL_KINDS, Kind
from venueguard.core.rules import default_rules
from venueguard.telemetry.metrics import ERROR_KINDS

SRC = Path(venueguard.__file__).parent
DOCS = SRC.parent.parent / "docs"


def _subclasses(root: type) -> list[type]:
    out, todo = [], [root]
    while todo:
        klass = todo.pop()
        out.append(klass)
        todo.extend(klass.__subclasses__())
    return out


def _venue_error_names() -> set[str]:
    importlib.import_module("venueguard.ccxt.errors")  # its subclasses join the walk
    return {klass.__name__ for klass in _subclasses(errors.VenueError)}


@pytest.mark.parametrize("klass", _subclasses(errors.VenueError), ids=lambda k: k.__name__)
def test_every_venue_error_class_carries_a_kind(klass: type[errors.VenueError]) -> None:
    extra = {"until": 1.0} if issubclass(klass, errors.CoolingDown) else {}
    made = klass("x", **extra)  # type: ignore[arg-type]
    assert made.kind is Kind.UNKNOWN
    made = klass("x", kind=Kind.OVERLOADED, **extra)  # type: ignore[arg-type]
    assert made.kind is Kind.OVERLOADED
    with pytest.raises(TypeError, match="must be a Kind, got 'overloaded'"):
        klass("x", kind="overloaded", **extra)  # type: ignore[arg-type]


def test_no_raise_site_passes_a_string_kind() -> None:
    # mypy checks the keyword; this also covers the sites it cannot see (a literal through
    # getattr'd classes, a module outside the checked tree)
    names = _venue_error_names()
    found: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name not in names:
                continue
            for keyword in node.keywords:
                if keyword.arg == "kind" and isinstance(keyword.value, ast.Constant):
                    found.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert found == []


def test_local_kinds_stay_out_of_rules_and_metric_labels() -> None:
    assert {Kind.BAD_RESPONSE, Kind.COOLDOWN, Kind.BLOCKED, Kind.THROTTLED,
                           Kind.REFUSED} == LOCAL_KINDS
    assert set(default_rules().rules) == set(CLASSIFIED_KINDS)
    # the label values exported before the first error: the classifier's kinds, unchanged
    assert ERROR_KINDS == (
        "transient_network", "dns", "ambiguous_timeout", "server_error", "overloaded",
        "rate_limited", "forbidden", "edge_protection", "software_banned", "ip_banned",
        "invalid_credentials", "nonce_expired", "order_rejected", "order_type_disabled",
        "amount_too_low", "amount_too_high", "insufficient_balance", "unknown_symbol",
        "duplicate_clordid", "order_not_open", "already_subscribed", "not_found",
        "bad_request", "unknown")


def test_the_config_errors_and_the_order_errors_are_in_the_tree_and_exported(
        tmp_path: Path) -> None:
    for name in ("ConfigError", "ConfigFileError", "OrdersBlocked", "JournalError"):
        assert name in venueguard.__all__, name
        assert issubclass(getattr(venueguard, name), venueguard.VenueguardError), name
    assert config.ConfigError is errors.ConfigError is venueguard.ConfigError
    assert issubclass(config.ConfigFileError, ValueError)  # as it always was
    assert issubclass(StartupError, errors.ConfigError)
    bad = tmp_path / "venueguard.toml"
    bad.write_text("[monitor\n")
    with pytest.raises(venueguard.ConfigError, match="not valid TOML"):
        config.load_file(bad)


def _public_modules() -> list[str]:
    """The root, every module a root name comes from, every module the API reference
    documents, and the modules whose events users match (orders, market data)."""
    names = {"venueguard", "venueguard.core.orders", "venueguard.core.order_events",
             "venueguard.io.md_events", "venueguard.io.errors", "venueguard.errors"}
    for name in venueguard.__all__:
        module = getattr(getattr(venueguard, name), "__module__", None)
        if isinstance(module, str) and module.startswith("venueguard"):
            names.add(module)
    text = (DOCS / "api.md").read_text()
    names |= set(re.findall(r"^::: (venueguard[\w.]*)", text, re.M))
    return sorted(names)


def test_each_public_name_means_one_thing_across_the_public_modules() -> None:
    meanings: dict[str, dict[int, str]] = {}
    for module_name in _public_modules():
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if isinstance(obj, type) or callable(obj):
                meanings.setdefault(name, {})[id(obj)] = f"{obj.__module__}.{name}"
    clashes = {name: sorted(set(where.values())) for name, where in meanings.items()
               if len(where) > 1}
    assert clashes == {}
    # the three refusals, each under its own name
    assert meanings["Rejected"] and len(meanings["Rejected"]) == 1
    assert {"OrderRejected", "DataRejected", "ClOrdIDTaken", "DuplicateClOrdID"} <= set(meanings)
