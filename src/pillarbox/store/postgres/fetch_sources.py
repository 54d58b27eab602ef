"""Fetch sources in the PostgreSQL backend: the sources, their run outcomes, and what
was fetched from each (the port of `store.sqlite.fetch_sources`, same results, same
errors).

Owns the ``fetch_sources``, ``fetch_folders`` and ``fetch_fetched`` rows. Two things
matter across nodes:
  * `claim_fetch_source` is one conditional UPDATE. Under READ COMMITTED a second node's
    UPDATE of the same row waits for the first one's commit and then re-checks its WHERE
    against the committed row, so of two nodes racing for a free source exactly one gets
    it, and a claim holds until its holder releases it or its time is up.
  * `deliver_fetched`: the message row (`message_rows.insert_messages`, with its
    blob's metadata, search text, locks and change event) and its fetched record are
    one transaction, so the record exists exactly when the copy does; a second node
    that fetched the same remote message meanwhile waits on the first one's unique key
    and then gets AlreadyExists (and stores nothing).
Times are epoch seconds in double precision columns, as SQLite keeps them (so the
migration between the two is a straight copy); "now" is this node's clock, the clock
the caller's `until` comes from (nodes need NTP, docs/plans/issue-17-postgres.md, 7).
Must not: decrypt a password (it is stored as the ciphertext it arrives as), or decide
what to fetch or delete (that is the fetcher's and the services' business).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import asyncpg

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
from pillarbox.store.postgres.core import Conn, PgCore, PgTx
from pillarbox.store.postgres.message_rows import insert_messages
from pillarbox.store.times import exact_epoch

_COLUMNS = (
    "id, account_id, protocol, host, port, security, username, password, target_folder,"
    " source_folders, remote_action, delete_after_days, interval, created_at, last_run_at,"
    " last_result, last_error, last_error_at, auth_failures, failures"
)


def _when(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _source(row: asyncpg.Record) -> FetchSource:
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
    """The carried flags as SQLite stores them (a sorted JSON list), so rows copy over."""
    return None if flags is None else json.dumps(sorted(flags))


async def _record(conn: Conn, records: Sequence[FetchedRecord], *, new: bool = False) -> None:
    """The fetched rows and, for IMAP, their folders' state, in the caller's transaction;
    `new`: AlreadyExists if a row is there (a second run fetched it meanwhile).

    Deadlock-free between nodes recording the same messages at once: the sources are
    locked FOR KEY SHARE in id order (a concurrent `remove_fetch_source` then waits, or,
    if it committed first, the source is not found rather than a foreign key failing),
    the rows are inserted in key order (a waiter on another's uncommitted key waits in
    the same order), and the folders are updated only after every insert."""
    wanted = list(dict.fromkeys(r.source_id for r in records))
    found = {
        row[0]
        for row in await conn.fetch(
            "SELECT id FROM fetch_sources WHERE id = ANY($1::bigint[]) ORDER BY id FOR KEY SHARE",
            wanted,
        )
    }
    missing = [s for s in wanted if s not in found]
    if missing:
        raise NotFound(f"no fetch source {missing[0]}")
    inserted = await conn.fetch(
        "INSERT INTO fetch_fetched (source_id, folder, uidvalidity, remote_id, digest,"
        " fetched_at) SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[],"
        " $4::text[], $5::text[], $6::float8[]) ORDER BY 1, 2, 3, 4"
        " ON CONFLICT DO NOTHING RETURNING 1",
        [r.source_id for r in records],
        [r.folder for r in records],
        [r.uidvalidity or 0 for r in records],
        [r.remote_id for r in records],
        [r.digest for r in records],
        [exact_epoch(r.fetched_at) for r in records],
    )
    if new and len(inserted) < len(records):
        r = records[0]
        raise AlreadyExists(f"{r.remote_id} of source {r.source_id} is fetched")
    for source_id, folder, uidvalidity, uid in _folder_steps(records):
        # Another UIDVALIDITY restarts the folder; the same one only moves forward.
        await conn.execute(
            "INSERT INTO fetch_folders AS f (source_id, folder, uidvalidity, last_uid)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT (source_id, folder) DO UPDATE SET"
            " last_uid = CASE WHEN f.uidvalidity = excluded.uidvalidity"
            " THEN greatest(f.last_uid, excluded.last_uid) ELSE excluded.last_uid END,"
            " uidvalidity = excluded.uidvalidity",
            source_id,
            folder,
            uidvalidity,
            uid,
        )


def _folder_steps(records: Sequence[FetchedRecord]) -> list[tuple[int, str, int, int]]:
    """The folder updates of `records`, in their order within each folder, with each run
    of records for one folder under one UIDVALIDITY merged into its highest UID: the
    same end state as one update per record (the same UIDVALIDITY only takes the
    greater UID), in fewer statements."""
    steps: list[tuple[int, str, int, int]] = []
    latest: dict[tuple[int, str], int] = {}  # folder -> index of its latest step
    for r in records:
        if r.uid is None or r.uidvalidity is None:
            continue
        at = latest.get((r.source_id, r.folder))
        if at is not None and steps[at][2] == r.uidvalidity:
            steps[at] = (r.source_id, r.folder, r.uidvalidity, max(steps[at][3], r.uid))
        else:
            latest[(r.source_id, r.folder)] = len(steps)
            steps.append((r.source_id, r.folder, r.uidvalidity, r.uid))
    # Folder by folder (a stable sort keeps each folder's own order), so two nodes
    # updating the same folders lock them in the same order.
    return sorted(steps, key=lambda step: step[:2])


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


class FetchSourcesMixin(PgCore):
    """The fetch-source operations of `PgStore`."""

    async def add_fetch_source(self, source: NewFetchSource) -> FetchSource:
        connection, where = _settings(source)
        secret, created = source.password_secret, exact_epoch(datetime.now(UTC))
        values = (source.account_id, *connection, secret, *where, created)

        async def op(tx: PgTx) -> FetchSource:
            conn = tx.conn
            # KEY SHARE: the account cannot go between this check and the insert.
            found = await conn.fetchval(
                "SELECT 1 FROM accounts WHERE id = $1 FOR KEY SHARE", source.account_id
            )
            if found is None:
                raise NotFound(f"no account {source.account_id}")
            row = await conn.fetchrow(
                "INSERT INTO fetch_sources (account_id, protocol, host, port, security,"
                " username, password, target_folder, source_folders, remote_action,"
                " delete_after_days, interval, created_at) VALUES"
                f" ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING {_COLUMNS}",
                *values,
            )
            assert row is not None
            return _source(row)

        return await self._write(op)

    async def list_fetch_sources(self, account_id: int | None = None) -> list[FetchSource]:
        async def q(conn: Conn) -> list[FetchSource]:
            if account_id is None:
                rows = await conn.fetch(f"SELECT {_COLUMNS} FROM fetch_sources ORDER BY id")
            else:
                rows = await conn.fetch(
                    f"SELECT {_COLUMNS} FROM fetch_sources WHERE account_id = $1 ORDER BY id",
                    account_id,
                )
            return [_source(r) for r in rows]

        return await self._read(q)

    async def get_fetch_source(self, source_id: int) -> FetchSource | None:
        async def q(conn: Conn) -> FetchSource | None:
            row = await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM fetch_sources WHERE id = $1", source_id
            )
            return None if row is None else _source(row)

        return await self._read(q)

    async def remove_fetch_source(self, account_id: int, source_id: int) -> None:
        async def op(tx: PgTx) -> None:
            gone = await tx.conn.fetchval(
                "DELETE FROM fetch_sources WHERE id = $1 AND account_id = $2 RETURNING id",
                source_id,
                account_id,
            )
            if gone is None:
                raise NotFound(f"no fetch source {source_id} for account {account_id}")

        await self._write(op)

    async def record_fetch_run(self, source_id: int, run: FetchRun) -> FetchSource:
        at = exact_epoch(run.at)

        async def op(tx: PgTx) -> FetchSource:
            if run.error:
                failures = "auth_failures + 1" if run.auth_failure else "auth_failures"
                row = await tx.conn.fetchrow(
                    "UPDATE fetch_sources SET last_run_at = $1, last_result = $2,"
                    f" last_error = $3, last_error_at = $1, auth_failures = {failures},"
                    f" failures = failures + 1 WHERE id = $4 RETURNING {_COLUMNS}",
                    at,
                    run.result,
                    run.error,
                    source_id,
                )
            else:
                row = await tx.conn.fetchrow(
                    "UPDATE fetch_sources SET last_run_at = $1, last_result = $2,"
                    " last_error = '', last_error_at = NULL, auth_failures = 0,"
                    f" failures = 0 WHERE id = $3 RETURNING {_COLUMNS}",
                    at,
                    run.result,
                    source_id,
                )
            if row is None:
                raise NotFound(f"no fetch source {source_id}")
            return _source(row)

        return await self._write(op)

    async def resume_fetch_source(self, account_id: int, source_id: int) -> FetchSource:
        async def op(tx: PgTx) -> FetchSource:
            row = await tx.conn.fetchrow(
                "UPDATE fetch_sources SET auth_failures = 0, failures = 0"
                f" WHERE id = $1 AND account_id = $2 RETURNING {_COLUMNS}",
                source_id,
                account_id,
            )
            if row is None:
                raise NotFound(f"no fetch source {source_id} for account {account_id}")
            return _source(row)

        return await self._write(op)

    async def update_fetch_source(self, source_id: int, source: NewFetchSource) -> FetchSource:
        connection, where = _settings(source)
        # An empty ciphertext keeps the stored password (the form left it blank).
        values = (*connection, source.password_secret, *where, source_id, source.account_id)

        async def op(tx: PgTx) -> FetchSource:
            row = await tx.conn.fetchrow(
                "UPDATE fetch_sources SET protocol = $1, host = $2, port = $3, security = $4,"
                " username = $5,"
                " password = CASE WHEN length($6::bytea) > 0 THEN $6::bytea ELSE password END,"
                " target_folder = $7, source_folders = $8, remote_action = $9,"
                " delete_after_days = $10, interval = $11, auth_failures = 0, failures = 0"
                f" WHERE id = $12 AND account_id = $13 RETURNING {_COLUMNS}",
                *values,
            )
            if row is None:
                raise NotFound(f"no fetch source {source_id} for account {source.account_id}")
            return _source(row)

        return await self._write(op)

    async def claim_fetch_source(
        self, source_id: int, holder: str, until: datetime
    ) -> FetchSource | None:
        now, end = exact_epoch(datetime.now(UTC)), exact_epoch(until)

        async def op(tx: PgTx) -> FetchSource | None:
            # One statement: a racing node's UPDATE waits for this row's lock and then
            # re-evaluates the WHERE against the committed claim (READ COMMITTED), so two
            # nodes never both hold one source. '' is a released (or never made) claim.
            row = await tx.conn.fetchrow(
                "UPDATE fetch_sources SET claim_holder = $2, claim_until = $3 WHERE id = $1"
                " AND (claim_holder = $2 OR claim_holder = '' OR claim_until IS NULL"
                f" OR claim_until <= $4) RETURNING {_COLUMNS}",
                source_id,
                holder,
                end,
                now,
            )
            return None if row is None else _source(row)

        return await self._write(op)

    async def release_fetch_source(self, source_id: int, holder: str) -> None:
        async def op(tx: PgTx) -> None:
            await tx.conn.execute(
                "UPDATE fetch_sources SET claim_holder = '', claim_until = NULL"
                " WHERE id = $1 AND claim_holder = $2",
                source_id,
                holder,
            )

        await self._write(op)

    async def fetched(self, source_id: int, folder: str) -> list[FetchedEntry]:
        async def q(conn: Conn) -> list[FetchedEntry]:
            rows = await conn.fetch(
                "SELECT remote_id, digest, fetched_at, uidvalidity FROM fetch_fetched"
                " WHERE source_id = $1 AND folder = $2 ORDER BY fetched_at, remote_id",
                source_id,
                folder,
            )
            return [
                FetchedEntry(rid, digest, datetime.fromtimestamp(at, UTC), uv or None)
                for rid, digest, at, uv in rows
            ]

        return await self._read(q)

    async def fetch_folders(self, source_id: int) -> list[FetchFolderState]:
        async def q(conn: Conn) -> list[FetchFolderState]:
            rows = await conn.fetch(
                "SELECT folder, uidvalidity, last_uid, highestmodseq FROM fetch_folders"
                " WHERE source_id = $1 ORDER BY folder",
                source_id,
            )
            return [FetchFolderState(f, uv, last, modseq) for f, uv, last, modseq in rows]

        return await self._read(q)

    async def fetched_copies(
        self, source_id: int, folder: str, uidvalidity: int
    ) -> list[FetchedCopy]:
        async def q(conn: Conn) -> list[FetchedCopy]:
            # IMAP's remote ids are UIDs. Anything else (a POP3 UIDL) reads as its leading
            # digits or 0, as SQLite's CAST AS INTEGER reads it, rather than failing.
            rows = await conn.fetch(
                "SELECT coalesce(substring(remote_id FROM '^[0-9]{1,18}')::bigint, 0) AS uid,"
                " local_mailbox, local_uid, remote_flags"
                " FROM fetch_fetched WHERE source_id = $1 AND folder = $2"
                " AND uidvalidity = $3 AND local_uid IS NOT NULL ORDER BY 1",
                source_id,
                folder,
                uidvalidity,
            )
            return [
                FetchedCopy(r, m, u, None if f is None else frozenset(json.loads(f)))
                for r, m, u, f in rows
            ]

        return await self._read(q)

    async def set_fetched_flags(
        self, source_id: int, folder: str, uidvalidity: int, flags: Mapping[int, frozenset[str]]
    ) -> None:
        remote_ids = [str(uid) for uid in flags]
        texts = [_flags_text(f) for f in flags.values()]
        if not remote_ids:
            return

        async def op(tx: PgTx) -> None:
            await tx.conn.execute(
                "UPDATE fetch_fetched AS f SET remote_flags = r.flags"
                " FROM unnest($4::text[], $5::text[]) AS r(remote_id, flags)"
                " WHERE f.source_id = $1 AND f.folder = $2 AND f.uidvalidity = $3"
                " AND f.remote_id = r.remote_id",
                source_id,
                folder,
                uidvalidity,
                remote_ids,
                texts,
            )

        await self._write(op)

    async def deliver_fetched(self, delivery: Delivery, record: FetchedRecord) -> AppendResult:
        async def op(tx: PgTx) -> AppendResult:
            # One transaction: the record is rolled back with a refused copy (quota, a
            # mailbox gone) and the copy with a refused record. The record goes first,
            # as in SQLite, so a second node that fetched the same message meanwhile
            # waits on its key and then stops at AlreadyExists before storing anything.
            conn = tx.conn
            await _record(conn, [record], new=True)
            [result] = await insert_messages(tx, [delivery])
            await conn.execute(
                "UPDATE fetch_fetched SET local_mailbox = $1, local_uid = $2,"
                " remote_flags = $3 WHERE source_id = $4 AND folder = $5"
                " AND uidvalidity = $6 AND remote_id = $7",
                delivery.mailbox_id,
                result.uid,
                _flags_text(record.flags),
                record.source_id,
                record.folder,
                record.uidvalidity or 0,
                record.remote_id,
            )
            return result

        return await self._write(op)

    async def mark_fetched(self, records: Sequence[FetchedRecord]) -> None:
        items = list(records)
        if not items:
            return

        async def op(tx: PgTx) -> None:
            await _record(tx.conn, items)

        await self._write(op)

    async def set_fetch_folder(self, source_id: int, state: FetchFolderState) -> None:
        async def op(tx: PgTx) -> None:
            await tx.conn.execute(
                "INSERT INTO fetch_folders (source_id, folder, uidvalidity, last_uid,"
                " highestmodseq) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (source_id, folder)"
                " DO UPDATE SET uidvalidity = excluded.uidvalidity,"
                " last_uid = excluded.last_uid, highestmodseq = excluded.highestmodseq",
                source_id,
                state.folder,
                state.uidvalidity,
                state.last_uid,
                state.highestmodseq,
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
        ids = list(remote_ids)

        async def op(tx: PgTx) -> None:
            conn = tx.conn
            if ids:
                await conn.execute(
                    "DELETE FROM fetch_fetched WHERE source_id = $1 AND folder = $2"
                    " AND remote_id = ANY($3::text[])",
                    source_id,
                    folder,
                    ids,
                )
            if keep_uidvalidity is not None:
                await conn.execute(
                    "DELETE FROM fetch_fetched WHERE source_id = $1 AND folder = $2"
                    " AND uidvalidity <> $3",
                    source_id,
                    folder,
                    keep_uidvalidity,
                )

        await self._write(op)
