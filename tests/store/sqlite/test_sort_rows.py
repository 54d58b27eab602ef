"""`sort_rows` in the SQLite backend: what SORT and THREAD read, in one query.

Pins: rows come from the precomputed columns (decoded subject, sent date, ENVELOPE,
size, INTERNALDATE) for exactly the UIDs asked; References msg-ids stored at delivery
come back with `with_references`; a blob stored before the column existed (NULL) brings
its decoded header block from the full-text index instead, so old mail threads too.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from pillarbox.message.message_ids import message_ids, references_field
from pillarbox.message.parse import parse
from pillarbox.store.sqlite import DB_NAME, SqliteStore

MSG = (
    b"Message-ID: <m2@x.test>\r\nReferences: <m0@x.test>\r\n\t<m1@x.test>\r\n"
    b"Subject: =?utf-8?q?Re=3A_caf=C3=A9?=\r\nDate: Wed, 1 Jan 2020 10:00:00 +0500\r\n\r\nhi\r\n"
)


async def _store_with_messages(data: Path) -> tuple[SqliteStore, int, list[int]]:
    store = SqliteStore(data)
    await store.open()
    await store.add_domain("example.org")
    account = await store.add_account("a@example.org", "$argon2id$dummy")
    inbox = await store.get_mailbox(account.id, "INBOX")
    assert inbox is not None
    uids = []
    for body in (MSG, b"Subject: plain\r\n\r\nx\r\n", MSG):
        writer = store.new_blob()
        await writer.write(body)
        blob = await writer.finish()
        when = datetime(2024, 5, 17, 10, 0, tzinfo=UTC)
        result = await store.append(inbox.id, blob, parse(body), frozenset(), when)
        uids.append(result.uid)
    return store, inbox.id, uids


async def test_rows_from_stored_columns(tmp_path: Path) -> None:
    store, mailbox, uids = await _store_with_messages(tmp_path / "data")
    try:
        rows = await store.sort_rows(mailbox, [uids[2], uids[0]])
        assert [r.uid for r in rows] == [uids[0], uids[2]]
        row = rows[0]
        assert row.subject == "Re: café"
        assert row.sent_date is not None and row.sent_date.timestamp() == 1577854800
        assert row.size == len(MSG)
        assert row.internaldate == datetime(2024, 5, 17, 10, 0, tzinfo=UTC)
        assert b"<m2@x.test>" in row.envelope
        assert row.references is None  # not asked for
        (with_refs, plain) = await store.sort_rows(mailbox, uids[:2], with_references=True)
        assert with_refs.references == "<m0@x.test> <m1@x.test>"
        assert plain.references == "" and plain.header_text == ""
    finally:
        await store.close()


async def test_rows_stored_before_references_fall_back_to_header_text(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store, mailbox, uids = await _store_with_messages(data)
    await store.close()
    conn = sqlite3.connect(data / DB_NAME)
    with conn:
        conn.execute("UPDATE blobs SET thread_refs = NULL")  # as migration 5 leaves old rows
    conn.close()
    store = SqliteStore(data)
    await store.open()
    try:
        rows = await store.sort_rows(mailbox, uids, with_references=True)
        assert [r.references for r in rows] == [None, None, None]
        assert message_ids(references_field(rows[0].header_text)) == ["<m0@x.test>", "<m1@x.test>"]
        assert message_ids(references_field(rows[1].header_text)) == []
    finally:
        await store.close()
