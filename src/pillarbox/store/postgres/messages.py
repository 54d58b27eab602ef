"""PostgreSQL: changing messages: append, deliver, replace, flags, copy, move, expunge,
POP3 hiding.

Owns the write operations of `store.api.Store` that add, change or remove message rows;
the row work they share (blobs' metadata and text, locks, UIDs and MODSEQs, quota,
keywords, threads) lives in `message_rows`. Each operation is one transaction
(`PgCore._write`) with the results, errors and `Change` events of the SQLite backend
(`store.sqlite.messages`).

Concurrency (plan §2): every operation that changes a mailbox's rows first locks that
mailbox's row (several: in id order), then accounts in id order, so that UIDs and
MODSEQs are taken and become visible in commit order, a flag change never overwrites a
concurrent one, a quota check holds until the commit, and two nodes moving mail A→B
and B→A wait for each other instead of deadlocking.

Must not: read message bytes, format anything for a protocol, or delete a blob (the
janitor does, `blobs`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import TypeVar

from pillarbox.model import (
    AppendResult,
    CopyResult,
    FlagMode,
    FlagRow,
    FlagsChanged,
    MessageMeta,
    StoreFlagsResult,
)
from pillarbox.store.api import BlobHandle, Delivery
from pillarbox.store.errors import NotFound
from pillarbox.store.flags import DELETED, flag_set, next_flags, split_flags
from pillarbox.store.postgres.core import PgCore, PgTx
from pillarbox.store.postgres.message_rows import (
    RANGE_ROWS,
    Target,
    check_keyword_room,
    copy_rows,
    insert_messages,
    lock,
    lock_accounts,
    move_rows,
    ordered_write,
    prepare_blobs,
    remove_rows,
    spell_keywords,
    uid_ranges,
)

T = TypeVar("T")


class MessagesMixin(PgCore):
    """The messages methods of the store contract on PostgreSQL."""

    async def _ordered(self, mailbox_ids: Iterable[int], op: Callable[[PgTx], Awaitable[T]]) -> T:
        """`_write(op)`, this node's changes published in commit order (`ordered_write`)."""
        return await ordered_write(self, mailbox_ids, op)

    async def append(
        self,
        mailbox_id: int,
        blob: BlobHandle,
        meta: MessageMeta,
        flags: frozenset[str] = frozenset(),
        internaldate: datetime | None = None,
    ) -> AppendResult:
        item = Target(mailbox_id, blob, meta, flags, internaldate)

        async def op(tx: PgTx) -> AppendResult:
            [result] = await insert_messages(tx, [item])
            return result

        return await self._ordered([mailbox_id], op)

    async def replace(
        self,
        mailbox_id: int,
        uid: int,
        dst_mailbox_id: int,
        blob: BlobHandle,
        meta: MessageMeta,
        flags: frozenset[str] = frozenset(),
        internaldate: datetime | None = None,
    ) -> AppendResult:
        item = Target(dst_mailbox_id, blob, meta, flags, internaldate)

        async def op(tx: PgTx) -> AppendResult:
            # RFC 8508 §3.3: atomic. The old message goes first, so the quota check of the
            # new one sees the space it frees; a failure rolls both back.
            conn = tx.conn
            await prepare_blobs(conn, [item])
            locks = await lock(conn, [mailbox_id, dst_mailbox_id])
            found = await conn.fetchval(
                "SELECT 1 FROM messages WHERE mailbox_id = $1 AND uid = $2", mailbox_id, uid
            )
            if found is None:
                raise NotFound(f"no message {uid} in mailbox {mailbox_id}")
            await remove_rows(tx, locks, mailbox_id, [uid])
            [result] = await insert_messages(tx, [item], locks)
            return result

        return await self._ordered([mailbox_id, dst_mailbox_id], op)

    async def deliver(self, deliveries: Sequence[Delivery]) -> list[AppendResult]:
        items = list(deliveries)
        return await self._ordered(
            [d.mailbox_id for d in items], lambda tx: insert_messages(tx, items)
        )

    async def set_flags(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        flags: frozenset[str],
        mode: FlagMode,
        unchanged_since: int | None = None,
    ) -> StoreFlagsResult:
        wanted = list(uids)
        bits, keywords = split_flags(flags)

        async def op(tx: PgTx) -> StoreFlagsResult:
            conn = tx.conn
            # The mailbox row lock first: the rows read below stay as read until the
            # commit (no concurrent change is overwritten), and the MODSEQ is ours.
            locks = await lock(conn, [mailbox_id], accounts=False)
            if mailbox_id not in locks.mailboxes:
                return StoreFlagsResult(changed=())
            if not wanted:
                return StoreFlagsResult(changed=())
            # Flags, MODSEQ and keywords of each row in one query.
            found = await conn.fetch(
                f"SELECT m.uid, m.flags, m.modseq, (SELECT array_agg(k.keyword) FROM keywords"
                f" AS k WHERE k.mailbox_id = $1 AND k.uid = m.uid) FROM {RANGE_ROWS}"
                " ORDER BY m.uid",
                mailbox_id,
                *uid_ranges(wanted),
            )
            if not found:
                return StoreFlagsResult(changed=())
            rows = [(r[0], r[1], r[2]) for r in found]
            old_keywords = {r[0]: list(r[3]) for r in found if r[3]}
            if mode != FlagMode.REMOVE:
                await check_keyword_room(conn, mailbox_id, keywords.values())
            spelled = await spell_keywords(conn, mailbox_id, keywords)
            modified: list[int] = []
            new_state: list[tuple[int, int, list[str]]] = []
            kw_add: list[tuple[int, str]] = []
            kw_del: list[tuple[int, str]] = []
            for uid, old_bits, modseq in rows:
                if unchanged_since is not None and modseq > unchanged_since:
                    modified.append(uid)  # RFC 7162 §3.1.3
                    continue
                change = next_flags(mode, old_bits, old_keywords.get(uid, ()), bits, spelled)
                if change is None:
                    continue
                kw_add.extend((uid, k) for k in change.added)
                kw_del.extend((uid, k) for k in change.removed)
                new_state.append((uid, change.bits, change.keywords))
            if not new_state:
                return StoreFlagsResult(changed=(), modified=tuple(modified))
            row = await conn.fetchrow(
                "WITH b AS (UPDATE mailboxes SET highestmodseq = highestmodseq + 1"
                " WHERE id = $1 RETURNING highestmodseq, account_id),"
                " u AS (UPDATE messages AS m SET flags = r.bits, modseq = b.highestmodseq"
                " FROM unnest($2::bigint[], $3::integer[]) AS r(uid, bits) CROSS JOIN b"
                " WHERE m.mailbox_id = $1 AND m.uid = r.uid)"
                " SELECT highestmodseq, account_id FROM b",
                mailbox_id,
                [uid for uid, _, _ in new_state],
                [b for _, b, _ in new_state],
            )
            if row is None:  # pragma: no cover - the mailbox is locked
                raise NotFound(f"no mailbox {mailbox_id}")
            modseq, account_id = row[0], row[1]
            if kw_del:
                await conn.execute(
                    "DELETE FROM keywords AS k USING unnest($2::bigint[], $3::text[])"
                    " AS r(uid, keyword) WHERE k.mailbox_id = $1 AND k.uid = r.uid"
                    ' AND lower(k.keyword) = lower(r.keyword COLLATE "C")',
                    mailbox_id,
                    [u for u, _ in kw_del],
                    [k for _, k in kw_del],
                )
            if kw_add:
                await conn.execute(
                    "INSERT INTO keywords (mailbox_id, uid, keyword)"
                    " SELECT $1, r.uid, r.keyword"
                    " FROM unnest($2::bigint[], $3::text[]) AS r(uid, keyword)"
                    " ON CONFLICT DO NOTHING",
                    mailbox_id,
                    [u for u, _ in kw_add],
                    [k for _, k in kw_add],
                )
            changed = tuple(FlagRow(uid, flag_set(b, kws), modseq) for uid, b, kws in new_state)
            tx.changes.append(FlagsChanged(account_id, mailbox_id, changed))
            return StoreFlagsResult(changed=changed, modified=tuple(modified))

        return await self._ordered([mailbox_id], op)

    async def copy(
        self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int
    ) -> CopyResult:
        wanted = list(uids)

        async def op(tx: PgTx) -> CopyResult:
            locks = await lock(tx.conn, [src_mailbox_id, dst_mailbox_id])
            return await copy_rows(tx, locks, src_mailbox_id, wanted, dst_mailbox_id)

        return await self._ordered([src_mailbox_id, dst_mailbox_id], op)

    async def move(
        self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int
    ) -> CopyResult:
        # RFC 6851 §3.3: atomic: both halves are in this one transaction.
        wanted = list(uids)

        async def op(tx: PgTx) -> CopyResult:
            locks = await lock(tx.conn, [src_mailbox_id, dst_mailbox_id])
            return await move_rows(tx, locks, src_mailbox_id, wanted, dst_mailbox_id)

        return await self._ordered([src_mailbox_id, dst_mailbox_id], op)

    async def expunge(self, mailbox_id: int, uids: Sequence[int] | None = None) -> list[int]:
        wanted = list(uids) if uids is not None else None

        async def op(tx: PgTx) -> list[int]:
            conn = tx.conn
            locks = await lock(conn, [mailbox_id], accounts=False)
            if mailbox_id not in locks.mailboxes:
                raise NotFound(f"no mailbox {mailbox_id}")
            if wanted is None:
                rows = await conn.fetch(
                    f"SELECT uid FROM messages WHERE mailbox_id = $1 AND (flags & {DELETED}) != 0"
                    " ORDER BY uid",
                    mailbox_id,
                )
            elif wanted:
                rows = await conn.fetch(
                    f"SELECT m.uid FROM {RANGE_ROWS} WHERE (m.flags & {DELETED}) != 0"
                    " ORDER BY m.uid",
                    mailbox_id,
                    *uid_ranges(wanted),
                )
            else:
                rows = []
            gone = [r[0] for r in rows]
            if gone:
                await lock_accounts(conn, locks)  # mailbox, then account: plan §2
                await remove_rows(tx, locks, mailbox_id, gone)
            return gone

        return await self._ordered([mailbox_id], op)

    async def pop_hide(self, mailbox_id: int, uids: Sequence[int]) -> None:
        wanted = sorted(set(uids))

        async def op(tx: PgTx) -> None:
            # Not a change IMAP can see: no MODSEQ, no event.
            await tx.conn.execute(
                "UPDATE messages SET pop_hidden = 1 WHERE mailbox_id = $1"
                " AND uid = ANY($2::bigint[])",
                mailbox_id,
                wanted,
            )

        await self._write(op)
