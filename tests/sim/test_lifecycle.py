"""A stopped simulator is gone from memory: a process that runs many in turn (``venueguard
chaos``, one per seed) does not keep them."""

from __future__ import annotations

import gc
import weakref

import pytest

from venueguard.sim.binance.testing import running_binance_sim
from venueguard.sim.testing import running_sim


@pytest.mark.parametrize("dialect", ["bitmex", "binance-usdm"])
async def test_a_stopped_simulator_that_served_requests_is_freed(dialect: str) -> None:
    # aiohttp caches each route's middleware chain, keyed by its application, for the process
    started = running_sim() if dialect == "bitmex" else running_binance_sim()
    async with started as sim:
        path = "/api/v1/instrument" if dialect == "bitmex" else "/fapi/v1/time"
        async with sim.session.get(sim.base_url + path) as answer:
            assert answer.status == 200
        server = weakref.ref(sim.server)
        engine = weakref.ref(sim.server.engine)
    del sim
    gc.collect()
    assert server() is None and engine() is None
