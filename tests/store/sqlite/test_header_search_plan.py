"""SEARCH SUBJECT / FROM read narrow covering indexes on SQLite (sqlite_0017, issue 18),
and a search that reads no blob column does not join ``blobs``: the query plans say so.
What they find is proven on both backends by tests/store/test_search.py."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pillarbox.model import SearchAnd, SearchFlag, SearchHeader, SearchKey, SearchNot
from pillarbox.store.sqlite import schema, search


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(tmp_path / "pillarbox.db", isolation_level=None)
    schema.migrate(db)
    search.register_functions(db)
    return db


def _plan(conn: sqlite3.Connection, key: SearchKey) -> str:
    sql, params = search.build(7, key)
    return " | ".join(row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params))


@pytest.mark.parametrize(
    ("key", "index"),
    [
        (SearchHeader("subject", "report"), "blobs_subject"),
        (SearchHeader("SUBJECT", ""), "blobs_subject"),
        (SearchHeader("from", "alice@example.org"), "blobs_from"),
        (SearchNot(SearchHeader("from", "Zoë")), "blobs_from"),  # pb_contains, same column
    ],
)
def test_subject_and_from_read_their_covering_index(
    conn: sqlite3.Connection, key: SearchKey, index: str
) -> None:
    assert f"COVERING INDEX {index}" in _plan(conn, key)


def test_two_columns_read_the_blob_rows(conn: sqlite3.Connection) -> None:
    """No narrow index holds both: the planner's own rowid lookup, no hint."""
    key = SearchAnd((SearchHeader("subject", "a"), SearchHeader("from", "b")))
    sql, _params = search.build(7, key)
    assert "INDEXED BY" not in sql
    assert "INTEGER PRIMARY KEY" in _plan(conn, key)


def test_flag_search_does_not_join_blobs(conn: sqlite3.Connection) -> None:
    sql, _params = search.build(7, SearchFlag("\\Seen", False))
    assert "blobs" not in sql
    assert _plan(conn, SearchFlag("\\Seen", False)) == "SEARCH m USING PRIMARY KEY (mailbox_id=?)"
