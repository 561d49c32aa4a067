"""The simulator server: one aiohttp application serving REST, websocket and control routes.

    server = SimServer(SimConfig(seed=7, scenario="calm"))
    base_url = await server.start()        # "http://127.0.0.1:PORT"
    ...                                     # REST {base_url}/api/v1, WS {ws}/realtime, /_sim
    await server.stop()

One asyncio task (:meth:`SimServer._run`) advances the engine on the simulator clock, runs the
scenario schedule, expires faults and publishes what the engine produced to the websocket
subscribers. Request handlers call the engine directly (everything runs on one event loop, so the
engine is never entered concurrently).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from venueguard import numbers
from venueguard.sim import control
from venueguard.sim.bitmex import rest
from venueguard.sim.bitmex.conn import WsConnection
from venueguard.sim.bitmex.ratelimit import ConnectionRateLimiter, RestRateLimiter
from venueguard.sim.bitmex.replay import Recording, ReplayPlayer
from venueguard.sim.bitmex.ws import SERVED_PUBLIC, WsHub
from venueguard.sim.clock import SimClock
from venueguard.sim.effects import OrderEffects
from venueguard.sim.engine import Engine
from venueguard.sim.faults import KINDS, Fault, FaultBook, FaultRequest, KindSpec
from venueguard.sim.httpserver import SimRunner
from venueguard.sim.instruments import instruments_for
from venueguard.sim.model import Update
from venueguard.sim.overload import OrderRate, OverloadModel
from venueguard.sim.scenario import MarketBurst, Scenario, ScenarioRunner, load_scenario
from venueguard.venues.bitmex import errors, signing

if TYPE_CHECKING:
    from venueguard.sim.binance.venue import BinanceVenue

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Everything that shapes one simulator run. Limits default to BitMEX's published ones."""

    host: str = "127.0.0.1"
    port: int = 0
    seed: int = 1
    symbols: tuple[str, ...] = ("XBTUSD",)
    rate_msgs_s: float = 50.0
    book_format: str = "modern"
    scenario: str | Path | Scenario | None = "calm"
    replay_path: str | Path | None = None
    replay_speed: float = 1.0
    api_key: str = signing.TEST_API_KEY
    api_secret: str = field(default=signing.TEST_API_SECRET, repr=False)
    clock_speed: float = 1.0
    tick_s: float = 0.01
    max_step_ms: int = 20
    step_events: int = 64  # market events per engine step, about (see advance_engine)
    rest_per_min: int = 120
    rest_unauth_per_min: int = 30
    order_per_s: int = 10
    ws_opens_per_hour: int = 60
    ws_queue_max: int = 50_000
    ws_max_errors: int = 10
    ws_max_frame_bytes: int = 1 << 20
    max_body_bytes: int = 1 << 20
    dialect: str = "bitmex"  # or "binance-usdm": also serve Binance USD-M under /fapi and /ws


class SimServer:
    """The running simulator. Not thread-safe: use it from the event loop that started it."""

    #: Every fault kind applies here (the control API's ``FaultHost``).
    fault_kinds: Mapping[str, KindSpec] = KINDS

    def __init__(self, config: SimConfig | None = None, *, clock: SimClock | None = None,
                 engine: Engine | None = None) -> None:
        self.config = cfg = config or SimConfig()
        self.clock = clock or SimClock(speed=cfg.clock_speed)
        self._engine_ms = self.clock.now_ms()
        scenario = cfg.scenario
        if scenario is not None and not isinstance(scenario, Scenario):
            scenario = load_scenario(scenario)
        self.engine = engine or Engine(instruments_for(cfg.symbols), seed=cfg.seed,
                                       rate_msgs_s=cfg.rate_msgs_s, book_format=cfg.book_format,
                                       start_ms=self._engine_ms,
                                       market_params=scenario.market_params()
                                       if scenario is not None and scenario.market else None,
                                       **(scenario.engine_options()
                                          if scenario is not None else {}))
        self.symbols = tuple(s.strip().upper() for s in cfg.symbols)
        self.faults = FaultBook(cfg.seed)
        self.order_rate = OrderRate()
        self.rest_limiter = RestRateLimiter(per_min=cfg.rest_per_min,
                                            unauth_per_min=cfg.rest_unauth_per_min,
                                            order_per_s=cfg.order_per_s)
        self.conn_limiter = ConnectionRateLimiter(cfg.ws_opens_per_hour)
        self.hub = WsHub(self)
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.clordid_attempts: Counter[str] = Counter()
        #: Leverage set through ``POST /position/leverage`` (symbol -> leverage; 0 = cross).
        self.leverage: dict[str, float] = {}
        self.fault_hits: Counter[str] = Counter()
        self.order_effects = OrderEffects(self.faults, self.clock)
        self.scenario_runner = ScenarioRunner(scenario) if scenario is not None else None
        binance = cfg.dialect == "binance-usdm"
        if cfg.dialect not in ("bitmex", "binance-usdm"):
            raise ValueError(f"unknown dialect {cfg.dialect!r} (bitmex or binance-usdm)")
        self.replay: Recording | None = (Recording.load(cfg.replay_path)
                                         if cfg.replay_path is not None and not binance
                                         else None)
        self._players: dict[int, list[ReplayPlayer]] = {}
        self._runner: web.AppRunner | None = None
        self._task: asyncio.Task[None] | None = None
        self._started_s = 0.0
        self.port = 0
        self.base_url = ""
        self.binance: BinanceVenue | None = None
        if binance:
            from venueguard.sim.binance.venue import BinanceVenue as _Venue

            self.binance = _Venue(self)

    # -- lifecycle -------------------------------------------------------------------------
    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=self.config.max_body_bytes,
                              middlewares=[rest.middleware])
        app[control.SERVER_KEY] = self
        app[control.FAULT_HOST_KEY] = self
        rest.add_routes(app)
        control.add_routes(app)
        app.router.add_get("/realtime", self.hub.handle)
        if self.binance is not None:
            self.binance.add_routes(app)
        return app

    async def start(self) -> str:
        """Listen and start the engine loop; returns the base URL (``http://HOST:PORT``)."""
        self._runner = SimRunner(self.build_app(), access_log=None,
                                     handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1]) if sockets else self.config.port
        self.base_url = f"http://{self.config.host}:{self.port}"
        self._started_s = self.clock.monotonic_s()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="sim-engine-loop")
        return self.base_url

    async def stop(self) -> None:
        """Stop the loop, drop every websocket and close the listener (idempotent)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for players in list(self._players.values()):
            for player in players:
                player.cancel()
        self._players.clear()
        await self.hub.close_all()
        if self.binance is not None:
            await self.binance.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1) + "/realtime"

    # -- the engine loop ---------------------------------------------------------------------
    def elapsed_s(self) -> float:
        """Real seconds since :meth:`start` (scenario time)."""
        return self.clock.monotonic_s() - self._started_s

    async def _run(self) -> None:
        tick_s = self.config.tick_s
        while True:
            behind = self.step()
            # an engine that cannot keep up runs flat out, yielding between bounded steps
            await asyncio.sleep(0 if behind else tick_s)

    def step(self) -> bool:
        """One loop iteration: scenario, fault expiry, engine time, publication.

        Returns True when the engine is still behind the clock.
        """
        now_s = self.clock.monotonic_s()
        if self.scenario_runner is not None:
            for request in self.scenario_runner.due(self.elapsed_s()):
                if isinstance(request, MarketBurst):
                    self.add_burst(request)
                else:
                    self.add_fault(request)
        self.faults.expire(now_s)
        reached_ms = self.advance_engine()
        self.pump()
        return reached_ms < self.clock.now_ms() - self._step_ms()

    def position_view(self, row: dict[str, object]) -> dict[str, object]:
        """A position row as served: with the leverage the client set, if it set one."""
        leverage = self.leverage.get(str(row.get("symbol")))
        if leverage is None:
            return row
        return {**row, "leverage": leverage, "crossMargin": leverage == 0}

    def _step_ms(self) -> int:
        """Simulated milliseconds per step: ``max_step_ms``, or fewer when the market runs so fast
        (configured rate times current intensity) that a step would hold more than about
        ``step_events`` market events."""
        cfg = self.config
        events_per_ms = cfg.rate_msgs_s * self.engine.intensity(None) / 1000.0
        if events_per_ms * cfg.max_step_ms <= cfg.step_events:
            return cfg.max_step_ms
        return max(1, int(cfg.step_events / events_per_ms))

    def advance_engine(self) -> int:
        """Advance the engine towards the clock by one bounded step of simulated time.

        Bounded steps (at most ``max_step_ms``, and about ``step_events`` market events) keep the
        event loop responsive: the market process, its serialisation and fan-out run in slices
        that each end with the loop given back, so a REST request waits for one slice at most.
        When the market runs faster than the engine can simulate, the venue's time lags the
        clock, as an overloaded venue's does. Returns the simulated time reached (use it as
        ``now_ms`` for engine calls).
        """
        target_ms = self.clock.now_ms()
        reached_ms = min(target_ms, self._engine_ms + self._step_ms())
        if reached_ms > self._engine_ms:
            self.engine.advance(reached_ms)
            self._engine_ms = reached_ms
        return self._engine_ms

    def pump(self) -> None:
        """Publish everything the engine produced since the last call, in order."""
        replaying = self.replay is not None
        held = self.order_effects.release_due(self._engine_ms)
        with self.hub.batch():
            published = self._publish_drained(replaying, held)
        if self.binance is not None:
            self.binance.on_updates(published, self._engine_ms)

    def _publish_drained(self, replaying: bool, held: list[Update]) -> list[Update]:
        published: list[Update] = []
        for update in self.engine.drain_updates():
            if replaying and not update.private:
                continue
            if update.table == "execution" and self.order_effects.holds_updates():
                update = self.order_effects.filter_execution_update(update, self._engine_ms)
                if not update.rows:
                    continue
            self.hub.publish(update.table, update.action, update.symbol, update.rows,
                             private=update.private)
            published.append(update)
        for update in held:
            self.hub.publish(update.table, update.action, update.symbol, update.rows,
                             private=update.private)
            published.append(update)
        return published

    # -- faults ---------------------------------------------------------------------------
    def add_fault(self, request: FaultRequest) -> Fault:
        fault = self.faults.add(request, self.clock.monotonic_s())
        if fault.scope == "ws":
            hit = self.hub.hit_open(fault)
            log.info("fault %s %s hit %d open connections", fault.id, fault.kind, hit)
        if self.binance is not None:
            self.binance.on_fault(fault)
        return fault

    def add_burst(self, burst: MarketBurst) -> None:
        """A scheduled market burst (an unknown symbol is logged and skipped)."""
        if burst.symbol is not None and burst.symbol not in self.symbols:
            log.warning("scenario burst for %s, which this simulator does not serve", burst.symbol)
            return
        self.engine.burst(burst.size, burst.symbol, self.advance_engine(), burst.move_pct)

    def clear_faults(self) -> int:
        removed = self.faults.clear()
        self.order_effects.on_clear()
        return len(removed)

    def active_fault(self, kind: str) -> Fault | None:
        return self.faults.first(kind, self.clock.monotonic_s())

    # -- load shedding ----------------------------------------------------------------------
    def note_order_request(self) -> None:
        """An order, amend or cancel reached the venue (it feeds the load of docs/overload.md)."""
        self.order_rate.on_request(self._engine_ms / 1000)

    def market_load(self, model: OverloadModel, symbol: object) -> float:
        """The load ``model`` sees for an order on ``symbol`` (unknown: the first symbol)."""
        name = symbol if isinstance(symbol, str) and symbol in self.symbols else self.symbols[0]
        return model.load(self.engine.intensity(name), self.order_rate.rate(self._engine_ms / 1000))

    def overload_decision(self, fault: Fault, symbol: object) -> bool:
        """Whether an active ``overload_503`` sheds this order-entry request; one seeded draw
        from the fault's stream (:class:`venueguard.sim.overload.OverloadModel`)."""
        model = OverloadModel.from_params(fault.params)
        return model.decide(self.market_load(model, symbol), fault.rng)

    # -- authentication ----------------------------------------------------------------------
    def check_ws_auth(self, key: str, expires: int, signature: str, *,
                      check_expiry: bool = True) -> tuple[int, str] | None:
        """None when the websocket credentials are good, else (status, BitMEX error text)."""
        forced = self._forced_auth_error()
        if forced is not None:
            return forced
        if key != self.config.api_key:
            return 401, errors.INVALID_API_KEY
        if check_expiry and expires < int(self.clock.wall_s()):
            return 401, errors.expired_text(int(self.clock.wall_s()))
        if not signing.verify(self.config.api_secret, "GET", "/realtime", expires, b"", signature):
            return 401, errors.SIGNATURE_NOT_VALID
        return None

    def verified_key(self, headers: Mapping[str, str], verb: str, raw_path: str,
                     body: bytes) -> str | None:
        """The request's API key when its signature verifies (expiry and injected auth faults
        aside), else None: what the rate limiter may key a bucket by."""
        key = headers.get("api-key")
        if not key or key != self.config.api_key:
            return None
        try:
            expires = numbers.read_int(headers.get("api-expires") or headers.get("api-nonce")
                                       or "")
        except numbers.NumberError:
            return None
        if not signing.verify(self.config.api_secret, verb, raw_path, expires, body,
                              headers.get("api-signature", "")):
            return None
        return key

    def check_rest_auth(self, headers: Mapping[str, str], verb: str, raw_path: str,
                        body: bytes) -> tuple[int, str] | None:
        """None when the request's signature headers are good, else (status, error text)."""
        key = headers.get("api-key")
        if not key:
            return 401, errors.MISSING_API_KEY
        forced = self._forced_auth_error()
        if forced is not None:
            return forced
        if key != self.config.api_key:
            return 401, errors.INVALID_API_KEY
        now_wall = int(self.clock.wall_s())
        raw_expires = headers.get("api-expires") or headers.get("api-nonce")
        try:
            expires = numbers.read_int(raw_expires or "")
        except numbers.NumberError:
            return 401, errors.SIGNATURE_NOT_VALID
        if "api-expires" in headers and expires < now_wall:
            return 400, errors.expired_text(now_wall)
        if not signing.verify(self.config.api_secret, verb, raw_path, expires, body,
                              headers.get("api-signature", "")):
            return 401, errors.SIGNATURE_NOT_VALID
        return None

    def _forced_auth_error(self) -> tuple[int, str] | None:
        for kind, status, text in (
                ("invalid_key", 401, errors.INVALID_API_KEY),
                ("bad_signature", 401, errors.SIGNATURE_NOT_VALID),
                ("expired_request", 400, errors.expired_text(int(self.clock.wall_s())))):
            fault = self.active_fault(kind)
            if fault is not None and fault.roll():
                self.fault_hits[kind] += 1
                return status, text
        return None

    # -- replay ---------------------------------------------------------------------------
    def start_replay(self, conn: WsConnection, topics: frozenset[str]) -> None:
        """Serve the recording to ``conn`` for ``topics`` (just subscribed) from its start.

        Every subscribe request starts its own player over the whole recording, so a topic added
        later on a connection (or on another connection) still gets its ``partial`` and every
        message after it; a player stops sending a topic once it is unsubscribed.
        """
        if self.replay is None or not topics:
            return
        player = ReplayPlayer(self.replay, conn, speed=self.config.replay_speed,
                              tables=SERVED_PUBLIC, topics=topics)
        self._players.setdefault(conn.serial, []).append(player)
        player.start()

    def stop_replay(self, conn: WsConnection) -> None:
        for player in self._players.pop(conn.serial, []):
            player.cancel()

    # -- ground truth ---------------------------------------------------------------------
    def truth(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.engine.truth())
        out["requests"] = dict(self.requests)
        out["responses"] = dict(self.statuses)
        out["clOrdID_attempts"] = dict(self.clordid_attempts)
        out["fault_hits"] = dict(self.fault_hits)
        out["ws"] = {"open": len(self.hub.connections), "opened_total": self.hub.opened_total}
        if self.binance is not None:
            out["binance"] = self.binance.truth()
        return out
