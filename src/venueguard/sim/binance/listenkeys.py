"""User-data-stream listenKeys: one account, keys that live ``ttl_s`` after the last keepalive.

``POST`` returns the active key (extending it) or a new one; ``PUT`` extends it (-1125 when it
is unknown or expired); ``DELETE`` closes it. Times are monotonic seconds (injectable).
"""

from __future__ import annotations

import random

__all__ = ["ListenKeys"]

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


class ListenKeys:
    def __init__(self, ttl_s: float, seed: int) -> None:
        self.ttl_s = ttl_s
        self._rng = random.Random(f"{seed}:listenKey")
        self._until: dict[str, float] = {}  # active keys -> expiry
        self._issued: set[str] = set()

    def is_key(self, name: str) -> bool:
        return name in self._issued

    def active(self, key: str, now_s: float) -> bool:
        until = self._until.get(key)
        return until is not None and now_s < until

    def create(self, now_s: float) -> str:
        for key, until in self._until.items():
            if now_s < until:
                self._until[key] = now_s + self.ttl_s
                return key
        key = "".join(self._rng.choice(_ALPHABET) for _ in range(64))
        self._issued.add(key)
        self._until[key] = now_s + self.ttl_s
        return key

    def keepalive(self, key: str | None, now_s: float) -> bool:
        """Extend ``key`` (or the active key when None); False when there is none."""
        for candidate, until in self._until.items():
            if (key is None or candidate == key) and now_s < until:
                self._until[candidate] = now_s + self.ttl_s
                return True
        return False

    def close(self, key: str | None) -> None:
        for candidate in list(self._until):
            if key is None or candidate == key:
                del self._until[candidate]

    def due(self, now_s: float) -> list[str]:
        """Keys whose time ran out (removed; the caller tells their connections)."""
        gone = [k for k, until in self._until.items() if now_s >= until]
        for key in gone:
            del self._until[key]
        return gone
