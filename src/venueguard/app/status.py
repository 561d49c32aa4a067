"""A one-line live status for people who never open the dashboard, and progress for long work.

On a terminal the line is redrawn in place (carriage return, then erase to the end of the line);
elsewhere (a pipe, a log file) a plain line is printed every ``plain_every_s`` seconds, so logs
stay readable. Other output sharing the terminal goes through :class:`StatusAwareStream`, which
clears the status line before writing and redraws it after each complete line.

Usage::

    status = StatusLine(sys.stderr)
    events = EventLog(StatusAwareStream(sys.stdout, status), fmt="pretty")
    status.show(format_status(state, elapsed_s=12.0), now=time.monotonic())
    status.close()

    progress = Progress(sys.stderr, "report", total=5)
    progress.step("reading the journal")      # one call per step
    progress.done("wrote out/report.html")
"""

from __future__ import annotations

import io
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TextIO

_ERASE_EOL = "\x1b[K"


def _is_tty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class StatusLine:
    """Shows one status line: in place on a TTY, plain lines every ``plain_every_s`` otherwise."""

    def __init__(self, stream: TextIO, *, tty: bool | None = None, plain_every_s: float = 10.0,
                 width: int | None = None) -> None:
        self._stream = stream
        self.tty = _is_tty(stream) if tty is None else tty
        self.plain_every_s = plain_every_s
        self._width = width
        self._text = ""
        self._drawn = False
        self._last_plain: float | None = None
        self.write_errors = 0

    @property
    def text(self) -> str:
        return self._text

    @property
    def columns(self) -> int | None:
        """Columns a line may take without being cut: the terminal's width less one on a TTY,
        None elsewhere (a pipe or a log file takes any length)."""
        if not self.tty:
            return None
        return max(10, (self._width or shutil.get_terminal_size((120, 24)).columns) - 1)

    def show(self, text: str, now: float) -> None:
        """Set the status text; on a TTY redraw it, else print it if ``plain_every_s`` passed."""
        self._text = text.replace("\n", " ").replace("\r", " ")
        if self.tty:
            self._draw()
        elif self._last_plain is None or now - self._last_plain >= self.plain_every_s:
            self._last_plain = now
            self._write(self._text + "\n")

    def clear(self) -> None:
        """Erase the drawn line (TTY only) so other output starts at column 0."""
        if self.tty and self._drawn:
            self._write("\r" + _ERASE_EOL)
            self._drawn = False

    def redraw(self) -> None:
        if self.tty and self._text:
            self._draw()

    def close(self, final: str | None = None) -> None:
        """Leave the terminal clean; print ``final`` (or the last text, on a TTY) as a line."""
        if self.tty:
            self.clear()
            last = final if final is not None else self._text
            if last:
                self._write(last + "\n")
        elif final:
            self._write(final + "\n")

    def _draw(self) -> None:
        self._write("\r" + self._text[: self.columns or len(self._text)] + _ERASE_EOL)
        self._drawn = True

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError):
            self.write_errors += 1


class StatusAwareStream(io.TextIOBase):
    """A text stream that keeps a :class:`StatusLine` intact around what it writes."""

    def __init__(self, target: TextIO, status: StatusLine) -> None:
        super().__init__()
        self._target = target
        self._status = status

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return _is_tty(self._target)

    def write(self, text: str) -> int:
        self._status.clear()
        written = self._target.write(text)
        if text.endswith("\n"):
            self._target.flush()
            self._status.redraw()
        return written

    def flush(self) -> None:
        self._target.flush()


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _section(state: Mapping[str, object], key: str) -> Mapping[str, object]:
    value = state.get(key)
    return value if isinstance(value, Mapping) else {}


@dataclass(frozen=True, slots=True)
class StatusField:
    """One field of the status line: its full and its narrow form, and how long it stays when
    the terminal is narrow (rank 0 always; higher ranks are left out first)."""

    full: str
    narrow: str
    rank: int


def status_fields(state: Mapping[str, object], *, elapsed_s: float) -> list[StatusField]:
    """The fields of the status line in display order (README, "The status line")."""
    h, rem = divmod(int(max(0.0, elapsed_s)), 3600)
    m, s = divmod(rem, 60)
    market, live = _section(state, "market"), _section(state, "liveness")
    api = _section(state, "api")
    head = f"{h:02d}:{m:02d}:{s:02d} {market.get('symbol', '?')}"
    bid, ask = _num(market.get("best_bid")), _num(market.get("best_ask"))
    if bid is not None and ask is not None:  # 10 significant digits: 104123.5, not 104124
        head += f" {bid:.10g}/{ask:.10g}"
        fields = [StatusField(f"{head} spr {ask - bid:.10g}", head, 0)]
    else:
        fields = [StatusField(head + " no book", "", 0)]
    age = _num(live.get("data_age_s"))
    fresh = ("fresh" if live.get("fresh") else "STALE") + (f" {age:.1f}s" if age is not None
                                                           else "")
    venue, regime = state.get("venue_state", "?"), state.get("regime", "?")
    per_min = _num(api.get("http_503_per_min"))
    shown_503 = f"{per_min:g}" if per_min is not None else "-"
    p95 = _num(api.get("latency_p95"))
    shown_p95 = f"p95 {p95 * 1000:.0f}ms" if p95 is not None else "p95 -"
    reconnects = live.get("reconnects", 0)
    fields += [StatusField(fresh, fresh, 0),
               StatusField(f"venue {venue}", str(venue), 1),
               StatusField(f"regime {regime}", str(regime), 1),
               StatusField(f"503/min {shown_503}", f"503/m {shown_503}", 2),
               StatusField(shown_p95, shown_p95, 3),
               StatusField(f"reconn {reconnects}", f"rc {reconnects}", 4)]
    ratio = _num(_section(state, "snapshots").get("missing_ratio"))
    if ratio is not None:
        fields.append(StatusField(f"miss {ratio:.1%}", f"miss {ratio:.1%}", 6))
    signal = _section(state, "signal")
    if signal:
        arrows = {1: "up", -1: "down", 0: "flat"}
        direction = signal.get("direction")
        arrow = arrows.get(direction, "?") if isinstance(direction, int) else "?"
        fields.append(StatusField(f"signal {arrow}", f"sig {arrow}", 6))
    if _section(state, "strategy").get("paused"):
        fields.append(StatusField("PAUSED", "PAUSED", 0))
    return [replace(f, narrow=f.narrow or f.full) for f in fields]


def format_status(state: Mapping[str, object], *, elapsed_s: float,
                  width: int | None = None) -> str:
    """One line from a dashboard state dict (the schema of ``venueguard.app.dashboard``).

    Every field, separated by ``|``, when it fits in ``width`` columns (or ``width`` is None:
    a pipe or a log file). Narrower, the fields take their narrow form, and the least important
    ones are left out, last first (``signal``, ``miss``, ``reconn``, ``p95``, ``503/min``;
    the narrow head has no spread), until the line fits: on an 80-column terminal it keeps
    time, symbol, bid/ask, freshness, venue state, regime, and 503s per minute at least."""
    fields = status_fields(state, elapsed_s=elapsed_s)
    full = " | ".join(f.full for f in fields)
    if width is None or len(full) <= width:
        return full
    kept = list(fields)
    while True:
        line = " ".join(f.narrow for f in kept)
        droppable = [f for f in kept if f.rank > 0]
        if len(line) <= width or not droppable:
            return line[:width]
        kept.remove(max(reversed(droppable), key=lambda f: f.rank))


class Progress:
    """Steps of a long job: in place on a TTY (``label [2/5] step``), else one line per step."""

    def __init__(self, stream: TextIO, label: str, total: int, *, tty: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._line = StatusLine(stream, tty=tty, plain_every_s=0.0)
        self.label = label
        self.total = max(1, total)
        self.done_steps = 0
        self._clock = clock
        self._started = clock()

    def step(self, what: str) -> None:
        """Announce the next step (call before doing it)."""
        self.done_steps = min(self.done_steps + 1, self.total)
        self._line.show(f"{self.label} [{self.done_steps}/{self.total}] {what}", self._clock())

    def done(self, message: str) -> None:
        elapsed = self._clock() - self._started
        self._line.close(f"{self.label}: {message} ({elapsed:.1f}s)")
