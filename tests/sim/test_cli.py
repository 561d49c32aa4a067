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
