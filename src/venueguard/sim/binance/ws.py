"""The Binance dialect's websocket endpoints and fan-out.

Paths: ``/ws`` and ``/ws/<stream>`` (raw events), ``/stream?streams=a/b`` (combined:
``{"stream", "data"}``), the split ``/public``, ``/market`` and ``/private`` prefixes of the same
(``/public/ws/<n>``), and user data at ``/ws/<listenKey>``, ``/private/ws?listenKey=K`` or a
listenKey among ``streams``. Control messages: ``SUBSCRIBE`` / ``UNSUBSCRIBE`` /
``LIST_SUBSCRIPTIONS`` ``{"method", "params", "id"}`` -> ``{"result": ..., "id": ...}``; a bad
one gets ``{"error": {"code", "msg"}, "id"}``. Served streams: ``<symbol>@depth@100ms``,
``@depth@250ms`` (also ``<symbol>@depth``), ``@depth@500ms``, ``<symbol>@aggTrade``,
``<symbol>@trade``, ``<symbol>@bookTicker``. As on the venue, a connection is dropped after
``ws_max_lifetime_s`` (24 hours), or when it sends more than ``ws_max_incoming_per_s`` (10)
messages in a second, or answers no server ping (sent every 3 minutes) for 10 minutes. Each event
is serialised once and the bytes are shared by every subscriber. The read loop, the faults on new
and open connections and the cleanup when a connection ends are
:class:`~venueguard.sim.wshub.ConnectionHub`'s, shared with the BitMEX dialect.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from venueguard.sim.binance.conn import BinanceConn
from venueguard.sim.binance.feed import Event
from venueguard.sim.fanout import text_frame
from venueguard.sim.wshub import ConnectionHub

if TYPE_CHECKING:
    from venueguard.sim.binance.venue import BinanceVenue

log = logging.getLogger(__name__)

__all__ = ["StreamHub", "stream_key"]

STREAM_RE = re.compile(
    r"^([a-z0-9]{1,30})@(depth(?:@(?:100|250|500)ms)?|aggTrade|trade|bookTicker)$")
MAX_STREAMS = 1024


def stream_key(name: str) -> str | None:
    """The fan-out key of a served stream name (``btcusdt@depth`` -> ``btcusdt@depth@250ms``)."""
    match = STREAM_RE.match(name)
    if match is None:
        return None
    kind = match.group(2)
    if kind == "depth":
        kind = "depth@250ms"  # the venue's default cadence
    return f"{match.group(1)}@{kind}"


def _ws_error(code: int, msg: str, req_id: object) -> dict[str, Any]:
    return {"error": {"code": code, "msg": msg}, "id": req_id}


class StreamHub(ConnectionHub[BinanceConn]):
    """The Binance websocket connections of one venue; the index is keyed by :func:`stream_key`."""

    def __init__(self, venue: BinanceVenue) -> None:
        super().__init__()
        self.venue = venue

    # -- fan-out -------------------------------------------------------------------------------
    def publish(self, events: list[Event]) -> None:
        for event in events:
            if event.stream is None:
                self._publish_user(event)
                continue
            group = self.index.get(event.stream)
            if not group:
                continue
            raw = orjson.dumps(event.data)
            framed: dict[tuple[str, bool], bytes] = {}  # the same bytes for every subscriber
            for conn in group:
                name = conn.streams[event.stream]
                if conn.fx.kinds:
                    conn.send_event(name, raw, event.data, depth=event.depth)
                    continue
                frame = framed.get((name, conn.combined))
                if frame is None:
                    frame = framed[(name, conn.combined)] = text_frame(conn.frame(name, raw))
                conn.push_frame(frame)

    def wants(self, key: str | None) -> bool:
        """Does anyone take ``key`` (None: the user data stream)? Events nobody takes are not
        built."""
        if key is None:
            return any(c.listen_key is not None for c in self.connections.values())
        return bool(self.index.get(key))

    def publish_raw(self, conn: BinanceConn, key: str, data: dict[str, Any],
                    depth: bool) -> None:
        """One event to one connection (replay)."""
        name = conn.streams.get(key)
        if name is not None:
            conn.send_event(name, orjson.dumps(data), data, depth=depth)

    def _publish_user(self, event: Event) -> None:
        raw: bytes | None = None
        for conn in self.connections.values():
            if conn.listen_key is None or conn.key_expired:
                continue
            raw = raw or orjson.dumps(event.data)
            conn.send_event(conn.listen_key, raw, event.data, depth=False)

    def expire_key(self, key: str, now_ms: int) -> int:
        """Tell the key's connections it expired (``listenKeyExpired``); then they go silent."""
        data = {"e": "listenKeyExpired", "E": now_ms, "listenKey": key}
        raw = orjson.dumps(data)
        hit = 0
        for conn in self.connections.values():
            if conn.listen_key == key and not conn.key_expired:
                if not conn.fx.half_open:  # sent even on a stalled connection: it is the cause
                    conn.push(conn.frame(key, raw))
                conn.key_expired = True
                hit += 1
        return hit

    def close_old(self, now_s: float, max_age_s: float) -> int:
        old = [c for c in self.connections.values() if now_s - c.opened_s >= max_age_s]
        for conn in old:
            conn.abort()
        return len(old)

    def keepalive(self, now_s: float, interval_s: float, timeout_s: float) -> None:
        """Ping every ``interval_s``; drop a connection that sent no pong for ``timeout_s``."""
        for conn in list(self.connections.values()):
            if now_s - conn.last_pong_s >= timeout_s:
                conn.abort()
            elif now_s - conn.last_ping_s >= interval_s:
                conn.ping(now_s)

    # -- connections ---------------------------------------------------------------------------
    def add_routes(self, app: web.Application) -> None:
        for prefix in ("", "/public", "/market", "/private"):
            app.router.add_get(f"{prefix}/ws", self.handle)
            app.router.add_get(f"{prefix}/ws/{{tail}}", self.handle)
            app.router.add_get(f"{prefix}/stream", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        venue = self.venue
        server = venue.server
        combined = request.path.rstrip("/").endswith("/stream")
        names: list[str] = []
        tail = request.match_info.get("tail")
        if tail:
            names.append(tail)
        for raw in request.query.getall("streams", []):
            names.extend(n for n in raw.split("/") if n)
        listen_key = request.query.get("listenKey")
        now_s = server.clock.monotonic_s()
        keys = [n for n in names if venue.listen_keys.is_key(n)]
        if listen_key:
            keys.append(listen_key)
        if keys and not all(venue.listen_keys.active(k, now_s) for k in keys):
            return web.json_response({"code": -1125, "msg": "This listenKey does not exist."},
                                     status=400)
        # no permessage-deflate: an event's frame is built once and shared (sim.fanout)
        ws = web.WebSocketResponse(autoping=False, autoclose=False, compress=False,
                                   max_msg_size=1 << 16)
        await ws.prepare(request)
        conn = BinanceConn(self.next_serial(), ws, request.transport, combined=combined,
                           opened_s=now_s, max_queue=server.config.ws_queue_max,
                           seed=server.config.seed)
        if keys:
            conn.listen_key = keys[0]
        await self.serve(conn, server.faults.of_scope("ws", now_s),
                         lambda c: self._open(c, names))
        return ws

    def _open(self, conn: BinanceConn, names: list[str]) -> None:
        """The streams named in the URL (a listenKey among them is the user data stream)."""
        for name in names:
            if not self.venue.listen_keys.is_key(name):
                self._add_stream(conn, name)

    def keys_of(self, conn: BinanceConn) -> Iterable[str]:
        return conn.streams

    def ended(self, conn: BinanceConn) -> None:
        self.venue.stop_replay(conn)

    def on_pong(self, conn: BinanceConn) -> None:
        conn.last_pong_s = self.venue.server.clock.monotonic_s()

    def _over_incoming_limit(self, conn: BinanceConn) -> bool:
        """More than ``ws_max_incoming_per_s`` messages in one second: the venue disconnects."""
        second = int(self.venue.server.clock.monotonic_s())
        if second != conn.incoming_second:
            conn.incoming_second, conn.incoming = second, 0
        conn.incoming += 1
        return conn.incoming > self.venue.settings.ws_max_incoming_per_s

    # -- control messages ----------------------------------------------------------------------
    def on_text(self, conn: BinanceConn, text: str) -> None:
        if self._over_incoming_limit(conn):
            log.info("binance ws connection %d: over the incoming message limit", conn.serial)
            conn.abort()  # the read loop ends
            return
        try:
            req = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            conn.send_json(_ws_error(3, f"Invalid JSON: {exc.msg}", None))
            return
        if not isinstance(req, dict):
            conn.send_json(_ws_error(2, "Invalid request: expected an object", None))
            return
        req_id = req.get("id")
        if req_id is not None and (isinstance(req_id, bool) or not isinstance(req_id, int | str)):
            conn.send_json(_ws_error(2, "Invalid request: request ID must be an unsigned "
                                        "integer or a string", None))
            return
        method = req.get("method")
        params = req.get("params", [])
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                conn.send_json(_ws_error(2, "Invalid request: params must be a list of "
                                            "stream names", req_id))
                return
            for name in params:
                if method == "SUBSCRIBE" and stream_key(name) is None:
                    conn.send_json(_ws_error(2, f"Invalid request: unknown stream {name!r}",
                                             req_id))
                    return
            for name in params:
                if method == "SUBSCRIBE":
                    self._add_stream(conn, name)
                else:
                    self._remove_stream(conn, name)
            conn.send_json({"result": None, "id": req_id})
        elif method == "LIST_SUBSCRIPTIONS":
            conn.send_json({"result": sorted(conn.streams.values()), "id": req_id})
        else:
            conn.send_json(_ws_error(2, f"Invalid request: unknown method {method!r}",
                                     req_id))

    def _add_stream(self, conn: BinanceConn, name: str) -> None:
        key = stream_key(name)
        if key is None or key in conn.streams or len(conn.streams) >= MAX_STREAMS:
            return
        conn.streams[key] = name
        self.index.setdefault(key, {})[conn] = None
        self.venue.start_replay(conn, key)

    def _remove_stream(self, conn: BinanceConn, name: str) -> None:
        key = stream_key(name)
        if key is None or key not in conn.streams:
            return
        del conn.streams[key]
        group = self.index.get(key)
        if group is not None:
            group.pop(conn, None)
        self.venue.stop_replay(conn, key)

