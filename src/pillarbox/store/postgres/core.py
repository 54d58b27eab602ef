"""The base of `PgStore`: lifecycle, the connection pool, transactions and notifies.

Owns what every concern of the backend stands on: opening and closing the pool
(migrating the schema first), the two ways to run SQL (`_write`: one transaction whose
changes are NOTIFYed inside it and published on this node's bus after its commit;
`_read`: a pooled connection, optionally inside one REPEATABLE READ snapshot), and the
mailbox lock helper every multi-mailbox write uses so that nodes never deadlock.

Theory of operation (docs/design.md, "PostgreSQL and several nodes"):
  * Each contract method is one transaction on a pool connection; PostgreSQL groups
    the WAL flushes of concurrent commits itself, so there is no writer thread.
  * A connection goes back to the pool without asyncpg's default reset query
    (`pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`), one more round trip
    per operation (4 of the 8 of a login): the store leaves no session state on pool
    connections (LISTEN is on the relay's own connection, cursors and `SET LOCAL` end
    with their transaction, the janitor unlocks its advisory lock or drops the
    connection). asyncpg still rolls back a transaction left open and drops listeners.
  * Serialization failures and deadlocks (40001, 40P01) are retried here, up to
    `RETRIES` times, then surface as `StoreUnavailable`.
  * Every change an operation records in `PgTx.changes` is (1) sent with `pg_notify`
    inside the transaction — PostgreSQL delivers it only on commit, in commit order,
    never for a rollback — as a small payload (`bus.encode`) other nodes turn back into
    events by reading the details by MODSEQ; and (2) published on this node's own bus
    right after the commit, with its full rows, so local sessions need no query.

The concerns are mixins in modules of their own; `PgStore` in `__init__` composes them.
Must not: hold SQL of any concern, let an asyncpg exception escape (they become
`store.errors`), or import a mixin or the composed class.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from pillarbox.model import Change
from pillarbox.store.api import ChangeBus
from pillarbox.store.changes import InProcessChangeBus
from pillarbox.store.errors import StoreUnavailable
from pillarbox.store.postgres import notify, schema
from pillarbox.store.postgres.errors import RETRYABLE, map_error, sqlstate

log = logging.getLogger("pillarbox.store")
T = TypeVar("T")
# A connection as an operation sees it: pooled, or (migrations, the listener) direct.
Conn = asyncpg.Connection | PoolConnectionProxy
Isolation = Literal["read_committed", "repeatable_read", "serializable"]

RETRIES = 3
CLOSE_TIMEOUT = 10.0  # seconds `close` waits for connections in use
POOL_MIN = 2
POOL_MAX = 20


def default_node_id() -> str:
    """This node's name when none is configured: the machine's host name."""
    return socket.gethostname()


async def _keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset on release: nothing beyond asyncpg's own rollback of an open
    transaction (see the module docstring: no session state to undo)."""
    return None


@dataclass(slots=True)
class PgTx:
    """What an operation sees inside `_write`: its connection and the changes it made,
    which are notified and published only if the transaction commits."""

    conn: Conn
    changes: list[Change] = field(default_factory=list)


class PgCore:
    """Lifecycle and plumbing of the PostgreSQL store (see the module docstring)."""

    def __init__(
        self,
        dsn: str,
        *,
        bus: ChangeBus | None = None,
        node_id: str = "",
        pool_min: int = POOL_MIN,
        pool_max: int = POOL_MAX,
        statement_cache_size: int = 100,
        server: bool = True,
    ) -> None:
        """`bus` receives every committed change (this node's); without one (the CLI)
        the store keeps an in-process bus of its own. `node_id` names this node in
        claims, leases and notifications; `server`: False when the CLI opens the store
        beside running nodes (it then runs no periodic jobs)."""
        self.dsn = dsn
        self.node_id = node_id or default_node_id()
        self._server = server
        self._pool_min, self._pool_max = pool_min, max(pool_min, pool_max)
        self._statement_cache_size = statement_cache_size
        self._pool: asyncpg.Pool | None = None
        self._given_bus = bus
        self._bus: ChangeBus = bus if bus is not None else InProcessChangeBus()

    @property
    def bus(self) -> ChangeBus:
        """Where this store publishes its changes."""
        return self._bus

    # --- lifecycle -------------------------------------------------------------------
    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            conn = await asyncpg.connect(self.dsn, timeout=10)
        except Exception as exc:
            raise map_error(exc) from exc
        try:
            await schema.migrate(conn)
        except Exception as exc:
            raise map_error(exc) from exc
        finally:
            await conn.close()
        try:
            self._pool = await asyncpg.create_pool(
                self.dsn,
                min_size=self._pool_min,
                max_size=self._pool_max,
                max_inactive_connection_lifetime=300,
                statement_cache_size=self._statement_cache_size,
                timeout=10,
                reset=_keep_session,
            )
        except Exception as exc:
            raise map_error(exc) from exc
        if self._given_bus is None:
            self._bus = InProcessChangeBus()  # a fresh one after a close

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            # pool.close() waits for every connection to come back; one held by an
            # operation that cannot finish (its server gone quiet) must not hold up a
            # node's shutdown for ever.
            await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT)
        except Exception:  # TimeoutError included
            log.warning("store: connections still in use at close after %gs", CLOSE_TIMEOUT)
            pool.terminate()
        if self._given_bus is None:
            self._bus.close()

    # --- plumbing --------------------------------------------------------------------
    def _the_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreUnavailable("store is not open")
        return self._pool

    async def _write(
        self,
        fn: Callable[[PgTx], Awaitable[T]],
        *,
        isolation: Isolation = "read_committed",
    ) -> T:
        """Run `fn` in one transaction; notify its changes inside it, publish them on
        this node's bus after the commit, retry serialization failures and deadlocks."""
        pool = self._the_pool()
        attempt = 0
        while True:
            attempt += 1
            try:
                async with pool.acquire() as conn:
                    tx = PgTx(conn)
                    async with conn.transaction(isolation=isolation):
                        result = await fn(tx)
                        if tx.changes:
                            await notify.send(conn, self.node_id, tx.changes)
                    # Published before the connection goes back to the pool (an await):
                    # nothing runs between this commit's return and its publication,
                    # so concurrent local commits are published in the order they end.
                    if tx.changes:
                        self._bus.publish(tx.changes)
                return result
            except Exception as exc:
                if sqlstate(exc) in RETRYABLE and attempt <= RETRIES:
                    continue
                raise map_error(exc) from exc

    async def _read(self, fn: Callable[[Conn], Awaitable[T]], *, snapshot: bool = False) -> T:
        """Run `fn` on a pooled connection; `snapshot`: inside one REPEATABLE READ READ
        ONLY transaction, so several queries see one consistent state (SELECT's counts
        and its rows, STATUS)."""
        pool = self._the_pool()
        try:
            async with pool.acquire() as conn:
                if not snapshot:
                    return await fn(conn)
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    return await fn(conn)
        except Exception as exc:
            raise map_error(exc) from exc

    @staticmethod
    async def _lock_mailboxes(conn: Conn, ids: list[int]) -> None:
        """Lock the rows of mailboxes `ids` in id order. Every write that touches more
        than one mailbox takes its locks through here first, so two nodes moving mail
        A→B and B→A wait for each other instead of deadlocking (then accounts, in id
        order, through the triggers' quota updates)."""
        if ids:
            await conn.execute(
                "SELECT 1 FROM mailboxes WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE",
                sorted(set(ids)),
            )
