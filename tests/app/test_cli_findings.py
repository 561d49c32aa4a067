"""What a newcomer and a red team met on the command line, one system test each: the command
as a person types it, in its own process, against simulators on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.system, pytest.mark.slow]

ENV = {k: v for k, v in os.environ.items() if not k.startswith("VENUEGUARD_")}


def _sim(*args: str) -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-m", "venueguard", "sim", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=ENV)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("listening on "), line
        yield line.removeprefix("listening on ")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.fixture(scope="module")
def calm_sim() -> Iterator[str]:
    yield from _sim("--scenario", "calm")


@pytest.fixture(scope="module")
def binance_sim() -> Iterator[str]:
    yield from _sim("--dialect", "binance-usdm", "--scenario", "calm")


def venueguard(tmp_path: Path, *args: str, timeout_s: float = 90
               ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "venueguard", *args], capture_output=True,
                          text=True, timeout=timeout_s, cwd=tmp_path, env=ENV)


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr  # once, not twice
    assert done.stdout == ""
    assert "Traceback" not in done.stderr and "Error:" not in done.stderr, done.stderr
    return lines[0]


def test_an_unknown_symbol_on_an_external_simulator_is_one_clear_error(
        tmp_path: Path, calm_sim: str) -> None:
    """It used to loop stale-and-reconnect every 10 s with an empty book, then exit 0."""
    line = one_error_line(venueguard(tmp_path, "monitor", "--symbol", "NOPE", "--sim-url",
                                     calm_sim, "--port", "0", "--duration", "30"))
    assert line == (f"venueguard monitor: unknown symbol 'NOPE' at {calm_sim} (it lists: "
                    "XBTUSD); choose one with --symbol")


def test_an_unknown_symbol_on_the_embedded_simulator_is_the_same_kind_of_line(
        tmp_path: Path) -> None:
    line = one_error_line(venueguard(tmp_path, "monitor", "--symbol", "NOPE", "--port", "0",
                                     "--duration", "30"))
    assert line.startswith("venueguard monitor: simulator: unknown symbol 'NOPE' (known: ")
    assert "XBTUSD" in line


def test_a_zero_freshness_threshold_is_refused_naming_the_key(tmp_path: Path) -> None:
    """`config show` passed it and the monitor failed with an internal name
    (max_data_age_s must be > 0)."""
    (tmp_path / "venueguard.toml").write_text("[thresholds]\ndefault_freshness_s = 0\n")
    expected = ("venueguard: venueguard.toml:2: thresholds.default_freshness_s must be a "
                "number greater than 0, not 0")
    for args in (("config", "show"), ("monitor", "--port", "0", "--duration", "30")):
        done = venueguard(tmp_path, *args, "--config", "venueguard.toml")
        assert done.returncode == 2 and done.stdout == "", done
        assert done.stderr.strip() == expected
        assert "max_data_age_s" not in done.stderr


def test_ccxt_binanceusdm_without_symbol_is_one_line_without_internals(
        tmp_path: Path, binance_sim: str) -> None:
    pytest.importorskip("ccxt")
    line = one_error_line(venueguard(tmp_path, "monitor", "--venue", "ccxt:binanceusdm",
                                     "--sim-url", binance_sim, "--port", "0",
                                     "--duration", "30"))
    assert line.startswith("venueguard monitor: symbol 'XBTUSD' is not listed by ccxt "
                           "binanceusdm"), line
    assert "--symbol" in line and "sessions:" not in line and "ConfigError" not in line


def test_monitor_ready_reports_the_external_simulators_scenario(
        tmp_path: Path, calm_sim: str) -> None:
    """It claimed the embedded default (503-lesson) while the simulator ran calm."""
    done = venueguard(tmp_path, "monitor", "--sim-url", calm_sim, "--port", "0",
                      "--duration", "2", "--log-format", "json")
    assert done.returncode == 0, done.stderr
    ready = [r for r in map(json.loads, done.stdout.splitlines()) if r["event"] ==
             "monitor.ready"]
    assert len(ready) == 1 and ready[0]["scenario"] == "calm", ready


def test_monitor_help_lists_every_venue_and_what_it_refuses(tmp_path: Path) -> None:
    done = venueguard(tmp_path, "monitor", "--help")
    assert done.returncode == 0
    text = done.stdout
    assert "--venue sim|bitmex|bitmex-testnet|binance-usdm|binance-usdm-testnet|ccxt:ID" in text
    for word in ("bitmex-testnet", "ccxt:EXCHANGE_ID", "It refuses", "--symbol the venue does",
                 "--fleet-size without --redis", "states the", "loopback"):
        assert word in " ".join(text.split()), word
    for option in ("--rules", "--redis", "--fleet-size"):
        assert option in text


def test_the_monitor_stops_on_sigterm_while_the_simulator_floods_it(tmp_path: Path) -> None:
    """A long-running command stops on a signal within a bounded time whatever its load: here
    the simulator sends a million book messages a second."""
    for url in _sim("--rate", "1000000", "--scenario", "calm"):
        proc = subprocess.Popen(
            [sys.executable, "-m", "venueguard", "monitor", "--sim-url", url, "--port", "0",
             "--log-format", "json"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, cwd=tmp_path, env=ENV)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if json.loads(line)["event"] == "ws.subscribed":
                    break
            # keep reading its event log: a full pipe would block the monitor's writes, which
            # is the reader's doing, not the monitor's
            drain = threading.Thread(target=proc.stdout.read, daemon=True)
            drain.start()
            time.sleep(3.0)
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
            assert time.monotonic() - sent < 30
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_proxy_stops_on_a_signal_while_it_relays_a_flood(tmp_path: Path,
                                                             signum: signal.Signals) -> None:
    """`venueguard proxy --guard` between a subscriber and a simulator sending a million book
    messages a second stops on a signal within a bounded time, exit 0, no traceback."""
    aiohttp = pytest.importorskip("aiohttp")
    for url in _sim("--rate", "1000000", "--scenario", "calm"):
        proc = subprocess.Popen(
            [sys.executable, "-m", "venueguard", "proxy", "--upstream", url, "--port", "0",
             "--guard", "--no-journal"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, cwd=tmp_path, env=ENV)
        try:
            assert proc.stdout is not None
            proxy_url = proc.stdout.readline().strip().removeprefix("listening on ")

            async def subscribe_and_signal(proxy_url: str,
                                           proc: subprocess.Popen[str]) -> int:
                async with aiohttp.ClientSession() as http, http.ws_connect(
                        proxy_url.replace("http://", "ws://") + "/realtime") as ws:
                    await ws.send_json({"op": "subscribe", "args": ["orderBookL2:XBTUSD"]})
                    received, started = 0, time.monotonic()
                    while time.monotonic() - started < 3.0:
                        await ws.receive(timeout=10)
                        received += 1
                    proc.send_signal(signum)  # while the flood runs, the subscriber connected
                    return received

            assert asyncio.run(subscribe_and_signal(proxy_url, proc)) > 100
            sent = time.monotonic()
            code = proc.wait(timeout=30)
            assert time.monotonic() - sent < 30
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
        assert code == 0, (code, err[-2000:])
        assert "Traceback" not in err, err[-2000:]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_chaos_stops_on_a_signal(tmp_path: Path, signum: signal.Signals) -> None:
    # as from a terminal: a background job's inherited "ignore SIGINT" is put back to default
    with subprocess.Popen([sys.executable, "-m", "venueguard", "chaos", "--seeds", "100000"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          cwd=tmp_path, env=ENV,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().startswith(
                "venueguard chaos (sim, virtual time): 100000 seed(s)")
            time.sleep(2.0)
            assert proc.poll() is None  # still working through its seeds
            proc.send_signal(signum)
            code = proc.wait(timeout=30)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    # either signal: the summary of the seeds done, then exit 130 (none failed)
    assert code == 130, code
    assert " seed(s), " in out and "seeds/min" in out, out[-2000:]
    assert "Traceback" not in err, err[-2000:]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_chaos_over_sockets_stops_on_a_signal_with_its_summary(tmp_path: Path,
                                                               signum: signal.Signals) -> None:
    """Over real sockets SIGTERM killed the run with no summary (-15) and Ctrl-C ended it with
    none either; now both end it as in virtual time: the seeds done, then exit 130."""
    with subprocess.Popen([sys.executable, "-m", "venueguard", "chaos", "--sockets", "--seeds",
                           "1000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          cwd=tmp_path, env=ENV,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().startswith("venueguard chaos (sim): 1000 seed(s)")
            proc.stdout.readline()  # the table's header
            assert re.match(r"\s+1/1000 ", proc.stdout.readline())  # a seed is done
            proc.send_signal(signum)
            code = proc.wait(timeout=30)
            out, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert code == 130, (code, err[-2000:])
    assert re.search(r"interrupted after \d+ of 1000 seed\(s\)", out), out[-2000:]
    assert "all invariants held (interrupted: " in out, out[-2000:]
    assert "Traceback" not in err, err[-2000:]


@pytest.mark.parametrize("group", [False, True], ids=["to-chaos", "to-its-process-group"])
def test_chaos_stops_cleanly_on_a_signal_while_its_workers_start(tmp_path: Path,
                                                                 group: bool) -> None:
    """A stop that came while the worker pool was starting (a second or more under load) left
    the workers without their start-up state: each printed a traceback (the pool's semaphores
    gone), and Ctrl-C to the process group made the forkserver print one from its imports."""
    with subprocess.Popen([sys.executable, "-m", "venueguard", "chaos", "--seeds", "100000"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          cwd=tmp_path, env=ENV, start_new_session=True) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().startswith("venueguard chaos")
            time.sleep(0.3)  # the forkserver is importing the stack, no worker is ready yet
            if group:
                os.killpg(proc.pid, signal.SIGINT)   # Ctrl-C in a terminal
            else:
                proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
            out, err = proc.communicate(timeout=30)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:  # the forkserver and the workers end too
                try:
                    os.killpg(proc.pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                raise AssertionError("processes of the chaos run outlived it")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    assert code == 130, (code, err[-2000:])
    assert "interrupted after 0 of 100000 seed(s)" in out, out[-2000:]
    assert "Traceback" not in err, err[-3000:]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_gym_eval_stops_on_a_signal(tmp_path: Path, signum: signal.Signals) -> None:
    pytest.importorskip("gymnasium")
    proc = subprocess.Popen([sys.executable, "-m", "venueguard", "gym-eval", "--seeds", "10000",
                             "--plot", ""], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path, env=ENV,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        time.sleep(6.0)
        assert proc.poll() is None  # 10,000 episodes per policy and mode: far from done
        proc.send_signal(signum)
        code = proc.wait(timeout=30)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == (130 if signum == signal.SIGINT else -signal.SIGTERM), code
    assert "Traceback" not in err, err[-2000:]
