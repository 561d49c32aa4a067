"""The typed reading of the usual combined-stream depth diff gives exactly what the field-by-field
reading gives: the same :class:`DepthUpdate` (levels as the same floats), or the same refusal.

A ``bytes`` frame may take the typed reading; the same frame as ``str`` never does, so each
generated frame is decoded both ways and the outcomes compared. Frames mix the venue's usual
shape with what the typed reading must leave alone: exponents, signs, ``nan``, leading zeros,
spaces, escapes, other digits, over-long decimals, ids of the wrong type or range, an empty
symbol, a missing side.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from venueguard.venues.binance.messages import DepthUpdate, MessageError, _usual_depth, decode

DECIMALS = st.one_of(  # as the venue writes them
    st.integers(0, 10**6).map(str),
    st.builds(lambda i, f: f"{i}.{f}", st.integers(0, 10**6), st.text("0123456789", min_size=1,
                                                                      max_size=8)))
ODD_DECIMALS = st.sampled_from([
    "1e5", "-1", "-0", "nan", "inf", "Infinity", "00012.50", "01", "1.", ".5", " 1", "1 ",
    "\u0661\u0662", "1" * 21, "1." + "1" * 21, "9" * 20 + "." + "9" * 20, "", "+1", "1_0",
    "0x1", "1E5"])
ODD_IDS = st.sampled_from([2**63 - 1, 2**63, -1, 1.0, True, "7", None, 10**30])
ODD_LEVELS = st.sampled_from([["1"], ["1", "2", "3"], [1.5, 2.0], "1,2", None])
LEVELS = st.lists(st.tuples(DECIMALS, DECIMALS).map(list), max_size=4)
EVENT = st.fixed_dictionaries({
    "e": st.just("depthUpdate"), "E": st.integers(0, 10**13), "T": st.integers(0, 10**13),
    "s": st.sampled_from(["BTCUSDT", "ETHUSDT"]), "U": st.integers(0, 10**12),
    "u": st.integers(0, 10**12), "pu": st.integers(0, 10**12), "b": LEVELS, "a": LEVELS})
ODDITY = st.one_of(
    st.tuples(st.just("level"), st.sampled_from(["b", "a"]), ODD_DECIMALS, st.booleans()),
    st.tuples(st.just("shape"), st.sampled_from(["b", "a"]), ODD_LEVELS),
    st.tuples(st.just("id"), st.sampled_from(["E", "T", "U", "u", "pu"]), ODD_IDS),
    st.tuples(st.just("field"), st.sampled_from(["e", "s", "b", "a", "stream", "data"]),
              st.sampled_from(["bookTicker", "", None, 7, [], {}])),
    st.tuples(st.just("drop"), st.sampled_from(["e", "s", "b", "a", "pu"])),
    st.tuples(st.just("format"), st.sampled_from(["spaces", "escape", "first"])))


def outcome(frame: bytes | str) -> DepthUpdate | tuple[str, str | None] | object:
    try:
        return decode(frame)
    except MessageError as exc:
        return (exc.code, exc.stream)


@settings(max_examples=1500, deadline=None)
@given(EVENT, st.lists(ODDITY, max_size=2))
def test_the_typed_reading_agrees_with_the_field_by_field_one(
        event: dict[str, Any], oddities: list[tuple[Any, ...]]) -> None:
    frame: dict[str, Any] = {"stream": event["s"].lower() + "@depth@100ms", "data": event}
    separators, ascii_only = (",", ":"), False
    for oddity in oddities:
        kind = oddity[0]
        if kind in ("level", "shape"):
            side = oddity[1]
            levels = event.get(side)
            odd = (oddity[2] if kind == "shape" else
                   ["1.5", oddity[2]] if oddity[3] else [oddity[2], "1.5"])
            event[side] = [*(levels if isinstance(levels, list) else []), odd]
        elif kind == "id":
            event[oddity[1]] = oddity[2]
        elif kind == "field":
            (frame if oddity[1] in ("stream", "data") else event)[oddity[1]] = oddity[2]
        elif kind == "drop":
            event.pop(oddity[1], None)
        elif oddity[1] == "spaces":
            separators = (", ", ": ")
        elif oddity[1] == "escape":
            ascii_only = True
            event["s"] = "BTC\u00e9"
        else:
            frame = {"data": frame["data"], "stream": frame["stream"]}
    text = json.dumps(frame, separators=separators, ensure_ascii=ascii_only)
    assert outcome(text.encode()) == outcome(text)
    if not oddities:  # the usual diff does take the typed reading
        assert _usual_depth(text.encode()) is not None


def test_the_usual_diff_is_read_with_its_levels_as_floats() -> None:
    frame = (b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":5,"T":4,'
             b'"s":"BTCUSDT","U":10,"u":12,"pu":9,"b":[["100.10","2.000"],["99.9","0"]],'
             b'"a":[]}}')
    assert decode(frame) == DepthUpdate("BTCUSDT", 5, 4, 10, 12, 9, [(100.1, 2.0), (99.9, 0.0)],
                                        [], "btcusdt@depth@100ms")
    with_exponent = frame.replace(b'"2.000"', b'"2e0"')
    try:
        decode(with_exponent)
    except MessageError as exc:
        assert exc.code == "invalid_size"
    else:
        raise AssertionError("an exponent is not a Binance decimal")
