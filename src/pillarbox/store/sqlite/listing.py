"""Pages of a message list and of its conversations, in the SQLite backend.

A list page reads the mailbox's counters and one page of UIDs from the primary key
(`messages(mailbox_id, uid)`) walked backwards: ``LIMIT``/``OFFSET`` for page N, or a
UID bound (``uid < before``, ``uid > after``) that costs the same at any depth. The
conversation page groups the mailbox's rows by THREADID (`messages.thread_id`, RFC 8474
§5.2) in one statement, the window count giving the number of conversations in the
same pass.

Must not: change anything, or query once per message or per conversation.
"""

from __future__ import annotations

import sqlite3

from pillarbox.model import MessagePage, ThreadSummary
from pillarbox.store.sqlite.core import SqliteCore
from pillarbox.store.sqlite.flags import SEEN
from pillarbox.store.sqlite.rows import mailbox_counters


class ListingMixin(SqliteCore):
    """`Store.page_uids` and `Store.thread_page` of `SqliteStore`."""

    async def page_uids(
        self,
        mailbox_id: int,
        limit: int,
        *,
        offset: int = 0,
        before: int | None = None,
        after: int | None = None,
    ) -> MessagePage:
        def q(conn: sqlite3.Connection) -> MessagePage:
            status, _first_unseen = mailbox_counters(conn, mailbox_id)
            if after is not None:
                rows = conn.execute(
                    "SELECT uid FROM messages WHERE mailbox_id = ? AND uid > ?"
                    " ORDER BY uid LIMIT ?",
                    (mailbox_id, after, limit),
                ).fetchall()
                uids = [r[0] for r in reversed(rows)]
            elif before is not None:
                rows = conn.execute(
                    "SELECT uid FROM messages WHERE mailbox_id = ? AND uid < ?"
                    " ORDER BY uid DESC LIMIT ?",
                    (mailbox_id, before, limit),
                ).fetchall()
                uids = [r[0] for r in rows]
            else:
                rows = conn.execute(
                    "SELECT uid FROM messages WHERE mailbox_id = ?"
                    " ORDER BY uid DESC LIMIT ? OFFSET ?",
                    (mailbox_id, limit, max(0, offset)),
                ).fetchall()
                uids = [r[0] for r in rows]
            if uids:
                newer = conn.execute(
                    "SELECT count(*) FROM messages WHERE mailbox_id = ? AND uid > ?",
                    (mailbox_id, uids[0]),
                ).fetchone()[0]
            elif before is not None:
                newer = status.messages
            elif after is not None:
                newer = 0
            else:
                newer = min(max(0, offset), status.messages)
            return MessagePage(status, tuple(uids), newer)

        return await self._read(q)

    async def thread_page(
        self, mailbox_id: int, limit: int, offset: int = 0
    ) -> tuple[int, list[ThreadSummary]]:
        def q(conn: sqlite3.Connection) -> tuple[int, list[ThreadSummary]]:
            mailbox_counters(conn, mailbox_id)  # NotFound when the mailbox is gone
            rows = conn.execute(
                "SELECT coalesce(thread_id, blob_id) AS t, max(uid) AS top, count(*),"
                f" sum((flags & {SEEN}) = 0), count(*) OVER ()"
                " FROM messages WHERE mailbox_id = ?"
                " GROUP BY t ORDER BY top DESC LIMIT ? OFFSET ?",
                (mailbox_id, limit, max(0, offset)),
            ).fetchall()
            if rows:
                total = rows[0][4]
            else:
                total = conn.execute(
                    "SELECT count(DISTINCT coalesce(thread_id, blob_id))"
                    " FROM messages WHERE mailbox_id = ?",
                    (mailbox_id,),
                ).fetchone()[0]
            return total, [ThreadSummary(r[0], r[1], r[2], r[3]) for r in rows]

        return await self._read(q)
