"""Queue claims name their node in the SQLite backend too (sqlite_0014): a runner's
`release_claims` at start releases only the claims of the store's `node_id`, as on a
PostgreSQL database several nodes share; a claim from before the migration names no
node and is released by the next start, as every claim was before.
"""

from __future__ import annotations

import socket
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pillarbox.model import QueuedRecipient
from pillarbox.store.sqlite import DB_NAME, SqliteStore, schema
from tests.store.conftest import write_blob


async def test_release_claims_releases_only_this_nodes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    a = SqliteStore(data, node_id="node-a")
    await a.open()
    try:
        blob = await write_blob(a, b"m")
        qid = await a.enqueue("s@example.org", [QueuedRecipient("r@x.test")], blob)
        now = datetime.now(UTC) + timedelta(seconds=1)
        assert [q.id for q in await a.claim_queue(now, 10, 3600)] == [qid]
    finally:
        await a.close()
    conn = sqlite3.connect(data / DB_NAME)
    assert conn.execute("SELECT claimed_by FROM queue").fetchall() == [("node-a",)]
    b = SqliteStore(data, node_id="node-b")
    await b.open()
    try:
        assert await b.release_claims() == 0  # node A's claim: not B's to release
        assert await b.claim_queue(now, 10, 3600) == []
    finally:
        await b.close()
    a = SqliteStore(data, node_id="node-a")
    await a.open()
    try:
        assert await a.release_claims() == 1
        assert conn.execute("SELECT claimed_until, claimed_by FROM queue").fetchall() == [
            (None, "")
        ]
        [entry] = await a.claim_queue(now, 10, 60)
        await a.reschedule(entry.id, now, "421 busy")  # clears the holder with the claim
        assert conn.execute("SELECT claimed_until, claimed_by FROM queue").fetchall() == [
            (None, "")
        ]
    finally:
        await a.close()
        conn.close()


async def test_default_node_is_the_host_name(tmp_path: Path) -> None:
    """Without a node id (the CLI, tests) the store names itself as `[server] node_id`
    does by default, so a server started without one releases its own claims."""
    assert SqliteStore(tmp_path / "data").node_id == socket.gethostname()


async def test_a_claim_from_before_the_migration_is_released(tmp_path: Path) -> None:
    """An entry claimed by a store at sqlite_0013 (a run killed mid-send, then the
    upgrade) names no node after migrating, and the first start releases it."""
    data = tmp_path / "data"
    data.mkdir()
    conn = sqlite3.connect(data / DB_NAME, isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for number, script in schema.migrations():
        if number <= 13:
            conn.executescript(
                f"BEGIN;\n{script}\nINSERT INTO schema_version VALUES ({number});\nCOMMIT;"
            )
    conn.execute("INSERT INTO blobs (id, size) VALUES (7, 1)")
    conn.execute(
        "INSERT INTO queue (id, sender, blob_id, created_at, next_attempt, claimed_until)"
        " VALUES (1, 's@example.org', 7, 0, 0, 4e9)"
    )
    conn.execute("INSERT INTO queue_recipients (queue_id, position, address) VALUES (1, 0, 'r@x')")
    conn.close()
    store = SqliteStore(data, node_id="node-a")
    await store.open()
    try:
        assert await store.claim_queue(datetime.now(UTC), 10, 60) == []  # still held
        assert await store.release_claims() == 1
        [entry] = await store.claim_queue(datetime.now(UTC), 10, 60)
        assert entry.id == 1
    finally:
        await store.close()
