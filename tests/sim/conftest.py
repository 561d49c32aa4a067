"""Fixtures that run the simulator in-process on 127.0.0.1 (any free port).

``sim_server`` is a factory: ``sim = await sim_server(scenario="calm", seed=1, rate=50.0,
book_format="modern", symbols=("XBTUSD",), **config_overrides)`` returns a
:class:`venueguard.sim.testing.SimHandle` (base_url, api_url, ws_url, add_fault, clear_faults,
faults, truth, request, signed_headers, ws_auth_query, ws_auth_op, server). Every simulator it
started is stopped at teardown. ``sim`` is one default simulator (calm, seed 1).

Limits are BitMEX's unless overridden (``rest_per_min=120``, ``order_per_s=10``,
``ws_opens_per_hour=60``, ``ws_queue_max``...); tests that make many requests pass higher ones.
Outside ``tests/sim`` use :func:`venueguard.sim.testing.running_sim` directly, or copy this
fixture (pytest only shares a conftest with the directories below it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any

import pytest

from venueguard.sim.testing import SimHandle, running_sim

SimFactory = Callable[..., Awaitable[SimHandle]]


@pytest.fixture
async def sim_server() -> AsyncIterator[SimFactory]:
    async with AsyncExitStack() as stack:
        async def start(scenario: str | None = "calm", seed: int = 1, rate: float = 50.0,
                        book_format: str = "modern", symbols: Sequence[str] = ("XBTUSD",),
                        **overrides: Any) -> SimHandle:
            return await stack.enter_async_context(running_sim(
                scenario=scenario, seed=seed, rate_msgs_s=rate, book_format=book_format,
                symbols=tuple(symbols), **overrides))

        yield start


@pytest.fixture
async def sim(sim_server: SimFactory) -> SimHandle:
    return await sim_server()
