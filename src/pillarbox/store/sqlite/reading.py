"""Reading messages in the SQLite backend: UIDs, flags, FETCH rows, bodies, SEARCH,
CONDSTORE/QRESYNC changes, SELECT, POP3's hidden set.

Owns the read-only queries over ``messages``, ``keywords``, ``blobs`` and ``expunged``.
Everything derived from the message bytes (envelope, body structure, part offsets,
preview, size) was stored at delivery, so FETCH copies bytes and only BODY[...] reads
a message file. Hot paths batch their thread hops: each store round trip to a thread
costs far more than the query it carries, so a job that needs rows and then files
(`fetch_with_bodies`, `read_messages`) reads both in the same reader job, and SELECT
gets its UIDs and counters from one read transaction.

Must not: change anything (no writer operations here), parse messages, or read files
on the event loop.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from pillarbox.model import FlagRow, FlagText, MailboxStatus, MessageInfo, SearchKey
from pillarbox.store.errors import NotFound, StoreUnavailable
from pillarbox.store.flags import flag_set, system_names_sql
from pillarbox.store.sqlite import search as search_sql
from pillarbox.store.sqlite.core import SqliteCore
from pillarbox.store.sqlite.rows import (
    FETCH_JOIN,
    KEYWORD_RANGE_JOIN,
    RANGE_JOIN,
    flag_rows,
    keywords_of,
    mailbox_counters,
    ranges_json,
)
from pillarbox.store.times import from_epoch


class ReadingMixin(SqliteCore):
    """The message-reading operations of `SqliteStore`."""

    async def uids(self, mailbox_id: int) -> list[int]:
        def q(conn: sqlite3.Connection) -> list[int]:
            rows = conn.execute(
                "SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid", (mailbox_id,)
            )
            return [r[0] for r in rows]

        return await self._read(q)

    async def fetch_flags(self, mailbox_id: int, uids: Sequence[int]) -> list[FlagRow]:
        wanted = list(uids)

        def q(conn: sqlite3.Connection) -> list[FlagRow]:
            rows = flag_rows(conn, mailbox_id, wanted)
            if not rows:
                return []
            keywords = keywords_of(conn, mailbox_id, wanted)
            return [
                FlagRow(uid, flag_set(bits, keywords.get(uid, ())), ms) for uid, bits, ms in rows
            ]

        return await self._read(q)

    async def fetch_flag_bits(
        self, mailbox_id: int, uids: Sequence[int]
    ) -> tuple[list[tuple[int, int, int]], dict[int, list[str]]]:
        # The raw rows of `fetch_flags`: no FlagRow or frozenset per message.
        wanted = list(uids)

        def q(conn: sqlite3.Connection) -> tuple[list[tuple[int, int, int]], dict[int, list[str]]]:
            rows = flag_rows(conn, mailbox_id, wanted)
            return rows, (keywords_of(conn, mailbox_id, wanted) if rows else {})

        return await self._read(q)

    async def fetch_flag_text(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        *,
        modseq: bool = False,
        changed_since: int | None = None,
    ) -> FlagText:
        wanted = uids if isinstance(uids, range) else list(uids)
        return await self._read(
            lambda conn: _flag_text(conn, mailbox_id, wanted, modseq, changed_since)
        )

    async def fetch(self, mailbox_id: int, uids: Sequence[int]) -> list[MessageInfo]:
        wanted = list(uids)
        return await self._read(lambda conn: _message_infos(conn, mailbox_id, wanted))

    async def fetch_with_bodies(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        max_bytes: int,
        *,
        max_each: int | None = None,
    ) -> list[tuple[MessageInfo, bytes | None]]:
        # `fetch` plus whole message files in one reader job: a FETCH BODY[] of one
        # message is one thread hop instead of two (rows, then bytes).
        wanted = list(uids)
        files = self._files()

        def q(conn: sqlite3.Connection) -> list[tuple[MessageInfo, bytes | None]]:
            out: list[tuple[MessageInfo, bytes | None]] = []
            total = 0
            for info in _message_infos(conn, mailbox_id, wanted):
                data: bytes | None = None
                if total < max_bytes and (max_each is None or info.size <= max_each):
                    try:
                        data = files.read(info.blob_id)
                    except FileNotFoundError:
                        data = None  # expunged and collected since this read began
                    except OSError as exc:
                        raise StoreUnavailable(str(exc)) from exc
                    total += info.size
                out.append((info, data))
            return out

        return await self._read(q)

    async def read_message(
        self, mailbox_id: int, uid: int, start: int = 0, length: int | None = None
    ) -> bytes:
        (data,) = await self.read_messages(mailbox_id, [(uid, start, length)])
        if data is None:
            raise NotFound(f"no message {uid} in mailbox {mailbox_id}")
        return data

    async def read_messages(
        self, mailbox_id: int, ranges: Sequence[tuple[int, int, int | None]]
    ) -> list[bytes | None]:
        # One reader job for the whole batch: the blob ids are looked up and the files
        # read in the same thread hop (a FETCH of 50 bodies is one hop, not 100).
        wanted = list(ranges)
        files = self._files()

        def q(conn: sqlite3.Connection) -> list[bytes | None]:
            if not wanted:
                return []
            blob_of = dict(
                conn.execute(
                    f"SELECT m.uid, m.blob_id FROM {RANGE_JOIN}",
                    (ranges_json(u for u, _, _ in wanted), mailbox_id),
                ).fetchall()
            )
            out: list[bytes | None] = []
            for uid, start, length in wanted:
                blob_id = blob_of.get(uid)
                try:
                    data = None if blob_id is None else files.read(blob_id, start, length)
                except FileNotFoundError:
                    data = None  # expunged and collected since this read began
                except OSError as exc:
                    raise StoreUnavailable(str(exc)) from exc
                out.append(data)
            return out

        return await self._read(q)

    async def select_snapshot(self, mailbox_id: int) -> tuple[list[int], MailboxStatus, int | None]:
        # SELECT in one read transaction: the UID list, the counters and the first
        # unseen UID all come from the same snapshot, in one thread hop.
        def q(conn: sqlite3.Connection) -> tuple[list[int], MailboxStatus, int | None]:
            status, first_unseen = mailbox_counters(conn, mailbox_id)
            uids = [
                r[0]
                for r in conn.execute(
                    "SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY uid", (mailbox_id,)
                )
            ]
            return uids, status, first_unseen

        return await self._read(q)

    async def search(self, mailbox_id: int, key: SearchKey) -> list[int]:
        sql, params = search_sql.build(mailbox_id, key)

        def q(conn: sqlite3.Connection) -> list[int]:
            # pillarbox.db's snapshot first, search.db's after (see `search`): a text
            # not in this snapshot's text_pending was indexed before it began.
            conn.execute("SELECT 1 FROM main.text_pending LIMIT 1").fetchall()
            return [r[0] for r in conn.execute(sql, params)]

        return await self._read(q)

    async def changes_since(self, mailbox_id: int, modseq: int) -> tuple[list[FlagRow], list[int]]:
        def q(conn: sqlite3.Connection) -> tuple[list[FlagRow], list[int]]:
            rows = conn.execute(
                "SELECT uid, flags, modseq FROM messages INDEXED BY messages_modseq"
                " WHERE mailbox_id = ? AND modseq > ?"
                " ORDER BY uid",
                (mailbox_id, modseq),
            ).fetchall()
            keywords = keywords_of(conn, mailbox_id, [r[0] for r in rows]) if rows else {}
            changed = [FlagRow(u, flag_set(b, keywords.get(u, ())), m) for u, b, m in rows]
            gone = [
                r[0]
                for r in conn.execute(
                    "SELECT uid FROM expunged WHERE mailbox_id = ? AND modseq > ? ORDER BY uid",
                    (mailbox_id, modseq),
                )
            ]
            return changed, gone

        return await self._read(q)

    async def pop_hidden(self, mailbox_id: int) -> set[int]:
        def q(conn: sqlite3.Connection) -> set[int]:
            rows = conn.execute(
                "SELECT uid FROM messages WHERE mailbox_id = ? AND pop_hidden != 0", (mailbox_id,)
            )
            return {r[0] for r in rows}

        return await self._read(q)


_INFO_COLUMNS = (
    "SELECT m.uid, m.modseq, m.flags, m.internaldate, m.internal_tz, m.size,"
    " b.envelope, b.bodystructure, b.body, b.parts, b.preview, m.blob_id, m.savedate,"
    " m.thread_id"
)


_SYSTEM_NAMES = system_names_sql("m.flags")
_TAB_SYSTEM_NAMES = system_names_sql("m.flags", "\t")
# The keywords of one message, in primary-key order (the NOCASE order of `FlagText`).
_KEYWORD_NAMES = (
    "(SELECT group_concat(k.keyword, ' ') FROM keywords AS k"
    " WHERE k.mailbox_id = m.mailbox_id AND k.uid = m.uid)"
)


def _flag_text(
    conn: sqlite3.Connection,
    mailbox_id: int,
    uids: Sequence[int],
    modseq: bool,
    changed_since: int | None,
) -> FlagText:
    """`fetch_flag_text`: the distinct keywords of the rows first (one index range scan,
    empty in most mailboxes), then every line in one `group_concat`, so SQLite's C code
    builds the text outside the GIL and Python gets one string. Only when keywords occur
    does each row look its own up. Rows come in UID order: one ascending scan of the
    primary key per range, the ranges in order."""
    if not uids:
        return FlagText(0, "")
    if isinstance(uids, range) and uids.step == 1:
        source = "messages AS m WHERE m.mailbox_id = ? AND m.uid BETWEEN ? AND ?"
        kw_source = "keywords AS k WHERE k.mailbox_id = ? AND k.uid BETWEEN ? AND ?"
        params: tuple[object, ...] = (mailbox_id, uids.start, uids.stop - 1)
    else:
        source = RANGE_JOIN
        kw_source = KEYWORD_RANGE_JOIN
        params = (ranges_json(uids), mailbox_id)
    kw_params = params
    if changed_since is not None:
        source += " AND +m.modseq > ?"  # "+": not by the MODSEQ index, UID order kept
        kw_source += (
            " AND EXISTS (SELECT 1 FROM messages AS m WHERE m.mailbox_id = k.mailbox_id"
            " AND m.uid = k.uid AND m.modseq > ?)"
        )
        params = kw_params = (*params, changed_since)
    keywords = frozenset(
        k for (k,) in conn.execute(f"SELECT DISTINCT k.keyword FROM {kw_source}", kw_params)
    )
    # Every concatenation and function call per row shows (SQLite evaluates the
    # separator per row too): the tab comes with the names, literals, not char().
    line = "m.uid || '\t' || m.modseq || " if modseq else "m.uid || "
    if keywords:
        line += f"'\t' || ltrim({_SYSTEM_NAMES} || coalesce(' ' || {_KEYWORD_NAMES}, ''))"
    else:
        line += _TAB_SYSTEM_NAMES
    count, text = conn.execute(
        f"SELECT count(*), group_concat({line}, '\n') FROM {source}", params
    ).fetchone()
    return FlagText(count, text or "", keywords)


def _message_infos(
    conn: sqlite3.Connection, mailbox_id: int, wanted: list[int]
) -> list[MessageInfo]:
    """The precomputed rows of `wanted` (ascending), keywords included: one query each."""
    if not wanted:
        return []
    if len(wanted) == 1:
        # One message (a client's UID FETCH n BODY[]): primary-key lookups, without the
        # JSON range list the general query is built on (half the cost of this job).
        rows = conn.execute(
            f"{_INFO_COLUMNS} FROM messages AS m JOIN blobs AS b ON b.id = m.blob_id"
            " WHERE m.mailbox_id = ? AND m.uid = ?",
            (mailbox_id, wanted[0]),
        ).fetchall()
        keywords: dict[int, list[str]] = {}
        if rows:
            found = conn.execute(
                "SELECT keyword FROM keywords WHERE mailbox_id = ? AND uid = ?",
                (mailbox_id, wanted[0]),
            ).fetchall()
            if found:
                keywords[wanted[0]] = [k for (k,) in found]
    else:
        rows = conn.execute(
            f"{_INFO_COLUMNS} FROM {FETCH_JOIN}", (ranges_json(wanted), mailbox_id)
        ).fetchall()
        keywords = keywords_of(conn, mailbox_id, wanted) if rows else {}
    return [
        MessageInfo(
            mailbox_id=mailbox_id,
            uid=r[0],
            modseq=r[1],
            flags=flag_set(r[2], keywords.get(r[0], ())),
            internaldate=from_epoch(r[3], r[4]),
            size=r[5],
            envelope=r[6] or b"",
            bodystructure=r[7] or b"",
            body=r[8] or b"",
            parts=r[9] or "",
            preview=r[10] or "",
            blob_id=r[11],
            # RFC 8514: a row saved before save dates were kept answers its INTERNALDATE
            savedate=from_epoch(r[3], r[4]) if r[12] is None else from_epoch(r[12], 0),
            thread_id=r[13],
        )
        for r in rows
    ]
