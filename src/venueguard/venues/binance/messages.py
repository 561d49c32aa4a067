"""Decode Binance USDⓈ-M market-data frames into typed messages.

:func:`decode` takes one text frame (``str`` or UTF-8 ``bytes``), raw (``{"e": ...}``) or from
a combined stream (``{"stream": ..., "data": {...}}``), and returns one of
:class:`DepthUpdate`, :class:`BookTicker`, :class:`AggTrade`, :class:`Reply` or
:class:`ErrorReply`, or raises :class:`MessageError` (and nothing else, whatever the input).

Binance writes prices and quantities as decimal strings (``"7.6110"``); each is read by a strict
pattern (digits, an optional fraction: no sign, exponent, ``nan`` or ``inf``) into a float, so
an impossible number is refused with the frame, never guessed. Ids and times must be integers.

A combined-stream ``depthUpdate`` of the usual shape (every field of its type, every level two
plain decimal strings, as written by the venue) is decoded straight into typed fields and its
levels into floats in one pass; any other frame, or one that is not quite usual, is decoded
field by field, which decides what is wrong with it.
:func:`depth_snapshot` reads the body of ``GET /fapi/v1/depth`` the same way, and
:func:`increments` the tick (``PRICE_FILTER.tickSize``) and lot (``LOT_SIZE.stepSize``) of
every symbol in ``GET /fapi/v1/exchangeInfo``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
import orjson

__all__ = [
    "AggTrade",
    "BookTicker",
    "DepthSnapshot",
    "DepthUpdate",
    "ErrorReply",
    "Message",
    "MessageError",
    "Reply",
    "decode",
    "depth_snapshot",
    "increments",
    "number",
]

Level = tuple[float, float]

_DECIMAL = re.compile(r"\d{1,20}(?:\.\d{1,20})?")
_match = _DECIMAL.fullmatch
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError


class MessageError(ValueError):
    """A frame that is not a well-formed Binance message. ``code`` is the refusal reason
    (``malformed``, ``invalid_price``, ``invalid_size``, ``invalid_id``, ``unknown_event``)
    and ``stream`` the stream or symbol it named, when it got that far."""

    def __init__(self, reason: str, code: str = "malformed", stream: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.stream = stream


@dataclass(slots=True)
class DepthUpdate:
    """``depthUpdate``: absolute quantities per price (0 deletes); ``first_id`` ``U``,
    ``last_id`` ``u``, ``prev_id`` ``pu`` (the previous event's ``u``)."""

    symbol: str
    event_ms: int
    txn_ms: int
    first_id: int
    last_id: int
    prev_id: int
    bids: list[Level]
    asks: list[Level]
    stream: str | None = None


@dataclass(slots=True)
class BookTicker:
    symbol: str
    update_id: int
    event_ms: int
    txn_ms: int
    bid: Level
    ask: Level
    stream: str | None = None


@dataclass(slots=True)
class AggTrade:
    symbol: str
    agg_id: int
    price: float
    qty: float
    first_trade_id: int
    last_trade_id: int
    trade_ms: int
    event_ms: int
    buyer_is_maker: bool
    stream: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """``{"result": ..., "id": N}``: the answer to a SUBSCRIBE (or other method)."""

    id: object
    result: object


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """``{"error": {"code", "msg"}, "id": N}``."""

    id: object
    code: int | None
    msg: str


@dataclass(frozen=True, slots=True)
class DepthSnapshot:
    """The body of ``GET /fapi/v1/depth``."""

    last_update_id: int
    event_ms: int | None
    txn_ms: int | None
    bids: list[Level]
    asks: list[Level]


Message = DepthUpdate | BookTicker | AggTrade | Reply | ErrorReply


def number(text: object, code: str) -> float:
    """A Binance decimal string as a float; raises :class:`MessageError` (``code``) otherwise."""
    if type(text) is not str or _match(text) is None:
        raise MessageError(f"not a decimal string: {str(text)[:30]!r}", code)
    return float(text)


def _int(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key)
    if type(value) is not int or not 0 <= value < 2**63:
        raise MessageError(f"'{key}' must be a non-negative integer", "invalid_id")
    return value


def _levels(raw: object, side: str) -> list[Level]:
    if type(raw) is not list:
        raise MessageError(f"'{side}' must be a list of [price, qty]")
    out: list[Level] = []
    append = out.append
    for level in raw:
        if type(level) is not list or len(level) != 2:
            raise MessageError(f"'{side}' levels must be [price, qty]")
        price, qty = level
        # number() inlined: this runs for every level of every diff
        if type(price) is not str or _match(price) is None:
            number(price, "invalid_price")  # raises, naming the reason
        if type(qty) is not str or _match(qty) is None:
            number(qty, "invalid_size")
        append((float(price), float(qty)))
    return out


def _symbol(obj: dict[str, Any]) -> str:
    symbol = obj.get("s")
    if type(symbol) is not str or not symbol:
        raise MessageError("'s' must be a non-empty symbol")
    return symbol


# ---- the usual depth diff, typed ---------------------------------------------------------------
_Id = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]


class _DepthEvent(msgspec.Struct, gc=False):
    e: Literal["depthUpdate"]
    E: _Id
    T: _Id
    s: str
    U: _Id
    u: _Id
    pu: _Id
    b: msgspec.Raw
    a: msgspec.Raw


class _CombinedDepth(msgspec.Struct, gc=False):
    stream: str
    data: _DepthEvent


_combined_depth = msgspec.json.Decoder(_CombinedDepth).decode
_TYPED_ERRORS = (msgspec.DecodeError, msgspec.ValidationError)
# A side's levels as written by the venue: [["price","qty"],...], each an ASCII decimal the
# pattern above accepts, without a leading zero, nothing else (no space, no escape). Those, and
# only those, are then read as floats by msgspec in one pass (its reading of such a decimal is
# float()'s).
_PLAIN_DEC = rb'"(?:0|[1-9][0-9]{0,19})(?:\.[0-9]{1,20})?"'
_PLAIN_LEVEL = rb"\[" + _PLAIN_DEC + rb"," + _PLAIN_DEC + rb"\]"
_plain_levels = re.compile(
    rb"\[(?:" + _PLAIN_LEVEL + rb"(?:," + _PLAIN_LEVEL + rb")*)?\]").fullmatch
_read_levels = msgspec.json.Decoder(list[tuple[float, float]], strict=False).decode


def _usual_depth(frame: bytes) -> DepthUpdate | None:
    """The frame as a :class:`DepthUpdate` when it is a combined-stream diff of the usual shape;
    None otherwise (the general decoder then reads it)."""
    try:
        combined = _combined_depth(frame)
    except _TYPED_ERRORS:
        return None
    event = combined.data
    bids, asks = event.b, event.a
    if not event.s or _plain_levels(bids) is None or _plain_levels(asks) is None:
        return None
    try:
        return DepthUpdate(event.s, event.E, event.T, event.U, event.u, event.pu,
                           _read_levels(bids), _read_levels(asks), combined.stream)
    except _TYPED_ERRORS:
        return None


def decode(frame: str | bytes | bytearray | memoryview) -> Message:
    """Decode one websocket text frame; raises :class:`MessageError` and nothing else."""
    if type(frame) is bytes:
        usual = _usual_depth(frame)
        if usual is not None:
            return usual
    try:
        obj = _loads(frame)
    except _JSONDecodeError:
        raise MessageError("invalid JSON") from None
    except TypeError:
        raise MessageError(f"frame must be text or bytes, got {type(frame).__name__}") from None
    if type(obj) is not dict:
        raise MessageError("top level must be an object")
    stream: str | None = None
    if "stream" in obj:
        stream = obj["stream"]
        data = obj.get("data")
        if type(stream) is not str or type(data) is not dict:
            raise MessageError("a combined frame has a string 'stream' and an object 'data'")
        obj = data
    try:
        return _event(obj, stream)
    except MessageError as exc:
        if exc.stream is None:
            named = obj.get("s")
            exc.stream = stream or (named if type(named) is str else None)
        raise
    except Exception as exc:  # any surprise in a hostile frame becomes a MessageError
        raise MessageError(f"malformed message: {type(exc).__name__}", stream=stream) from None


def _event(obj: dict[str, Any], stream: str | None) -> Message:
    kind = obj.get("e")
    if kind == "depthUpdate":
        return DepthUpdate(_symbol(obj), _int(obj, "E"), _int(obj, "T"), _int(obj, "U"),
                           _int(obj, "u"), _int(obj, "pu"), _levels(obj.get("b"), "b"),
                           _levels(obj.get("a"), "a"), stream)
    if kind == "bookTicker":
        return BookTicker(_symbol(obj), _int(obj, "u"), _int(obj, "E"), _int(obj, "T"),
                          (number(obj.get("b"), "invalid_price"),
                           number(obj.get("B"), "invalid_size")),
                          (number(obj.get("a"), "invalid_price"),
                           number(obj.get("A"), "invalid_size")), stream)
    if kind == "aggTrade":
        maker = obj.get("m")
        if type(maker) is not bool:
            raise MessageError("'m' must be a boolean")
        return AggTrade(_symbol(obj), _int(obj, "a"), number(obj.get("p"), "invalid_price"),
                        number(obj.get("q"), "invalid_size"), _int(obj, "f"), _int(obj, "l"),
                        _int(obj, "T"), _int(obj, "E"), maker, stream)
    if kind is not None:
        raise MessageError(f"unknown event {str(kind)[:30]!r}", "unknown_event")
    if "error" in obj:
        error = obj["error"]
        if type(error) is not dict:
            raise MessageError("'error' must be an object")
        code, msg = error.get("code"), error.get("msg")
        return ErrorReply(obj.get("id"), code if type(code) is int else None,
                          msg if type(msg) is str else "")
    if "result" in obj and "id" in obj:
        return Reply(obj["id"], obj["result"])
    raise MessageError("unrecognised message shape")


def depth_snapshot(body: bytes | str | dict[str, Any]) -> DepthSnapshot:
    """Read a ``GET /fapi/v1/depth`` body; raises :class:`MessageError` when it is not one."""
    try:
        obj = body if isinstance(body, dict) else _loads(body)
    except _JSONDecodeError:
        raise MessageError("invalid JSON") from None
    if type(obj) is not dict:
        raise MessageError("a depth snapshot is an object")
    event_ms, txn_ms = obj.get("E"), obj.get("T")
    return DepthSnapshot(_int(obj, "lastUpdateId"),
                         event_ms if type(event_ms) is int else None,
                         txn_ms if type(txn_ms) is int else None,
                         _levels(obj.get("bids"), "bids"), _levels(obj.get("asks"), "asks"))


def increments(exchange_info: dict[str, Any]) -> dict[str, tuple[float | None, float | None]]:
    """``{symbol: (tick, lot)}`` from an exchangeInfo body (None where a filter is missing or
    unreadable: that symbol's book then checks no tick or lot)."""
    out: dict[str, tuple[float | None, float | None]] = {}
    symbols = exchange_info.get("symbols")
    if type(symbols) is not list:
        return out
    for entry in symbols:
        if type(entry) is not dict or type(entry.get("symbol")) is not str:
            continue
        tick = lot = None
        filters = entry.get("filters")
        for flt in filters if type(filters) is list else ():
            if type(flt) is not dict:
                continue
            kind = flt.get("filterType")
            try:
                if kind == "PRICE_FILTER":
                    tick = number(flt.get("tickSize"), "invalid_price") or None
                elif kind == "LOT_SIZE":
                    lot = number(flt.get("stepSize"), "invalid_size") or None
            except MessageError:
                continue
        out[entry["symbol"]] = (tick, lot)
    return out
