"""The rows SORT and THREAD order by, in the SQLite backend (RFC 5256).

One query joins `messages` with the precomputed `blobs` columns for a UID set; nothing
is parsed and no message file is read.

Must not: change anything, or query once per message.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime

from pillarbox.model.sorting import SortRow
from pillarbox.store.sqlite.core import SqliteCore
from pillarbox.store.sqlite.rows import (
    FETCH_JOIN,
    ranges_json,
)
from pillarbox.store.times import from_epoch


class SortingMixin(SqliteCore):
    """`Store.sort_rows` of `SqliteStore`."""

    async def sort_rows(
        self, mailbox_id: int, uids: Sequence[int], *, with_references: bool = False
    ) -> list[SortRow]:
        wanted = sorted(uids)
        # Rows stored before `thread_refs` existed (NULL) bring their decoded header
        # block from the full-text index instead, in the same query.
        references = (
            "b.thread_refs, CASE WHEN b.thread_refs IS NULL THEN"
            " (SELECT t.headers FROM blob_text AS t WHERE t.rowid = m.blob_id) END"
            if with_references
            else "NULL, NULL"
        )

        def q(conn: sqlite3.Connection) -> list[SortRow]:
            if not wanted:
                return []
            rows = conn.execute(
                "SELECT m.uid, m.internaldate, m.internal_tz, m.size, b.sent_date,"
                f" b.subject, b.envelope, {references} FROM {FETCH_JOIN}",
                (ranges_json(wanted), mailbox_id),
            ).fetchall()
            return [
                SortRow(
                    uid=r[0],
                    internaldate=from_epoch(r[1], r[2]),
                    size=r[3],
                    sent_date=_sent(r[4]),
                    subject=r[5] or "",
                    envelope=r[6] or b"",
                    references=r[7] if with_references else None,
                    header_text=r[8] or "",
                )
                for r in rows
            ]

        return await self._read(q)


def _sent(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
