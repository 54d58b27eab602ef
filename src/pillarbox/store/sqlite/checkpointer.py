"""The background WAL checkpointer of the SQLite backend.

Owns the thread (and its own read connection) that copies committed WAL pages back into
``pillarbox.db``. The writer (`writer.Writer`) turns SQLite's automatic checkpoint off,
starts and stops this thread, and wakes it after each commit, so its commits never pay
for a checkpoint. Must not: write rows, block the writer or readers (it only runs
PASSIVE checkpoints), or run on the event loop.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from pillarbox.store.sqlite import schema

CHECKPOINT_INTERVAL = 0.25  # seconds between background WAL checkpoints under load


class Checkpointer(threading.Thread):
    """Runs the WAL checkpoints the writer would otherwise run inside its commits.

    SQLite's automatic checkpoint (every 1,000 WAL pages) runs in the committing
    connection, right after the commit's fsync: the writer then copies pages into the
    database file and fsyncs it while every queued operation waits. The writer turns
    that off and calls `wake()` after each commit; this thread, on its own connection,
    runs a PASSIVE checkpoint (it never blocks the writer or readers) at most every
    `CHECKPOINT_INTERVAL` seconds while commits keep coming. A crash at any point is
    safe: a checkpoint only copies pages that are already durable in the WAL. The next
    write transaction after a complete checkpoint starts the WAL over, as before.
    """

    def __init__(self, db_path: Path) -> None:
        super().__init__(name="pillarbox-sqlite-checkpoint", daemon=True)
        self._db_path = db_path
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self.checkpoints = 0  # for tests and measurements

    def wake(self) -> None:
        """After each commit: a plain read when already woken (`set` takes a lock)."""
        if not self._wake.is_set():
            self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def run(self) -> None:
        conn = sqlite3.connect(self._db_path, isolation_level=None, check_same_thread=True)
        try:
            schema.configure(conn, writer=False)
            while True:
                self._wake.wait()
                if self._stopping.is_set():
                    return
                self._wake.clear()  # commits from now on ask for the next round
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error:
                    pass  # transient; the next commit wakes us again
                else:
                    self.checkpoints += 1
                if self._stopping.wait(CHECKPOINT_INTERVAL):
                    return
        finally:
            conn.close()
