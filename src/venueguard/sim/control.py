"""The control API under ``/_sim`` (JSON over HTTP), a public contract:

- ``POST /_sim/faults`` ``{"kind": K, ...params, "duration_s": S?, "new_connections": B?}``
  -> ``{"id": ID, "kind": K, "hit_connections": N?}``; unknown kinds or bad parameters -> 400
  ``{"error": "..."}`` naming the problem;
- ``DELETE /_sim/faults`` clears every fault -> ``{"cleared": N}``;
- ``GET /_sim/faults`` -> ``{"faults": [...], "kinds": {kind: {scope, params, summary}},
  "scenario": NAME | null, "seed": N}`` (the scenario this simulator runs, null for none);
- ``GET /_sim/truth`` -> orders, executions, positions, request counters per endpoint, response
  counters per endpoint and status, POST attempts per clOrdID that reached the engine;
- ``GET /_sim/resolve?host=NAME`` -> the resolver seam used to deliver ``dns_failure``
  (see :mod:`venueguard.sim.faults`).
"""

from __future__ import annotations

import orjson
from aiohttp import web

from venueguard.sim.faults import KINDS, FaultError, parse_fault
from venueguard.sim.rest import SERVER_KEY, json_response


def _error(message: str, status: int = 400) -> web.Response:
    return json_response({"error": message}, status)


async def post_fault(request: web.Request) -> web.Response:
    server = request.app[SERVER_KEY]
    body = await request.read()
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return _error(f"body is not valid JSON: {exc.msg} at position {exc.pos}")
    try:
        fault_request = parse_fault(raw)
    except FaultError as exc:
        return _error(str(exc))
    fault = server.add_fault(fault_request)
    out: dict[str, object] = {"id": fault.id, "kind": fault.kind}
    return json_response(out)


async def delete_faults(request: web.Request) -> web.Response:
    return json_response({"cleared": request.app[SERVER_KEY].clear_faults()})


async def get_faults(request: web.Request) -> web.Response:
    server = request.app[SERVER_KEY]
    now_s = server.clock.monotonic_s()
    server.faults.expire(now_s)
    kinds = {name: {"scope": spec.scope, "summary": spec.summary,
                    "params": {ps.name: ps.default for ps in spec.params}}
             for name, spec in KINDS.items()}
    runner = server.scenario_runner
    return json_response({"faults": server.faults.listing(now_s), "kinds": kinds,
                          "scenario": runner.scenario.name if runner is not None else None,
                          "seed": server.config.seed})


async def get_truth(request: web.Request) -> web.Response:
    server = request.app[SERVER_KEY]
    server.advance_engine()
    return json_response(server.truth())


async def resolve(request: web.Request) -> web.Response:
    server = request.app[SERVER_KEY]
    host = request.query.get("host", "")
    server.requests["GET /_sim/resolve"] += 1
    if server.active_fault("dns_failure") is not None:
        server.fault_hits["dns_failure"] += 1
        return json_response({"host": host, "error": "NXDOMAIN"})
    return json_response({"host": host, "addresses": [server.config.host], "port": server.port})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/_sim/faults", post_fault)
    r.add_delete("/_sim/faults", delete_faults)
    r.add_get("/_sim/faults", get_faults)
    r.add_get("/_sim/truth", get_truth)
    r.add_get("/_sim/resolve", resolve)
