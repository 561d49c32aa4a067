"""Complete simulator rows to BitMEX's full models before they are served.

The engine builds rows with the fields it gives meaning to. Real BitMEX rows carry every field of
their model, with ``null`` where a value does not apply, and clients that decode into strict types
refuse a row with a missing key. :func:`complete` adds each missing field with BitMEX's neutral
value: ``null`` for numbers, strings and timestamps, ``false`` for flags, ``{}`` for objects.
Field lists come from :mod:`venueguard.sim.bitmex.models`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from venueguard.sim.bitmex.models import MODEL_FIELDS

__all__ = ["MODELS", "complete", "complete_rows"]

_NEUTRAL: Final[dict[str, Any]] = {"bool": False}


def _defaults(fields: Mapping[str, str]) -> dict[str, Any]:
    return {name: ({} if kind == "object" else _NEUTRAL.get(kind)) for name, kind in fields.items()}


#: Model name -> a row of neutral values, in the model's field order.
MODELS: Final[dict[str, dict[str, Any]]] = {
    model: _defaults(fields) for model, fields in MODEL_FIELDS.items()}


def complete(model: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``row`` carrying every field of ``model`` (the engine's row is left untouched).

    Fields the row has keep their values (and win over the neutral ones); fields beyond the model
    (for example the error text of a cancel row) are kept after the model's own.
    """
    defaults = MODELS[model]
    out = {name: (dict(value) if isinstance(value, dict) else value)
           for name, value in defaults.items()}
    out.update(row)
    return out


def complete_rows(model: str, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [complete(model, row) for row in rows]
