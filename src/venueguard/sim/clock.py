"""The simulator's clocks: real monotonic time, real wall time, and simulated epoch milliseconds.

The engine never reads a clock; the server asks :class:`SimClock` for ``now_ms`` and passes it in.
At ``speed`` 1 simulated time equals wall-clock time (so clients comparing server timestamps with
their own clock see fresh data); a larger speed runs the market faster than real time. Request
expiry (``api-expires``) is always checked against the real wall clock, as the venue does.
"Real" means the process clocks of :mod:`venueguard.io.clock`: on a virtual-time loop the
simulator, like its clients, runs on the loop's virtual clocks.
"""

from __future__ import annotations

from collections.abc import Callable

from venueguard.io import clock as process_clock


class SimClock:
    """Maps real elapsed time to simulated epoch milliseconds.

    ``monotonic`` and ``wall`` are injectable so tests can drive time by hand; by default they are
    the process clocks of :mod:`venueguard.io.clock` (virtual under a virtual-time loop).
    """

    def __init__(self, *, speed: float = 1.0, start_ms: int | None = None,
                 monotonic: Callable[[], float] = process_clock.monotonic,
                 wall: Callable[[], float] = process_clock.wall_s) -> None:
        if speed <= 0:
            raise ValueError(f"clock speed must be > 0, got {speed}")
        self._speed = speed
        self._monotonic = monotonic
        self._wall = wall
        self._mono0_s = monotonic()
        self.start_ms = int(wall() * 1000) if start_ms is None else int(start_ms)

    @property
    def speed(self) -> float:
        return self._speed

    def monotonic_s(self) -> float:
        """Real monotonic seconds (rate limits, fault durations, holds)."""
        return self._monotonic()

    def wall_s(self) -> float:
        """Real wall-clock epoch seconds (request expiry)."""
        return self._wall()

    def elapsed_s(self) -> float:
        """Real seconds since the clock was created."""
        return self._monotonic() - self._mono0_s

    def now_ms(self) -> int:
        """Simulated epoch milliseconds; never decreases."""
        return self.start_ms + int(self.elapsed_s() * 1000.0 * self._speed)
