"""What every venue's market-data pipeline keeps the same way: its counters, where it reports
(:class:`MdSink`), the queue of control frames the session handles, and how a refusal and a
book gap are reported.

:class:`~venueguard.io.md_state.MdState` (BitMEX) and
:class:`~venueguard.io.binance_md.BinanceMdState` (Binance USDⓈ-M) build on
:class:`MdStateBase`; each adds its own decoding, checks and books, and each call of the
session (:class:`~venueguard.io.md_pipeline.MdPipeline`) means the same on both.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from venueguard.core.liveness import Liveness
from venueguard.io.md_events import BookGap, DataRejected, MdEvent

__all__ = ["MdCounters", "MdSink", "MdStateBase"]


@dataclass(slots=True)
class MdCounters:
    frames: int = 0
    malformed: int = 0
    rejected: int = 0
    gaps: int = 0
    resyncs: int = 0


class MdSink:
    """Where the pipeline reports: consumer events, log lines and metrics (all optional)."""

    def __init__(self, push: Callable[[MdEvent], None] | None = None,
                 log: Callable[..., None] | None = None,
                 on_rejected: Callable[[str], None] | None = None) -> None:
        self.push = push  # None while nobody consumes events: nothing is built for them
        self.log = log
        self.on_rejected = on_rejected


class MdStateBase:
    """Counters, sink, control queue and per-connection flags of one session's pipeline."""

    liveness: Liveness  # the checks of the current connection (each venue makes its own)

    def __init__(self, sink: MdSink | None) -> None:
        self.sink = sink or MdSink()
        self.counters = MdCounters()
        self.last_data_now: float | None = None
        self.resync_reason: str | None = None
        self.table_counts: dict[str, int] = {}  # accepted data messages per table, cumulative
        self._control: deque[Any] = deque(maxlen=1000)

    def _new_connection(self) -> None:
        """A new connection starts: no data yet, no resync asked, no control frame pending."""
        self.resync_reason = None
        self.last_data_now = None
        self._control.clear()

    @property
    def has_control(self) -> bool:
        return bool(self._control)

    def take_control(self) -> list[Any]:
        """Non-data frames received since the last call (acks, errors, welcome, info)."""
        out = list(self._control)
        self._control.clear()
        return out

    def on_frame(self, payload: bytes, now: float, wall_ms: int) -> bool:
        """Feed one text frame; True when the session must look (control frame, resync)."""
        raise NotImplementedError

    def on_frames(self, payloads: Sequence[bytes], now: float, wall_ms: int) -> bool:
        """Feed the text frames of one transport read, in order (they arrived together: one
        ``now`` and ``wall_ms``); True when the session must look. Each frame is fed as
        :meth:`on_frame` feeds it; a venue with a faster lane for whole reads replaces this."""
        look = False
        on_frame = self.on_frame
        for payload in payloads:
            if on_frame(payload, now, wall_ms):
                look = True
        return look

    def _on_malformed(self, now: float) -> None:
        """A frame that is no message: counted; the connection still delivers."""
        self.counters.malformed += 1
        self.liveness.on_inbound(now)

    def _count_refusal(self, reason: str, table: str, symbol: str | None, now: float) -> None:
        """One refused message: counted, logged (``data.rejected``), metered and pushed."""
        self.counters.rejected += 1
        sink = self.sink
        if sink.on_rejected is not None:
            sink.on_rejected(reason)
        if sink.log is not None:
            sink.log("data.rejected", reason=reason, table=table, symbol=symbol)
        if sink.push is not None:
            sink.push(DataRejected(now, reason, table, symbol))

    def _report_gap(self, table: str, symbol: str, reason: str, now: float) -> None:
        """A book went out of sync: counted, logged (``book.gap``), pushed; the first gap of
        a connection names the resync the session makes."""
        self.counters.gaps += 1
        if self.resync_reason is None:
            self.resync_reason = f"{table}:{symbol} {reason}"
        sink = self.sink
        if sink.log is not None:
            sink.log("book.gap", table=table, symbol=symbol, reason=reason)
        if sink.push is not None:
            sink.push(BookGap(now, table, symbol, reason))
