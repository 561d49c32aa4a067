"""ccxt's clock, routed through venueguard's clock seam for one exchange object.

ccxt reads the system clock itself: ``Exchange.milliseconds()`` / ``seconds()`` /
``microseconds()`` (signatures, nonces, ``api-expires``, ``timestamp`` parameters, order
timestamps), its websocket client (connection times, the keepalive's last pong) and its
throttler (token refill). Under a virtual-time loop (:mod:`venueguard.io.vloop`) that clock
would be the machine's while every other clock of the stack is the loop's: a signature would
expire or not depending on how fast the machine runs.

:func:`route_clock` makes one exchange object read :func:`venueguard.io.clock.wall_ns`
instead. On a real event loop (or with none running) that is the system clock, as before; on
a virtual-time loop it is the loop's wall clock. Nothing global changes: the class, ccxt's
modules and every other exchange object keep the system clock.

* ``milliseconds``, ``seconds``, ``microseconds``: instance attributes shadowing ccxt's static
  methods (ccxt calls them as ``self.milliseconds()``; ``nonce()`` is built on them);
* the websocket clients the object creates (``exchange.client(url)``) and the throttlers (its
  own and each client's): their methods that name the clock (``Exchange`` in the websocket
  client's module, ``time`` in the throttler's) are rebound, on that one client or throttler,
  to a copy of the function whose globals name the seam instead. The code run is ccxt's own.

Call :func:`route_clock` once per exchange object, before its first call (``guard()`` does).
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from typing import Any

from venueguard.io.clock import wall_ns

__all__ = ["route_clock"]


def _milliseconds() -> int:
    return wall_ns() // 1_000_000


def _seconds() -> int:
    return wall_ns() // 1_000_000_000


def _microseconds() -> int:
    return wall_ns() // 1_000


def _time_s() -> float:
    seconds, ns = divmod(wall_ns(), 1_000_000_000)
    return seconds + ns / 1e9


def route_clock(exchange: Any) -> None:
    """Make ``exchange`` (a ccxt async/pro object) read time through the clock seam."""
    if getattr(exchange, "_venueguard_clock", False):
        return
    exchange.milliseconds = _milliseconds
    exchange.seconds = _seconds
    exchange.microseconds = _microseconds
    throttler = getattr(exchange, "throttler", None)
    if throttler is not None:
        _rebind(throttler, {"time": _time_s})
    client = getattr(exchange, "client", None)
    if callable(client):
        exchange.client = _clocked_clients(client)
    exchange._venueguard_clock = True


def _clocked_clients(client: Callable[[str], Any]) -> Callable[[str], Any]:
    """``exchange.client(url)`` whose new websocket clients read the seam."""

    def clocked(url: str) -> Any:
        ws = client(url)
        if not getattr(ws, "_venueguard_clock", False):
            seam = _seam_exchange(type(ws))
            if seam is not None:
                _rebind(ws, {"Exchange": seam})
            throttle = getattr(ws, "throttle", None)
            if throttle is not None and not callable(throttle):
                _rebind(throttle, {"time": _time_s})
            ws._venueguard_clock = True
        return ws

    return clocked


_SEAMS: dict[type, type] = {}


def _seam_exchange(client_type: type) -> type | None:
    """A subclass of the ``Exchange`` the websocket client's module names, reading the seam."""
    module = __import__(client_type.__module__, fromlist=["Exchange"])
    base = getattr(module, "Exchange", None)
    if not isinstance(base, type):
        return None
    seam = _SEAMS.get(base)
    if seam is None:
        seam = type("SeamExchange", (base,), {
            "milliseconds": staticmethod(_milliseconds), "seconds": staticmethod(_seconds),
            "microseconds": staticmethod(_microseconds)})
        _SEAMS[base] = seam
    return seam


def _rebind(obj: Any, names: Mapping[str, Any]) -> None:
    """Bind to ``obj`` alone copies of its class's functions that read any of ``names``, with
    those globals replaced (the class and its other instances are untouched)."""
    for klass in reversed(type(obj).__mro__):
        for attr, func in vars(klass).items():
            if not isinstance(func, types.FunctionType) or attr.startswith("__"):
                continue
            if not set(names) & set(func.__code__.co_names):
                continue
            copy = types.FunctionType(func.__code__, {**func.__globals__, **names},
                                      func.__name__, func.__defaults__, func.__closure__)
            copy.__kwdefaults__ = func.__kwdefaults__
            copy.__qualname__ = func.__qualname__
            setattr(obj, attr, types.MethodType(copy, obj))
