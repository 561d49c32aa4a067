"""The structured event log: one JSON object per line, secrets redacted, recent records kept.

Every record starts with ``ts`` (ISO-8601 UTC with milliseconds, ``2026-11-23T12:00:00.123Z``)
and ``event``, followed by the caller's fields in the order given. Event names are the contract
documented in ``docs/events.md`` (``ws.stale``, ``rest.error``, ``regime.changed`` ...).

Redaction happens before anything leaves :meth:`EventLog.emit` (stream, memory, subscribers):

- a field whose key names a secret (``api_secret``, ``secret``, ``signature``, ``api-signature``,
  ``password``, ``token``, or a key ending in ``_secret``/``_signature``/``_password``/``_token``,
  case-insensitive) has its value replaced by ``"***"``, at any depth;
- any string value equal to, or containing, a registered secret (see :func:`register_secret`
  and :meth:`EventLog.register_secret`) has the secret replaced by ``"***"``.

Every record also goes to the standard :mod:`logging` module, on the logger
``venueguard.<first part of the event name>`` (``venueguard.ws``, ``venueguard.rest``,
``venueguard.order``, ``venueguard.alert`` ...) at the level of :func:`level_of` (alerts at
their tier; failures at ERROR; staleness, rejections, unknown orders and mismatches at WARNING;
the rest at INFO). The log message is the pretty one-liner without the timestamp, and the
record itself is attached as ``record.venueguard_event`` for structured handlers (structlog,
JSON formatters). The ``venueguard`` logger has a NullHandler, so nothing is printed twice
unless the host application adds handlers; the JSON lines keep their shape either way.

Values that JSON cannot hold (enums, exceptions, paths ...) are recorded as their ``str()``,
so the in-memory records are JSON-friendly too.

Usage::

    log = EventLog(sys.stdout)                 # or EventLog() to record in memory only
    log.register_secret(api_secret)
    log.emit("ws.reconnecting", attempt=2, delay_s=0.8)
    log.emit("regime.changed", from_="NORMAL", to="CAUTIOUS", reason="503_rate")  # key "from"
"""

from __future__ import annotations

import enum
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import TextIO

import orjson

from venueguard.io import clock as process_clock

REDACTED = "***"
SECRET_KEYS = frozenset({"api_secret", "secret", "signature", "api_signature", "password", "token"})
_SECRET_SUFFIXES = ("_secret", "_signature", "_password", "_token")
_MIN_SECRET_LEN = 4  # shorter registered values would redact ordinary words and numbers

Record = dict[str, object]
Subscriber = Callable[[Record], None]

LOGGER_ROOT = "venueguard"
logging.getLogger(LOGGER_ROOT).addHandler(logging.NullHandler())
_TIER_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.CRITICAL}
_WARNING_EVENTS = frozenset({"ws.stale", "ws.disconnected", "data.rejected", "book.gap",
                             "rest.error", "order.unknown", "reconcile.mismatch",
                             "venue.state", "regime.changed"})


def level_of(record: Mapping[str, object]) -> int:
    """The :mod:`logging` level of an event record (see the module docstring)."""
    event = str(record.get("event", ""))
    if event == "alert":
        return _TIER_LEVELS.get(str(record.get("tier", "")).lower(), logging.WARNING)
    if event.endswith((".error", ".failed", ".task_failed")):
        return logging.ERROR
    if event in _WARNING_EVENTS:
        return logging.WARNING
    return logging.INFO


def logger_for(event: str) -> logging.Logger:
    """``venueguard.ws`` for ``ws.stale``: one logger per event family."""
    family = event.split(".", 1)[0] or "event"
    return logging.getLogger(f"{LOGGER_ROOT}.{family}")


def is_secret_key(key: str) -> bool:
    """True when a field named ``key`` holds a secret (case-insensitive, ``-`` same as ``_``)."""
    norm = key.lower().replace("-", "_")
    return norm in SECRET_KEYS or norm.endswith(_SECRET_SUFFIXES)


class Redactor:
    """Replaces secrets in nested JSON-like values; ``parent`` secrets apply too."""

    def __init__(self, parent: Redactor | None = None) -> None:
        self._secrets: set[str] = set()
        self._parent = parent

    def register(self, value: str) -> None:
        """Remember ``value`` as a secret; values shorter than 4 characters are refused."""
        if not isinstance(value, str) or len(value) < _MIN_SECRET_LEN:
            raise ValueError("a registered secret must be a string of at least 4 characters")
        self._secrets.add(value)

    def secrets(self) -> tuple[str, ...]:
        """Every secret this redactor hides, longest first (so overlapping ones leave no tail)."""
        found = set(self._secrets)
        if self._parent is not None:
            found.update(self._parent.secrets())
        return tuple(sorted(found, key=len, reverse=True))

    def redact(self, value: object) -> object:
        """Return a JSON-friendly copy of ``value`` with secrets replaced by ``"***"``."""
        return self.redact_with(value, self.secrets())

    def redact_text(self, text: str) -> str:
        for secret in self.secrets():
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def redact_with(self, value: object, secrets: tuple[str, ...]) -> object:
        """Like :meth:`redact` with the secrets given (saves recomputing them per field)."""
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else None
        if isinstance(value, str):
            for secret in secrets:
                if secret in value:
                    value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, Mapping):
            out: dict[str, object] = {}
            for key, item in value.items():
                skey = str(key)
                out[skey] = REDACTED if is_secret_key(skey) else self.redact_with(item, secrets)
            return out
        if isinstance(value, list | tuple | set | frozenset | deque):
            return [self.redact_with(item, secrets) for item in value]
        if isinstance(value, enum.Enum):
            return self.redact_with(value.value, secrets)
        if isinstance(value, bytes):
            return self.redact_with(value.decode("utf-8", "replace"), secrets)
        return self.redact_with(str(value), secrets)


GLOBAL_REDACTOR = Redactor()


def register_secret(value: str) -> None:
    """Register a process-wide secret: every EventLog (and webhook sink) redacts it."""
    GLOBAL_REDACTOR.register(value)


def iso_utc_ms(epoch_s: float) -> str:
    """``1795435200.1239`` -> ``"2026-11-23T12:00:00.123Z"`` (milliseconds truncated)."""
    total_ms = math.floor(epoch_s * 1000.0)
    secs, ms = divmod(total_ms, 1000)
    t = time.gmtime(secs)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{ms:03d}Z"
    )


def format_pretty(record: Mapping[str, object]) -> str:
    """A human one-liner: ``2026-11-23T12:00:00.123Z ws.reconnecting attempt=2 delay_s=0.8``."""
    parts = [str(record.get("ts", "")), str(record.get("event", ""))]
    if record.get("event") == "alert":
        parts[1] = f"alert[{str(record.get('tier', '')).upper()}]"
    for key, value in record.items():
        if key in ("ts", "event") or (key == "tier" and record.get("event") == "alert"):
            continue
        if isinstance(value, str):
            text = value if value and not any(c in value for c in ' ="\n') else _json(value)
        else:
            text = _json(value)
        parts.append(f"{key}={text}")
    return " ".join(parts)


def _json(value: object) -> str:
    return orjson.dumps(value, default=str).decode()


class EventLog:
    """Writes, keeps and fans out structured events.

    ``stream=None`` writes nowhere but still records (``recent``) and notifies subscribers.
    Each line is flushed as written. A failing stream or subscriber never breaks ``emit``:
    the failures are counted in ``write_errors`` and ``subscriber_errors``.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        fmt: str = "json",
        wall_clock: Callable[[], float] = process_clock.wall_s,
        keep: int = 2000,
    ) -> None:
        if fmt not in ("json", "pretty"):
            raise ValueError(f"fmt must be 'json' or 'pretty', not {fmt!r}")
        if keep < 0:
            raise ValueError("keep must be >= 0")
        self._stream = stream
        self._fmt = fmt
        self._wall_clock = wall_clock
        self._records: deque[Record] = deque(maxlen=keep)
        self._subscribers: list[Subscriber] = []
        self._redactor = Redactor(parent=GLOBAL_REDACTOR)
        self._lock = threading.Lock()
        self._depth = 0
        self.write_errors = 0
        self.subscriber_errors = 0

    @property
    def redactor(self) -> Redactor:
        return self._redactor

    def register_secret(self, value: str) -> None:
        """Redact ``value`` wherever it appears in this log's string values."""
        self._redactor.register(value)

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback(record)`` after each emit; the record must not be modified."""
        self._subscribers.append(callback)

    def unsubscribe(self, callback: Subscriber) -> None:
        if callback in self._subscribers:
            self._subscribers.remove(callback)

    def emit(self, event: str, **fields: object) -> None:
        """Record ``event`` with ``fields`` (``from_`` becomes ``from``; ``ts`` is reserved)."""
        record: Record = {"ts": iso_utc_ms(self._wall_clock()), "event": str(event)}
        secrets = self._redactor.secrets()
        for key, value in fields.items():
            name = "from" if key == "from_" else key
            if name in ("ts", "event"):
                name = f"{name}_field"
            if is_secret_key(name):
                record[name] = REDACTED
            else:
                record[name] = self._redactor.redact_with(value, secrets)
        self._records.append(record)
        if self._stream is not None:
            self._write(record)
        self._log(record)
        if self._depth < 3:  # a subscriber that emits cannot recurse without bound
            self._depth += 1
            try:
                for callback in tuple(self._subscribers):
                    try:
                        callback(record)
                    except Exception:
                        self.subscriber_errors += 1
            finally:
                self._depth -= 1

    def recent(self, n: int | None = None, event: str | None = None) -> list[Record]:
        """The last ``n`` kept records (all when ``None``), oldest first, optionally one event."""
        items: Iterable[Record] = self._records
        if event is not None:
            items = [r for r in items if r["event"] == event]
        out = list(items)
        if n is not None:
            out = out[-n:] if n > 0 else []
        return out

    def _log(self, record: Record) -> None:
        logger = logger_for(str(record["event"]))
        level = level_of(record)
        if not logger.isEnabledFor(level):
            return
        text = format_pretty(record).partition(" ")[2]  # the one-liner without its timestamp
        try:
            logger.log(level, "%s", text, extra={"venueguard_event": record})
        except Exception:  # a host's failing handler must not break emit
            self.write_errors += 1

    def _write(self, record: Record) -> None:
        assert self._stream is not None
        if self._fmt == "json":
            line = orjson.dumps(record, default=str).decode()
        else:
            line = format_pretty(record)
        try:
            with self._lock:
                self._stream.write(line + "\n")
                self._stream.flush()
        except (OSError, ValueError):
            self.write_errors += 1
