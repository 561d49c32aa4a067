"""The websocket faults that hit one connection, written once for every dialect and the proxy.

A hit connection stays broken until it closes:
``ws_stall`` data stops (control messages still pass), ``ws_half_open`` everything stops,
``ws_drop`` the connection is cut without a close frame, ``ws_reorder`` / ``ws_duplicate`` a
data message is held back / sent twice, ``ws_stale_timestamps`` / ``ws_future_timestamps`` the
dialect's timestamps move by :attr:`WsFaultState.shift_ms`, ``ws_gap`` the next ``count``
messages a client can see missing (BitMEX public deltas, Binance depth updates) are not sent.

:class:`WsFaultState` does no I/O: it is told the faults (:meth:`WsFaultState.hit`, which returns
what the owner must do to its queue or its socket) and asked about each data message
(:meth:`WsFaultState.take_gap`, then :meth:`WsFaultState.release`, which returns what to send now,
in order). Its randomness is the ``random.Random`` it is given, seeded per connection, so the
same seed holds back and repeats the same messages.
"""

from __future__ import annotations

import enum
import random

from venueguard.sim.faults import Fault

__all__ = ["Effect", "WsFaultState"]


class Effect(enum.Enum):
    """What the connection's owner does when a fault hits it."""

    NONE = "none"
    CLEAR = "clear"  # forget what is queued: the stream stops now, not after its backlog
    CUT = "cut"  # abort the TCP connection without a close frame


_EFFECTS = {"ws_stall": Effect.CLEAR, "ws_half_open": Effect.CLEAR, "ws_drop": Effect.CUT}


class WsFaultState:
    """The faults of one websocket connection and the messages they hold back."""

    __slots__ = ("_held", "_rng", "duplicate_p", "gap_left", "half_open", "kinds",
                 "reorder_p", "shift_ms", "stalled")

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        # every fault that hit, in order; empty: the publisher's fast path serves the connection
        self.kinds: list[str] = []
        self.stalled = False
        self.half_open = False
        self.gap_left = 0
        self.reorder_p = 0.0
        self.duplicate_p = 0.0
        self.shift_ms = 0
        self._held: bytes | None = None

    def hit(self, fault: Fault) -> Effect:
        """Record a websocket fault; returns what the owner must do now."""
        kind, p = fault.kind, fault.params
        self.kinds.append(kind)
        if kind == "ws_stall":
            self.stalled = True
        elif kind == "ws_half_open":
            self.half_open = True
        elif kind == "ws_reorder":
            self.reorder_p = max(self.reorder_p, float(p["probability"]))
        elif kind == "ws_duplicate":
            self.duplicate_p = max(self.duplicate_p, float(p["probability"]))
        elif kind == "ws_stale_timestamps":
            self.shift_ms -= int(float(p["delay_s"]) * 1000)
        elif kind == "ws_future_timestamps":
            self.shift_ms += int(float(p["ahead_s"]) * 1000)
        elif kind == "ws_gap":
            self.gap_left += int(p["count"])
        return _EFFECTS.get(kind, Effect.NONE)

    def take_gap(self) -> bool:
        """One message a gap may take: True when it is dropped (the gap is one shorter)."""
        if self.gap_left > 0:
            self.gap_left -= 1
            return True
        return False

    def release(self, data: bytes, shuffle: bool) -> tuple[bytes, ...]:
        """What to send now for the data message ``data``, in order: nothing (held back), it,
        it twice, or it followed by the message held back before it. Only a message with
        ``shuffle`` (an update, not a snapshot) is held back or repeated."""
        if shuffle and self.reorder_p and self._held is None and \
                self._rng.random() < self.reorder_p:
            self._held = data
            return ()
        twice = shuffle and self.duplicate_p and self._rng.random() < self.duplicate_p
        held = self._held
        if held is None or held is data:
            return (data, data) if twice else (data,)
        self._held = None
        return (data, data, held) if twice else (data, held)
