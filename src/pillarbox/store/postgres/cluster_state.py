"""PostgreSQL: the state the nodes share — POP3 maildrop leases, login-failure records,
webmail sessions (tables of pg_0002_cluster_state.sql).

Theory of operation (docs/plans/issue-17-postgres.md §4):
  * A POP3 lock is a lease row `pop_locks(account_id, holder, until)`. Taking it is one
    upsert that only overwrites the row when it is the same holder's (a renewal) or has
    expired, so two nodes racing for a maildrop get one lock between them, and no pool
    connection is held for the length of a POP3 session. A node that dies stops renewing;
    its leases expire and the maildrop is free again.
  * A login-failure record is first read without a lock or transaction: when the
    service's pure update function leaves it as it is (the common successful login: no
    record for the address, the account's record already trusting it), that is the
    answer, with no write and no row lock (a lock assigns a transaction id, so its commit
    waits for a WAL flush). Otherwise it is read `FOR UPDATE`, handed to the function
    again, and written back in the same transaction: concurrent attempts on one account,
    from any node, run one after the other and so reserve distinct slots. The
    first record of a key is inserted `ON CONFLICT DO NOTHING`; losing that race means
    another node inserted it first, and the step runs again on its row.
  * Webmail sessions are rows keyed by the sha256 of the session id; deleting an account
    deletes its sessions (foreign key).
Leases are judged by this node's clock (`time.time()`), like every lease of the backend.

Must not: decide policy (delays, idle limits): the services do; this only stores.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import asyncpg

from pillarbox.model.cluster import LoginState, WebSessionRecord
from pillarbox.store.errors import StoreUnavailable
from pillarbox.store.postgres.core import Conn, PgCore, PgTx

T = TypeVar("T")

# How often a login-state step runs again after losing the race to create its row: one
# retry finds the row; more would mean something else is wrong.
_INSERT_RACES = 5


_SELECT_LOGIN_STATE = (
    "SELECT failures, last_failure, next_allowed, trusted_ips, trusted_at, expires"
    " FROM login_failures WHERE key = $1::text"
)


class _LostInsertRace(Exception):
    """Another transaction created the record first; run the step again on its row."""


def _login_state(row: asyncpg.Record | None) -> LoginState | None:
    if row is None:
        return None
    return LoginState(
        failures=row["failures"],
        last_failure=row["last_failure"],
        next_allowed=row["next_allowed"],
        trusted=tuple(zip(row["trusted_ips"], row["trusted_at"], strict=True)),
        expires=row["expires"],
    )


def _web_session(row: asyncpg.Record | None) -> WebSessionRecord | None:
    if row is None:
        return None
    return WebSessionRecord(
        row["id_hash"], row["account_id"], row["csrf"], row["created"], row["last_seen"]
    )


class ClusterStateMixin(PgCore):
    """POP3 leases, login-failure records and webmail sessions on PostgreSQL."""

    # --- POP3 maildrop leases (RFC 1939 §4) ---------------------------------------------
    async def lock_maildrop(self, account_id: int, holder: str, until: float) -> bool:
        async def op(tx: PgTx) -> bool:
            got = await tx.conn.fetchval(
                "INSERT INTO pop_locks AS l (account_id, holder, until)"
                " VALUES ($1::bigint, $2::text, $3::float8)"
                " ON CONFLICT (account_id) DO UPDATE"
                " SET holder = EXCLUDED.holder, until = EXCLUDED.until"
                " WHERE l.holder = EXCLUDED.holder OR l.until < $4::float8"
                " RETURNING true",
                account_id,
                holder,
                until,
                time.time(),
            )
            return bool(got)

        return await self._write(op)

    async def unlock_maildrop(self, account_id: int, holder: str) -> None:
        async def op(tx: PgTx) -> None:
            await tx.conn.execute(
                "DELETE FROM pop_locks WHERE account_id = $1::bigint AND holder = $2::text",
                account_id,
                holder,
            )

        await self._write(op)

    # --- login-failure records ------------------------------------------------------------
    async def update_login_state(
        self, key: str, update: Callable[[LoginState | None], tuple[LoginState | None, T]]
    ) -> T:
        async def peek(conn: Conn) -> LoginState | None:
            return _login_state(await conn.fetchrow(_SELECT_LOGIN_STATE, key))

        current = await self._read(peek)
        unchanged, result = update(current)
        if unchanged == current:  # nothing to write: a read, no lock, no commit
            return result

        async def op(tx: PgTx) -> T:
            row = await tx.conn.fetchrow(_SELECT_LOGIN_STATE + " FOR UPDATE", key)
            state = _login_state(row)
            new, result = update(state)
            if new == state:
                return result
            if new is None:
                await tx.conn.execute("DELETE FROM login_failures WHERE key = $1::text", key)
                return result
            values = (
                key,
                new.failures,
                new.last_failure,
                new.next_allowed,
                [ip for ip, _ in new.trusted],
                [at for _, at in new.trusted],
                new.expires,
            )
            if row is not None:
                await tx.conn.execute(
                    "UPDATE login_failures SET failures = $2::integer,"
                    " last_failure = $3::float8, next_allowed = $4::float8,"
                    " trusted_ips = $5::text[], trusted_at = $6::float8[], expires = $7::float8"
                    " WHERE key = $1::text",
                    *values,
                )
                return result
            status = await tx.conn.execute(
                "INSERT INTO login_failures (key, failures, last_failure, next_allowed,"
                " trusted_ips, trusted_at, expires) VALUES ($1::text, $2::integer,"
                " $3::float8, $4::float8, $5::text[], $6::float8[], $7::float8)"
                " ON CONFLICT (key) DO NOTHING",
                *values,
            )
            if status.endswith(" 0"):
                raise _LostInsertRace()
            return result

        for _ in range(_INSERT_RACES):
            try:
                return await self._write(op)
            except _LostInsertRace:
                continue
        raise StoreUnavailable(f"login state {key!r}: lost the insert race repeatedly")

    # --- webmail sessions -------------------------------------------------------------------
    async def add_web_session(self, record: WebSessionRecord) -> None:
        async def op(tx: PgTx) -> None:
            await tx.conn.execute(
                "INSERT INTO web_sessions (id_hash, account_id, csrf, created, last_seen)"
                " VALUES ($1::text, $2::bigint, $3::text, $4::float8, $5::float8)",
                record.id_hash,
                record.account_id,
                record.csrf,
                record.created,
                record.last_seen,
            )

        await self._write(op)

    async def get_web_session(self, id_hash: str) -> WebSessionRecord | None:
        async def op(conn: Conn) -> WebSessionRecord | None:
            row = await conn.fetchrow(
                "SELECT id_hash, account_id, csrf, created, last_seen FROM web_sessions"
                " WHERE id_hash = $1::text",
                id_hash,
            )
            return _web_session(row)

        return await self._read(op)

    async def touch_web_session(self, id_hash: str, last_seen: float) -> None:
        async def op(tx: PgTx) -> None:
            await tx.conn.execute(
                "UPDATE web_sessions SET last_seen = $2::float8 WHERE id_hash = $1::text",
                id_hash,
                last_seen,
            )

        await self._write(op)

    async def remove_web_session(self, id_hash: str) -> None:
        async def op(tx: PgTx) -> None:
            await tx.conn.execute("DELETE FROM web_sessions WHERE id_hash = $1::text", id_hash)

        await self._write(op)

    async def remove_account_web_sessions(self, account_id: int, keep: str) -> list[str]:
        async def op(tx: PgTx) -> list[str]:
            rows = await tx.conn.fetch(
                "DELETE FROM web_sessions WHERE account_id = $1::bigint AND id_hash <> $2::text"
                " RETURNING id_hash",
                account_id,
                keep,
            )
            return [str(r["id_hash"]) for r in rows]

        return await self._write(op)


async def purge_expired(conn: Conn, now: float, *, web_idle: float, web_lifetime: float) -> None:
    """For the janitor (§4): delete expired POP3 leases, login-failure records that say
    nothing any more, and web sessions past `web.sessions`'s idle or lifetime limit."""
    await conn.execute("DELETE FROM pop_locks WHERE until < $1::float8", now)
    await conn.execute("DELETE FROM login_failures WHERE expires < $1::float8", now)
    await conn.execute(
        "DELETE FROM web_sessions WHERE last_seen < $1::float8 OR created < $2::float8",
        now - web_idle,
        now - web_lifetime,
    )
