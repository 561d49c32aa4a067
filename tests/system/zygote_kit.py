"""Forking crash workers: the worker side (:func:`serve`) and the test side (:class:`Zygote`).

A worker script imports everything once and calls ``serve(run, args)``, which prints ``warm 0``
(the imports are done) and then, for each stdin line
``spawn ARG...`` (``args`` of them) it forks a child running ``asyncio.run(run(*ARGS))`` and
prints ``spawned PID``; it prints ``exited PID STATUS`` when a child ends and ``failed PID ...``
when one raised; ``quit`` ends it. Forking a warm process makes dozens of crash/restart rounds
affordable (a cold interpreter start costs about a second here). Every line is one ``write``
shorter than PIPE_BUF, so lines from the zygote and its children never interleave.

The test side: ``async with zygote(WORKER) as z: pid = await z.spawn(...)`` (entered once the
zygote is warm, so a loaded machine's slow imports never eat into a test's timed phases), then
``z.wait_line(kind, pid, timeout_s)`` and ``z.kill(pid)`` (SIGKILL, only to a child it spawned).
Lines ``order PID ...`` are counted (``orders``); ``ready PID N...`` keep their numbers
(``ready``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path


def say(text: str) -> None:
    os.write(1, (text + "\n").encode())


def _reap(signum: int, frame: object) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        say(f"exited {pid} {status}")


def serve(run: Callable[..., Awaitable[None]], args: int) -> None:
    """The zygote loop (see the module docstring)."""
    signal.signal(signal.SIGCHLD, _reap)
    say("warm 0")
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "quit":
            break
        if parts[0] != "spawn" or len(parts) != args + 1:
            say(f"error {line.strip()!r}")
            continue
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            code = 0
            try:
                asyncio.run(run(*parts[1:]))
            except BaseException as exc:    # report how a child ended, whatever it was
                say(f"failed {os.getpid()} {type(exc).__name__}: {exc}"[:400])
                code = 1
            os._exit(code)
        say(f"spawned {pid}")


class Zygote:
    """The forking worker parent; lines it prints are dispatched by kind and pid."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: dict[tuple[str, int], asyncio.Future[str]] = {}
        self.orders: Counter[int] = Counter()
        self.ready: list[list[int]] = []
        self.failures: list[str] = []
        self._spawned: asyncio.Queue[int] = asyncio.Queue()
        self.live: set[int] = set()
        self._reader = asyncio.create_task(self._read())

    def _future(self, kind: str, pid: int) -> asyncio.Future[str]:
        return self.lines.setdefault((kind, pid), asyncio.get_running_loop().create_future())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            parts = raw.decode().split()
            if len(parts) < 2:
                continue
            kind, pid = parts[0], int(parts[1]) if parts[1].isdigit() else -1
            if kind == "spawned":
                self.live.add(pid)
                self._spawned.put_nowait(pid)
            elif kind == "order":
                self.orders[pid] += 1
            elif kind == "ready" and len(parts) > 2:
                self.ready.append([int(x) for x in parts[2:]])
            elif kind == "failed":
                self.failures.append(raw.decode())
            elif kind == "exited":
                self.live.discard(pid)
            future = self._future(kind, pid)
            if not future.done():
                future.set_result(raw.decode())

    async def spawn(self, *args: object) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.write(("spawn " + " ".join(str(a) for a in args) + "\n").encode())
        await self.proc.stdin.drain()
        async with asyncio.timeout(10):
            return await self._spawned.get()

    async def wait_line(self, kind: str, pid: int, timeout_s: float) -> bool:
        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.shield(self._future(kind, pid))
            return True
        except TimeoutError:
            return False

    def kill(self, pid: int) -> None:
        if pid in self.live:
            os.kill(pid, signal.SIGKILL)      # only a child this test spawned, by its id

    async def close(self) -> None:
        for pid in list(self.live):
            self.kill(pid)
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.write(b"quit\n")
            self.proc.stdin.close()
        try:
            async with asyncio.timeout(10):
                await self.proc.wait()
        finally:
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()
            self._reader.cancel()


@asynccontextmanager
async def zygote(worker: Path) -> AsyncIterator[Zygote]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(worker), "zygote", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, cwd=str(worker.parent))
    z = Zygote(proc)
    try:
        assert await z.wait_line("warm", 0, 120.0), "the zygote never finished its imports"
        yield z
    finally:
        await z.close()
