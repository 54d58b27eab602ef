"""Verified credentials: the idea of Dovecot's `auth_cache`, without keeping a password.

Why: every login otherwise runs argon2id (64 MiB, t=3, p=4: ~0.27 s of both cores), so a
client that reconnects for each check of its mail costs the machine more than all its
mail does. After one successful argon2id verification, `AuthService` remembers a keyed
digest of the credentials; a later login whose digest is remembered (and not expired)
skips argon2id.

What is remembered: HMAC-SHA256(key, account id ‖ the account's stored password hash
string ‖ password). The stored hash embeds its salt, and `AuthService` reads the
account's current row on every login anyway (for the throttles and to know the account
exists), so a password change (a new hash) or the account's removal (no row) makes every
remembered digest of it unreachable at once, in every worker and on every node, without
any message. Failed attempts are never remembered. The key is random per server start
(made by the master and shared with its workers when there are several), never stored.

The store of digests is a Protocol so that several worker processes can share one
(`workers/credentials.py`, in shared memory); `LocalCredentialStore` is the in-process
one. Times are `time.monotonic()` seconds: system-wide on Linux, so comparable between
the processes of one machine, and immune to wall-clock steps (a clock set back must not
stretch a TTL). Digests never leave the machine.

Must not: hold a password or anything from which one follows without a guessing attack
(see docs/design.md, "Verified-credentials cache", for what memory access gives).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

# Bound of the in-process store: 48 bytes of digest and float per entry plus the
# dictionary's overhead, ~20 MB at the bound; the oldest entry goes first.
DEFAULT_MAX_ENTRIES = 100_000
KEY_BYTES = 32


class CredentialStore(Protocol):
    """A bounded set of digests, each with its expiry (`time.monotonic()` seconds)."""

    def contains(self, digest: bytes, now: float) -> bool:
        """Whether `digest` was added and its expiry is later than `now`."""
        ...

    def add(self, digest: bytes, expires: float) -> None:
        """Remember `digest` until `expires` (a store may forget it earlier to stay
        within its bound: a forgotten digest only costs one more argon2id check)."""
        ...


class LocalCredentialStore:
    """The digests of one process: insertion-ordered, so the oldest goes first when the
    bound is reached (its expiry is the nearest, as every entry has the same TTL)."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max = max_entries
        self._entries: OrderedDict[bytes, float] = OrderedDict()

    def contains(self, digest: bytes, now: float) -> bool:
        expires = self._entries.get(digest)
        if expires is None:
            return False
        if expires <= now:
            del self._entries[digest]
            return False
        return True

    def add(self, digest: bytes, expires: float) -> None:
        self._entries.pop(digest, None)  # re-added: now the newest
        self._entries[digest] = expires
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


def new_key() -> bytes:
    """A fresh random HMAC key (one per server start)."""
    return secrets.token_bytes(KEY_BYTES)


class CredentialCache:
    """The policy over a `CredentialStore`: what is hashed, and for how long.

    `ttl` seconds (0 turns the cache off: `verified` is always False and `remember`
    does nothing)."""

    def __init__(
        self,
        store: CredentialStore,
        key: bytes,
        ttl: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if len(key) < 16:
            raise ValueError("the credential key must be at least 16 bytes")
        self._store = store
        self._key = key
        self.ttl = ttl
        self._clock = clock

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    def digest(self, account_id: int, password_hash: str, password: str) -> bytes:
        """HMAC-SHA256 over the three parts, each length-prefixed so that no two
        different triples give the same message."""
        mac = hmac.new(self._key, digestmod=hashlib.sha256)
        for part in (str(account_id).encode(), password_hash.encode(), password.encode()):
            mac.update(struct.pack(">I", len(part)))
            mac.update(part)
        return mac.digest()

    def verified(self, account_id: int, password_hash: str, password: str) -> bool:
        """Whether these exact credentials were verified within the TTL."""
        if not self.enabled:
            return False
        digest = self.digest(account_id, password_hash, password)
        return self._store.contains(digest, self._clock())

    def remember(self, account_id: int, password_hash: str, password: str) -> None:
        """These credentials passed argon2id just now."""
        if not self.enabled:
            return
        digest = self.digest(account_id, password_hash, password)
        self._store.add(digest, self._clock() + self.ttl)
