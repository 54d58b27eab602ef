"""Connection caps and sessions per account, counted in the workers' shared memory.

Why: each worker counting its own connections would let a client hold N times
`max_connections_per_ip` (and the server N times `max_connections`), and an account N
times `max_connections_per_account`. These classes keep the counts where every worker
sees them (`shared_memory.Segment`) and satisfy the Protocols the listener and the
services define (`server.listener.ConnectionCaps`, `services.account_sessions.
SessionCounts`) without importing them (this package sits beside those layers).

Theory of operation:
  * Per-worker columns: every count is an array of one int32 per worker, and a worker
    only ever changes its own column. The total is the sum of the columns. When a worker
    dies the master zeroes its column (`drop_worker`), which frees exactly the
    connections and sessions it held, whatever state it died in.
  * Open addressing with a bounded probe: an entry's key is a keyed 128-bit BLAKE2b
    hash of (kind, listener, address) or (account, address); its home slot is the hash
    modulo the table size, and a lookup scans `PROBE` slots from there (all of them: a
    cleared slot never ends a search, so entries are simply cleared, no tombstones). The
    hash key is random per server start, so nobody can choose addresses that collide.
  * The token bucket of `connection_rate_per_ip` lives in the connection entry (tokens,
    time of the last update, and when it will be full again), with `time.monotonic()`,
    which is system-wide on Linux and so the same clock in every worker. An entry with
    no connection and a full bucket says nothing and may be reused; with no free slot,
    the bucket closest to full is reused (its address is treated a little leniently).
  * Full: when all `PROBE` slots of a key hold live connections, the address is not
    tracked and the per-address caps *fail open* for that connection (the total cap,
    kept apart from the table, still holds). Why not refuse: the table has room for
    several times the connections the total caps allow, the keyed hash makes a full
    window a matter of chance an attacker cannot steer, and refusing would turn away
    whoever shares the window with busy addresses. An untracked connection is remembered
    by its worker (in process memory) so its release does not touch another entry.

Must not: await or block (each operation is one short critical section on the event
loop), or change another worker's column (except `drop_worker`, run by the master).
"""

from __future__ import annotations

import hashlib
import logging
import mmap
import struct
import time
from collections import Counter

from pillarbox.workers.shared_memory import Segment

log = logging.getLogger("pillarbox.workers")

PROBE = 16  # slots scanned per key
REFUSED = "too many connections"  # as server.listener says it (the refusal log's reason)
KEY_BYTES = 16
_ZERO_KEY = bytes(KEY_BYTES)
_INT = struct.Struct("<i")
_BUCKET = struct.Struct("<ddd")  # tokens, last update, full again at


def table_key(hash_key: bytes, *parts: bytes) -> bytes:
    """The 128-bit keyed hash of `parts` (length-prefixed, so no two tuples collide by
    concatenation); never all zero (that marks a free slot)."""
    h = hashlib.blake2b(digest_size=KEY_BYTES, key=hash_key)
    for part in parts:
        h.update(len(part).to_bytes(2, "little"))
        h.update(part)
    key = h.digest()
    return key if key != _ZERO_KEY else b"\x01" + key[1:]


class CountTable:
    """A fixed-size table of per-worker counts (and, with `bucket`, a token bucket) at
    `base` in the shared memory; every method expects the segment's lock held."""

    def __init__(self, base: int, slots: int, workers: int, *, bucket: bool) -> None:
        self.base = base
        self.slots = slots
        self.workers = workers
        self.bucket = bucket
        self.counts_at = KEY_BYTES + (_BUCKET.size if bucket else 0)
        self.entry_size = -(-(self.counts_at + 4 * workers) // 8) * 8
        self.size = (slots + PROBE - 1) * self.entry_size
        self._counts = struct.Struct(f"<{workers}i")

    def _window(self, key: bytes) -> range:
        """The offsets of `key`'s probe window (the table is padded by `PROBE - 1`
        slots past its end, so a window never wraps)."""
        start = self.base + int.from_bytes(key[:8], "little") % self.slots * self.entry_size
        return range(start, start + PROBE * self.entry_size, self.entry_size)

    def find(self, mm: mmap.mmap, key: bytes) -> int | None:
        """The offset of `key`'s entry, or None."""
        for off in self._window(key):
            if mm[off : off + KEY_BYTES] == key:
                return off
        return None

    def claim(self, mm: mmap.mmap, key: bytes, now: float) -> tuple[int | None, bool]:
        """(offset of `key`'s entry, whether it is new); (None, False) when full."""
        free: int | None = None
        spare: int | None = None  # no live count; the bucket nearest to full
        spare_full_at = 0.0
        for off in self._window(key):
            held = mm[off : off + KEY_BYTES]
            if held == key:
                return off, False
            if held == _ZERO_KEY:
                if free is None:
                    free = off
            elif free is None and not any(self.counts(mm, off)):
                full_at = _BUCKET.unpack_from(mm, off + KEY_BYTES)[2] if self.bucket else 0.0
                if full_at <= now:
                    free = off  # says nothing any more
                elif spare is None or full_at < spare_full_at:
                    spare, spare_full_at = off, full_at
        taken = free if free is not None else spare
        if taken is None:
            return None, False
        mm[taken : taken + self.entry_size] = key + bytes(self.entry_size - KEY_BYTES)
        return taken, True

    def counts(self, mm: mmap.mmap, off: int) -> tuple[int, ...]:
        return self._counts.unpack_from(mm, off + self.counts_at)

    def add(self, mm: mmap.mmap, off: int, worker: int, delta: int) -> None:
        at = off + self.counts_at + 4 * worker
        _INT.pack_into(mm, at, max(0, _INT.unpack_from(mm, at)[0] + delta))

    def clear_if_idle(self, mm: mmap.mmap, off: int, now: float) -> None:
        """Free the entry if it no longer says anything."""
        if any(self.counts(mm, off)):
            return
        if self.bucket and _BUCKET.unpack_from(mm, off + KEY_BYTES)[2] > now:
            return
        mm[off : off + KEY_BYTES] = _ZERO_KEY

    def drop_worker(self, mm: mmap.mmap, worker: int, now: float) -> None:
        for off in range(self.base, self.base + self.size, self.entry_size):
            if mm[off : off + KEY_BYTES] != _ZERO_KEY:
                _INT.pack_into(mm, off + self.counts_at + 4 * worker, 0)
                self.clear_if_idle(mm, off, now)


class Totals:
    """Connections per listener and worker (`listeners` rows of `workers` int32)."""

    def __init__(self, base: int, listeners: int, workers: int) -> None:
        self.base = base
        self.workers = workers
        self.size = listeners * workers * 4
        self._row = struct.Struct(f"<{workers}i")

    def total(self, mm: mmap.mmap, listener: int) -> int:
        return sum(self._row.unpack_from(mm, self.base + listener * self.workers * 4))

    def add(self, mm: mmap.mmap, listener: int, worker: int, delta: int) -> None:
        at = self.base + (listener * self.workers + worker) * 4
        _INT.pack_into(mm, at, max(0, _INT.unpack_from(mm, at)[0] + delta))

    def drop_worker(self, mm: mmap.mmap, listeners: int, worker: int) -> None:
        for listener in range(listeners):
            _INT.pack_into(mm, self.base + (listener * self.workers + worker) * 4, 0)


class SharedConnectionCaps:
    """`server.listener.ConnectionCaps` for one listener of one worker: the same checks
    in the same order as `LocalConnectionCaps` (total, per address, rate), counted for
    all workers."""

    def __init__(
        self,
        segment: Segment,
        totals: Totals,
        table: CountTable,
        hash_key: bytes,
        *,
        listener: int,
        worker: int,
        max_connections: int,
        max_per_ip: int,
        rate_per_ip: int,
    ) -> None:
        self._segment = segment
        self._totals = totals
        self._table = table
        self._hash_key = hash_key
        self._listener = listener
        self._listener_tag = listener.to_bytes(2, "little")
        self._worker = worker
        self.max_connections = max_connections
        self.max_per_ip = max_per_ip
        self.rate = float(rate_per_ip)
        self._untracked: Counter[str] = Counter()
        self._warned = False

    def _key(self, ip: str) -> bytes:
        return table_key(self._hash_key, b"c", self._listener_tag, ip.encode())

    def admit(self, ip: str) -> str | None:
        key = self._key(ip)
        now = time.monotonic()
        table, worker = self._table, self._worker
        with self._segment.locked() as mm:
            if self._totals.total(mm, self._listener) >= self.max_connections:
                return REFUSED
            off, new = table.claim(mm, key, now)
            if off is None:
                self._untracked[ip] += 1
                self._totals.add(mm, self._listener, worker, 1)
                full = True
            else:
                full = False
                if sum(table.counts(mm, off)) >= self.max_per_ip:
                    return REFUSED
                if self.rate > 0 and not self._take_token(mm, off, new, now):
                    return REFUSED
                table.add(mm, off, worker, 1)
                self._totals.add(mm, self._listener, worker, 1)
        if full and not self._warned:
            self._warned = True
            log.warning("connection table full: per-address caps not applied to some")
        return None

    def _take_token(self, mm: mmap.mmap, off: int, new: bool, now: float) -> bool:
        at = off + KEY_BYTES
        if new:
            tokens = self.rate
        else:
            tokens, last, _ = _BUCKET.unpack_from(mm, at)
            tokens = min(self.rate, tokens + (now - last) * self.rate / 60.0)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        _BUCKET.pack_into(mm, at, tokens, now, now + (self.rate - tokens) * 60.0 / self.rate)
        return allowed

    def release(self, ip: str) -> None:
        untracked = self._untracked.get(ip, 0)
        if untracked:
            if untracked == 1:
                del self._untracked[ip]
            else:
                self._untracked[ip] = untracked - 1
        key = self._key(ip)
        now = time.monotonic()
        with self._segment.locked() as mm:
            self._totals.add(mm, self._listener, self._worker, -1)
            if untracked:
                return
            off = self._table.find(mm, key)
            if off is not None:
                self._table.add(mm, off, self._worker, -1)
                self._table.clear_if_idle(mm, off, now)

    def active(self) -> int:
        """Connections to this listener in all workers (for tests and diagnostics)."""
        with self._segment.locked() as mm:
            return self._totals.total(mm, self._listener)


class SharedSessionCounts:
    """`services.account_sessions.SessionCounts` for one worker, counted for all."""

    def __init__(
        self, segment: Segment, table: CountTable, hash_key: bytes, *, worker: int
    ) -> None:
        self._segment = segment
        self._table = table
        self._hash_key = hash_key
        self._worker = worker
        self._untracked: Counter[tuple[int, str]] = Counter()

    def _key(self, account_id: int, ip: str) -> bytes:
        return table_key(self._hash_key, b"s", account_id.to_bytes(8, "little"), ip.encode())

    def try_acquire(self, account_id: int, ip: str, limit: int) -> bool:
        key = self._key(account_id, ip)
        with self._segment.locked() as mm:
            off, _ = self._table.claim(mm, key, time.monotonic())
            if off is None:  # full: fails open, as the connection caps do
                self._untracked[(account_id, ip)] += 1
                return True
            if limit and sum(self._table.counts(mm, off)) >= limit:
                return False
            self._table.add(mm, off, self._worker, 1)
            return True

    def release(self, account_id: int, ip: str) -> None:
        pair = (account_id, ip)
        if self._untracked.get(pair, 0):
            self._untracked[pair] -= 1
            if self._untracked[pair] <= 0:
                del self._untracked[pair]
            return
        key = self._key(account_id, ip)
        with self._segment.locked() as mm:
            off = self._table.find(mm, key)
            if off is not None:
                self._table.add(mm, off, self._worker, -1)
                self._table.clear_if_idle(mm, off, 0.0)

    def held(self, account_id: int, ip: str) -> int:
        """Sessions of the account from `ip` in all workers (tests, diagnostics)."""
        key = self._key(account_id, ip)
        with self._segment.locked() as mm:
            off = self._table.find(mm, key)
            return 0 if off is None else sum(self._table.counts(mm, off))
