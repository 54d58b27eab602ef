"""The substring-search index in a file of its own (``search.db``), with its own writer.

Why a second file: FTS5 trigram indexing costs a delivery about as much as everything
else the store does for it, and SQLite has one writer per file. With the index in its own
file and thread, indexing one batch overlaps with committing the next batch of messages
in ``pillarbox.db`` (on another core: SQLite runs without the GIL), instead of
lengthening every message commit.

Order, so that SEARCH never misses a stored message, with one fsync per delivery (issue
18): a message's text is inserted into ``text_pending`` in ``pillarbox.db`` in the same
transaction as its row (`writer.Op.text`). After that commit the writer hands the rows to
this thread (`index_committed`), which commits them here (several at once, `GATHER`;
synchronous=NORMAL) and, once an fsync of search.db's WAL covers them (one per
`SYNC_INTERVAL` at most), has the writer delete them from ``text_pending``
(`writer.Writer.forget_pending`). A text is so always in ``text_pending`` or in
search.db (durably) or both, and SEARCH reads both (`search`): it reads
``pillarbox.db`` first, and a row missing from that snapshot's ``text_pending`` was in
search.db before that snapshot began. At start the thread
indexes whatever ``text_pending`` holds (a crash, another process that died). Rows of
removed blobs are forgotten after the commit that removed them (their ``text_pending``
rows go with the blob row, ON DELETE CASCADE); a crash in between leaves harmless index
rows (every search joins on ``messages``), swept by `move_and_sweep` at the next open.

Several processes (`[server] workers`, the CLI) may each run a `TextIndex` on one
``search.db``: every write transaction of this file (each thread's commits, and the
writer's `move_and_sweep` at open) holds an exclusive `file_lock.FileLock` on
``search.db.lock``, taken blocking in the writing thread, so the processes never meet
in SQLite's busy handler. The order of locks is ``pillarbox.db.lock`` first, then
``search.db.lock`` (only `move_and_sweep` holds both).

Readers ATTACH this file as ``text``: the unqualified name ``blob_text`` in the search
SQL resolves to it (``pillarbox.db`` no longer has a table of that name).

Must not: write ``pillarbox.db`` (but for `move_and_sweep`, on the store writer's
connection at open; `text_pending` rows go through the writer), or block the event loop.
"""

from __future__ import annotations

import contextlib
import json
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pillarbox.store.sqlite.batches import next_batch
from pillarbox.store.sqlite.file_lock import FileLock
from pillarbox.store.sqlite.held_files import sync_file

TEXT_DB_NAME = "search.db"
ATTACH_AS = "text"
MAX_BATCH = 1024  # add/forget requests per commit
# How long the first request of a commit waits for others to share it. FTS5 writes a
# segment per transaction and merges them later: one row per commit cost 0.8 ms of CPU
# per 4 KB message, sixteen 0.32 ms (measured; SEARCH does not wait for the index).
GATHER = 0.05
# search.db commits with synchronous=NORMAL; its WAL is fsynced at most this long after
# a commit (sooner past MAX_UNSYNCED rows, and at stop), and only then are the rows
# deleted from text_pending: a text is always durably in one of the two.
SYNC_INTERVAL = 0.5
MAX_UNSYNCED = 4096

# RFC 9051 §6.4.4: SEARCH TEXT/BODY match substrings, case-insensitively. Trigrams
# without positions (detail=none): a third of the size of detail=full; a search asks
# the index for rows holding every trigram and checks the string against the text.
_CREATE = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS {schema}.blob_text USING fts5("
    "headers, body_text, tokenize = 'trigram case_sensitive 0', detail = none)"
)

TextRow = tuple[int, str, str]  # (blob id, header text, casefolded body text)

# search.db's user_version: 1 = `body_text` holds the body's str.casefold(), so SEARCH
# BODY is a plain substring test of the casefolded needle (RFC 9051 §6.4.4), the same
# test the PostgreSQL backend makes on its `body_cf` column: both backends find "ss" in
# "Größe". Version 0 indexes are converted once at open (`move_and_sweep`).
TEXT_VERSION = 1


@dataclass(frozen=True, slots=True)
class _Request:
    """Committed rows to index (from `text_pending`), or blob ids to forget."""

    rows: list[TextRow]
    forget: list[int]


def lock_path(data_dir: Path) -> Path:
    """The lock file every writer of search.db, in any process, holds while writing."""
    return data_dir / (TEXT_DB_NAME + ".lock")


def configure(conn: sqlite3.Connection) -> None:
    """The index thread's connection. synchronous=NORMAL: a commit here needs no fsync
    of its own, because `text_pending` keeps each text until `TextIndex` has fsynced
    the WAL after indexing it; what a power loss takes from search.db is indexed again
    from `text_pending` at the next open (`TextIndex._leftover`)."""
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA journal_mode = WAL")


def attach(conn: sqlite3.Connection, data_dir: Path) -> None:
    """Make the index visible to a reader (or the writer at open) as `ATTACH_AS`."""
    conn.execute(f"ATTACH DATABASE ? AS {ATTACH_AS}", (str(data_dir / TEXT_DB_NAME),))


def move_and_sweep(conn: sqlite3.Connection, data_dir: Path, *, sweep: bool = True) -> None:
    """At open, on the store writer's connection, under its write lock.

    Moves the index out of ``pillarbox.db`` where earlier versions kept it (copy, then
    drop in a second transaction, so a crash in between only repeats the copy), and,
    with `sweep`, drops index rows whose blob has no row (a crash between the two
    commits). Only a store that collects orphans sweeps (the server's master, or the
    only process): with other processes writing, a row indexed for a blob whose row was
    committed after this sweep's snapshot of ``blobs`` would be dropped."""
    with FileLock(lock_path(data_dir)) as lock:
        try:
            _move_and_sweep(conn, data_dir, sweep=sweep)
        finally:
            lock.close()


def _move_and_sweep(conn: sqlite3.Connection, data_dir: Path, *, sweep: bool) -> None:
    attach(conn, data_dir)
    try:
        conn.execute(f"PRAGMA {ATTACH_AS}.journal_mode = WAL")
        conn.execute(_CREATE.format(schema=ATTACH_AS))
        old = conn.execute(
            "SELECT 1 FROM main.sqlite_master WHERE name = 'blob_text' AND type = 'table'"
        ).fetchone()
        if old is not None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(f"DELETE FROM {ATTACH_AS}.blob_text")
                conn.execute(
                    f"INSERT INTO {ATTACH_AS}.blob_text (rowid, headers, body_text)"
                    " SELECT rowid, headers, body_text FROM main.blob_text"
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("DROP TABLE main.blob_text")
        if sweep:
            conn.execute(
                f"DELETE FROM {ATTACH_AS}.blob_text WHERE rowid NOT IN (SELECT id FROM main.blobs)"
            )
        _casefold_bodies(conn)
    finally:
        conn.execute(f"DETACH DATABASE {ATTACH_AS}")


def _casefold_bodies(conn: sqlite3.Connection) -> None:
    """Bring an index of version 0 (bodies as written) to TEXT_VERSION: one pass over
    every row, once; an empty index only gets its version."""
    version = int(conn.execute(f"PRAGMA {ATTACH_AS}.user_version").fetchone()[0])
    if version >= TEXT_VERSION:
        return
    conn.create_function("pb_casefold", 1, _casefold, deterministic=True)
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(f"UPDATE {ATTACH_AS}.blob_text SET body_text = pb_casefold(body_text)")
        conn.execute(f"PRAGMA {ATTACH_AS}.user_version = {TEXT_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _casefold(text: str | None) -> str | None:
    return None if text is None else text.casefold()


class TextIndex(threading.Thread):
    """Owns the write connection of ``search.db``; group-commits indexing and forgetting.

    `indexed` is told the blob ids whose text is durably here (the writer then deletes
    their `text_pending` rows)."""

    def __init__(self, data_dir: Path, db_path: Path | None = None) -> None:
        super().__init__(name="pillarbox-text-index", daemon=True)
        self._path = data_dir / TEXT_DB_NAME
        self._db_path = db_path  # pillarbox.db, read at start for leftover pending rows
        self._lock = FileLock(lock_path(data_dir))
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self.ready = threading.Event()
        self.startup_error: BaseException | None = None
        self.indexed: Callable[[list[int]], None] | None = None
        self.batches = 0  # for measurements

    def index_committed(self, rows: Sequence[TextRow]) -> None:
        """Index rows already committed in ``text_pending`` (from the writer thread)."""
        if rows:
            self._queue.put(_Request(list(rows), []))

    def forget(self, blob_ids: Sequence[int]) -> None:
        """Drop the rows of removed blobs, in the background (from any thread)."""
        if blob_ids:
            self._queue.put(_Request([], list(blob_ids)))

    def stop(self) -> None:
        self._queue.put(None)

    def run(self) -> None:
        try:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=True)
            with self._lock:
                configure(conn)
                conn.execute(_CREATE.format(schema="main"))
                # Merge 8 segments of a level at a time, not 4: half the rewriting of
                # the index as it grows (-28% CPU per row over 20,000 rows, searches as
                # fast).
                conn.execute("INSERT INTO blob_text (blob_text, rank) VALUES ('automerge', 8)")
        except BaseException as exc:
            self.startup_error = exc
            self._lock.close()
            self.ready.set()
            return
        self.ready.set()
        try:
            leftover = self._leftover()
            self._serve(conn, [_Request(leftover, [])] if leftover else [])
        finally:
            conn.close()
            self._lock.close()

    def _serve(self, conn: sqlite3.Connection, first: list[_Request]) -> None:
        """Commit gathered requests; fsync and report the indexed ids in arrears."""
        unsynced: list[int] = []  # indexed in commits not yet fsynced
        sync_due = 0.0
        batch, stopping = first, False
        while True:
            if batch:
                indexed = self._commit(conn, batch)
                if indexed:
                    if not unsynced:
                        sync_due = time.monotonic() + SYNC_INTERVAL
                    unsynced += indexed
            if unsynced and (
                stopping or len(unsynced) >= MAX_UNSYNCED or time.monotonic() >= sync_due
            ):
                # A failed sync: the rows stay in text_pending (SEARCH reads them there)
                # and are indexed again at the next open.
                if self._sync() and self.indexed is not None:
                    self.indexed(unsynced)
                unsynced = []
            if stopping:
                return
            batch, stopping = self._gather(sync_due - time.monotonic() if unsynced else None)

    def _gather(self, timeout: float | None) -> tuple[list[_Request], bool]:
        """Wait (at most `timeout`, None: for ever) for a request, then up to `GATHER`
        for more to share its commit. Returns (requests, stop)."""
        return next_batch(self._queue, MAX_BATCH, wait=timeout, gather=GATHER)

    def _sync(self) -> bool:
        """fsync search.db's WAL: every commit so far is durable."""
        return sync_file(f"{self._path}-wal")

    def _leftover(self) -> list[TextRow]:
        """What ``text_pending`` holds at start: a crash before it was indexed, or a
        process that died. Read-only; nothing here if the table is not there."""
        if self._db_path is None:
            return []
        try:
            reader = sqlite3.connect(self._db_path, isolation_level=None)
            try:
                reader.execute("PRAGMA busy_timeout = 5000")
                return [
                    (int(r[0]), str(r[1]), str(r[2]))
                    for r in reader.execute("SELECT blob_id, headers, body_text FROM text_pending")
                ]
            finally:
                reader.close()
        except sqlite3.Error:
            return []  # SEARCH still reads them from text_pending

    def _commit(self, conn: sqlite3.Connection, batch: list[_Request]) -> list[int]:
        """One transaction for `batch`; returns the blob ids indexed (not yet synced)."""
        # In queue order: the last request about a blob decides (indexed, or forgotten).
        latest: dict[int, TextRow | None] = {}
        pending: list[int] = []
        for item in batch:
            for row in item.rows:
                latest[row[0]] = row
                pending.append(row[0])
            for blob_id in item.forget:
                latest[blob_id] = None
        rows = [row for row in latest.values() if row is not None]
        try:
            with self._lock:
                self._write(conn, list(latest), rows)
        except (sqlite3.Error, OSError):
            # Not indexed: the rows stay in text_pending, where SEARCH finds them, and
            # are indexed at the next start. Forgotten ids stay as harmless rows.
            return []
        finally:
            self.batches += 1
        return pending

    def _write(self, conn: sqlite3.Connection, stale: list[int], rows: list[TextRow]) -> None:
        """One write transaction of search.db (under its lock)."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            # One statement each (rows as one JSON parameter): every statement
            # releases and re-takes the GIL, which is slow while the loop is busy.
            conn.execute(
                "DELETE FROM blob_text WHERE rowid IN (SELECT value FROM json_each(?))",
                (json.dumps(stale),),
            )
            if rows:
                conn.execute(
                    "INSERT INTO blob_text (rowid, headers, body_text)"
                    " SELECT r.value ->> 0, r.value ->> 1, r.value ->> 2"
                    " FROM json_each(?) AS r",
                    (json.dumps(rows, ensure_ascii=False),),
                )
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise


__all__ = ["ATTACH_AS", "TEXT_DB_NAME", "TextIndex", "TextRow", "attach", "move_and_sweep"]
