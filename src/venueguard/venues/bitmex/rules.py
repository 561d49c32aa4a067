"""BitMEX's rule table: its error texts (``rules.toml`` beside this module) merged over the
venue-neutral defaults of :mod:`venueguard.core.rules`.

Use :func:`bitmex_rules` wherever BitMEX's answers are classified (the native sessions do so
by default); pass it as ``base`` to :func:`venueguard.core.rules.load_rules` to merge a user's
rules file over it.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from venueguard.core.rules import RuleSet, default_rules, parse_rules

__all__ = ["bitmex_rules"]

SOURCE = "venues/bitmex/rules.toml"


@cache
def bitmex_rules() -> RuleSet:
    """The defaults with BitMEX's error texts merged over them, parsed once."""
    text = resources.files("venueguard.venues.bitmex").joinpath("rules.toml").read_text("utf-8")
    return parse_rules(text, SOURCE, base=default_rules())
