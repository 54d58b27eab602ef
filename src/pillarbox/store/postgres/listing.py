"""Pages of a message list and of its conversations, in the PostgreSQL backend.

A list page reads the mailbox's counters and one page of UIDs from the primary key
(`messages(mailbox_id, uid)`) walked backwards: ``LIMIT``/``OFFSET`` for page N, or a
UID bound (``uid < before``, ``uid > after``) that costs the same at any depth. The
conversation page walks the rows newest first (a cursor, in batches) until its
conversations (by THREADID, `messages.thread_id`, RFC 8474 §5.2) have appeared, then
counts those conversations' messages in one more statement. A list page is one
statement and a conversation page one REPEATABLE READ snapshot, so counters and UIDs
agree.

Must not: change anything, or query once per message or per conversation.
"""

from __future__ import annotations

from pillarbox.model import MessagePage, ThreadSummary
from pillarbox.store.errors import NotFound
from pillarbox.store.flags import SEEN
from pillarbox.store.postgres.core import Conn, PgCore
from pillarbox.store.postgres.reading import (
    COUNTER_COLUMNS,
    counted_status,
)

_NO_UID = 2**63 - 1  # above every UID
_WALK_BATCH = 512  # thread ids per cursor round trip


class ListingMixin(PgCore):
    """`Store.page_uids` and `Store.thread_page` of `PgStore`."""

    async def page_uids(
        self,
        mailbox_id: int,
        limit: int,
        *,
        offset: int = 0,
        before: int | None = None,
        after: int | None = None,
    ) -> MessagePage:
        # One statement (one snapshot, one round trip): the mailbox's row, the page,
        # and the counters with the page's position in one pass over the rows (the
        # part of a page that grows with the mailbox: keep it to one scan).
        if after is not None:
            page = "uid > $2 ORDER BY uid LIMIT $3"
            args: tuple[int, ...] = (after, limit)
            above = _NO_UID  # no page: nothing is newer than "after the newest"
        elif before is not None:
            page = "uid < $2 ORDER BY uid DESC LIMIT $3"
            args = (before, limit)
            above = before - 1
        else:
            page = "TRUE ORDER BY uid DESC LIMIT $2 OFFSET $3"
            args = (limit, max(0, offset))
            above = -1
        sql = (
            f"WITH page AS (SELECT uid FROM messages WHERE mailbox_id = $1 AND {page})"
            " SELECT b.uidnext, b.uidvalidity, b.highestmodseq, c.*,"
            " (SELECT array_agg(uid ORDER BY uid DESC) FROM page) FROM mailboxes AS b"
            f" CROSS JOIN LATERAL (SELECT {COUNTER_COLUMNS}, count(*) FILTER (WHERE uid >"
            " coalesce((SELECT max(uid) FROM page), $4)) FROM messages"
            " WHERE mailbox_id = b.id) AS c WHERE b.id = $1"
        )

        async def q(conn: Conn) -> MessagePage:
            row = await conn.fetchrow(sql, mailbox_id, *args, above)
            if row is None:
                raise NotFound(f"no mailbox {mailbox_id}")
            status = counted_status((row[0], row[1], row[2]), tuple(row[3:8]))
            newer = row[8]
            uids = tuple(row[9]) if row[9] is not None else ()
            if not uids and before is None and after is None:
                newer = min(max(0, offset), status.messages)
            return MessagePage(status, uids, newer)

        return await self._read(q)

    async def thread_page(
        self, mailbox_id: int, limit: int, offset: int = 0
    ) -> tuple[list[ThreadSummary], bool]:
        async def q(conn: Conn) -> tuple[list[ThreadSummary], bool]:
            if await conn.fetchval("SELECT 1 FROM mailboxes WHERE id = $1", mailbox_id) is None:
                raise NotFound(f"no mailbox {mailbox_id}")
            # Walk the rows newest first until the page's conversations (and one more, to
            # know whether there are older ones) have shown up: the walk grows with the
            # page's depth, not the mailbox (GROUP BY over every row sorts them all).
            wanted = max(0, offset) + limit
            order: dict[int, None] = {}
            cursor = conn.cursor(
                # Every row has a thread id (given at delivery).
                "SELECT thread_id FROM messages WHERE mailbox_id = $1 ORDER BY uid DESC",
                mailbox_id,
                prefetch=_WALK_BATCH,
            )
            async for (thread,) in cursor:
                if thread not in order:
                    order[thread] = None
                    if len(order) > wanted:
                        break
            found = list(order)
            page, more = found[max(0, offset) : wanted], len(found) > wanted
            if not page:
                return [], False
            rows = await conn.fetch(
                "SELECT thread_id, max(uid) AS top, count(*),"
                f" count(*) FILTER (WHERE flags & {SEEN} = 0) FROM messages"
                " WHERE mailbox_id = $1 AND thread_id = ANY($2::bigint[])"
                " GROUP BY thread_id ORDER BY top DESC",
                mailbox_id,
                page,
            )
            return [ThreadSummary(r[0], r[1], r[2], r[3]) for r in rows], more

        # The cursor needs a transaction; the snapshot gives it one.
        return await self._read(q, snapshot=True)
