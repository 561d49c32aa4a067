"""The environment contract: what reality may do to an agent's action, one switchable row each.

Every row is a field of :class:`Contract`; ``True`` lets reality do it, ``False`` takes it away.
``mode="perfect"`` switches every row off (and runs no scenario): every action reaches the venue in
the step it is taken and its answer comes back at once. ``mode="faulty"`` switches every row on
and runs the simulator's scenarios. The table below is :data:`ROWS`; docs/gym.md shows it too.

- ``overload``: place/amend rejected, not processed (503); cancels never (``overload_503``).
- ``rate_limit``: order requests rejected (429) when the venue's token buckets (120 a minute,
  10 a second) are empty, or by ``rate_limit_429``; Retry-After starts a cooldown.
- ``post_only``: orders are post-only; one that would cross comes back ``Canceled`` at once
  (off: it takes liquidity).
- ``ack_delay``: a request reaches the venue ``ack_steps`` steps later, plus ``latency``
  faults; its answer comes back then.
- ``ambiguous``: the write is processed but its answer is lost (``timeout_after_accept``,
  ``bad_gateway_after_accept``): the order is UNKNOWN until venue evidence arrives
  ``evidence_steps`` later (plus ``delayed_visibility``).
- ``late_fill``: executions reach the agent late (``late_fill``: the position lags the venue);
  a cancel can lose the race to a fill (``cancel_race``).
- ``stale_data``: market data stops (``ws_stall``, ``ws_half_open``, ``ws_stale_timestamps``,
  ``ws_future_timestamps``): the feed freezes and its age grows until the client gives up
  after ``stale_after_s``, reconnects for ``reconnect_steps`` and resyncs.
- ``gap``: deltas are lost (``ws_gap``) or the connection drops (``ws_drop``): a gap event and
  a resync during which the data is not fresh.
- ``cooldown``: 403, Cloudflare 522, DNS failure (and 429): venue health goes COOLDOWN and the
  client refuses actions until it ends.
- ``ban``: Cloudflare 1010/1006: BLOCKED, every action refused for the rest of the episode;
  bad credentials or an expired request (``invalid_key``, ``bad_signature``,
  ``expired_request``): the request is rejected.

``scenarios`` names the simulator's scenario files (shipped names or paths) that schedule those
faults over simulated time; faults can also be posted directly with ``VenueEnv.inject_fault``,
exactly as to the simulator's control API (``POST /_sim/faults``). A fault whose row is off has
no effect. ``ws_reorder`` and ``ws_duplicate`` are counted (``info["data_rejected"]``): the
client drops those messages and the data stays fresh.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Literal

__all__ = ["ROWS", "Contract", "Mode", "Row", "contract_for"]

Mode = Literal["faulty", "perfect"]

#: Scenarios run in faulty mode unless told otherwise (shipped simulator scenarios).
DEFAULT_SCENARIOS: tuple[str, ...] = ("503-lesson", "flaky-acks")


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    what: str
    kinds: tuple[str, ...]


ROWS: tuple[Row, ...] = (
    Row("overload", "place/amend rejected, not processed (503); cancels never",
        ("overload_503",)),
    Row("rate_limit", "order requests rejected (429) when the venue's buckets are empty; "
        "Retry-After starts a cooldown", ("rate_limit_429",)),
    Row("post_only", "orders are post-only: a crossing one comes back Canceled", ()),
    Row("ack_delay", "a request reaches the venue ack_steps later (plus latency faults)",
        ("latency",)),
    Row("ambiguous", "processed but the answer is lost: UNKNOWN until venue evidence",
        ("timeout_after_accept", "bad_gateway_after_accept", "delayed_visibility")),
    Row("late_fill", "executions reach the agent late; a cancel can lose the race to a fill",
        ("late_fill", "cancel_race")),
    Row("stale_data", "market data stops until the client notices and reconnects",
        ("ws_stall", "ws_half_open", "ws_stale_timestamps", "ws_future_timestamps")),
    Row("gap", "deltas lost or the connection drops: a gap event and a resync",
        ("ws_gap", "ws_drop")),
    Row("cooldown", "403 / 522 / DNS failure / 429: COOLDOWN, actions refused until it ends",
        ("forbidden_403", "cloudflare_522", "dns_failure")),
    Row("ban", "Cloudflare 1010/1006: BLOCKED for the rest of the episode; bad credentials "
        "or an expired request: rejected",
        ("cloudflare_1010", "cloudflare_1006", "invalid_key", "bad_signature",
         "expired_request")),
)

ROW_NAMES: tuple[str, ...] = tuple(r.name for r in ROWS)
#: The row that gates each simulator fault kind.
ROW_OF_KIND: dict[str, str] = {kind: r.name for r in ROWS for kind in r.kinds}


@dataclass(frozen=True, slots=True)
class Contract:
    """Which rows of the contract are on, and their parameters (module docstring)."""

    overload: bool = True
    rate_limit: bool = True
    post_only: bool = True
    ack_delay: bool = True
    ambiguous: bool = True
    late_fill: bool = True
    stale_data: bool = True
    gap: bool = True
    cooldown: bool = True
    ban: bool = True
    scenarios: tuple[str, ...] = DEFAULT_SCENARIOS
    ack_steps: int = 1  # base delay of every request while ack_delay is on
    evidence_steps: int = 20  # an UNKNOWN order's rows are withheld this long, then looked up
    stale_after_s: float = 5.0  # data age at which the client gives up on a connection
    reconnect_steps: int = 5  # steps from giving up (or a drop) to a fresh partial
    resync_steps: int = 1  # steps a gap keeps the book from being fresh

    def __post_init__(self) -> None:
        for name in ("ack_steps", "evidence_steps", "reconnect_steps", "resync_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
        if not self.stale_after_s > 0:
            raise ValueError(f"stale_after_s must be > 0, got {self.stale_after_s!r}")

    def on(self, row: str) -> bool:
        """Whether ``row`` (a name of :data:`ROWS`) is switched on."""
        if row not in ROW_NAMES:
            raise ValueError(f"unknown contract row {row!r}; rows: {', '.join(ROW_NAMES)}")
        return bool(getattr(self, row))

    def allows_kind(self, kind: str) -> bool:
        """Whether a simulator fault of ``kind`` has any effect under this contract."""
        row = ROW_OF_KIND.get(kind)
        return row is None or self.on(row)

    def rows(self) -> dict[str, bool]:
        return {name: self.on(name) for name in ROW_NAMES}

    @classmethod
    def perfect(cls) -> Contract:
        """Every row off, no scenario: the backtest's fantasy."""
        return cls(**dict.fromkeys(ROW_NAMES, False), scenarios=(), ack_steps=0)

    @classmethod
    def faulty(cls) -> Contract:
        return cls()

    def with_rows(self, **rows: bool) -> Contract:
        """This contract with some rows switched (``with_rows(ban=False)``)."""
        unknown = sorted(set(rows) - set(ROW_NAMES))
        if unknown:
            raise ValueError(f"unknown contract row(s) {', '.join(unknown)}; "
                             f"rows: {', '.join(ROW_NAMES)}")
        return replace(self, **rows)  # type: ignore[arg-type]


def contract_for(mode: str, contract: Contract | None = None) -> Contract:
    """The contract of ``mode`` ("faulty" or "perfect"), unless one is given explicitly."""
    if mode not in ("faulty", "perfect"):
        raise ValueError(f"mode must be 'faulty' or 'perfect', not {mode!r}")
    if contract is not None:
        return contract
    return Contract.faulty() if mode == "faulty" else Contract.perfect()


_FIELDS = {f.name for f in fields(Contract)}
assert set(ROW_NAMES) <= _FIELDS
