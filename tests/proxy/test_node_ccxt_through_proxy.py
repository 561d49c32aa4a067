"""ccxt's JavaScript package from npm under Node, unchanged but for its URLs, through the proxy to
the simulator: markets, book, create and cancel, and watchOrderBook, for bitmex and binanceusdm.

The package comes from the ``node_ccxt`` fixture (conftest.py): installed once from npm into a
cache directory and reused; without node or npm, or when the npm registry cannot be reached, the
tests skip and say why.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from proxy_client_outcomes import CCXT_STREAMS, NODE_CCXT_REST, REST_KINDS, WS_KINDS, lost

from venueguard.proxy.testing import Proxied

pytestmark = pytest.mark.system

BOT = Path(__file__).resolve().parent / "node" / "ccxt_bot.cjs"


@pytest.mark.parametrize("exchange", ["bitmex", "binanceusdm"])
async def test_node_ccxt_bot_through_the_proxy(proxied: Proxied, node_ccxt: Path,
                                               exchange: str) -> None:
    ccxt_dir = node_ccxt
    dialect = "bitmex" if exchange == "bitmex" else "binance-usdm"
    sim, proxy = await proxied(dialect=dialect, rate=200.0)
    proc = await asyncio.create_subprocess_exec(
        "node", str(BOT), str(ccxt_dir), proxy.base_url, exchange, sim.api_key, sim.api_secret,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, (out + err).decode(errors="replace")[-2000:]
    seen = orjson.loads(out.strip().splitlines()[-1])
    assert seen["version"] == "4.5.78"  # the Python package's version too
    assert seen["market"] == ("XBTUSD" if exchange == "bitmex" else "BTCUSDT")
    assert seen["bestBid"] < seen["bestAsk"]
    assert (seen["created"], seen["canceled"]) == ("open", "canceled")
    assert seen["watched"] == 5 and seen["watchedBidBelowAsk"] is True
    truth = await sim.truth()
    assert len(truth["orders"]) == 1 and proxy.server.ws_opened_total >= 1



async def _faults_both_ways(proxied: Proxied, node_ccxt: Path, exchange: str,
                            kinds: list[tuple[str, dict[str, Any]]], rate: float
                            ) -> tuple[dict[str, str], dict[str, str]]:
    """What the Node bot saw under each of ``kinds``: posted to a simulator it talks to
    directly, and posted to a proxy in front of another."""
    dialect = "bitmex" if exchange == "bitmex" else "binance-usdm"
    direct, _ = await proxied(dialect=dialect, rate=rate)
    upstream, proxy = await proxied(dialect=dialect, rate=rate)
    seen = []
    for sim, base in ((direct, direct.base_url), (upstream, proxy.base_url)):
        proc = await asyncio.create_subprocess_exec(
            "node", str(BOT), str(node_ccxt), base, exchange, sim.api_key, sim.api_secret,
            orjson.dumps(kinds).decode(), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, (out + err).decode(errors="replace")[-2000:]
        seen.append(orjson.loads(out.strip().splitlines()[-1])["faults"])
    on_sim, on_proxy = seen
    return on_sim, on_proxy


@pytest.mark.parametrize("exchange", ["bitmex", "binanceusdm"])
async def test_node_ccxt_sees_each_rest_fault_as_on_the_simulator(
        proxied: Proxied, node_ccxt: Path, exchange: str) -> None:
    """The error class Node ccxt raises on createOrder under every REST fault (or none) is the
    same with the fault posted to the simulator as with it posted to the proxy."""
    on_sim, on_proxy = await _faults_both_ways(proxied, node_ccxt, exchange, REST_KINDS, 50.0)
    assert on_sim == on_proxy
    assert on_sim == NODE_CCXT_REST[exchange]


@pytest.mark.slow
@pytest.mark.parametrize("exchange", ["bitmex", "binanceusdm"])
async def test_node_ccxt_sees_each_stream_fault_as_on_the_simulator(
        proxied: Proxied, node_ccxt: Path, exchange: str) -> None:
    """What Node ccxt's watchOrderBook gives under every websocket fault (its error, silence,
    or updates and how old their time is) is the same posted to the simulator as to the proxy."""
    seen = await _faults_both_ways(proxied, node_ccxt, exchange, WS_KINDS, 200.0)
    on_sim, on_proxy = ({kind: lost(v) for kind, v in both.items()} for both in seen)
    assert on_sim == on_proxy, seen
    assert on_sim == CCXT_STREAMS[exchange]
