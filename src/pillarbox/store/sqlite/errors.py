"""What a failure inside the SQLite backend becomes at the store boundary.

Owns the one mapping from sqlite3 (and file-system) exceptions to `store.errors`, used
by the writer, the readers and the store's plumbing alike. Must not: raise, log, or
word anything for a protocol; a caller sees only `store.errors` exceptions.
"""

from __future__ import annotations

import sqlite3

from pillarbox.store.errors import AlreadyExists, Conflict, StoreUnavailable


def map_error(exc: BaseException) -> BaseException:
    """sqlite3 exceptions become store errors; everything else passes unchanged."""
    if isinstance(exc, sqlite3.IntegrityError):
        text = str(exc)
        if "UNIQUE" in text or "PRIMARY KEY" in text:
            return AlreadyExists(text)
        return Conflict(text)
    if isinstance(exc, sqlite3.DatabaseError):  # locked, busy, disk I/O, full, corrupt
        return StoreUnavailable(str(exc))
    if isinstance(exc, OSError):
        return StoreUnavailable(str(exc))
    return exc
