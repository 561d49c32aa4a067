"""ccxt's JavaScript package from npm under Node, unchanged but for its URLs, through the proxy to
the simulator: markets, book, create and cancel, and watchOrderBook, for bitmex and binanceusdm.

The package is installed once into a cache directory (``VENUEGUARD_NODE_CACHE``, default
``~/.cache/venueguard/node-ccxt-VERSION``) and reused; without node or npm, or when the npm
registry cannot be reached, the test skips and says why.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import orjson
import pytest

from venueguard.proxy.testing import Proxied

pytestmark = pytest.mark.system

CCXT_VERSION = "4.5.78"  # the Python package's version, so both bots speak alike
BOT = Path(__file__).resolve().parent / "node" / "ccxt_bot.cjs"


def _cache_dir() -> Path:
    raw = os.environ.get("VENUEGUARD_NODE_CACHE")
    base = Path(raw) if raw else Path.home() / ".cache" / "venueguard"
    return base / f"node-ccxt-{CCXT_VERSION}"


async def _ccxt_dir() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for the JavaScript ccxt test")
    target = _cache_dir()
    if (target / "node_modules" / "ccxt" / "package.json").is_file():
        return target
    target.mkdir(parents=True, exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        npm, "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(target),
        f"ccxt@{CCXT_VERSION}", stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 300)
    except TimeoutError:
        proc.kill()
        pytest.skip("npm install ccxt did not finish in 300 s (registry unreachable?)")
    if proc.returncode != 0:
        pytest.skip(f"npm install ccxt@{CCXT_VERSION} failed (registry unreachable?): "
                    f"{err.decode(errors='replace').strip()[-300:]}")
    return target


@pytest.mark.parametrize("exchange", ["bitmex", "binanceusdm"])
async def test_node_ccxt_bot_through_the_proxy(proxied: Proxied, exchange: str) -> None:
    ccxt_dir = await _ccxt_dir()
    dialect = "bitmex" if exchange == "bitmex" else "binance-usdm"
    sim, proxy = await proxied(dialect=dialect, rate=200.0)
    proc = await asyncio.create_subprocess_exec(
        "node", str(BOT), str(ccxt_dir), proxy.base_url, exchange, sim.api_key, sim.api_secret,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, (out + err).decode(errors="replace")[-2000:]
    seen = orjson.loads(out.strip().splitlines()[-1])
    assert seen["version"] == CCXT_VERSION
    assert seen["market"] == ("XBTUSD" if exchange == "bitmex" else "BTCUSDT")
    assert seen["bestBid"] < seen["bestAsk"]
    assert (seen["created"], seen["canceled"]) == ("open", "canceled")
    assert seen["watched"] == 5 and seen["watchedBidBelowAsk"] is True
    truth = await sim.truth()
    assert len(truth["orders"]) == 1 and proxy.server.ws_opened_total >= 1
