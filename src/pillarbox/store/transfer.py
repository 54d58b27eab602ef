"""Moving a SQLite store into an empty PostgreSQL database (`pillarbox migrate-store`).

Why a straight copy works: the PostgreSQL schema (pg_0001) has the same tables and
column shapes as SQLite's at sqlite_0013, so every row is copied as it is, ids
included. Nothing an IMAP client has cached may change: UIDVALIDITY, UIDs, MODSEQs,
uidnext, highestmodseq, the \\Recent watermark, the expunged rows QRESYNC answers from,
and the blob ids (EMAILID and THREADID are made from them, RFC 8474) all survive.

Theory of operation:
  * The source is read read-only, in one read transaction over ``pillarbox.db`` with
    ``search.db`` attached, so it is one consistent state (the server should be
    stopped; a running one would keep writing after the snapshot).
  * The target is migrated to the newest schema, then must be empty: every table this
    copy fills is locked and checked in the same transaction, so a second transfer or
    a node starting meanwhile waits instead of interleaving.
  * Everything is loaded in ONE transaction, table by table with binary COPY
    (`copy_records_to_table`). The row triggers that keep `blobs.refs` and the quota
    usage are disabled for the load (the copied counters are already right; firing
    them would count every message twice) and enabled again before the commit.
  * Message files are streamed in `CHUNK` pieces into ``blob_chunks`` (seq from 0);
    the search text comes from SQLite's FTS rows with the casefolded columns computed
    here, exactly as delivery computes them (`str.casefold`).
  * Identity columns are set to the largest id copied (mailboxes: also SQLite's
    ``mailbox_id_high``, so a deleted mailbox's id is never given again).
  * Before the commit a verification pass compares row counts per table, per-mailbox
    counts and sums (uids, modseqs, flags, sizes, keywords, expunged), the chunk bytes
    of every blob against its size, and the sha256 of a sample of blobs against the
    files. Any difference rolls the whole load back: the target is then empty again.

Must not: write to the SQLite store, load into a database that holds mail, or print
(the caller draws progress through `Progress`).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import asyncpg

from pillarbox.store.errors import StoreError
from pillarbox.store.postgres import blobs as pg_blobs
from pillarbox.store.postgres import schema as pg_schema
from pillarbox.store.postgres.errors import map_error
from pillarbox.store.sqlite import schema as sqlite_schema
from pillarbox.store.sqlite.blobs import BlobFiles
from pillarbox.store.sqlite.core import BLOB_DIR, DB_NAME
from pillarbox.store.sqlite.text_index import TEXT_DB_NAME

# The chunk size of blob_chunks: every chunk but a blob's last is exactly this long, so
# a reader finds byte n in chunk n // CHUNK (store.postgres.blobs reads the same way).
CHUNK = pg_blobs.CHUNK

# The tables copied row for row, parents before children (foreign keys are checked as
# rows arrive). blob_chunks and blob_text are filled from the files and search.db.
TABLES = (
    "settings",
    "domains",
    "accounts",
    "aliases",
    "mailboxes",
    "subscriptions",
    "blobs",
    "messages",
    "keywords",
    "expunged",
    "queue",
    "queue_recipients",
    "dkim_keys",
    "thread_ids",
    "fetch_sources",
    "fetch_folders",
    "fetch_fetched",
    "identities",
    "image_senders",
)
DERIVED = ("blob_chunks", "blob_text")
# The tables whose row triggers maintain counters that are copied as they are.
COUNTED = ("messages", "queue")
# Column values not taken over: a queue entry claimed by the stopped SQLite server is
# released (as that server's own restart would: QueueRunner.start -> release_claims).
# (A column the source does not have is not copied at all: the target's default.)
OVERRIDES: dict[tuple[str, str], object] = {
    ("queue", "claimed_until"): None,
    ("queue", "claimed_by"): "",
}
_KEEP = object()  # marks a column copied as it is (not in OVERRIDES)
SAMPLE = 32  # blobs whose bytes are hashed on both sides in the verification pass
ROWS_PER_COPY = 5000  # rows per COPY call, so progress moves and memory stays bounded


class TransferError(StoreError):
    """The transfer cannot start or did not verify; the target is left as it was."""


class Progress(Protocol):
    """Where the transfer reports the bytes of message files it has loaded."""

    def begin(self, total_bytes: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...

    def end(self) -> None: ...


@dataclass(slots=True)
class TransferReport:
    """What was copied and checked."""

    rows: dict[str, int] = field(default_factory=dict)
    blob_bytes: int = 0
    mailboxes_checked: int = 0
    blobs_hashed: int = 0
    schema_version: int = 0


# --- the source ------------------------------------------------------------------------


def open_source(data_dir: Path) -> sqlite3.Connection:
    """A read-only connection to the SQLite store in `data_dir`, search.db attached as
    ``text``, inside one read transaction (the snapshot everything is copied from).

    ``pillarbox.db`` is read first, then ``search.db``: a delivery commits a message's
    text with its row in ``text_pending`` and moves it to search.db before deleting it
    there (`sqlite.text_index`), so every row in the first snapshot has its text in
    that snapshot's ``text_pending`` or in the second, even if a server were still
    writing."""
    db = data_dir / DB_NAME
    if not db.is_file():
        raise TransferError(f"no SQLite store at {data_dir} (no {DB_NAME} there)")
    text = data_dir / TEXT_DB_NAME
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None)
        if text.is_file():
            conn.execute("ATTACH DATABASE ? AS text", (f"file:{text}?mode=ro",))
        conn.execute("BEGIN")  # one snapshot per file from its first read (WAL)
        version = conn.execute("SELECT max(version) FROM main.schema_version").fetchone()[0]
        if text.is_file():
            conn.execute("SELECT count(*) FROM text.sqlite_master").fetchone()
    except sqlite3.Error as exc:
        raise TransferError(f"cannot read {db}: {exc}") from exc
    newest = sqlite_schema.migrations()[-1][0]
    if version != newest:
        conn.close()
        raise TransferError(
            f"{db} has schema version {version}, not {newest}: run `pillarbox migrate` "
            "with this release on the SQLite configuration first"
        )
    return conn


def _source_has_text(conn: sqlite3.Connection) -> str | None:
    """Where the FTS rows are: ``text.blob_text`` (search.db), or None (no index)."""
    for schema_name in ("text", "main"):
        try:
            found = conn.execute(
                f"SELECT 1 FROM {schema_name}.sqlite_master WHERE name = 'blob_text'"
            ).fetchone()
        except sqlite3.Error:
            continue
        if found is not None:
            return f"{schema_name}.blob_text"
    return None


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA main.table_info({table})")}


# --- value conversion ------------------------------------------------------------------


def _text(value: Any, nul: str = "\ufffd") -> str:
    """SQLite text as PostgreSQL takes it: PostgreSQL text cannot hold NUL (SQLite's
    can), so a NUL becomes U+FFFD (`nul`); bytes stored in a text column are decoded."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value)
    return text.replace("\x00", nul) if "\x00" in text else text


def _integer(value: Any) -> int:
    """SQLite keeps a fraction in an INTEGER column when one is written (the queue's
    times); PostgreSQL's bigint rounds it as a float8 -> bigint cast does."""
    return round(value) if isinstance(value, float) else int(value)


def _bytes(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


_CONVERT: dict[str, Callable[[Any], Any]] = {
    "bigint": _integer,
    "integer": _integer,
    "smallint": _integer,
    "double precision": float,
    "real": float,
    "bytea": _bytes,
    "text": _text,
}


def _converter(data_type: str) -> Callable[[Any], Any]:
    convert = _CONVERT.get(data_type)
    if convert is None:
        raise TransferError(f"migrate-store cannot copy a column of type {data_type}")
    return convert


# --- the transfer ----------------------------------------------------------------------


async def transfer(data_dir: Path, dsn: str, progress: Progress | None = None) -> TransferReport:
    """Copy the SQLite store in `data_dir` into the empty PostgreSQL database `dsn`
    (see the module docstring); returns what was copied. Raises `TransferError` (or
    another `StoreError`) with the target unchanged."""
    source = open_source(data_dir)
    io = ThreadPoolExecutor(1, thread_name_prefix="pillarbox-transfer")
    try:
        try:
            conn = await asyncpg.connect(dsn, timeout=10)
        except Exception as exc:
            raise map_error(exc) from exc
        try:
            report = TransferReport()
            report.schema_version = await pg_schema.migrate(conn)
            loader = _Loader(source, conn, BlobFiles(data_dir / BLOB_DIR, io), io, progress)
            await loader.run(report)
            await conn.execute("ANALYZE")
            return report
        except StoreError:
            raise
        except Exception as exc:
            mapped = map_error(exc)
            if mapped is exc:
                raise TransferError(f"{type(exc).__name__}: {exc}") from exc
            raise mapped from exc
        finally:
            await conn.close()
    finally:
        source.close()
        io.shutdown(wait=True)


class _Loader:
    """One transfer: the source snapshot, the target connection, the blob files."""

    def __init__(
        self,
        source: sqlite3.Connection,
        conn: asyncpg.Connection,
        files: BlobFiles,
        io: ThreadPoolExecutor,
        progress: Progress | None,
    ) -> None:
        self.source = source
        self.conn = conn
        self.files = files
        self.io = io
        self.progress = progress

    async def run(self, report: TransferReport) -> None:
        async with self.conn.transaction():
            await self._check_empty()
            for table in COUNTED:
                await self.conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            for table in TABLES:
                report.rows[table] = await self._copy_table(table)
            await self.conn.execute(
                "UPDATE blobs SET state = 'done', unreferenced_at = extract(epoch FROM now())"
                " WHERE refs <= 0"
            )
            report.rows["blob_chunks"], report.blob_bytes = await self._copy_chunks()
            report.rows["blob_text"] = await self._copy_text()
            for table in COUNTED:
                await self.conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
            await self._set_identities()
            await self._verify(report)

    # --- target checks -----------------------------------------------------------------
    async def _check_empty(self) -> None:
        names = ", ".join(TABLES + DERIVED)
        # Whoever else would write here (a node starting, a second transfer) waits.
        await self.conn.execute(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE")
        for table in TABLES + DERIVED:
            if await self.conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"):
                raise TransferError(
                    f"the target database is not empty (table {table} has rows): "
                    "migrate-store loads only a new, empty database"
                )

    async def _target_types(self, table: str) -> list[tuple[str, str]]:
        rows = await self.conn.fetch(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = $1"
            " ORDER BY ordinal_position",
            table,
        )
        return [(str(r["column_name"]), str(r["data_type"])) for r in rows]

    # --- rows --------------------------------------------------------------------------
    async def _copy_table(self, table: str) -> int:
        have = _columns(self.source, table)
        if not have:
            raise TransferError(f"the SQLite store has no table {table}")
        columns = [(name, kind) for name, kind in await self._target_types(table) if name in have]
        names = [name for name, _ in columns]
        convert = [_converter(kind) for _, kind in columns]
        fixed = [OVERRIDES.get((table, name), _KEEP) for name in names]
        cursor = self.source.execute(f"SELECT {', '.join(names)} FROM main.{table}")
        copied = 0
        while batch := cursor.fetchmany(ROWS_PER_COPY):
            records = [
                tuple(
                    (None if v is None else c(v)) if f is _KEEP else f
                    for v, c, f in zip(row, convert, fixed, strict=True)
                )
                for row in batch
            ]
            await self.conn.copy_records_to_table(table, records=records, columns=names)
            copied += len(records)
        return copied

    async def _copy_text(self) -> int:
        where = _source_has_text(self.source)
        # Texts committed but not yet indexed are in main.text_pending (sqlite_0016,
        # `sqlite.text_index`); read in the same snapshot, they win over the index.
        pending = (
            "SELECT blob_id, headers, body_text FROM main.text_pending"
            " WHERE blob_id IN (SELECT id FROM main.blobs)"
        )
        if where is None:
            sql = pending
        else:
            sql = (
                f"SELECT rowid, headers, body_text FROM {where}"
                " WHERE rowid IN (SELECT id FROM main.blobs)"
                " AND rowid NOT IN (SELECT blob_id FROM main.text_pending)"
                f" UNION ALL {pending}"
            )
        cursor = self.source.execute(sql)
        copied = 0
        while batch := cursor.fetchmany(ROWS_PER_COPY // 10):
            records = []
            for blob_id, headers, body in batch:
                # NUL dropped, as delivery drops it (store.postgres.text): the same
                # text gives the same SEARCH results.
                head, text = _text(headers or "", ""), _text(body or "", "")
                records.append((int(blob_id), head, head.casefold(), text.casefold()))
            await self.conn.copy_records_to_table(
                "blob_text",
                records=records,
                columns=["blob_id", "headers", "headers_cf", "body_cf"],
            )
            copied += len(records)
        return copied

    # --- blob bytes --------------------------------------------------------------------
    async def _copy_chunks(self) -> tuple[int, int]:
        blobs = self.source.execute("SELECT id, size FROM main.blobs ORDER BY id").fetchall()
        total = sum(int(size) for _, size in blobs)
        if self.progress is not None:
            self.progress.begin(total)
        counts = [0, 0]  # chunks, bytes
        try:
            await self.conn.copy_records_to_table(
                "blob_chunks",
                records=self._chunks([(int(i), int(s)) for i, s in blobs], counts),
                columns=["blob_id", "seq", "data"],
            )
        finally:
            if self.progress is not None:
                self.progress.end()
        return counts[0], counts[1]

    async def _chunks(
        self, blobs: Sequence[tuple[int, int]], counts: list[int]
    ) -> AsyncIterator[tuple[int, int, bytes]]:
        """Each blob's file as (blob_id, seq, CHUNK bytes), read in a thread."""
        loop = asyncio.get_running_loop()
        for blob_id, size in blobs:
            path = self.files.path(blob_id)
            try:
                handle = await loop.run_in_executor(self.io, path.open, "rb")
            except FileNotFoundError:
                raise TransferError(f"the file of blob {blob_id} is missing ({path})") from None
            try:
                seq, done = 0, 0
                while data := await loop.run_in_executor(self.io, handle.read, CHUNK):
                    yield blob_id, seq, data
                    seq, done = seq + 1, done + len(data)
                    counts[0] += 1
                    if self.progress is not None:
                        self.progress.advance(len(data))
            finally:
                handle.close()
            if done != size:
                raise TransferError(f"blob {blob_id}: the file has {done} bytes, its row {size}")
            counts[1] += done

    # --- counters ----------------------------------------------------------------------
    async def _set_identities(self) -> None:
        """Every identity column continues after the largest id copied."""
        rows = await self.conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND is_identity = 'YES'"
        )
        high = self.source.execute(
            "SELECT value FROM main.settings WHERE key = 'mailbox_id_high'"
        ).fetchone()
        floors = {"mailboxes": int(high[0]) if high else 0}
        for row in rows:
            table, column = str(row["table_name"]), str(row["column_name"])
            largest = await self.conn.fetchval(f"SELECT coalesce(max({column}), 0) FROM {table}")
            value = max(int(largest), floors.get(table, 0))
            await self.conn.execute(
                "SELECT setval(pg_get_serial_sequence($1, $2), $3, $4)",
                table,
                column,
                max(value, 1),
                value > 0,
            )

    # --- verification ------------------------------------------------------------------
    async def _verify(self, report: TransferReport) -> None:
        for table in TABLES:
            want = self.source.execute(f"SELECT count(*) FROM main.{table}").fetchone()[0]
            got = await self.conn.fetchval(f"SELECT count(*) FROM {table}")
            if want != got:
                raise TransferError(f"verification: {table} has {got} rows, the source {want}")
        await self._verify_mailboxes(report)
        bad = await self.conn.fetchval(
            "SELECT count(*) FROM blobs b WHERE b.size <> coalesce("
            "(SELECT sum(octet_length(c.data)) FROM blob_chunks c WHERE c.blob_id = b.id), 0)"
        )
        if bad:
            raise TransferError(f"verification: {bad} blobs' chunks do not add up to their size")
        ids = [int(r[0]) for r in self.source.execute("SELECT id FROM main.blobs")]
        for blob_id in random.sample(ids, min(SAMPLE, len(ids))):
            await self._verify_blob(blob_id)
            report.blobs_hashed += 1

    async def _verify_mailboxes(self, report: TransferReport) -> None:
        """Counts and sums per mailbox: a row lost, doubled or altered shows here."""
        queries = {
            "mailbox": (
                "SELECT id, uidvalidity, uidnext, highestmodseq, recent_uid, account_id"
                " FROM {p}mailboxes ORDER BY id"
            ),
            "messages": (
                "SELECT mailbox_id, count(*), sum(uid), sum(modseq), sum(flags), sum(size),"
                " sum(pop_hidden), max(modseq) FROM {p}messages GROUP BY mailbox_id"
                " ORDER BY mailbox_id"
            ),
            "keywords": (
                "SELECT mailbox_id, count(*), sum(uid) FROM {p}keywords GROUP BY mailbox_id"
                " ORDER BY mailbox_id"
            ),
            "expunged": (
                "SELECT mailbox_id, count(*), sum(uid), sum(modseq) FROM {p}expunged"
                " GROUP BY mailbox_id ORDER BY mailbox_id"
            ),
            "accounts": "SELECT id, used_bytes, used_messages FROM {p}accounts ORDER BY id",
        }
        for what, sql in queries.items():
            want = [tuple(int(v) for v in r) for r in self.source.execute(sql.format(p="main."))]
            got = [tuple(int(v) for v in r) for r in await self.conn.fetch(sql.format(p=""))]
            if want != got:
                pairs = zip(want + [()] * len(got), got + [()] * len(want), strict=False)
                source_row, target_row = next((w, g) for w, g in pairs if w != g)
                raise TransferError(
                    f"verification: {what} differ: source {source_row}, target {target_row}"
                )
            if what == "mailbox":
                report.mailboxes_checked = len(got)

    async def _verify_blob(self, blob_id: int) -> None:
        loop = asyncio.get_running_loop()
        path = self.files.path(blob_id)
        want = await loop.run_in_executor(self.io, _file_digest, path)
        digest = hashlib.sha256()
        seq = 0
        while True:
            data = await self.conn.fetchval(
                "SELECT data FROM blob_chunks WHERE blob_id = $1 AND seq = $2", blob_id, seq
            )
            if data is None:
                break
            digest.update(data)
            seq += 1
        if digest.hexdigest() != want:
            raise TransferError(f"verification: blob {blob_id}'s bytes differ from its file")


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while data := handle.read(CHUNK):
            digest.update(data)
    return digest.hexdigest()


__all__ = ["CHUNK", "Progress", "TransferError", "TransferReport", "transfer"]
