"""The memory the worker processes of one server share, and its lock.

Why: with `[server] workers = N` the connection caps, the sessions per account and the
verified credentials must hold for the server as a whole; each worker counting its own
would multiply every cap by N and make every worker verify each password once.

Theory of operation:
  * The master makes one anonymous memory file (`memfd_create`: it has no name in any
    file system, so no other user, and no other process of ours that was not handed the
    descriptor, can open it), sizes it and maps it. Each worker inherits the descriptor
    (`subprocess.Popen(pass_fds=...)`; `Segment.attach`) and maps the same pages. Where
    `memfd_create` is missing, an unlinked file in a private (0700) temporary directory
    does the same.
  * One lock serialises every operation of every process: a POSIX record lock
    (`fcntl.lockf`) on that descriptor, which the kernel drops if its holder dies, so a
    killed worker never leaves the memory locked. Record locks belong to a process, not a
    thread, so a `threading.Lock` is taken first for the threads of one process. An
    operation is a few microseconds of Python under the lock and runs on the event loop:
    contention between two workers costs microseconds, never a wait for I/O.
  * The layout is fixed at creation (`Layout`): a header (sizes, the credential key, the
    key of the table hash), then the regions of `workers.shared`. Nothing is ever resized.

Must not: hold anything a worker could not lose (a worker killed mid-operation can leave
its own counts wrong; the master drops them with the worker: `WorkerShared.drop_worker`).
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SegmentHandle:
    """What a worker needs to attach: the inherited descriptor and the size. Picklable;
    `encode`/`decode` give a short string for a command line (no secret is in it: the
    key lives in the memory itself). The spawner must pass `fd` in `pass_fds`."""

    fd: int
    size: int

    def encode(self) -> str:
        return f"fd={self.fd},size={self.size}"

    @classmethod
    def decode(cls, text: str) -> SegmentHandle:
        fields = dict(part.split("=", 1) for part in text.split(","))
        return cls(int(fields["fd"]), int(fields["size"]))


class Segment:
    """A mapping of the shared memory file with its cross-process lock."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size
        self.memory = mmap.mmap(fd, size, flags=mmap.MAP_SHARED)
        self._thread_lock = threading.Lock()

    @classmethod
    def create(cls, size: int) -> Segment:
        """A new zeroed segment (the master's). The descriptor is close-on-exec except
        where the spawner hands it over (`pass_fds`)."""
        size = max(mmap.PAGESIZE, -(-size // mmap.PAGESIZE) * mmap.PAGESIZE)
        memfd_create = getattr(os, "memfd_create", None)
        if memfd_create is not None:
            fd = memfd_create("pillarbox-shared", os.MFD_CLOEXEC)
        else:  # pragma: no cover - Linux has memfd_create
            with tempfile.TemporaryDirectory(prefix="pillarbox-shared-") as private:
                path = os.path.join(private, "memory")
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
                os.unlink(path)
        try:
            os.ftruncate(fd, size)
            return cls(fd, size)
        except BaseException:
            os.close(fd)
            raise

    @classmethod
    def attach(cls, handle: SegmentHandle) -> Segment:
        """Map the segment whose descriptor this process inherited."""
        if os.fstat(handle.fd).st_size < handle.size:
            raise ValueError("shared memory: the inherited descriptor is not the segment")
        return cls(handle.fd, handle.size)

    @property
    def handle(self) -> SegmentHandle:
        return SegmentHandle(self.fd, self.size)

    @contextlib.contextmanager
    def locked(self) -> Iterator[mmap.mmap]:
        """The memory, held exclusively by this thread of this process."""
        with self._thread_lock:
            fcntl.lockf(self.fd, fcntl.LOCK_EX)
            try:
                yield self.memory
            finally:
                fcntl.lockf(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Unmap and close the descriptor (the memory goes when the last process closes
        it)."""
        with contextlib.suppress(BufferError, ValueError):
            self.memory.close()
        with contextlib.suppress(OSError):
            os.close(self.fd)
