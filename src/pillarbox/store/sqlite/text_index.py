"""The substring-search index in a file of its own (``search.db``), with its own writer.

Why a second file: FTS5 trigram indexing costs a delivery about as much as everything
else the store does for it, and SQLite has one writer per file. With the index in its own
file and thread, indexing one batch overlaps with committing the next batch of messages
in ``pillarbox.db`` (on another core: SQLite runs without the GIL), instead of
lengthening every message commit.

Order, so that SEARCH never misses a stored message: a message's text is committed here
(synchronous=FULL) *before* its row is committed in ``pillarbox.db``: `SqliteStore`
awaits `TextIndex.add` first. A crash between the two leaves an index row for a blob that
has no row: harmless, since every search joins on ``messages``, and swept by
`move_and_sweep` at the next open. Rows of removed blobs are forgotten after the commit
that removed them (a crash in between leaves more such harmless rows).

Several processes (`[server] workers`, the CLI) may each run a `TextIndex` on one
``search.db``: every write transaction of this file (each thread's commits, and the
writer's `move_and_sweep` at open) holds an exclusive `file_lock.FileLock` on
``search.db.lock``, taken blocking in the writing thread, so the processes never meet
in SQLite's busy handler. The order of locks is ``pillarbox.db.lock`` first, then
``search.db.lock`` (only `move_and_sweep` holds both).

Readers ATTACH this file as ``text``: the unqualified name ``blob_text`` in the search
SQL resolves to it (``pillarbox.db`` no longer has a table of that name).

Must not: touch ``pillarbox.db`` (but for `move_and_sweep`, on the store writer's
connection at open), or block the event loop (`add` waits on a future).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pillarbox.store.sqlite.batches import next_batch
from pillarbox.store.sqlite.file_lock import FileLock

TEXT_DB_NAME = "search.db"
ATTACH_AS = "text"
MAX_BATCH = 1024  # add/forget requests per commit

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
    """Rows to index (with the caller's future), or blob ids to forget (no one waits)."""

    rows: list[TextRow]
    forget: list[int]
    future: asyncio.Future[None] | None = None
    loop: asyncio.AbstractEventLoop | None = None


def lock_path(data_dir: Path) -> Path:
    """The lock file every writer of search.db, in any process, holds while writing."""
    return data_dir / (TEXT_DB_NAME + ".lock")


def configure(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA synchronous = FULL")
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
    """Owns the write connection of ``search.db``; group-commits adds and forgets."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(name="pillarbox-text-index", daemon=True)
        self._path = data_dir / TEXT_DB_NAME
        self._lock = FileLock(lock_path(data_dir))
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self.ready = threading.Event()
        self.startup_error: BaseException | None = None
        self.batches = 0  # for measurements

    async def add(self, rows: Sequence[TextRow]) -> None:
        """Index these texts durably (replacing any older row of the same blob)."""
        listed = list(rows)
        if not listed:
            return
        for _, headers, body in listed:
            # Text SQLite cannot take (a lone surrogate) fails this caller alone, here,
            # rather than the whole batch it would share.
            headers.encode()
            body.encode()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queue.put(_Request(listed, [], future, loop))
        await future

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
            stopping = False
            while not stopping:
                batch, stopping = next_batch(self._queue, MAX_BATCH)
                if batch:
                    self._commit(conn, batch)
        finally:
            conn.close()
            self._lock.close()

    def _commit(self, conn: sqlite3.Connection, batch: list[_Request]) -> None:
        # One row per blob: the same blob may come in several requests (COPY-like appends).
        rows = list({row[0]: row for item in batch for row in item.rows}.values())
        gone = [i for item in batch for i in item.forget]
        error: BaseException | None = None
        try:
            self._lock.acquire()
        except OSError as exc:
            error = exc
        else:
            try:
                self._write(conn, rows, gone)
            except Exception as exc:
                error = exc
            finally:
                self._lock.release()
        self.batches += 1
        for item in batch:
            if item.future is not None and item.loop is not None:
                with contextlib.suppress(RuntimeError):  # the loop was closed under us
                    item.loop.call_soon_threadsafe(_settle, item.future, error)

    def _write(self, conn: sqlite3.Connection, rows: list[TextRow], gone: list[int]) -> None:
        """One write transaction of search.db (under its lock)."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            # One statement each (rows as one JSON parameter): every statement
            # releases and re-takes the GIL, which is slow while the loop is busy.
            stale = gone + [row[0] for row in rows]
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


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


__all__ = ["ATTACH_AS", "TEXT_DB_NAME", "TextIndex", "TextRow", "attach", "move_and_sweep"]
