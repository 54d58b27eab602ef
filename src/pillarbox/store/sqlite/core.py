"""The base of `SqliteStore`: lifecycle, plumbing to the threads, and blobs.

Owns what every concern of the backend stands on: opening and closing the store (the
blob directory and its I/O pools, the text index, the writer, the readers, the change
bus), the two ways to run SQL (`_write`: an operation in the writer's next group commit;
`_read`: a job in a reader's read transaction), publishing each operation's changes on
the event loop before its caller hears back, and the blob operations of the contract.

Theory of operation: message bytes live in files (`blobs.BlobFiles`); a row refers to a
file only once the file is durable, and a file with no row is removed when the store
opens. Blob writes fsync in an I/O pool of their own; blob reads (POP3 RETR, delivery
copies) are short page-cache reads in another, so they never queue behind fsyncs.

The concerns (accounts, mailboxes, messages, reading, the outbound queue) are mixins on
this class in modules of their own; `SqliteStore` in `__init__` composes them. Must not:
hold SQL of any concern, block the event loop (sqlite and file calls happen in threads),
let a sqlite3 exception escape (they become `store.errors`), or import a mixin or the
composed class.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from pillarbox.model import MessageMeta
from pillarbox.store.api import ChangeBus, StampingBus
from pillarbox.store.changes import InProcessChangeBus
from pillarbox.store.errors import NotFound, StoreUnavailable
from pillarbox.store.sqlite import text_index
from pillarbox.store.sqlite.blobs import BlobFiles, BlobFileWriter, FileBlobReader
from pillarbox.store.sqlite.errors import map_error
from pillarbox.store.sqlite.readers import Readers, resolve
from pillarbox.store.sqlite.writer import Done, Op, Tx, Writer

T = TypeVar("T")

DB_NAME = "pillarbox.db"
BLOB_DIR = "blobs"
READERS = 4
IO_THREADS = 8  # blob writes fsync in parallel; more did not help on a 2-core VM
READ_THREADS = 4  # blob reads (POP3 RETR, delivery copies): short page-cache reads


class SqliteCore:
    """Lifecycle and plumbing of the SQLite store (see the module docstring)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        bus: ChangeBus | None = None,
        collect_orphans: bool = True,
        node_id: str = "",
    ) -> None:
        """`bus` receives every committed change; without one (the CLI, which has no
        subscribers) the store keeps an in-process bus of its own. `collect_orphans`:
        remove blob files no row refers to when opening — only the server does; the CLI
        opens the store beside a running server, whose messages being received have
        files but no rows yet. `node_id` names this process in the claims it takes
        (`claim_queue`, released by `release_claims`), as the PostgreSQL backend's
        node id does; by default the machine's host name, as `[server] node_id`."""
        self.data_dir = Path(data_dir)
        self.node_id = node_id or socket.gethostname()
        self._collect_orphans = collect_orphans
        self.db_path = self.data_dir / DB_NAME
        self._given_bus = bus
        self._writer: Writer | None = None
        self._readers: Readers | None = None
        self._text: text_index.TextIndex | None = None
        self._io: ThreadPoolExecutor | None = None
        self._read_io: ThreadPoolExecutor | None = None
        self._blobs: BlobFiles | None = None
        self._bus: ChangeBus = bus if bus is not None else InProcessChangeBus()
        self._stamping: StampingBus | None = None

    @property
    def bus(self) -> ChangeBus:
        """Where this store publishes its changes."""
        return self._bus

    # --- lifecycle -------------------------------------------------------------------
    async def open(self) -> None:
        if self._writer is not None:
            return
        loop = asyncio.get_running_loop()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        io = ThreadPoolExecutor(IO_THREADS, thread_name_prefix="pillarbox-blob-io")
        blobs = BlobFiles(self.data_dir / BLOB_DIR, io)
        text = text_index.TextIndex(self.data_dir, self.db_path)
        if self._given_bus is None:
            self._bus = InProcessChangeBus()  # a fresh one after a close
        # isinstance once here (a runtime Protocol check is slow), not per publication.
        stamping = self._bus if isinstance(self._bus, StampingBus) else None
        self._stamping = stamping
        writer = Writer(
            self.db_path,
            blobs,
            self._complete,
            text.forget,
            collect_orphans=self._collect_orphans,
            stamp=stamping.stamp if stamping is not None else None,
            index_text=text.index_committed,
        )
        text.indexed = writer.forget_pending
        writer.start()
        await loop.run_in_executor(io, writer.ready.wait)
        if writer.startup_error is None:
            # After the writer: it moves an older index into search.db and sweeps it.
            text.start()
            await loop.run_in_executor(io, text.ready.wait)
        failure = writer.startup_error or text.startup_error
        if failure is not None:
            writer.queue.put(None)
            await loop.run_in_executor(io, writer.join)
            if text.is_alive():
                text.stop()
                await loop.run_in_executor(io, text.join)
            io.shutdown(wait=True)
            raise map_error(failure)
        self._io, self._blobs, self._writer, self._text = io, blobs, writer, text
        self._read_io = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="pillarbox-blob-read")
        self._readers = Readers(self.db_path, READERS)

    async def close(self) -> None:
        writer, readers, io = self._writer, self._readers, self._io
        if writer is None or io is None:
            return
        text = self._text
        self._writer = None
        self._readers = None
        self._text = None
        loop = asyncio.get_running_loop()
        writer.queue.put(None)
        await loop.run_in_executor(io, writer.join)
        if text is not None:
            text.stop()  # after the writer: its last batch may have forgotten rows
            await loop.run_in_executor(io, text.join)
        if readers is not None:
            readers.stop()
            await loop.run_in_executor(io, readers.join)
        # Results the writer handed back in its last batch are still queued on the loop;
        # let them run before we declare the store closed.
        await asyncio.sleep(0)
        if self._given_bus is None:
            self._bus.close()  # only our own: a bus we were handed belongs to its owner
        read_io, self._read_io = self._read_io, None
        self._io = None
        self._blobs = None
        io.shutdown(wait=True)
        if read_io is not None:
            read_io.shutdown(wait=True)

    @property
    def writer_stats(self) -> tuple[int, int]:
        """(commits, operations) since open: operations / commits is the group size."""
        if self._writer is None:
            return (0, 0)
        return (self._writer.batches, self._writer.operations)

    # --- plumbing --------------------------------------------------------------------
    def _complete(self, items: list[Done]) -> None:
        """On the loop: publish each operation's changes, then resolve it, in order.
        Changes the writer stamped (a `StampingBus`, several processes) go through
        `publish_stamped`, so the bus merges them with other processes' in stamp order."""
        bus, stamping = self._bus, self._stamping
        for item in items:
            if item.changes:
                if item.stamp is not None and stamping is not None:
                    stamping.publish_stamped(item.stamp, item.changes)
                else:
                    bus.publish(item.changes)
            if item.future is not None:
                resolve(item.future, item.result, item.error)

    async def _write(
        self,
        fn: Callable[[Tx], T],
        *,
        durable: bool = True,
        text: list[text_index.TextRow] | None = None,
    ) -> T:
        """Run `fn` in the writer's next group commit; `text` (from `_text_rows`) goes
        to ``text_pending`` in the same savepoint once `fn` succeeded."""
        writer = self._writer
        if writer is None:
            raise StoreUnavailable("store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        writer.queue.put(Op(fn, future, loop, durable, text or []))
        return await future

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        readers = self._readers
        if readers is None:
            raise StoreUnavailable("store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        readers.queue.put((fn, future, loop))
        return await future

    @staticmethod
    def _text_rows(items: Sequence[tuple[int, MessageMeta]]) -> list[text_index.TextRow]:
        """The SEARCH text of each distinct blob, for `_write(text=...)`: inserted into
        ``text_pending`` in the operation's own transaction and indexed into search.db
        after the commit (see `text_index`), so a delivery waits for one fsync."""
        return list(
            {
                blob_id: (blob_id, m.headers, m.body_text.casefold())  # text_index.TEXT_VERSION
                for blob_id, m in items
            }.values()
        )

    def _files(self) -> BlobFiles:
        if self._blobs is None:
            raise StoreUnavailable("store is not open")
        return self._blobs

    def _read_pool(self) -> ThreadPoolExecutor:
        if self._read_io is None:
            raise StoreUnavailable("store is not open")
        return self._read_io

    async def _blob_io(self, blob_id: int, fn: Callable[[ThreadPoolExecutor], T]) -> T:
        """Run a read of blob `blob_id` in the blob-reading pool (never the loop's default
        executor); a missing file is NotFound, any other OS error StoreUnavailable."""
        pool = self._read_pool()
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, fn, pool)
        except FileNotFoundError:
            raise NotFound(f"no blob {blob_id}") from None
        except OSError as exc:
            raise StoreUnavailable(str(exc)) from exc

    # --- blobs -----------------------------------------------------------------------
    def new_blob(self) -> BlobFileWriter:
        return self._files().writer(self.delete_blob)

    async def open_blob(self, blob_id: int, start: int = 0) -> FileBlobReader:
        files = self._files()
        return await self._blob_io(blob_id, lambda pool: files.open_reader(blob_id, start, pool))

    async def read_blob(self, blob_id: int, start: int = 0, length: int | None = None) -> bytes:
        files = self._files()
        return await self._blob_io(blob_id, lambda _pool: files.read(blob_id, start, length))

    async def delete_blob(self, blob_id: int) -> None:
        """Remove a finished file that no row took (an aborted delivery)."""

        def op(tx: Tx) -> None:
            row = tx.conn.execute("SELECT 1 FROM blobs WHERE id = ?", (blob_id,)).fetchone()
            if row is None:
                tx.unlink.append(blob_id)

        await self._write(op)
