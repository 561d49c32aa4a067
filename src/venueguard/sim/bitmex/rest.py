"""REST routes under ``/api/v1`` and the middleware every API request goes through.

Order of checks for one API request (the middleware), mirroring where each failure happens on
the real path client -> edge -> venue:
1. edge faults (403 / Cloudflare 522, 1010, 1006 HTML pages) and injected latency;
2. the rate limiter (``x-ratelimit-*`` headers on every response, 429 when exhausted) and the
   ``rate_limit_429`` fault; buckets are keyed by the API key only when the request's signature
   verifies, otherwise by the client's IP (made-up keys get no allowance of their own);
3. the body (at most 1 MiB; larger -> 413) and the signature on private routes, or on any route
   that sends ``api-key``;
4. the route itself, which may raise :class:`SimError` -> ``{"error": {"message", "name"}}``.
Unexpected exceptions become a 500 with a generic message and are logged: the server keeps serving.
``HEAD`` is answered on every GET route (as GET, without a body).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from venueguard.sim import edge
from venueguard.sim.bitmex import params
from venueguard.sim.control import SERVER_KEY
from venueguard.sim.httpserver import json_response
from venueguard.sim.model import SimError
from venueguard.venues.bitmex import errors

if TYPE_CHECKING:
    from venueguard.sim.server import SimServer

log = logging.getLogger(__name__)

PARAMS_KEY: web.RequestKey[dict[str, Any]] = web.RequestKey("venueguard_sim_params")
PREFIX = "/api/v1"
PUBLIC_ROUTES = frozenset({
    ("GET", f"{PREFIX}/orderBook/L2"), ("GET", f"{PREFIX}/instrument"),
    ("GET", f"{PREFIX}/instrument/active"), ("GET", f"{PREFIX}/wallet/assets"),
    ("GET", PREFIX), ("GET", f"{PREFIX}/"), ("GET", f"{PREFIX}/trade")})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(exc: SimError) -> web.Response:
    return json_response(errors.rest_error_body(exc.message, exc.name), exc.status)


def _endpoint(request: web.Request) -> str:
    resource = request.match_info.route.resource
    path = resource.canonical if resource is not None else "(unknown route)"
    return f"{request.method} {path}"


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith(PREFIX + "/") and request.path != PREFIX:
        return await handler(request)
    server = request.app[SERVER_KEY]
    endpoint = _endpoint(request)
    server.requests[endpoint] += 1
    try:
        response = await _api(server, request, handler)
    except SimError as exc:
        response = error_response(exc)
    except web.HTTPException as exc:
        text = errors.NOT_FOUND if exc.status == 404 else exc.reason
        response = json_response(errors.rest_error_body(text), exc.status)
    except (asyncio.CancelledError, ConnectionError):
        raise
    except Exception:
        log.exception("unexpected error serving %s", endpoint)
        response = json_response(errors.rest_error_body("Internal error", errors.NAME_GENERIC), 500)
    server.statuses[f"{endpoint} {response.status}"] += 1
    if server.active_fault("dns_failure") is not None:
        response.headers["x-sim-dns-failure"] = "1"
    return response


async def _api(server: SimServer, request: web.Request, handler: Handler) -> web.StreamResponse:
    edge_response = edge.edge_fault(server)
    if edge_response is not None:
        return edge_response
    delay_s = edge.latency_s(server)
    if delay_s > 0:
        await asyncio.sleep(delay_s)
    key = request.headers.get("api-key")
    body: bytes | None = None
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        pass  # answered after the rate limiter, with its headers
    verified = (server.verified_key(request.headers, request.method, request.raw_path, body)
                if key and body is not None else None)
    identity = verified if verified else f"ip:{request.remote}"
    order_route = (request.method not in ("GET", "HEAD")
                   and request.path.startswith(f"{PREFIX}/order"))
    decision = server.rest_limiter.check(identity, authenticated=verified is not None,
                                         order_route=order_route,
                                         now_s=server.clock.monotonic_s(),
                                         wall_s=server.clock.wall_s())
    headers = dict(decision.headers)
    forced = server.active_fault("rate_limit_429")
    if forced is not None and forced.roll():
        server.fault_hits["rate_limit_429"] += 1
        retry_s = max(0, round(float(forced.params["retry_after_s"])))
        headers["x-ratelimit-remaining"] = "0"
        return _rate_limited(headers, retry_s)
    if not decision.allowed:
        return _rate_limited(headers, decision.retry_after_s)
    try:
        response = await _checked(server, request, handler, key, body)
    except SimError as exc:
        response = error_response(exc)
    except web.HTTPException as exc:  # unknown route or method: still a rate-limited response
        text = errors.NOT_FOUND if exc.status == 404 else exc.reason
        response = json_response(errors.rest_error_body(text), exc.status)
    response.headers.update(headers)
    return response


def _rate_limited(headers: dict[str, str], retry_s: int) -> web.Response:
    response = json_response(errors.rest_error_body(errors.rate_limit_text(max(retry_s, 1)),
                                            errors.NAME_RATE_LIMIT), 429)
    response.headers.update(headers)
    response.headers["Retry-After"] = str(retry_s)
    return response


async def _checked(server: SimServer, request: web.Request, handler: Handler,
                   key: str | None, body: bytes | None) -> web.StreamResponse:
    if body is None:
        raise SimError(413, f"Request entity too large: the limit is "
                            f"{server.config.max_body_bytes} bytes", errors.NAME_HTTP)
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else ""
    method = "GET" if request.method == "HEAD" else request.method
    private = (method, canonical) not in PUBLIC_ROUTES
    if (private and canonical.startswith(PREFIX)) or key:
        problem = server.check_rest_auth(request.headers, request.method, request.raw_path, body)
        if problem is not None:
            raise SimError(problem[0], problem[1], errors.NAME_HTTP)
    request[PARAMS_KEY] = params.decode(request.query, body, request.content_type)
    return await handler(request)


def add_routes(app: web.Application) -> None:
    from venueguard.sim.bitmex import routes, routes_account

    r = app.router
    r.add_post(f"{PREFIX}/order", routes.post_order)
    r.add_put(f"{PREFIX}/order", routes.put_order)
    r.add_delete(f"{PREFIX}/order", routes.delete_order)
    r.add_get(f"{PREFIX}/order", routes.get_order)
    r.add_delete(f"{PREFIX}/order/all", routes.delete_order_all)
    r.add_post(f"{PREFIX}/order/cancelAllAfter", routes.cancel_all_after)
    r.add_get(f"{PREFIX}/position", routes.get_position)
    r.add_get(f"{PREFIX}/execution/tradeHistory", routes.trade_history)
    r.add_get(f"{PREFIX}/orderBook/L2", routes.order_book)
    r.add_get(f"{PREFIX}/instrument", routes.instrument)
    r.add_get(f"{PREFIX}/instrument/active", routes.instrument_active)
    r.add_get(f"{PREFIX}/wallet/assets", routes.wallet_assets)
    routes_account.add_routes(app, PREFIX)
