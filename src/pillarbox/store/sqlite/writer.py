"""The writer thread of the SQLite backend: group commit.

Theory of operation:
  * One writer thread owns the only write connection. Every mutating method becomes an
    operation (an `Op`: a function of a `Tx`) put on the writer's queue. The writer
    takes all queued operations at once (`batches.next_batch`), runs them in ONE
    transaction, each inside its own SAVEPOINT (a failing operation is rolled back alone
    and fails alone), commits (WAL + synchronous=FULL: one fsync for the whole batch:
    group commit), unlinks message files whose last row went, then hands results and
    change events back to the event loop with one `call_soon_threadsafe`, in commit
    order.
  * A batch of only flag changes, expunges and queue claims (`Op.durable` false)
    commits with synchronous=NORMAL and is answered at once; the files its removals free
    go to `held_files.HeldFiles`, which removes them once an fsync of the WAL makes the
    removal durable (the next synchronous batch's, or its own off this thread's path).
  * At start the writer configures and migrates the schema, moves an older text index
    into search.db and sweeps it, prepares the blob directory and collects orphan
    files; then it starts the `checkpointer.Checkpointer` (WAL checkpoints run there,
    never inside its commits) and stops it when it ends.
  * The text SEARCH needs rides in the operation (`Op.text`): inserted into
    ``text_pending`` inside the operation's savepoint, so a delivery waits for one fsync
    (this commit), not also for search.db's; after the commit the rows go to the text
    index thread (`text_index.TextIndex.index_committed`), which copies them into
    search.db and then asks this writer to delete them (`forget_pending`, an internal
    operation nobody waits for).
  * Several processes may write one data directory (`[server] workers`, the CLI beside
    a server): every write transaction, and the start-up work, runs under an exclusive
    `file_lock.FileLock` on ``pillarbox.db.lock``, taken in this thread (blocking, never
    SQLite's busy polling). With a `store.api.StampingBus` the writer stamps each
    committed operation's changes after COMMIT and before releasing that lock, so the
    stamps of all processes ascend in commit order (`Done.stamp`).

Must not: run on the event loop, resolve a future itself (results go back to the loop
through `complete`), or let a sqlite3 exception reach a caller (`errors.map_error`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pillarbox.model import Change
from pillarbox.store.sqlite import schema, search, text_index
from pillarbox.store.sqlite.batches import next_batch
from pillarbox.store.sqlite.blobs import BlobFiles
from pillarbox.store.sqlite.checkpointer import Checkpointer
from pillarbox.store.sqlite.errors import map_error
from pillarbox.store.sqlite.file_lock import FileLock
from pillarbox.store.sqlite.held_files import HeldFiles
from pillarbox.store.sqlite.text_index import TextRow

MAX_BATCH = 512  # operations per group commit


@dataclass(slots=True)
class Tx:
    """What an operation sees inside the writer: the connection and its side effects,
    which are kept only if the operation's savepoint is released."""

    conn: sqlite3.Connection
    changes: list[Change] = field(default_factory=list)
    unlink: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Op:
    fn: Callable[[Tx], Any]
    # None for the writer's own operations (`Writer.forget_pending`): nobody waits.
    future: asyncio.Future[Any] | None
    loop: asyncio.AbstractEventLoop | None
    # False for flag changes, expunges and queue claims: acknowledged once committed,
    # durable with the next fsync of the WAL (see `Writer._run_batch`). Everything else,
    # a queue outcome above all (it stops a second send), is synchronous.
    durable: bool = True
    # Texts to index for SEARCH (one row per blob), written to `text_pending` in the
    # operation's savepoint once `fn` succeeded.
    text: list[TextRow] = field(default_factory=list)


@dataclass(slots=True)
class Done:
    future: asyncio.Future[Any] | None
    result: Any = None
    error: BaseException | None = None
    changes: list[Change] = field(default_factory=list)
    # The StampingBus's number for `changes` (None: no such bus, or it failed to stamp).
    stamp: int | None = None


def lock_path(db_path: Path) -> Path:
    """The lock file every writer of `db_path`, in any process, holds while writing."""
    return db_path.with_name(db_path.name + ".lock")


class Writer(threading.Thread):
    """Owns the write connection; drains the queue in group-committed batches."""

    def __init__(
        self,
        db_path: Path,
        blobs: BlobFiles,
        complete: Callable[[list[Done]], None],
        forget_text: Callable[[list[int]], None],
        *,
        collect_orphans: bool = True,
        stamp: Callable[[list[Change]], int] | None = None,
        index_text: Callable[[list[TextRow]], None] | None = None,
    ) -> None:
        """`stamp`: a `StampingBus.stamp`, called under the lock after each COMMIT for
        every committed operation with changes. `index_text`: handed the committed
        `Op.text` rows after each commit (the text index thread)."""
        super().__init__(name="pillarbox-sqlite-writer", daemon=True)
        self._db_path = db_path
        self._blobs = blobs
        self._complete = complete
        self._forget_text = forget_text
        self._collect_orphans = collect_orphans
        self._stamp = stamp
        self._index_text = index_text
        self._lock = FileLock(lock_path(db_path))
        self._synchronous = "FULL"
        # Files of blobs removed by commits not yet fsynced: unlinked only once the
        # removal is durable, or a power loss could bring back rows without files.
        self.held = HeldFiles(Path(f"{db_path}-wal"), self._release)
        self._commits = 0  # committed batches, numbered for `held`
        self.queue: queue.SimpleQueue[Op | None] = queue.SimpleQueue()
        self.ready = threading.Event()
        self.startup_error: BaseException | None = None
        self.batches = 0  # for measurements: how many commits
        self.operations = 0
        self.checkpointer = Checkpointer(db_path)

    def run(self) -> None:
        try:
            conn = sqlite3.connect(self._db_path, isolation_level=None, check_same_thread=True)
        except BaseException as exc:
            self.startup_error = exc
            self.ready.set()
            return
        try:
            try:
                with self._lock:  # another process may be opening or writing too
                    schema.configure(conn, writer=True)
                    schema.migrate(conn)
                    # The sweep only where no other process writes: see move_and_sweep.
                    text_index.move_and_sweep(
                        conn, self._db_path.parent, sweep=self._collect_orphans
                    )
                    search.register_functions(conn)
                    self._blobs.prepare()
                    if self._collect_orphans:
                        self._blobs.collect_orphans(functools.partial(_known_blobs, conn))
                conn.execute("PRAGMA wal_autocheckpoint = 0")  # see `Checkpointer`
                self.checkpointer.start()
                self.held.start()
            except BaseException as exc:
                self.startup_error = exc
                self.ready.set()
                return
            self.ready.set()
            self._serve(conn)
        finally:
            if self.held.is_alive():
                # Before the connection closes (the last close may remove the WAL):
                # the last held files are synced and removed.
                self.held.stop()
                self.held.join()
            if self.checkpointer.is_alive():
                self.checkpointer.stop()
                self.checkpointer.join()
            conn.close()
            self._lock.close()

    def _serve(self, conn: sqlite3.Connection) -> None:
        stopping = False
        while not stopping:
            batch, stopping = next_batch(self.queue, MAX_BATCH)
            if batch:
                self._run_batch(conn, batch)

    def _run_batch(self, conn: sqlite3.Connection, batch: list[Op]) -> None:
        done = [Done(op.future) for op in batch]
        unlink: list[int] = []
        # A batch of only flag changes and expunges commits without an fsync, as Dovecot
        # does by default (mail_fsync=optimized); any delivery or append in it makes the
        # commit synchronous, and that fsync also covers every earlier commit (the WAL is
        # one file, written in order). A power loss can so undo a recent flag change or
        # expunge, never a message: message files are synced before their row commits.
        synchronous = "FULL" if any(op.durable for op in batch) else "NORMAL"
        try:
            if synchronous != self._synchronous:
                conn.execute(f"PRAGMA synchronous = {synchronous}")
                self._synchronous = synchronous
            self._lock.acquire()
        except (sqlite3.Error, OSError) as exc:
            for d in done:
                d.error = map_error(exc)
            self._hand_back(batch, done)
            return
        try:
            committed = self._transaction(conn, batch, done, unlink)
        finally:
            self._lock.release()
        self.checkpointer.wake()
        self.batches += 1
        self.operations += len(batch)
        if committed:
            self._commits += 1
            if synchronous == "FULL":
                # This commit's fsync made every earlier commit durable too (the WAL is
                # written in order): its own files go now, the held ones with them. Not
                # after a failed COMMIT: no fsync happened.
                self.held.durable(self._commits)
                if unlink:
                    self._release(unlink)
            elif unlink:
                # Answered without waiting for an fsync (issue 18: one per EXPUNGE,
                # which every STORE queued behind it waited for too); the files go
                # once a sync covers this commit.
                self.held.hold(self._commits, unlink)
        if committed and self._index_text is not None:
            texts = [
                row for op, d in zip(batch, done, strict=True) if d.error is None for row in op.text
            ]
            if texts:
                self._index_text(texts)
        self._hand_back(batch, done)

    def forget_pending(self, blob_ids: list[int]) -> None:
        """From any thread: delete these `text_pending` rows (search.db has them now) in
        the next batch. Not durable: a row that comes back after a crash is indexed
        again (the same text)."""

        def op(tx: Tx) -> None:
            tx.conn.execute(
                "DELETE FROM text_pending WHERE blob_id IN (SELECT value FROM json_each(?))",
                (json.dumps(blob_ids),),
            )

        if blob_ids:
            self.queue.put(Op(op, None, None, durable=False))

    def _transaction(
        self, conn: sqlite3.Connection, batch: list[Op], done: list[Done], unlink: list[int]
    ) -> bool:
        """Under the write lock: BEGIN IMMEDIATE, each op in its savepoint, COMMIT, the
        stamps. Fills `done` and `unlink`; returns whether the transaction committed."""
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            for d in done:
                d.error = map_error(exc)
            return False
        if len(batch) == 1:
            # Alone in its transaction, an operation needs no savepoint: a failure rolls
            # the transaction back. Two statements fewer, each a release and re-take of
            # the GIL, which under load waits for the event loop's thread.
            return self._alone(conn, batch[0], done[0], unlink)
        for op, d in zip(batch, done, strict=True):
            tx = Tx(conn)
            try:
                conn.execute("SAVEPOINT op")
                try:
                    d.result = op.fn(tx)
                    if op.text:
                        _insert_pending(conn, op.text)
                except BaseException:
                    conn.execute("ROLLBACK TO op")
                    raise
                finally:
                    conn.execute("RELEASE op")
            except Exception as exc:
                d.error = map_error(exc)
                continue
            d.changes = tx.changes
            unlink.extend(tx.unlink)
        return self._commit(conn, done, unlink)

    def _alone(self, conn: sqlite3.Connection, op: Op, d: Done, unlink: list[int]) -> bool:
        """`_transaction` for a batch of one operation (inside BEGIN IMMEDIATE)."""
        tx = Tx(conn)
        try:
            d.result = op.fn(tx)
            if op.text:
                _insert_pending(conn, op.text)
        except Exception as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            d.error, d.result = map_error(exc), None
            return False
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        d.changes = tx.changes
        unlink.extend(tx.unlink)
        return self._commit(conn, [d], unlink)

    def _commit(self, conn: sqlite3.Connection, done: list[Done], unlink: list[int]) -> bool:
        """COMMIT, then the stamps (still under the lock); on failure every op fails."""
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            failure = map_error(exc)
            for d in done:
                d.error, d.result, d.changes = failure, None, []
            unlink.clear()
            return False
        if self._stamp is not None:
            # Still under the lock: no other process commits before these are numbered.
            for d in done:
                if d.changes:
                    try:
                        d.stamp = self._stamp(d.changes)
                    except Exception:  # published unstamped (locally only) instead
                        d.stamp = None
        return True

    def _release(self, blob_ids: list[int]) -> None:
        """Remove the files (and index rows) of blobs whose removal is durable."""
        self._blobs.unlink(blob_ids)
        self._forget_text(blob_ids)

    def _hand_back(self, batch: list[Op], done: list[Done]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[Done]] = {}
        for op, d in zip(batch, done, strict=True):
            if op.loop is not None:
                by_loop.setdefault(op.loop, []).append(d)
        for loop, items in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop was closed under us
                loop.call_soon_threadsafe(self._complete, items)


def _insert_pending(conn: sqlite3.Connection, rows: list[TextRow]) -> None:
    # OR REPLACE: a blob delivered again (its row kept) brings the same text.
    conn.executemany(
        "INSERT OR REPLACE INTO text_pending (blob_id, headers, body_text) VALUES (?, ?, ?)", rows
    )


def _known_blobs(conn: sqlite3.Connection, lo: int, hi: int) -> set[int]:
    rows = conn.execute("SELECT id FROM blobs WHERE id BETWEEN ? AND ?", (lo, hi))
    return {row[0] for row in rows}
