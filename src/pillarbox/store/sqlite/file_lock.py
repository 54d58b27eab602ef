"""Cross-process write locks of the SQLite backend (`[server] workers` > 1).

Why a lock of our own: several worker processes (and the CLI) may write one data
directory. SQLite alone would let their writers collide on `BEGIN IMMEDIATE` and retry
in its busy handler (sleep and poll), which under load both wastes time and orders
commits arbitrarily. Each writer thread instead blocks in `flock(LOCK_EX)` on a lock file
next to the database around its whole write transaction (BEGIN IMMEDIATE … COMMIT and,
with a `store.api.StampingBus`, the stamps): commits of all processes are serialised
in one order, the order the stamps follow, and SQLite's write lock is never contended.

`flock` (not `lockf`/POSIX record locks): the lock belongs to the open file description,
so two stores opened in one process (tests, the CLI beside nothing) also exclude each
other, and it is released when the process dies, SIGKILL included.

Must not: be taken on the event loop (it blocks), or be held across anything that waits
for another process's writer.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType


class FileLock:
    """An exclusive `flock` on one lock file; a context manager (re-entry is an error)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = -1
        self._held = False

    def _open(self) -> int:
        if self._fd < 0:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        return self._fd

    def acquire(self) -> None:
        """Block (the GIL released) until no other holder has the lock."""
        if self._held:
            raise RuntimeError(f"{self.path} is already held by this holder")
        fcntl.flock(self._open(), fcntl.LOCK_EX)
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self.release()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


__all__ = ["FileLock"]
