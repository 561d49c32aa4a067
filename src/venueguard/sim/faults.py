"""Fault kinds, their parameters, and the book of active faults.

The kind names and parameter names are a public contract (the control API, scenario files and the
chaos runner use them). Each kind lists its parameters with defaults; anything else is rejected
with a message naming the kind and the allowed parameters.

Scopes:
- ``rest``: decided per request while the fault is active (``duration_s`` or until cleared).
- ``ws``: a websocket fault hits the connections open when it is posted and a hit connection stays
  broken until it closes, as a dead TCP path does. New connections opened while it is active are
  hit only when it was posted with ``"new_connections": true``.
- ``orders``: changes what the venue shows about accepted orders (visibility, fills, cancels).

DNS failure. The simulator cannot make a name lookup fail on the client's machine, so the failure
is delivered through the client's resolver seam. While ``dns_failure`` is active:
- ``GET /_sim/faults`` lists it, and ``GET /_sim/resolve?host=NAME`` answers
  ``{"host": NAME, "error": "NXDOMAIN"}`` instead of ``{"host": NAME, "addresses": ["127.0.0.1"],
  "port": PORT}``;
- :class:`venueguard.sim.resolver.SimResolver` (an ``aiohttp.abc.AbstractResolver``) asks that
  endpoint for every lookup and raises ``OSError(socket.EAI_NONAME, ...)``, which aiohttp reports
  as ``ClientConnectorDNSError``, exactly as for a real failed lookup;
- REST responses also carry ``x-sim-dns-failure: 1`` (a request that got through had a resolved
  address from before the failure; clients without the seam can see the fault is on).
A client test builds its session with ``aiohttp.TCPConnector(resolver=SimResolver(base_url))``
and a URL with any host name (``http://sim.venueguard.test:PORT/api/v1``), posts
``{"kind": "dns_failure"}`` and observes a DNS error on its next connection.

Determinism: every fault draws from its own ``random.Random`` seeded by the server seed and the
fault's serial number, so the same seed and the same sequence of requests give the same decisions.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

Scope = Literal["rest", "ws", "orders"]
ParamValue = float | int | bool


@dataclass(frozen=True, slots=True)
class ParamSpec:
    name: str
    kind: type  # float, int or bool
    default: ParamValue
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True, slots=True)
class KindSpec:
    name: str
    scope: Scope
    params: tuple[ParamSpec, ...]
    summary: str


def _p(name: str, default: float, low: float | None = 0.0, high: float | None = None) -> ParamSpec:
    return ParamSpec(name, float, default, low, high)


_PROB = _p("probability", 1.0, 0.0, 1.0)

KINDS: dict[str, KindSpec] = {spec.name: spec for spec in (
    KindSpec("overload_503", "rest", (
        _PROB, ParamSpec("follow_intensity", bool, False), ParamSpec("follow_load", bool, False),
        _p("load_threshold", 2.0), _p("load_scale", 1.5, 0.01), _p("order_weight_s", 0.5)),
             "503 overloaded on new orders and amends (never cancels); with follow_intensity the "
             "probability is multiplied by the market intensity of the order's symbol; with "
             "follow_load it is 0 up to load_threshold and rises towards probability with the "
             "market intensity plus order_weight_s times the order rate (docs/overload.md)"),
    KindSpec("rate_limit_429", "rest", (_p("retry_after_s", 1.0), _PROB),
             "429 RateLimitError with Retry-After on every REST route"),
    KindSpec("forbidden_403", "rest", (_PROB,), "HTML 403 Forbidden from the edge"),
    KindSpec("cloudflare_522", "rest", (_PROB,), "Cloudflare 522 connection timed out"),
    KindSpec("cloudflare_1010", "rest", (_PROB,), "Cloudflare 1010: client signature banned"),
    KindSpec("cloudflare_1006", "rest", (_PROB,), "Cloudflare 1006: client IP banned"),
    KindSpec("dns_failure", "rest", (), "name lookups fail through the client resolver seam"),
    KindSpec("latency", "rest", (_p("ms", 200.0), _p("jitter_ms", 0.0)),
             "every REST response is delayed by ms +- jitter_ms"),
    KindSpec("timeout_after_accept", "rest", (_PROB, _p("hold_s", 120.0)),
             "order writes reach the engine; the response is held until the client gives up"),
    KindSpec("bad_gateway_after_accept", "rest", (_PROB,),
             "order writes reach the engine; the client gets a 502 HTML page"),
    KindSpec("expired_request", "rest", (_PROB,), "signed requests rejected as expired"),
    KindSpec("invalid_key", "rest", (_PROB,), "signed requests and ws auth: Invalid API Key."),
    KindSpec("bad_signature", "rest", (_PROB,),
             "signed requests and ws auth: Signature not valid."),
    KindSpec("ws_stall", "ws", (), "data stops, pings are still answered"),
    KindSpec("ws_half_open", "ws", (), "data and pongs stop, the TCP connection stays open"),
    KindSpec("ws_drop", "ws", (), "the transport is aborted without a close frame"),
    KindSpec("ws_reorder", "ws", (_p("probability", 0.2, 0.0, 1.0),),
             "a data message is held back and sent after the next one"),
    KindSpec("ws_duplicate", "ws", (_p("probability", 0.2, 0.0, 1.0),),
             "a data message is sent twice"),
    KindSpec("ws_stale_timestamps", "ws", (_p("delay_s", 10.0),),
             "row timestamps are moved delay_s into the past"),
    KindSpec("ws_future_timestamps", "ws", (_p("ahead_s", 10.0),),
             "row timestamps are moved ahead_s into the future"),
    KindSpec("ws_gap", "ws", (ParamSpec("count", int, 1, 1, None),),
             "the next count public deltas are dropped"),
    KindSpec("delayed_visibility", "orders", (_p("delay_s", 3.0),),
             "orders accepted while active stay out of GET /order for delay_s"),
    KindSpec("late_fill", "orders", (_p("delay_s", 3.0),),
             "trade executions reach the execution table and tradeHistory delay_s late"),
    KindSpec("cancel_race", "orders", (_PROB,),
             "a cancel of a resting order loses the race: the order fills first"),
)}

COMMON_PARAMS = ("kind", "duration_s", "new_connections")


class FaultError(ValueError):
    """A fault request or a scenario entry is malformed; the message says what is wrong."""


@dataclass(slots=True)
class Fault:
    """One active fault. ``params`` holds every parameter of the kind, defaults filled in."""

    id: str
    kind: str
    params: dict[str, ParamValue]
    started_s: float
    until_s: float | None
    new_connections: bool
    rng: random.Random = field(repr=False)

    @property
    def scope(self) -> Scope:
        return KINDS[self.kind].scope

    def active(self, now_s: float) -> bool:
        return self.until_s is None or now_s < self.until_s

    def roll(self, probability: float | None = None) -> bool:
        """One seeded draw: True with ``probability`` (default: the fault's own)."""
        p = float(self.params.get("probability", 1.0)) if probability is None else probability
        if p >= 1.0:
            return True
        return self.rng.random() < p

    def describe(self, now_s: float) -> dict[str, object]:
        out: dict[str, object] = {"id": self.id, "kind": self.kind, **self.params,
                                  "started_s_ago": round(now_s - self.started_s, 3),
                                  "duration_s": None if self.until_s is None
                                  else round(self.until_s - self.started_s, 3)}
        if self.scope == "ws":
            out["new_connections"] = self.new_connections
        return out


def _coerce(kind: str, spec: ParamSpec, value: object) -> ParamValue:
    where = f"fault {kind}: parameter {spec.name!r}"
    if spec.kind is bool:
        if isinstance(value, bool):
            return value
        raise FaultError(f"{where} must be true or false, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultError(f"{where} must be a number, got {value!r}")
    if spec.kind is int and not float(value).is_integer():
        raise FaultError(f"{where} must be an integer, got {value!r}")
    number: float | int = int(value) if spec.kind is int else float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise FaultError(f"{where} must be finite, got {value!r}")
    if spec.low is not None and number < spec.low:
        raise FaultError(f"{where} must be >= {spec.low:g}, got {value!r}")
    if spec.high is not None and number > spec.high:
        raise FaultError(f"{where} must be <= {spec.high:g}, got {value!r}")
    return number


@dataclass(frozen=True, slots=True)
class FaultRequest:
    """A validated fault request: what POST /_sim/faults and scenario entries turn into."""

    kind: str
    params: dict[str, ParamValue]
    duration_s: float | None
    new_connections: bool


def parse_fault(raw: object) -> FaultRequest:
    """Validate a JSON object ``{"kind": K, ...params, "duration_s": S?}``; raises FaultError."""
    if not isinstance(raw, dict):
        raise FaultError("a fault must be a JSON object with a 'kind'")
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise FaultError(f"unknown fault kind {kind!r}; known kinds: {', '.join(sorted(KINDS))}")
    spec = KINDS[kind]
    allowed = {p.name: p for p in spec.params}
    unknown = sorted(k for k in raw if k not in allowed and k not in COMMON_PARAMS)
    if unknown:
        names = ", ".join(sorted(allowed)) or "none"
        raise FaultError(f"fault {kind}: unknown parameter(s) {', '.join(map(repr, unknown))}; "
                         f"its parameters: {names} (plus duration_s"
                         f"{', new_connections' if spec.scope == 'ws' else ''})")
    params = {name: _coerce(kind, p, raw[name]) if name in raw else p.default
              for name, p in allowed.items()}
    duration = raw.get("duration_s")
    if duration is not None:
        duration = _coerce(kind, ParamSpec("duration_s", float, 0.0, 0.0), duration)
        if duration <= 0:
            raise FaultError(f"fault {kind}: 'duration_s' must be > 0, got {duration!r}")
    new_conn = raw.get("new_connections", False)
    if not isinstance(new_conn, bool):
        raise FaultError(f"fault {kind}: 'new_connections' must be true or false")
    if new_conn and spec.scope != "ws":
        raise FaultError(f"fault {kind}: 'new_connections' applies to ws_* faults only")
    return FaultRequest(kind, params, None if duration is None else float(duration), new_conn)


class FaultBook:
    """Active faults by id. Call :meth:`expire` with the current time before reading decisions."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._serial = 0
        self._faults: dict[str, Fault] = {}

    def add(self, request: FaultRequest, now_s: float) -> Fault:
        self._serial += 1
        fault_id = f"f{self._serial}"
        until = None if request.duration_s is None else now_s + request.duration_s
        fault = Fault(fault_id, request.kind, dict(request.params), now_s, until,
                      request.new_connections,
                      random.Random(f"{self._seed}/{self._serial}/{request.kind}"))
        self._faults[fault_id] = fault
        return fault

    def clear(self) -> list[Fault]:
        removed = list(self._faults.values())
        self._faults.clear()
        return removed

    def expire(self, now_s: float) -> list[Fault]:
        gone = [f for f in self._faults.values() if not f.active(now_s)]
        for fault in gone:
            del self._faults[fault.id]
        return gone

    def first(self, kind: str, now_s: float) -> Fault | None:
        """The active fault of ``kind`` that applies now: the most recently posted one.

        A scenario layers short bursts over a long background fault of the same kind (e.g. a
        mild ``overload_503`` all along and sharp ones on market bursts); the newer, more specific
        fault must win while it lasts, then the background one applies again.
        """
        for fault in reversed(self._faults.values()):
            if fault.kind == kind and fault.active(now_s):
                return fault
        return None

    def of_scope(self, scope: Scope, now_s: float) -> list[Fault]:
        return [f for f in self._faults.values() if f.scope == scope and f.active(now_s)]

    def __len__(self) -> int:
        return len(self._faults)

    def listing(self, now_s: float) -> list[dict[str, object]]:
        return [f.describe(now_s) for f in self._faults.values() if f.active(now_s)]
