"""The newcomer's first hour, as a test: what `make run` runs, on an 80-column terminal, up to
the first status line with the dashboard answering; then Ctrl-C. (The README's bot example runs
verbatim in ``tests/test_examples.py``.)"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.system, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent.parent
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _make_target(name: str) -> list[str]:
    """The recipe lines of a Makefile target, without make's ``@``."""
    text = (ROOT / "Makefile").read_text()
    found = re.search(rf"^{re.escape(name)}:[^\n]*\n((?:\t[^\n]*\n)+)", text, re.MULTILINE)
    assert found, f"Makefile has no {name} target"
    return [line.strip().lstrip("@") for line in found.group(1).splitlines()]


def test_make_run_shows_progress_while_it_installs() -> None:
    setup = _make_target("$(STAMP)")
    echoes = [line for line in setup if line.startswith("echo ")]
    assert len(echoes) >= 3 and "[1/3]" in echoes[0]
    install = next(line for line in setup if "pip install" in line and " -e " in line)
    assert "--quiet" not in install and "-q " not in install  # pip's own progress shows
    assert _make_target("run") == ["$(VENV)/bin/venueguard monitor"]


def test_the_build_declares_its_license_as_setuptools_wants_it() -> None:
    """A table ``license = {text = ...}`` makes setuptools print a block of deprecation
    warnings in the middle of `make run`'s install."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT"
    assert project["project"]["license-files"] == ["LICENSE"]
    assert "setuptools>=77" in project["build-system"]["requires"]


def test_make_run_itself_prints_the_dashboard_url_first(tmp_path: Path) -> None:
    """`make run` as typed, with the set-up already done (its stamp newer than pyproject.toml):
    make adds nothing before the monitor's first line, the dashboard's URL."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    command = bin_dir / "venueguard"  # this checkout's venueguard, as the set-up installs it
    command.write_text(f"#!/bin/sh\nPYTHONPATH={ROOT / 'src'} exec {sys.executable} "
                       '-m venueguard "$@"\n')
    command.chmod(0o755)
    earlier = time.time() - 60
    os.utime(tmp_path / "pyproject.toml", (earlier, earlier))
    (tmp_path / ".venv" / ".installed").touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VENUEGUARD_", "MAKE"))}
    env["VENUEGUARD_PORT"] = "0"
    proc = subprocess.Popen([make, "--no-print-directory", "run"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=tmp_path, env=env,
                            start_new_session=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert re.fullmatch(r"venueguard monitor: dashboard http://127\.0\.0\.1:\d+/ "
                            r"\(Ctrl-C stops\)\n", first), first
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches make and the monitor
        proc.wait(timeout=30)
        rest = proc.stdout.read()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert "Traceback" not in rest, rest[-2000:]


def _read_until(fd: int, proc: subprocess.Popen[bytes], pattern: re.Pattern[str],
                seen: list[str], timeout_s: float) -> re.Match[str]:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        found = pattern.search("".join(seen))
        if found:
            return found
        assert proc.poll() is None, "".join(seen)[-2000:]
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            time.sleep(0.05)
            continue
        seen.append(chunk.decode("utf-8", "replace"))
    raise AssertionError(f"{pattern.pattern!r} not seen in: {''.join(seen)[-2000:]}")


def test_make_run_on_an_80_column_terminal(tmp_path: Path) -> None:
    """`venueguard monitor` with no options, in a fresh folder, on an 80x24 terminal: the first
    line is the dashboard URL, the dashboard answers, the status line is drawn within 80
    columns, and Ctrl-C stops it with exit 0."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    os.set_blocking(master, False)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("VENUEGUARD_") and k not in ("COLUMNS", "LINES")}
    env["VENUEGUARD_PORT"] = "0"  # the command line stays make's; the port must not collide
    command = _make_target("run")[0].replace("$(VENV)/bin/venueguard",
                                             f"{sys.executable} -m venueguard").split()
    proc = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, cwd=tmp_path,
                            env=env, start_new_session=True)
    os.close(slave)
    seen: list[str] = []
    try:
        first = _read_until(master, proc, re.compile(r"^(.*?)\r?\n"), seen, 60).group(1)
        url = re.fullmatch(r"venueguard monitor: dashboard (http://127\.0\.0\.1:\d+/) "
                           r"\(Ctrl-C stops\)",
                           ANSI.sub("", first))
        assert url, first
        _read_until(master, proc, re.compile(r"\r\d\d:\d\d:\d\d XBTUSD "), seen, 60)
        with urllib.request.urlopen(url.group(1), timeout=10) as page:
            assert page.status == 200 and b"venueguard" in page.read()
        with urllib.request.urlopen(url.group(1) + "api/state", timeout=10) as state:
            assert state.status == 200
        time.sleep(2.5)  # a few redraws
        _read_until(master, proc, re.compile(r"\r\d\d:\d\d:0[2-9] XBTUSD "), seen, 30)
        with urllib.request.urlopen(url.group(1) + "api/state", timeout=10) as state:
            liveness = json.loads(state.read())["liveness"]
        assert liveness["pong_age_s"] is not None, liveness  # measured on a busy stream too
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for _ in range(20):
            try:
                chunk = os.read(master, 65536)
            except (BlockingIOError, OSError):
                break
            seen.append(chunk.decode("utf-8", "replace"))
        os.close(master)
    drawn = [ANSI.sub("", part) for part in "".join(seen).replace("\n", "\r").split("\r")]
    status = [line for line in drawn if re.match(r"\d\d:\d\d:\d\d XBTUSD ", line)]
    assert len(status) >= 3, drawn[-20:]
    assert len(ANSI.sub("", first)) <= 79, first
    assert all(len(line) <= 79 for line in status), max(status, key=len)
    for line in status:  # the essentials are all there, none cut
        assert re.match(r"\d\d:\d\d:\d\d XBTUSD \S+/\S+ (fresh|STALE) [0-9.]+s "
                        r"(HEALTHY|DEGRADED|COOLDOWN|BLOCKED) "
                        r"(NORMAL|CAUTIOUS|SAFE|RECOVERING) 503/m \d+", line), line
    assert (tmp_path / "venueguard.db").exists()
