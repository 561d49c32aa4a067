"""For tests that feed BitMEX's own answers to the venue-neutral classifier: ``classify`` and
``classify_text`` with BitMEX's rule table (``venueguard.venues.bitmex.rules``) as the default,
as the native BitMEX sessions use it. Import from here instead of ``venueguard.core.classify``."""

from __future__ import annotations

from typing import Any

from venueguard.core import classify as _core
from venueguard.core.classify import Classification, Outcome
from venueguard.core.kinds import Kind
from venueguard.core.rules import RuleSet
from venueguard.venues.bitmex.rules import bitmex_rules


def classify(outcome: Outcome, rules: RuleSet | None = None) -> Classification:
    return _core.classify(outcome, rules if rules is not None else bitmex_rules())


def classify_text(message: str, **kwargs: Any) -> Kind:
    kwargs.setdefault("rules", bitmex_rules())
    if kwargs["rules"] is None:
        kwargs["rules"] = bitmex_rules()
    return _core.classify_text(message, **kwargs)
