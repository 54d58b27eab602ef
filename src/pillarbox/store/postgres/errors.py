"""What a failure inside the PostgreSQL backend becomes at the store boundary.

Owns the one mapping from asyncpg (and socket) exceptions to `store.errors`. A lost or
refused connection, a server shutting down, too many connections and the like are
`StoreUnavailable` (the front-ends answer `451 4.3.0`, `NO [UNAVAILABLE]`,
`-ERR [SYS/TEMP]`); a unique violation is `AlreadyExists`. Must not: raise, log, or word
anything for a protocol.
"""

from __future__ import annotations

import asyncio

import asyncpg

from pillarbox.store.errors import AlreadyExists, Conflict, StoreUnavailable

# SQLSTATE classes that mean "try again later": 08 connection exception, 53 insufficient
# resources, 57 operator intervention (admin shutdown, cannot connect now), 58 system
# error (I/O), 40 transaction rollback (serialization failure, deadlock: retried first).
_TRANSIENT_CLASSES = ("08", "53", "57", "58", "40")

# SQLSTATEs the store retries itself before giving up: serialization failure, deadlock.
RETRYABLE = frozenset({"40001", "40P01"})


def sqlstate(exc: BaseException) -> str:
    """The SQLSTATE of a server error, or "" for anything else."""
    return str(getattr(exc, "sqlstate", "") or "") if isinstance(exc, asyncpg.PostgresError) else ""


def map_error(exc: BaseException) -> BaseException:
    """asyncpg and socket exceptions become store errors; everything else passes."""
    if isinstance(exc, asyncpg.UniqueViolationError):
        return AlreadyExists(str(exc))
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return Conflict(str(exc))
    code = sqlstate(exc)
    if code == "55000" and "not currently accepting connections" in str(exc):
        # ALTER DATABASE ... ALLOW_CONNECTIONS false: the database is being taken away
        # for maintenance; connecting again later will work.
        return StoreUnavailable(f"database unavailable: {exc}")
    if code.startswith(_TRANSIENT_CLASSES):
        return StoreUnavailable(f"database unavailable: {exc}")
    if isinstance(
        exc,
        (
            asyncpg.InterfaceError,  # connection closed under us, pool closing
            asyncpg.exceptions.ConnectionDoesNotExistError,
            ConnectionError,
            OSError,
            asyncio.TimeoutError,
        ),
    ):
        return StoreUnavailable(f"database unavailable: {exc}")
    return exc
