"""Pages of a message list and of its conversations, in the PostgreSQL backend.

A list page reads the mailbox's counters and one page of UIDs from the primary key
(`messages(mailbox_id, uid)`) walked backwards: ``LIMIT``/``OFFSET`` for page N, or a
UID bound (``uid < before``, ``uid > after``) that costs the same at any depth. The
conversation page walks the rows newest first (a cursor, in batches) until its
conversations (by THREADID, `messages.thread_id`, RFC 8474 §5.2) have appeared, then
counts those conversations' messages in one more statement. Each page is one
REPEATABLE READ snapshot, so its counters and its UIDs agree.

Must not: change anything, or query once per message or per conversation.
"""

from __future__ import annotations

from pillarbox.model import MessagePage, ThreadSummary
from pillarbox.store.errors import NotFound
from pillarbox.store.postgres.core import Conn, PgCore
from pillarbox.store.postgres.reading import COUNTER_COLUMNS, counted_status, mailbox_row
from pillarbox.store.sqlite.flags import SEEN

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
        async def q(conn: Conn) -> MessagePage:
            box = await mailbox_row(conn, mailbox_id)
            if after is not None:
                found = await conn.fetchval(
                    "SELECT array_agg(uid ORDER BY uid DESC) FROM (SELECT uid FROM messages"
                    " WHERE mailbox_id = $1 AND uid > $2 ORDER BY uid LIMIT $3) AS p",
                    mailbox_id,
                    after,
                    limit,
                )
            elif before is not None:
                found = await conn.fetchval(
                    "SELECT array_agg(uid ORDER BY uid DESC) FROM (SELECT uid FROM messages"
                    " WHERE mailbox_id = $1 AND uid < $2 ORDER BY uid DESC LIMIT $3) AS p",
                    mailbox_id,
                    before,
                    limit,
                )
            else:
                found = await conn.fetchval(
                    "SELECT array_agg(uid ORDER BY uid DESC) FROM (SELECT uid FROM messages"
                    " WHERE mailbox_id = $1 ORDER BY uid DESC LIMIT $2 OFFSET $3) AS p",
                    mailbox_id,
                    limit,
                    max(0, offset),
                )
            uids: list[int] = list(found) if found is not None else []
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
            counts = await conn.fetchrow(
                f"SELECT {COUNTER_COLUMNS}, count(*) FILTER (WHERE uid > $2)"
                " FROM messages WHERE mailbox_id = $1",
                mailbox_id,
                above,
            )
            assert counts is not None  # an aggregate always has its row
            status, newer = counted_status(box, tuple(counts)), counts[5]
            if not uids and before is None and after is None:
                newer = min(max(0, offset), status.messages)
            return MessagePage(status, tuple(uids), newer)

        return await self._read(q, snapshot=True)

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
