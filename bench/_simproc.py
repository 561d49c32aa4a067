"""For the benchmarks: `venueguard sim` in a child process, so the client is measured alone."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator


@contextlib.asynccontextmanager
async def simulator(*args: str) -> AsyncIterator[str]:
    """``venueguard sim ARGS`` on a free loopback port; yields its base URL (http://...)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "venueguard", "sim", "--port", "0", *args,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode().strip()
        if not line.startswith("listening on "):
            raise RuntimeError(f"simulator did not start: {line!r}")
        yield line.removeprefix("listening on ")
    finally:
        proc.terminate()
        await proc.wait()


def ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://", 1) + "/realtime"
