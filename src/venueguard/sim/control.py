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

The three ``/_sim/faults`` routes talk to a :class:`FaultHost` (the simulator, or the proxy of
:mod:`venueguard.proxy`, which serves them on its own port); ``GET`` lists the kinds that host
supports and ``POST`` refuses any other kind with a 400.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

import orjson
from aiohttp import web

from venueguard.sim.clock import SimClock
from venueguard.sim.faults import Fault, FaultBook, FaultError, FaultRequest, KindSpec, parse_fault
from venueguard.sim.httpserver import json_response
from venueguard.sim.scenario import ScenarioRunner

if TYPE_CHECKING:
    from venueguard.sim.server import SimServer


class FaultHost(Protocol):
    """What the fault routes need from the server that applies the faults."""

    @property
    def clock(self) -> SimClock: ...

    @property
    def faults(self) -> FaultBook: ...

    @property
    def fault_kinds(self) -> Mapping[str, KindSpec]:
        """The kinds this host can apply (``GET`` lists them, ``POST`` refuses the others)."""
        ...

    def add_fault(self, request: FaultRequest) -> Fault:
        """Apply ``request``; may raise :class:`FaultError` for a parameter it cannot honour."""
        ...

    def clear_faults(self) -> int: ...

    @property
    def scenario_runner(self) -> ScenarioRunner | None:
        """The scenario this host plays (``GET`` names it), or None."""
        ...

    @property
    def config(self) -> SeededConfig: ...


class FiringHost(Protocol):
    """A server that applies faults to the requests it answers (the simulator, the proxy)."""

    fault_hits: Counter[str]

    def active_fault(self, kind: str) -> Fault | None: ...


def fires(host: FiringHost, kind: str) -> Fault | None:
    """The active fault of ``kind`` when it fires for this request (and is counted), else None."""
    fault = host.active_fault(kind)
    if fault is None or not fault.roll():
        return None
    host.fault_hits[kind] += 1
    return fault


async def hold_unanswered(request: web.Request, fault: Fault) -> web.StreamResponse:
    """``timeout_after_accept``: hold the answer until the client gives up (the handler is
    cancelled when it disconnects), then drop the connection without one."""
    await asyncio.sleep(float(fault.params["hold_s"]))
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=504)  # never delivered: the transport is gone


class SeededConfig(Protocol):
    """The part of a host's configuration that ``GET /_sim/faults`` reports."""

    @property
    def seed(self) -> int: ...


FAULT_HOST_KEY: web.AppKey[FaultHost] = web.AppKey("venueguard_fault_host")
#: the simulator itself, for the dialects' routes and the whole-venue routes (truth, resolve)
SERVER_KEY: web.AppKey[SimServer] = web.AppKey("venueguard_sim_server")


def _error(message: str, status: int = 400) -> web.Response:
    return json_response({"error": message}, status)


async def post_fault(request: web.Request) -> web.Response:
    server = request.app[FAULT_HOST_KEY]
    body = await request.read()
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return _error(f"body is not valid JSON: {exc.msg} at position {exc.pos}")
    try:
        fault_request = parse_fault(raw)
        if fault_request.kind not in server.fault_kinds:
            raise FaultError(f"fault kind {fault_request.kind!r} cannot be applied here; "
                             f"supported kinds: {', '.join(sorted(server.fault_kinds))}")
        fault = server.add_fault(fault_request)
    except FaultError as exc:
        return _error(str(exc))
    out: dict[str, object] = {"id": fault.id, "kind": fault.kind}
    return json_response(out)


async def delete_faults(request: web.Request) -> web.Response:
    return json_response({"cleared": request.app[FAULT_HOST_KEY].clear_faults()})


async def get_faults(request: web.Request) -> web.Response:
    server = request.app[FAULT_HOST_KEY]
    now_s = server.clock.monotonic_s()
    server.faults.expire(now_s)
    kinds = {name: {"scope": spec.scope, "summary": spec.summary,
                    "params": {ps.name: ps.default for ps in spec.params}}
             for name, spec in server.fault_kinds.items()}
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


def add_fault_routes(app: web.Application) -> None:
    """``POST/GET/DELETE /_sim/faults`` on ``app``, whose ``FAULT_HOST_KEY`` must be set."""
    r = app.router
    r.add_post("/_sim/faults", post_fault)
    r.add_delete("/_sim/faults", delete_faults)
    r.add_get("/_sim/faults", get_faults)


def add_routes(app: web.Application) -> None:
    add_fault_routes(app)
    r = app.router
    r.add_get("/_sim/truth", get_truth)
    r.add_get("/_sim/resolve", resolve)
