"""PostgreSQL blobs: chunk rows, the durability point, range reads and read leases.

What the contract tests cannot see: how bytes land in `blob_chunks` (full 256 KiB
chunks while writing, the last one with the `done` state in one transaction), that a
small message is one transaction and no `writing` row, that a streaming reader takes a
lease only when it needs one and renews and drops it, and that a blob whose last
message went stays in the table (for the janitor and open readers) while being gone
for new readers.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, cast

import asyncpg
import pytest

from pillarbox.model import FlagMode
from pillarbox.store.api import Store
from pillarbox.store.errors import NotFound
from pillarbox.store.postgres import PgStore
from pillarbox.store.postgres.blobs import CHUNK
from tests.store.conftest import Env, dummy_meta, write_blob


@pytest.fixture
def backend() -> str:
    return "postgres"


@pytest.fixture
async def db(store: Store) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection to the store's database, to look at its rows."""
    conn = await asyncpg.connect(cast(PgStore, store).dsn)
    try:
        yield conn
    finally:
        await conn.close()


async def _rows(db: asyncpg.Connection, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in await db.fetch(sql, *args)]


async def test_chunks_and_durability_point(store: Store, db: asyncpg.Connection) -> None:
    """Full chunks go out while writing (under a `writing` row); finish writes the tail
    and marks the blob done with its size."""
    data = bytes(range(256)) * (3 * CHUNK // 256) + b"tail!"
    writer = store.new_blob()
    for i in range(0, len(data), 100_000):
        await writer.write(data[i : i + 100_000])
    [(blob_id, state)] = await _rows(db, "SELECT id, state FROM blobs")
    assert state == "writing"
    assert await _rows(db, "SELECT seq, length(data) FROM blob_chunks ORDER BY seq") == [
        (0, CHUNK),
        (1, CHUNK),
        (2, CHUNK),
    ]
    handle = await writer.finish()
    assert (handle.blob_id, handle.size) == (blob_id, len(data))
    assert await _rows(db, "SELECT state, size, refs FROM blobs") == [("done", len(data), 0)]
    assert [n for (n,) in await _rows(db, "SELECT length(data) FROM blob_chunks ORDER BY seq")] == [
        CHUNK,
        CHUNK,
        CHUNK,
        5,
    ]
    assert await store.read_blob(blob_id) == data
    assert await writer.finish() == handle  # idempotent


async def test_small_blob_is_one_transaction(store: Store, db: asyncpg.Connection) -> None:
    """Nothing reaches the database before finish for a blob under one chunk; an empty
    blob has a row and no chunks."""
    writer = store.new_blob()
    await writer.write(b"small")
    assert await _rows(db, "SELECT id FROM blobs") == []
    handle = await writer.finish()
    assert await store.read_blob(handle.blob_id) == b"small"
    empty = await store.new_blob().finish()
    assert empty.size == 0 and await store.read_blob(empty.blob_id) == b""
    reader = await store.open_blob(empty.blob_id)
    assert reader.size == 0 and await reader.read() == b""
    assert await _rows(
        db, "SELECT count(*) FROM blob_chunks WHERE blob_id = $1", empty.blob_id
    ) == [(0,)]


async def test_abort_removes_partial_upload(store: Store, db: asyncpg.Connection) -> None:
    writer = store.new_blob()
    await writer.write(b"x" * (CHUNK + 10))
    assert await _rows(db, "SELECT state FROM blobs") == [("writing",)]
    await writer.abort()
    assert await _rows(db, "SELECT id FROM blobs") == []
    assert await _rows(db, "SELECT blob_id FROM blob_chunks") == []
    with pytest.raises(ValueError):
        await writer.write(b"more")


async def test_read_blob_ranges_across_chunks(store: Store) -> None:
    """Any byte range reads as Python slicing would, whichever chunks it spans."""
    data = bytes(i % 251 for i in range(2 * CHUNK + 1000))
    handle = await write_blob(store, data)
    cases = [
        (0, None),
        (0, 0),
        (5, 10),
        (CHUNK - 3, 6),
        (CHUNK, CHUNK),
        (CHUNK - 1, CHUNK + 2),
        (10, 2 * CHUNK + 500),
        (2 * CHUNK + 999, None),
        (2 * CHUNK + 1000, None),
        (len(data) + 50, 10),
        (3, 10 * CHUNK),
    ]
    for start, length in cases:
        end = None if length is None else start + length
        assert await store.read_blob(handle.blob_id, start, length) == data[start:end], (
            start,
            length,
        )
    with pytest.raises(NotFound):
        await store.read_blob(handle.blob_id + 1000)


async def test_reader_lease(store: Store, db: asyncpg.Connection) -> None:
    """A reader that must come back for more holds a lease named after this node; a
    read renews it once it runs low; the last chunk fetched releases it. A reader
    opened with the whole rest in hand takes none."""
    data = b"z" * (CHUNK * 2 + 7)
    handle = await write_blob(store, data)
    reader = await store.open_blob(handle.blob_id)
    [(holder, until)] = await _rows(db, "SELECT holder, until FROM blob_readers")
    assert holder.startswith("test-node:") and until > time.time() + 500
    assert await reader.read(CHUNK) == data[:CHUNK]
    # as if the reader had stalled for most of its lease
    await db.execute("UPDATE blob_readers SET until = $1", time.time() + 10)
    cast(Any, reader)._until = time.time() + 10
    assert await reader.read(10) == data[CHUNK : CHUNK + 10]
    [(until,)] = await _rows(db, "SELECT until FROM blob_readers")
    assert until > time.time() + 500  # renewed by the read that fetched a chunk
    got = bytearray(data[: CHUNK + 10])
    while piece := await reader.read(70_000):
        got += piece
    assert bytes(got) == data
    assert await _rows(db, "SELECT holder FROM blob_readers") == []
    await reader.close()
    # two readers of one blob hold two leases; close drops each
    r1 = await store.open_blob(handle.blob_id)
    r2 = await store.open_blob(handle.blob_id, 5)
    assert len(await _rows(db, "SELECT holder FROM blob_readers")) == 2
    await r1.close()
    await r2.close()
    await r2.close()
    assert await _rows(db, "SELECT holder FROM blob_readers") == []
    small = await store.open_blob(handle.blob_id, len(data) - CHUNK)
    assert await _rows(db, "SELECT holder FROM blob_readers") == []
    assert await small.read(CHUNK * 4) == data[-CHUNK:]


async def test_unreferenced_blob_waits_for_the_janitor(env: Env, db: asyncpg.Connection) -> None:
    """Expunging the last message stamps the blob instead of deleting it: new readers
    get NotFound, delete_blob leaves it (a reader may hold a lease), an open reader
    reads on."""
    data = b"Subject: x\r\n\r\n" + b"y" * (CHUNK + 100)
    uid = await env.add(data)
    [info] = await env.store.fetch(env.inbox.id, [uid])
    reader = await env.store.open_blob(info.blob_id)
    await env.store.set_flags(env.inbox.id, [uid], frozenset({"\\Deleted"}), FlagMode.ADD)
    await env.store.expunge(env.inbox.id)
    [(refs, stamped)] = await _rows(
        db, "SELECT refs, unreferenced_at FROM blobs WHERE id = $1", info.blob_id
    )
    assert refs == 0 and stamped is not None and stamped <= time.time() + 1
    with pytest.raises(NotFound):
        await env.store.read_blob(info.blob_id)
    with pytest.raises(NotFound):
        await env.store.open_blob(info.blob_id)
    await env.store.delete_blob(info.blob_id)
    assert await _rows(db, "SELECT id FROM blobs WHERE id = $1", info.blob_id) == [(info.blob_id,)]
    got = bytearray()
    while piece := await reader.read():
        got += piece
    assert bytes(got) == data


async def test_metadata_and_search_text_once_per_blob(env: Env, db: asyncpg.Connection) -> None:
    """A delivery writes its blob's metadata columns and its ``blob_text`` row (header
    block as given, header block and body casefolded by Python, RFC 9051 §6.4.4) once:
    a second message on the same blob keeps the first's."""
    data = b"Subject: Gruss\r\n\r\nGroesse\r\n"
    blob = await write_blob(env.store, data)
    first = dummy_meta(data, subject="Gruß", headers="Subject: GRUSS İ\r\n", text="Größe ΣΑΣ")
    await env.store.append(env.inbox.id, blob, first)
    again = dummy_meta(data, subject="other", headers="X: y", text="other")
    await env.store.append(env.inbox.id, blob, again)
    assert await _rows(
        db, "SELECT headers, headers_cf, body_cf FROM blob_text WHERE blob_id = $1", blob.blob_id
    ) == [("Subject: GRUSS İ\r\n", "Subject: GRUSS İ\r\n".casefold(), "grösse σασ")]
    assert await _rows(
        db, "SELECT subject, refs, envelope FROM blobs WHERE id = $1", blob.blob_id
    ) == [("Gruß", 2, first.envelope)]
