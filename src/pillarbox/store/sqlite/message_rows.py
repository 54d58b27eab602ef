"""Message-row work inside a writer transaction, shared by several operations.

Owns the steps that append, deliver, copy, move, expunge, delete a mailbox, remove an
account and enqueue are made of: reserving UIDs and a MODSEQ (`bump`), the quota check,
the blob row (once per blob: COPY and multi-recipient delivery share it, and with it
everything derived from the message bytes: size, precomputed IMAP bytes, search
columns), inserting, copying and removing message rows, and collecting blob rows whose
last reference went (their files are unlinked by the writer after the commit).

Every function runs in the writer thread on the `Tx` of one operation; the changes it
publishes go to `tx.changes`, the files it frees to `tx.unlink`. Must not: commit,
start a transaction, or touch a file (but for checking that a blob's file exists).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from pillarbox.model import (
    AppendResult,
    CopyResult,
    FlagRow,
    MessageMeta,
    MessagesAdded,
    MessagesExpunged,
    objectids,
)
from pillarbox.rules import quota as quota_rules
from pillarbox.rules.flags import MAX_KEYWORDS_PER_MAILBOX
from pillarbox.store.api import BlobHandle
from pillarbox.store.errors import MailboxKeywordsFull, NotFound, QuotaExceeded
from pillarbox.store.flags import flag_set, split_flags
from pillarbox.store.sqlite.blobs import BlobFiles
from pillarbox.store.sqlite.rows import (
    RANGE_JOIN,
    keywords_of,
    ranges_json,
    uid_list_json,
)
from pillarbox.store.sqlite.writer import Tx
from pillarbox.store.times import to_epoch


def bump(conn: sqlite3.Connection, mailbox_id: int, new_uids: int) -> tuple[int, int, int, int]:
    """Reserve `new_uids` UIDs and one new MODSEQ: (first uid, modseq, uidvalidity,
    account id). Every change takes exactly one MODSEQ per mailbox (RFC 7162 §3.1)."""
    row = conn.execute(
        "UPDATE mailboxes SET uidnext = uidnext + ?, highestmodseq = highestmodseq + 1"
        " WHERE id = ? RETURNING uidnext - ?, highestmodseq, uidvalidity, account_id",
        (new_uids, mailbox_id, new_uids),
    ).fetchone()
    if row is None:
        raise NotFound(f"no mailbox {mailbox_id}")
    return row[0], row[1], row[2], row[3]


def check_quota(conn: sqlite3.Connection, mailbox_id: int, adding: int, count: int = 1) -> None:
    """Refuse `count` messages of `adding` bytes that would take the mailbox's account
    over either of its limits (`rules.quota`); the counters are the triggers' (one row)."""
    row = conn.execute(
        "SELECT a.quota_bytes, a.used_bytes, a.quota_messages, a.used_messages"
        " FROM mailboxes AS m JOIN accounts AS a ON a.id = m.account_id WHERE m.id = ?",
        (mailbox_id,),
    ).fetchone()
    if row is None:
        raise NotFound(f"no mailbox {mailbox_id}")
    quota, used, limit, held = row
    if not quota_rules.allows(quota, used, adding):
        raise QuotaExceeded(f"{used + adding} bytes exceed the quota of {quota}")
    if not quota_rules.allows_messages(limit, held, count):
        raise QuotaExceeded(f"{held + count} messages exceed the limit of {limit}")


def insert_blob(
    conn: sqlite3.Connection,
    files: BlobFiles,
    blob: BlobHandle,
    meta: MessageMeta | None,
) -> None:
    """The blob's row (once per blob; COPY and multi-recipient delivery share it).
    Its SEARCH text goes to text_pending in the same savepoint (`writer.Op.text`)."""
    if not os.path.exists(files.path(blob.blob_id)):
        # A row must never point to a missing file.
        raise NotFound(f"blob {blob.blob_id} has no durable file")
    if meta is None:
        conn.execute(
            "INSERT INTO blobs (id, size) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
            (blob.blob_id, blob.size),
        )
        return
    sent_iso = sent_day = None
    if meta.sent_date is not None:
        sent_iso = meta.sent_date.isoformat()
        sent_day = meta.sent_date.date().isoformat()
    conn.execute(
        "INSERT INTO blobs (id, size, envelope, bodystructure, body, parts, preview,"
        " subject, from_, to_, cc, bcc, message_id, sent_date, sent_day, thread_refs)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET envelope = excluded.envelope,"
        " bodystructure = excluded.bodystructure, body = excluded.body,"
        " parts = excluded.parts, preview = excluded.preview, subject = excluded.subject,"
        " from_ = excluded.from_, to_ = excluded.to_, cc = excluded.cc, bcc = excluded.bcc,"
        " message_id = excluded.message_id, sent_date = excluded.sent_date,"
        " sent_day = excluded.sent_day, thread_refs = excluded.thread_refs"
        " WHERE blobs.envelope IS NULL",
        (
            blob.blob_id,
            blob.size,
            meta.envelope,
            meta.bodystructure,
            meta.body,
            meta.parts,
            meta.preview,
            meta.subject,
            meta.from_,
            meta.to,
            meta.cc,
            meta.bcc,
            meta.message_id,
            sent_iso,
            sent_day,
            meta.references,
        ),
    )


def check_keyword_room(conn: sqlite3.Connection, mailbox_id: int, names: Iterable[str]) -> None:
    """MailboxKeywordsFull if keywords `names` would take the mailbox past
    `rules.flags.MAX_KEYWORDS_PER_MAILBOX` distinct keywords. One indexed look-up for the
    names, and a count only when one of them is new to the mailbox."""
    wanted = {n.lower() for n in names}
    if not wanted:
        return
    known = {
        row[0].lower()
        for row in conn.execute(
            "SELECT DISTINCT keyword FROM keywords WHERE mailbox_id = ?"
            " AND keyword IN (SELECT value FROM json_each(?))",
            (mailbox_id, json.dumps(sorted(wanted))),
        )
    }
    new = wanted - known
    if not new:
        return
    (count,) = conn.execute(
        "SELECT COUNT(*) FROM (SELECT DISTINCT keyword FROM keywords WHERE mailbox_id = ?)",
        (mailbox_id,),
    ).fetchone()
    if count + len(new) > MAX_KEYWORDS_PER_MAILBOX:
        raise MailboxKeywordsFull(f"At most {MAX_KEYWORDS_PER_MAILBOX} keywords per mailbox")


def spell_keywords(
    conn: sqlite3.Connection, mailbox_id: int, keywords: dict[str, str]
) -> dict[str, str]:
    """Keywords match case-insensitively; keep the spelling the mailbox already uses."""
    spelled = dict(keywords)
    for folded, spelling in keywords.items():
        row = conn.execute(
            "SELECT keyword FROM keywords WHERE mailbox_id = ? AND keyword = ? LIMIT 1",
            (mailbox_id, spelling),
        ).fetchone()
        if row is not None:
            spelled[folded] = row[0]
    return spelled


def assign_thread(
    conn: sqlite3.Connection, account_id: int, blob_id: int, keys: Sequence[str]
) -> int:
    """The thread of a message being stored (RFC 8474 §5.2, `model.objectids`): that of
    its first key the account knows, else a new one named by its blob. One primary-key
    probe for all keys; the keys not known yet are recorded under the thread."""
    if not keys:
        return blob_id
    known = dict(
        conn.execute(
            "SELECT msgid, thread_id FROM thread_ids WHERE account_id = ?"
            " AND msgid IN (SELECT value FROM json_each(?))",
            (account_id, json.dumps(list(keys))),
        ).fetchall()
    )
    thread_id = next((known[k] for k in keys if k in known), blob_id)
    conn.executemany(
        "INSERT INTO thread_ids (account_id, msgid, thread_id) VALUES (?, ?, ?)",
        [(account_id, k, thread_id) for k in keys if k not in known],
    )
    return int(thread_id)


def append_one(
    tx: Tx,
    files: BlobFiles,
    mailbox_id: int,
    blob: BlobHandle,
    meta: MessageMeta,
    flags: frozenset[str],
    internaldate: datetime | None,
) -> AppendResult:
    conn = tx.conn
    check_quota(conn, mailbox_id, meta.size)
    bits, keywords = split_flags(flags)
    check_keyword_room(conn, mailbox_id, keywords)
    insert_blob(conn, files, blob, meta)
    uid, modseq, uidvalidity, account_id = bump(conn, mailbox_id, 1)
    thread_id = assign_thread(conn, account_id, blob.blob_id, objectids.thread_keys(meta))
    now = datetime.now(UTC)
    epoch, tz = to_epoch(internaldate or now)
    conn.execute(
        "INSERT INTO messages (mailbox_id, uid, modseq, flags, internaldate, internal_tz,"
        " size, blob_id, savedate, thread_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            mailbox_id,
            uid,
            modseq,
            bits,
            epoch,
            tz,
            meta.size,
            blob.blob_id,
            int(now.timestamp()),
            thread_id,
        ),
    )
    spelled = spell_keywords(conn, mailbox_id, keywords)
    conn.executemany(
        "INSERT OR IGNORE INTO keywords (mailbox_id, uid, keyword) VALUES (?, ?, ?)",
        [(mailbox_id, uid, k) for k in spelled.values()],
    )
    tx.changes.append(
        MessagesAdded(
            account_id,
            mailbox_id,
            (FlagRow(uid, flag_set(bits, spelled.values()), modseq),),
        )
    )
    return AppendResult(uid=uid, modseq=modseq, uidvalidity=uidvalidity)


def copy_rows(
    tx: Tx, src: int, uids: Sequence[int] | None, dst: int, *, quota: bool = True
) -> CopyResult:
    conn = tx.conn
    if conn.execute("SELECT 1 FROM mailboxes WHERE id = ?", (dst,)).fetchone() is None:
        raise NotFound(f"no mailbox {dst}")
    if uids is None:
        rows = conn.execute(
            "SELECT uid, flags, size FROM messages WHERE mailbox_id = ? ORDER BY uid", (src,)
        ).fetchall()
    else:
        rows = conn.execute(
            f"SELECT m.uid, m.flags, m.size FROM {RANGE_JOIN}", (ranges_json(uids), src)
        ).fetchall()
    if not rows:
        if conn.execute("SELECT 1 FROM mailboxes WHERE id = ?", (src,)).fetchone() is None:
            raise NotFound(f"no mailbox {src}")
        validity = conn.execute(
            "SELECT uidvalidity FROM mailboxes WHERE id = ?", (dst,)
        ).fetchone()[0]
        return CopyResult(uidvalidity=validity, source_uids=(), dest_uids=())
    if quota:
        check_quota(conn, dst, sum(r[2] for r in rows), len(rows))
    source_uids = [r[0] for r in rows]
    first, modseq, uidvalidity, account_id = bump(conn, dst, len(rows))
    dest_uids = list(range(first, first + len(rows)))
    mapping = json.dumps(list(zip(source_uids, dest_uids, strict=True)), separators=(",", ":"))
    conn.execute(
        # RFC 8514 §3: the copy is saved now (MOVE too: it copies, then removes).
        "INSERT INTO messages (mailbox_id, uid, modseq, flags, internaldate, internal_tz,"
        # RFC 8474 §5.1, §5.2: the copy keeps its EMAILID (the blob) and its THREADID.
        " size, blob_id, savedate, thread_id) SELECT ?, j.value ->> 1, ?, m.flags,"
        " m.internaldate, m.internal_tz, m.size, m.blob_id, ?, m.thread_id"
        " FROM json_each(?) AS j CROSS JOIN messages AS m"
        " WHERE m.mailbox_id = ? AND m.uid = j.value ->> 0",
        (dst, modseq, int(datetime.now(UTC).timestamp()), mapping, src),
    )
    keywords = keywords_of(conn, src, source_uids)
    if keywords:
        check_keyword_room(conn, dst, {k for ks in keywords.values() for k in ks})
        conn.execute(
            "INSERT OR IGNORE INTO keywords (mailbox_id, uid, keyword)"
            " SELECT ?, j.value ->> 1, k.keyword FROM json_each(?) AS j"
            " CROSS JOIN keywords AS k WHERE k.mailbox_id = ? AND k.uid = j.value ->> 0",
            (dst, mapping, src),
        )
    added = tuple(
        FlagRow(new, flag_set(bits, keywords.get(old, ())), modseq)
        for (old, bits, _), new in zip(rows, dest_uids, strict=True)
    )
    tx.changes.append(MessagesAdded(account_id, dst, added))
    return CopyResult(
        uidvalidity=uidvalidity, source_uids=tuple(source_uids), dest_uids=tuple(dest_uids)
    )


def remove_rows(tx: Tx, mailbox_id: int, uids: Sequence[int]) -> None:
    """Delete rows, record them for QRESYNC under one new MODSEQ, publish."""
    if not uids:
        return
    conn = tx.conn
    _, modseq, _, account_id = bump(conn, mailbox_id, 0)
    listed = uid_list_json(uids)
    conn.execute(
        "DELETE FROM messages WHERE mailbox_id = ? AND uid IN (SELECT value FROM json_each(?))",
        (mailbox_id, listed),
    )
    conn.execute(
        "INSERT OR REPLACE INTO expunged (mailbox_id, uid, modseq)"
        " SELECT ?, value, ? FROM json_each(?)",
        (mailbox_id, modseq, listed),
    )
    collect_blobs(tx)
    tx.changes.append(MessagesExpunged(account_id, mailbox_id, tuple(sorted(uids)), modseq))


def move_rows(tx: Tx, src: int, uids: Sequence[int] | None, dst: int) -> CopyResult:
    # A move inside one account changes neither its bytes nor its message count (the
    # copy's rows are counted and the source's uncounted in this one transaction): no
    # quota check.
    same_account = tx.conn.execute(
        "SELECT (SELECT account_id FROM mailboxes WHERE id = ?)"
        " = (SELECT account_id FROM mailboxes WHERE id = ?)",
        (src, dst),
    ).fetchone()[0]
    result = copy_rows(tx, src, uids, dst, quota=not same_account)
    remove_rows(tx, src, result.source_uids)
    return result


def collect_blobs(tx: Tx) -> None:
    """Drop blob rows whose last reference went; their files go after the commit."""
    ids = [r[0] for r in tx.conn.execute("SELECT id FROM blobs WHERE refs <= 0")]
    if not ids:
        return
    listed = json.dumps(ids)
    tx.conn.execute("DELETE FROM blobs WHERE id IN (SELECT value FROM json_each(?))", (listed,))
    tx.unlink.extend(ids)
