"""Fixtures: a simulator upstream and a proxy in front of it, both in-process on 127.0.0.1.

``proxied`` is a factory: ``sim, proxy = await proxied(dialect="bitmex", **proxy_config)``
starts a simulator (BitMEX, or both dialects for ``binance-usdm``; ``generic`` fronts the
BitMEX one) and a proxy in front of it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest

from venueguard.proxy.testing import Proxied, ProxyHandle, running_proxy
from venueguard.sim.binance.testing import running_binance_sim
from venueguard.sim.testing import SimHandle, running_sim


@pytest.fixture
async def proxied() -> AsyncIterator[Proxied]:
    async with AsyncExitStack() as stack:
        async def start(dialect: str = "bitmex", rate: float = 50.0,
                        sim_overrides: dict[str, Any] | None = None,
                        **proxy_config: Any) -> tuple[SimHandle, ProxyHandle]:
            extra = sim_overrides or {}
            if dialect == "binance-usdm":
                sim: SimHandle = await stack.enter_async_context(
                    running_binance_sim(rate_msgs_s=rate, **extra))
            else:
                sim = await stack.enter_async_context(
                    running_sim(scenario=None, rate_msgs_s=rate, **extra))
            proxy = await stack.enter_async_context(
                running_proxy(sim.base_url, dialect=dialect, **proxy_config))
            return sim, proxy

        yield start
