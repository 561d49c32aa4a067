"""The documented BitMEX signature test vectors (PROTOCOL.md section 2.1) verify."""

from __future__ import annotations

import pytest

from venueguard.venues.bitmex.signing import (
    TEST_API_KEY,
    TEST_API_SECRET,
    auth_headers,
    sign,
    sign_ws,
    verify,
)

ORDER_BODY = ('{"symbol":"XBTM15","price":219.0,"clOrdID":"mm_bitmex_1a/oemUeQ4CAJZgP3fjHsA",'
              '"orderQty":98}')

VECTORS = [
    ("GET", "/api/v1/instrument", 1518064236, "",
     "c7682d435d0cfe87c16098df34ef2eb5a549d4c5a3c2b1f0f77b8af73423bf00"),
    ("GET", "/api/v1/instrument?filter=%7B%22symbol%22%3A+%22XBTM15%22%7D", 1518064237, "",
     "e2f422547eecb5b3cb29ade2127e21b858b235b386bfa45e1c1756eb3383919f"),
    ("POST", "/api/v1/order", 1518064238, ORDER_BODY,
     "1749cd2ccae4aa49048ae09f0b95110cee706e0944e6a14ad0b3a8cb45bd336b"),
    ("GET", "/realtime", 1518064236, "",
     "6d459dc02866d35a2b965edeecc68063d488e296b77982235fc6eca24b934945"),
]


def test_documented_pair() -> None:
    assert TEST_API_KEY == "LAqUlngMIQkIUjXMUreyu3qn"
    assert TEST_API_SECRET == "chNOOS4KvNXR_Xq4k4c9qsfoKWvnDecLATCRlcBwyKDYnWgO"


@pytest.mark.parametrize(("verb", "path", "expires", "body", "expected"), VECTORS)
def test_vectors(verb: str, path: str, expires: int, body: str, expected: str) -> None:
    assert sign(TEST_API_SECRET, verb, path, expires, body) == expected
    assert sign(TEST_API_SECRET, verb.lower(), path, expires, body.encode()) == expected
    assert verify(TEST_API_SECRET, verb, path, expires, body, expected)
    assert verify(TEST_API_SECRET, verb, path, expires, body, expected.upper())
    # any change to what is signed breaks the signature
    assert not verify(TEST_API_SECRET, verb, path, expires + 1, body, expected)
    assert not verify(TEST_API_SECRET, verb, path + "x", expires, body, expected)
    assert not verify(TEST_API_SECRET, verb, path, expires, body + " ", expected)
    assert not verify(TEST_API_SECRET[:-1] + "X", verb, path, expires, body, expected)


def test_websocket_form_and_headers() -> None:
    assert sign_ws(TEST_API_SECRET, 1518064236) == VECTORS[3][4]
    headers = auth_headers(TEST_API_KEY, TEST_API_SECRET, "POST", "/api/v1/order", 1518064238,
                           ORDER_BODY)
    assert headers == {"api-key": TEST_API_KEY, "api-expires": "1518064238",
                       "api-signature": VECTORS[2][4]}
