"""Decode BitMEX websocket frames into typed messages.

:func:`decode` takes one text frame (``str`` or UTF-8 ``bytes``) and returns exactly one of
:class:`Pong`, :class:`Welcome`, :class:`SubscribeAck`, :class:`CommandAck`,
:class:`ErrorFrame`, :class:`CancelAllAfterAck`, :class:`Info` or :class:`TableMessage`, or
raises :class:`MessageError`. It never raises anything else, whatever the input.

Shapes follow what BitMEX has sent from 2018 to 2025: optional fields may be missing or null
(BitMEX omits nulls since 2023), ``args`` may be a bare value instead of a list. Tables the
decoder does not know still decode to :class:`TableMessage`; the session decides what to do.

Rows in :attr:`TableMessage.data` are the decoded dicts as they came (not copied); treat them
as read-only.

:func:`decode_book_delta` is the market-data pipeline's fast lane: the usual ``orderBookL2``
delta decoded straight into typed rows (:class:`BookDelta`), or None for any other frame, which
then goes through :func:`decode` (so whatever it refuses, and why, is decided there).

:func:`decode_command` is the server-side counterpart: it decodes a client command
``{"op": ..., "args": ...}`` into a :class:`Command`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Literal

import msgspec
import orjson

from venueguard.venues.bitmex.timefmt import parse_ms_or_none

Row = dict[str, Any]


class MessageError(ValueError):
    """A frame that is not a well-formed BitMEX message; ``reason`` says why (no frame content).

    ``code`` is the short refusal reason (``malformed`` or ``unknown_action``) and ``table``
    the data table named by the frame when it got that far (None otherwise).
    """

    def __init__(self, reason: str, code: str = "malformed", table: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.table = table


class Action(StrEnum):
    """The four data actions. Members are the wire strings (``Action.UPDATE == "update"``), so
    they can be handed straight to ``BookSet.apply``."""

    PARTIAL = "partial"
    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"


_ACTIONS: dict[object, Action] = {a.value: a for a in Action}
_PARTIAL = Action.PARTIAL  # module constant: enum attribute access is slow on the hot path


@dataclass(frozen=True, slots=True)
class Pong:
    """The bare text ``pong`` (or a JSON ``{"op": "pong"}``), answering our ``ping``."""


PONG = Pong()


@dataclass(frozen=True, slots=True)
class Welcome:
    """First frame of a connection. ``limit_remaining`` is the connection allowance, if sent."""

    info: str
    version: str | None = None
    timestamp_ms: int | None = None
    docs: str | None = None
    heartbeat_enabled: bool | None = None
    limit_remaining: int | None = None
    app_name: str | None = None


@dataclass(frozen=True, slots=True)
class SubscribeAck:
    """Reply to one topic of a subscribe/unsubscribe (BitMEX sends one ack per topic).

    ``op`` is ``"subscribe"`` or ``"unsubscribe"``; on failure ``success`` is False and
    ``error`` holds the text (the older ``{"success": false, "subscribe": ..., "error": ...}``
    form; the newer failure form is an :class:`ErrorFrame`).
    """

    success: bool
    op: str
    topic: str
    error: str | None = None
    request: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CommandAck:
    """``{"success": ..., "request": {"op": ...}}`` for other commands (e.g. authKeyExpires)."""

    success: bool
    op: str | None
    error: str | None = None
    request: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ErrorFrame:
    """``{"status", "error", "meta", "request"}``; ``request`` is None when the venue sent none."""

    status: int
    error: str
    meta: Mapping[str, Any] = field(default_factory=dict)
    request: Mapping[str, Any] | None = None

    @property
    def retry_after_s(self) -> float | None:
        """``meta.retryAfter`` of a 429, when present."""
        value = self.meta.get("retryAfter")
        return float(value) if isinstance(value, int | float) else None


@dataclass(frozen=True, slots=True)
class CancelAllAfterAck:
    """Dead man's switch ack; ``cancel_time_ms`` None means disarmed (BitMEX sends 0)."""

    now_ms: int | None
    cancel_time_ms: int | None
    request: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Info:
    """Any other frame with an ``info`` text (e.g. the reply to ``help``); ``body`` is all of it."""

    info: str
    body: Mapping[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class TableMessage:
    """A data message. ``keys``, ``types`` and ``filter`` come only with partials (maybe not even
    then); ``symbol`` is ``filter["symbol"]`` when present, else None (rows may mix symbols).

    Read-only by convention. Not ``frozen``: a frozen dataclass costs about 1 us more to build,
    a sixth of the per-message budget of the book pipeline (150k messages/s).
    """

    table: str
    action: Action
    data: list[Row]
    keys: tuple[str, ...] | None = None
    types: Mapping[str, Any] | None = None
    filter: Mapping[str, Any] | None = None
    symbol: str | None = None


Message = (
    Pong | Welcome | SubscribeAck | CommandAck | ErrorFrame | CancelAllAfterAck | Info
    | TableMessage
)


# Integers are taken within int64 only: beyond it the general decoder reads a float, or nothing.
_Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class BookRow(msgspec.Struct, gc=False):
    """One level-2 row of the usual shape: each field of the type named (``size`` and
    ``price`` may be missing or null, as in a ``dict`` row's ``.get``). ``side`` is the very
    object ``"Buy"`` or ``"Sell"``."""

    symbol: str
    id: _Int64
    side: Literal["Buy", "Sell"]
    timestamp: str
    size: _Int64 | None = None
    price: _Int64 | float | None = None


class BookDelta(msgspec.Struct, gc=False):
    """A level-2 delta (not a partial) whose rows are all :class:`BookRow`; ``table`` and
    ``action`` are the very objects of the wire names. A message carrying ``keys``, ``types``
    or ``filter`` (other than null) is not one: :func:`decode` reads it."""

    table: Literal["orderBookL2", "orderBookL2_25"]
    action: Literal["insert", "update", "delete"]
    data: list[BookRow]
    keys: None = None
    types: None = None
    filter: None = None


#: Every level-2 data frame starts so, as the venue writes it (``table`` first).
BOOK_PREFIX = b'{"table":"orderBookL2'
#: Decodes a frame into a :class:`BookDelta`; raises one of :data:`DELTA_ERRORS` otherwise.
book_delta_decoder = msgspec.json.Decoder(BookDelta)
DELTA_ERRORS = (msgspec.DecodeError, msgspec.ValidationError)


def decode_book_delta(frame: object) -> BookDelta | None:
    """The frame as a :class:`BookDelta` when it is a level-2 delta (bytes starting with
    :data:`BOOK_PREFIX`) whose every row has the usual types; None otherwise.

    Where both succeed, the values are those :func:`decode` gives (an integer outside int64,
    which :func:`decode` reads as a float or refuses, is left to it).
    """
    if type(frame) is not bytes or not frame.startswith(BOOK_PREFIX):
        return None
    try:
        return book_delta_decoder.decode(frame)
    except DELTA_ERRORS:
        return None


@dataclass(frozen=True, slots=True)
class Command:
    """A client command; ``args`` is always a tuple (a bare value becomes a 1-tuple)."""

    op: str
    args: tuple[Any, ...]


_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError


_FRAME_TYPES = (str, bytes, bytearray, memoryview)


def _load(frame: str | bytes | bytearray | memoryview) -> object:
    if not isinstance(frame, _FRAME_TYPES):
        raise MessageError(f"frame must be text or bytes, got {type(frame).__name__}")
    try:
        return _loads(frame)
    except _JSONDecodeError:
        raise MessageError("invalid JSON") from None


def decode(frame: str | bytes | bytearray | memoryview) -> Message:
    """Decode one websocket text frame; raises :class:`MessageError` and nothing else."""
    if type(frame) is bytes:
        if len(frame) == 4 and frame == b"pong":
            return PONG
    elif _is_text(frame, "pong"):
        return PONG
    try:
        obj = _loads(frame)  # inlined _load: this is the hot path
    except _JSONDecodeError:
        if not isinstance(frame, _FRAME_TYPES):
            raise MessageError(f"frame must be text or bytes, got {type(frame).__name__}") from None
        raise MessageError("invalid JSON") from None
    if type(obj) is not dict:
        raise MessageError(f"top level must be an object, got {type(obj).__name__}")
    try:
        table = obj.get("table")
        if table is None:
            return _control(obj)
        # A data message, inlined (one call less per message on the hot path).
        if type(table) is not str or not table:
            raise MessageError("'table' must be a non-empty string")
        raw_action = obj.get("action")
        action = _ACTIONS.get(raw_action) if type(raw_action) is str else None
        if action is None:
            raise MessageError(f"unknown or missing action for table {table:.40}",
                               "unknown_action", table)
        data = obj.get("data")
        if type(data) is not list:
            raise MessageError(f"'data' must be a list in {table:.40} {action.value}",
                               table=table)
        if len(data) == 1:  # the usual message: one row
            if type(data[0]) is not dict:
                raise MessageError(f"rows must be objects in {table:.40} {action.value}",
                                   table=table)
        else:
            for row in data:
                if type(row) is not dict:
                    raise MessageError(f"rows must be objects in {table:.40} {action.value}",
                                       table=table)
        if action is not _PARTIAL and "keys" not in obj and "filter" not in obj:
            return TableMessage(table, action, data)
        return _table_extras(obj, table, action, data)
    except MessageError as exc:
        if exc.table is None:
            named = obj.get("table")
            exc.table = named if type(named) is str and named else None
        raise
    except Exception as exc:  # any surprise in a hostile frame becomes a MessageError
        raise MessageError(f"malformed message: {type(exc).__name__}") from None


def _is_text(frame: object, word: str) -> bool:
    if type(frame) is str:
        return frame == word
    if isinstance(frame, bytes | bytearray | memoryview):
        return len(frame) == len(word) and bytes(frame) == word.encode()
    return False


def _table_extras(obj: dict[str, Any], table: str, action: Action, data: list[Row]
                  ) -> TableMessage:
    """A data message carrying ``keys``, ``types`` or ``filter`` (partials, mostly)."""
    keys = obj.get("keys")
    if keys is not None:
        if type(keys) is not list or not all(type(k) is str for k in keys):
            raise MessageError("'keys' must be a list of strings")
        keys = tuple(keys)
    types = obj.get("types")
    if types is not None and type(types) is not dict:
        raise MessageError("'types' must be an object")
    flt = obj.get("filter")
    if flt is not None and type(flt) is not dict:
        raise MessageError("'filter' must be an object")
    symbol = flt.get("symbol") if flt is not None else None
    if symbol is not None and type(symbol) is not str:
        raise MessageError("'filter.symbol' must be a string")
    return TableMessage(table, action, data, keys, types, flt, symbol)


def _opt_str(obj: Mapping[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if type(value) is not str:
        raise MessageError(f"'{name}' must be a string")
    return value


def _opt_mapping(obj: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    value = obj.get(name)
    if value is None:
        return None
    if type(value) is not dict:
        raise MessageError(f"'{name}' must be an object")
    return value


def _control(obj: dict[str, Any]) -> Message:
    if "error" in obj and "status" in obj:
        status = obj["status"]
        if type(status) is not int:
            raise MessageError("'status' must be an integer")
        error = obj["error"]
        if type(error) is not str:
            raise MessageError("'error' must be a string")
        return ErrorFrame(status, error, _opt_mapping(obj, "meta") or {},
                          _opt_mapping(obj, "request"))
    if "success" in obj:
        success = obj["success"]
        if type(success) is not bool:
            raise MessageError("'success' must be a boolean")
        request = _opt_mapping(obj, "request") or {}
        error = _opt_str(obj, "error")
        for op in ("subscribe", "unsubscribe"):
            if op in obj:
                topic = obj[op]
                if type(topic) is not str:
                    raise MessageError(f"'{op}' must be a topic string")
                return SubscribeAck(success, op, topic, error, request)
        req_op = request.get("op", obj.get("op"))
        if req_op is not None and type(req_op) is not str:
            raise MessageError("'request.op' must be a string")
        return CommandAck(success, req_op, error, request)
    if "cancelTime" in obj:
        return _cancel_all_after(obj)
    info = obj.get("info")
    if info is not None:
        if type(info) is not str:
            raise MessageError("'info' must be a string")
        if "version" in obj or info.startswith("Welcome"):
            return _welcome(obj, info)
        return Info(info, obj)
    if obj.get("op") in ("pong", "ping") and len(obj) == 1:
        return PONG
    raise MessageError("unrecognised message shape")


def _welcome(obj: dict[str, Any], info: str) -> Welcome:
    timestamp = _opt_str(obj, "timestamp")
    ts_ms = parse_ms_or_none(timestamp)
    if timestamp is not None and ts_ms is None:
        raise MessageError("welcome 'timestamp' is not a BitMEX timestamp")
    heartbeat = obj.get("heartbeatEnabled")
    if heartbeat is not None and type(heartbeat) is not bool:
        raise MessageError("'heartbeatEnabled' must be a boolean")
    limit = _opt_mapping(obj, "limit") or {}
    remaining = limit.get("remaining")
    if remaining is not None and type(remaining) is not int:
        raise MessageError("'limit.remaining' must be an integer")
    return Welcome(info, _opt_str(obj, "version"), ts_ms, _opt_str(obj, "docs"), heartbeat,
                   remaining, _opt_str(obj, "appName"))


def _cancel_all_after(obj: dict[str, Any]) -> CancelAllAfterAck:
    now_text = _opt_str(obj, "now")
    now_ms = parse_ms_or_none(now_text)
    if now_text is not None and now_ms is None:
        raise MessageError("cancelAllAfter 'now' is not a BitMEX timestamp")
    cancel_time = obj.get("cancelTime")
    if cancel_time in (0, None, ""):
        cancel_ms = None
    else:
        cancel_ms = parse_ms_or_none(cancel_time)
        if cancel_ms is None:
            raise MessageError("cancelAllAfter 'cancelTime' is not a timestamp or 0")
    return CancelAllAfterAck(now_ms, cancel_ms, _opt_mapping(obj, "request") or {})


def decode_command(frame: str | bytes | bytearray | memoryview) -> Command:
    """Decode a client command frame (server side); raises :class:`MessageError`.

    The text ``ping`` decodes to ``Command("ping", ())``.
    """
    if _is_text(frame, "ping"):
        return Command("ping", ())
    obj = _load(frame)
    if type(obj) is not dict:
        raise MessageError("command must be a JSON object")
    op = obj.get("op")
    if type(op) is not str or not op:
        raise MessageError("command 'op' must be a non-empty string")
    args = obj.get("args", ())
    if type(args) is list:
        return Command(op, tuple(args))
    if args is None or args == ():
        return Command(op, ())
    return Command(op, (args,))
