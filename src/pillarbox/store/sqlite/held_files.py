"""Message files whose rows went in a commit not yet synced: removed once it is durable.

Why a thread of its own (issue 18): a batch of flag changes and expunges commits with
synchronous=NORMAL (`writer.Op.durable`), so its COMMIT does not fsync the WAL; the files
its expunges free may be removed only once that commit is durable, or a power loss could
bring back rows whose files are gone. The writer used to fsync the WAL itself before
answering such a batch when nothing else was queued: one fsync per EXPUNGE on its answer
path, and every STORE queued behind it waited for that fsync too. Now the writer answers
at once and hands the files here (`hold`); they are removed as soon as either

  * a later synchronous commit of this writer has fsynced the WAL (`durable`, called by
    the writer after each committed synchronous batch: the WAL is one file written in
    order, so its fsync covers every earlier commit): they go `SYNC_DELAY` after they
    came, without an fsync of their own, or
  * `SYNC_DELAY` passed without one: this thread fsyncs the WAL itself, off the writer's
    path and without the cross-process write lock (an fsync needs no lock; it covers
    every commit written before it starts, which includes every commit whose files are
    held here when it starts).

A crash at any point leaves at worst files without rows, which the server collects as
orphans when it next opens the store; never a row without its file.

Must not: touch the database (it only fsyncs the WAL file by path), run on the event
loop, or remove a file before a sync that started after the commit that freed it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

# How long held files wait for a synchronous commit before this thread fsyncs the WAL.
# Under a mixed load an APPEND or delivery commits synchronously far sooner, so this
# thread rarely adds an fsync; idle, a removed message's file lingers this long.
SYNC_DELAY = 0.05


class HeldFiles(threading.Thread):
    """Holds the blob ids freed by non-durable commits until a WAL fsync covers them."""

    def __init__(
        self, wal_path: Path, release: Callable[[list[int]], None], delay: float = SYNC_DELAY
    ) -> None:
        """`release(blob_ids)`: remove the files (and their text), once durable."""
        super().__init__(name="pillarbox-sqlite-held", daemon=True)
        self._delay = delay
        self._wal_path = wal_path
        self._release = release
        self._cond = threading.Condition()
        # (commit number, blob ids, when this thread fsyncs if no commit has by then)
        self._held: list[tuple[int, list[int], float]] = []
        self._durable = 0  # every commit numbered up to this one is durable
        self._stopping = False
        self.syncs = 0  # fsyncs this thread made (for tests and measurements)

    def hold(self, commit: int, blob_ids: list[int]) -> None:
        """From the writer: commit number `commit` (not synced) freed these files."""
        with self._cond:
            self._held.append((commit, blob_ids, time.monotonic() + self._delay))
            if len(self._held) == 1:
                self._cond.notify()  # else the thread already waits for the first's time

    def durable(self, commit: int) -> None:
        """From the writer: commit number `commit` was synced, and so every earlier one.
        Does not wake the thread (a wake per commit cost the writer's process ~60 µs of
        CPU per loop of imap_mixed): the files go when the first held is due."""
        with self._cond:
            self._durable = commit

    def stop(self) -> None:
        """Sync and release whatever is held, then end (join to wait for it)."""
        with self._cond:
            self._stopping = True
            self._cond.notify()

    def run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._held:
                        wait = self._held[0][2] - time.monotonic()
                        if self._stopping or wait <= 0:
                            break
                        self._cond.wait(wait)
                    elif self._stopping:
                        return
                    else:
                        self._cond.wait()
                durable = self._durable
                covered = [ids for commit, ids, _ in self._held if commit <= durable]
                rest = [h for h in self._held if h[0] > durable]
                if rest and (self._stopping or rest[0][2] <= time.monotonic()):
                    self._held = []  # synced below: every one was committed before
                else:
                    self._held, rest = rest, []
            # A failed sync: not known to be durable, so the files stay (collected as
            # orphans at the server's next open if their rows are indeed gone).
            if rest and self._sync():
                covered += [ids for _, ids, _ in rest]
            ids = [blob_id for chunk in covered for blob_id in chunk]
            if ids:
                self._release(ids)

    def _sync(self) -> bool:
        """fsync the WAL: durable are all commits written before this call."""
        if not sync_file(self._wal_path):
            return False
        self.syncs += 1
        return True


def fsync_path(path: str | Path, *, directory: bool = False) -> None:
    """fsync the file or directory at `path` (OSError if it cannot be opened or synced)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_file(path: str | Path) -> bool:
    """fsync the file at `path` (a WAL: every commit written to it so far becomes
    durable); False if it could not be opened or synced."""
    try:
        fsync_path(path)
    except OSError:
        return False
    return True


__all__ = ["SYNC_DELAY", "HeldFiles", "fsync_path", "sync_file"]
