"""A small headless-Chromium driver over the DevTools protocol (CDP), on aiohttp's websocket client.

Only what the dashboard test needs: launch, open a page, navigate, evaluate, screenshot, close.
One websocket to the browser endpoint; pages are attached with ``flatten`` sessions, so every
command carries its ``sessionId``.

    async with Chromium.launch(path, profile_dir) as browser:
        page = await browser.new_page()
        await page.navigate(url)
        title = await page.evaluate("document.title")
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

_LISTENING = re.compile(rb"DevTools listening on (ws://\S+)")

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
    "--window-size=1280,1000",
    "--hide-scrollbars",
    "--mute-audio",
)


class CDPError(RuntimeError):
    pass


class Page:
    def __init__(self, browser: Chromium, session_id: str, target_id: str) -> None:
        self._browser = browser
        self.session_id = session_id
        self.target_id = target_id
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self._browser.send(method, params, session_id=self.session_id)

    async def navigate(self, url: str, timeout_s: float = 20.0) -> None:
        """Navigate and wait for the load event."""
        await self.send("Page.enable")
        while not self._events.empty():
            self._events.get_nowait()
        result = await self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise CDPError(f"navigation to {url} failed: {result['errorText']}")
        async with asyncio.timeout(timeout_s):
            while True:
                event = await self._events.get()
                if event.get("method") == "Page.loadEventFired":
                    return

    async def evaluate(self, expression: str) -> Any:
        """Evaluate ``expression`` in the page (promises awaited) and return its JSON value."""
        result = await self.send("Runtime.evaluate", {
            "expression": expression, "returnByValue": True, "awaitPromise": True,
        })
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise CDPError(f"page raised: {text}")
        return result.get("result", {}).get("value")

    async def wait_for(self, expression: str, timeout_s: float = 15.0, poll_s: float = 0.1) -> Any:
        """Poll ``expression`` until it is truthy; return its value."""
        async with asyncio.timeout(timeout_s):
            while True:
                value = await self.evaluate(expression)
                if value:
                    return value
                await asyncio.sleep(poll_s)

    async def screenshot(self, path: Path) -> bytes:
        result = await self.send("Page.captureScreenshot",
                                 {"format": "png", "captureBeyondViewport": True})
        data = base64.b64decode(result["data"])
        await asyncio.to_thread(path.write_bytes, data)
        return data


class Chromium:
    """A running headless Chromium connected over CDP."""

    def __init__(self, process: asyncio.subprocess.Process, ws: aiohttp.ClientWebSocketResponse,
                 session: aiohttp.ClientSession) -> None:
        self._process = process
        self._ws = ws
        self._session = session
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._pages: dict[str, Page] = {}
        self._reader = asyncio.create_task(self._read(), name="cdp-reader")

    @classmethod
    @contextlib.asynccontextmanager
    async def launch(cls, executable: str, profile_dir: Path,
                     timeout_s: float = 30.0) -> AsyncIterator[Chromium]:
        process = await asyncio.create_subprocess_exec(
            executable, *FLAGS, f"--user-data-dir={profile_dir}", "about:blank",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, start_new_session=True,
        )
        drain: asyncio.Task[None] | None = None
        session: aiohttp.ClientSession | None = None
        browser: Chromium | None = None
        try:
            ws_url = await _read_ws_url(process, timeout_s)
            drain = asyncio.create_task(_drain(process))
            session = aiohttp.ClientSession()
            ws = await session.ws_connect(ws_url, max_msg_size=64 * 1024 * 1024)
            browser = cls(process, ws, session)
            yield browser
        finally:
            if browser is not None:
                await browser._shutdown()
            if session is not None:
                await session.close()
            await _stop(process)
            if drain is not None:
                drain.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await drain

    async def send(self, method: str, params: dict[str, Any] | None = None, *,
                   session_id: str | None = None, timeout_s: float = 20.0) -> dict[str, Any]:
        self._next_id += 1
        msg_id = self._next_id
        message: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = future
        await self._ws.send_json(message)
        try:
            async with asyncio.timeout(timeout_s):
                reply = await future
        finally:
            self._pending.pop(msg_id, None)
        if "error" in reply:
            raise CDPError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def new_page(self, url: str = "about:blank") -> Page:
        target = await self.send("Target.createTarget", {"url": url})
        target_id = target["targetId"]
        attached = await self.send("Target.attachToTarget",
                                   {"targetId": target_id, "flatten": True})
        page = Page(self, attached["sessionId"], target_id)
        self._pages[page.session_id] = page
        return page

    async def _read(self) -> None:
        async for msg in self._ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = msg.json()
            if "id" in data:
                future = self._pending.get(data["id"])
                if future is not None and not future.done():
                    future.set_result(data)
            elif "sessionId" in data and data["sessionId"] in self._pages:
                self._pages[data["sessionId"]]._events.put_nowait(data)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(CDPError("browser connection closed"))

    async def _shutdown(self) -> None:
        with contextlib.suppress(Exception):
            await self.send("Browser.close", timeout_s=5.0)
        await self._ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


async def _read_ws_url(process: asyncio.subprocess.Process, timeout_s: float) -> str:
    assert process.stderr is not None
    seen: list[bytes] = []
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                line = await process.stderr.readline()
                if not line:
                    break
                seen.append(line)
                match = _LISTENING.search(line)
                if match:
                    return match.group(1).decode()
    except TimeoutError:
        pass
    tail = b"".join(seen[-10:]).decode(errors="replace")
    raise CDPError(f"chromium did not report its DevTools endpoint; stderr tail:\n{tail}")


async def _drain(process: asyncio.subprocess.Process) -> None:
    assert process.stderr is not None
    while await process.stderr.read(65536):
        pass


async def _stop(process: asyncio.subprocess.Process) -> None:
    """Wait for the browser to exit; kill its own process group if it lingers."""
    try:
        async with asyncio.timeout(5.0):
            await process.wait()
            return
    except TimeoutError:
        pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(5.0):
            await process.wait()
