"""Message-row queries and conversions shared by several concerns of the SQLite backend.

Owns the UID-list idiom every query over a set of UIDs uses (merged inclusive ranges
passed as one JSON parameter and joined through ``json_each``: one indexed range scan
per range, all in one statement), the flag and keyword rows of a UID list, the counters
of STATUS and SELECT, and the stored form of INTERNALDATE and other times. These run on a connection
they are given, in the writer's transaction or in a reader's.

Must not: start or end a transaction, change rows, or touch files.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import cast

from pillarbox.model import MailboxStatus
from pillarbox.store.errors import NotFound
from pillarbox.store.flags import DELETED, SEEN


def ranges(uids: Iterable[int]) -> list[list[int]]:
    """Sorted, merged inclusive UID ranges: the unit every UID-list query takes."""
    if isinstance(uids, range) and uids.step == 1:
        return [[uids.start, uids.stop - 1]] if uids else []  # one range, no walk
    result: list[list[int]] = []
    for uid in sorted(set(uids)):
        if result and uid == result[-1][1] + 1:
            result[-1][1] = uid
        else:
            result.append([uid, uid])
    return result


def ranges_json(uids: Iterable[int]) -> str:
    return json.dumps(ranges(uids), separators=(",", ":"))


def uid_list_json(uids: Iterable[int]) -> str:
    return json.dumps(sorted(set(uids)), separators=(",", ":"))


# Rows of a UID list: one indexed range scan per merged range, all in one statement.
RANGE_JOIN = (
    "json_each(?) AS r CROSS JOIN messages AS m"
    " WHERE m.mailbox_id = ? AND m.uid BETWEEN r.value ->> 0 AND r.value ->> 1"
)
FETCH_JOIN = (
    "json_each(?) AS r CROSS JOIN messages AS m JOIN blobs AS b ON b.id = m.blob_id"
    " WHERE m.mailbox_id = ? AND m.uid BETWEEN r.value ->> 0 AND r.value ->> 1"
)
KEYWORD_RANGE_JOIN = (
    "json_each(?) AS r CROSS JOIN keywords AS k"
    " WHERE k.mailbox_id = ? AND k.uid BETWEEN r.value ->> 0 AND r.value ->> 1"
)


def keywords_of(
    conn: sqlite3.Connection, mailbox_id: int, uids: Sequence[int] | None
) -> dict[int, list[str]]:
    if uids is None:
        rows = conn.execute("SELECT uid, keyword FROM keywords WHERE mailbox_id = ?", (mailbox_id,))
    else:
        rows = conn.execute(
            f"SELECT k.uid, k.keyword FROM {KEYWORD_RANGE_JOIN}",
            (ranges_json(uids), mailbox_id),
        )
    result: dict[int, list[str]] = {}
    for uid, keyword in rows:
        result.setdefault(uid, []).append(keyword)
    return result


def flag_rows(
    conn: sqlite3.Connection, mailbox_id: int, uids: Sequence[int] | None
) -> list[tuple[int, int, int]]:
    """(uid, flag bits, modseq) of existing UIDs, ascending."""
    if uids is None:
        rows = conn.execute(
            "SELECT uid, flags, modseq FROM messages WHERE mailbox_id = ? ORDER BY uid",
            (mailbox_id,),
        ).fetchall()
    else:
        if not uids:
            return []
        rows = conn.execute(
            f"SELECT m.uid, m.flags, m.modseq FROM {RANGE_JOIN}",
            (ranges_json(uids), mailbox_id),
        ).fetchall()
    return cast(list[tuple[int, int, int]], rows)


# The counters of STATUS/SELECT as SELECT columns over a mailbox's message rows, in the
# order `counted_status` takes them; a caller may add columns after them (one scan).
COUNTER_COLUMNS = (
    f"count(*), coalesce(sum((flags & {SEEN}) = 0), 0),"
    f" coalesce(sum((flags & {DELETED}) != 0), 0), coalesce(sum(size), 0),"
    f" coalesce(sum(CASE WHEN flags & {DELETED} != 0 THEN size END), 0)"
)


def mailbox_row(conn: sqlite3.Connection, mailbox_id: int) -> tuple[int, int, int]:
    """(uidnext, uidvalidity, highestmodseq) of the mailbox; NotFound if there is none."""
    box = conn.execute(
        "SELECT uidnext, uidvalidity, highestmodseq FROM mailboxes WHERE id = ?", (mailbox_id,)
    ).fetchone()
    if box is None:
        raise NotFound(f"no mailbox {mailbox_id}")
    return cast(tuple[int, int, int], tuple(box))


def counted_status(box: tuple[int, int, int], counts: Sequence[int]) -> MailboxStatus:
    """The MailboxStatus of `mailbox_row` and the `COUNTER_COLUMNS` values."""
    messages, unseen, deleted, size, deleted_size = counts[:5]
    return MailboxStatus(
        messages=messages,
        unseen=unseen,
        deleted=deleted,
        size=size,
        uidnext=box[0],
        uidvalidity=box[1],
        highestmodseq=box[2],
        deleted_size=deleted_size,
    )


def mailbox_counters(conn: sqlite3.Connection, mailbox_id: int) -> tuple[MailboxStatus, int | None]:
    """The counters of STATUS/SELECT and the first unseen UID, in one pass over the rows."""
    box = mailbox_row(conn, mailbox_id)
    counts = conn.execute(
        f"SELECT {COUNTER_COLUMNS}, min(CASE WHEN flags & {SEEN} = 0 THEN uid END)"
        " FROM messages WHERE mailbox_id = ?",
        (mailbox_id,),
    ).fetchone()
    return counted_status(box, counts), counts[5]
