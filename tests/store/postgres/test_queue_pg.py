"""The outbound queue shared by several nodes on one PostgreSQL database.

Two `PgStore`s with different node ids on one database stand for two nodes (each its
own pool, as two processes would have). Claims taken at once from both never share an
entry; an entry claimed by a node that died (its lease ran out) is taken by the other;
`release_claims` at a runner's start releases only the starting node's claims.

Blobs are seeded as finished rows with SQL: the queue needs a durable blob row to
refer to, not its bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from pillarbox.model import QueuedRecipient
from pillarbox.store.errors import NotFound
from pillarbox.store.postgres import PgStore
from tests import pg


@dataclass(frozen=True)
class Handle:
    """A `store.api.BlobHandle`."""

    blob_id: int
    size: int


@pytest.fixture
def dsn(tmp_path: Path) -> str:
    return pg.database(str(tmp_path / "data"))


@pytest.fixture
async def nodes(dsn: str) -> AsyncIterator[tuple[PgStore, PgStore]]:
    a = PgStore(dsn, node_id="node-a", pool_min=1, pool_max=6, server=False)
    b = PgStore(dsn, node_id="node-b", pool_min=1, pool_max=6, server=False)
    await a.open()
    await b.open()
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def seed_blob(dsn: str, size: int = 10, state: str = "done") -> Handle:
    conn = await asyncpg.connect(dsn)
    try:
        blob_id = await conn.fetchval(
            "INSERT INTO blobs (size, state) VALUES ($1, $2) RETURNING id", size, state
        )
    finally:
        await conn.close()
    return Handle(int(blob_id), size)


async def enqueue(store: PgStore, dsn: str, count: int) -> list[int]:
    ids = []
    for i in range(count):
        blob = await seed_blob(dsn, 10 + i)
        ids.append(await store.enqueue("s@example.org", [QueuedRecipient(f"r{i}@x.test")], blob))
    return ids


async def holders(dsn: str) -> dict[int, str]:
    """Who holds each claimed entry, as the database says."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT id, claimed_by FROM queue WHERE claimed_until IS NOT NULL")
    finally:
        await conn.close()
    return {int(r["id"]): str(r["claimed_by"]) for r in rows}


async def test_two_nodes_claim_disjoint_sets(nodes: tuple[PgStore, PgStore], dsn: str) -> None:
    """Many claims at once from two nodes: every due entry goes to exactly one claim, and
    the database names the node that took it."""
    a, b = nodes
    ids = await enqueue(a, dsn, 40)
    now = datetime.now(UTC) + timedelta(seconds=1)
    async with asyncio.timeout(30):
        claims = await asyncio.gather(
            *(store.claim_queue(now, 3, 300) for _ in range(10) for store in (a, b))
        )
    taken = [
        (q.id, store.node_id)
        for claim, store in zip(claims, [a, b] * 10, strict=True)
        for q in claim
    ]
    assert sorted(qid for qid, _ in taken) == sorted(ids)  # each exactly once
    assert await holders(dsn) == dict(taken)
    assert {node for _, node in taken} == {"node-a", "node-b"}
    assert await a.claim_queue(now, 100, 300) == [] and await b.claim_queue(now, 100, 300) == []


async def test_a_dead_nodes_claim_is_taken_once_its_lease_runs_out(
    nodes: tuple[PgStore, PgStore], dsn: str
) -> None:
    """Node A claims and dies (it never reschedules): node B cannot take the entry while
    the lease holds, and takes it once it ran out."""
    a, b = nodes
    [qid] = await enqueue(a, dsn, 1)
    now = datetime.now(UTC) + timedelta(seconds=1)
    [held] = await a.claim_queue(now, 10, 60)
    assert held.id == qid and held.claimed_until == now + timedelta(seconds=60)
    await a.close()  # the dead node
    assert await b.claim_queue(now + timedelta(seconds=59), 10, 60) == []
    later = now + timedelta(seconds=61)
    [taken] = await b.claim_queue(later, 10, 60)
    assert taken.id == qid and taken.claimed_until == later + timedelta(seconds=60)
    assert await holders(dsn) == {qid: "node-b"}
    # the dead node comes back: its release leaves B's claim alone
    await a.open()
    assert await a.release_claims() == 0
    assert await holders(dsn) == {qid: "node-b"}


async def test_release_claims_releases_only_this_nodes(
    nodes: tuple[PgStore, PgStore], dsn: str
) -> None:
    """A runner's start on node A releases what A held, not what B is sending now; a
    reschedule clears the holder with the claim."""
    a, b = nodes
    ids = await enqueue(a, dsn, 4)
    now = datetime.now(UTC) + timedelta(seconds=1)
    mine = [q.id for q in await a.claim_queue(now, 2, 3600)]
    theirs = [q.id for q in await b.claim_queue(now, 2, 3600)]
    assert sorted(mine + theirs) == ids
    assert await a.release_claims() == 2
    assert await holders(dsn) == dict.fromkeys(theirs, "node-b")
    assert await a.release_claims() == 0
    again = await a.claim_queue(now, 10, 3600)
    assert sorted(q.id for q in again) == sorted(mine)  # B's stay held
    await b.reschedule(theirs[0], now, "421 busy")
    assert await holders(dsn) == {**dict.fromkeys(mine, "node-a"), theirs[1]: "node-b"}
    assert await b.release_claims() == 1
    assert await holders(dsn) == dict.fromkeys(mine, "node-a")


async def test_a_claim_naming_no_node_is_released_by_any(
    nodes: tuple[PgStore, PgStore], dsn: str
) -> None:
    """A claim with no node recorded (copied from an SQLite store older than
    sqlite_0014) belonged to an earlier run: the first node to start releases it."""
    a, b = nodes
    [qid] = await enqueue(a, dsn, 1)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("UPDATE queue SET claimed_until = 4e9, claimed_by = ''")
    finally:
        await conn.close()
    assert await b.release_claims() == 1
    assert await holders(dsn) == {}
    [entry] = await a.claim_queue(datetime.now(UTC) + timedelta(seconds=1), 10, 60)
    assert entry.id == qid


async def test_enqueue_refuses_a_blob_not_finished(
    nodes: tuple[PgStore, PgStore], dsn: str
) -> None:
    """A queue row never refers to bytes that are not durable: an unfinished upload, a
    blob whose last reference went (the janitor's now), or one that is gone, is NotFound
    and nothing is queued."""
    a, _ = nodes
    writing = await seed_blob(dsn, state="writing")
    with pytest.raises(NotFound):
        await a.enqueue("s@example.org", [QueuedRecipient("r@x.test")], writing)
    given_up = await seed_blob(dsn)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "UPDATE blobs SET unreferenced_at = extract(epoch FROM now()) WHERE id = $1",
            given_up.blob_id,
        )
    finally:
        await conn.close()
    with pytest.raises(NotFound):
        await a.enqueue("s@example.org", [QueuedRecipient("r@x.test")], given_up)
    with pytest.raises(NotFound):
        await a.enqueue("s@example.org", [QueuedRecipient("r@x.test")], Handle(10**12, 1))
    assert await a.list_queue() == []
