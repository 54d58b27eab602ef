"""PostgreSQL schema migrations: an empty database, two nodes at once, a newer schema.

Several nodes share one database and may start together, so the runner holds an
advisory lock (store/postgres/schema.py); a node of an older release must refuse a
schema it does not know rather than write to it (docs/design.md, rolling upgrades).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from pillarbox.store.errors import StoreUnavailable
from pillarbox.store.postgres import PgStore, schema
from tests import pg


async def _versions(dsn: str) -> list[int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT version FROM schema_version ORDER BY version")
        return [int(r["version"]) for r in rows]
    finally:
        await conn.close()


async def test_empty_database_migrates_to_newest(tmp_path: Path) -> None:
    dsn = pg.empty_database(str(tmp_path))
    conn = await asyncpg.connect(dsn)
    try:
        assert await schema.current_version(conn) == 0
        assert await schema.migrate(conn) == schema.newest()
        assert await schema.current_version(conn) == schema.newest()
        # The schema is really there: the tables every concern uses, and pg_trgm.
        tables = {
            str(r["tablename"])
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        }
        assert {"mailboxes", "messages", "blob_chunks", "blob_text", "queue"} <= tables
        assert await conn.fetchval("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        # Running again finds nothing to do.
        assert await schema.migrate(conn) == schema.newest()
    finally:
        await conn.close()
    assert await _versions(dsn) == [v for v, _ in schema.migrations()]


async def test_two_nodes_migrating_one_empty_database_both_succeed(tmp_path: Path) -> None:
    """Two runners at once: the advisory lock makes the second wait and find the work
    done (without it both would CREATE the same tables and one would fail)."""
    dsn = pg.empty_database(str(tmp_path))
    first, second = await asyncio.gather(asyncpg.connect(dsn), asyncpg.connect(dsn))
    try:
        results = await asyncio.gather(schema.migrate(first), schema.migrate(second))
    finally:
        await asyncio.gather(first.close(), second.close())
    assert results == [schema.newest(), schema.newest()]
    assert await _versions(dsn) == [v for v, _ in schema.migrations()]


async def test_two_stores_opening_one_empty_database_both_succeed(tmp_path: Path) -> None:
    """The same through `PgStore.open`, which is what two nodes starting together run."""
    dsn = pg.empty_database(str(tmp_path))
    stores = [PgStore(dsn, node_id=f"n{i}", pool_min=1, pool_max=2) for i in (1, 2)]
    try:
        await asyncio.gather(*(s.open() for s in stores))
    finally:
        await asyncio.gather(*(s.close() for s in stores))
    assert await _versions(dsn) == [v for v, _ in schema.migrations()]


async def test_newer_schema_refuses_with_a_clear_error(tmp_path: Path) -> None:
    dsn = pg.empty_database(str(tmp_path))
    conn = await asyncpg.connect(dsn)
    try:
        await schema.migrate(conn)
        await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", schema.newest() + 1)
        with pytest.raises(StoreUnavailable, match="newer than this Pillarbox knows"):
            await schema.migrate(conn)
        # The lock was released on the way out: another run is not blocked by it.
        lock = schema._MIGRATE_LOCK
        assert await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", *lock)
        await conn.execute("SELECT pg_advisory_unlock($1, $2)", *lock)
    finally:
        await conn.close()
    store = PgStore(dsn, node_id="old-release", pool_min=1, pool_max=2)
    with pytest.raises(StoreUnavailable, match=f"version {schema.newest() + 1}"):
        await store.open()
    await store.close()


@pytest.mark.parametrize("start", [v for v, _ in schema.migrations()[:-1]])
async def test_every_earlier_version_migrates_and_keeps_its_data(
    tmp_path: Path, start: int
) -> None:
    """A database left at each earlier version (its scripts applied by hand, as that
    release's runner did) opens with this release: the rest is applied, and an account
    and mailbox written at the old version are still there and usable."""
    dsn = pg.empty_database(f"{tmp_path}-{start}")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE schema_version (version integer NOT NULL)")
        for version, script in schema.migrations():
            if version > start:
                break
            async with conn.transaction():
                await conn.execute(script)
                await conn.execute("INSERT INTO schema_version VALUES ($1)", version)
        await conn.execute("INSERT INTO domains (id, name) VALUES (1, 'example.test')")
        await conn.execute(
            "INSERT INTO accounts (id, address, domain_id, password_hash)"
            " VALUES (1, 'old@example.test', 1, 'x')"
        )
        await conn.execute(
            "INSERT INTO mailboxes (id, account_id, name, uidvalidity, uidnext, highestmodseq)"
            " VALUES (1, 1, 'INBOX', 77, 5, 9)"
        )
        await conn.execute("SELECT setval(pg_get_serial_sequence('mailboxes', 'id'), 1)")
    finally:
        await conn.close()

    store = PgStore(dsn, node_id="upgrade", pool_min=1, pool_max=2, server=False)
    await store.open()
    try:
        account = await store.get_account("old@example.test")
        assert account is not None
        inbox = await store.get_mailbox(account.id, "INBOX")
        assert inbox is not None
        assert (inbox.uidvalidity, inbox.uidnext, inbox.highestmodseq) == (77, 5, 9)
        created = await store.create_mailbox(account.id, "New")
        assert created.id == 2
    finally:
        await store.close()
    assert await _versions(dsn) == [v for v, _ in schema.migrations()]
