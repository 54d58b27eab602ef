"""The janitor of the PostgreSQL backend: what it deletes, what it keeps, and that only
one node runs it at a time.

Blobs, chunks and leases are seeded with SQL, with times in the past, so the grace
periods (`janitor.GRACE`, `janitor.STALE`) have run out without waiting for them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from pillarbox.model import QueuedRecipient
from pillarbox.store.errors import NotFound
from pillarbox.store.postgres import PgStore, janitor
from pillarbox.store.postgres.janitor import run_once
from tests import pg


@pytest.fixture
def dsn(tmp_path: Path) -> str:
    return pg.database(str(tmp_path / "data"))


@pytest.fixture
async def conn(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(dsn)
    try:
        yield c
    finally:
        await c.close()


@pytest.fixture
async def store(dsn: str) -> AsyncIterator[PgStore]:
    s = PgStore(dsn, node_id="node-a", pool_min=1, pool_max=4, server=False)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def blob(
    conn: asyncpg.Connection,
    *,
    refs: int = 0,
    state: str = "done",
    age: float = 0.0,
    unreferenced: float | None = None,
) -> int:
    """A blob row with one chunk and a search-text row; `age` and `unreferenced`:
    seconds before now it was created and lost its last reference."""
    blob_id = await conn.fetchval(
        "INSERT INTO blobs (size, refs, state, created_at, unreferenced_at)"
        " VALUES (3, $1, $2, extract(epoch FROM now()) - $3::float8,"
        " extract(epoch FROM now()) - $4::float8) RETURNING id",
        refs,
        state,
        age,
        unreferenced,
    )
    await conn.execute("INSERT INTO blob_chunks VALUES ($1, 0, 'abc')", blob_id)
    await conn.execute("INSERT INTO blob_text (blob_id, body_cf) VALUES ($1, 'abc')", blob_id)
    return int(blob_id)


async def lease(conn: asyncpg.Connection, blob_id: int, holder: str, left: float) -> None:
    """A read lease with `left` seconds to go (negative: expired)."""
    await conn.execute(
        "INSERT INTO blob_readers VALUES ($1, $2, extract(epoch FROM now()) + $3::float8)",
        blob_id,
        holder,
        left,
    )


async def blob_ids(conn: asyncpg.Connection) -> set[int]:
    return {int(r[0]) for r in await conn.fetch("SELECT id FROM blobs")}


async def test_run_once_deletes_what_nothing_needs(
    store: PgStore, conn: asyncpg.Connection
) -> None:
    """Deleted: blobs unreferenced for longer than the grace period with no live lease
    (their chunks and text with them), expired leases, uploads never finished and
    finished blobs never referenced, both after a day. Kept: everything else."""
    old = janitor.GRACE + 60
    day = janitor.STALE + 60
    gone_unref = await blob(conn, age=day, unreferenced=old)
    gone_expired_lease = await blob(conn, unreferenced=old)
    await lease(conn, gone_expired_lease, "node-x", -1)
    gone_upload = await blob(conn, state="writing", age=day)
    gone_abandoned = await blob(conn, age=day)
    kept_recent = await blob(conn, unreferenced=60)  # within the grace period
    kept_leased = await blob(conn, unreferenced=old)
    await lease(conn, kept_leased, "node-y", 600)  # a session still streams it
    kept_uploading = await blob(conn, state="writing", age=3600)
    kept_fresh = await blob(conn, age=60)  # finished, its row is on its way
    kept_referenced = await blob(conn, refs=1, age=day)
    # refs says 0 but a queue row refers to it: never deleted whatever the count says
    kept_counted_wrong = await blob(conn, unreferenced=old)
    await conn.execute(
        "INSERT INTO queue (sender, blob_id, created_at, next_attempt) VALUES ('', $1, 0, 0)",
        kept_counted_wrong,
    )
    await conn.execute(
        "UPDATE blobs SET refs = 0, unreferenced_at = extract(epoch FROM now()) - $2::float8"
        " WHERE id = $1",
        kept_counted_wrong,
        old,
    )

    counts = await run_once(store)
    assert counts == {"ran": 1, "blobs": 2, "abandoned": 1, "uploads": 1, "leases": 1}
    assert await blob_ids(conn) == {
        kept_recent,
        kept_leased,
        kept_uploading,
        kept_fresh,
        kept_referenced,
        kept_counted_wrong,
    }
    gone = [gone_unref, gone_expired_lease, gone_upload, gone_abandoned]
    for table in ("blob_chunks", "blob_text", "blob_readers"):
        left = await conn.fetchval(
            f"SELECT count(*) FROM {table} WHERE blob_id = ANY($1::bigint[])", gone
        )
        assert left == 0, table
    assert await conn.fetchval("SELECT count(*) FROM blob_readers") == 1  # kept_leased's
    # nothing more to do: a second run deletes nothing
    assert await run_once(store) == {
        "ran": 1,
        "blobs": 0,
        "abandoned": 0,
        "uploads": 0,
        "leases": 0,
    }


async def test_deletes_go_in_batches(store: PgStore, conn: asyncpg.Connection) -> None:
    """More than one batch of collectable blobs: all go in one run."""
    await conn.execute(
        "INSERT INTO blobs (size, refs, unreferenced_at)"
        " SELECT 1, 0, extract(epoch FROM now()) - $1::float8 FROM generate_series(1, $2)",
        janitor.GRACE + 60,
        janitor.BATCH * 2 + 7,
    )
    counts = await run_once(store)
    assert counts["blobs"] == janitor.BATCH * 2 + 7
    assert await blob_ids(conn) == set()


async def test_only_one_node_runs_at_a_time(store: PgStore, conn: asyncpg.Connection) -> None:
    """While another node holds the janitor's lock a run does nothing; once it lets go,
    the next run works, on any node."""
    doomed = await blob(conn, unreferenced=janitor.GRACE + 60)
    assert await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", *janitor.LOCK)
    assert await run_once(store) == {"ran": 0}
    assert await blob_ids(conn) == {doomed}
    await conn.execute("SELECT pg_advisory_unlock($1, $2)", *janitor.LOCK)
    assert (await run_once(store))["blobs"] == 1
    # the run let go of the lock: another session can take it now
    assert await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", *janitor.LOCK)
    await conn.execute("SELECT pg_advisory_unlock($1, $2)", *janitor.LOCK)


async def test_concurrent_runs_delete_each_blob_once(
    store: PgStore, dsn: str, conn: asyncpg.Connection
) -> None:
    """Runs on two nodes at once: a run either holds the lock or skips, and between
    them every collectable blob is deleted exactly once (no run fails)."""
    other = PgStore(dsn, node_id="node-b", pool_min=1, pool_max=4, server=False)
    await other.open()
    try:
        await conn.execute(
            "INSERT INTO blobs (size, refs, unreferenced_at)"
            " SELECT 1, 0, extract(epoch FROM now()) - $1::float8 FROM generate_series(1, 50)",
            janitor.GRACE + 60,
        )
        async with asyncio.timeout(30):
            results = await asyncio.gather(*(run_once(s) for s in (store, other) * 3))
    finally:
        await other.close()
    assert sum(r.get("blobs", 0) for r in results) == 50
    assert await blob_ids(conn) == set()


class _JanitorStore(PgStore):
    """PgStore (which runs the janitor) with a janitor that runs at once and often."""

    janitor_first_delay = 0.0
    janitor_interval = 0.05


async def test_a_server_node_runs_the_loop_while_open(dsn: str, conn: asyncpg.Connection) -> None:
    """Opened as a server node the store runs the janitor soon after opening and then
    periodically, and stops it at close; the CLI (`server=False`) never runs it."""
    cli = _JanitorStore(dsn, node_id="cli", pool_min=1, pool_max=2, server=False)
    await cli.open()
    assert cli.janitor is None
    await cli.close()

    doomed = await blob(conn, unreferenced=janitor.GRACE + 60)
    node = _JanitorStore(dsn, node_id="node-a", pool_min=1, pool_max=2, server=True)
    await node.open()
    try:
        loop = node.janitor
        assert loop is not None
        async with asyncio.timeout(10):
            await loop.wait_runs(1)
        assert doomed not in await blob_ids(conn)
        later = await blob(conn, unreferenced=janitor.GRACE + 60)
        async with asyncio.timeout(10):
            await loop.wait_runs(loop.runs + 2)  # a run that started after the insert
        assert later not in await blob_ids(conn)
    finally:
        await node.close()
    assert node.janitor is None


async def test_a_removed_queue_entrys_blob_is_collected_after_the_grace(
    store: PgStore, conn: asyncpg.Connection
) -> None:
    """The whole path: an entry removed leaves its blob unreadable at once (the contract)
    but in place; the janitor deletes it once the grace period has passed."""
    writer = store.new_blob()
    await writer.write(b"queued bytes")
    handle = await writer.finish()
    qid = await store.enqueue("s@example.org", [QueuedRecipient("r@x.test")], handle)
    assert await store.remove_queued(qid) is True
    with pytest.raises(NotFound):
        await store.read_blob(handle.blob_id)
    assert (await run_once(store))["blobs"] == 0  # within the grace period
    assert handle.blob_id in await blob_ids(conn)
    await conn.execute(
        "UPDATE blobs SET unreferenced_at = unreferenced_at - $2::float8 WHERE id = $1",
        handle.blob_id,
        janitor.GRACE + 1,
    )
    assert (await run_once(store))["blobs"] == 1
    assert await blob_ids(conn) == set()
    assert await conn.fetchval("SELECT count(*) FROM blob_chunks") == 0
