"""The fuzz suite: Hypothesis over the input boundaries (market-data frames, REST responses,
requests to the simulator).

``make test`` runs it with a few examples per property (seconds); ``make fuzz`` runs the same
properties long: ``VENUEGUARD_FUZZ_EXAMPLES`` sets the examples per property.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("VENUEGUARD_FUZZ_EXAMPLES", "60"))

settings.register_profile(
    "venueguard-fuzz", max_examples=EXAMPLES, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                           HealthCheck.function_scoped_fixture],
)
FUZZ = settings.get_profile("venueguard-fuzz")
