"""The account's position against the sum of what the bots sharing it believe.

When several bots trade one account, the venue reports one position per symbol: the account's,
the sum of every bot's. No bot alone can check it (each knows only its own fills), so the
fleet's owner compares it with the sum of the positions the members publish. What is checked
is the *change*: the difference ``venue - sum(members)`` is taken as the reference when the
check starts and whenever the set of members changes (a member that joins brings its journal's
history; one that leaves takes its own), and a difference that moves away from the reference
and stays away, by the same amount, for ``grace_s`` is an account-level mismatch: a fill that no
member owns, or one a member missed. (Fills reach the members a little after the venue, so a
sample taken just after one shows a difference that the next sample no longer shows, or shows
with another value: neither lasts.)

Shape (sans-I/O)::

    check = AccountPositionCheck(AccountCheckConfig())
    for decision in check.on_sample(symbol, venue_qty, {member: qty, ...}, now): act on it
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["AccountCheckConfig", "AccountMismatch", "AccountPositionCheck", "AccountResolved"]


@dataclass(frozen=True, slots=True)
class AccountCheckConfig:
    grace_s: float = 15.0       # a difference must last this long (members publish late)
    tolerance: float = 1e-9     # differences this small are rounding

    def __post_init__(self) -> None:
        if not self.grace_s > 0 or self.tolerance < 0:
            raise ValueError("grace_s must be > 0 and tolerance >= 0")


@dataclass(frozen=True, slots=True)
class AccountMismatch:
    """The account's position moved by ``drift`` more than its members' positions did."""

    symbol: str
    venue_qty: float
    members_qty: float
    drift: float
    members: tuple[str, ...]

    @property
    def detail(self) -> str:
        return (f"{self.symbol} account {self.venue_qty:g} members {self.members_qty:g} "
                f"(unexplained {self.drift:+g}, {len(self.members)} members)")


@dataclass(frozen=True, slots=True)
class AccountResolved:
    symbol: str


AccountDecision = AccountMismatch | AccountResolved


@dataclass(slots=True)
class _SymbolState:
    members: frozenset[str]
    reference: float
    bad_since: float | None = None
    drift: float = 0.0
    alerted: bool = False


class AccountPositionCheck:
    """See the module docstring."""

    def __init__(self, config: AccountCheckConfig | None = None) -> None:
        self.config = config or AccountCheckConfig()
        self._state: dict[str, _SymbolState] = {}

    def has_reference(self, symbol: str, members: Iterable[str]) -> bool:
        """Whether ``symbol`` has a reference taken with exactly these members (else the next
        sample takes one)."""
        state = self._state.get(symbol)
        return state is not None and state.members == frozenset(members)

    def on_sample(self, symbol: str, venue_qty: float, members: Mapping[str, float],
                  now: float) -> list[AccountDecision]:
        """One reading of the account's position and the members' (published) positions."""
        total = sum(members.values())
        names = frozenset(members)
        state = self._state.get(symbol)
        if state is None or state.members != names:
            alerted = state is not None and state.alerted
            self._state[symbol] = _SymbolState(names, venue_qty - total)
            return [AccountResolved(symbol)] if alerted else []
        drift = venue_qty - total - state.reference
        if abs(drift) <= self.config.tolerance:
            state.bad_since = None
            if state.alerted:
                state.alerted = False
                return [AccountResolved(symbol)]
            return []
        if state.bad_since is None or abs(drift - state.drift) > self.config.tolerance:
            state.bad_since = now          # a new difference: its grace starts now
            state.drift = drift
        if now - state.bad_since >= self.config.grace_s and not state.alerted:
            state.alerted = True
            return [AccountMismatch(symbol, venue_qty, total, drift, tuple(sorted(names)))]
        return []
