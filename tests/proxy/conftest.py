"""Fixtures: a simulator upstream and a proxy in front of it, both in-process on 127.0.0.1.

``proxied`` is a factory: ``sim, proxy = await proxied(dialect="bitmex", **proxy_config)``
starts a simulator (BitMEX, or both dialects for ``binance-usdm``; ``generic`` fronts the
BitMEX one) and a proxy in front of it.

``node_ccxt``: a directory whose ``node_modules`` holds ccxt's JavaScript package from npm, at the
Python package's version. It is installed once into a cache directory (``VENUEGUARD_NODE_CACHE``,
default ``~/.cache/venueguard``; one install at a time across test processes) and reused;
without node or npm, or when the npm registry cannot be reached, the test skips and says why.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
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


NODE_CCXT_VERSION = "4.5.78"  # the Python package's version, so both bots speak alike


@pytest.fixture
async def node_ccxt() -> Path:
    if shutil.which("node") is None or (npm := shutil.which("npm")) is None:
        pytest.skip("node and npm are needed for the JavaScript ccxt tests")
    raw = os.environ.get("VENUEGUARD_NODE_CACHE")
    base = Path(raw) if raw else Path.home() / ".cache" / "venueguard"
    target = base / f"node-ccxt-{NODE_CCXT_VERSION}"
    marker = target / "node_modules" / "ccxt" / "package.json"
    if marker.is_file():
        return target
    target.mkdir(parents=True, exist_ok=True)
    with (base / f"node-ccxt-{NODE_CCXT_VERSION}.lock").open("w") as lock:
        await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
        if marker.is_file():  # another test process installed it meanwhile
            return target
        proc = await asyncio.create_subprocess_exec(
            npm, "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(target),
            f"ccxt@{NODE_CCXT_VERSION}", stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        try:
            _, err = await asyncio.wait_for(proc.communicate(), 300)
        except TimeoutError:
            proc.kill()
            pytest.skip("npm install ccxt did not finish in 300 s (registry unreachable?)")
        if proc.returncode != 0:
            pytest.skip(f"npm install ccxt@{NODE_CCXT_VERSION} failed (registry unreachable?): "
                        f"{err.decode(errors='replace').strip()[-300:]}")
    return target
