"""Rows whose message file may not be durable yet: the record, and the check at open.

Why: a delivery used to wait for two fsyncs in series, the message file's (and its
directory's) and then the group commit of its row. Now the file's sync runs while the
row commits (`blobs.BlobFileWriter.finish` returns once the bytes are written), and the
250 / APPEND OK still waits for both (`core.SqliteCore._write`, ``blobs=``). What a
crash between the two could leave, a committed row whose file is short or missing, is
caught here: a blob whose sync was not known complete when its row was written is listed
in ``pending_files`` (size, CRC-32) in that same transaction
(`message_rows.insert_blob`); the entry is
deleted, without an fsync of its own, once the sync is done (`forget`). At open, the
store that collects orphans (before any other process writes) checks each file listed
(`check_at_open`): a good one is synced again (a killed process leaves its bytes in the
page cache only) and kept; the rows of a bad one are removed (`drop_blobs`), which loses
only messages never acknowledged, since an acknowledgement waited for the sync of the
very bytes the CRC covers. A blob referenced by several rows (one delivery to several
mailboxes, COPY) is one entry: all its rows go, or none.

Must not: run on the event loop (writer thread only), or decide durability any other
way than by the sync future of the handle (`blobs.FileBlob.durable`).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Sequence

from pillarbox.store.sqlite.blobs import BlobFiles
from pillarbox.store.sqlite.message_rows import collect_blobs, remove_rows
from pillarbox.store.sqlite.writer import Tx

log = logging.getLogger(__name__)


def forget(conn: sqlite3.Connection, blob_ids: Sequence[int]) -> None:
    """Their files are durable now. Not durable itself: an entry a crash brings back is
    checked again at open, and passes."""
    conn.execute(
        "DELETE FROM pending_files WHERE blob_id IN (SELECT value FROM json_each(?))",
        (json.dumps(list(blob_ids)),),
    )


def drop_blobs(tx: Tx, blob_ids: Sequence[int]) -> None:
    """Remove every row referring to these blobs (messages, recorded as expunged for
    QRESYNC; queue entries), then the blob rows; their files go after the commit."""
    conn = tx.conn
    listed = json.dumps(list(blob_ids))
    by_mailbox: dict[int, list[int]] = {}
    for mailbox_id, uid in conn.execute(
        "SELECT mailbox_id, uid FROM messages WHERE blob_id IN (SELECT value FROM json_each(?))"
        " ORDER BY mailbox_id, uid",
        (listed,),
    ):
        by_mailbox.setdefault(mailbox_id, []).append(uid)
    for mailbox_id, uids in by_mailbox.items():
        remove_rows(tx, mailbox_id, uids)
    conn.execute("DELETE FROM queue WHERE blob_id IN (SELECT value FROM json_each(?))", (listed,))
    collect_blobs(tx)
    # A blob row still referenced cannot remain (every reference went above), but the
    # file of one whose row was already gone is removed too.
    tx.unlink.extend(b for b in blob_ids if b not in tx.unlink)


def check_at_open(conn: sqlite3.Connection, files: BlobFiles) -> int:
    """Check every file listed in ``pending_files`` (under the writer's lock, at the open
    of the store that collects orphans); returns how many blobs were removed."""
    entries = conn.execute("SELECT blob_id, size, crc FROM pending_files").fetchall()
    if not entries:
        return 0
    bad = {blob_id for blob_id, size, crc in entries if not files.verify(blob_id, size, crc)}
    good = [blob_id for blob_id, *_ in entries if blob_id not in bad]
    # The bytes check out, but a killed process's may be in the page cache only: sync
    # them before the entry goes, as `finish` would have.
    files.sync(good)
    tx = Tx(conn)
    conn.execute("BEGIN IMMEDIATE")
    try:
        if bad:
            drop_blobs(tx, sorted(bad))
        conn.execute("DELETE FROM pending_files")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    files.unlink(tx.unlink)
    if bad:
        log.warning(
            "removed %d message(s) whose file was not durable at a crash (never acknowledged)",
            len(bad),
        )
    return len(bad)
