"""SQLite schema versions and the migration runner.

Owns: the ordered list of migration scripts (`migrations/sqlite_NNNN_*.sql`), the
`schema_version` table, and the connection pragmas every SQLite connection of the store
uses. Must not: know about accounts or messages beyond the DDL, or run on the event loop
(it is called from the writer thread during `SqliteStore.open`).
"""

from __future__ import annotations

import re
import sqlite3
from importlib import resources

_MIGRATION_NAME = re.compile(r"^sqlite_(\d{4})_[a-z0-9_]+\.sql$")


def migrations() -> list[tuple[int, str]]:
    """(version, SQL script) pairs in ascending order, read from the package."""
    found: list[tuple[int, str]] = []
    for entry in resources.files("pillarbox.store.sqlite").joinpath("migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text(encoding="utf-8")))
    found.sort()
    return found


def configure(conn: sqlite3.Connection, *, writer: bool) -> None:
    """Pragmas for every connection; the writer also owns journal mode.

    WAL lets readers keep their snapshot while the writer commits; synchronous=FULL
    makes each commit durable (one fsync of the WAL per group commit).
    """
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("PRAGMA cache_size = -16000")
    if writer:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"cannot enable WAL journal mode (got {mode})")


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema to the newest version; returns it. Each step is one transaction."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    current = int(row[0]) if row and row[0] is not None else 0
    for version, script in migrations():
        if version <= current:
            continue
        # executescript() commits first and runs in autocommit, so wrap it explicitly.
        try:
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{script}\n"
                f"INSERT INTO schema_version (version) VALUES ({version});\nCOMMIT;"
            )
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        current = version
    return current
