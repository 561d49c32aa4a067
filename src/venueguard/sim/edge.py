"""Faults that happen in front of the venue: the CDN edge and the network.

The edge answers with HTML, never with BitMEX's JSON, and without ``x-ratelimit-*`` headers,
because the request never reached the venue:
- ``forbidden_403``: nginx-style ``403 Forbidden`` page;
- ``cloudflare_522``: HTTP 522 "Connection timed out" page;
- ``cloudflare_1010`` / ``cloudflare_1006``: HTTP 403 with ``error code: 1010`` (the client's
  signature is banned) / ``error code: 1006`` (the client's IP is banned).
``latency`` delays every API response by ``ms`` +- ``jitter_ms`` (seeded draw).
"""

from __future__ import annotations

from collections import Counter
from typing import Protocol

from aiohttp import web

from venueguard.sim.faults import Fault


class FaultSource(Protocol):
    """Where the edge reads its faults: the simulator, or the proxy (:mod:`venueguard.proxy`)."""

    @property
    def fault_hits(self) -> Counter[str]: ...

    def active_fault(self, kind: str) -> Fault | None: ...

FORBIDDEN_HTML = (
    "<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n"
    "<center><h1>403 Forbidden</h1></center>\r\n</body>\r\n</html>\r\n")


def _cloudflare_page(code: int, title: str, detail: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en-US\">\n<head>\n"
        f"<title>www.bitmex.com | {code}: {title}</title>\n</head>\n<body>\n"
        f"<div id=\"cf-error-details\">\n<h1><span>Error</span> <span>{code}</span></h1>\n"
        f"<h2>{title}</h2>\n<p>{detail}</p>\n"
        f"<p>error code: {code}</p>\n<p>Performance &amp; security by Cloudflare</p>\n"
        "</div>\n</body>\n</html>\n")


_EDGE: tuple[tuple[str, int, str], ...] = (
    ("cloudflare_1006", 403, _cloudflare_page(
        1006, "Access denied", "The owner of this website has banned your IP address.")),
    ("cloudflare_1010", 403, _cloudflare_page(
        1010, "Access denied", "The owner of this website has banned your access based on "
                               "your browser's signature.")),
    ("cloudflare_522", 522, _cloudflare_page(
        522, "Connection timed out", "The initial connection between Cloudflare's network and "
                                     "the origin web server timed out.")),
    ("forbidden_403", 403, FORBIDDEN_HTML),
)


def edge_fault(server: FaultSource) -> web.Response | None:
    """The edge's answer when an edge fault fires for this request, else None."""
    for kind, status, page in _EDGE:
        fault = server.active_fault(kind)
        if fault is not None and fault.roll():
            server.fault_hits[kind] += 1
            headers = {"server": "cloudflare"} if kind.startswith("cloudflare") else {}
            if kind.startswith("cloudflare"):
                headers["cf-ray"] = f"{fault.rng.getrandbits(64):016x}-AMS"
            return web.Response(status=status, text=page, content_type="text/html",
                                headers=headers)
    return None


def latency_s(server: FaultSource) -> float:
    """Seconds to delay this response (0 when no latency fault is active)."""
    fault = server.active_fault("latency")
    if fault is None:
        return 0.0
    server.fault_hits["latency"] += 1
    base_ms = float(fault.params["ms"])
    jitter_ms = float(fault.params["jitter_ms"])
    if jitter_ms > 0:
        base_ms += fault.rng.uniform(-jitter_ms, jitter_ms)
    return max(0.0, base_ms) / 1000.0
