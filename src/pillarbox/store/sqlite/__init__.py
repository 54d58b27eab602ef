"""`SqliteStore`: the embedded default backend of `store.api.Store`.

Theory of operation:
  * One writer thread owns the only write connection. Every mutating method becomes an
    operation (a function of a `_Tx`) put on the writer's queue. The writer takes all
    queued operations at once, runs them in ONE transaction, each inside its own
    SAVEPOINT (a failing operation is rolled back alone and fails alone), commits
    (WAL + synchronous=FULL: one fsync for the whole batch: group commit), unlinks
    message files whose last row went, then hands results and change events back to
    the event loop with one `call_soon_threadsafe`, in commit order.
  * WAL checkpoints (copying committed pages back into the database file, and its
    fsync) run in a `_Checkpointer` thread on a connection of its own, started and
    stopped by the writer, so the writer's commits never pay for them.
  * Readers are a small pool of threads, each with its own connection; in WAL mode a
    reader works on a snapshot and never waits for the writer.
  * Message bytes live in files (`blobs.BlobFiles`); a row refers to a file only once
    the file is durable, and a file with no row is removed when the store opens.
  * Everything derived from the message bytes (size, precomputed IMAP bytes, search
    columns, FTS text) is stored once per blob, so COPY shares it along with the file.

Must not: block the event loop (sqlite and file calls happen in threads), let a sqlite3
exception escape (they become `store.errors`), or know about protocols and sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar, cast

from pillarbox.model import (
    DEFAULT_MAILBOXES,
    HIERARCHY_SEPARATOR,
    SYSTEM_FLAGS,
    Account,
    Alias,
    AppendResult,
    Change,
    CopyResult,
    Domain,
    FlagMode,
    FlagRow,
    FlagsChanged,
    Mailbox,
    MailboxesChanged,
    MailboxStatus,
    MessageInfo,
    MessageMeta,
    MessagesAdded,
    MessagesExpunged,
    PopOnRetrieve,
    PopScope,
    QueuedMessage,
    QueuedRecipient,
    SearchKey,
    StoreFlagsResult,
    canonical_flag,
)
from pillarbox.rules import quota as quota_rules
from pillarbox.rules.uidvalidity import next_uidvalidity
from pillarbox.store.api import BlobHandle, ChangeBus, Delivery
from pillarbox.store.changes import InProcessChangeBus
from pillarbox.store.errors import (
    AlreadyExists,
    Conflict,
    NotFound,
    QuotaExceeded,
    StoreError,
    StoreUnavailable,
)
from pillarbox.store.sqlite import schema as sqlite_schema
from pillarbox.store.sqlite import search as sqlite_search
from pillarbox.store.sqlite import text_index as sqlite_text
from pillarbox.store.sqlite.batches import next_batch
from pillarbox.store.sqlite.blobs import BlobFiles, BlobFileWriter, FileBlobReader

T = TypeVar("T")

DB_NAME = "pillarbox.db"
BLOB_DIR = "blobs"
MAX_BATCH = 512  # operations per group commit
MAX_HELD = 4096  # removed blobs whose files wait for an fsync of the WAL
READERS = 4
IO_THREADS = 8  # blob writes fsync in parallel; more did not help on a 2-core VM
READ_THREADS = 4  # blob reads (POP3 RETR, delivery copies): short page-cache reads
CHECKPOINT_INTERVAL = 0.25  # seconds between background WAL checkpoints under load

_FLAG_BITS = sqlite_search.FLAG_BITS
_DELETED = _FLAG_BITS["\\Deleted"]
_SEEN = _FLAG_BITS["\\Seen"]


# --- small value helpers -------------------------------------------------------------


def _split_flags(flags: Iterable[str]) -> tuple[int, dict[str, str]]:
    """System flags as a bitmask, keywords as {casefolded: spelling}.

    Unknown backslash flags (such as the obsolete \\Recent) cannot be stored: dropped.
    """
    bits = 0
    keywords: dict[str, str] = {}
    for raw in flags:
        flag = canonical_flag(raw)
        bit = _FLAG_BITS.get(flag)
        if bit is not None:
            bits |= bit
        elif flag and not flag.startswith("\\"):
            keywords.setdefault(flag.lower(), flag)
    return bits, keywords


# Every system-flag combination, built once: a 100,000-row FLAGS fetch then creates no
# sets for messages without keywords.
_SYSTEM_SETS: tuple[frozenset[str], ...] = tuple(
    frozenset(flag for flag, bit in _FLAG_BITS.items() if bits & bit)
    for bits in range(1 << len(SYSTEM_FLAGS))
)


def _flag_set(bits: int, keywords: Iterable[str] = ()) -> frozenset[str]:
    base = _SYSTEM_SETS[bits & ((1 << len(SYSTEM_FLAGS)) - 1)]
    return base.union(keywords) if keywords else base


def _ranges(uids: Iterable[int]) -> list[list[int]]:
    """Sorted, merged inclusive UID ranges: the unit every UID-list query takes."""
    result: list[list[int]] = []
    for uid in sorted(set(uids)):
        if result and uid == result[-1][1] + 1:
            result[-1][1] = uid
        else:
            result.append([uid, uid])
    return result


def _ranges_json(uids: Iterable[int]) -> str:
    return json.dumps(_ranges(uids), separators=(",", ":"))


def _uid_list_json(uids: Iterable[int]) -> str:
    return json.dumps(sorted(set(uids)), separators=(",", ":"))


def _to_epoch(when: datetime) -> tuple[int, int]:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    offset = when.utcoffset() or timedelta(0)
    return int(when.timestamp()), int(offset.total_seconds() // 60)


def _from_epoch(epoch: int, tz_minutes: int) -> datetime:
    return datetime.fromtimestamp(epoch, timezone(timedelta(minutes=tz_minutes)))


def _domain_of(address: str) -> str:
    """The domain of a canonical address or "@domain" (the store does not normalise)."""
    return address.rpartition("@")[2]


def _map_error(exc: BaseException) -> BaseException:
    """sqlite3 exceptions become store errors; everything else passes unchanged."""
    if isinstance(exc, sqlite3.IntegrityError):
        text = str(exc)
        if "UNIQUE" in text or "PRIMARY KEY" in text:
            return AlreadyExists(text)
        return Conflict(text)
    if isinstance(exc, sqlite3.DatabaseError):  # locked, busy, disk I/O, full, corrupt
        return StoreUnavailable(str(exc))
    if isinstance(exc, OSError):
        return StoreUnavailable(str(exc))
    return exc


# --- the writer ----------------------------------------------------------------------


@dataclass(slots=True)
class _Tx:
    """What an operation sees inside the writer: the connection and its side effects,
    which are kept only if the operation's savepoint is released."""

    conn: sqlite3.Connection
    changes: list[Change] = field(default_factory=list)
    unlink: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _Op:
    fn: Callable[[_Tx], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    # False for flag changes and expunges: acknowledged once committed, durable with the
    # next fsync of the WAL (see `_Writer._run_batch`).
    durable: bool = True


@dataclass(slots=True)
class _Done:
    future: asyncio.Future[Any]
    result: Any = None
    error: BaseException | None = None
    changes: list[Change] = field(default_factory=list)


class _Checkpointer(threading.Thread):
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
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def run(self) -> None:
        conn = sqlite3.connect(self._db_path, isolation_level=None, check_same_thread=True)
        try:
            sqlite_schema.configure(conn, writer=False)
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


class _Writer(threading.Thread):
    """Owns the write connection; drains the queue in group-committed batches."""

    def __init__(
        self,
        db_path: Path,
        blobs: BlobFiles,
        complete: Callable[[list[_Done]], None],
        forget_text: Callable[[list[int]], None],
    ) -> None:
        super().__init__(name="pillarbox-sqlite-writer", daemon=True)
        self._db_path = db_path
        self._blobs = blobs
        self._complete = complete
        self._forget_text = forget_text
        self._synchronous = "FULL"
        # Files of blobs removed by commits not yet fsynced: unlinked only once the
        # removal is durable, or a power loss could bring back rows without files.
        self._held: list[int] = []
        self.queue: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self.ready = threading.Event()
        self.startup_error: BaseException | None = None
        self.batches = 0  # for measurements: how many commits
        self.operations = 0
        self.checkpointer = _Checkpointer(db_path)

    def run(self) -> None:
        try:
            conn = sqlite3.connect(self._db_path, isolation_level=None, check_same_thread=True)
        except BaseException as exc:
            self.startup_error = exc
            self.ready.set()
            return
        try:
            try:
                sqlite_schema.configure(conn, writer=True)
                sqlite_schema.migrate(conn)
                sqlite_text.move_and_sweep(conn, self._db_path.parent)
                sqlite_search.register_functions(conn)
                self._blobs.prepare()
                self._blobs.collect_orphans(functools.partial(_known_blobs, conn))
                conn.execute("PRAGMA wal_autocheckpoint = 0")  # see `_Checkpointer`
                self.checkpointer.start()
            except BaseException as exc:
                self.startup_error = exc
                self.ready.set()
                return
            self.ready.set()
            self._serve(conn)
        finally:
            if self.checkpointer.is_alive():
                self.checkpointer.stop()
                self.checkpointer.join()
            conn.close()

    def _serve(self, conn: sqlite3.Connection) -> None:
        stopping = False
        while not stopping:
            batch, stopping = next_batch(self.queue, MAX_BATCH)
            if batch:
                self._run_batch(conn, batch)
            # `_run_batch` already synced if the queue was empty; here: at stop, or when
            # a long run of non-durable batches has held back too many files.
            if self._held and (stopping or len(self._held) > MAX_HELD):
                self._sync_and_unlink()

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Op]) -> None:
        done = [_Done(op.future) for op in batch]
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
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            for d in done:
                d.error = _map_error(exc)
            self._hand_back(batch, done)
            return
        for op, d in zip(batch, done, strict=True):
            tx = _Tx(conn)
            try:
                conn.execute("SAVEPOINT op")
                try:
                    d.result = op.fn(tx)
                except BaseException:
                    conn.execute("ROLLBACK TO op")
                    raise
                finally:
                    conn.execute("RELEASE op")
            except Exception as exc:
                d.error = _map_error(exc)
                continue
            d.changes = tx.changes
            unlink.extend(tx.unlink)
        try:
            conn.execute("COMMIT")
            self.checkpointer.wake()
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            failure = _map_error(exc)
            for d in done:
                d.error, d.result, d.changes = failure, None, []
            unlink = []
        self.batches += 1
        self.operations += len(batch)
        if synchronous == "FULL":
            unlink = self._held + unlink
            self._held = []
        else:
            self._held += unlink
            unlink = []
            if self._held and self.queue.empty():
                # Nothing else to commit: make the removals durable now, so that the
                # files are gone when the caller hears back.
                self._sync_and_unlink()
        if unlink:
            self._blobs.unlink(unlink)
            self._forget_text(unlink)
        self._hand_back(batch, done)

    def _sync_and_unlink(self) -> None:
        """fsync the WAL (durable are all commits so far), then remove the held files."""
        held, self._held = self._held, []
        try:
            fd = os.open(f"{self._db_path}-wal", os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            # Not known to be durable: keep the files (collected as orphans at the next
            # open if their rows are indeed gone).
            return
        self._blobs.unlink(held)
        self._forget_text(held)

    def _hand_back(self, batch: list[_Op], done: list[_Done]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Done]] = {}
        for op, d in zip(batch, done, strict=True):
            by_loop.setdefault(op.loop, []).append(d)
        for loop, items in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop was closed under us
                loop.call_soon_threadsafe(self._complete, items)


def _mailbox_status(conn: sqlite3.Connection, mailbox_id: int) -> tuple[MailboxStatus, int | None]:
    """The counters of STATUS/SELECT and the first unseen UID, in one pass over the rows."""
    box = conn.execute(
        "SELECT uidnext, uidvalidity, highestmodseq FROM mailboxes WHERE id = ?", (mailbox_id,)
    ).fetchone()
    if box is None:
        raise NotFound(f"no mailbox {mailbox_id}")
    messages, unseen, deleted, size, first_unseen = conn.execute(
        f"SELECT count(*), coalesce(sum((flags & {_SEEN}) = 0), 0),"
        f" coalesce(sum((flags & {_DELETED}) != 0), 0), coalesce(sum(size), 0),"
        f" min(CASE WHEN flags & {_SEEN} = 0 THEN uid END)"
        " FROM messages WHERE mailbox_id = ?",
        (mailbox_id,),
    ).fetchone()
    status = MailboxStatus(
        messages=messages,
        unseen=unseen,
        deleted=deleted,
        size=size,
        uidnext=box[0],
        uidvalidity=box[1],
        highestmodseq=box[2],
    )
    return status, first_unseen


def _known_blobs(conn: sqlite3.Connection, lo: int, hi: int) -> set[int]:
    rows = conn.execute("SELECT id FROM blobs WHERE id BETWEEN ? AND ?", (lo, hi))
    return {row[0] for row in rows}


# --- the readers ---------------------------------------------------------------------


_ReadJob = tuple[
    Callable[[sqlite3.Connection], Any], asyncio.Future[Any], asyncio.AbstractEventLoop
]


class _Readers:
    """Reader threads, each with its own connection; every job is one read transaction."""

    def __init__(self, db_path: Path, count: int) -> None:
        self._db_path = db_path  # search.db lies beside it and is attached too
        self.queue: queue.SimpleQueue[_ReadJob | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._run, name=f"pillarbox-sqlite-reader-{i}", daemon=True)
            for i in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        conn = sqlite3.connect(self._db_path, isolation_level=None, check_same_thread=True)
        try:
            sqlite_schema.configure(conn, writer=False)
            sqlite_text.attach(conn, self._db_path.parent)
            sqlite_search.register_functions(conn)
            while True:
                job = self.queue.get()
                if job is None:
                    return
                fn, future, loop = job
                result: Any = None
                error: BaseException | None = None
                try:
                    conn.execute("BEGIN")
                    try:
                        result = fn(conn)
                    finally:
                        conn.execute("COMMIT")
                except Exception as exc:
                    error = _map_error(exc)
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_resolve, future, result, error)
        finally:
            conn.close()

    def stop(self) -> None:
        for _ in self._threads:
            self.queue.put(None)

    def join(self) -> None:
        for thread in self._threads:
            thread.join()


def _resolve(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


# --- row decoding --------------------------------------------------------------------

_ACCOUNT_COLUMNS = (
    "id, address, domain_id, password_hash, quota_bytes, pop_on_retrieve, pop_scope, pop_min_uid"
)


def _account(row: Sequence[Any]) -> Account:
    return Account(
        id=row[0],
        address=row[1],
        domain_id=row[2],
        password_hash=row[3],
        quota_bytes=row[4],
        pop_on_retrieve=PopOnRetrieve(row[5]),
        pop_scope=PopScope(row[6]),
        pop_min_uid=row[7],
    )


_MAILBOX_SELECT = (
    "SELECT m.id, m.account_id, m.name, m.uidvalidity, m.uidnext, m.highestmodseq,"
    " m.special_use, EXISTS (SELECT 1 FROM subscriptions AS s"
    " WHERE s.account_id = m.account_id AND s.name = m.name) FROM mailboxes AS m"
)


def _mailbox(row: Sequence[Any]) -> Mailbox:
    return Mailbox(
        id=row[0],
        account_id=row[1],
        name=row[2],
        uidvalidity=row[3],
        uidnext=row[4],
        highestmodseq=row[5],
        special_use=row[6],
        subscribed=bool(row[7]),
    )


# Rows of a UID list: one indexed range scan per merged range, all in one statement.
_RANGE_JOIN = (
    "json_each(?) AS r CROSS JOIN messages AS m"
    " WHERE m.mailbox_id = ? AND m.uid BETWEEN r.value ->> 0 AND r.value ->> 1"
)
_FETCH_JOIN = (
    "json_each(?) AS r CROSS JOIN messages AS m JOIN blobs AS b ON b.id = m.blob_id"
    " WHERE m.mailbox_id = ? AND m.uid BETWEEN r.value ->> 0 AND r.value ->> 1"
)
_KEYWORD_RANGE_JOIN = (
    "json_each(?) AS r CROSS JOIN keywords AS k"
    " WHERE k.mailbox_id = ? AND k.uid BETWEEN r.value ->> 0 AND r.value ->> 1"
)


def _keywords_of(
    conn: sqlite3.Connection, mailbox_id: int, uids: Sequence[int] | None
) -> dict[int, list[str]]:
    if uids is None:
        rows = conn.execute("SELECT uid, keyword FROM keywords WHERE mailbox_id = ?", (mailbox_id,))
    else:
        rows = conn.execute(
            f"SELECT k.uid, k.keyword FROM {_KEYWORD_RANGE_JOIN}",
            (_ranges_json(uids), mailbox_id),
        )
    result: dict[int, list[str]] = {}
    for uid, keyword in rows:
        result.setdefault(uid, []).append(keyword)
    return result


def _flag_rows(
    conn: sqlite3.Connection, mailbox_id: int, uids: Sequence[int] | None
) -> list[tuple[int, int, int]]:
    """(uid, flag bits, modseq) of existing UIDs, ascending."""
    if uids is None:
        rows = conn.execute(
            "SELECT uid, flags, modseq FROM messages WHERE mailbox_id = ? ORDER BY uid",
            (mailbox_id,),
        ).fetchall()
    else:
        if not uids:
            return []
        rows = conn.execute(
            f"SELECT m.uid, m.flags, m.modseq FROM {_RANGE_JOIN}",
            (_ranges_json(uids), mailbox_id),
        ).fetchall()
    return cast(list[tuple[int, int, int]], rows)


# --- the store -----------------------------------------------------------------------


class SqliteStore:
    """The SQLite implementation of `store.api.Store` (see the module docstring)."""

    def __init__(self, data_dir: Path, *, bus: ChangeBus | None = None) -> None:
        """`bus` receives every committed change; without one (the CLI, which has no
        subscribers) the store keeps an in-process bus of its own."""
        self.data_dir = Path(data_dir)
        self.db_path = self.data_dir / DB_NAME
        self._given_bus = bus
        self._writer: _Writer | None = None
        self._readers: _Readers | None = None
        self._text: sqlite_text.TextIndex | None = None
        self._io: ThreadPoolExecutor | None = None
        self._read_io: ThreadPoolExecutor | None = None
        self._blobs: BlobFiles | None = None
        self._bus: ChangeBus = bus if bus is not None else InProcessChangeBus()

    @property
    def bus(self) -> ChangeBus:
        """Where this store publishes its changes."""
        return self._bus

    # --- lifecycle -------------------------------------------------------------------
    async def open(self) -> None:
        if self._writer is not None:
            return
        loop = asyncio.get_running_loop()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        io = ThreadPoolExecutor(IO_THREADS, thread_name_prefix="pillarbox-blob-io")
        blobs = BlobFiles(self.data_dir / BLOB_DIR, io)
        text = sqlite_text.TextIndex(self.data_dir)
        writer = _Writer(self.db_path, blobs, self._complete, text.forget)
        writer.start()
        await loop.run_in_executor(io, writer.ready.wait)
        if writer.startup_error is None:
            # After the writer: it moves an older index into search.db and sweeps it.
            text.start()
            await loop.run_in_executor(io, text.ready.wait)
        failure = writer.startup_error or text.startup_error
        if failure is not None:
            writer.queue.put(None)
            await loop.run_in_executor(io, writer.join)
            if text.is_alive():
                text.stop()
                await loop.run_in_executor(io, text.join)
            io.shutdown(wait=True)
            raise _map_error(failure)
        self._io, self._blobs, self._writer, self._text = io, blobs, writer, text
        self._read_io = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="pillarbox-blob-read")
        self._readers = _Readers(self.db_path, READERS)
        if self._given_bus is None:
            self._bus = InProcessChangeBus()  # a fresh one after a close

    async def close(self) -> None:
        writer, readers, io = self._writer, self._readers, self._io
        if writer is None or io is None:
            return
        text = self._text
        self._writer = None
        self._readers = None
        self._text = None
        loop = asyncio.get_running_loop()
        writer.queue.put(None)
        await loop.run_in_executor(io, writer.join)
        if text is not None:
            text.stop()  # after the writer: its last batch may have forgotten rows
            await loop.run_in_executor(io, text.join)
        if readers is not None:
            readers.stop()
            await loop.run_in_executor(io, readers.join)
        # Results the writer handed back in its last batch are still queued on the loop;
        # let them run before we declare the store closed.
        await asyncio.sleep(0)
        if self._given_bus is None:
            self._bus.close()  # only our own: a bus we were handed belongs to its owner
        read_io, self._read_io = self._read_io, None
        self._io = None
        self._blobs = None
        io.shutdown(wait=True)
        if read_io is not None:
            read_io.shutdown(wait=True)

    @property
    def writer_stats(self) -> tuple[int, int]:
        """(commits, operations) since open: operations / commits is the group size."""
        if self._writer is None:
            return (0, 0)
        return (self._writer.batches, self._writer.operations)

    # --- plumbing --------------------------------------------------------------------
    def _complete(self, items: list[_Done]) -> None:
        """On the loop: publish each operation's changes, then resolve it, in order."""
        for item in items:
            if item.changes:
                self._bus.publish(item.changes)
            _resolve(item.future, item.result, item.error)

    async def _write(self, fn: Callable[[_Tx], T], *, durable: bool = True) -> T:
        writer = self._writer
        if writer is None:
            raise StoreUnavailable("store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        writer.queue.put(_Op(fn, future, loop, durable))
        return await future

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        readers = self._readers
        if readers is None:
            raise StoreUnavailable("store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        readers.queue.put((fn, future, loop))
        return await future

    async def _io_call(self, fn: Callable[[], T]) -> T:
        if self._io is None:
            raise StoreUnavailable("store is not open")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._io, fn)
        except OSError as exc:
            raise StoreUnavailable(str(exc)) from exc

    def _files(self) -> BlobFiles:
        if self._blobs is None:
            raise StoreUnavailable("store is not open")
        return self._blobs

    # --- domains ---------------------------------------------------------------------
    async def add_domain(self, name: str) -> Domain:
        def op(tx: _Tx) -> Domain:
            cur = tx.conn.execute("INSERT INTO domains (name) VALUES (?)", (name,))
            return Domain(id=cast(int, cur.lastrowid), name=name)

        return await self._write(op)

    async def get_domain(self, name: str) -> Domain | None:
        def q(conn: sqlite3.Connection) -> Domain | None:
            row = conn.execute("SELECT id, name FROM domains WHERE name = ?", (name,)).fetchone()
            return Domain(id=row[0], name=row[1]) if row else None

        return await self._read(q)

    async def list_domains(self) -> list[Domain]:
        def q(conn: sqlite3.Connection) -> list[Domain]:
            rows = conn.execute("SELECT id, name FROM domains ORDER BY name")
            return [Domain(id=r[0], name=r[1]) for r in rows]

        return await self._read(q)

    async def remove_domain(self, name: str) -> None:
        def op(tx: _Tx) -> None:
            row = tx.conn.execute("SELECT id FROM domains WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise NotFound(f"no domain {name}")
            in_use = tx.conn.execute(
                "SELECT EXISTS (SELECT 1 FROM accounts WHERE domain_id = ?)"
                " OR EXISTS (SELECT 1 FROM aliases WHERE domain_id = ?)",
                (row[0], row[0]),
            ).fetchone()[0]
            if in_use:
                raise Conflict(f"domain {name} still has accounts or aliases")
            tx.conn.execute("DELETE FROM domains WHERE id = ?", (row[0],))

        await self._write(op)

    # --- accounts --------------------------------------------------------------------
    async def add_account(self, address: str, password_hash: str) -> Account:
        domain = _domain_of(address)
        if address.startswith("@"):
            raise Conflict("an account needs a local part")

        def op(tx: _Tx) -> Account:
            conn = tx.conn
            row = conn.execute("SELECT id FROM domains WHERE name = ?", (domain,)).fetchone()
            if row is None:
                raise NotFound(f"no domain {domain}")
            cur = conn.execute(
                "INSERT INTO accounts (address, domain_id, password_hash) VALUES (?, ?, ?)",
                (address, row[0], password_hash),
            )
            account_id = cast(int, cur.lastrowid)
            for name, special_use in DEFAULT_MAILBOXES:
                self._insert_mailbox(conn, account_id, name, special_use)
                conn.execute(
                    "INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?, ?)",
                    (account_id, name),
                )
            return Account(id=account_id, address=address, domain_id=row[0],
                           password_hash=password_hash)  # fmt: skip

        return await self._write(op)

    async def get_account(self, address: str) -> Account | None:
        def q(conn: sqlite3.Connection) -> Account | None:
            row = conn.execute(
                f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE address = ?", (address,)
            ).fetchone()
            return _account(row) if row else None

        return await self._read(q)

    async def get_account_by_id(self, account_id: int) -> Account | None:
        def q(conn: sqlite3.Connection) -> Account | None:
            row = conn.execute(
                f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE id = ?", (account_id,)
            ).fetchone()
            return _account(row) if row else None

        return await self._read(q)

    async def list_accounts(self, domain: str | None = None) -> list[Account]:
        wanted = domain

        def q(conn: sqlite3.Connection) -> list[Account]:
            if wanted is None:
                rows = conn.execute(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts ORDER BY address")
            else:
                rows = conn.execute(
                    f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE domain_id ="
                    " (SELECT id FROM domains WHERE name = ?) ORDER BY address",
                    (wanted,),
                )
            return [_account(r) for r in rows]

        return await self._read(q)

    async def set_password_hash(self, address: str, password_hash: str) -> None:
        def op(tx: _Tx) -> None:
            cur = tx.conn.execute(
                "UPDATE accounts SET password_hash = ? WHERE address = ?", (password_hash, address)
            )
            if cur.rowcount == 0:
                raise NotFound(f"no account {address}")

        await self._write(op)

    async def set_quota(self, address: str, quota_bytes: int) -> Account:
        quota_bytes = quota_rules.check_quota_value(quota_bytes)

        def op(tx: _Tx) -> Account:
            row = tx.conn.execute(
                "UPDATE accounts SET quota_bytes = ? WHERE address = ?"
                f" RETURNING {_ACCOUNT_COLUMNS}",
                (quota_bytes, address),
            ).fetchone()
            if row is None:
                raise NotFound(f"no account {address}")
            return _account(row)

        return await self._write(op)

    async def remove_account(self, address: str) -> None:
        def op(tx: _Tx) -> None:
            conn = tx.conn
            row = conn.execute("SELECT id FROM accounts WHERE address = ?", (address,)).fetchone()
            if row is None:
                raise NotFound(f"no account {address}")
            account_id = row[0]
            mailbox_ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM mailboxes WHERE account_id = ?", (account_id,)
                )
            ]
            for mailbox_id in mailbox_ids:
                self._drop_mailbox_rows(conn, mailbox_id)
            conn.execute("DELETE FROM subscriptions WHERE account_id = ?", (account_id,))
            conn.execute("DELETE FROM accounts WHERE id = ?", (account_id,))
            self._collect_blobs(tx)
            tx.changes.append(MailboxesChanged(account_id))

        await self._write(op)

    async def set_pop_policy(
        self, address: str, on_retrieve: PopOnRetrieve, scope: PopScope
    ) -> Account:
        def op(tx: _Tx) -> Account:
            conn = tx.conn
            row = conn.execute("SELECT id FROM accounts WHERE address = ?", (address,)).fetchone()
            if row is None:
                raise NotFound(f"no account {address}")
            min_uid = 0
            if scope == PopScope.FROM_NOW:
                inbox = conn.execute(
                    "SELECT uidnext FROM mailboxes WHERE account_id = ? AND name = 'INBOX'",
                    (row[0],),
                ).fetchone()
                min_uid = inbox[0] if inbox else 0
            updated = conn.execute(
                "UPDATE accounts SET pop_on_retrieve = ?, pop_scope = ?, pop_min_uid = ?"
                f" WHERE id = ? RETURNING {_ACCOUNT_COLUMNS}",
                (PopOnRetrieve(on_retrieve).value, PopScope(scope).value, min_uid, row[0]),
            ).fetchone()
            return _account(updated)

        return await self._write(op)

    # --- aliases ---------------------------------------------------------------------
    async def add_alias(self, source: str, targets: Sequence[str]) -> Alias:
        domain = _domain_of(source)
        clean = [t for t in targets if t]
        if not clean:
            raise Conflict("an alias needs at least one target")

        def op(tx: _Tx) -> Alias:
            conn = tx.conn
            row = conn.execute("SELECT id FROM domains WHERE name = ?", (domain,)).fetchone()
            if row is None:
                raise NotFound(f"no domain {domain}")
            start = conn.execute(
                "SELECT coalesce(max(position), -1) + 1 FROM aliases WHERE source = ?", (source,)
            ).fetchone()[0]
            for i, target in enumerate(clean):
                conn.execute(
                    "INSERT OR IGNORE INTO aliases (source, target, domain_id, position)"
                    " VALUES (?, ?, ?, ?)",
                    (source, target, row[0], start + i),
                )
            return self._alias(conn, source) or Alias(source, ())

        return await self._write(op)

    @staticmethod
    def _alias(conn: sqlite3.Connection, source: str) -> Alias | None:
        rows = conn.execute(
            "SELECT target FROM aliases WHERE source = ? ORDER BY position", (source,)
        ).fetchall()
        return Alias(source, tuple(r[0] for r in rows)) if rows else None

    async def get_alias(self, source: str) -> Alias | None:
        return await self._read(lambda conn: self._alias(conn, source))

    async def list_aliases(self) -> list[Alias]:
        def q(conn: sqlite3.Connection) -> list[Alias]:
            grouped: dict[str, list[str]] = {}
            for source, target in conn.execute(
                "SELECT source, target FROM aliases ORDER BY source, position"
            ):
                grouped.setdefault(source, []).append(target)
            return [Alias(s, tuple(t)) for s, t in grouped.items()]

        return await self._read(q)

    async def remove_alias(self, source: str) -> None:
        def op(tx: _Tx) -> None:
            cur = tx.conn.execute("DELETE FROM aliases WHERE source = ?", (source,))
            if cur.rowcount == 0:
                raise NotFound(f"no alias {source}")

        await self._write(op)

    # --- mailboxes -------------------------------------------------------------------
    @staticmethod
    def _next_uidvalidity(conn: sqlite3.Connection) -> int:
        """The store-wide counter, advanced by `rules.uidvalidity` (RFC 9051 §2.3.1.1)."""
        row = conn.execute("SELECT value FROM settings WHERE key = 'uidvalidity'").fetchone()
        value = next_uidvalidity(row[0] if row else 0, time.time())
        conn.execute(
            "INSERT INTO settings (key, value) VALUES ('uidvalidity', ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (value,),
        )
        return value

    def _insert_mailbox(
        self, conn: sqlite3.Connection, account_id: int, name: str, special_use: str | None
    ) -> int:
        cur = conn.execute(
            "INSERT INTO mailboxes (account_id, name, uidvalidity, special_use)"
            " VALUES (?, ?, ?, ?)",
            (account_id, name, self._next_uidvalidity(conn), special_use),
        )
        return cast(int, cur.lastrowid)

    async def list_mailboxes(self, account_id: int) -> list[Mailbox]:
        def q(conn: sqlite3.Connection) -> list[Mailbox]:
            rows = conn.execute(
                f"{_MAILBOX_SELECT} WHERE m.account_id = ? ORDER BY m.name != 'INBOX', m.name",
                (account_id,),
            )
            return [_mailbox(r) for r in rows]

        return await self._read(q)

    async def get_mailbox(self, account_id: int, name: str) -> Mailbox | None:
        def q(conn: sqlite3.Connection) -> Mailbox | None:
            row = conn.execute(
                f"{_MAILBOX_SELECT} WHERE m.account_id = ? AND m.name = ?", (account_id, name)
            ).fetchone()
            return _mailbox(row) if row else None

        return await self._read(q)

    async def get_mailbox_by_id(self, mailbox_id: int) -> Mailbox | None:
        def q(conn: sqlite3.Connection) -> Mailbox | None:
            row = conn.execute(f"{_MAILBOX_SELECT} WHERE m.id = ?", (mailbox_id,)).fetchone()
            return _mailbox(row) if row else None

        return await self._read(q)

    async def get_special_mailbox(self, account_id: int, special_use: str) -> Mailbox | None:
        def q(conn: sqlite3.Connection) -> Mailbox | None:
            row = conn.execute(
                f"{_MAILBOX_SELECT} WHERE m.account_id = ? AND lower(m.special_use) = lower(?)"
                " ORDER BY m.id LIMIT 1",
                (account_id, special_use),
            ).fetchone()
            return _mailbox(row) if row else None

        return await self._read(q)

    async def create_mailbox(
        self, account_id: int, name: str, special_use: str | None = None
    ) -> Mailbox:
        def op(tx: _Tx) -> Mailbox:
            conn = tx.conn
            if not conn.execute("SELECT 1 FROM accounts WHERE id = ?", (account_id,)).fetchone():
                raise NotFound(f"no account {account_id}")
            mailbox_id = self._insert_mailbox(conn, account_id, name, special_use)
            tx.changes.append(MailboxesChanged(account_id))
            row = conn.execute(f"{_MAILBOX_SELECT} WHERE m.id = ?", (mailbox_id,)).fetchone()
            return _mailbox(row)

        return await self._write(op)

    @staticmethod
    def _drop_mailbox_rows(conn: sqlite3.Connection, mailbox_id: int) -> None:
        # The messages_delete trigger releases blobs, quota and keywords row by row.
        conn.execute("DELETE FROM messages WHERE mailbox_id = ?", (mailbox_id,))
        conn.execute("DELETE FROM expunged WHERE mailbox_id = ?", (mailbox_id,))
        conn.execute("DELETE FROM mailboxes WHERE id = ?", (mailbox_id,))

    async def delete_mailbox(self, account_id: int, name: str) -> None:
        if name == "INBOX":
            raise Conflict("INBOX cannot be deleted")

        def op(tx: _Tx) -> None:
            row = tx.conn.execute(
                "SELECT id FROM mailboxes WHERE account_id = ? AND name = ?", (account_id, name)
            ).fetchone()
            if row is None:
                raise NotFound(f"no mailbox {name}")
            self._drop_mailbox_rows(tx.conn, row[0])
            self._collect_blobs(tx)
            tx.changes.append(MailboxesChanged(account_id))

        await self._write(op)

    async def rename_mailbox(self, account_id: int, old: str, new: str) -> None:
        def op(tx: _Tx) -> None:
            conn = tx.conn
            row = conn.execute(
                "SELECT id FROM mailboxes WHERE account_id = ? AND name = ?", (account_id, old)
            ).fetchone()
            if row is None:
                raise NotFound(f"no mailbox {old}")
            if new == old or new == "INBOX":
                raise AlreadyExists(f"mailbox {new} exists")
            if new.startswith(old + HIERARCHY_SEPARATOR):
                raise Conflict("cannot rename a mailbox into itself")
            exists = conn.execute(
                "SELECT 1 FROM mailboxes WHERE account_id = ? AND name = ?", (account_id, new)
            ).fetchone()
            if exists:
                raise AlreadyExists(f"mailbox {new} exists")
            if old == "INBOX":
                # RFC 9051 §6.3.6: INBOX's messages move to a new mailbox; INBOX stays,
                # empty, and its inferiors are not renamed.
                target = self._insert_mailbox(conn, account_id, new, None)
                uids = [r[0] for r in _flag_rows(conn, row[0], None)]
                self._move_rows(tx, row[0], uids, target)
                tx.changes.append(MailboxesChanged(account_id))
                return
            prefix = old + HIERARCHY_SEPARATOR
            family = [(row[0], old)] + [
                (r[0], r[1])
                for r in conn.execute(
                    "SELECT id, name FROM mailboxes WHERE account_id = ?"
                    " AND substr(name, 1, ?) = ? ORDER BY name",
                    (account_id, len(prefix), prefix),
                )
            ]
            renamed = [(mid, name, new + name[len(old) :]) for mid, name in family]
            for _, _, target_name in renamed[1:]:
                if conn.execute(
                    "SELECT 1 FROM mailboxes WHERE account_id = ? AND name = ?",
                    (account_id, target_name),
                ).fetchone():
                    raise AlreadyExists(f"mailbox {target_name} exists")
            for mid, old_name, new_name in renamed:
                # A renamed mailbox gets a fresh UIDVALIDITY, so no name ever shows a
                # UIDVALIDITY it had before (a client's cache by name stays safe).
                conn.execute(
                    "UPDATE mailboxes SET name = ?, uidvalidity = ? WHERE id = ?",
                    (new_name, self._next_uidvalidity(conn), mid),
                )
                if conn.execute(
                    "DELETE FROM subscriptions WHERE account_id = ? AND name = ?",
                    (account_id, old_name),
                ).rowcount:
                    conn.execute(
                        "INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?, ?)",
                        (account_id, new_name),
                    )
            tx.changes.append(MailboxesChanged(account_id))

        await self._write(op)

    async def set_subscribed(self, account_id: int, name: str, subscribed: bool) -> None:
        def op(tx: _Tx) -> None:
            if subscribed:
                tx.conn.execute(
                    "INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?, ?)",
                    (account_id, name),
                )
            else:
                tx.conn.execute(
                    "DELETE FROM subscriptions WHERE account_id = ? AND name = ?",
                    (account_id, name),
                )
            tx.changes.append(MailboxesChanged(account_id))

        await self._write(op)

    async def list_subscriptions(self, account_id: int) -> list[str]:
        def q(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT name FROM subscriptions WHERE account_id = ?"
                " ORDER BY name != 'INBOX', name",
                (account_id,),
            )
            return [r[0] for r in rows]

        return await self._read(q)

    async def mailbox_status(self, mailbox_id: int) -> MailboxStatus:
        return await self._read(lambda conn: _mailbox_status(conn, mailbox_id)[0])

    async def quota_usage(self, account_id: int) -> int:
        def q(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT used_bytes FROM accounts WHERE id = ?", (account_id,)
            ).fetchone()
            if row is None:
                raise NotFound(f"no account {account_id}")
            return int(row[0])

        return await self._read(q)

    # --- blobs -----------------------------------------------------------------------
    def new_blob(self) -> BlobFileWriter:
        return self._files().writer(self.delete_blob)

    async def open_blob(self, blob_id: int, start: int = 0) -> FileBlobReader:
        files, pool = self._files(), self._read_pool()
        try:
            return await asyncio.get_running_loop().run_in_executor(
                pool, files.open_reader, blob_id, start, pool
            )
        except FileNotFoundError:
            raise NotFound(f"no blob {blob_id}") from None
        except OSError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def read_blob(self, blob_id: int, start: int = 0, length: int | None = None) -> bytes:
        files = self._files()
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._read_pool(), files.read, blob_id, start, length
            )
        except FileNotFoundError:
            raise NotFound(f"no blob {blob_id}") from None
        except OSError as exc:
            raise StoreUnavailable(str(exc)) from exc

    def _read_pool(self) -> ThreadPoolExecutor:
        if self._read_io is None:
            raise StoreUnavailable("store is not open")
        return self._read_io

    async def delete_blob(self, blob_id: int) -> None:
        """Remove a finished file that no row took (an aborted delivery)."""

        def op(tx: _Tx) -> None:
            row = tx.conn.execute("SELECT 1 FROM blobs WHERE id = ?", (blob_id,)).fetchone()
            if row is None:
                tx.unlink.append(blob_id)

        await self._write(op)

    @staticmethod
    def _bump(
        conn: sqlite3.Connection, mailbox_id: int, new_uids: int
    ) -> tuple[int, int, int, int]:
        """Reserve `new_uids` UIDs and one new MODSEQ: (first uid, modseq, uidvalidity,
        account id). Every change takes exactly one MODSEQ per mailbox (RFC 7162 §3.1)."""
        row = conn.execute(
            "UPDATE mailboxes SET uidnext = uidnext + ?, highestmodseq = highestmodseq + 1"
            " WHERE id = ? RETURNING uidnext - ?, highestmodseq, uidvalidity, account_id",
            (new_uids, mailbox_id, new_uids),
        ).fetchone()
        if row is None:
            raise NotFound(f"no mailbox {mailbox_id}")
        return row[0], row[1], row[2], row[3]

    @staticmethod
    def _check_quota(conn: sqlite3.Connection, mailbox_id: int, adding: int) -> None:
        row = conn.execute(
            "SELECT a.quota_bytes, a.used_bytes FROM mailboxes AS m"
            " JOIN accounts AS a ON a.id = m.account_id WHERE m.id = ?",
            (mailbox_id,),
        ).fetchone()
        if row is None:
            raise NotFound(f"no mailbox {mailbox_id}")
        quota, used = row
        if not quota_rules.allows(quota, used, adding):
            raise QuotaExceeded(f"{used + adding} bytes exceed the quota of {quota}")

    def _insert_blob(
        self,
        conn: sqlite3.Connection,
        blob: BlobHandle,
        meta: MessageMeta | None,
    ) -> None:
        """The blob's row (once per blob; COPY and multi-recipient delivery share it).
        Its full-text row was committed to search.db before (`_index_text`)."""
        if not os.path.exists(self._files().path(blob.blob_id)):
            # A row must never point to a missing file.
            raise NotFound(f"blob {blob.blob_id} has no durable file")
        if meta is None:
            conn.execute(
                "INSERT INTO blobs (id, size) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
                (blob.blob_id, blob.size),
            )
            return
        sent_iso = sent_day = None
        if meta.sent_date is not None:
            sent_iso = meta.sent_date.isoformat()
            sent_day = meta.sent_date.date().isoformat()
        conn.execute(
            "INSERT INTO blobs (id, size, envelope, bodystructure, body, parts, preview,"
            " subject, from_, to_, cc, bcc, message_id, sent_date, sent_day)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET envelope = excluded.envelope,"
            " bodystructure = excluded.bodystructure, body = excluded.body,"
            " parts = excluded.parts, preview = excluded.preview, subject = excluded.subject,"
            " from_ = excluded.from_, to_ = excluded.to_, cc = excluded.cc, bcc = excluded.bcc,"
            " message_id = excluded.message_id, sent_date = excluded.sent_date,"
            " sent_day = excluded.sent_day WHERE blobs.envelope IS NULL",
            (
                blob.blob_id,
                blob.size,
                meta.envelope,
                meta.bodystructure,
                meta.body,
                meta.parts,
                meta.preview,
                meta.subject,
                meta.from_,
                meta.to,
                meta.cc,
                meta.bcc,
                meta.message_id,
                sent_iso,
                sent_day,
            ),
        )

    @staticmethod
    def _spell_keywords(
        conn: sqlite3.Connection, mailbox_id: int, keywords: dict[str, str]
    ) -> dict[str, str]:
        """Keywords match case-insensitively; keep the spelling the mailbox already uses."""
        spelled = dict(keywords)
        for folded, spelling in keywords.items():
            row = conn.execute(
                "SELECT keyword FROM keywords WHERE mailbox_id = ? AND keyword = ? LIMIT 1",
                (mailbox_id, spelling),
            ).fetchone()
            if row is not None:
                spelled[folded] = row[0]
        return spelled

    def _append_one(
        self,
        tx: _Tx,
        mailbox_id: int,
        blob: BlobHandle,
        meta: MessageMeta,
        flags: frozenset[str],
        internaldate: datetime | None,
    ) -> AppendResult:
        conn = tx.conn
        self._check_quota(conn, mailbox_id, meta.size)
        self._insert_blob(conn, blob, meta)
        uid, modseq, uidvalidity, account_id = self._bump(conn, mailbox_id, 1)
        bits, keywords = _split_flags(flags)
        epoch, tz = _to_epoch(internaldate or datetime.now(UTC))
        conn.execute(
            "INSERT INTO messages (mailbox_id, uid, modseq, flags, internaldate, internal_tz,"
            " size, blob_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (mailbox_id, uid, modseq, bits, epoch, tz, meta.size, blob.blob_id),
        )
        spelled = self._spell_keywords(conn, mailbox_id, keywords)
        conn.executemany(
            "INSERT OR IGNORE INTO keywords (mailbox_id, uid, keyword) VALUES (?, ?, ?)",
            [(mailbox_id, uid, k) for k in spelled.values()],
        )
        tx.changes.append(
            MessagesAdded(
                account_id,
                mailbox_id,
                (FlagRow(uid, _flag_set(bits, spelled.values()), modseq),),
            )
        )
        return AppendResult(uid=uid, modseq=modseq, uidvalidity=uidvalidity)

    async def append(
        self,
        mailbox_id: int,
        blob: BlobHandle,
        meta: MessageMeta,
        flags: frozenset[str] = frozenset(),
        internaldate: datetime | None = None,
    ) -> AppendResult:
        await self._index_text([(blob.blob_id, meta)])
        return await self._write(
            lambda tx: self._append_one(tx, mailbox_id, blob, meta, flags, internaldate)
        )

    async def _index_text(self, items: Sequence[tuple[int, MessageMeta]]) -> None:
        """Commit the texts to search.db before any row refers to them (see sqlite_text)."""
        text = self._text
        if text is None:
            raise StoreUnavailable("store is not open")
        rows = list({blob_id: (blob_id, m.headers, m.body_text) for blob_id, m in items}.values())
        try:
            await text.add(rows)
        except sqlite3.Error as exc:
            raise _map_error(exc) from exc

    async def deliver(self, deliveries: Sequence[Delivery]) -> list[AppendResult]:
        items = list(deliveries)
        await self._index_text([(d.blob.blob_id, d.meta) for d in items])

        def op(tx: _Tx) -> list[AppendResult]:
            return [
                self._append_one(tx, d.mailbox_id, d.blob, d.meta, d.flags, d.internaldate)
                for d in items
            ]

        return await self._write(op)

    async def set_flags(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        flags: frozenset[str],
        mode: FlagMode,
        unchanged_since: int | None = None,
    ) -> StoreFlagsResult:
        wanted = list(uids)
        bits, keywords = _split_flags(flags)

        def op(tx: _Tx) -> StoreFlagsResult:
            conn = tx.conn
            rows = _flag_rows(conn, mailbox_id, wanted)
            if not rows:
                return StoreFlagsResult(changed=())
            old_keywords = _keywords_of(conn, mailbox_id, wanted)
            spelled = self._spell_keywords(conn, mailbox_id, keywords)
            modified: list[int] = []
            # per new bitmask: uids; per keyword: uids to add / remove
            by_bits: dict[int, list[int]] = {}
            kw_add: dict[str, list[int]] = {}
            kw_del: dict[str, list[int]] = {}
            new_state: list[tuple[int, int, list[str]]] = []
            for uid, old_bits, modseq in rows:
                if unchanged_since is not None and modseq > unchanged_since:
                    modified.append(uid)  # RFC 7162 §3.1.3
                    continue
                have = {k.lower(): k for k in old_keywords.get(uid, ())}
                if mode == FlagMode.ADD:
                    new_bits = old_bits | bits
                    new_kw = {**have, **{f: s for f, s in spelled.items() if f not in have}}
                elif mode == FlagMode.REMOVE:
                    new_bits = old_bits & ~bits
                    new_kw = {f: s for f, s in have.items() if f not in spelled}
                else:
                    new_bits = bits
                    new_kw = {f: have.get(f, s) for f, s in spelled.items()}
                added = [s for f, s in new_kw.items() if f not in have]
                removed = [s for f, s in have.items() if f not in new_kw]
                if new_bits == old_bits and not added and not removed:
                    continue
                by_bits.setdefault(new_bits, []).append(uid)
                for k in added:
                    kw_add.setdefault(k, []).append(uid)
                for k in removed:
                    kw_del.setdefault(k, []).append(uid)
                new_state.append((uid, new_bits, list(new_kw.values())))
            if not new_state:
                return StoreFlagsResult(changed=(), modified=tuple(modified))
            _, modseq, _, account_id = self._bump(conn, mailbox_id, 0)
            for new_bits, group in by_bits.items():
                conn.execute(
                    "UPDATE messages SET flags = ?, modseq = ? WHERE mailbox_id = ?"
                    " AND uid IN (SELECT value FROM json_each(?))",
                    (new_bits, modseq, mailbox_id, _uid_list_json(group)),
                )
            for keyword, group in kw_del.items():
                conn.execute(
                    "DELETE FROM keywords WHERE mailbox_id = ? AND keyword = ?"
                    " AND uid IN (SELECT value FROM json_each(?))",
                    (mailbox_id, keyword, _uid_list_json(group)),
                )
            for keyword, group in kw_add.items():
                conn.execute(
                    "INSERT OR IGNORE INTO keywords (mailbox_id, uid, keyword)"
                    " SELECT ?, value, ? FROM json_each(?)",
                    (mailbox_id, keyword, _uid_list_json(group)),
                )
            changed = tuple(FlagRow(uid, _flag_set(b, kws), modseq) for uid, b, kws in new_state)
            tx.changes.append(FlagsChanged(account_id, mailbox_id, changed))
            return StoreFlagsResult(changed=changed, modified=tuple(modified))

        return await self._write(op, durable=False)  # see _Op.durable

    def _copy_rows(
        self, tx: _Tx, src: int, uids: Sequence[int] | None, dst: int, *, quota: bool = True
    ) -> CopyResult:
        conn = tx.conn
        if conn.execute("SELECT 1 FROM mailboxes WHERE id = ?", (dst,)).fetchone() is None:
            raise NotFound(f"no mailbox {dst}")
        if uids is None:
            rows = conn.execute(
                "SELECT uid, flags, size FROM messages WHERE mailbox_id = ? ORDER BY uid", (src,)
            ).fetchall()
        else:
            rows = conn.execute(
                f"SELECT m.uid, m.flags, m.size FROM {_RANGE_JOIN}", (_ranges_json(uids), src)
            ).fetchall()
        if not rows:
            if conn.execute("SELECT 1 FROM mailboxes WHERE id = ?", (src,)).fetchone() is None:
                raise NotFound(f"no mailbox {src}")
            validity = conn.execute(
                "SELECT uidvalidity FROM mailboxes WHERE id = ?", (dst,)
            ).fetchone()[0]
            return CopyResult(uidvalidity=validity, source_uids=(), dest_uids=())
        if quota:
            self._check_quota(conn, dst, sum(r[2] for r in rows))
        source_uids = [r[0] for r in rows]
        first, modseq, uidvalidity, account_id = self._bump(conn, dst, len(rows))
        dest_uids = list(range(first, first + len(rows)))
        mapping = json.dumps(list(zip(source_uids, dest_uids, strict=True)), separators=(",", ":"))
        conn.execute(
            "INSERT INTO messages (mailbox_id, uid, modseq, flags, internaldate, internal_tz,"
            " size, blob_id) SELECT ?, j.value ->> 1, ?, m.flags, m.internaldate, m.internal_tz,"
            " m.size, m.blob_id FROM json_each(?) AS j CROSS JOIN messages AS m"
            " WHERE m.mailbox_id = ? AND m.uid = j.value ->> 0",
            (dst, modseq, mapping, src),
        )
        keywords = _keywords_of(conn, src, source_uids)
        if keywords:
            conn.execute(
                "INSERT OR IGNORE INTO keywords (mailbox_id, uid, keyword)"
                " SELECT ?, j.value ->> 1, k.keyword FROM json_each(?) AS j"
                " CROSS JOIN keywords AS k WHERE k.mailbox_id = ? AND k.uid = j.value ->> 0",
                (dst, mapping, src),
            )
        added = tuple(
            FlagRow(new, _flag_set(bits, keywords.get(old, ())), modseq)
            for (old, bits, _), new in zip(rows, dest_uids, strict=True)
        )
        tx.changes.append(MessagesAdded(account_id, dst, added))
        return CopyResult(
            uidvalidity=uidvalidity, source_uids=tuple(source_uids), dest_uids=tuple(dest_uids)
        )

    def _remove_rows(self, tx: _Tx, mailbox_id: int, uids: Sequence[int]) -> None:
        """Delete rows, record them for QRESYNC under one new MODSEQ, publish."""
        if not uids:
            return
        conn = tx.conn
        _, modseq, _, account_id = self._bump(conn, mailbox_id, 0)
        listed = _uid_list_json(uids)
        conn.execute(
            "DELETE FROM messages WHERE mailbox_id = ? AND uid IN (SELECT value FROM json_each(?))",
            (mailbox_id, listed),
        )
        conn.execute(
            "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq)"
            " SELECT ?, value, ? FROM json_each(?)",
            (mailbox_id, modseq, listed),
        )
        self._collect_blobs(tx)
        tx.changes.append(MessagesExpunged(account_id, mailbox_id, tuple(sorted(uids)), modseq))

    def _move_rows(self, tx: _Tx, src: int, uids: Sequence[int] | None, dst: int) -> CopyResult:
        # A move inside one account does not change its usage: no quota check.
        same_account = tx.conn.execute(
            "SELECT (SELECT account_id FROM mailboxes WHERE id = ?)"
            " = (SELECT account_id FROM mailboxes WHERE id = ?)",
            (src, dst),
        ).fetchone()[0]
        result = self._copy_rows(tx, src, uids, dst, quota=not same_account)
        self._remove_rows(tx, src, result.source_uids)
        return result

    @staticmethod
    def _collect_blobs(tx: _Tx) -> None:
        """Drop blob rows whose last reference went; their files go after the commit."""
        ids = [r[0] for r in tx.conn.execute("SELECT id FROM blobs WHERE refs <= 0")]
        if not ids:
            return
        listed = json.dumps(ids)
        tx.conn.execute("DELETE FROM blobs WHERE id IN (SELECT value FROM json_each(?))", (listed,))
        tx.unlink.extend(ids)

    async def copy(
        self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int
    ) -> CopyResult:
        wanted = list(uids)
        return await self._write(
            lambda tx: self._copy_rows(tx, src_mailbox_id, wanted, dst_mailbox_id)
        )

    async def move(
        self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int
    ) -> CopyResult:
        # RFC 6851 §3.3: atomic: both halves are in this one operation's savepoint.
        wanted = list(uids)
        return await self._write(
            lambda tx: self._move_rows(tx, src_mailbox_id, wanted, dst_mailbox_id)
        )

    async def expunge(self, mailbox_id: int, uids: Sequence[int] | None = None) -> list[int]:
        wanted = list(uids) if uids is not None else None

        def op(tx: _Tx) -> list[int]:
            conn = tx.conn
            if not conn.execute("SELECT 1 FROM mailboxes WHERE id = ?", (mailbox_id,)).fetchone():
                raise NotFound(f"no mailbox {mailbox_id}")
            if wanted is None:
                rows = conn.execute(
                    f"SELECT uid FROM messages WHERE mailbox_id = ? AND (flags & {_DELETED}) != 0"
                    " ORDER BY uid",
                    (mailbox_id,),
                )
            else:
                rows = conn.execute(
                    f"SELECT m.uid FROM {_RANGE_JOIN} AND (m.flags & {_DELETED}) != 0",
                    (_ranges_json(wanted), mailbox_id),
                )
            gone = [r[0] for r in rows]
            self._remove_rows(tx, mailbox_id, gone)
            return gone

        return await self._write(op, durable=False)  # see _Op.durable

    async def pop_hide(self, mailbox_id: int, uids: Sequence[int]) -> None:
        wanted = list(uids)

        def op(tx: _Tx) -> None:
            # Not a change IMAP can see: no MODSEQ, no event.
            tx.conn.execute(
                "UPDATE messages SET pop_hidden = 1 WHERE mailbox_id = ?"
                " AND uid IN (SELECT value FROM json_each(?))",
                (mailbox_id, _uid_list_json(wanted)),
            )

        await self._write(op)

    async def enqueue(
        self,
        sender: str,
        recipients: Sequence[QueuedRecipient],
        blob: BlobHandle,
        dsn_envid: str | None = None,
        dsn_ret: str | None = None,
    ) -> int:
        rcpts = list(recipients)
        if not rcpts:
            raise Conflict("a queued message needs recipients")

        def op(tx: _Tx) -> int:
            conn = tx.conn
            self._insert_blob(conn, blob, None)
            now = int(time.time())
            cur = conn.execute(
                "INSERT INTO queue (sender, blob_id, created_at, next_attempt, dsn_envid, dsn_ret)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (sender, blob.blob_id, now, now, dsn_envid, dsn_ret),
            )
            queue_id = cast(int, cur.lastrowid)
            conn.executemany(
                "INSERT INTO queue_recipients (queue_id, position, address, notify, orcpt)"
                " VALUES (?, ?, ?, ?, ?)",
                [(queue_id, i, r.address, r.notify, r.orcpt) for i, r in enumerate(rcpts)],
            )
            return queue_id

        return await self._write(op)

    # --- reading messages ------------------------------------------------------------
    async def uids(self, mailbox_id: int) -> list[int]:
        def q(conn: sqlite3.Connection) -> list[int]:
            rows = conn.execute(
                "SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid", (mailbox_id,)
            )
            return [r[0] for r in rows]

        return await self._read(q)

    async def fetch_flags(self, mailbox_id: int, uids: Sequence[int]) -> list[FlagRow]:
        wanted = list(uids)

        def q(conn: sqlite3.Connection) -> list[FlagRow]:
            rows = _flag_rows(conn, mailbox_id, wanted)
            if not rows:
                return []
            keywords = _keywords_of(conn, mailbox_id, wanted)
            return [
                FlagRow(uid, _flag_set(bits, keywords.get(uid, ())), ms) for uid, bits, ms in rows
            ]

        return await self._read(q)

    async def fetch_flag_bits(
        self, mailbox_id: int, uids: Sequence[int]
    ) -> tuple[list[tuple[int, int, int]], dict[int, list[str]]]:
        # The raw rows of `fetch_flags`: no FlagRow or frozenset per message.
        wanted = list(uids)

        def q(conn: sqlite3.Connection) -> tuple[list[tuple[int, int, int]], dict[int, list[str]]]:
            rows = _flag_rows(conn, mailbox_id, wanted)
            return rows, (_keywords_of(conn, mailbox_id, wanted) if rows else {})

        return await self._read(q)

    async def fetch(self, mailbox_id: int, uids: Sequence[int]) -> list[MessageInfo]:
        wanted = list(uids)
        return await self._read(lambda conn: _message_infos(conn, mailbox_id, wanted))

    async def fetch_with_bodies(
        self, mailbox_id: int, uids: Sequence[int], max_bytes: int
    ) -> list[tuple[MessageInfo, bytes | None]]:
        # `fetch` plus whole message files in one reader job: a FETCH BODY[] of one
        # message is one thread hop instead of two (rows, then bytes).
        wanted = list(uids)
        files = self._files()

        def q(conn: sqlite3.Connection) -> list[tuple[MessageInfo, bytes | None]]:
            out: list[tuple[MessageInfo, bytes | None]] = []
            total = 0
            for info in _message_infos(conn, mailbox_id, wanted):
                data: bytes | None = None
                if total < max_bytes:
                    try:
                        data = files.read(info.blob_id)
                    except FileNotFoundError:
                        data = None  # expunged and collected since this read began
                    except OSError as exc:
                        raise StoreUnavailable(str(exc)) from exc
                    total += info.size
                out.append((info, data))
            return out

        return await self._read(q)

    async def read_message(
        self, mailbox_id: int, uid: int, start: int = 0, length: int | None = None
    ) -> bytes:
        (data,) = await self.read_messages(mailbox_id, [(uid, start, length)])
        if data is None:
            raise NotFound(f"no message {uid} in mailbox {mailbox_id}")
        return data

    async def read_messages(
        self, mailbox_id: int, ranges: Sequence[tuple[int, int, int | None]]
    ) -> list[bytes | None]:
        # One reader job for the whole batch: the blob ids are looked up and the files
        # read in the same thread hop (a FETCH of 50 bodies is one hop, not 100).
        wanted = list(ranges)
        files = self._files()

        def q(conn: sqlite3.Connection) -> list[bytes | None]:
            if not wanted:
                return []
            blob_of = dict(
                conn.execute(
                    f"SELECT m.uid, m.blob_id FROM {_RANGE_JOIN}",
                    (_ranges_json(u for u, _, _ in wanted), mailbox_id),
                ).fetchall()
            )
            out: list[bytes | None] = []
            for uid, start, length in wanted:
                blob_id = blob_of.get(uid)
                try:
                    data = None if blob_id is None else files.read(blob_id, start, length)
                except FileNotFoundError:
                    data = None  # expunged and collected since this read began
                except OSError as exc:
                    raise StoreUnavailable(str(exc)) from exc
                out.append(data)
            return out

        return await self._read(q)

    async def select_snapshot(self, mailbox_id: int) -> tuple[list[int], MailboxStatus, int | None]:
        # SELECT in one read transaction: the UID list, the counters and the first
        # unseen UID all come from the same snapshot, in one thread hop.
        def q(conn: sqlite3.Connection) -> tuple[list[int], MailboxStatus, int | None]:
            status, first_unseen = _mailbox_status(conn, mailbox_id)
            uids = [
                r[0]
                for r in conn.execute(
                    "SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid", (mailbox_id,)
                )
            ]
            return uids, status, first_unseen

        return await self._read(q)

    async def search(self, mailbox_id: int, key: SearchKey) -> list[int]:
        sql, params = sqlite_search.build(mailbox_id, key)
        return await self._read(lambda conn: [r[0] for r in conn.execute(sql, params)])

    async def changes_since(self, mailbox_id: int, modseq: int) -> tuple[list[FlagRow], list[int]]:
        def q(conn: sqlite3.Connection) -> tuple[list[FlagRow], list[int]]:
            rows = conn.execute(
                "SELECT uid, flags, modseq FROM messages INDEXED BY messages_modseq"
                " WHERE mailbox_id = ? AND modseq > ?"
                " ORDER BY uid",
                (mailbox_id, modseq),
            ).fetchall()
            keywords = _keywords_of(conn, mailbox_id, [r[0] for r in rows]) if rows else {}
            changed = [FlagRow(u, _flag_set(b, keywords.get(u, ())), m) for u, b, m in rows]
            gone = [
                r[0]
                for r in conn.execute(
                    "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
                    (mailbox_id, modseq),
                )
            ]
            return changed, gone

        return await self._read(q)

    async def pop_hidden(self, mailbox_id: int) -> set[int]:
        def q(conn: sqlite3.Connection) -> set[int]:
            rows = conn.execute(
                "SELECT uid FROM messages WHERE mailbox_id = ? AND pop_hidden != 0", (mailbox_id,)
            )
            return {r[0] for r in rows}

        return await self._read(q)

    async def list_queue(self) -> list[QueuedMessage]:
        def q(conn: sqlite3.Connection) -> list[QueuedMessage]:
            recipients: dict[int, list[QueuedRecipient]] = {}
            for qid, address, notify, orcpt in conn.execute(
                "SELECT queue_id, address, notify, orcpt FROM queue_recipients"
                " ORDER BY queue_id, position"
            ):
                recipients.setdefault(qid, []).append(QueuedRecipient(address, notify, orcpt))
            return [
                QueuedMessage(
                    id=r[0],
                    sender=r[1],
                    recipients=tuple(recipients.get(r[0], ())),
                    blob_id=r[2],
                    created_at=datetime.fromtimestamp(r[3], UTC),
                    next_attempt=datetime.fromtimestamp(r[4], UTC),
                    attempts=r[5],
                    dsn_envid=r[6],
                    dsn_ret=r[7],
                    last_error=r[8],
                )
                for r in conn.execute(
                    "SELECT id, sender, blob_id, created_at, next_attempt, attempts, dsn_envid,"
                    " dsn_ret, last_error FROM queue ORDER BY id"
                )
            ]

        return await self._read(q)


__all__ = ["SqliteStore", "StoreError"]


def _message_infos(
    conn: sqlite3.Connection, mailbox_id: int, wanted: list[int]
) -> list[MessageInfo]:
    """The precomputed rows of `wanted` (ascending), keywords included: one query each."""
    if not wanted:
        return []
    rows = conn.execute(
        "SELECT m.uid, m.modseq, m.flags, m.internaldate, m.internal_tz, m.size,"
        " b.envelope, b.bodystructure, b.body, b.parts, b.preview, m.blob_id"
        f" FROM {_FETCH_JOIN}",
        (_ranges_json(wanted), mailbox_id),
    ).fetchall()
    keywords = _keywords_of(conn, mailbox_id, wanted) if rows else {}
    return [
        MessageInfo(
            mailbox_id=mailbox_id,
            uid=r[0],
            modseq=r[1],
            flags=_flag_set(r[2], keywords.get(r[0], ())),
            internaldate=_from_epoch(r[3], r[4]),
            size=r[5],
            envelope=r[6] or b"",
            bodystructure=r[7] or b"",
            body=r[8] or b"",
            parts=r[9] or "",
            preview=r[10] or "",
            blob_id=r[11],
        )
        for r in rows
    ]
