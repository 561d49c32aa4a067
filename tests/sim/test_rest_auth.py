"""BitMEX request signing as the simulator checks it (PROTOCOL.md 2.1 vectors included)."""

from __future__ import annotations

import time

import pytest
from multidict import CIMultiDict

from venueguard.sim.server import SimConfig, SimServer
from venueguard.sim.testing import SimHandle
from venueguard.venues.bitmex import signing

VECTORS = [
    ("GET", "/api/v1/instrument", 1518064236, b"",
     "c7682d435d0cfe87c16098df34ef2eb5a549d4c5a3c2b1f0f77b8af73423bf00"),
    ("GET", "/api/v1/instrument?filter=%7B%22symbol%22%3A+%22XBTM15%22%7D", 1518064237, b"",
     "e2f422547eecb5b3cb29ade2127e21b858b235b386bfa45e1c1756eb3383919f"),
    ("POST", "/api/v1/order", 1518064238,
     b'{"symbol":"XBTM15","price":219.0,"clOrdID":"mm_bitmex_1a/oemUeQ4CAJZgP3fjHsA",'
     b'"orderQty":98}',
     "1749cd2ccae4aa49048ae09f0b95110cee706e0944e6a14ad0b3a8cb45bd336b"),
]


class _FrozenWall:
    """A wall clock stuck before the vectors' expiry times."""

    def __init__(self, now_s: float) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


@pytest.mark.parametrize(("verb", "path", "expires", "body", "signature"), VECTORS)
def test_documented_vectors_pass_the_server_check(verb: str, path: str, expires: int,
                                                  body: bytes, signature: str) -> None:
    from venueguard.sim.clock import SimClock

    server = SimServer(SimConfig(scenario=None),
                       clock=SimClock(wall=_FrozenWall(1518064200.0)))
    headers = CIMultiDict({"api-key": signing.TEST_API_KEY, "api-expires": str(expires),
                           "api-signature": signature})
    assert server.check_rest_auth(headers, verb, path, body) is None
    tampered = CIMultiDict(headers)
    tampered["api-signature"] = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    assert server.check_rest_auth(tampered, verb, path, body) == (401, "Signature not valid.")
    # the same request signed in the future has expired
    late = SimServer(SimConfig(scenario=None),
                     clock=SimClock(wall=_FrozenWall(expires + 10.0)))
    status, text = late.check_rest_auth(headers, verb, path, body) or (0, "")
    assert status == 400
    assert text == f"This request has expired - `expires` is in the past. Current time: " \
                   f"{expires + 10}"


def test_websocket_vector() -> None:
    from venueguard.sim.clock import SimClock

    server = SimServer(SimConfig(scenario=None), clock=SimClock(wall=_FrozenWall(1518064000.0)))
    good = "6d459dc02866d35a2b965edeecc68063d488e296b77982235fc6eca24b934945"
    assert server.check_ws_auth(signing.TEST_API_KEY, 1518064236, good) is None
    assert server.check_ws_auth("someone-else", 1518064236, good) == (401, "Invalid API Key.")


async def test_over_the_wire_auth_errors(sim: SimHandle) -> None:
    path = "/api/v1/position"
    url = sim.base_url + path
    expires = int(time.time()) + 30
    cases = [
        ({}, 401, "Missing API key."),
        ({"api-key": "unknown", "api-expires": str(expires), "api-signature": "00"}, 401,
         "Invalid API Key."),
        ({**sim.signed_headers("GET", path), "api-signature": "ab" * 32}, 401,
         "Signature not valid."),
        (sim.signed_headers("GET", path, expires=int(time.time()) - 5), 400,
         "This request has expired - `expires` is in the past. Current time: "),
        (sim.signed_headers("GET", "/api/v1/order"), 401, "Signature not valid."),  # other path
    ]
    for headers, status, text in cases:
        async with sim.session.get(url, headers=headers) as resp:
            body = await resp.json()
            assert resp.status == status, (headers, body)
            assert body["error"]["message"].startswith(text) and body["error"]["name"]
    async with sim.session.get(url, headers=sim.signed_headers("GET", path)) as resp:
        assert resp.status == 200
