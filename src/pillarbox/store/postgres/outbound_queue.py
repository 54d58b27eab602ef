"""The outbound queue in the PostgreSQL backend: messages waiting for remote delivery,
shared by every node on the database.

Owns the ``queue`` and ``queue_recipients`` rows, with the same semantics as the SQLite
backend (`store/sqlite/outbound_queue.py`, the reference): a queued message refers to
its blob as a message row does (the schema's triggers count the reference); removing an
entry leaves a blob nothing else refers to to the janitor (`janitor`), which deletes
it after a grace period, as for an expunged message.

Several nodes: a claim is one statement, `FOR UPDATE SKIP LOCKED` inside it, so two
nodes claiming at once take disjoint sets without waiting for each other, and an entry
whose lease ran out (its node died) is free for any node. A claim names its node
(`claimed_by`, the store's `node_id`), and `release_claims` at a runner's start
releases only that node's claims: another node's are being sent right now.

Times are epoch seconds with their fractions, so a scheduled time reads back as written
(this needs ``queue.created_at`` and ``next_attempt`` as double precision, like
``claimed_until``; in bigint columns the fraction is rounded away); they come from the
caller's clock (nodes need NTP). Every
commit is synchronous (`synchronous_commit=on`), so the durability the SQLite backend
chooses per operation holds for all of them here.

Must not: decide when or where to deliver (that is `queue/`, above), or read the
message bytes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime

import asyncpg

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
from pillarbox.store.postgres.core import Conn, PgCore, PgTx
from pillarbox.store.postgres.message_rows import insert_messages
from pillarbox.store.times import exact_epoch, from_exact

# The columns of a QueuedMessage, in `_entry`'s order. Times read as float8 whatever
# the column's type, so this reads the same from bigint or double precision columns.
_COLUMNS = (
    "q.id, q.sender, q.blob_id, q.created_at::float8 AS created_at,"
    " q.next_attempt::float8 AS next_attempt, q.attempts, q.dsn_envid, q.dsn_ret,"
    " q.last_error, q.origin, q.warned, q.claimed_until, b.size"
)
_ENTRY = f"SELECT {_COLUMNS} FROM queue AS q JOIN blobs AS b ON b.id = q.blob_id"
# Due and free at $1: what a claim may take.
_CLAIMABLE = "next_attempt <= $1::float8 AND (claimed_until IS NULL OR claimed_until <= $1)"


def _count(status: str) -> int:
    """The row count of a command status such as ``UPDATE 3``."""
    return int(status.rpartition(" ")[2] or 0)


async def _entries(conn: Conn, rows: Sequence[asyncpg.Record]) -> list[QueuedMessage]:
    """QueuedMessages of `rows` (records with `_COLUMNS`), in their order, each with
    every recipient (any state) in position order."""
    ids = [int(r["id"]) for r in rows]
    recipients: dict[int, list[QueuedRecipient]] = {}
    if ids:
        for r in await conn.fetch(
            "SELECT queue_id, position, address, notify, orcpt, state, status, diagnostic,"
            " remote_mta FROM queue_recipients WHERE queue_id = ANY($1::bigint[])"
            " ORDER BY queue_id, position",
            ids,
        ):
            recipients.setdefault(r["queue_id"], []).append(
                QueuedRecipient(
                    r["address"],
                    r["notify"],
                    r["orcpt"],
                    RecipientState(r["state"]),
                    r["status"],
                    r["diagnostic"],
                    r["remote_mta"],
                    int(r["position"]),
                )
            )
    return [
        QueuedMessage(
            id=int(r["id"]),
            sender=r["sender"],
            recipients=tuple(recipients.get(int(r["id"]), ())),
            blob_id=int(r["blob_id"]),
            created_at=from_exact(r["created_at"]),
            next_attempt=from_exact(r["next_attempt"]),
            attempts=int(r["attempts"]),
            dsn_envid=r["dsn_envid"],
            dsn_ret=r["dsn_ret"],
            last_error=r["last_error"],
            origin=QueueOrigin(r["origin"]),
            warned=bool(r["warned"]),
            size=int(r["size"]),
            claimed_until=None if r["claimed_until"] is None else from_exact(r["claimed_until"]),
        )
        for r in rows
    ]


async def insert_entry(
    conn: Conn,
    sender: str,
    recipients: Sequence[QueuedRecipient],
    blob: BlobHandle,
    dsn_envid: str | None,
    dsn_ret: str | None,
    origin: QueueOrigin,
) -> int:
    """One queue entry, due now, every recipient queued (whatever state it was given:
    a new entry has nothing delivered yet). The blob must be finished (`BlobWriter.finish`
    committed its row) and not given up (its last reference gone: deleted as far as the
    contract goes, its rows wait for the janitor): a row never points to missing bytes."""
    # FOR SHARE: a janitor deleting this blob right now is waited for, and then the
    # row is gone (NotFound) rather than a foreign-key failure at the INSERT.
    found = await conn.fetchval(
        "SELECT 1 FROM blobs WHERE id = $1::bigint AND state = 'done'"
        " AND unreferenced_at IS NULL FOR SHARE",
        blob.blob_id,
    )
    if found is None:
        raise NotFound(f"blob {blob.blob_id} is not durable")
    now = time.time()
    queue_id = await conn.fetchval(
        "INSERT INTO queue (sender, blob_id, created_at, next_attempt, dsn_envid, dsn_ret,"
        " origin) VALUES ($1, $2::bigint, $3::float8, $3::float8, $4, $5, $6) RETURNING id",
        sender,
        blob.blob_id,
        now,
        dsn_envid,
        dsn_ret,
        QueueOrigin(origin).value,
    )
    await conn.execute(
        "INSERT INTO queue_recipients (queue_id, position, address, notify, orcpt)"
        " SELECT $1::bigint, r.position - 1, r.address, r.notify, r.orcpt"
        " FROM unnest($2::text[], $3::text[], $4::text[])"
        " WITH ORDINALITY AS r(address, notify, orcpt, position)",
        queue_id,
        [r.address for r in recipients],
        [r.notify for r in recipients],
        [r.orcpt for r in recipients],
    )
    return int(queue_id)


class OutboundQueueMixin(PgCore):
    """The outbound queue methods of the store contract on PostgreSQL."""

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

        async def op(tx: PgTx) -> int:
            return await insert_entry(tx.conn, sender, rcpts, blob, dsn_envid, dsn_ret, origin)

        return await self._write(op)

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

        async def op(tx: PgTx) -> tuple[list[AppendResult], int]:
            # One transaction: a refused copy (quota, a mailbox gone) rolls the queue
            # entry back with it, and the reverse. The copies take their locks first
            # (mailboxes, then accounts, in id order), then the entry its blob's.
            results = await insert_messages(tx, items)
            queue_id = await insert_entry(tx.conn, sender, rcpts, blob, dsn_envid, dsn_ret, origin)
            return results, queue_id

        return await self._write(op)

    async def list_queue(self) -> list[QueuedMessage]:
        async def q(conn: Conn) -> list[QueuedMessage]:
            return await _entries(conn, await conn.fetch(f"{_ENTRY} ORDER BY q.id"))

        # One snapshot: the entries and their recipients as of one moment.
        return await self._read(q, snapshot=True)

    async def get_queued(self, queue_id: int) -> QueuedMessage | None:
        async def q(conn: Conn) -> QueuedMessage | None:
            rows = await conn.fetch(f"{_ENTRY} WHERE q.id = $1::bigint", queue_id)
            found = await _entries(conn, rows)
            return found[0] if found else None

        return await self._read(q, snapshot=True)

    async def claim_queue(self, now: datetime, limit: int, lease: float) -> list[QueuedMessage]:
        at = exact_epoch(now)
        if limit <= 0:
            return []
        until = at + lease

        async def op(tx: PgTx) -> list[QueuedMessage]:
            # SKIP LOCKED: entries another node is claiming at this moment are not
            # waited for (nor taken twice); the UPDATE of the rows the CTE locked is
            # the claim. An idle queue costs one statement that writes nothing.
            rows = await tx.conn.fetch(
                "WITH c AS (SELECT id FROM queue WHERE "
                + _CLAIMABLE
                + " ORDER BY next_attempt, id LIMIT $2 FOR UPDATE SKIP LOCKED)"
                " UPDATE queue AS q SET claimed_until = $3::float8, claimed_by = $4"
                " FROM c, blobs AS b WHERE q.id = c.id AND b.id = q.blob_id"
                f" RETURNING {_COLUMNS}",
                at,
                limit,
                until,
                self.node_id,
            )
            rows = sorted(rows, key=lambda r: (r["next_attempt"], r["id"]))
            return await _entries(tx.conn, rows)

        return await self._write(op)

    async def record_outcomes(self, queue_id: int, outcomes: Sequence[RecipientOutcome]) -> None:
        # One row per position, the last outcome given for it winning (as a sequence of
        # single-row updates would leave it).
        latest = {o.position: o for o in outcomes}
        given = list(latest.values())

        async def op(tx: PgTx) -> None:
            conn = tx.conn
            if await conn.fetchval("SELECT 1 FROM queue WHERE id = $1::bigint", queue_id) is None:
                raise NotFound(f"no queue entry {queue_id}")
            if not given:
                return
            status = await conn.execute(
                "UPDATE queue_recipients AS r SET state = o.state, status = o.status,"
                " diagnostic = o.diagnostic, remote_mta = o.remote_mta"
                " FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[])"
                " AS o(position, state, status, diagnostic, remote_mta)"
                " WHERE r.queue_id = $1::bigint AND r.position = o.position",
                queue_id,
                [o.position for o in given],
                [RecipientState(o.state).value for o in given],
                [o.status for o in given],
                [o.diagnostic for o in given],
                [o.remote_mta for o in given],
            )
            if _count(status) != len(given):  # all or nothing: the transaction rolls back
                raise NotFound(f"queue entry {queue_id} has no such recipient position")

        # The commit is what stops a restart from sending again what a peer already
        # accepted; every commit here is synchronous.
        await self._write(op)

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

        async def op(tx: PgTx) -> None:
            status = await tx.conn.execute(
                "UPDATE queue SET attempts = attempts + 1, next_attempt = $1::float8,"
                " last_error = $2, warned = coalesce($3::integer, warned),"
                " claimed_until = NULL, claimed_by = '' WHERE id = $4::bigint",
                at,
                last_error,
                flag,
                queue_id,
            )
            if _count(status) == 0:
                raise NotFound(f"no queue entry {queue_id}")

        await self._write(op)

    async def retry_queued(self, queue_id: int | None = None) -> int:
        async def op(tx: PgTx) -> int:
            # Never earlier than it was (least): the oldest stay first in line. A claim
            # stays: the entry is being tried right now (perhaps by another node), and
            # releasing it would let a second worker send it at the same time.
            now = time.time()
            if queue_id is None:
                status = await tx.conn.execute(
                    "UPDATE queue SET next_attempt = least(next_attempt, $1::float8)", now
                )
            else:
                status = await tx.conn.execute(
                    "UPDATE queue SET next_attempt = least(next_attempt, $1::float8)"
                    " WHERE id = $2::bigint",
                    now,
                    queue_id,
                )
            return _count(status)

        return await self._write(op)

    async def release_claims(self) -> int:
        async def op(tx: PgTx) -> int:
            # Only this node's: the other nodes' claims are being sent right now, and a
            # dead node's expire by themselves. '' is a claim that names no node (copied
            # from an SQLite store older than sqlite_0014): an earlier run's.
            status = await tx.conn.execute(
                "UPDATE queue SET claimed_until = NULL, claimed_by = ''"
                " WHERE claimed_until IS NOT NULL AND claimed_by IN ($1, '')",
                self.node_id,
            )
            return _count(status)

        return await self._write(op)

    async def remove_queued(self, queue_id: int) -> bool:
        async def op(tx: PgTx) -> bool:
            # Recipients go by ON DELETE CASCADE; the blob's reference by the
            # queue_delete trigger, which stamps a blob left with none for the janitor.
            status = await tx.conn.execute("DELETE FROM queue WHERE id = $1::bigint", queue_id)
            return _count(status) > 0

        return await self._write(op)
