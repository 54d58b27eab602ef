"""Message files on disk: durable writes, streaming reads, orphan collection.

Owns the directory ``<data_dir>/blobs``: each file lives at ``<2 hex digits>/<16 hex
digits>`` named by its blob id (a random 63-bit integer, so ids are known before any row
exists and never need a database round trip). The durability rule of the store contract
is realised here: a file is created exclusively under its final name (never clobbering),
written, fsynced, and its directory fsynced, all before `finish` returns; only then may a
row refer to it. A file is only ever read through a row, so one still being written (or
cut short by a crash) is invisible; files with no row are removed by `collect_orphans`
when the store opens. (``tmp/`` is what earlier versions wrote into first; it is only
emptied now. Writing in place saves a link and an unlink per message.)

Must not: touch the database, or do any file I/O on the event loop thread (every
blocking call goes through the executor it is given).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pillarbox.store.sqlite.held_files import fsync_path

# File names must be unique, not secret (a clash is retried or refused by O_EXCL), so they
# come from a PRNG seeded once: os.urandom releases the GIL on every call, and getting it
# back on a busy event loop costs far more than the random bits.
_NAMES = random.Random()
_FLUSH_AT = 256 * 1024  # buffer small writes; one thread hop per quarter megabyte


READ_CHUNK = 256 * 1024  # what `FileBlobReader` reads per thread hop


@dataclass(frozen=True, slots=True)
class FileBlob:
    """A finished, durable message file (implements `store.api.BlobHandle`)."""

    blob_id: int
    size: int


def _fsync_dir(path: Path) -> None:
    fsync_path(path, directory=True)


class BlobFiles:
    """The blob directory. Synchronous methods run in worker threads only."""

    def __init__(self, root: Path, executor: Executor) -> None:
        self.root = root
        self._root = str(root)
        self.tmp = root / "tmp"
        self._executor = executor

    # --- layout -----------------------------------------------------------------------
    def path(self, blob_id: int) -> Path:
        return Path(self.file(blob_id))

    def file(self, blob_id: int) -> str:
        """`path` as a string: a FETCH of 20 messages' headers opens 20 files, and pathlib
        joins cost more than the open (issue 18 profile)."""
        name = f"{blob_id:016x}"
        return f"{self._root}/{name[:2]}/{name}"

    def prepare(self) -> None:
        """Create the fan-out directories once, so `finish` never creates a directory."""
        created = False
        for directory in [self.root, self.tmp, *(self.root / f"{i:02x}" for i in range(128))]:
            if not directory.is_dir():
                directory.mkdir(parents=True, exist_ok=True)
                created = True
        if created:
            _fsync_dir(self.root)
            _fsync_dir(self.root.parent)

    # --- garbage collection -----------------------------------------------------------
    def collect_orphans(self, known_in_range: Callable[[int, int], set[int]]) -> int:
        """Remove temp files and files no row refers to; returns how many were removed.

        `known_in_range(lo, hi)` returns the blob ids with a row in [lo, hi]; it is called
        once per fan-out directory, so memory stays bounded by one directory's share.
        """
        removed = 0
        for entry in os.scandir(self.tmp):
            os.unlink(entry.path)
            removed += 1
        for prefix in range(128):
            directory = self.root / f"{prefix:02x}"
            names = os.listdir(directory)
            if not names:
                continue
            lo, hi = prefix << 56, ((prefix + 1) << 56) - 1
            known = known_in_range(lo, hi)
            for name in names:
                try:
                    blob_id = int(name, 16)
                except ValueError:
                    blob_id = -1
                if blob_id not in known:
                    os.unlink(directory / name)
                    removed += 1
        if removed:
            _fsync_dir(self.tmp)
        return removed

    def unlink(self, blob_ids: Iterable[int]) -> None:
        """Remove files whose last row is gone (called after the commit that removed it)."""
        for blob_id in blob_ids:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.file(blob_id))

    # --- reading ----------------------------------------------------------------------
    def read(self, blob_id: int, start: int = 0, length: int | None = None) -> bytes:
        with open(self.file(blob_id), "rb") as f:
            if start:
                f.seek(start)
            return f.read() if length is None else f.read(length)

    def open_reader(self, blob_id: int, start: int, executor: Executor) -> FileBlobReader:
        """Open the file and read its first chunk (runs in a worker thread)."""
        fh = open(self.file(blob_id), "rb")  # noqa: SIM115 - closed at EOF or by close()
        try:
            size = os.fstat(fh.fileno()).st_size - start
            if start:
                fh.seek(start)
            first = fh.read(READ_CHUNK)
        except BaseException:
            fh.close()
            raise
        if len(first) < READ_CHUNK:
            fh.close()
            return FileBlobReader(None, first, max(0, size), executor)
        return FileBlobReader(fh, first, max(0, size), executor)

    # --- writing ----------------------------------------------------------------------
    def writer(self, discard: Callable[[int], Awaitable[None]] | None = None) -> BlobFileWriter:
        return BlobFileWriter(self, self._executor, discard)


class FileBlobReader:
    """An open message file read in chunks off the event loop (implements
    `store.api.BlobReader`).

    The file is opened before the caller answers its client, so a concurrent expunge
    cannot cut the message short: an unlinked file stays readable through the open
    descriptor. Opening also reads the first `READ_CHUNK` bytes in the same thread hop,
    and a file shorter than that is closed there too, so a typical POP3 RETR costs one
    hop, not four (open, read, read to see the end, close). Hops go to the store's
    blob-reading pool, never the loop's default executor.
    """

    def __init__(self, fh: BinaryIO | None, first: bytes, size: int, executor: Executor) -> None:
        self._fh = fh  # None once the end of the file has been read (and it is closed)
        self._buffered = first
        self._size = size
        self._executor = executor

    @property
    def size(self) -> int:
        return self._size

    async def read(self, size: int = READ_CHUNK) -> bytes:
        if self._buffered:
            data, self._buffered = self._buffered[:size], self._buffered[size:]
            return data
        fh = self._fh
        if fh is None:
            return b""
        data = await asyncio.get_running_loop().run_in_executor(self._executor, fh.read, size)
        if not data:
            await self.close()
        return data

    async def close(self) -> None:
        self._buffered = b""
        fh, self._fh = self._fh, None
        if fh is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, fh.close)


class BlobFileWriter:
    """Streams one message into its final place (implements `store.api.BlobWriter`).

    `discard`, if given, is called by `abort` after a successful `finish`: the store
    then removes the file unless a row already refers to it.
    """

    def __init__(
        self,
        files: BlobFiles,
        executor: Executor,
        discard: Callable[[int], Awaitable[None]] | None,
    ) -> None:
        self._files = files
        self._executor = executor
        self._discard = discard
        self._buffer = bytearray()
        self._file: BinaryIO | None = None
        self._path: Path | None = None
        self._blob_id = 0
        self._size = 0
        self._done: FileBlob | None = None
        self._aborted = False

    async def _run(self, fn: Callable[[], object]) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def _flush_sync(self, data: bytes) -> None:
        while self._file is None:
            blob_id = _NAMES.getrandbits(63) or 1
            path = self._files.path(blob_id)
            try:
                # "x": O_EXCL, so an id whose file exists is never reused.
                self._file = open(path, "xb")  # noqa: SIM115 - closed in finish/abort
            except FileExistsError:
                continue
            self._blob_id, self._path = blob_id, path
        self._file.write(data)

    async def write(self, data: bytes) -> None:
        if self._done is not None or self._aborted:
            raise ValueError("blob writer already finished")
        self._buffer += data
        self._size += len(data)
        if len(self._buffer) >= _FLUSH_AT:
            chunk = bytes(self._buffer)
            self._buffer.clear()
            await self._run(lambda: self._flush_sync(chunk))

    def _finish_sync(self, tail: bytes) -> FileBlob:
        self._flush_sync(tail)
        assert self._file is not None
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        assert self._path is not None
        _fsync_dir(self._path.parent)
        return FileBlob(blob_id=self._blob_id, size=self._size)

    async def finish(self) -> FileBlob:
        if self._aborted:
            raise ValueError("blob writer was aborted")
        if self._done is None:
            tail = bytes(self._buffer)
            self._buffer.clear()
            loop = asyncio.get_running_loop()
            try:
                self._done = await loop.run_in_executor(
                    self._executor, lambda: self._finish_sync(tail)
                )
            except BaseException:
                await self.abort()
                raise
        return self._done

    def _abort_sync(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path)

    async def abort(self) -> None:
        if self._aborted:
            return
        self._aborted = True
        self._buffer.clear()
        if self._done is not None:
            if self._discard is not None:
                await self._discard(self._done.blob_id)
            return
        await self._run(self._abort_sync)
