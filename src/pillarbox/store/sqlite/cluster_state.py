"""SQLite: the state the worker processes share — POP3 maildrop leases, login-failure
records, webmail sessions (tables of migrations/sqlite_0015_cluster_state.sql).

Why tables: with `[server] workers = N` several processes serve one pillarbox.db, and a
client's next connection may land on any of them, so a POP3 `[IN-USE]` lock, a failure
count or a webmail session kept in one process's memory would not hold. This is one code
path for every worker count (N = 1 too): the same behaviour everywhere, tested once, and
webmail sessions now survive a restart. It mirrors the PostgreSQL backend
(store/postgres/cluster_state.py, pg_0002): leases that expire, throttle rows, the
sha256 of the cookie id.

Theory of operation:
  * Every change goes through the writer, whose transactions are serialised across the
    processes (BEGIN IMMEDIATE; the cross-process write lock), so a read-modify-write in
    one operation is atomic for every worker: two logins racing for one maildrop get one
    lock between them; concurrent attempts on one account reserve distinct slots.
  * Leases, failure records and new or touched sessions are written with
    `durable=False`: a power cut can lose the last of them, which is harmless (no process
    survives it to hold a lease; a lost failure count or touch is one more attempt or a
    minute of idle time). Removing sessions (sign-out, a password change ending the
    others) is durable: a power cut must not bring a cookie back to life.
  * The login path: `update_login_state` first runs the (pure) update on a reader's
    snapshot; when it changes nothing — a login from an address with no failure record,
    the common case — no write happens at all. Otherwise the step runs again inside the
    writer on the current row, as the contract allows.
  * Bounds, as the in-memory dictionaries had: every `PURGE_EVERY` rows added, expired
    rows are deleted and, beyond `MAX_LOGIN_STATES` / `MAX_WEB_SESSIONS`, the records
    that expire soonest / the sessions least recently seen (the webmail's own limits,
    8 h idle and 7 days in all, as the PostgreSQL janitor applies them).
Leases are judged by the machine's clock (`time.time()`).

Must not: decide policy (delays, idle limits): the services do; this only stores.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from pillarbox.model.cluster import LoginState, WebSessionRecord
from pillarbox.store.sqlite.core import SqliteCore
from pillarbox.store.sqlite.writer import Tx

T = TypeVar("T")

MAX_LOGIN_STATES = 100_000  # as the in-memory throttles bounded themselves
MAX_WEB_SESSIONS = 10_000  # as web.sessions.SessionStore bounded itself
PURGE_EVERY = 256  # rows added between two purges
WEB_IDLE = 8 * 3600.0  # web/sessions.py's limits (the store cannot import web)
WEB_LIFETIME = 7 * 86400.0

_LOGIN_COLUMNS = "failures, last_failure, next_allowed, trusted, expires"


def _login_state(conn: sqlite3.Connection, key: str) -> LoginState | None:
    row = conn.execute(
        f"SELECT {_LOGIN_COLUMNS} FROM login_failures WHERE key = ?", (key,)
    ).fetchone()
    if row is None:
        return None
    return LoginState(
        failures=row[0],
        last_failure=row[1],
        next_allowed=row[2],
        trusted=tuple((str(ip), float(at)) for ip, at in json.loads(row[3])),
        expires=row[4],
    )


def _web_session(row: tuple[str, int, str, float, float] | None) -> WebSessionRecord | None:
    return None if row is None else WebSessionRecord(*row)


class ClusterStateMixin(SqliteCore):
    """POP3 leases, login-failure records and webmail sessions (see above)."""

    _added = itertools.count(1)  # rows added by this process: when to purge

    def _purge_due(self) -> bool:
        return next(self._added) % PURGE_EVERY == 0

    # --- POP3 maildrop leases (RFC 1939 §4) ---------------------------------------------
    async def lock_maildrop(self, account_id: int, holder: str, until: float) -> bool:
        now = time.time()

        def op(tx: Tx) -> bool:
            row = tx.conn.execute(
                "INSERT INTO pop_locks AS l (account_id, holder, until) VALUES (?, ?, ?)"
                " ON CONFLICT (account_id) DO UPDATE"
                " SET holder = excluded.holder, until = excluded.until"
                " WHERE l.holder = excluded.holder OR l.until < ?"
                " RETURNING 1",
                (account_id, holder, until, now),
            ).fetchone()
            return row is not None

        return await self._write(op, durable=False)

    async def unlock_maildrop(self, account_id: int, holder: str) -> None:
        def op(tx: Tx) -> None:
            tx.conn.execute(
                "DELETE FROM pop_locks WHERE account_id = ? AND holder = ?", (account_id, holder)
            )

        await self._write(op, durable=False)

    # --- login-failure records ------------------------------------------------------------
    async def update_login_state(
        self, key: str, update: Callable[[LoginState | None], tuple[LoginState | None, T]]
    ) -> T:
        seen = await self._read(lambda conn: _login_state(conn, key))
        new, result = update(seen)
        if new == seen:
            return result  # nothing to write (the usual login)
        purge = self._purge_due()

        def op(tx: Tx) -> T:
            current = _login_state(tx.conn, key)
            new, result = update(current)
            if new == current:
                return result
            if new is None:
                tx.conn.execute("DELETE FROM login_failures WHERE key = ?", (key,))
                return result
            tx.conn.execute(
                f"INSERT OR REPLACE INTO login_failures (key, {_LOGIN_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    key,
                    new.failures,
                    new.last_failure,
                    new.next_allowed,
                    json.dumps([[ip, at] for ip, at in new.trusted]),
                    new.expires,
                ),
            )
            if purge and current is None:
                _purge_login_states(tx.conn, time.time())
            return result

        return await self._write(op, durable=False)

    # --- webmail sessions -------------------------------------------------------------------
    async def add_web_session(self, record: WebSessionRecord) -> None:
        purge = self._purge_due()

        def op(tx: Tx) -> None:
            tx.conn.execute(
                "INSERT INTO web_sessions (id_hash, account_id, csrf, created, last_seen)"
                " VALUES (?, ?, ?, ?, ?)",
                (record.id_hash, record.account_id, record.csrf, record.created, record.last_seen),
            )
            if purge:
                _purge_web_sessions(tx.conn, time.time())

        await self._write(op, durable=False)

    async def get_web_session(self, id_hash: str) -> WebSessionRecord | None:
        def op(conn: sqlite3.Connection) -> WebSessionRecord | None:
            row = conn.execute(
                "SELECT id_hash, account_id, csrf, created, last_seen FROM web_sessions"
                " WHERE id_hash = ?",
                (id_hash,),
            ).fetchone()
            return _web_session(row)

        return await self._read(op)

    async def touch_web_session(self, id_hash: str, last_seen: float) -> None:
        def op(tx: Tx) -> None:
            tx.conn.execute(
                "UPDATE web_sessions SET last_seen = ? WHERE id_hash = ?", (last_seen, id_hash)
            )

        await self._write(op, durable=False)

    async def remove_web_session(self, id_hash: str) -> None:
        def op(tx: Tx) -> None:
            tx.conn.execute("DELETE FROM web_sessions WHERE id_hash = ?", (id_hash,))

        await self._write(op)

    async def remove_account_web_sessions(self, account_id: int, keep: str) -> list[str]:
        def op(tx: Tx) -> list[str]:
            rows = tx.conn.execute(
                "DELETE FROM web_sessions WHERE account_id = ? AND id_hash <> ? RETURNING id_hash",
                (account_id, keep),
            ).fetchall()
            return sorted(str(r[0]) for r in rows)

        return await self._write(op)


def _purge_login_states(conn: sqlite3.Connection, now: float) -> None:
    """Forget records that say nothing any more (and leases that ended); if still over
    the bound, the tenth that expire soonest (an attack on many names)."""
    conn.execute("DELETE FROM login_failures WHERE expires < ?", (now,))
    conn.execute("DELETE FROM pop_locks WHERE until < ?", (now,))
    count = conn.execute("SELECT count(*) FROM login_failures").fetchone()[0]
    if count > MAX_LOGIN_STATES:
        conn.execute(
            "DELETE FROM login_failures WHERE key IN"
            " (SELECT key FROM login_failures ORDER BY expires LIMIT ?)",
            (count - MAX_LOGIN_STATES + MAX_LOGIN_STATES // 10,),
        )


def _purge_web_sessions(conn: sqlite3.Connection, now: float) -> None:
    """Sessions past the webmail's idle or lifetime limit; beyond the bound, the least
    recently seen."""
    conn.execute(
        "DELETE FROM web_sessions WHERE last_seen < ? OR created < ?",
        (now - WEB_IDLE, now - WEB_LIFETIME),
    )
    count = conn.execute("SELECT count(*) FROM web_sessions").fetchone()[0]
    if count > MAX_WEB_SESSIONS:
        conn.execute(
            "DELETE FROM web_sessions WHERE id_hash IN"
            " (SELECT id_hash FROM web_sessions ORDER BY last_seen LIMIT ?)",
            (count - MAX_WEB_SESSIONS,),
        )
