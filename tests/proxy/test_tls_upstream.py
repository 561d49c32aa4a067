"""An ``https``/``wss`` upstream is reached over TLS with the certificate and the host name
checked, for REST and for websockets, by the command as a user runs it.

The upstream is a small TLS server on 127.0.0.1 with a certificate made here; the proxy runs as
``venueguard proxy`` in a child process that trusts that certificate through ``SSL_CERT_FILE``
(the standard way to add a certificate authority to OpenSSL's default paths), so the only
difference between the cases is what the certificate vouches for.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

pytestmark = pytest.mark.system

SRC = str(Path(__file__).resolve().parents[2] / "src")


async def _certificate(tmp_path: Path, name: str, san: str) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not found: cannot make a certificate")
    key, cert = tmp_path / f"{name}.key", tmp_path / f"{name}.pem"
    made = await asyncio.create_subprocess_exec(
        openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
        "-out", str(cert), "-days", "1", "-subj", f"/CN={name}", "-addext",
        f"subjectAltName={san}", stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)
    assert await made.wait() == 0
    return cert, key


@asynccontextmanager
async def _tls_upstream(cert: Path, key: Path, seen: list[str]) -> AsyncIterator[int]:
    """A REST answer on every path and an echoing websocket at ``/realtime``, over TLS."""

    async def rest(request: web.Request) -> web.Response:
        seen.append(f"{request.method} {request.path_qs}")
        return web.json_response({"path": request.path_qs})

    async def socket(request: web.Request) -> web.WebSocketResponse:
        seen.append(f"WS {request.path_qs}")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                await ws.send_str("echo:" + msg.data)
        return ws

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    app = web.Application()
    app.router.add_get("/realtime", socket)
    app.router.add_route("*", "/{tail:.*}", rest)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


@asynccontextmanager
async def _proxy(upstream: str, trusted: Path) -> AsyncIterator[str]:
    env = {**os.environ, "SSL_CERT_FILE": str(trusted),
           "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("SSL_CERT_DIR", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "venueguard", "proxy", "--upstream", upstream,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line.startswith("listening on http://127.0.0.1:"), line
        yield line.split()[-1]
    finally:
        proc.terminate()
        await proc.wait()


async def test_a_trusted_certificate_for_the_host_is_accepted_for_rest_and_websockets(
        tmp_path: Path) -> None:
    cert, key = await _certificate(tmp_path, "venue", "IP:127.0.0.1")
    seen: list[str] = []
    async with (_tls_upstream(cert, key, seen) as port,
                _proxy(f"https://127.0.0.1:{port}", trusted=cert) as base,
                aiohttp.ClientSession() as session):
        async with session.get(base + "/api/v1/instrument?symbol=XBTUSD") as resp:
            assert resp.status == 200
            assert (await resp.json())["path"] == "/api/v1/instrument?symbol=XBTUSD"
        ws_base = base.replace("http://", "ws://", 1)
        async with session.ws_connect(ws_base + "/realtime?subscribe=trade") as ws:
            await ws.send_str("hello")
            assert (await ws.receive(timeout=10)).data == "echo:hello"
    assert seen == ["GET /api/v1/instrument?symbol=XBTUSD", "WS /realtime?subscribe=trade"]


@pytest.mark.parametrize("case", ["other-host", "untrusted"])
async def test_a_certificate_for_another_host_or_untrusted_is_refused(
        tmp_path: Path, case: str) -> None:
    """502 for REST and for the websocket upgrade, and the upstream never gets a request."""
    if case == "other-host":  # trusted, but it vouches for another name
        cert, key = await _certificate(tmp_path, "venue", "DNS:venue.invalid")
        trusted = cert
    else:  # right name, but signed by nobody the proxy trusts
        cert, key = await _certificate(tmp_path, "venue", "IP:127.0.0.1")
        trusted, _ = await _certificate(tmp_path, "someone-else", "IP:127.0.0.1")
    seen: list[str] = []
    async with (_tls_upstream(cert, key, seen) as port,
                _proxy(f"https://127.0.0.1:{port}", trusted=trusted) as base,
                aiohttp.ClientSession() as session):
        async with session.get(base + "/api/v1/instrument") as resp:
            assert resp.status == 502
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(base.replace("http://", "ws://", 1) + "/realtime")
        assert refused.value.status == 502
    assert seen == []
