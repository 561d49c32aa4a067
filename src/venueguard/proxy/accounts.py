"""The accounts behind a guarding proxy: each API key's own venue health, and its fleet link.

A request's account is the API key it carries in the dialect's key header (BitMEX ``api-key``,
Binance ``X-MBX-APIKEY``; ``generic`` looks for either), named by a hash of the key
(:func:`venueguard.fleet.policy.account_tag`, the name the fleet gives the account in Redis).
Requests without a key share one ``public`` account. The raw key is never kept: it is hashed
on the way in and only the tag appears in events, metrics and the journal.

Each account has its own :class:`~venueguard.core.health.VenueHealth` (a cooldown or a ban on
key A refuses A's requests, B's still pass) and, with ``--redis``, its own
:class:`~venueguard.fleet.Fleet` (the account's shared buckets and ban notices). A cooldown or
block of the egress IP (Cloudflare's bans, :data:`~venueguard.fleet.policy.BAN_SCOPES`) is not
one key's: seen on any account, it is applied to every account here, and to those that appear
while it lasts.

The registry is bounded (``max_accounts``): a client sending ever new keys makes the least
recently used healthy account go (its fleet link closed), never one cooling down or blocked
while a healthy one can go instead.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from venueguard.core.health import VenueHealth, VenueState
from venueguard.core.kinds import Kind
from venueguard.core.rules import RuleSet
from venueguard.fleet.policy import BAN_SCOPES, Scope, account_tag
from venueguard.io.clock import Clock
from venueguard.io.notify import HealthReporter, Notifier
from venueguard.telemetry.events import EventLog
from venueguard.telemetry.metrics import Metrics

if TYPE_CHECKING:
    from venueguard.fleet import Fleet

__all__ = ["PUBLIC", "Account", "Accounts", "key_of"]

_SEVERITY = {state: state.gauge for state in VenueState}

#: The account of requests that carry no API key.
PUBLIC = "public"


def key_of(headers: Mapping[str, str], key_headers: tuple[str, ...]) -> str | None:
    """The API key a request carries (the first of ``key_headers`` present and not empty)."""
    for name in key_headers:
        value = headers.get(name)
        if value:
            return value
    return None


class _AccountNotifier(Notifier):
    """The guard's notifier with the account's tag on every line (metrics stay the guard's)."""

    def __init__(self, events: EventLog, tag: str) -> None:
        super().__init__(events, None)
        self.tag = tag

    def log(self, event: str, **fields: object) -> None:
        self.events.emit(event, **fields, account=self.tag)

    def alert(self, tier: str, message: str, now: float, *, key: str | None = None) -> None:
        self.events.emit("alert", tier=tier, message=message, account=self.tag)


@dataclass(slots=True)
class Account:
    """One account's state at this proxy (mutable: its health and fleet link change)."""

    tag: str
    health: VenueHealth
    reporter: HealthReporter
    fleet: Fleet | None = None  # with --redis
    gauged: VenueState = VenueState.HEALTHY  # its state when the gauge was last worked out


class Accounts:
    """The accounts seen so far, by tag (see the module docstring)."""

    def __init__(self, *, venue: str, rules: RuleSet, events: EventLog, metrics: Metrics | None,
                 clock: Clock, max_accounts: int = 256) -> None:
        if max_accounts < 1:
            raise ValueError("max_accounts must be >= 1")
        self.venue = venue
        self.rules = rules
        self.events = events
        self.metrics = metrics
        self.clock = clock
        self.max_accounts = max_accounts
        self._by_tag: OrderedDict[str, Account] = OrderedDict()
        self._egress_ban: tuple[VenueState, float | None, str] | None = None
        #: Called with an account that leaves the registry (to close its fleet link).
        self.on_evict: Callable[[Account], None] | None = None
        self.evicted_total = 0
        self._gauge = VenueState.HEALTHY

    def tag_of(self, headers: Mapping[str, str], key_headers: tuple[str, ...]) -> str:
        """The account of a request with ``headers``."""
        return self.tag_for(key_of(headers, key_headers))

    def tag_for(self, key: str | None) -> str:
        """The account of API key ``key`` (None: the public account)."""
        return PUBLIC if key is None else account_tag(self.venue, key)

    def __len__(self) -> int:
        return len(self._by_tag)

    def all(self) -> list[Account]:
        return list(self._by_tag.values())

    def get(self, tag: str) -> Account | None:
        return self._by_tag.get(tag)

    def account(self, tag: str) -> Account:
        """The account named ``tag``, created (healthy, or under the egress ban) if new."""
        now = self.clock.monotonic()
        found = self._by_tag.get(tag)
        if found is not None:
            self._by_tag.move_to_end(tag)  # the order is the recency of use
            return found
        if len(self._by_tag) >= self.max_accounts:
            self._evict(now)
        health = VenueHealth(self.rules, now)
        account = Account(tag, health, HealthReporter(health, _AccountNotifier(self.events, tag),
                                                      self.clock))
        ban = self._egress_ban
        if ban is not None:
            state, until, reason = ban
            if state is VenueState.BLOCKED or (until is not None and until > now):
                health.on_shared(state, until, reason, now)
            else:
                self._egress_ban = None
        self._by_tag[tag] = account
        return account

    def _evict(self, now: float) -> None:
        victim = next((a for a in self._by_tag.values()
                       if a.health.allows_requests(now)), None)
        if victim is None:
            victim = next(iter(self._by_tag.values()))
        del self._by_tag[victim.tag]
        self.evicted_total += 1
        if self.on_evict is not None:
            self.on_evict(victim)

    def entered(self, account: Account, state: VenueState, until: float | None, kind: Kind,
                now: float) -> None:
        """``account`` entered COOLDOWN/BLOCKED on ``kind``: a ban of the egress IP is every
        account's."""
        if BAN_SCOPES.get(kind) is not Scope.IP:
            return
        reason = f"egress: {kind.value} seen on account {account.tag}"
        self._egress_ban = (state, until, reason)
        for other in self._by_tag.values():
            if other is not account:
                other.health.on_shared(state, until, reason, now)
                self.poll(now, other)

    def poll(self, now: float, account: Account | None = None) -> None:
        """Run the timers of ``account`` (default: every account) and report their decisions;
        the venue-state gauge shows the worst account's state."""
        changed = account is None
        for one in self._by_tag.values() if account is None else (account,):
            one.reporter.poll(now)
            if one.health.state is not one.gauged:
                one.gauged = one.health.state
                changed = True
        if not changed:  # the common case, once per request: nothing to work out
            return
        worst = self.worst()
        state = worst.health.state if worst is not None else VenueState.HEALTHY
        if self.metrics is not None and state is not self._gauge:
            self._gauge = state
            self.metrics.set_venue_state(state.value)

    def worst(self) -> Account | None:
        """The account in the worst state (None when there is none)."""
        return max(self._by_tag.values(), key=lambda a: _SEVERITY[a.health.state], default=None)
