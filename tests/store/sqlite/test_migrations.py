"""The store carries an existing data directory's contents forward when it opens."""

from __future__ import annotations

import sqlite3
from pathlib import Path

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
