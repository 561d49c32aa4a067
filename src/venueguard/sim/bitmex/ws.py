"""The ``/realtime`` websocket: handshake, commands, subscriptions and fan-out.

Handshake: the per-IP connection-open limit (HTTP 429 when over it), optional authentication from
the URL query or the upgrade headers (HTTP 401 when it fails), then the welcome message and any
``?subscribe=`` topics. Commands: ``subscribe``, ``unsubscribe`` (args a list or a bare value),
``authKeyExpires`` / ``authKey``, ``cancelAllAfter``, text ``ping`` and ``{"op": "ping"}``.
Protocol ping frames are answered by hand (so a half-open fault can stop answering them).

Fan-out: :meth:`WsHub.publish` serialises and frames an update once and gives the same bytes to
every subscriber of ``table`` and of ``table:SYMBOL`` (:mod:`venueguard.sim.fanout` writes them
without holding the event loop). The read loop, the faults on new and open connections and the
cleanup when a connection ends are :class:`~venueguard.sim.wshub.ConnectionHub`'s, shared with
the Binance dialect.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from venueguard import numbers
from venueguard.sim.bitmex.conn import WsConnection
from venueguard.sim.fanout import text_frame
from venueguard.sim.model import SimError
from venueguard.sim.wshub import ConnectionHub
from venueguard.venues.bitmex import errors, timefmt

if TYPE_CHECKING:
    from venueguard.sim.server import SimServer

log = logging.getLogger(__name__)

SERVED_PUBLIC = frozenset({"orderBookL2", "orderBookL2_25", "trade", "quote", "instrument"})
SERVED_PRIVATE = frozenset({"order", "execution", "position"})
KNOWN_PUBLIC = SERVED_PUBLIC | frozenset({
    "announcement", "connected", "chat", "publicNotifications", "settlement", "funding",
    "insurance", "liquidation", "orderBook10", "quoteBin1m", "quoteBin5m", "quoteBin1h",
    "quoteBin1d", "tradeBin1m", "tradeBin5m", "tradeBin1h", "tradeBin1d"})
KNOWN_PRIVATE = SERVED_PRIVATE | frozenset({
    "privateNotifications", "account", "wallet", "affiliate", "margin", "transact"})
AUTH_OPS = ("authKeyExpires", "authKey")
_PONG = b"pong"
_HELP = {
    "info": "See https://www.bitmex.com/app/wsAPI and https://www.bitmex.com/explorer for more "
            "documentation.",
    "usage": 'Send a message in the format: {"op": string, "args": Array<string>}',
    "ops": ["authKey", "authKeyExpires", "cancelAllAfter", "subscribe", "unsubscribe"],
    "subscribe": 'To subscribe, send: {"op": "subscribe", "args": [subscriptionTopic, ...]}.',
    "subscriptionSubjects": {"authenticationRequired": sorted(KNOWN_PRIVATE),
                             "public": sorted(KNOWN_PUBLIC)},
}
_APP_NAME = "ws-feedhandler-sim"


def _is_data(table: str) -> bool:
    return table in SERVED_PUBLIC or table in SERVED_PRIVATE


def index_key(topic: str) -> str:
    """Fan-out key: ``table`` for every symbol (``table`` or ``table:*``), else ``table:SYM``."""
    table, _, symbol = topic.partition(":")
    return table if symbol in ("", "*") else topic


class WsHub(ConnectionHub[WsConnection]):
    """The ``/realtime`` connections of one server; the index is keyed by :func:`index_key`."""

    hold_half_open_close = True

    def __init__(self, server: SimServer) -> None:
        super().__init__()
        self.server = server
        self._dirty: list[WsConnection] | None = None  # connections with deferred frames

    # -- fan-out ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Publish several updates with one queue operation per connection: inside the block
        a fault-free subscriber's frames are collected, and queued in order when it ends."""
        if self._dirty is not None:  # nested: the outer block flushes
            yield
            return
        dirty: list[WsConnection] = []
        self._dirty = dirty
        try:
            yield
        finally:
            self._dirty = None
            for conn in dirty:
                conn.flush_pending()

    def publish(self, table: str, action: str, symbol: str | None, rows: list[dict[str, Any]],
                *, private: bool) -> None:
        """Send one update to every subscriber; serialised and framed once."""
        whole = self.index.get(table)
        one = self.index.get(f"{table}:{symbol}") if symbol is not None else None
        if not whole and not one:
            return
        msg = {"table": table, "action": action, "data": rows}
        payload = orjson.dumps(msg)
        frame = text_frame(payload)
        delta = action != "partial"
        dirty = self._dirty
        for group in (whole, one):
            if group:
                for conn in group:
                    if conn.fx.kinds:
                        conn.send_data(payload, msg, delta=delta, public=not private)
                    elif dirty is None:
                        conn.push_frame(frame)
                    else:
                        pending = conn.pending
                        if not pending:
                            dirty.append(conn)
                        pending.append(frame)

    # -- handshake ---------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        server = self.server
        peer = request.remote or "unknown"
        ok, remaining, retry_s = server.conn_limiter.try_open(peer, server.clock.monotonic_s())
        if not ok:
            return web.json_response(
                errors.rest_error_body(errors.rate_limit_text(retry_s), errors.NAME_RATE_LIMIT),
                status=429, headers={"Retry-After": str(retry_s)})
        creds = _handshake_credentials(request)
        if creds is not None:
            problem = server.check_ws_auth(*creds)
            if problem is not None:
                return web.json_response(errors.rest_error_body(problem[1]), status=problem[0])
        # no permessage-deflate: frames are built once and shared by every subscriber
        ws = web.WebSocketResponse(autoping=False, autoclose=False, compress=False,
                                   max_msg_size=server.config.ws_max_frame_bytes)
        await ws.prepare(request)
        conn = WsConnection(self.next_serial(), ws, request.transport, peer,
                            max_queue=server.config.ws_queue_max, seed=server.config.seed)
        conn.authenticated = creds is not None
        now_s = server.clock.monotonic_s()
        await self.serve(conn, server.faults.of_scope("ws", now_s),
                         lambda c: self._open(c, request, remaining))
        return ws

    def _open(self, conn: WsConnection, request: web.Request, remaining: int) -> None:
        """The welcome message, then the topics of ``?subscribe=``."""
        conn.send_json({
            "info": "Welcome to the BitMEX Realtime API.", "version": "2.0.0",
            "timestamp": timefmt.format_ms(self.server.clock.now_ms()),
            "docs": "https://www.bitmex.com/app/wsAPI", "heartbeatEnabled": False,
            "limit": {"remaining": remaining}, "appName": _APP_NAME})
        initial = request.query.getall("subscribe", [])
        topics = [t for raw in initial for t in raw.split(",") if t]
        if topics:
            self._subscribe(conn, {"op": "subscribe", "args": topics}, topics)

    def keys_of(self, conn: WsConnection) -> Iterable[str]:
        return {index_key(topic) for topic in conn.topics}

    def ended(self, conn: WsConnection) -> None:
        self.server.stop_replay(conn)

    # -- commands ---------------------------------------------------------------------------
    def on_binary(self, conn: WsConnection, data: bytes) -> None:
        self.on_text(conn, data.decode("utf-8", "replace"))

    def on_text(self, conn: WsConnection, text: str) -> None:
        try:
            self._dispatch(conn, text)
        except SimError as exc:
            self._error(conn, errors.ws_error_frame(exc.status, exc.message))
        except Exception:  # a bug must not take the connection (or the server) down
            log.exception("ws connection %d: error handling a command", conn.serial)
            self._error(conn, errors.ws_error_frame(500, "Internal error"))

    def _dispatch(self, conn: WsConnection, text: str) -> None:
        if text == "ping":
            conn.send_control(_PONG)
            return
        if text == "help":
            conn.send_json(_HELP)
            return
        try:
            req = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            detail = f"{exc.msg} at position {exc.pos}"
            self._error(conn, errors.ws_error_frame(400, errors.ws_decode_error_text(detail)))
            return
        if not isinstance(req, dict) or not isinstance(req.get("op"), str):
            self._error(conn, errors.ws_error_frame(
                400, errors.WS_UNKNOWN_OP, request=req if isinstance(req, dict) else None))
            return
        op = req["op"]
        raw_args = req.get("args", [])
        args = raw_args if isinstance(raw_args, list) else [raw_args]
        if op == "ping":
            conn.send_control(_PONG)
        elif op in ("subscribe", "unsubscribe") and not args:
            self._error(conn, errors.ws_error_frame(
                400, f"Missing args: {op} needs one or more topics.{errors.WS_DOCS_SUFFIX}",
                request=req))
        elif op == "subscribe":
            self._subscribe(conn, req, args)
        elif op == "unsubscribe":
            self._unsubscribe(conn, req, args)
        elif op in AUTH_OPS:
            self._authenticate(conn, req, args)
        elif op == "cancelAllAfter":
            self._cancel_all_after(conn, req, raw_args)
        else:
            self._error(conn, errors.ws_error_frame(400, errors.WS_UNKNOWN_OP, request=req))

    def _error(self, conn: WsConnection, frame: Mapping[str, object]) -> None:
        conn.send_json(frame)
        conn.errors += 1
        if conn.errors >= self.server.config.ws_max_errors:
            log.info("ws connection %d: too many errors, disconnecting", conn.serial)
            conn.closed = True  # the read loop ends; its caller flushes and closes

    def _subscribe(self, conn: WsConnection, req: Mapping[str, Any], args: list[Any]) -> None:
        replayed: list[str] = []
        for arg in args:
            if not isinstance(arg, str) or not arg:
                self._error(conn, errors.ws_error_frame(
                    400, errors.ws_unknown_table_text(str(arg)), request=req))
                continue
            table, _, symbol = arg.partition(":")
            if table not in KNOWN_PUBLIC and table not in KNOWN_PRIVATE:
                self._error(conn, errors.ws_error_frame(
                    400, errors.ws_unknown_table_text(table), request=req))
            elif table in KNOWN_PRIVATE and not conn.authenticated:
                self._error(conn, errors.ws_error_frame(
                    401, errors.WS_ACCOUNT_LOCKED, meta={"note": errors.WS_ACCOUNT_LOCKED_NOTES},
                    request=req))
            elif arg in conn.topics:
                self._error(conn, errors.ws_error_frame(
                    400, errors.ws_already_subscribed_text(arg), request=req))
            else:
                conn.topics.add(arg)
                conn.send_json({"success": True, "subscribe": arg, "request": req})
                if self.server.replay is not None and table in SERVED_PUBLIC:
                    replayed.append(arg)
                elif _is_data(table):
                    self._start_topic(conn, arg, table, None if symbol in ("", "*") else symbol)
        if replayed:
            # each topic plays from the recording's start, whatever was subscribed before
            self.server.start_replay(conn, frozenset(replayed))

    def _start_topic(self, conn: WsConnection, topic: str, table: str, symbol: str | None) -> None:
        server = self.server
        server.pump()  # everything before the partial goes to the older subscribers first
        msg = server.engine.partial(table, symbol)
        conn.send_data(orjson.dumps(msg), msg, delta=False, public=table in SERVED_PUBLIC)
        self.index.setdefault(index_key(topic), {})[conn] = None

    def _unsubscribe(self, conn: WsConnection, req: Mapping[str, Any], args: list[Any]) -> None:
        for arg in args:
            if not isinstance(arg, str) or arg not in conn.topics:
                self._error(conn, errors.ws_error_frame(
                    400, errors.ws_not_subscribed_text(str(arg)), request=req))
                continue
            conn.topics.discard(arg)
            group = self.index.get(index_key(arg))
            if group is not None:
                group.pop(conn, None)
            conn.send_json({"success": True, "unsubscribe": arg, "request": req})

    def _authenticate(self, conn: WsConnection, req: Mapping[str, Any], args: list[Any]) -> None:
        if conn.authenticated:
            self._error(conn, errors.ws_error_frame(400, errors.WS_ALREADY_AUTHENTICATED,
                                                    request=req))
            return
        if len(args) != 3 or not isinstance(args[0], str) or not isinstance(args[2], str) \
                or isinstance(args[1], bool) or not isinstance(args[1], int | float) \
                or not math.isfinite(args[1]) or abs(args[1]) > 1e15:
            self._error(conn, errors.ws_error_frame(400, errors.MISSING_API_KEY, request=req))
            return
        check_expiry = req.get("op") == "authKeyExpires"
        problem = self.server.check_ws_auth(args[0], int(args[1]), args[2],
                                            check_expiry=check_expiry)
        if problem is not None:
            self._error(conn, errors.ws_error_frame(problem[0], problem[1], request=req))
            return
        conn.authenticated = True
        conn.send_json({"success": True, "request": req})

    def _cancel_all_after(self, conn: WsConnection, req: Mapping[str, Any], raw: Any) -> None:
        if not conn.authenticated:
            self._error(conn, errors.ws_error_frame(401, errors.WS_ACCOUNT_LOCKED, request=req))
            return
        value = raw[0] if isinstance(raw, list) and len(raw) == 1 else raw
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 \
                or not math.isfinite(value) or value > 1e15:
            self._error(conn, errors.ws_error_frame(
                400, "Invalid timeout: must be a non-negative number of milliseconds",
                request=req))
            return
        server = self.server
        ack = server.engine.cancel_all_after(int(value), server.advance_engine())
        conn.send_json({**ack, "request": req})


def _handshake_credentials(request: web.Request) -> tuple[str, int, str] | None:
    """(key, expires, signature) from the URL query or the upgrade headers, if any were sent."""
    for source in (request.query, request.headers):
        key = source.get("api-key")
        if key is None:
            continue
        try:
            expires = numbers.read_int(source.get("api-expires", source.get("api-nonce", "")))
        except numbers.NumberError:
            expires = 0
        return key, expires, source.get("api-signature", "")
    return None

