"""What both dialects' replays share (``venueguard sim --replay``)."""

from __future__ import annotations

__all__ = ["ReplayError"]


class ReplayError(ValueError):
    """The recording cannot be used; the message names the file and line."""
