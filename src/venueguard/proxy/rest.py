"""REST forwarding and the REST faults, in the order the real path meets them.

For one request (anything but the proxy's own routes):
1. edge faults (403, Cloudflare 522/1010/1006) and injected latency, as in front of the venue;
2. ``rate_limit_429``; with a shared account (``--redis``), its limits and bans (refused here,
   never sent);
3. ``overload_503`` on the dialect's order entries: not forwarded (Binance: forwarded or not, a
   seeded coin, since its 503 means "execution status unknown");
4. the request is forwarded as it came: method, path and query bytes, body and headers, except
   the hop's own headers (``Host`` names the upstream, ``Content-Length`` is recomputed, the
   hop-by-hop headers of RFC 9110 section 7.6.1 and ``Expect`` are dropped), over the keep-alive
   client of :mod:`venueguard.proxy.upstream`;
5. on an accepted order write (2xx), ``timeout_after_accept`` holds the answer (or gives the
   dialect's timeout answer) and ``bad_gateway_after_accept`` replaces it with a 502 page.

The answer goes back with the upstream's status, headers and body bytes (compressed bodies stay
compressed); a ``Location`` naming the upstream is rewritten to the proxy. When the upstream cannot
be reached the answer is 502 (504 when it does not answer in time). Nothing here logs a header, a
query string or a body: signatures and keys travel in them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING

from aiohttp import web
from multidict import CIMultiDict

from venueguard.proxy.upstream import UpstreamClosed, UpstreamUnreachable
from venueguard.sim.control import fires, hold_unanswered

if TYPE_CHECKING:
    from venueguard.proxy.server import ProxyServer

__all__ = ["HOP_HEADERS", "forward", "origin_form", "request_headers"]

#: Headers that belong to one hop (RFC 9110 section 7.6.1) or that aiohttp sets for the next.
HOP_HEADERS = frozenset({
    "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
    "te", "trailer", "transfer-encoding", "upgrade", "host", "content-length", "expect"})


def _connection_tokens(value: str) -> frozenset[str]:
    return frozenset(t.strip().lower() for t in value.split(",")) if value else frozenset()


def origin_form(request: web.Request) -> str:
    """The request target as path and query bytes: as received, or taken out of an absolute URL
    (``GET http://host/path`` as sent to a forward proxy)."""
    raw = request.raw_path
    return raw if raw.startswith("/") else request.rel_url.raw_path_qs


def request_headers(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """The client's headers to send upstream: all but the hop's own (and those its
    ``Connection`` header names)."""
    named = _connection_tokens(headers.get("Connection", ""))
    return [(name, value) for name, value in headers.items()
            if name.lower() not in HOP_HEADERS and name.lower() not in named]


def _answer_headers(proxy: ProxyServer, request: web.Request,
                    headers: list[tuple[str, str]]) -> CIMultiDict[str]:
    named = frozenset().union(*(_connection_tokens(v) for n, v in headers
                                if n.lower() == "connection"))
    out: CIMultiDict[str] = CIMultiDict()
    origin = proxy.upstream_origin
    for name, value in headers:
        low = name.lower()
        if low in HOP_HEADERS or low in named:
            continue
        if low == "location" and value.startswith(origin):
            value = f"{request.scheme}://{request.host}{value[len(origin):]}"
        out.add(name, value)
    return out


async def forward(request: web.Request) -> web.StreamResponse:
    """The handler for every path the proxy does not serve itself."""
    from venueguard.proxy.server import PROXY_KEY

    proxy = request.app[PROXY_KEY]
    start_s = proxy.clock.monotonic_s()
    answer, own = await _answer(proxy, request)
    if not own and isinstance(answer, web.Response):
        proxy.guard.answered(request, answer, proxy.clock.monotonic_s() - start_s)
    return answer


async def _answer(proxy: ProxyServer, request: web.Request) -> tuple[web.StreamResponse, bool]:
    """The client's answer and whether it is the proxy's own (not the venue's, nor a fault's)."""
    dialect = proxy.dialect
    method, path = request.method, request.path
    faulty = len(proxy.faults) > 0  # no fault posted: skip every fault lookup
    if faulty:
        proxy.faults.expire(proxy.clock.monotonic_s())
        faulty = len(proxy.faults) > 0
    if faulty:
        page = dialect.edge(proxy)
        if page is not None:
            return page, False
        delay_s = proxy.latency_s()
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        fault = proxy.active_fault("rate_limit_429")
        if fault is not None and fault.roll():
            proxy.fault_hits["rate_limit_429"] += 1
            return dialect.rate_limited(max(0, round(float(fault.params["retry_after_s"])))), False
    try:
        body = await request.read() if request.body_exists else b""
    except web.HTTPRequestEntityTooLarge:
        return web.Response(status=413, text="request body too large for the proxy\n"), True
    if proxy.guard.shared:
        refused = await proxy.guard.admit(request, dialect.writes(method, path))
        if refused is not None:
            return refused, True
    fault = (proxy.active_fault("overload_503")
             if faulty and dialect.sheds(method, path) else None)
    if fault is not None and fault.roll():
        proxy.fault_hits["overload_503"] += 1
        if dialect.overload_may_forward and fault.rng.random() < 0.5:
            await _exchange(proxy, request, body)  # reached the venue; the answer is lost
        return dialect.overloaded(path, int(proxy.clock.wall_s() * 1000)), False
    answer, own = await _exchange(proxy, request, body)
    if own:
        return answer, True
    if faulty and 200 <= answer.status < 300 and dialect.writes(method, path):
        return await _after_accept(proxy, request, answer), False
    return answer, False


async def _exchange(proxy: ProxyServer, request: web.Request,
                    body: bytes) -> tuple[web.Response, bool]:
    """Send the request upstream; the client's answer, and True when it is the gateway's own
    (the upstream was not reached or did not answer, already reported to the guard)."""
    method = request.method
    try:
        got = await proxy.upstream.request(method, proxy.upstream_prefix + origin_form(request),
                                           request_headers(request.headers), body)
    except TimeoutError as exc:
        proxy.guard.failed(request, exc)
        return web.Response(status=504, text="upstream did not answer in time\n"), True
    except UpstreamUnreachable as exc:
        proxy.guard.failed(request, exc)
        return web.Response(status=502, text="upstream unreachable\n"), True
    except UpstreamClosed as exc:
        proxy.guard.failed(request, exc)
        return web.Response(status=502, text="upstream connection failed\n"), True
    except ValueError:  # a request that cannot be written (e.g. an unencodable header)
        return web.Response(status=400, text="request cannot be forwarded\n"), True
    headers = _answer_headers(proxy, request, got.headers)
    return web.Response(status=got.status, reason=got.reason or None, body=got.body,
                        headers=headers), False


async def _after_accept(proxy: ProxyServer, request: web.Request,
                        answer: web.Response) -> web.StreamResponse:
    dialect = proxy.dialect
    fault = fires(proxy, "timeout_after_accept")
    if fault is not None:
        replaced = dialect.timeout_answer()
        return replaced if replaced is not None else await hold_unanswered(request, fault)
    if fires(proxy, "bad_gateway_after_accept") is not None:
        return dialect.bad_gateway()
    return answer
