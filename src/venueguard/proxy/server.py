"""The proxy application: forwarding, the control API, the scenario loop and guarding.

    proxy = ProxyServer(ProxyConfig(upstream="https://testnet.bitmex.com", dialect="bitmex"))
    base_url = await proxy.start()        # "http://127.0.0.1:PORT"
    ...                                   # point the bot's REST and websocket URLs here
    await proxy.stop()

Own routes: ``POST/GET/DELETE /_sim/faults`` (the simulator's control API, the kinds the dialect
supports) and, when guarding, ``GET /metrics``; every other path is forwarded (REST) or bridged
(a websocket upgrade). Other ``/_sim`` paths are forwarded too, so a simulator upstream's
``/_sim/truth`` stays reachable through the proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from venueguard.numbers import NumberError, url_port
from venueguard.proxy import rest, ws
from venueguard.proxy.dialects import DIALECTS, Dialect
from venueguard.proxy.guard import Guard
from venueguard.proxy.runner import ProxyRunner
from venueguard.proxy.upstream import UpstreamPool
from venueguard.sim import control, edge
from venueguard.sim.clock import SimClock
from venueguard.sim.faults import Fault, FaultBook, FaultError, FaultRequest, KindSpec
from venueguard.sim.scenario import MarketBurst, Scenario, ScenarioRunner, load_scenario
from venueguard.telemetry.events import EventLog

log = logging.getLogger(__name__)

__all__ = ["PROXY_KEY", "ProxyConfig", "ProxyServer"]

PROXY_KEY: web.AppKey[ProxyServer] = web.AppKey("venueguard_proxy")
_FOLLOW = ("follow_intensity", "follow_load")


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """One proxy. ``ws_upstream`` defaults to ``upstream`` with ``ws``/``wss`` for the scheme."""

    upstream: str
    ws_upstream: str | None = None
    dialect: str = "bitmex"
    host: str = "127.0.0.1"
    port: int = 0
    scenario: str | Path | Scenario | None = None
    seed: int = 1
    guard: bool = False
    ws_silence_s: float | None = None
    redis_url: str | None = None
    dashboard_port: int | None = None  # with guard: the live dashboard on its own port
    journal: str | Path | None = None  # with guard: what `venueguard report` reads
    max_body_bytes: int = 1 << 20
    max_frame_bytes: int = 1 << 22
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 300.0

    def __post_init__(self) -> None:
        if self.dialect not in DIALECTS:
            raise ValueError(f"unknown dialect {self.dialect!r} "
                             f"(choose {', '.join(sorted(DIALECTS))})")
        for name, url, schemes in (("--upstream", self.upstream, ("http", "https")),
                                   ("--ws-upstream", self.ws_upstream, ("ws", "wss"))):
            if url is None:
                continue
            shape = f"{name} must be {' or '.join(schemes)}://HOST[:PORT][/PATH], got {url!r}"
            try:
                parts = urlsplit(url)
                hostname = parts.hostname
            except ValueError:  # an unbalanced [v6] bracket
                raise ValueError(shape) from None
            if parts.scheme not in schemes or not hostname or parts.query or parts.fragment:
                raise ValueError(shape)
            try:
                url_port(url)
            except NumberError as exc:
                raise ValueError(f"{name}: {exc}") from None
        if self.dashboard_port is not None and not self.guard:
            raise ValueError("--dashboard-port shows what --guard measures: add --guard")
        if self.journal is not None and not self.guard:
            raise ValueError("--journal records what --guard measures: add --guard")
        if self.ws_silence_s is not None and not self.ws_silence_s > 0:
            raise ValueError(f"--ws-silence-s must be > 0, got {self.ws_silence_s}")


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}", parts.path.rstrip("/")


class ProxyServer:
    """The running proxy (the control API's ``FaultHost``). Use it from one event loop."""

    def __init__(self, config: ProxyConfig, *, clock: SimClock | None = None,
                 events: EventLog | None = None) -> None:
        self.config = cfg = config
        self.clock = clock or SimClock()
        self.dialect: Dialect = DIALECTS[cfg.dialect]
        self.faults = FaultBook(cfg.seed)
        self.fault_hits: Counter[str] = Counter()
        origin, prefix = _origin(cfg.upstream)
        self.upstream_origin = origin
        self.upstream_prefix = prefix
        self.upstream_base = origin + prefix
        self.upstream = UpstreamPool(origin, connect_timeout_s=cfg.connect_timeout_s,
                                     read_timeout_s=cfg.read_timeout_s)
        ws_url = cfg.ws_upstream or ("ws" + cfg.upstream[len("http"):])
        ws_origin, ws_prefix = _origin(ws_url)
        self.ws_upstream_base = ws_origin + ws_prefix
        self.max_frame = cfg.max_frame_bytes
        scenario = cfg.scenario
        if scenario is not None and not isinstance(scenario, Scenario):
            scenario = load_scenario(scenario)
        self.scenario_runner = ScenarioRunner(scenario) if scenario is not None else None
        self.guard = Guard(self, events=events)
        self.bridges: dict[int, ws.Bridge] = {}
        self.ws_opened_total = 0
        self._serial = 0
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self._task: asyncio.Task[None] | None = None
        self._started_s = 0.0
        self.port = 0
        self.base_url = ""

    # -- the control API's FaultHost -------------------------------------------------------------
    @property
    def fault_kinds(self) -> Mapping[str, KindSpec]:
        return self.dialect.kinds

    def add_fault(self, request: FaultRequest) -> Fault:
        if request.kind == "overload_503" and any(request.params.get(f) for f in _FOLLOW):
            raise FaultError("fault overload_503: follow_intensity and follow_load need the "
                             "simulator's market; the proxy applies a flat probability")
        fault = self.faults.add(request, self.clock.monotonic_s())
        if fault.scope == "ws":
            for bridge in list(self.bridges.values()):
                bridge.hit(fault)
            log.info("fault %s %s hit %d open connections", fault.id, fault.kind,
                     len(self.bridges))
        return fault

    def clear_faults(self) -> int:
        return len(self.faults.clear())

    def active_fault(self, kind: str) -> Fault | None:
        return self.faults.first(kind, self.clock.monotonic_s())

    def latency_s(self) -> float:
        return edge.latency_s(self)

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the proxy is not started")
        return self._session

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=self.config.max_body_bytes)
        app[PROXY_KEY] = self
        app[control.FAULT_HOST_KEY] = self
        control.add_fault_routes(app)
        if self.config.guard:
            app.router.add_get("/metrics", self.guard.serve_metrics)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket" and request.method == "GET":
            return await ws.handle(self, request)
        return await rest.forward(request)

    async def start(self) -> str:
        """Listen and start the scenario loop; returns the base URL (``http://HOST:PORT``)."""
        try:
            return await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> str:
        cfg = self.config
        await self.guard.start()
        # the default SSL context checks the upstream's certificate and host name (websockets;
        # the REST hop's pool does the same)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=cfg.connect_timeout_s,
                                        sock_read=cfg.read_timeout_s)
        self._session = aiohttp.ClientSession(
            timeout=timeout, auto_decompress=False, skip_auto_headers=("User-Agent",
                                                                      "Accept-Encoding"),
            connector=aiohttp.TCPConnector(limit=0, ssl=True))
        self._runner = ProxyRunner(self.build_app(), access_log=None,
                                   handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, cfg.host, cfg.port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1]) if sockets else cfg.port
        self.base_url = f"http://{cfg.host}:{self.port}"
        self._started_s = self.clock.monotonic_s()
        if self.scenario_runner is not None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="proxy-scenario")
        return self.base_url

    async def stop(self) -> None:
        """Stop the scenario loop, drop every bridge and close the listener (idempotent)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for bridge in list(self.bridges.values()):
            bridge.drop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self.upstream.close()
        await self.guard.stop()

    async def _run(self) -> None:
        runner = self.scenario_runner
        assert runner is not None
        while True:
            elapsed = self.clock.monotonic_s() - self._started_s
            for item in runner.due(elapsed):
                if isinstance(item, MarketBurst):
                    continue  # a market burst needs the simulator's market
                self._play(item)
            self.faults.expire(self.clock.monotonic_s())
            await asyncio.sleep(0.05)

    def _play(self, request: FaultRequest) -> None:
        if request.kind not in self.fault_kinds:
            log.warning("scenario fault %s cannot be applied by the proxy (dialect %s); skipped",
                        request.kind, self.dialect.name)
            return
        if request.kind == "overload_503" and any(request.params.get(f) for f in _FOLLOW):
            log.warning("scenario overload_503 follows the simulator's market; the proxy "
                        "applies its probability flat")
            request = dataclasses.replace(
                request, params={**request.params, **dict.fromkeys(_FOLLOW, False)})
        self.add_fault(request)

    # -- websocket bridges -------------------------------------------------------------------
    def open_bridge(self, client: web.WebSocketResponse, transport: asyncio.Transport,
                    upstream: aiohttp.ClientWebSocketResponse) -> ws.Bridge:
        self._serial += 1
        self.ws_opened_total += 1
        bridge = ws.Bridge(self._serial, client, transport, upstream, self.dialect,
                           self.config.seed)
        now_s = self.clock.monotonic_s()
        for fault in self.faults.of_scope("ws", now_s):
            if fault.new_connections:
                bridge.hit(fault)
        if self.guard.metrics is not None:
            bridge.watch_quotes(self.guard.on_quote)
        self.bridges[bridge.serial] = bridge
        return bridge

    def close_bridge(self, bridge: ws.Bridge) -> None:
        self.bridges.pop(bridge.serial, None)
        self.guard.ws_closed(bridge)
