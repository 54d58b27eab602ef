"""Verified credentials shared by the worker processes (`services.credential_cache.
CredentialStore` in shared memory).

Why: with a store per worker, a client whose connections land on N workers would pay
argon2id N times before the cache helped, and the point of the cache is that a login
costs one argon2id per TTL per password, not per worker.

Theory of operation: a fixed-size set-associative table of (digest, expiry) entries,
`WAYS` entries per set. A digest's set is chosen by its first 8 bytes (digests are
HMAC-SHA256 outputs under a per-start random key: uniformly spread, and nobody without
the key can aim at a set). `contains` scans the set for an entry equal to the whole
digest whose expiry is later than `now`; `add` refreshes the digest's entry, or takes an
empty or expired one, or else evicts the entry that expires soonest (with one TTL for
all, the oldest). So a digest is only ever reported when those exact bytes were added
(digests longer than 32 bytes are stored as their SHA-256; the comparison is of the
whole stored value); an entry can be forgotten early, which costs one more argon2id
verification, never a wrong answer. Times are whatever clock the caller uses
(`time.monotonic()`, the same in every process of the machine).

Memory: 48 bytes per entry (`DEFAULT_SLOTS` 65,536: 3 MiB). Only digests and expiries
are stored, as in the in-process store; the key that made them sits in the same shared
memory (`WorkerShared.credential_key`), readable only by this server's processes.

Must not: await or block (one short critical section on the event loop).
"""

from __future__ import annotations

import hashlib
import struct

from pillarbox.workers.shared_memory import Segment

WAYS = 8
DEFAULT_SLOTS = 65_536
DIGEST_BYTES = 32
_ENTRY = struct.Struct("<B7x32sd")  # digest length (0: empty), digest, expiry
ENTRY_BYTES = _ENTRY.size


def _stored(digest: bytes) -> bytes:
    return digest if len(digest) <= DIGEST_BYTES else hashlib.sha256(digest).digest()


class SharedCredentials:
    """See the module docstring; `slots` is rounded down to a multiple of `WAYS`."""

    def __init__(self, segment: Segment, base: int, slots: int) -> None:
        if slots < WAYS:
            raise ValueError(f"credential table needs at least {WAYS} slots")
        self._segment = segment
        self._base = base
        self._sets = slots // WAYS
        self.size = self._sets * WAYS * ENTRY_BYTES

    def _set_at(self, digest: bytes) -> int:
        home = int.from_bytes(digest[:8].ljust(8, b"\0"), "little") % self._sets
        return self._base + home * WAYS * ENTRY_BYTES

    def contains(self, digest: bytes, now: float) -> bool:
        if not digest:
            return False
        value = _stored(digest)
        at = self._set_at(value)
        with self._segment.locked() as mm:
            for way in range(WAYS):
                length, stored, expires = _ENTRY.unpack_from(mm, at + way * ENTRY_BYTES)
                if length == len(value) and stored[:length] == value:
                    return bool(expires > now)
        return False

    def add(self, digest: bytes, expires: float) -> None:
        if not digest:
            return
        value = _stored(digest)
        at = self._set_at(value)
        with self._segment.locked() as mm:
            victim, soonest = at, float("inf")
            for way in range(WAYS):
                off = at + way * ENTRY_BYTES
                length, stored, held_until = _ENTRY.unpack_from(mm, off)
                if length == len(value) and stored[:length] == value:
                    victim = off
                    break
                if length == 0:
                    held_until = float("-inf")  # empty: the first choice
                if held_until < soonest:
                    victim, soonest = off, held_until
            _ENTRY.pack_into(mm, victim, len(value), value, expires)
