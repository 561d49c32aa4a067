"""The recipes of docs/rehearse-with-your-bot.md, run with their exact configuration lines (only
the proxy's address put in for 127.0.0.1:8899) against the simulator behind the proxy:

- freqtrade's ``ccxt_config`` / ``ccxt_async_config``, merged over ccxt's ``binance`` class as
  freqtrade merges them in futures mode (``defaultType`` ``swap``): markets, book, an order
  placed and canceled, and the websocket book;
- the Node ccxt snippet, run by node with ccxt from npm: markets and ``watchOrderBook``;
- the nautilus_trader snippet: the ``TradingNode`` it builds runs, connects both BitMEX clients
  and reconciles the account through the proxy.

Every request the clients make is checked to go to the proxy (nothing reaches a real venue).
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import orjson
import pytest

from venueguard.proxy.testing import Proxied

pytestmark = pytest.mark.system

DOC = Path(__file__).resolve().parents[2] / "docs" / "rehearse-with-your-bot.md"
PLACEHOLDER = "127.0.0.1:8899"


def _block(section: str, lang: str) -> str:
    """The first ``lang`` code block under the ``## section`` heading."""
    text = DOC.read_text()
    part = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    found = re.search(rf"```{lang}\n(.*?)```", part, re.DOTALL)
    assert found, f"no {lang} block under {section}"
    return found.group(1)


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _only_to(exchange: Any, base_url: str) -> list[str]:
    """Make ``exchange`` refuse any URL but the proxy's; returns the list of URLs fetched."""
    fetched: list[str] = []
    fetch = exchange.fetch

    async def checked(url: str, *args: Any, **kwargs: Any) -> Any:
        assert url.startswith(base_url + "/"), f"{url} does not go through the proxy"
        fetched.append(url)
        return await fetch(url, *args, **kwargs)

    exchange.fetch = checked
    return fetched


async def test_the_freqtrade_recipe_trades_through_the_proxy(proxied: Proxied) -> None:
    sim, proxy = await proxied(dialect="binance-usdm", rate=200.0)
    address = proxy.base_url.removeprefix("http://")
    config = json.loads(_block("freqtrade", "json").replace(PLACEHOLDER, address))
    assert config["trading_mode"] == "futures" and config["exchange"]["name"] == "binance"
    freqtrade_futures = {"options": {"defaultType": "swap"}}  # what freqtrade adds for futures
    settings = _deep_merge(freqtrade_futures, config["exchange"]["ccxt_async_config"])
    assert settings == _deep_merge(freqtrade_futures, config["exchange"]["ccxt_config"])
    keys = {"apiKey": sim.api_key, "secret": sim.api_secret}
    symbol = "BTC/USDT:USDT"
    exchange = ccxt_async.binance({**keys, **settings})
    fetched = _only_to(exchange, proxy.base_url)
    try:
        markets = await exchange.load_markets()
        assert markets[symbol]["id"] == "BTCUSDT" and markets[symbol]["linear"]
        book = await exchange.fetch_order_book(symbol, 5)
        order = await exchange.create_order(symbol, "limit", "buy", 0.01,
                                             book["bids"][0][0] - 500)
        assert order["status"] == "open"
        assert (await exchange.cancel_order(order["id"], symbol))["status"] == "canceled"
    finally:
        await exchange.close()
    assert fetched and all("/fapi/" in url for url in fetched)
    streamer = ccxt_pro.binance({**keys, **settings})
    _only_to(streamer, proxy.base_url)
    try:
        for _ in range(3):
            book = await streamer.watch_order_book(symbol)
        assert book["bids"][0][0] < book["asks"][0][0]
        # ccxt splits the futures streams (/public/ws/N, /market/ws/N) under the URL given
        assert streamer.clients and all(url.startswith(proxy.ws_base + "/")
                                        for url in streamer.clients)
    finally:
        await streamer.close()
    truth = await sim.truth()
    assert len(truth["orders"]) == 1 and proxy.server.ws_opened_total >= 1


async def test_the_node_recipe_streams_the_book_through_the_proxy(proxied: Proxied,
                                                                 node_ccxt: Path) -> None:
    ccxt_dir = node_ccxt
    sim, proxy = await proxied(dialect="bitmex", rate=200.0)
    snippet = _block("A Node bot on ccxt", "js").replace(
        PLACEHOLDER, proxy.base_url.removeprefix("http://"))
    program = ("(async () => {\n" + snippet + "\nconsole.log(JSON.stringify({market: "
               "exchange.market('BTC/USD:BTC').id, bid: book.bids[0][0], ask: book.asks[0][0], "
               "urls: exchange.urls.api}));\nawait exchange.close();\n})().catch((err) => "
               "{ console.error(err); process.exit(1); });\n")
    proc = await asyncio.create_subprocess_exec(
        "node", "-e", program, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "NODE_PATH": str(ccxt_dir / "node_modules"), "KEY": sim.api_key,
             "SECRET": sim.api_secret})
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, (out + err).decode(errors="replace")[-2000:]
    seen = orjson.loads(out.strip().splitlines()[-1])
    assert seen["market"] == "XBTUSD" and seen["bid"] < seen["ask"]
    urls = seen["urls"]
    assert (urls["public"], urls["private"]) == (proxy.base_url, proxy.base_url)
    assert urls["ws"] == proxy.ws_base + "/realtime" and proxy.server.ws_opened_total >= 1


NAUTILUS_RUN = """
import asyncio, sys, time
from nautilus_trader.model.identifiers import Venue
ns = {}
exec(sys.stdin.read(), ns)
node = ns["node"]

async def until_connected():
    deadline = time.monotonic() + 40
    kernel = node.kernel
    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        account = kernel.cache.account_for_venue(Venue("BITMEX"))
        if (kernel.data_engine.check_connected() and kernel.exec_engine.check_connected()
                and account is not None):
            print("CONNECTED", account.id, flush=True)
            break
    else:
        print("NOT CONNECTED", flush=True)
    await node.stop_async()

node.get_event_loop().create_task(until_connected())
try:
    node.run()
finally:
    node.dispose()
"""


async def test_the_nautilus_recipe_runs_a_trading_node_through_the_proxy(
        proxied: Proxied) -> None:
    pytest.importorskip("nautilus_trader", reason="nautilus_trader is not installed "
                        "(pip install -e '.[nautilus]'; make test installs it)")
    sim, proxy = await proxied(rate=100.0, sim_overrides={"rest_per_min": 10_000})
    snippet = _block("nautilus_trader", "python")
    assert f'PROXY = "{PLACEHOLDER}"' in snippet
    code = snippet.replace(PLACEHOLDER, proxy.base_url.removeprefix("http://"))
    env = {**os.environ, "BITMEX_TESTNET_API_KEY": sim.api_key,
           "BITMEX_TESTNET_API_SECRET": sim.api_secret}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", NAUTILUS_RUN, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env)
    out, _ = await asyncio.wait_for(proc.communicate(code.encode()), 120)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-3000:]
    assert "CONNECTED BITMEX-1" in text, text[-3000:]
    requests = (await sim.truth())["requests"]
    assert requests.get("GET /api/v1/user/margin", 0) >= 1  # signed, through the proxy
    assert proxy.server.ws_opened_total >= 2  # the data and the execution client's streams
