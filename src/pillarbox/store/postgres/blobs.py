"""PostgreSQL: message bodies as fixed-size ``bytea`` chunks (plan §1, "Blob files").

Owns the ``blob_chunks`` rows and the life of a ``blobs`` row up to the point a message
row refers to it, plus the read leases in ``blob_readers``:

  * Writing (`PgBlobWriter`): bytes are buffered to `CHUNK` (256 KiB) and each full
    chunk is INSERTed in autocommit as it fills; the first such flush creates the
    ``blobs`` row in state ``writing``. `finish` writes the last chunk and sets the size
    and state ``done`` in one statement (so one transaction): its commit is the
    durability point (a small message, most mail, is that one round trip and nothing
    else). A row may refer only
    to a ``done`` blob (`message_rows` checks). An unfinished upload is left for the
    janitor (it must not be removed at open, as SQLite's orphans are: another node may be
    mid-upload).
  * Reading (`PgBlobReader`): one chunk per `read`, fetched by primary key, and no
    connection held between reads, so a slow POP3/FETCH client holds no pool connection.
    So that a blob stays readable when its message is expunged meanwhile (the contract
    of `open_blob`), a reader that does not have the whole rest in hand after opening
    takes a lease row (``blob_readers``: holder = node id + a unique suffix, until = now +
    `LEASE`), renewed by reads as it runs low and deleted at `close`. Blobs whose
    reference count drops to 0 are never deleted in that transaction (the trigger only
    stamps ``unreferenced_at``); the janitor deletes them later unless a lease is live.
  * `read_blob` is one query over just the chunks a byte range needs, sliced in SQL
    (``substring`` on EXTERNAL storage reads only the TOAST slices it needs).

Must not: delete a blob a row refers to, or hold a pool connection between two calls.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from pillarbox.store.errors import NotFound, StoreUnavailable
from pillarbox.store.postgres.core import Conn, PgCore
from pillarbox.store.postgres.errors import map_error

T = TypeVar("T")

CHUNK = 256 * 1024  # bytes per blob_chunks row; the read size of a reader
LEASE = 600.0  # seconds a reader's lease lasts after its last renewal
_RENEW_BELOW = LEASE / 2  # a read renews the lease once less than this is left

# A byte range [$2, $3) of blob $1 as one value: only the chunks it overlaps, each cut
# to its part of the range in SQL. No row: no such blob for a new reader (unfinished,
# or its last reference is gone: deleted as far as the contract goes, though its rows
# wait for the janitor and for readers that opened it before); NULL: empty range.
_RANGE_SQL = f"""
SELECT (SELECT string_agg(
            substring(c.data FROM greatest($2 - c.seq::bigint * {CHUNK}, 0)::int + 1
                      FOR (least($3 - c.seq::bigint * {CHUNK}, {CHUNK})
                           - greatest($2 - c.seq::bigint * {CHUNK}, 0))::int),
            ''::bytea ORDER BY c.seq)
          FROM blob_chunks AS c
         WHERE c.blob_id = b.id AND c.seq >= $4 AND c.seq <= $5),
       b.size
  FROM blobs AS b WHERE b.id = $1 AND b.state = 'done' AND b.unreferenced_at IS NULL
"""


async def read_range(conn: Conn, blob_id: int, start: int = 0, length: int | None = None) -> bytes:
    """Bytes [start, start+length) of finished blob `blob_id` (to its end if `length` is
    None; b"" past the end), in one query on `conn`. NotFound if there is no such blob.
    Other concerns (`fetch_with_bodies`, `read_message(s)`) call this on their own
    connection or snapshot."""
    start = max(0, start)
    end = (2**62) if length is None else start + max(0, length)
    last = (end - 1) // CHUNK if end > start else -1
    row = await conn.fetchrow(_RANGE_SQL, blob_id, start, end, start // CHUNK, min(last, 2**31 - 1))
    if row is None:
        raise NotFound(f"no blob {blob_id}")
    data = row[0]
    return bytes(data) if data is not None else b""


@dataclass(frozen=True, slots=True)
class PgBlob:
    """A finished, durable blob (implements `store.api.BlobHandle`)."""

    blob_id: int
    size: int


async def _pooled(store: PgCore, fn: Callable[[Conn], Awaitable[T]]) -> T:
    """Run `fn` on a pool connection outside any transaction (autocommit), errors
    mapped to store errors."""
    pool = store._the_pool()
    try:
        async with pool.acquire() as conn:
            return await fn(conn)
    except Exception as exc:
        raise map_error(exc) from exc


async def _insert_chunks(conn: Conn, blob_id: int, first_seq: int, chunks: list[bytes]) -> None:
    await conn.execute(
        "INSERT INTO blob_chunks (blob_id, seq, data)"
        " SELECT $1, $2 + i - 1, d FROM unnest($3::bytea[]) WITH ORDINALITY AS t(d, i)",
        blob_id,
        first_seq,
        chunks,
    )


# `finish`: the last chunk ($tail, if any) and the blob's size and state 'done', in one
# statement. The commit of that statement is the durability point.
_FINISH_SMALL = """
WITH b AS (INSERT INTO blobs (size, state) VALUES ($1, 'done') RETURNING id),
c AS (INSERT INTO blob_chunks (blob_id, seq, data)
      SELECT b.id, 0, $2::bytea FROM b WHERE length($2::bytea) > 0)
SELECT id FROM b
"""
_FINISH_LARGE = """
WITH b AS (UPDATE blobs SET size = $2, state = 'done', created_at = extract(epoch FROM now())
           WHERE id = $1 AND state = 'writing' RETURNING id),
c AS (INSERT INTO blob_chunks (blob_id, seq, data)
      SELECT b.id, $3::integer, $4::bytea FROM b WHERE length($4::bytea) > 0)
SELECT id FROM b
"""


class PgBlobWriter:
    """Streams one message into chunk rows (implements `store.api.BlobWriter`)."""

    def __init__(self, store: BlobsMixin) -> None:
        self._store = store
        self._buffer = bytearray()
        self._blob_id = 0  # the blobs row, once the first full chunk was flushed
        self._seq = 0  # chunks written so far
        self._size = 0
        self._done: PgBlob | None = None
        self._aborted = False

    def _take_full_chunks(self) -> list[bytes]:
        count = len(self._buffer) // CHUNK
        chunks = [bytes(self._buffer[i * CHUNK : (i + 1) * CHUNK]) for i in range(count)]
        del self._buffer[: count * CHUNK]
        return chunks

    async def write(self, data: bytes) -> None:
        if self._done is not None or self._aborted:
            raise ValueError("blob writer already finished")
        self._buffer += data
        self._size += len(data)
        if len(self._buffer) < CHUNK:
            return
        chunks = self._take_full_chunks()
        first_seq = self._seq

        async def flush(conn: Conn) -> None:
            if not self._blob_id:
                self._blob_id = int(
                    await conn.fetchval("INSERT INTO blobs (state) VALUES ('writing') RETURNING id")
                )
            await _insert_chunks(conn, self._blob_id, first_seq, chunks)

        await _pooled(self._store, flush)
        self._seq += len(chunks)

    async def finish(self) -> PgBlob:
        if self._aborted:
            raise ValueError("blob writer was aborted")
        if self._done is not None:
            return self._done
        tail = bytes(self._buffer)
        self._buffer.clear()
        size, first_seq = self._size, self._seq

        async def op(conn: Conn) -> int | None:
            # One statement, so atomic in autocommit: one round trip for most mail.
            if self._blob_id:
                found = await conn.fetchval(_FINISH_LARGE, self._blob_id, size, first_seq, tail)
            else:
                found = await conn.fetchval(_FINISH_SMALL, size, tail)
            return None if found is None else int(found)

        try:
            blob_id = await _pooled(self._store, op)
            if blob_id is None:  # the janitor took an upload stalled for a day
                raise StoreUnavailable(f"blob upload {self._blob_id} is gone")
        except BaseException:
            await self.abort()
            raise
        self._blob_id = blob_id
        self._done = PgBlob(blob_id=blob_id, size=size)
        return self._done

    async def abort(self) -> None:
        if self._aborted:
            return
        self._aborted = True
        self._buffer.clear()
        if self._done is not None:
            await self._store.delete_blob(self._done.blob_id)
            return
        blob_id, self._blob_id = self._blob_id, 0
        if blob_id:

            async def drop(conn: Conn) -> None:
                await conn.execute("DELETE FROM blobs WHERE id = $1 AND state = 'writing'", blob_id)

            await _pooled(self._store, drop)


class PgBlobReader:
    """An open blob read one chunk per call (implements `store.api.BlobReader`).

    Holds no connection between reads. `lease` is the holder name of its row in
    ``blob_readers`` ("" when it needs none: the whole rest came with the opening, or
    the last chunk has been fetched)."""

    def __init__(
        self,
        store: PgCore,
        blob_id: int,
        *,
        position: int,
        end: int,
        size: int,
        first: bytes,
        lease: str,
        until: float,
    ) -> None:
        self._store = store
        self._blob_id = blob_id
        self._pos = position  # absolute offset of the first byte not yet fetched
        self._end = end  # absolute end of the blob
        self._size = size
        self._buffered = first
        self._lease = lease
        self._until = until

    @property
    def size(self) -> int:
        return self._size

    async def read(self, size: int = CHUNK) -> bytes:
        if self._buffered:
            data, self._buffered = self._buffered[:size], self._buffered[size:]
            return data
        if self._pos >= self._end:
            await self.close()
            return b""
        seq, offset = divmod(self._pos, CHUNK)
        now = time.time()
        renew = bool(self._lease) and self._until - now < _RENEW_BELOW
        until = now + LEASE
        blob_id, holder = self._blob_id, self._lease

        async def fetch(conn: Conn) -> bytes | None:
            if renew:
                data = await conn.fetchval(
                    "WITH l AS (UPDATE blob_readers SET until = $3"
                    " WHERE blob_id = $1 AND holder = $4)"
                    " SELECT data FROM blob_chunks WHERE blob_id = $1 AND seq = $2",
                    blob_id,
                    seq,
                    until,
                    holder,
                )
            else:
                data = await conn.fetchval(
                    "SELECT data FROM blob_chunks WHERE blob_id = $1 AND seq = $2", blob_id, seq
                )
            return None if data is None else bytes(data)

        chunk = await _pooled(self._store, fetch)
        if chunk is None:
            # Only after the lease ran out (a reader stalled for LEASE seconds).
            await self.close()
            raise NotFound(f"blob {blob_id} was deleted while being read")
        if renew:
            self._until = until
        data = chunk[offset:]
        self._pos += len(data)
        if not data or self._pos >= self._end:
            self._pos = max(self._pos, self._end)
            await self._release()  # all of it is in hand: the blob may go now
        self._buffered = data[size:]
        return data[:size]

    async def _release(self) -> None:
        holder, self._lease = self._lease, ""
        if not holder:
            return
        blob_id = self._blob_id

        async def release(conn: Conn) -> None:
            await conn.execute(
                "DELETE FROM blob_readers WHERE blob_id = $1 AND holder = $2", blob_id, holder
            )

        with contextlib.suppress(StoreUnavailable):  # the lease runs out by itself
            await _pooled(self._store, release)

    async def close(self) -> None:
        self._buffered = b""
        self._pos = self._end
        await self._release()


class BlobsMixin(PgCore):
    """The blob operations of the store contract on PostgreSQL."""

    def new_blob(self) -> PgBlobWriter:
        return PgBlobWriter(self)

    async def open_blob(self, blob_id: int, start: int = 0) -> PgBlobReader:
        """Open with the first chunk's worth read in the same round trip; a lease (a
        second statement on the same connection) only when more remains to be read."""
        start = max(0, start)
        holder = f"{self.node_id}:{secrets.token_hex(8)}"
        until = time.time() + LEASE

        async def op(conn: Conn) -> tuple[bytes, int]:
            # One chunk's worth from `start` (it may span two chunk rows).
            row = await conn.fetchrow(
                _RANGE_SQL,
                blob_id,
                start,
                start + CHUNK,
                start // CHUNK,
                (start + CHUNK - 1) // CHUNK,
            )
            if row is None:
                raise NotFound(f"no blob {blob_id}")
            first = bytes(row[0]) if row[0] is not None else b""
            rest = max(0, int(row[1]) - start)
            if rest > len(first):
                taken = await conn.fetchval(
                    "INSERT INTO blob_readers (blob_id, holder, until)"
                    " SELECT id, $2, $3 FROM blobs WHERE id = $1 AND unreferenced_at IS NULL"
                    " ON CONFLICT (blob_id, holder) DO UPDATE SET until = excluded.until"
                    " RETURNING 1",
                    blob_id,
                    holder,
                    until,
                )
                if taken is None:
                    raise NotFound(f"no blob {blob_id}")
            return first, rest

        first, rest = await _pooled(self, op)
        leased = rest > len(first)
        return PgBlobReader(
            self,
            blob_id,
            position=start + len(first),
            end=start + rest,
            size=rest,
            first=first,
            lease=holder if leased else "",
            until=until,
        )

    async def read_blob(self, blob_id: int, start: int = 0, length: int | None = None) -> bytes:
        return await self._read(lambda conn: read_range(conn, blob_id, start, length))

    async def delete_blob(self, blob_id: int) -> None:
        """Delete a finished blob that no row ever referred to (its chunks and text go
        with it by ON DELETE CASCADE); anything else is left alone, and an unknown id is
        no error. One whose last reference went is already gone for readers (NotFound)
        and is the janitor's: a reader that opened it before may hold a lease."""

        async def op(conn: Conn) -> None:
            await conn.execute(
                "DELETE FROM blobs AS b WHERE b.id = $1 AND b.state = 'done' AND b.refs <= 0"
                " AND b.unreferenced_at IS NULL"
                " AND NOT EXISTS (SELECT 1 FROM messages WHERE blob_id = $1)"
                " AND NOT EXISTS (SELECT 1 FROM queue WHERE blob_id = $1)",
                blob_id,
            )

        await _pooled(self, op)
