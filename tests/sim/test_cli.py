"""``venueguard sim`` as a process: the first line, serving, clean shutdown, config errors."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.request

import orjson
import pytest

from venueguard.cli import main


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "venueguard", "sim", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_prints_listening_line_serves_and_stops_on_sigterm() -> None:
    proc = _spawn("--seed", "3", "--scenario", "calm")
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        assert first.startswith("listening on http://127.0.0.1:")
        url = first.removeprefix("listening on ")
        with urllib.request.urlopen(url + "/api/v1/instrument/active", timeout=5) as resp:
            assert [r["symbol"] for r in orjson.loads(resp.read())] == ["XBTUSD"]
        with urllib.request.urlopen(url + "/_sim/faults", timeout=5) as resp:
            assert orjson.loads(resp.read())["faults"] == []
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_sigint_stops_cleanly() -> None:
    proc = _spawn()
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("listening on ")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.parametrize(("args", "needle"), [
    (("--scenario", "nope"), "neither a shipped scenario"),
    (("--symbols", "DOGEUSD"), "unknown symbol 'DOGEUSD'"),
    (("--rate", "0"), "--rate: must be a number greater than 0 and at most 1000000, not '0'"),
    (("--api-key", "k"), "--api-key and --api-secret go together"),
    (("--replay", "/nonexistent/rec.jsonl"), "cannot read"),
])
def test_configuration_errors_exit_2_with_a_message(
        args: tuple[str, ...], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main(["sim", "--port", "0", *args])
    except SystemExit as exc:  # refused by the argument parser
        code = exc.code
    assert code == 2
    captured = capsys.readouterr()
    assert needle in captured.err and captured.out == ""


@pytest.mark.parametrize("rate", ["inf", "1e9", "nan", "-1", "0", "²"])
def test_a_rate_out_of_range_is_refused_before_listening(rate: str) -> None:
    """``--rate inf`` or ``1e9`` used to pin a core and grow memory with nobody connected,
    ``--rate nan`` printed the listening line and then answered 500s."""
    done = subprocess.run([sys.executable, "-m", "venueguard", "sim", "--port", "0",
                           "--rate", rate], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert ("argument --rate: must be a number greater than 0 and at most 1000000, "
            f"not {rate!r}") in done.stderr
    assert "Traceback" not in done.stderr


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def _subscribe_and_read(url: str, seconds: float) -> int:
    import asyncio

    import aiohttp

    frames = 0
    async with aiohttp.ClientSession() as session, session.ws_connect(
            url.replace("http://", "ws://") + "/realtime?subscribe=orderBookL2:XBTUSD"
            "&subscribe=trade:ETHUSD") as ws:
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while loop.time() < end:
            try:
                await asyncio.wait_for(ws.receive(), timeout=1.0)
            except TimeoutError:
                continue
            frames += 1
    return frames


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stops_within_a_bounded_time_at_the_maximum_rate_with_a_subscriber(
        signum: signal.Signals) -> None:
    """At the highest rate it accepts, with two symbols and a subscriber reading, the
    simulator's memory stays bounded and a signal stops it within seconds."""
    import asyncio
    import threading
    import time

    proc = _spawn("--rate", "1000000", "--symbols", "XBTUSD,ETHUSD", "--scenario", "calm")
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip().removeprefix("listening on ")
        assert url.startswith("http://127.0.0.1:")
        frames: list[int] = []
        reader = threading.Thread(
            target=lambda: frames.append(asyncio.run(_subscribe_and_read(url, 8.0))))
        reader.start()
        time.sleep(2.0)
        early = _rss_mb(proc.pid)
        time.sleep(3.0)
        late = _rss_mb(proc.pid)
        assert late < early + 150, (early, late)  # it grew ~130 MB/s when unbounded
        sent = time.monotonic()
        proc.send_signal(signum)
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - sent < 15
        reader.join(timeout=30)
        assert frames and frames[0] > 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
