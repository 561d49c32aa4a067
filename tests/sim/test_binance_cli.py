"""``venueguard sim --dialect binance-usdm``: the process, its configuration errors, and a
scenario's faults reaching the Binance dialect."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import orjson
import pytest

from venueguard.cli import main
from venueguard.sim.binance.testing import running_binance_sim

pytestmark = pytest.mark.system


def test_serves_both_dialects_on_one_port() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "venueguard", "sim", "--port", "0",
                             "--dialect", "binance-usdm", "--symbols", "BTCUSDT,ETHUSDT"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        assert first.startswith("listening on http://127.0.0.1:")
        url = first.removeprefix("listening on ")
        proc.stdout.readline()
        assert f"binance-usdm REST {url}/fapi" in proc.stdout.readline()
        with urllib.request.urlopen(url + "/fapi/v1/exchangeInfo", timeout=5) as resp:
            info = orjson.loads(resp.read())
        assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT", "ETHUSDT"]
        with urllib.request.urlopen(url + "/api/v1/instrument/active", timeout=5) as resp:
            assert {r["symbol"] for r in orjson.loads(resp.read())} == {"BTCUSDT", "ETHUSDT"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.parametrize(("args", "needle"), [
    (("--symbols", "XBTUSD"), "lists USDT-margined symbols only"),
    (("--book-format", "legacy"), "needs the modern book format"),
    (("--replay", "/nonexistent/capture.txt"), "cannot read"),
])
def test_configuration_errors_exit_2(args: tuple[str, ...], needle: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "--port", "0", "--dialect", "binance-usdm", *args]) == 2
    captured = capsys.readouterr()
    assert needle in captured.err and captured.out == ""


async def test_scenario_faults_take_their_binance_form(tmp_path: Path) -> None:
    scenario = tmp_path / "shed.toml"
    scenario.write_text('name = "shed"\ndescription = "always overloaded"\n\n[[fault]]\n'
                        'at_s = 0\nkind = "overload_503"\nprobability = 1.0\n')
    async with running_binance_sim(scenario=scenario) as sim:
        for _ in range(50):
            if await sim.faults():
                break
            await asyncio.sleep(0.02)
        status, _, body = await sim.call("POST", "/fapi/v1/order", {
            "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
            "quantity": "0.010", "price": "45000.0"})
        assert status == 503 and "code" not in body
        truth = await sim.truth()
        assert truth["fault_hits"]["overload_503"] == 1
        assert truth["requests"]["POST /fapi/v1/order"] == 1
