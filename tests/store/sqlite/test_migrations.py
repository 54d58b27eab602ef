"""The store carries an existing data directory's contents forward when it opens."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from pillarbox.model import (
    FlagMode,
    MessageMeta,
    QueuedRecipient,
    QueueOrigin,
    QuotaUsage,
    SearchSaveDate,
    SearchThreadId,
)
from pillarbox.store.errors import NotFound
from pillarbox.store.sqlite import DB_NAME, SqliteStore, schema, text_index


def _old_store(data: Path) -> sqlite3.Connection:
    """pillarbox.db as schema version 1 left it: the text index inside it."""
    data.mkdir()
    conn = sqlite3.connect(data / DB_NAME, isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    version, first = schema.migrations()[0]
    assert version == 1
    conn.executescript(f"BEGIN;\n{first}\nINSERT INTO schema_version VALUES (1);\nCOMMIT;")
    return conn


def test_text_index_moves_to_its_own_file(tmp_path: Path) -> None:
    """The rows of an older store's index move to search.db (detail=none, so the
    trigram search can use it), and rows of blobs that have no row are swept."""
    data = tmp_path / "data"
    conn = _old_store(data)
    conn.executemany("INSERT INTO blobs (id, size) VALUES (?, ?)", [(7, 10), (9, 10)])
    conn.executemany(
        "INSERT INTO blob_text (rowid, headers, body_text) VALUES (?, ?, ?)",
        [
            (7, "Subject: Grüße", "hello world"),
            (9, "Subject: other", "nothing here"),
            (11, "Subject: orphan", "no blob row"),
        ],
    )
    schema.migrate(conn)

    text_index.move_and_sweep(conn, data)

    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'blob_text'").fetchall() == []
    index = sqlite3.connect(data / text_index.TEXT_DB_NAME)
    (sql,) = index.execute("SELECT sql FROM sqlite_master WHERE name = 'blob_text'").fetchone()
    assert "detail = none" in sql
    rows = index.execute("SELECT rowid, headers, body_text FROM blob_text ORDER BY rowid")
    assert rows.fetchall() == [
        (7, "Subject: Grüße", "hello world"),
        (9, "Subject: other", "nothing here"),
    ]
    found = index.execute(
        "SELECT rowid FROM blob_text WHERE blob_text MATCH ?", ('"RÜß" AND "üße"',)
    ).fetchall()
    assert found == [(7,)]

    # Opening again finds nothing left to move and keeps the index as it is.
    text_index.move_and_sweep(conn, data)
    assert index.execute("SELECT count(*) FROM blob_text").fetchone() == (2,)


async def test_removing_a_blob_looks_up_its_references_by_index(tmp_path: Path) -> None:
    """The foreign-key checks that run when a blob row is deleted find referring
    messages and queue entries through an index, not a scan of every row."""
    store = SqliteStore(tmp_path / "data")
    await store.open()
    await store.close()
    conn = sqlite3.connect(tmp_path / "data" / DB_NAME)
    for table, index in (("messages", "messages_blob"), ("queue", "queue_blob")):
        plan = conn.execute(
            f"EXPLAIN QUERY PLAN SELECT 1 FROM {table} WHERE blob_id = ?", (1,)
        ).fetchall()
        assert any(f"INDEX {index}" in row[3] for row in plan), plan


def _store_at(data: Path, version: int) -> sqlite3.Connection:
    """pillarbox.db as schema `version` left it (every migration up to it applied)."""
    data.mkdir()
    conn = sqlite3.connect(data / DB_NAME, isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for number, script in schema.migrations():
        if number <= version:
            conn.executescript(
                f"BEGIN;\n{script}\nINSERT INTO schema_version VALUES ({number});\nCOMMIT;"
            )
    return conn


@pytest.mark.parametrize("version", [v for v, _ in schema.migrations() if v < 3])
async def test_older_queue_entries_read_as_queued(tmp_path: Path, version: int) -> None:
    """A queue entry written before per-recipient state (schema < 3) opens as a
    forwarded entry, unclaimed and never warned, every recipient queued at its position;
    it can be claimed and removed (its blob file with it), and DKIM keys start empty."""
    data = tmp_path / "data"
    conn = _store_at(data, version)
    conn.execute("INSERT INTO blobs (id, size) VALUES (7, 5)")
    conn.execute(
        "INSERT INTO queue (id, sender, blob_id, created_at, next_attempt, attempts,"
        " last_error) VALUES (3, 's@example.org', 7, 1700000000, 1700000100, 2, '451 later')"
    )
    conn.executemany(
        "INSERT INTO queue_recipients (queue_id, position, address, notify, orcpt)"
        " VALUES (3, ?, ?, ?, ?)",
        [(0, "a@x.test", "FAILURE", "rfc822;a@x.test"), (1, "b@y.test", None, None)],
    )
    assert conn.execute("SELECT refs FROM blobs WHERE id = 7").fetchone() == (1,)
    conn.close()
    blob_file = data / "blobs" / "00" / f"{7:016x}"
    blob_file.parent.mkdir(parents=True)
    blob_file.write_bytes(b"hello")

    store = SqliteStore(data)
    await store.open()
    try:
        [q] = await store.list_queue()
        assert (q.id, q.sender, q.blob_id, q.size, q.attempts, q.last_error) == (
            3,
            "s@example.org",
            7,
            5,
            2,
            "451 later",
        )
        assert (q.origin, q.warned, q.claimed_until) == (QueueOrigin.FORWARD, False, None)
        assert q.created_at == datetime.fromtimestamp(1700000000, UTC)
        assert q.next_attempt == datetime.fromtimestamp(1700000100, UTC)
        assert q.recipients == (
            QueuedRecipient("a@x.test", "FAILURE", "rfc822;a@x.test", position=0),
            QueuedRecipient("b@y.test", position=1),
        )
        assert [c.id for c in await store.claim_queue(datetime.now(UTC), 10, 60)] == [3]
        assert await store.list_dkim_keys() == []
        assert await store.remove_queued(3) is True
        with pytest.raises(NotFound):
            await store.read_blob(7)
        assert not blob_file.exists()
    finally:
        await store.close()
    conn = sqlite3.connect(data / DB_NAME)
    assert conn.execute("SELECT max(version) FROM schema_version").fetchone() == (
        schema.migrations()[-1][0],
    )
    conn.close()


async def test_message_counts_are_filled_in(tmp_path: Path) -> None:
    """An account written before the message limit (schema 5) opens with its messages
    counted over all its mailboxes and no limit, and the count follows later changes."""
    data = tmp_path / "data"
    conn = _store_at(data, 5)
    conn.execute("INSERT INTO domains (id, name) VALUES (1, 'example.org')")
    conn.executemany(
        "INSERT INTO accounts (id, address, domain_id, password_hash) VALUES (?, ?, 1, 'h')",
        [(1, "alice@example.org"), (2, "bob@example.org")],
    )
    conn.executemany(
        "INSERT INTO mailboxes (id, account_id, name, uidvalidity, uidnext) VALUES (?, ?, ?, 1, 3)",
        [(1, 1, "INBOX"), (2, 1, "Archive"), (3, 2, "INBOX")],
    )
    conn.execute("INSERT INTO blobs (id, size) VALUES (7, 5)")
    conn.executemany(
        "INSERT INTO messages (mailbox_id, uid, modseq, internaldate, size, blob_id)"
        " VALUES (?, ?, 1, 0, 5, 7)",
        [(1, 1), (1, 2), (2, 1)],
    )
    conn.close()
    blob_file = data / "blobs" / "00" / f"{7:016x}"
    blob_file.parent.mkdir(parents=True)
    blob_file.write_bytes(b"hello")

    store = SqliteStore(data)
    await store.open()
    try:
        assert await store.quota(1) == QuotaUsage(15, 0, 3, 0)
        assert await store.quota(2) == QuotaUsage(0, 0, 0, 0)
        await store.set_flags(1, [1], frozenset({"\\Deleted"}), FlagMode.ADD)
        await store.expunge(1, [1])
        assert await store.quota(1) == QuotaUsage(10, 0, 2, 0)
    finally:
        await store.close()


async def test_rows_saved_before_savedate_answer_their_internal_date(tmp_path: Path) -> None:
    """A message stored before save dates were kept (schema < 7) answers its INTERNALDATE,
    in its own zone, as its save date, and SAVEDON finds it on that day (RFC 8514 §4.3's
    fallback); a COPY of it is saved now, with a save date of its own (RFC 8514 §3)."""
    data = tmp_path / "data"
    conn = _store_at(data, 6)
    conn.execute(
        "INSERT INTO accounts (id, address, domain_id, password_hash) VALUES (1, 'a', 1, '')"
    )
    conn.executemany(
        "INSERT INTO mailboxes (id, account_id, name, uidvalidity, uidnext) VALUES (?, 1, ?, 1, 2)",
        [(1, "INBOX"), (2, "Copies")],
    )
    conn.execute("INSERT INTO blobs (id, size) VALUES (7, 5)")
    # 2015-01-01 23:50:53 +0100 is 22:50:53 UTC: the day is the zone's, 1 January.
    conn.execute(
        "INSERT INTO messages (mailbox_id, uid, modseq, internaldate, internal_tz, size, blob_id)"
        " VALUES (1, 1, 1, 1420152653, 60, 5, 7)"
    )
    conn.close()
    store = SqliteStore(data)
    await store.open()
    try:
        [old] = await store.fetch(1, [1])
        assert old.savedate == old.internaldate
        assert old.savedate is not None and old.savedate.utcoffset() == timedelta(minutes=60)
        assert old.savedate.strftime("%d-%b-%Y %H:%M:%S") == "01-Jan-2015 23:50:53"
        on_day = SearchSaveDate("on", date(2015, 1, 1))
        assert await store.search(1, on_day) == [1]
        assert await store.search(1, SearchSaveDate("since", date(2015, 1, 2))) == []
        before = datetime.now(UTC).replace(microsecond=0)
        await store.copy(1, [1], 2)
        [copy] = await store.fetch(2, [_only(await store.uids(2))])
        assert copy.internaldate == old.internaldate
        assert copy.savedate is not None and copy.savedate >= before
        today = copy.savedate.date()
        assert await store.search(2, SearchSaveDate("on", today)) == [copy.uid]
        assert await store.search(2, on_day) == []
    finally:
        await store.close()


def _only(uids: list[int]) -> int:
    assert len(uids) == 1
    return uids[0]


async def test_thread_ids_are_filled_in(tmp_path: Path) -> None:
    """Messages stored before THREADID (schema < 8) get theirs in the migration: those
    of one account whose References start with the same root, and the root itself, share
    one; a message with neither References nor a Message-ID, and the same root in another
    account, get their own. Later messages find the backfilled threads by the root's and
    by each old message's own Message-ID (RFC 8474 §5.2)."""
    data = tmp_path / "data"
    conn = _store_at(data, 7)
    conn.execute("INSERT INTO domains (id, name) VALUES (1, 'example.org')")
    conn.executemany(
        "INSERT INTO accounts (id, address, domain_id, password_hash) VALUES (?, ?, 1, 'h')",
        [(1, "alice@example.org"), (2, "bob@example.org")],
    )
    conn.executemany(
        "INSERT INTO mailboxes (id, account_id, name, uidvalidity, uidnext) VALUES (?, ?, ?, 1, 9)",
        [(1, 1, "INBOX"), (2, 1, "Archive"), (3, 2, "INBOX")],
    )
    blobs = [  # id, Message-ID, References (NULL: stored before thread_refs existed)
        (10, " <root@x> ", ""),
        (11, "<r1@x>", "<root@x>"),
        (12, "<r2@x>", "<root@x> <r1@x>"),
        (13, "", None),
        (14, "<other@x>", ""),
        (15, "<r3@x>", "<root@x> <r2@x>"),
    ]
    conn.executemany(
        "INSERT INTO blobs (id, size, message_id, thread_refs) VALUES (?, 5, ?, ?)", blobs
    )
    conn.executemany(
        "INSERT INTO messages (mailbox_id, uid, modseq, internaldate, size, blob_id)"
        " VALUES (?, ?, 1, 0, 5, ?)",
        [(1, 1, 12), (1, 2, 10), (1, 3, 13), (1, 4, 14), (2, 1, 11), (3, 1, 15)],
    )
    conn.close()
    store = SqliteStore(data)
    await store.open()
    try:
        inbox = {i.uid: i.thread_id for i in await store.fetch(1, [1, 2, 3, 4])}
        [archived] = await store.fetch(2, [1])
        [bobs] = await store.fetch(3, [1])
        assert inbox == {1: 10, 2: 10, 3: 13, 4: 14}
        assert archived.thread_id == 10
        assert bobs.thread_id == 15
        assert await store.search(1, SearchThreadId(10)) == [1, 2]
        assert await store.search(2, SearchThreadId(10)) == [1]
        assert await store.search(3, SearchThreadId(10)) == []

        async def append(mailbox_id: int, meta: MessageMeta) -> int | None:
            handle = store.new_blob()
            await handle.write(b"hello")
            blob = await handle.finish()
            uid = (await store.append(mailbox_id, blob, meta)).uid
            [info] = await store.fetch(mailbox_id, [uid])
            return info.thread_id

        base = MessageMeta(size=5, envelope=b"NIL", bodystructure=b"NIL", body=b"NIL", parts="")
        # a reply to an old non-root message, named only by In-Reply-To
        assert await append(1, dataclasses.replace(base, in_reply_to="<r2@x>")) == 10
        # the other account's own thread, found by its root's id
        assert await append(3, dataclasses.replace(base, references="<root@x>")) == 15
    finally:
        await store.close()


def test_text_index_bodies_are_casefolded_once(tmp_path: Path) -> None:
    """An index written before TEXT_VERSION 1 (bodies as written) has its bodies
    casefolded at open, once, so that SEARCH BODY "strasse" finds "STRAßE" as on
    PostgreSQL; headers stay as written (HEADER and the ASCII rules read them)."""
    data = tmp_path / "data"
    conn = _old_store(data)
    schema.migrate(conn)
    conn.execute("INSERT INTO blobs (id, size) VALUES (7, 10)")
    text_index.move_and_sweep(conn, data)  # creates search.db, empty: version 1 at once
    index = sqlite3.connect(data / text_index.TEXT_DB_NAME, isolation_level=None)
    assert index.execute("PRAGMA user_version").fetchone() == (1,)
    index.execute(
        "INSERT INTO blob_text (rowid, headers, body_text) VALUES (7, 'Subject: GRÜßE', 'STRAßE')"
    )
    index.execute("PRAGMA user_version = 0")  # as an index of an earlier release

    text_index.move_and_sweep(conn, data)

    assert index.execute("PRAGMA user_version").fetchone() == (text_index.TEXT_VERSION,)
    assert index.execute("SELECT headers, body_text FROM blob_text").fetchall() == [
        ("Subject: GRÜßE", "strasse")
    ]
