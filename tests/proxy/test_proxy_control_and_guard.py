"""The proxy's control API, scenarios, guarding (classification, metrics, silent streams, the
shared account) and its command line."""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from venueguard import cli
from venueguard.fleet.testing import RedisServer, RedisUnavailable
from venueguard.proxy.testing import Proxied, running_proxy
from venueguard.sim.faults import KINDS
from venueguard.sim.testing import SimHandle
from venueguard.telemetry.events import EventLog

pytestmark = pytest.mark.system


async def _order(sim: SimHandle, base_url: str, cid: str) -> int:
    body = orjson.dumps({"symbol": "XBTUSD", "side": "Buy", "orderQty": 100, "price": 1000.0,
                         "clOrdID": cid})
    headers = {"content-type": "application/json",
               **sim.signed_headers("POST", "/api/v1/order", body)}
    async with sim.session.post(base_url + "/api/v1/order", data=body, headers=headers) as resp:
        await resp.read()
        return resp.status


@pytest.mark.parametrize(("dialect", "absent"), [
    ("bitmex", {"dns_failure", "invalid_key", "delayed_visibility", "late_fill"}),
    ("binance-usdm", {"cancel_race", "expired_request"}),
    ("generic", {"ws_gap", "ws_stale_timestamps", "ws_future_timestamps"}),
])
async def test_get_lists_the_kinds_the_dialect_supports(proxied: Proxied, dialect: str,
                                                        absent: set[str]) -> None:
    sim, proxy = await proxied(dialect=dialect)
    async with sim.session.get(proxy.base_url + "/_sim/faults") as resp:
        listing = await resp.json()
    kinds = set(listing["kinds"])
    assert {"overload_503", "rate_limit_429", "ws_stall", "ws_drop"} <= kinds
    assert not kinds & absent
    assert listing["kinds"]["latency"]["params"] == {"ms": 200.0, "jitter_ms": 0.0}
    for kind in sorted(absent):
        async with sim.session.post(proxy.base_url + "/_sim/faults",
                                    json={"kind": kind}) as resp:
            assert resp.status == 400
            assert "cannot be applied here" in (await resp.json())["error"]


async def test_post_delete_and_refusals(proxied: Proxied) -> None:
    sim, proxy = await proxied()
    fault_id = await proxy.add_fault("forbidden_403", duration_s=30)
    async with sim.session.get(proxy.base_url + "/_sim/faults") as resp:
        assert [f["id"] for f in (await resp.json())["faults"]] == [fault_id]
    assert await _order(sim, proxy.base_url, "c1") == 403
    assert await proxy.clear_faults() == 1
    assert await _order(sim, proxy.base_url, "c2") == 200
    for bad, text in (({"kind": "overload_503", "follow_load": True}, "simulator's market"),
                      ({"kind": "latency", "ms": -1}, ">= 0"),
                      ({"kind": "nope"}, "unknown fault kind"),
                      ([1, 2], "JSON object")):
        async with sim.session.post(proxy.base_url + "/_sim/faults", json=bad) as resp:
            assert resp.status == 400 and text in (await resp.json())["error"]
    # the upstream's own control API stays reachable through the proxy
    async with sim.session.get(proxy.base_url + "/_sim/truth") as resp:
        truth = await resp.json()
    assert truth["clOrdID_attempts"] == {"c2": 1}


async def test_scenario_plays_and_skips_what_the_proxy_cannot_do(
        proxied: Proxied, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    scenario = tmp_path / "edge.toml"
    scenario.write_text('name = "edge"\n[overload]\nprobability = 1.0\nfollow_load = true\n'
                        '[[fault]]\nat_s = 0\nkind = "late_fill"\n'
                        '[[fault]]\nat_s = 0.3\nkind = "forbidden_403"\nduration_s = 0.5\n')
    sim, proxy = await proxied(scenario=scenario)
    await asyncio.sleep(0.15)
    assert await _order(sim, proxy.base_url, "s1") == 503  # overload played flat
    await asyncio.sleep(0.4)
    assert await _order(sim, proxy.base_url, "s2") == 403
    assert "late_fill cannot be applied by the proxy" in caplog.text
    assert set(KINDS) > set(proxy.server.fault_kinds)


async def test_guard_classifies_answers_with_the_monitors_events_and_metrics(
        proxied: Proxied) -> None:
    events = EventLog(keep=500)
    sim, proxy = await proxied(guard=True, events=events, dashboard_port=0)
    await sim.add_fault("overload_503", duration_s=30)  # the venue sheds, not the proxy
    for i in range(3):
        assert await _order(sim, proxy.base_url, f"g{i}") == 503
    dashboard = proxy.server.guard.dashboard
    assert dashboard is not None
    async with sim.session.get(dashboard.url + "api/state") as resp:
        state = await resp.json()
    assert state["api"]["errors_by_kind"] == {"overloaded": 3.0}
    assert state["api"]["http_503_per_min"] == 3 and state["api"]["latency_p50"] > 0
    async with sim.session.get(dashboard.url + "api/events?event=rest.error") as resp:
        assert len((await resp.json())["events"]) == 3
    async with sim.session.get(dashboard.url) as resp:
        assert resp.status == 200 and "dashboard.js" in await resp.text()
    async with sim.session.get(proxy.base_url + "/metrics") as resp:
        text = await resp.text()
    assert ('venueguard_rest_requests_total{endpoint="/api/v1/order",method="POST",'
            'status="503",venue="bitmex"} 3.0') in text
    assert 'venueguard_rest_errors_total{kind="overloaded",venue="bitmex"} 3.0' in text
    errors = events.recent(event="rest.error")
    assert len(errors) == 3 and errors[0]["endpoint"] == "POST /api/v1/order"
    assert errors[0]["kind"] == "overloaded" and errors[0]["status"] == 503
    await sim.clear_faults()
    await sim.add_fault("forbidden_403", duration_s=30)
    assert await _order(sim, proxy.base_url, "g-403") == 403
    states = events.recent(event="venue.state")
    assert states and states[-1]["state"] == "COOLDOWN"


async def test_silent_upstream_stream_is_closed_towards_the_client(proxied: Proxied) -> None:
    events = EventLog(keep=100)
    sim, proxy = await proxied(rate=500.0, ws_silence_s=0.5, events=events, guard=True)
    ws = await sim.session.ws_connect(proxy.ws_base + "/realtime?subscribe=trade:XBTUSD")
    for _ in range(3):
        await ws.receive(timeout=5)
    await sim.add_fault("ws_stall")  # the upstream answers pings but sends no data
    await asyncio.sleep(0.3)
    guard = proxy.server.guard
    guard.poll_streams()
    assert guard.metrics is not None
    snap = guard.metrics.snapshot()
    assert snap["ws_messages_total"] == {"table=proxy": pytest.approx(
        next(iter(proxy.server.bridges.values())).messages)}
    assert snap["ws_last_data_age_seconds"]["channel=proxy"] >= 0.25  # type: ignore[index]
    start = time.monotonic()
    msg = await ws.receive(timeout=5)
    while msg.type is aiohttp.WSMsgType.TEXT:
        msg = await ws.receive(timeout=5)
    assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 1011
    assert time.monotonic() - start < 3.0
    await ws.close()
    stale = events.recent(event="ws.stale")
    assert stale and stale[0]["reason"] == "data_age" and stale[0]["threshold_s"] == 0.5


async def test_shared_account_stops_every_proxy_on_a_cooldown(proxied: Proxied) -> None:
    pytest.importorskip("redis", reason="the redis extra is not installed")
    try:
        redis = RedisServer.start()
    except RedisUnavailable as exc:
        pytest.skip(str(exc))
    try:
        sim, first = await proxied(redis_url=redis.url)
        async with running_proxy(sim.base_url, redis_url=redis.url) as second:
            assert await _order(sim, second.base_url, "r0") == 200  # joins the account
            await sim.add_fault("forbidden_403", duration_s=30)
            assert await _order(sim, first.base_url, "r1") == 403  # first sees the cooldown
            await sim.clear_faults()
            status, reached = 0, -1
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:  # the ban notice travels through Redis
                before = (await sim.truth())["requests"].get("POST /api/v1/order", 0)
                status = await _order(sim, second.base_url, "r2")
                reached = (await sim.truth())["requests"].get("POST /api/v1/order", 0) - before
                if status == 429:
                    break
                await asyncio.sleep(0.1)
            assert (status, reached) == (429, 0)  # refused by the second proxy, never sent
            refused = second.server.guard.events.recent(event="proxy.refused")
            assert refused and refused[-1]["state"] == "COOLDOWN"
    finally:
        redis.stop()


def _env() -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[2] / "src")
    return {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}


async def test_command_line_prints_its_url_and_forwards(proxied: Proxied) -> None:
    sim, _ = await proxied()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "venueguard", "proxy", "--upstream", sim.base_url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=_env())
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert line.startswith("listening on http://127.0.0.1:")
        url = line.split()[-1]
        async with sim.session.get(url + "/api/v1/instrument?symbol=XBTUSD") as resp:
            rows: list[dict[str, Any]] = await resp.json()
        assert resp.status == 200 and rows[0]["symbol"] == "XBTUSD"
    finally:
        proc.terminate()
        await proc.wait()
    assert proc.returncode == 0


async def test_command_line_plays_a_scenario_file(proxied: Proxied, tmp_path: Path) -> None:
    """``--scenario FILE`` on the command line: named on the second line, its fault played."""
    sim, _ = await proxied()
    scenario = tmp_path / "wall.toml"
    scenario.write_text('name = "wall"\n[[fault]]\nat_s = 0\nkind = "forbidden_403"\n'
                        'duration_s = 60\n')
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "venueguard", "proxy", "--upstream", sim.base_url, "--scenario",
        str(scenario), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=_env())
    try:
        assert proc.stdout is not None
        url = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().split()[-1]
        second = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert "scenario wall" in second
        statuses: list[int] = []
        deadline = time.monotonic() + 10
        while 403 not in statuses and time.monotonic() < deadline:
            statuses.append(await _order(sim, url, f"sc-{len(statuses)}"))
            await asyncio.sleep(0.05)
        assert statuses[-1] == 403  # an edge page: the venue never saw that order
        reached = (await sim.truth())["requests"].get("POST /api/v1/order", 0)
        assert reached == len(statuses) - 1
    finally:
        proc.terminate()
        await proc.wait()


@pytest.mark.parametrize(("args", "message"), [
    ([], "--upstream URL is required"),
    (["--upstream", "ftp://example.com"], "--upstream must be http or https"),
    (["--upstream", "http://127.0.0.1:1", "--scenario", "no-such"], "neither a shipped"),
    (["--upstream", "http://127.0.0.1:1", "--dashboard-port", "0"], "add --guard"),
])
def test_command_line_refuses_bad_configuration(args: list[str], message: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["proxy", *args]) == 2
    assert message in capsys.readouterr().err


def test_command_line_refuses_a_silence_bound_of_zero(capsys: pytest.CaptureFixture[str]) -> None:
    """Read by the shared number reader: argparse's usage error, exit 2, the range stated."""
    with pytest.raises(SystemExit) as exited:
        cli.main(["proxy", "--upstream", "http://127.0.0.1:1", "--ws-silence-s", "0"])
    assert exited.value.code == 2
    assert "--ws-silence-s: must be a number greater than 0" in capsys.readouterr().err


async def test_upstream_tls_certificate_is_checked(tmp_path: Path) -> None:
    """An https upstream with a certificate nobody vouches for is refused: 502, never forwarded."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not found: cannot make a self-signed certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    made = await asyncio.create_subprocess_exec(
        openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
        str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL)
    assert await made.wait() == 0
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    seen: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        events = EventLog(keep=10)
        async with running_proxy(f"https://127.0.0.1:{port}", guard=True,
                                 events=events) as proxy:
            assert proxy.server.ws_upstream_base == f"wss://127.0.0.1:{port}"
            async with proxy.session.get(proxy.base_url + "/api/v1/instrument") as resp:
                assert resp.status == 502
        assert seen == []
        assert events.recent(event="rest.error")[0]["status"] is None
    finally:
        await runner.cleanup()
