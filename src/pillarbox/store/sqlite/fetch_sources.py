"""Fetch sources in the SQLite backend: the sources, their run outcomes, and what was
fetched from each.

Owns the ``fetch_sources``, ``fetch_folders`` and ``fetch_fetched`` rows. The one
compound operation is `deliver_fetched`: the message row and its fetched record are one
writer operation (one savepoint), so the record exists exactly when the copy does.
Must not: decrypt a password (it is stored as the ciphertext it arrives as), or decide
what to fetch or delete (that is the fetcher's and the services' business).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pillarbox.model import AppendResult
from pillarbox.model.fetch import (
    FetchedCopy,
    FetchedEntry,
    FetchedRecord,
    FetchFolderState,
    FetchProtocol,
    FetchRun,
    FetchSecurity,
    FetchSource,
    NewFetchSource,
    RemoteAction,
    RemotePolicy,
)
from pillarbox.store.api import Delivery
from pillarbox.store.errors import AlreadyExists, NotFound
from pillarbox.store.sqlite.core import SqliteCore
from pillarbox.store.sqlite.message_rows import append_one
from pillarbox.store.sqlite.writer import Tx
from pillarbox.store.times import exact_epoch

_COLUMNS = (
    "id, account_id, protocol, host, port, security, username, password, target_folder,"
    " source_folders, remote_action, delete_after_days, interval, created_at, last_run_at,"
    " last_result, last_error, last_error_at, auth_failures, failures"
)


def _when(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _source(row: Sequence[Any]) -> FetchSource:
    created = _when(row[13])
    assert created is not None
    return FetchSource(
        id=row[0],
        account_id=row[1],
        protocol=FetchProtocol(row[2]),
        host=row[3],
        port=row[4],
        security=FetchSecurity(row[5]),
        username=row[6],
        password_secret=bytes(row[7]),
        target_folder=row[8],
        source_folders=tuple(json.loads(row[9])),
        policy=RemotePolicy(RemoteAction(row[10]), row[11]),
        interval=row[12],
        created_at=created,
        last_run_at=_when(row[14]),
        last_result=row[15],
        last_error=row[16],
        last_error_at=_when(row[17]),
        auth_failures=row[18],
        failures=row[19],
    )


def _flags_text(flags: frozenset[str] | None) -> str | None:
    return None if flags is None else json.dumps(sorted(flags))


def _record(tx: Tx, record: FetchedRecord, *, new: bool = False) -> None:
    """The fetched row and, for IMAP, the folder's state, in the caller's operation;
    `new`: AlreadyExists if the row is there (a second run fetched it meanwhile)."""
    conn = tx.conn
    if (
        conn.execute("SELECT 1 FROM fetch_sources WHERE id = ?", (record.source_id,)).fetchone()
        is None
    ):
        raise NotFound(f"no fetch source {record.source_id}")
    inserted = conn.execute(
        "INSERT INTO fetch_fetched (source_id, folder, uidvalidity, remote_id, digest,"
        " fetched_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING 1",
        (
            record.source_id,
            record.folder,
            record.uidvalidity or 0,
            record.remote_id,
            record.digest,
            exact_epoch(record.fetched_at),
        ),
    ).fetchone()
    if new and inserted is None:
        raise AlreadyExists(f"{record.remote_id} of source {record.source_id} is fetched")
    if record.uid is not None and record.uidvalidity is not None:
        conn.execute(
            "INSERT INTO fetch_folders (source_id, folder, uidvalidity, last_uid)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (source_id, folder) DO UPDATE SET"
            " last_uid = CASE WHEN uidvalidity = excluded.uidvalidity"
            " THEN max(last_uid, excluded.last_uid) ELSE excluded.last_uid END,"
            " uidvalidity = excluded.uidvalidity",
            (record.source_id, record.folder, record.uidvalidity, record.uid),
        )


def _settings(source: NewFetchSource) -> tuple[tuple[object, ...], tuple[object, ...]]:
    """A source's column values around its password, in the order of the table's
    columns: (protocol .. username) and (target_folder .. interval)."""
    connection = (
        source.protocol.value,
        source.host,
        source.port,
        source.security.value,
        source.username,
    )
    where = (
        source.target_folder,
        json.dumps(list(source.source_folders)),
        source.policy.action.value,
        source.policy.days,
        source.interval,
    )
    return connection, where


class FetchSourcesMixin(SqliteCore):
    """The fetch-source operations of `SqliteStore`."""

    async def add_fetch_source(self, source: NewFetchSource) -> FetchSource:
        connection, where = _settings(source)
        secret, created = source.password_secret, exact_epoch(datetime.now(UTC))
        values = (source.account_id, *connection, secret, *where, created)

        def op(tx: Tx) -> FetchSource:
            conn = tx.conn
            found = conn.execute("SELECT 1 FROM accounts WHERE id = ?", (source.account_id,))
            if found.fetchone() is None:
                raise NotFound(f"no account {source.account_id}")
            row = conn.execute(
                "INSERT INTO fetch_sources (account_id, protocol, host, port, security,"
                " username, password, target_folder, source_folders, remote_action,"
                " delete_after_days, interval, created_at)"
                f" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {_COLUMNS}",
                values,
            ).fetchone()
            return _source(row)

        return await self._write(op)

    async def list_fetch_sources(self, account_id: int | None = None) -> list[FetchSource]:
        def q(conn: sqlite3.Connection) -> list[FetchSource]:
            if account_id is None:
                rows = conn.execute(f"SELECT {_COLUMNS} FROM fetch_sources ORDER BY id")
            else:
                rows = conn.execute(
                    f"SELECT {_COLUMNS} FROM fetch_sources WHERE account_id = ? ORDER BY id",
                    (account_id,),
                )
            return [_source(r) for r in rows]

        return await self._read(q)

    async def get_fetch_source(self, source_id: int) -> FetchSource | None:
        def q(conn: sqlite3.Connection) -> FetchSource | None:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM fetch_sources WHERE id = ?", (source_id,)
            ).fetchone()
            return None if row is None else _source(row)

        return await self._read(q)

    async def remove_fetch_source(self, account_id: int, source_id: int) -> None:
        def op(tx: Tx) -> None:
            gone = tx.conn.execute(
                "DELETE FROM fetch_sources WHERE id = ? AND account_id = ? RETURNING id",
                (source_id, account_id),
            ).fetchone()
            if gone is None:
                raise NotFound(f"no fetch source {source_id} for account {account_id}")

        await self._write(op)

    async def record_fetch_run(self, source_id: int, run: FetchRun) -> FetchSource:
        at = exact_epoch(run.at)

        def op(tx: Tx) -> FetchSource:
            if run.error:
                failures = "auth_failures + 1" if run.auth_failure else "auth_failures"
                sql = (
                    "UPDATE fetch_sources SET last_run_at = ?, last_result = ?,"
                    f" last_error = ?, last_error_at = ?, auth_failures = {failures},"
                    f" failures = failures + 1 WHERE id = ? RETURNING {_COLUMNS}"
                )
                params: tuple[Any, ...] = (at, run.result, run.error, at, source_id)
            else:
                sql = (
                    "UPDATE fetch_sources SET last_run_at = ?, last_result = ?,"
                    " last_error = '', last_error_at = NULL, auth_failures = 0,"
                    f" failures = 0 WHERE id = ? RETURNING {_COLUMNS}"
                )
                params = (at, run.result, source_id)
            row = tx.conn.execute(sql, params).fetchone()
            if row is None:
                raise NotFound(f"no fetch source {source_id}")
            return _source(row)

        return await self._write(op)

    async def resume_fetch_source(self, account_id: int, source_id: int) -> FetchSource:
        def op(tx: Tx) -> FetchSource:
            row = tx.conn.execute(
                "UPDATE fetch_sources SET auth_failures = 0, failures = 0"
                f" WHERE id = ? AND account_id = ? RETURNING {_COLUMNS}",
                (source_id, account_id),
            ).fetchone()
            if row is None:
                raise NotFound(f"no fetch source {source_id} for account {account_id}")
            return _source(row)

        return await self._write(op)

    async def update_fetch_source(self, source_id: int, source: NewFetchSource) -> FetchSource:
        connection, where = _settings(source)
        secret = source.password_secret  # twice: an empty one keeps the stored password
        values = (*connection, secret, secret, *where, source_id, source.account_id)

        def op(tx: Tx) -> FetchSource:
            row = tx.conn.execute(
                "UPDATE fetch_sources SET protocol = ?, host = ?, port = ?, security = ?,"
                " username = ?, password = CASE WHEN length(?) > 0 THEN ? ELSE password END,"
                " target_folder = ?, source_folders = ?, remote_action = ?,"
                " delete_after_days = ?, interval = ?, auth_failures = 0, failures = 0"
                f" WHERE id = ? AND account_id = ? RETURNING {_COLUMNS}",
                values,
            ).fetchone()
            if row is None:
                raise NotFound(f"no fetch source {source_id} for account {source.account_id}")
            return _source(row)

        return await self._write(op)

    async def claim_fetch_source(
        self, source_id: int, holder: str, until: datetime
    ) -> FetchSource | None:
        now, end = exact_epoch(datetime.now(UTC)), exact_epoch(until)

        def op(tx: Tx) -> FetchSource | None:
            row = tx.conn.execute(
                "UPDATE fetch_sources SET claim_holder = ?, claim_until = ? WHERE id = ?"
                " AND (claim_holder = ? OR claim_until IS NULL OR claim_until <= ?)"
                f" RETURNING {_COLUMNS}",
                (holder, end, source_id, holder, now),
            ).fetchone()
            return None if row is None else _source(row)

        return await self._write(op)

    async def release_fetch_source(self, source_id: int, holder: str) -> None:
        def op(tx: Tx) -> None:
            tx.conn.execute(
                "UPDATE fetch_sources SET claim_holder = '', claim_until = NULL"
                " WHERE id = ? AND claim_holder = ?",
                (source_id, holder),
            )

        await self._write(op)

    async def fetched(self, source_id: int, folder: str) -> list[FetchedEntry]:
        def q(conn: sqlite3.Connection) -> list[FetchedEntry]:
            rows = conn.execute(
                "SELECT remote_id, digest, fetched_at, uidvalidity FROM fetch_fetched"
                " WHERE source_id = ? AND folder = ? ORDER BY fetched_at, remote_id",
                (source_id, folder),
            )
            return [
                FetchedEntry(rid, digest, datetime.fromtimestamp(at, UTC), uv or None)
                for rid, digest, at, uv in rows
            ]

        return await self._read(q)

    async def fetch_folders(self, source_id: int) -> list[FetchFolderState]:
        def q(conn: sqlite3.Connection) -> list[FetchFolderState]:
            rows = conn.execute(
                "SELECT folder, uidvalidity, last_uid, highestmodseq FROM fetch_folders"
                " WHERE source_id = ? ORDER BY folder",
                (source_id,),
            )
            return [FetchFolderState(f, uv, last, modseq) for f, uv, last, modseq in rows]

        return await self._read(q)

    async def fetched_copies(
        self, source_id: int, folder: str, uidvalidity: int
    ) -> list[FetchedCopy]:
        def q(conn: sqlite3.Connection) -> list[FetchedCopy]:
            rows = conn.execute(
                "SELECT CAST(remote_id AS INTEGER), local_mailbox, local_uid, remote_flags"
                " FROM fetch_fetched WHERE source_id = ? AND folder = ? AND uidvalidity = ?"
                " AND local_uid IS NOT NULL ORDER BY 1",
                (source_id, folder, uidvalidity),
            )
            return [
                FetchedCopy(r, m, u, None if f is None else frozenset(json.loads(f)))
                for r, m, u, f in rows
            ]

        return await self._read(q)

    async def set_fetched_flags(
        self, source_id: int, folder: str, uidvalidity: int, flags: Mapping[int, frozenset[str]]
    ) -> None:
        values = [
            (_flags_text(f), source_id, folder, uidvalidity, str(uid)) for uid, f in flags.items()
        ]

        def op(tx: Tx) -> None:
            tx.conn.executemany(
                "UPDATE fetch_fetched SET remote_flags = ? WHERE source_id = ? AND folder = ?"
                " AND uidvalidity = ? AND remote_id = ?",
                values,
            )

        await self._write(op)

    async def deliver_fetched(self, delivery: Delivery, record: FetchedRecord) -> AppendResult:

        def op(tx: Tx) -> AppendResult:
            # One operation, one savepoint: the record is rolled back with a refused
            # copy (quota, a mailbox gone) and the copy with a refused record.
            _record(tx, record, new=True)
            d = delivery
            result = append_one(
                tx, self._files(), d.mailbox_id, d.blob, d.meta, d.flags, d.internaldate
            )
            tx.conn.execute(
                "UPDATE fetch_fetched SET local_mailbox = ?, local_uid = ?, remote_flags = ?"
                " WHERE source_id = ? AND folder = ? AND uidvalidity = ? AND remote_id = ?",
                (
                    d.mailbox_id,
                    result.uid,
                    _flags_text(record.flags),
                    record.source_id,
                    record.folder,
                    record.uidvalidity or 0,
                    record.remote_id,
                ),
            )
            return result

        return await self._write(op, text=self._text_rows([(delivery.blob.blob_id, delivery.meta)]))

    async def mark_fetched(self, records: Sequence[FetchedRecord]) -> None:
        items = list(records)

        def op(tx: Tx) -> None:
            for record in items:
                _record(tx, record)

        await self._write(op)

    async def set_fetch_folder(self, source_id: int, state: FetchFolderState) -> None:
        def op(tx: Tx) -> None:
            tx.conn.execute(
                "INSERT INTO fetch_folders (source_id, folder, uidvalidity, last_uid,"
                " highestmodseq) VALUES (?, ?, ?, ?, ?) ON CONFLICT (source_id, folder)"
                " DO UPDATE SET uidvalidity = excluded.uidvalidity,"
                " last_uid = excluded.last_uid, highestmodseq = excluded.highestmodseq",
                (source_id, state.folder, state.uidvalidity, state.last_uid, state.highestmodseq),
            )

        await self._write(op)

    async def forget_fetched(
        self,
        source_id: int,
        folder: str,
        remote_ids: Sequence[str],
        *,
        keep_uidvalidity: int | None = None,
    ) -> None:
        ids = json.dumps(list(remote_ids))

        def op(tx: Tx) -> None:
            conn = tx.conn
            conn.execute(
                "DELETE FROM fetch_fetched WHERE source_id = ? AND folder = ?"
                " AND remote_id IN (SELECT value FROM json_each(?))",
                (source_id, folder, ids),
            )
            if keep_uidvalidity is not None:
                conn.execute(
                    "DELETE FROM fetch_fetched WHERE source_id = ? AND folder = ?"
                    " AND uidvalidity != ?",
                    (source_id, folder, keep_uidvalidity),
                )

        await self._write(op)
