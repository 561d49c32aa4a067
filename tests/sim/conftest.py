"""Fixtures that run the simulator in-process on 127.0.0.1 (any free port).

``sim_server`` (in ``tests/conftest.py``, shared by every directory) is a factory:
``sim = await sim_server(scenario="calm", seed=1, rate=50.0, book_format="modern",
symbols=("XBTUSD",), **config_overrides)`` returns a
:class:`venueguard.sim.testing.SimHandle` (base_url, api_url, ws_url, add_fault, clear_faults,
faults, truth, request, signed_headers, ws_auth_query, ws_auth_op, server). Every simulator it
started is stopped at teardown. ``sim`` is one default simulator (calm, seed 1).

Limits are BitMEX's unless overridden (``rest_per_min=120``, ``order_per_s=10``,
``ws_opens_per_hour=60``, ``ws_queue_max``...); tests that make many requests pass higher ones.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from venueguard.sim.testing import SimHandle

SimFactory = Callable[..., Awaitable[SimHandle]]


@pytest.fixture
async def sim(sim_server: SimFactory) -> SimHandle:
    return await sim_server()
