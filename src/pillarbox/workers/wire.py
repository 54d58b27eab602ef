"""What the master and its workers say to each other, and the stamp counter they share.

Each worker has two socketpairs with the master (never a filesystem socket, which
another local user could reach): `up` (worker → master) and `down` (master → worker).
Two, because the worker writes `up` from the SQLite writer thread with blocking sends
while its event loop reads `down` without blocking, and a socket's blocking mode is one
for both directions.

A frame is a 4-byte big-endian length, one type byte and the payload. Payloads are
pickles: both ends are this program run by one user, connected by inherited fds only.
"""

from __future__ import annotations

import mmap
import os
import pickle
import socket
import struct
import threading
from collections.abc import Sequence
from typing import Any

from pillarbox.model import Change

HEADER = struct.Struct(">IB")
STAMP = struct.Struct(">Q")
COUNT = struct.Struct(">I")
ACCOUNT = struct.Struct(">I")  # account ids: SQLite rowids of a mail server, below 2**32

INIT = ord("I")  # master → worker, first: the worker's index and its resolved Config
READY = ord("R")  # worker → master: started; payload: {listener: (host, port)}
CHANGES = ord("C")  # either way: 8-byte stamp, account ids, pickled list of changes
DEAD = ord("D")  # master → workers: a worker died (a missing stamp will not come)


def frame(kind: int, payload: bytes) -> bytes:
    return HEADER.pack(len(payload) + 1, kind) + payload


def changes_frame(stamp: int, changes: Sequence[Change]) -> bytes:
    """The stamp, the accounts the changes are of, then the pickled changes: a worker
    with no session of those accounts takes the stamp without unpickling (a profile of
    imap_mixed on two workers had 8% of a worker's loop in unpickling changes that no
    session of it wanted)."""
    accounts = sorted({change.account_id for change in changes})
    head = STAMP.pack(stamp) + COUNT.pack(len(accounts)) + b"".join(map(ACCOUNT.pack, accounts))
    return frame(CHANGES, head + pickle.dumps(list(changes), protocol=5))


def changes_header(payload: bytes) -> tuple[int, tuple[int, ...], int]:
    """(stamp, accounts, offset of the pickled changes) of a CHANGES payload."""
    (stamp,) = STAMP.unpack_from(payload)
    (count,) = COUNT.unpack_from(payload, STAMP.size)
    start = STAMP.size + COUNT.size
    accounts = tuple(a for (a,) in ACCOUNT.iter_unpack(payload[start : start + count * 4]))
    return stamp, accounts, start + count * ACCOUNT.size


def changes_body(payload: bytes, offset: int) -> list[Change]:
    changes: list[Change] = pickle.loads(memoryview(payload)[offset:])
    return changes


def decode_changes(payload: bytes) -> tuple[int, list[Change]]:
    stamp, _, offset = changes_header(payload)
    return stamp, changes_body(payload, offset)


def object_frame(kind: int, value: Any) -> bytes:
    return frame(kind, pickle.dumps(value, protocol=5))


def decode_object(payload: bytes) -> Any:
    return pickle.loads(payload)


def read_frame(sock: socket.socket) -> tuple[int, bytes] | None:
    """One frame from a blocking socket; None at end of stream."""
    head = _read_exactly(sock, HEADER.size)
    if head is None:
        return None
    size, kind = HEADER.unpack(head)
    payload = _read_exactly(sock, size - 1)
    if payload is None:
        return None
    return kind, payload


def _read_exactly(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


class FrameSender:
    """Blocking, whole-frame sends on one socket from any thread (the SQLite writer
    thread and the loop both send on `up`). After the peer is gone, sends are dropped:
    the master's death ends the worker anyway, and a writer must never fail on it."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(True)
        self._sock = sock
        self._lock = threading.Lock()
        self.broken = False

    def send(self, data: bytes) -> None:
        with self._lock:
            if self.broken:
                return
            try:
                self._sock.sendall(data)
            except OSError:
                self.broken = True

    def close(self) -> None:
        with self._lock:
            self.broken = True
            self._sock.close()


class StampCounter:
    """The last stamp given, an 8-byte integer in memory every worker maps (a memfd the
    master creates and passes). Increments are not atomic by themselves: `next` is only
    called under the SQLite store's cross-process write lock, which serialises them
    (and its fcntl calls order the memory accesses)."""

    SIZE = 8

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._map = mmap.mmap(fd, self.SIZE)

    @classmethod
    def create(cls) -> StampCounter:
        fd = os.memfd_create("pillarbox-stamps", 0)  # not inheritable: passed explicitly
        os.ftruncate(fd, cls.SIZE)
        return cls(fd)

    @property
    def value(self) -> int:
        (value,) = STAMP.unpack_from(self._map)
        return int(value)

    def next(self) -> int:
        value = self.value + 1
        STAMP.pack_into(self._map, 0, value)
        return value

    def close(self) -> None:
        self._map.close()
        os.close(self.fd)
