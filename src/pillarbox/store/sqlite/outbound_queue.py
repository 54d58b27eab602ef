"""The outbound queue in the SQLite backend: messages waiting for remote delivery.

Owns the ``queue`` and ``queue_recipients`` rows. A queued message refers to its blob
as a message row does: the blob row is added if new, and the schema's triggers count
the reference. Must not: decide when or where to deliver (that is `queue/`, above), or
read the message file.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

from pillarbox.model import QueuedMessage, QueuedRecipient, QueueOrigin
from pillarbox.store.api import BlobHandle
from pillarbox.store.errors import Conflict
from pillarbox.store.sqlite.core import SqliteCore
from pillarbox.store.sqlite.message_rows import insert_blob
from pillarbox.store.sqlite.writer import Tx


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

        def op(tx: Tx) -> int:
            conn = tx.conn
            insert_blob(conn, self._files(), blob, None)
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

    # Placeholders until the queue runner lands (issue 12): the contract is in store/api.py.
    async def deliver_and_enqueue(self, *args: object, **kwargs: object) -> Any:
        raise NotImplementedError

    async def get_queued(self, queue_id: int) -> Any:
        raise NotImplementedError

    async def claim_queue(self, *args: object, **kwargs: object) -> Any:
        raise NotImplementedError

    async def record_outcomes(self, *args: object, **kwargs: object) -> None:
        raise NotImplementedError

    async def reschedule(self, *args: object, **kwargs: object) -> None:
        raise NotImplementedError

    async def retry_queued(self, queue_id: int | None = None) -> int:
        raise NotImplementedError

    async def remove_queued(self, queue_id: int) -> bool:
        raise NotImplementedError

    async def put_dkim_key(self, key: object) -> None:
        raise NotImplementedError

    async def list_dkim_keys(self, domain: str | None = None) -> Any:
        raise NotImplementedError
