"""PostgreSQL schema versions and the migration runner.

Owns: the ordered list of migration scripts (`migrations/pg_NNNN_*.sql`, forward only)
and the `schema_version` table. Several nodes may start at once on one database, so the
whole run holds a session advisory lock: the second node waits, then finds nothing to
do. A database newer than this code refuses to open (a node of an older release must
not write to a schema it does not know). Must not: know about accounts or messages
beyond the DDL.
"""

from __future__ import annotations

import re
from importlib import resources

import asyncpg

from pillarbox.store.errors import StoreUnavailable

_MIGRATION_NAME = re.compile(r"^pg_(\d{4})_[a-z0-9_]+\.sql$")
# pg_advisory_lock key of the migration run: (classid, objid) = ("pb", "migrate").
_MIGRATE_LOCK = (0x7062, 1)


def migrations() -> list[tuple[int, str]]:
    """(version, SQL script) pairs in ascending order, read from the package."""
    found: list[tuple[int, str]] = []
    for entry in resources.files("pillarbox.store.postgres").joinpath("migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text(encoding="utf-8")))
    found.sort()
    return found


def newest() -> int:
    """The schema version this code writes."""
    return migrations()[-1][0]


async def current_version(conn: asyncpg.Connection) -> int:
    """The database's schema version (0: empty)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    if not exists:
        return 0
    value = await conn.fetchval("SELECT max(version) FROM schema_version")
    return int(value or 0)


async def migrate(conn: asyncpg.Connection) -> int:
    """Bring the schema to the newest version; returns it. Each step is one transaction."""
    await conn.execute("SELECT pg_advisory_lock($1, $2)", *_MIGRATE_LOCK)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
        current = await current_version(conn)
        known = newest()
        if current > known:
            raise StoreUnavailable(
                f"the database schema is version {current}, newer than this Pillarbox "
                f"knows ({known}): upgrade every node to the same release"
            )
        for version, script in migrations():
            if version <= current:
                continue
            async with conn.transaction():
                await conn.execute(script)
                await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", version)
            current = version
        return current
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1, $2)", *_MIGRATE_LOCK)
