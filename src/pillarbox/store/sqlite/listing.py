"""Pages of a message list and of its conversations, in the SQLite backend.

A list page reads the mailbox's counters and one page of UIDs from the primary key
(`messages(mailbox_id, uid)`) walked backwards: ``LIMIT``/``OFFSET`` for page N, or a
UID bound (``uid < before``, ``uid > after``) that costs the same at any depth. The
conversation page walks the rows newest first until its conversations (by THREADID,
`messages.thread_id`, RFC 8474 §5.2) have appeared, then counts those conversations'
messages in one more statement.

Must not: change anything, or query once per message or per conversation.
"""

from __future__ import annotations

import json
import sqlite3

from pillarbox.model import MessagePage, ThreadSummary
from pillarbox.store.errors import NotFound
from pillarbox.store.flags import SEEN
from pillarbox.store.sqlite.core import SqliteCore
from pillarbox.store.sqlite.rows import (
    COUNTER_COLUMNS,
    counted_status,
    mailbox_row,
)

_NO_UID = 2**63 - 1  # above every UID


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
            box = mailbox_row(conn, mailbox_id)
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
            # The counters and the page's position in one pass over the rows (the
            # part of a page that grows with the mailbox: keep it to one scan).
            if uids:
                above = uids[0]
            elif before is not None:
                above = before - 1
            elif after is not None:
                above = _NO_UID
            else:
                above = -1
            counts = conn.execute(
                f"SELECT {COUNTER_COLUMNS}, coalesce(sum(uid > ?), 0)"
                " FROM messages WHERE mailbox_id = ?",
                (above, mailbox_id),
            ).fetchone()
            status, newer = counted_status(box, counts), counts[5]
            if not uids and before is None and after is None:
                newer = min(max(0, offset), status.messages)
            return MessagePage(status, tuple(uids), newer)

        return await self._read(q)

    async def thread_page(
        self, mailbox_id: int, limit: int, offset: int = 0
    ) -> tuple[list[ThreadSummary], bool]:
        def q(conn: sqlite3.Connection) -> tuple[list[ThreadSummary], bool]:
            if (
                conn.execute("SELECT 1 FROM mailboxes WHERE id = ?", (mailbox_id,)).fetchone()
                is None
            ):
                raise NotFound(f"no mailbox {mailbox_id}")
            # Walk the rows newest first until the page's conversations (and one more, to
            # know whether there are older ones) have shown up: the walk grows with the
            # page's depth, not the mailbox; GROUP BY over every row sorted 100,000 of
            # them for any page.
            wanted = max(0, offset) + limit
            order: dict[int, None] = {}
            for (thread,) in conn.execute(
                # Every row has a thread id (given at delivery, migration 0008 backfilled).
                "SELECT thread_id FROM messages WHERE mailbox_id = ? ORDER BY uid DESC",
                (mailbox_id,),
            ):
                if thread not in order:
                    order[thread] = None
                    if len(order) > wanted:
                        break
            found = list(order)
            page, more = found[max(0, offset) : wanted], len(found) > wanted
            if not page:
                return [], False
            rows = conn.execute(
                "SELECT thread_id, max(uid) AS top, count(*),"
                f" sum((flags & {SEEN}) = 0) FROM messages"
                " WHERE mailbox_id = ? AND thread_id IN (SELECT value FROM json_each(?))"
                " GROUP BY thread_id ORDER BY top DESC",
                (mailbox_id, json.dumps(page)),
            ).fetchall()
            return [ThreadSummary(r[0], r[1], r[2], r[3]) for r in rows], more

        return await self._read(q)
