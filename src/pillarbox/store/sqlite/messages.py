"""Changing messages in the SQLite backend: append, deliver, flags, copy, move, expunge,
POP3 hiding.

Owns the writer operations of `store.api.Store` that add, change or remove message
rows; the row work they share lives in `message_rows`. Order for a delivery: its text
goes to ``text_pending`` in the same transaction as its row (`_write(text=...)`) and
into search.db after the commit, so SEARCH never misses a stored message (see
`text_index`). Flag changes and expunges are
non-durable operations (`writer.Op.durable`): they commit without an fsync of their own.

Must not: read message files, format anything for a protocol, or run SQL outside an
operation (`_write`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

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
from pillarbox.store.sqlite.core import SqliteCore
from pillarbox.store.sqlite.message_rows import (
    append_one,
    bump,
    check_keyword_room,
    copy_rows,
    move_rows,
    remove_rows,
    spell_keywords,
)
from pillarbox.store.sqlite.rows import (
    RANGE_JOIN,
    flag_rows,
    keywords_of,
    ranges_json,
    uid_list_json,
)
from pillarbox.store.sqlite.writer import Tx


class MessagesMixin(SqliteCore):
    """The message-changing operations of `SqliteStore`."""

    async def append(
        self,
        mailbox_id: int,
        blob: BlobHandle,
        meta: MessageMeta,
        flags: frozenset[str] = frozenset(),
        internaldate: datetime | None = None,
    ) -> AppendResult:
        return await self._write(
            lambda tx: append_one(tx, self._files(), mailbox_id, blob, meta, flags, internaldate),
            text=self._text_rows([(blob.blob_id, meta)]),
        )

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
        def op(tx: Tx) -> AppendResult:
            # RFC 8508 §3.3: atomic. The old message goes first, so the quota check of the
            # new one sees the space it frees; a failure rolls both back (savepoint).
            if (
                tx.conn.execute(
                    "SELECT 1 FROM messages WHERE mailbox_id = ? AND uid = ?", (mailbox_id, uid)
                ).fetchone()
                is None
            ):
                raise NotFound(f"no message {uid} in mailbox {mailbox_id}")
            remove_rows(tx, mailbox_id, [uid])
            return append_one(tx, self._files(), dst_mailbox_id, blob, meta, flags, internaldate)

        return await self._write(op, text=self._text_rows([(blob.blob_id, meta)]))

    async def deliver(self, deliveries: Sequence[Delivery]) -> list[AppendResult]:
        items = list(deliveries)

        def op(tx: Tx) -> list[AppendResult]:
            files = self._files()
            return [
                append_one(tx, files, d.mailbox_id, d.blob, d.meta, d.flags, d.internaldate)
                for d in items
            ]

        return await self._write(
            op, text=self._text_rows([(d.blob.blob_id, d.meta) for d in items])
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

        def op(tx: Tx) -> StoreFlagsResult:
            conn = tx.conn
            rows = flag_rows(conn, mailbox_id, wanted)
            if not rows:
                return StoreFlagsResult(changed=())
            old_keywords = keywords_of(conn, mailbox_id, wanted)
            if mode != FlagMode.REMOVE:
                check_keyword_room(conn, mailbox_id, keywords.values())
            spelled = spell_keywords(conn, mailbox_id, keywords)
            modified: list[int] = []
            # per new bitmask: uids; per keyword: uids to add / remove
            by_bits: dict[int, list[int]] = {}
            kw_add: dict[str, list[int]] = {}
            kw_del: dict[str, list[int]] = {}
            new_state: list[tuple[int, int, list[str]]] = []
            for uid, old_bits, modseq in rows:
                if unchanged_since is not None and modseq > unchanged_since:
                    modified.append(uid)  # RFC 7162 §3.1.3
                    continue
                change = next_flags(mode, old_bits, old_keywords.get(uid, ()), bits, spelled)
                if change is None:
                    continue
                by_bits.setdefault(change.bits, []).append(uid)
                for k in change.added:
                    kw_add.setdefault(k, []).append(uid)
                for k in change.removed:
                    kw_del.setdefault(k, []).append(uid)
                new_state.append((uid, change.bits, change.keywords))
            if not new_state:
                return StoreFlagsResult(changed=(), modified=tuple(modified))
            _, modseq, _, account_id = bump(conn, mailbox_id, 0)
            for new_bits, group in by_bits.items():
                conn.execute(
                    "UPDATE messages SET flags = ?, modseq = ? WHERE mailbox_id = ?"
                    " AND uid IN (SELECT value FROM json_each(?))",
                    (new_bits, modseq, mailbox_id, uid_list_json(group)),
                )
            for keyword, group in kw_del.items():
                conn.execute(
                    "DELETE FROM keywords WHERE mailbox_id = ? AND keyword = ?"
                    " AND uid IN (SELECT value FROM json_each(?))",
                    (mailbox_id, keyword, uid_list_json(group)),
                )
            for keyword, group in kw_add.items():
                conn.execute(
                    "INSERT OR IGNORE INTO keywords (mailbox_id, uid, keyword)"
                    " SELECT ?, value, ? FROM json_each(?)",
                    (mailbox_id, keyword, uid_list_json(group)),
                )
            changed = tuple(FlagRow(uid, flag_set(b, kws), modseq) for uid, b, kws in new_state)
            tx.changes.append(FlagsChanged(account_id, mailbox_id, changed))
            return StoreFlagsResult(changed=changed, modified=tuple(modified))

        return await self._write(op, durable=False)  # see writer.Op.durable

    async def copy(
        self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int
    ) -> CopyResult:
        wanted = list(uids)
        return await self._write(lambda tx: copy_rows(tx, src_mailbox_id, wanted, dst_mailbox_id))

    async def move(
        self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int
    ) -> CopyResult:
        # RFC 6851 §3.3: atomic: both halves are in this one operation's savepoint.
        wanted = list(uids)
        return await self._write(lambda tx: move_rows(tx, src_mailbox_id, wanted, dst_mailbox_id))

    async def expunge(self, mailbox_id: int, uids: Sequence[int] | None = None) -> list[int]:
        wanted = list(uids) if uids is not None else None

        def op(tx: Tx) -> list[int]:
            conn = tx.conn
            if not conn.execute("SELECT 1 FROM mailboxes WHERE id = ?", (mailbox_id,)).fetchone():
                raise NotFound(f"no mailbox {mailbox_id}")
            if wanted is None:
                rows = conn.execute(
                    f"SELECT uid FROM messages WHERE mailbox_id = ? AND (flags & {DELETED}) != 0"
                    " ORDER BY uid",
                    (mailbox_id,),
                )
            else:
                rows = conn.execute(
                    f"SELECT m.uid FROM {RANGE_JOIN} AND (m.flags & {DELETED}) != 0",
                    (ranges_json(wanted), mailbox_id),
                )
            gone = [r[0] for r in rows]
            remove_rows(tx, mailbox_id, gone)
            return gone

        return await self._write(op, durable=False)  # see writer.Op.durable

    async def pop_hide(self, mailbox_id: int, uids: Sequence[int]) -> None:
        wanted = list(uids)

        def op(tx: Tx) -> None:
            # Not a change IMAP can see: no MODSEQ, no event.
            tx.conn.execute(
                "UPDATE messages SET pop_hidden = 1 WHERE mailbox_id = ?"
                " AND uid IN (SELECT value FROM json_each(?))",
                (mailbox_id, uid_list_json(wanted)),
            )

        await self._write(op)
