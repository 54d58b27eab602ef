"""The outbound queue in the SQLite backend: messages waiting for remote delivery.

Owns the ``queue`` and ``queue_recipients`` rows. A queued message refers to its blob
as a message row does: the blob row is added if new, and the schema's triggers count
the reference; removing an entry drops the blob row once nothing else refers to it
(`message_rows.collect_blobs`), and the writer unlinks its file after the commit, as
for an expunged message.

Durability, per operation (see `writer.Op.durable`): recording outcomes is synchronous
(the commit is fsynced before the caller hears back), since it is what keeps a message
from being sent twice once a peer has said 250; so are enqueueing (the 250 of the
receiving side waits for it), rescheduling (it counts attempts and records a delay
warning), retrying and removing. Only a claim commits without an fsync of its own: a
lease that a power loss undoes belonged to a process that died with it.

A claim records the node that took it (`claimed_by`, the store's `node_id`), and
`release_claims` releases only that node's: the same behaviour as the PostgreSQL
backend, where several nodes share the queue.

Times are stored as epoch seconds, with their fractions (REAL values in the INTEGER
columns), so a scheduled time reads back as written. Callers pass aware datetimes.

Must not: decide when or where to deliver (that is `queue/`, above), or read the
message file.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import cast

from pillarbox.model import (
    AppendResult,
    QueuedMessage,
    QueuedRecipient,
    QueueOrigin,
    RecipientOutcome,
    RecipientState,
)
from pillarbox.store.api import BlobHandle, Delivery
from pillarbox.store.errors import Conflict, NotFound
from pillarbox.store.sqlite.blobs import BlobFiles
from pillarbox.store.sqlite.core import SqliteCore
from pillarbox.store.sqlite.message_rows import append_one, collect_blobs, insert_blob
from pillarbox.store.sqlite.writer import Tx
from pillarbox.store.times import exact_epoch

_ENTRY = (
    "SELECT q.id, q.sender, q.blob_id, q.created_at, q.next_attempt, q.attempts,"
    " q.dsn_envid, q.dsn_ret, q.last_error, q.origin, q.warned, q.claimed_until, b.size"
    " FROM queue AS q JOIN blobs AS b ON b.id = q.blob_id"
)
# Due and free at ?1 with a recipient left to try: what a claim may take.
_CLAIMABLE = "q.next_attempt <= ?1 AND (q.claimed_until IS NULL OR q.claimed_until <= ?1)"


def _when(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _entries(conn: sqlite3.Connection, rows: list[tuple[object, ...]]) -> list[QueuedMessage]:
    """QueuedMessages of `rows` (selected by `_ENTRY`), in their order, each with every
    recipient (any state) in position order."""
    ids = [cast(int, r[0]) for r in rows]
    recipients: dict[int, list[QueuedRecipient]] = {}
    if ids:
        for qid, position, address, notify, orcpt, state, status, diag, mta in conn.execute(
            "SELECT queue_id, position, address, notify, orcpt, state, status, diagnostic,"
            " remote_mta FROM queue_recipients"
            " WHERE queue_id IN (SELECT value FROM json_each(?)) ORDER BY queue_id, position",
            (json.dumps(ids),),
        ):
            recipients.setdefault(qid, []).append(
                QueuedRecipient(
                    address, notify, orcpt, RecipientState(state), status, diag, mta, position
                )
            )
    return [
        QueuedMessage(
            id=cast(int, r[0]),
            sender=cast(str, r[1]),
            recipients=tuple(recipients.get(cast(int, r[0]), ())),
            blob_id=cast(int, r[2]),
            created_at=_when(cast(float, r[3])),
            next_attempt=_when(cast(float, r[4])),
            attempts=cast(int, r[5]),
            dsn_envid=cast("str | None", r[6]),
            dsn_ret=cast("str | None", r[7]),
            last_error=cast(str, r[8]),
            origin=QueueOrigin(cast(str, r[9])),
            warned=bool(r[10]),
            size=cast(int, r[12]),
            claimed_until=None if r[11] is None else _when(cast(float, r[11])),
        )
        for r in rows
    ]


def insert_entry(
    conn: sqlite3.Connection,
    files: BlobFiles,
    sender: str,
    recipients: Sequence[QueuedRecipient],
    blob: BlobHandle,
    dsn_envid: str | None,
    dsn_ret: str | None,
    origin: QueueOrigin,
) -> int:
    """One queue entry, due now, every recipient queued (whatever state it was given:
    a new entry has nothing delivered yet)."""
    insert_blob(conn, files, blob, None)
    now = time.time()
    cur = conn.execute(
        "INSERT INTO queue (sender, blob_id, created_at, next_attempt, dsn_envid, dsn_ret,"
        " origin) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (sender, blob.blob_id, now, now, dsn_envid, dsn_ret, QueueOrigin(origin).value),
    )
    queue_id = cast(int, cur.lastrowid)
    conn.executemany(
        "INSERT INTO queue_recipients (queue_id, position, address, notify, orcpt)"
        " VALUES (?, ?, ?, ?, ?)",
        [(queue_id, i, r.address, r.notify, r.orcpt) for i, r in enumerate(recipients)],
    )
    return queue_id


class OutboundQueueMixin(SqliteCore):
    """The outbound-queue operations of `SqliteStore`."""

    async def enqueue(
        self,
        sender: str,
        recipients: Sequence[QueuedRecipient],
        blob: BlobHandle,
        dsn_envid: str | None = None,
        dsn_ret: str | None = None,
        origin: QueueOrigin = QueueOrigin.FORWARD,
    ) -> int:
        rcpts = list(recipients)
        if not rcpts:
            raise Conflict("a queued message needs recipients")
        return await self._write(
            lambda tx: insert_entry(
                tx.conn, self._files(), sender, rcpts, blob, dsn_envid, dsn_ret, origin
            )
        )

    async def deliver_and_enqueue(
        self,
        deliveries: Sequence[Delivery],
        sender: str,
        recipients: Sequence[QueuedRecipient],
        blob: BlobHandle,
        dsn_envid: str | None = None,
        dsn_ret: str | None = None,
        origin: QueueOrigin = QueueOrigin.FORWARD,
    ) -> tuple[list[AppendResult], int]:
        items = list(deliveries)
        rcpts = list(recipients)
        if not rcpts:
            raise Conflict("a queued message needs recipients")

        def op(tx: Tx) -> tuple[list[AppendResult], int]:
            # One operation, so one savepoint: a refused copy (quota, a mailbox gone)
            # rolls the queue entry back with it, and the reverse.
            files = self._files()
            results = [
                append_one(tx, files, d.mailbox_id, d.blob, d.meta, d.flags, d.internaldate)
                for d in items
            ]
            queue_id = insert_entry(tx.conn, files, sender, rcpts, blob, dsn_envid, dsn_ret, origin)
            return results, queue_id

        # As `deliver`: the texts go to text_pending with the rows (see text_index).
        return await self._write(
            op, text=self._text_rows([(d.blob.blob_id, d.meta) for d in items])
        )

    async def list_queue(self) -> list[QueuedMessage]:
        def q(conn: sqlite3.Connection) -> list[QueuedMessage]:
            return _entries(conn, conn.execute(f"{_ENTRY} ORDER BY q.id").fetchall())

        return await self._read(q)

    async def get_queued(self, queue_id: int) -> QueuedMessage | None:
        def q(conn: sqlite3.Connection) -> QueuedMessage | None:
            found = _entries(conn, conn.execute(f"{_ENTRY} WHERE q.id = ?", (queue_id,)).fetchall())
            return found[0] if found else None

        return await self._read(q)

    async def claim_queue(self, now: datetime, limit: int, lease: float) -> list[QueuedMessage]:
        at = exact_epoch(now)
        if limit <= 0:
            return []

        def anything_due(conn: sqlite3.Connection) -> bool:
            row = conn.execute(f"SELECT 1 FROM queue AS q WHERE {_CLAIMABLE} LIMIT 1", (at,))
            return row.fetchone() is not None

        # A worker polls; an idle queue should cost a read, not a write transaction.
        if not await self._read(anything_due):
            return []

        def op(tx: Tx) -> list[QueuedMessage]:
            # The writer runs one operation at a time: two claims never see the same
            # free entry (PostgreSQL would need FOR UPDATE SKIP LOCKED for this).
            conn = tx.conn
            rows = conn.execute(
                f"{_ENTRY} WHERE {_CLAIMABLE} ORDER BY q.next_attempt, q.id LIMIT ?2",
                (at, limit),
            ).fetchall()
            if not rows:
                return []
            until = at + lease
            conn.execute(
                "UPDATE queue SET claimed_until = ?, claimed_by = ?"
                " WHERE id IN (SELECT value FROM json_each(?))",
                (until, self.node_id, json.dumps([r[0] for r in rows])),
            )
            held = [(*r[:11], until, *r[12:]) for r in rows]
            return _entries(conn, held)

        return await self._write(op, durable=False)  # see the module docstring

    async def record_outcomes(self, queue_id: int, outcomes: Sequence[RecipientOutcome]) -> None:
        given = [
            (
                RecipientState(o.state).value,
                o.status,
                o.diagnostic,
                o.remote_mta,
                queue_id,
                o.position,
            )
            for o in outcomes
        ]

        def op(tx: Tx) -> None:
            conn = tx.conn
            if conn.execute("SELECT 1 FROM queue WHERE id = ?", (queue_id,)).fetchone() is None:
                raise NotFound(f"no queue entry {queue_id}")
            cur = conn.executemany(
                "UPDATE queue_recipients SET state = ?, status = ?, diagnostic = ?,"
                " remote_mta = ? WHERE queue_id = ? AND position = ?",
                given,
            )
            if cur.rowcount != len(given):  # all or nothing: the savepoint rolls back
                raise NotFound(f"queue entry {queue_id} has no such recipient position")

        # Synchronous: this commit is what stops a restart from sending again what a
        # peer already accepted (writer.Op.durable).
        await self._write(op, durable=True)

    async def reschedule(
        self,
        queue_id: int,
        next_attempt: datetime,
        last_error: str,
        *,
        warned: bool | None = None,
    ) -> None:
        at = exact_epoch(next_attempt)
        flag = None if warned is None else int(warned)

        def op(tx: Tx) -> None:
            cur = tx.conn.execute(
                "UPDATE queue SET attempts = attempts + 1, next_attempt = ?, last_error = ?,"
                " warned = coalesce(?, warned), claimed_until = NULL, claimed_by = ''"
                " WHERE id = ?",
                (at, last_error, flag, queue_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"no queue entry {queue_id}")

        await self._write(op)

    async def retry_queued(self, queue_id: int | None = None) -> int:
        def op(tx: Tx) -> int:
            # Never earlier than it was (min): the oldest stay first in line. A claim
            # stays: the entry is being tried right now, and releasing it would let a
            # second worker send it at the same time.
            now = time.time()
            if queue_id is None:
                cur = tx.conn.execute(
                    "UPDATE queue SET next_attempt = min(next_attempt, ?)", (now,)
                )
            else:
                cur = tx.conn.execute(
                    "UPDATE queue SET next_attempt = min(next_attempt, ?) WHERE id = ?",
                    (now, queue_id),
                )
            return cur.rowcount

        return await self._write(op)

    async def release_claims(self) -> int:
        def op(tx: Tx) -> int:
            # This node's claims only, as on a database several nodes share (the store
            # API's promise); '' is a claim taken before claims named their node
            # (sqlite_0014), by the one process that served the store then.
            cur = tx.conn.execute(
                "UPDATE queue SET claimed_until = NULL, claimed_by = ''"
                " WHERE claimed_until IS NOT NULL AND claimed_by IN (?, '')",
                (self.node_id,),
            )
            return cur.rowcount

        return await self._write(op)

    async def remove_queued(self, queue_id: int) -> bool:
        def op(tx: Tx) -> bool:
            # Recipients go by ON DELETE CASCADE; the blob's reference by the
            # queue_delete trigger, and its row (then file) here if that was the last.
            cur = tx.conn.execute("DELETE FROM queue WHERE id = ?", (queue_id,))
            if cur.rowcount == 0:
                return False
            collect_blobs(tx)
            return True

        return await self._write(op)
