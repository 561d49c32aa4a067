"""The live outage dashboard: one aiohttp application, loopback and read-only by default.

Routes::

    GET /              the page (static/index.html; its script polls the two JSON routes)
    GET /static/*      dashboard.js, dashboard.css
    GET /metrics       Prometheus text from Metrics.render()
    GET /api/state     JSON from state_provider()
    GET /api/series    JSON from SeriesStore.snapshot(now) (?window_s=60..3600, default 900)
    GET /api/events    the last events kept by the EventLog (?n=1..1000, default 100; ?event=NAME)

The state provider (built by the monitor) is a callable, sync or async, returning a dict of this
shape; every number may be ``null`` while unknown, and extra keys are passed through::

    {
      "venue_state": "HEALTHY" | "DEGRADED" | "COOLDOWN" | "BLOCKED",
      "venue_state_until": ISO-8601 string | null,          # end of a cooldown
      "regime": "NORMAL" | "CAUTIOUS" | "SAFE" | "RECOVERING",
      "liveness": {"connection_age_s": float, "data_age_s": float, "pong_age_s": float,
                   "reconnects": int, "stale_count": int, "msgs_per_s": float, "fresh": bool},
      "api": {"latency_p50": float, "latency_p95": float, "latency_p99": float,   # seconds
              "errors_by_kind": {kind: int}, "http_503_per_min": float},
      "orders": {"local_open": int, "venue_open": int, "phantoms": int,
                 "attempts": int, "acks": int},
      "position": {"qty": float, "avg_entry": float, "unrealized_pnl": float,
                   "realized_pnl": float},
      "market": {"symbol": str, "best_bid": float, "best_ask": float, "spread": float,
                 "imbalance": float, "trade_rate": float, "volume_rate": float},
      "freshness": [{"channel": str, "threshold_s": float, "suspicion": float | null,
                     "data_age_s": float}, ...]      # per watched channel, by name
    }

A provider that raises yields HTTP 503 ``{"error": "state unavailable", "kind": ExcName}``;
the server keeps serving. With ``read_only=False`` and ``controls`` (name -> callable), ``POST
/api/control/{name}`` runs one control (e.g. pause or resume the strategy); it requires the header
``X-Venueguard-Control: 1``, which a cross-site form cannot send.

DNS rebinding: a page on another site can make a browser resolve its own name to 127.0.0.1 and
read what the dashboard serves. So every request must name the dashboard in its ``Host`` header:
a loopback name (``localhost``, ``*.localhost``, ``127.x.x.x``, ``::1``) or one of
``allowed_hosts`` (the host the dashboard is configured to serve on); any other gets 421. A
control request must also come from no page or from such an origin (``Origin`` header), or
it gets 403.

:func:`state_from_metrics` builds this dict from a Metrics and a SeriesStore; the monitor can use
it as is and lay what only it knows (``position.avg_entry``, ``liveness.fresh`` ...) over it.

Serve with :func:`start_dashboard` (binds 127.0.0.1 unless told otherwise) and ``await
server.close()`` when done.
"""

from __future__ import annotations

import inspect
import ipaddress
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiohttp import web

from venueguard.numbers import NumberError, read_int
from venueguard.telemetry.events import EventLog
from venueguard.telemetry.metrics import Metrics, histogram_quantile
from venueguard.telemetry.series import SeriesStore

STATIC_DIR = Path(__file__).with_name("static")
StateProvider = Callable[[], Mapping[str, object] | Awaitable[Mapping[str, object]]]

_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _json(payload: object, status: int = 200) -> web.Response:
    body = orjson.dumps(payload, default=str, option=orjson.OPT_NON_STR_KEYS)
    return web.Response(body=body, status=status, content_type="application/json",
                        headers={"Cache-Control": "no-store"})


def _int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    values = request.query.getall(name, [])
    if not values:
        return default
    if len(values) > 1:
        raise web.HTTPBadRequest(text=f"{name} given {len(values)} times")
    try:  # ASCII digits only: int() would take ' 5', '1_0' or Arabic-Indic digits
        return read_int(values[0], low=lo, high=hi)
    except NumberError as exc:
        raise web.HTTPBadRequest(text=f"{name} {exc}") from None


def _labelled(snap: Mapping[str, object], name: str) -> dict[str, object]:
    value = snap.get(name)
    return value if isinstance(value, dict) else {}


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _merge(base: dict[str, object], extra: Mapping[str, object]) -> dict[str, object]:
    for key, value in extra.items():
        inner = base.get(key)
        if isinstance(inner, dict) and isinstance(value, Mapping):
            _merge(inner, value)
        else:
            base[key] = value
    return base


def state_from_metrics(
    metrics: Metrics,
    series: SeriesStore | None,
    *,
    symbol: str,
    now_s: float,
    fresh_after_s: float = 5.0,
    extra: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """The ``/api/state`` dict read from ``metrics`` (and ``series`` for the last minute).

    ``liveness.data_age_s`` is the youngest channel's age and ``fresh`` says whether it is within
    ``fresh_after_s``; ``api`` latency quantiles cover the last 60 s of ``series`` (falling back
    to the whole-run histogram). ``extra`` is merged in last, nested dicts key by key.
    """
    snap = metrics.snapshot()
    ages = [a for a in map(_num, _labelled(snap, "ws_last_data_age_seconds").values())
            if a is not None]
    data_age_s = min(ages) if ages else None
    quantiles: Mapping[str, float | None] = {"p50": None, "p95": None, "p99": None}
    if series is not None:
        quantiles = series.latency_quantiles(now_s, 60.0)
    if quantiles["p50"] is None:
        quantiles = _overall_latency(metrics)
    sym = f"symbol={symbol}"
    views = _labelled(snap, "open_orders")
    state: dict[str, object] = {
        "venue_state": metrics.current_state("venue_state"),
        "regime": metrics.current_state("regime"),
        "liveness": {
            "connection_age_s": snap.get("ws_connection_age_seconds"),
            "data_age_s": data_age_s,
            "pong_age_s": snap.get("ws_pong_age_seconds"),
            "reconnects": snap.get("ws_reconnects_total"),
            "stale_count": sum(v for v in map(_num, _labelled(snap, "ws_stale_total").values())
                               if v is not None),
            "msgs_per_s": None,  # a rate needs two readings: the monitor supplies it
            "fresh": data_age_s is not None and data_age_s <= fresh_after_s,
        },
        "api": {
            "latency_p50": quantiles["p50"],
            "latency_p95": quantiles["p95"],
            "latency_p99": quantiles["p99"],
            "errors_by_kind": {k.partition("=")[2]: v  # kinds seen (all are exported at 0)
                               for k, v in _labelled(snap, "rest_errors_total").items() if v},
            "http_503_per_min": series.http_503_last_minute(now_s) if series else None,
        },
        "orders": {
            "local_open": views.get("view=local"),
            "venue_open": views.get("view=venue"),
            "phantoms": snap.get("phantom_orders_total"),
            "attempts": snap.get("order_attempts_total"),
            "acks": snap.get("order_acks_total"),
        },
        "position": {
            "qty": _labelled(snap, "position").get(sym),
            "avg_entry": None,
            "unrealized_pnl": snap.get("unrealized_pnl"),
            "realized_pnl": snap.get("realized_pnl"),
        },
        "market": {
            "symbol": symbol,
            **{key: _labelled(snap, key).get(sym)
               for key in ("best_bid", "best_ask", "spread", "imbalance", "trade_rate",
                           "volume_rate")},
        },
        "freshness": _freshness(snap),
    }
    return _merge(state, extra or {})


def _freshness(snap: Mapping[str, object]) -> list[dict[str, object]]:
    """Each watched channel's stale threshold, suspicion (null while static) and data age."""
    thresholds = _labelled(snap, "ws_freshness_threshold_seconds")
    suspicion = _labelled(snap, "ws_freshness_suspicion")
    ages = _labelled(snap, "ws_last_data_age_seconds")
    return [{"channel": dict(part.partition("=")[::2] for part in key.split(","))["channel"],
             "threshold_s": _num(value),
             "suspicion": _num(suspicion.get(key)), "data_age_s": _num(ages.get(key))}
            for key, value in sorted(thresholds.items())]


def _overall_latency(metrics: Metrics) -> dict[str, float | None]:
    """Quantiles of ``rest_latency_seconds`` summed over endpoints, from its buckets."""
    totals: dict[float, float] = {}
    for family in metrics.rest_latency_seconds.collect():
        for sample in family.samples:
            if sample.name.endswith("_bucket"):
                bound = float(sample.labels["le"])
                totals[bound] = totals.get(bound, 0.0) + sample.value
    buckets = sorted(totals.items())
    return {f"p{round(q * 100)}": histogram_quantile(buckets, q) for q in (0.5, 0.95, 0.99)}


def create_dashboard_app(
    state_provider: StateProvider,
    metrics: Metrics,
    *,
    read_only: bool = True,
    series: SeriesStore | None = None,
    events: EventLog | None = None,
    wall_clock: Callable[[], float] = time.time,
    controls: Mapping[str, Callable[[], object]] | None = None,
    allowed_hosts: Iterable[str] = (),
) -> web.Application:
    """Build the dashboard application (see the module docstring for routes and the schema).

    ``allowed_hosts``: host names besides the loopback ones that requests may name in ``Host``
    and ``Origin`` (e.g. the address given to ``--host``).
    """
    store = series or SeriesStore()
    hosts = frozenset(h.strip().strip("[]").lower() for h in allowed_hosts if h.strip())

    @web.middleware
    async def host_mw(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        named = request.headers.get("Host")
        if named is not None and not host_allowed(_hostname(named), hosts):
            return web.Response(status=421, text="misdirected request: unknown Host\n")
        return await handler(request)

    @web.middleware
    async def headers_mw(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        response = await handler(request)
        for key, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    app = web.Application(middlewares=[headers_mw, host_mw], client_max_size=64 * 1024)

    async def index(_: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html",
                                headers={"Cache-Control": "no-store"})

    async def metrics_text(_: web.Request) -> web.Response:
        return web.Response(body=metrics.render(),
                            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    async def state(_: web.Request) -> web.Response:
        try:
            result = state_provider()
            if inspect.isawaitable(result):
                result = await result
            if not isinstance(result, Mapping):
                raise TypeError("state provider must return a mapping")
            payload = dict(result)
        except Exception as exc:
            return _json({"error": "state unavailable", "kind": type(exc).__name__}, 503)
        payload.setdefault("now", wall_clock())
        return _json(payload)

    async def series_json(request: web.Request) -> web.Response:
        window_s = _int_param(request, "window_s", 900, 60, 3600)
        now_s = wall_clock()
        return _json(store.snapshot(now_s, float(window_s)))

    async def events_json(request: web.Request) -> web.Response:
        n = _int_param(request, "n", 100, 1, 1000)
        name = request.query.get("event") or None
        records = events.recent(n, name) if events is not None else []
        return _json({"events": records})

    app.router.add_get("/", index)
    app.router.add_get("/metrics", metrics_text)
    app.router.add_get("/api/state", state)
    app.router.add_get("/api/series", series_json)
    app.router.add_get("/api/events", events_json)
    app.router.add_static("/static", STATIC_DIR, follow_symlinks=False)

    if not read_only and controls:
        async def control(request: web.Request) -> web.Response:
            if request.headers.get("X-Venueguard-Control") != "1":
                raise web.HTTPForbidden(text="missing X-Venueguard-Control header")
            origin = request.headers.get("Origin")
            if origin is not None and not host_allowed(_origin_host(origin), hosts):
                raise web.HTTPForbidden(text="cross-origin control request")
            action = controls.get(request.match_info["name"])
            if action is None:
                raise web.HTTPNotFound(text="no such control")
            result = action()
            if inspect.isawaitable(result):
                await result
            if events is not None:
                events.emit("dashboard.control", name=request.match_info["name"])
            return _json({"ok": True})

        app.router.add_post("/api/control/{name}", control)
    return app


def _hostname(host_header: str) -> str:
    """The name in a ``Host`` value (``name``, ``name:port``, ``[v6]:port``), lower-cased."""
    text = host_header.strip().lower()
    if text.startswith("["):
        return text[1:text.find("]")] if "]" in text else ""
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


def _origin_host(origin: str) -> str:
    """The host of an ``Origin`` value (``scheme://host[:port]``); "" for ``null`` or junk."""
    _, sep, rest = origin.strip().partition("://")
    return _hostname(rest.split("/", 1)[0]) if sep else ""


def host_allowed(name: str, extra: frozenset[str] = frozenset()) -> bool:
    """True for loopback names and addresses and for the names in ``extra``."""
    if not name:
        return False
    if name in extra or name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass
class DashboardServer:
    """A running dashboard; ``url`` is ``http://HOST:PORT/``."""

    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def metrics_url(self) -> str:
        return f"{self.url}metrics"

    async def close(self) -> None:
        await self.runner.cleanup()


async def start_dashboard(
    app: web.Application, *, host: str = "127.0.0.1", port: int = 8765
) -> DashboardServer:
    """Serve ``app`` on ``host:port`` (port 0 = any free port) and return the running server."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_port = port
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            bound_port = int(address[1])
            break
    return DashboardServer(runner, host, bound_port)
