"""One process per journal: an exclusive lock on ``<journal>.lock`` holding the owner's pid.

    lock = JournalLock.acquire(path)      # raises JournalLockedError naming the holder
    ...                                   # open and write the journal
    lock.release()                        # also when the process dies: the kernel drops it

The lock is ``fcntl.flock`` on a file beside the journal (not on the journal itself, whose
locks belong to SQLite). A process killed with SIGKILL loses the lock with its file
descriptors, so a stale lock file never blocks the next run; its pid text is only a label.
Release removes the file; an acquirer that locked a file removed meanwhile tries again on the
new one, so two processes never both believe they hold it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Self

from venueguard.io.journal import JournalError

__all__ = ["JournalLock", "JournalLockedError", "lock_path"]


class JournalLockedError(JournalError):
    """Another process holds the journal; ``holder`` is its pid when it wrote one."""

    def __init__(self, path: Path, holder: int | None) -> None:
        who = f"process {holder}" if holder is not None else "another process"
        super().__init__(f"{path} is in use by {who} (lock file {lock_path(path)}); "
                         "one process per journal: stop it or use another --journal")
        self.path = path
        self.holder = holder


def lock_path(journal: Path) -> Path:
    return journal.with_name(journal.name + ".lock")


class JournalLock:
    """A held journal lock (see the module docstring)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, journal: str | Path) -> Self:
        path = lock_path(Path(journal))
        for _ in range(10):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(fd)
                os.close(fd)
                raise JournalLockedError(Path(journal), holder) from None
            except BaseException:
                os.close(fd)
                raise
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # released and removed between our open and our lock: retry
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return cls(path, fd)
        raise JournalError(f"{path}: could not take the lock (it keeps changing)")

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
