"""`WorkerShared`: the state the worker processes of one server share in memory.

The master creates it before starting the workers (`WorkerShared.create`), hands each
worker the descriptor (`pass_fds=shared.pass_fds`, `handle.encode()` on its command
line), and each worker attaches as worker i (`WorkerShared.attach(handle, i)`). A
worker gets from it: the connection caps of each listener (`caps_for`, a
`server.listener.ConnectionCaps`), the sessions per account (`account_sessions`, a
`services.account_sessions.SessionCounts`), the verified credentials (`credentials`, a
`services.credential_cache.CredentialStore`) and the key their digests are made with
(`credential_key`, 32 random bytes per server start). When worker i dies the master
calls `drop_worker(i)` before starting its replacement: the connections and sessions it
held are no longer counted. Verified credentials are not per worker and stay.

Layout (fixed at creation, see `Layout`): a header page (magic, sizes, the credential
key, the table hash key, the listener names), then the per-listener totals, the
connection table, the session table and the credential table. With the defaults and 2
workers it is about 4 MiB, mapped once by each process.

Must not: be imported by services or front-ends (they know their Protocols; app.py
wires this in).
"""

from __future__ import annotations

import secrets
import struct
import time
from dataclasses import dataclass

from pillarbox.workers.counts import (
    CountTable,
    SharedConnectionCaps,
    SharedSessionCounts,
    Totals,
)
from pillarbox.workers.credentials import DEFAULT_SLOTS as DEFAULT_CREDENTIAL_SLOTS
from pillarbox.workers.credentials import ENTRY_BYTES, SharedCredentials
from pillarbox.workers.shared_memory import Segment, SegmentHandle

MAGIC = b"PBXSHM01"
MAX_LISTENERS = 32
NAME_BYTES = 32
# Connections and sessions: entries with a live count are bounded by the total caps
# (`max_connections` per listener); the tables have room for several times that, so a
# full probe window stays a rare accident (counts.py says what happens then).
DEFAULT_CAP_SLOTS = 32_768
DEFAULT_SESSION_SLOTS = 16_384
_HEADER = struct.Struct("<8s4I32s16s")  # magic, workers, 3 table sizes, keys
_NAMES_AT = 128
HEADER_BYTES = 4096


@dataclass(frozen=True, slots=True)
class Layout:
    """Where each region is, from the sizes in the header."""

    workers: int
    cap_slots: int
    session_slots: int
    credential_slots: int

    def regions(self) -> tuple[Totals, CountTable, CountTable, int, int]:
        """(totals, connection table, session table, credentials' offset, end)."""
        totals = Totals(HEADER_BYTES, MAX_LISTENERS, self.workers)
        caps = CountTable(totals.base + totals.size, self.cap_slots, self.workers, bucket=True)
        sessions = CountTable(caps.base + caps.size, self.session_slots, self.workers, bucket=False)
        credentials_at = sessions.base + sessions.size
        end = credentials_at + self.credential_slots * ENTRY_BYTES
        return totals, caps, sessions, credentials_at, end


class WorkerShared:
    """See the module docstring. `worker` is None in the master."""

    def __init__(self, segment: Segment, worker: int | None) -> None:
        magic, workers, cap_slots, session_slots, credential_slots, key, hash_key = (
            _HEADER.unpack_from(segment.memory, 0)
        )
        if magic != MAGIC:
            raise ValueError("shared memory: not a Pillarbox segment")
        if worker is not None and not 0 <= worker < workers:
            raise ValueError(f"worker index {worker} outside 0..{workers - 1}")
        self._segment = segment
        self.workers = int(workers)
        self.worker = worker
        self.credential_key = bytes(key)
        self._hash_key = bytes(hash_key)
        layout = Layout(self.workers, cap_slots, session_slots, credential_slots)
        self._totals, self._caps, self._sessions, credentials_at, _ = layout.regions()
        self.credentials = SharedCredentials(segment, credentials_at, credential_slots)
        self.account_sessions = SharedSessionCounts(
            segment, self._sessions, self._hash_key, worker=worker if worker is not None else 0
        )

    @classmethod
    def create(
        cls,
        workers: int,
        *,
        cap_slots: int = DEFAULT_CAP_SLOTS,
        session_slots: int = DEFAULT_SESSION_SLOTS,
        credential_slots: int = DEFAULT_CREDENTIAL_SLOTS,
    ) -> WorkerShared:
        """The master's: a new segment for `workers` workers, with fresh random keys."""
        if workers < 1:
            raise ValueError("workers must be at least 1")
        credential_slots -= credential_slots % 8
        layout = Layout(workers, cap_slots, session_slots, credential_slots)
        segment = Segment.create(layout.regions()[4])
        try:
            _HEADER.pack_into(
                segment.memory,
                0,
                MAGIC,
                workers,
                cap_slots,
                session_slots,
                credential_slots,
                secrets.token_bytes(32),
                secrets.token_bytes(16),
            )
            return cls(segment, None)
        except BaseException:
            segment.close()
            raise

    @classmethod
    def attach(cls, handle: SegmentHandle | str, worker: int) -> WorkerShared:
        """Worker `worker`'s view of the segment whose descriptor it inherited."""
        if isinstance(handle, str):
            handle = SegmentHandle.decode(handle)
        segment = Segment.attach(handle)
        try:
            return cls(segment, worker)
        except BaseException:
            segment.close()
            raise

    @property
    def handle(self) -> SegmentHandle:
        return self._segment.handle

    @property
    def pass_fds(self) -> tuple[int]:
        """For `subprocess.Popen(pass_fds=...)`: the descriptor a worker inherits."""
        return (self._segment.fd,)

    def caps_for(
        self, listener: str, *, max_connections: int, max_per_ip: int, rate_per_ip: int
    ) -> SharedConnectionCaps:
        """The connection caps of `listener` (by name: the same in every worker)."""
        if self.worker is None:
            raise RuntimeError("the master serves no connections")
        return SharedConnectionCaps(
            self._segment,
            self._totals,
            self._caps,
            self._hash_key,
            listener=self._listener_slot(listener),
            worker=self.worker,
            max_connections=max_connections,
            max_per_ip=max_per_ip,
            rate_per_ip=rate_per_ip,
        )

    def _listener_slot(self, name: str) -> int:
        encoded = name.encode()
        if not 0 < len(encoded) <= NAME_BYTES:
            raise ValueError(f"listener name {name!r}: 1 to {NAME_BYTES} bytes")
        entry = encoded.ljust(NAME_BYTES, b"\0")
        with self._segment.locked() as mm:
            for slot in range(MAX_LISTENERS):
                at = _NAMES_AT + slot * NAME_BYTES
                held = mm[at : at + NAME_BYTES]
                if held == entry:
                    return slot
                if held == bytes(NAME_BYTES):
                    mm[at : at + NAME_BYTES] = entry
                    return slot
        raise ValueError(f"more than {MAX_LISTENERS} listeners")

    def drop_worker(self, worker: int) -> None:
        """Worker `worker` died: forget the connections and sessions it held (the
        master's, before the replacement attaches)."""
        if not 0 <= worker < self.workers:
            raise ValueError(f"worker index {worker} outside 0..{self.workers - 1}")
        now = time.monotonic()
        with self._segment.locked() as mm:
            self._totals.drop_worker(mm, MAX_LISTENERS, worker)
            self._caps.drop_worker(mm, worker, now)
            self._sessions.drop_worker(mm, worker, now)

    def close(self) -> None:
        """Unmap (the memory goes when the last process has closed it)."""
        self._segment.close()
