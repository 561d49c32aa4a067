"""Safe-mode policy: when the venue fails, do less, not more.

Driven by regime transitions (NORMAL / CAUTIOUS / SAFE / RECOVERING). Entering SAFE:

1. new orders are blocked (also while RECOVERING, until the regime is NORMAL again);
2. ONE bulk cancel (cancel all) — never a storm of single cancels. If it fails it is
   retried with backoff under a bounded number of attempts; when they run out a critical alert
   says so (the shortened dead man's switch then cancels at the venue);
3. ``SetSafeMode(True)``: the adapter shortens the dead man's switch and switches the reconciler
   to its low query budget, until RECOVERING -> NORMAL brings ``SetSafeMode(False)``.

Call order::

    for d in policy.on_regime(regime, now): execute d
    CancelAll -> one bulk cancel; its reports -> Reconciler.on_cancel_reports; then
        policy.on_cancel_all_result(ok, now)
    for d in policy.poll(now): execute d ; sleep until policy.next_deadline()
    before placing any order: check policy.orders_allowed

``regime`` is the ``Regime`` enum of ``core.regime`` (or its name as a string).
"""

from __future__ import annotations

from dataclasses import dataclass

from venueguard.core.regime import Regime

NORMAL, CAUTIOUS, SAFE, RECOVERING = "NORMAL", "CAUTIOUS", "SAFE", "RECOVERING"
_REGIMES = frozenset({NORMAL, CAUTIOUS, SAFE, RECOVERING})


@dataclass(frozen=True, slots=True)
class SafeModeConfig:
    cancel_retry_s: float = 1.0          # first retry delay of a failed bulk cancel (doubles)
    cancel_retry_max_s: float = 16.0
    cancel_max_attempts: int = 5


@dataclass(frozen=True, slots=True)
class CancelAll:
    """Send one bulk cancel (``symbol`` None: every symbol)."""
    attempt: int
    symbol: str | None = None


@dataclass(frozen=True, slots=True)
class SetSafeMode:
    """Shorten the dead man's switch and lower the reconciler budget (or restore them)."""
    on: bool


@dataclass(frozen=True, slots=True)
class SafeAlert:
    tier: str
    message: str


SafeDecision = CancelAll | SetSafeMode | SafeAlert


def regime_name(regime: Regime | str) -> str:
    """``Regime.SAFE`` or ``"SAFE"`` -> ``"SAFE"``; anything else raises ValueError."""
    name = regime.name if isinstance(regime, Regime) else regime
    if not isinstance(name, str) or name.upper() not in _REGIMES:
        raise ValueError(f"unknown regime {regime!r}")
    return name.upper()


class SafeModePolicy:
    def __init__(self, config: SafeModeConfig | None = None, *,
                 symbol: str | None = None) -> None:
        self.config = config or SafeModeConfig()
        self._symbol = symbol
        self.regime = NORMAL
        self._blocked = False
        self._safe = False
        self._attempts = 0
        self._cancel_in_flight = False
        self._cancel_done = True
        self._retry_at: float | None = None

    @property
    def orders_allowed(self) -> bool:
        """False from entering SAFE until the regime is NORMAL again (and while a bulk cancel
        is still in flight, so it cannot cancel an order placed after it)."""
        return not self._blocked and not self._cancel_in_flight

    @property
    def safe(self) -> bool:
        return self._safe

    def on_regime(self, regime: Regime | str, now: float) -> list[SafeDecision]:
        new = regime_name(regime)
        old, self.regime = self.regime, new
        out: list[SafeDecision] = []
        if new == SAFE and old != SAFE:
            self._blocked = True
            if not self._cancel_in_flight:               # one bulk cancel per episode
                self._attempts, self._cancel_done, self._retry_at = 0, False, now
            if not self._safe:
                self._safe = True
                out.append(SetSafeMode(True))
        elif new == NORMAL and self._blocked:
            self._blocked = False
            self._cancel_done, self._retry_at = True, None   # a late retry must not hit new orders
            if self._safe:
                self._safe = False
                out.append(SetSafeMode(False))
        return out + self.poll(now)

    def on_cancel_all_result(self, ok: bool, now: float) -> list[SafeDecision]:
        """The bulk cancel answered (``ok``) or failed (any error, timeout included: the
        reconciler finds out what it did; repeating a cancel-all is harmless)."""
        self._cancel_in_flight = False
        if ok:
            self._cancel_done, self._retry_at = True, None
            return []
        if self._attempts >= self.config.cancel_max_attempts:
            self._cancel_done, self._retry_at = True, None
            return [SafeAlert("critical", f"bulk cancel failed {self._attempts} times; "
                              "relying on the dead man's switch")]
        delay = min(self.config.cancel_retry_max_s,
                    self.config.cancel_retry_s * 2 ** (self._attempts - 1))
        self._retry_at = now + delay
        return []

    def poll(self, now: float) -> list[SafeDecision]:
        if (self._cancel_done or self._cancel_in_flight or self._retry_at is None
                or now < self._retry_at):
            return []
        self._attempts += 1
        self._cancel_in_flight, self._retry_at = True, None
        return [CancelAll(self._attempts, self._symbol)]

    def next_deadline(self) -> float | None:
        if self._cancel_done or self._cancel_in_flight:
            return None
        return self._retry_at
