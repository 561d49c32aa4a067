"""ccxt 4.5.78's ``binanceusdm``, guarded, against the simulator's Binance USD-M dialect
(``venueguard sim --dialect binance-usdm``); skipped, saying so, where this build's simulator
has no such dialect."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import ccxt.pro as ccxt_pro
import pytest

from venueguard.app.ccxt_feeds import point_at
from venueguard.ccxt import guard

pytestmark = [pytest.mark.system, pytest.mark.slow]
SYMBOL = "BTC/USDT:USDT"


@pytest.fixture(scope="module")
def binance_sim() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-m", "venueguard", "sim", "--dialect",
                             "binance-usdm", "--port", "0", "--rate", "100"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            pytest.skip("this build's simulator has no Binance USD-M dialect "
                        "(venueguard sim --dialect binance-usdm)")
        yield line.removeprefix("listening on ")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


async def test_guarded_binanceusdm_book_and_order(binance_sim: str) -> None:
    signing = pytest.importorskip("venueguard.sim.binance.signing")
    raw = ccxt_pro.binanceusdm({"apiKey": signing.TEST_API_KEY,
                                "secret": signing.TEST_API_SECRET})
    point_at(raw, binance_sim, binance_sim.replace("http://", "ws://", 1))
    raw.options = {**raw.options, "fetchCurrencies": False, "fetchMargins": False}
    sent: list[str] = []
    create = raw.create_order

    async def watched(*args: object, **kwargs: object) -> object:
        sent.append(str(args[5]["newClientOrderId"]))  # type: ignore[index]
        return await create(*args, **kwargs)

    raw.create_order = watched
    async with guard(raw) as exchange:
        for _ in range(5):
            book = await exchange.watch_order_book(SYMBOL)
        assert book["bids"][0][0] < book["asks"][0][0]
        order = await exchange.create_order(SYMBOL, "limit", "buy", 0.01,
                                            book["bids"][0][0] - 500)
        assert order["status"] == "open" and order["clientOrderId"] == sent[0]
        assert exchange.order_state(sent[0]) == "NEW"
        canceled = await exchange.cancel_order(order["id"], SYMBOL)
        assert canceled["status"] == "canceled" and exchange.order_state(sent[0]) == "CANCELED"


async def test_monitor_runs_ccxt_binanceusdm_against_the_dialect(binance_sim: str,
                                                                 tmp_path: Path) -> None:
    monitor = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "venueguard", "monitor", "--venue", "ccxt:binanceusdm",
        "--sim-url", binance_sim, "--symbol", SYMBOL, "--duration", "5", "--port", "0",
        "--log-format", "json", "--journal", str(tmp_path / "vg.db"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    out, err = await asyncio.wait_for(monitor.communicate(), 90)
    assert monitor.returncode == 0, err.decode()[-2000:]
    lines = [json.loads(x) for x in out.decode().splitlines() if x.startswith("{")]
    assert any(x["event"] == "monitor.ready" for x in lines)
    assert any(x["event"] == "monitor.stopped" and x["failures"] == [] for x in lines)
