"""The Binance USDⓈ-M dialect of the simulator, attached to a running :class:`SimServer`.

It speaks to the same engine, faults, scenarios, truth and control API as the BitMEX dialect;
only the wire protocol differs (docs/binance-dialect.md). The server calls
:meth:`BinanceVenue.on_updates` with every batch it publishes and :meth:`BinanceVenue.on_fault`
with every fault posted.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from aiohttp import web

from venueguard.sim.binance import market_routes as m
from venueguard.sim.binance import order_routes as o
from venueguard.sim.binance import user_routes as u
from venueguard.sim.binance.account import AccountView
from venueguard.sim.binance.conn import BinanceConn
from venueguard.sim.binance.feed import Feed
from venueguard.sim.binance.limits import Limiter, Limits
from venueguard.sim.binance.listenkeys import ListenKeys
from venueguard.sim.binance.replay import BinanceRecording, ReplayPlayer
from venueguard.sim.binance.rows import Ids
from venueguard.sim.binance.symbols import BinanceSymbol, binance_symbols
from venueguard.sim.binance.ws import StreamHub
from venueguard.sim.faults import Fault
from venueguard.sim.model import Update

if TYPE_CHECKING:
    from venueguard.sim.server import SimServer

__all__ = ["BinanceVenue", "Settings"]

DIALECT = "binance-usdm"
DIALECTS = ("bitmex", DIALECT)


@dataclass(frozen=True, slots=True)
class Settings:
    """Venue knobs; the defaults are Binance's published values."""

    initial_usdt: float = 10_000.0
    listen_key_ttl_s: float = 3600.0
    ws_max_lifetime_s: float = 86_400.0
    ws_ping_interval_s: float = 180.0
    ws_pong_timeout_s: float = 600.0
    ws_max_incoming_per_s: int = 10
    limits: Limits = field(default_factory=Limits)


class BinanceVenue:
    def __init__(self, server: SimServer, settings: Settings | None = None) -> None:
        if server.engine.book_format != "modern":
            raise ValueError("the binance-usdm dialect needs the modern book format")
        self.server = server
        self.settings = settings or Settings()
        specs = [server.engine.spec(s) for s in server.engine.symbols]
        self.symbols: dict[str, BinanceSymbol] = binance_symbols(specs)
        if not self.symbols:
            raise ValueError("the binance-usdm dialect lists USDT-margined symbols only "
                             "(e.g. BTCUSDT, ETHUSDT, SOLUSDT); none was given")
        seed = server.config.seed
        self.limiter = Limiter(self.settings.limits)
        self.order_ids = Ids(4_000_000_001)
        self.trade_ids = Ids(700_000_001)
        self._numbered = 0   # how many of the account's executions :meth:`number_history` saw
        self.account = AccountView(server.engine, self.symbols, self.settings.initial_usdt)
        self.listen_keys = ListenKeys(self.settings.listen_key_ttl_s, seed)
        self.feed = Feed(self)
        self.hub = StreamHub(self)
        self._rng = random.Random(f"{seed}:binance")
        self._next_check_s = 0.0
        path = server.config.replay_path
        self.recording = BinanceRecording.load(path) if path is not None else None
        self._players: dict[tuple[int, str], ReplayPlayer] = {}
        if self.recording is not None:
            self.feed.public = False

    def configure(self, **changes: Any) -> None:
        """Change settings of a running venue (tests use small limits and short lifetimes)."""
        self.settings = replace(self.settings, **changes)
        self.limiter.limits = self.settings.limits
        self.listen_keys.ttl_s = self.settings.listen_key_ttl_s

    # -- wiring --------------------------------------------------------------------------------
    def add_routes(self, app: web.Application) -> None:
        r = app.router
        v1 = "/fapi/v1"
        for path, handler in (
                ("ping", m.ping), ("time", m.server_time), ("exchangeInfo", m.exchange_info),
                ("depth", m.depth), ("ticker/bookTicker", m.book_ticker),
                ("ticker/price", m.ticker_price), ("ticker/24hr", m.ticker_24hr),
                ("order", o.get_order), ("openOrder", o.get_open_order),
                ("openOrders", o.open_orders),
                ("allOrders", o.all_orders), ("userTrades", o.user_trades),
                ("leverageBracket", u.leverage_bracket), ("positionRisk", u.position_risk_v2)):
            r.add_get(f"{v1}/{path}", handler)
        r.add_get("/fapi/v2/ticker/price", m.ticker_price)
        r.add_post(f"{v1}/order", o.post_order)
        r.add_put(f"{v1}/order", o.put_order)
        r.add_delete(f"{v1}/order", o.delete_order)
        r.add_delete(f"{v1}/allOpenOrders", o.delete_all_open)
        for version in ("v2", "v3"):
            r.add_get(f"/fapi/{version}/balance", u.balance)
            r.add_get(f"/fapi/{version}/account", u.account)
        r.add_get("/fapi/v2/positionRisk", u.position_risk_v2)
        r.add_get("/fapi/v3/positionRisk", u.position_risk_v3)
        r.add_post(f"{v1}/listenKey", u.listen_key_post)
        r.add_put(f"{v1}/listenKey", u.listen_key_put)
        r.add_delete(f"{v1}/listenKey", u.listen_key_delete)
        r.add_route("*", "/fapi/{tail:.*}", m.not_found)
        self.hub.add_routes(app)

    def number_history(self) -> None:
        """Number the account's orders and trades not numbered yet, in the order they happened
        (the account's executions, oldest first): the venue's ids rise with time, which
        ``orderId`` / ``fromId`` paging relies on, whichever route or stream shows a row first
        (a window of history, a trade the user stream publishes late)."""
        rows = self.server.engine.account.executions
        for row in rows[self._numbered:]:
            self.order_ids.of(str(row.get("orderID")))
            if row.get("execType") == "Trade":
                self.trade_ids.of(str(row.get("execID")))
        self._numbered = len(rows)

    def on_updates(self, updates: list[Update], now_ms: int) -> None:
        """Everything the server published (already filtered by order effects), in order."""
        self.number_history()
        events = self.feed.on_updates(updates, now_ms)
        if events:
            self.hub.publish(events)
        now_s = self.server.clock.monotonic_s()
        if now_s >= self._next_check_s:
            self._next_check_s = now_s + 0.2
            for key in self.listen_keys.due(now_s):
                self.hub.expire_key(key, now_ms)
            settings = self.settings
            self.hub.close_old(now_s, settings.ws_max_lifetime_s)
            self.hub.keepalive(now_s, settings.ws_ping_interval_s, settings.ws_pong_timeout_s)

    def on_fault(self, fault: Fault) -> int:
        """A fault was posted: websocket faults hit the open connections.

        ``ws_stall`` on a user-data connection is the listenKey expiring: the venue sends
        ``listenKeyExpired`` and the stream goes silent while pings are still answered.
        """
        if fault.scope != "ws":
            return 0
        hit = self.hub.hit_open(fault)
        if fault.kind == "ws_stall":
            now_ms = self.server.clock.now_ms()
            for key in {c.listen_key for c in self.hub.connections.values() if c.listen_key}:
                self.listen_keys.close(key)
                self.hub.expire_key(key, now_ms)
        return hit

    async def close(self) -> None:
        for player in list(self._players.values()):
            player.cancel()
        self._players.clear()
        await self.hub.close_all()

    # -- helpers for routes --------------------------------------------------------------------
    def exchange_info_rows(self) -> list[dict[str, Any]]:
        rows = [s.exchange_info_row() for s in self.symbols.values()]
        if self.recording is not None:  # the recorded symbols, next to the engine's tradable ones
            rows += [r for r in self.recording.exchange_info_rows()
                     if r["symbol"] not in self.symbols]
        return rows

    def new_client_id(self) -> str:
        return "sim" + "".join(f"{self._rng.getrandbits(4):x}" for _ in range(20))

    def coin(self) -> bool:
        """A seeded fair coin (does an order hit by an unknown-status fault reach the engine?)."""
        return self._rng.random() < 0.5

    def overload_fires(self, symbol: str) -> bool:
        """Whether ``overload_503`` sheds this order: the simulator's load model, shared with the
        BitMEX dialect (market intensity and order rate; docs/overload.md)."""
        server = self.server
        server.note_order_request()
        fault = server.active_fault("overload_503")
        if fault is None:
            return False
        return server.overload_decision(fault, symbol)

    # -- replay --------------------------------------------------------------------------------
    def recorded_depth(self, symbol: str, limit: int) -> dict[str, Any] | None:
        if self.recording is None:
            return None
        return self.recording.depth(symbol, limit)

    def start_replay(self, conn: BinanceConn, key: str) -> None:
        """Replay ``key`` (a fan-out key) to ``conn`` from the recording's start."""
        if self.recording is None or (conn.serial, key) in self._players:
            return
        player = ReplayPlayer(self.recording, self.hub, conn,
                              speed=self.server.config.replay_speed, key=key)
        self._players[(conn.serial, key)] = player
        player.start()

    def stop_replay(self, conn: BinanceConn, key: str | None = None) -> None:
        """Stop replaying ``key`` to ``conn`` (every stream when None)."""
        for player_key in [k for k in self._players
                           if k[0] == conn.serial and (key is None or k[1] == key)]:
            self._players.pop(player_key).cancel()

    def truth(self) -> dict[str, Any]:
        return {"ws_open": len(self.hub.connections), "ws_opened_total": self.hub.opened_total,
                "order_ids": {str(k): v for k, v in self.order_ids.by_int.items()}}
