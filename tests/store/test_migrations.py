"""Schema migrations carry an existing store's data forward."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pillarbox.store import sqlite_schema


def test_text_index_survives_the_move_to_detail_none(tmp_path: Path) -> None:
    """A store made before migration 2 keeps every indexed text, now in a detail=none
    index that the trigram search can use."""
    conn = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    version, first = sqlite_schema.migrations()[0]
    assert version == 1
    conn.executescript(f"BEGIN;\n{first}\nINSERT INTO schema_version VALUES (1);\nCOMMIT;")
    conn.executemany(
        "INSERT INTO blob_text (rowid, headers, body_text) VALUES (?, ?, ?)",
        [(7, "Subject: Grüße", "hello world"), (9, "Subject: other", "nothing here")],
    )

    assert sqlite_schema.migrate(conn) >= 2

    (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'blob_text'").fetchone()
    assert "detail = none" in sql
    rows = conn.execute("SELECT rowid, headers, body_text FROM blob_text ORDER BY rowid").fetchall()
    assert rows == [(7, "Subject: Grüße", "hello world"), (9, "Subject: other", "nothing here")]
    found = conn.execute(
        "SELECT rowid FROM blob_text WHERE blob_text MATCH ?", ('"RÜß" AND "üße"',)
    ).fetchall()
    assert found == [(7,)]
