"""The exception tree, where the sessions have always imported it from: see
:mod:`venueguard.errors` (its home, so that venue adapters need nothing from ``io``)."""

from __future__ import annotations

from venueguard.errors import *  # noqa: F403
from venueguard.errors import __all__ as __all__
