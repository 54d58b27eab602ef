"""Domains, accounts and aliases in the SQLite backend, with quota and POP3 policy.

Owns the ``domains``, ``accounts`` and ``aliases`` rows: creating an account with its
default mailboxes, removing one with everything it holds, its quota (the limits, set
through `rules.quota`, and the usage the ``messages`` triggers keep in ``used_bytes``
and ``used_messages``) and its POP3 policy.

Must not: normalise or validate addresses and domain names (canonical values come from
`rules.addresses`, above the store; they are compared exactly), or hash passwords.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, cast

from pillarbox.model import (
    DEFAULT_MAILBOXES,
    Account,
    Alias,
    Domain,
    MailboxesChanged,
    PopOnRetrieve,
    PopScope,
    QuotaUsage,
)
from pillarbox.rules import quota as quota_rules
from pillarbox.store.errors import Conflict, NotFound
from pillarbox.store.sqlite.core import SqliteCore
from pillarbox.store.sqlite.mailboxes import drop_mailbox_rows, insert_mailbox
from pillarbox.store.sqlite.message_rows import collect_blobs
from pillarbox.store.sqlite.writer import Tx

_ACCOUNT_COLUMNS = (
    "id, address, domain_id, password_hash, quota_bytes, pop_on_retrieve, pop_scope, pop_min_uid,"
    " quota_messages"
)


def _account(row: Sequence[Any]) -> Account:
    return Account(
        id=row[0],
        address=row[1],
        domain_id=row[2],
        password_hash=row[3],
        quota_bytes=row[4],
        pop_on_retrieve=PopOnRetrieve(row[5]),
        pop_scope=PopScope(row[6]),
        pop_min_uid=row[7],
        quota_messages=row[8],
    )


def _alias(conn: sqlite3.Connection, source: str) -> Alias | None:
    rows = conn.execute(
        "SELECT target FROM aliases WHERE source = ? ORDER BY position", (source,)
    ).fetchall()
    return Alias(source, tuple(r[0] for r in rows)) if rows else None


def _domain_of(address: str) -> str:
    """The domain of a canonical address or "@domain" (the store does not normalise)."""
    return address.rpartition("@")[2]


class AccountsMixin(SqliteCore):
    """The domain, account and alias operations of `SqliteStore`."""

    # --- domains ---------------------------------------------------------------------
    async def add_domain(self, name: str) -> Domain:
        def op(tx: Tx) -> Domain:
            cur = tx.conn.execute("INSERT INTO domains (name) VALUES (?)", (name,))
            return Domain(id=cast(int, cur.lastrowid), name=name)

        return await self._write(op)

    async def get_domain(self, name: str) -> Domain | None:
        def q(conn: sqlite3.Connection) -> Domain | None:
            row = conn.execute("SELECT id, name FROM domains WHERE name = ?", (name,)).fetchone()
            return Domain(id=row[0], name=row[1]) if row else None

        return await self._read(q)

    async def list_domains(self) -> list[Domain]:
        def q(conn: sqlite3.Connection) -> list[Domain]:
            rows = conn.execute("SELECT id, name FROM domains ORDER BY name")
            return [Domain(id=r[0], name=r[1]) for r in rows]

        return await self._read(q)

    async def remove_domain(self, name: str) -> None:
        def op(tx: Tx) -> None:
            row = tx.conn.execute("SELECT id FROM domains WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise NotFound(f"no domain {name}")
            in_use = tx.conn.execute(
                "SELECT EXISTS (SELECT 1 FROM accounts WHERE domain_id = ?)"
                " OR EXISTS (SELECT 1 FROM aliases WHERE domain_id = ?)",
                (row[0], row[0]),
            ).fetchone()[0]
            if in_use:
                raise Conflict(f"domain {name} still has accounts or aliases")
            tx.conn.execute("DELETE FROM domains WHERE id = ?", (row[0],))

        await self._write(op)

    # --- accounts --------------------------------------------------------------------
    async def add_account(self, address: str, password_hash: str) -> Account:
        domain = _domain_of(address)
        if address.startswith("@"):
            raise Conflict("an account needs a local part")

        def op(tx: Tx) -> Account:
            conn = tx.conn
            row = conn.execute("SELECT id FROM domains WHERE name = ?", (domain,)).fetchone()
            if row is None:
                raise NotFound(f"no domain {domain}")
            cur = conn.execute(
                "INSERT INTO accounts (address, domain_id, password_hash) VALUES (?, ?, ?)",
                (address, row[0], password_hash),
            )
            account_id = cast(int, cur.lastrowid)
            for name, special_use in DEFAULT_MAILBOXES:
                insert_mailbox(conn, account_id, name, special_use)
                conn.execute(
                    "INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?, ?)",
                    (account_id, name),
                )
            return Account(id=account_id, address=address, domain_id=row[0],
                           password_hash=password_hash)  # fmt: skip

        return await self._write(op)

    async def get_account(self, address: str) -> Account | None:
        def q(conn: sqlite3.Connection) -> Account | None:
            row = conn.execute(
                f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE address = ?", (address,)
            ).fetchone()
            return _account(row) if row else None

        return await self._read(q)

    async def get_account_by_id(self, account_id: int) -> Account | None:
        def q(conn: sqlite3.Connection) -> Account | None:
            row = conn.execute(
                f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE id = ?", (account_id,)
            ).fetchone()
            return _account(row) if row else None

        return await self._read(q)

    async def list_accounts(self, domain: str | None = None) -> list[Account]:
        wanted = domain

        def q(conn: sqlite3.Connection) -> list[Account]:
            if wanted is None:
                rows = conn.execute(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts ORDER BY address")
            else:
                rows = conn.execute(
                    f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE domain_id ="
                    " (SELECT id FROM domains WHERE name = ?) ORDER BY address",
                    (wanted,),
                )
            return [_account(r) for r in rows]

        return await self._read(q)

    async def set_password_hash(self, address: str, password_hash: str) -> None:
        def op(tx: Tx) -> None:
            cur = tx.conn.execute(
                "UPDATE accounts SET password_hash = ? WHERE address = ?", (password_hash, address)
            )
            if cur.rowcount == 0:
                raise NotFound(f"no account {address}")

        await self._write(op)

    async def set_quota(
        self, address: str, quota_bytes: int | None, quota_messages: int | None = None
    ) -> Account:
        if quota_bytes is not None:
            quota_bytes = quota_rules.check_quota_value(quota_bytes)
        if quota_messages is not None:
            quota_messages = quota_rules.check_message_limit_value(quota_messages)

        def op(tx: Tx) -> Account:
            # NULL keeps a limit as it is (coalesce), so either may be set alone.
            row = tx.conn.execute(
                "UPDATE accounts SET quota_bytes = coalesce(?, quota_bytes),"
                " quota_messages = coalesce(?, quota_messages) WHERE address = ?"
                f" RETURNING {_ACCOUNT_COLUMNS}",
                (quota_bytes, quota_messages, address),
            ).fetchone()
            if row is None:
                raise NotFound(f"no account {address}")
            return _account(row)

        return await self._write(op)

    async def quota_usage(self, account_id: int) -> int:
        return (await self.quota(account_id)).storage_used

    async def quota(self, account_id: int) -> QuotaUsage:
        def q(conn: sqlite3.Connection) -> QuotaUsage:
            row = conn.execute(
                "SELECT used_bytes, quota_bytes, used_messages, quota_messages"
                " FROM accounts WHERE id = ?",
                (account_id,),
            ).fetchone()
            if row is None:
                raise NotFound(f"no account {account_id}")
            return QuotaUsage(*row)

        return await self._read(q)

    async def remove_account(self, address: str) -> None:
        def op(tx: Tx) -> None:
            conn = tx.conn
            row = conn.execute("SELECT id FROM accounts WHERE address = ?", (address,)).fetchone()
            if row is None:
                raise NotFound(f"no account {address}")
            account_id = row[0]
            mailbox_ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM mailboxes WHERE account_id = ?", (account_id,)
                )
            ]
            for mailbox_id in mailbox_ids:
                drop_mailbox_rows(conn, mailbox_id)
            conn.execute("DELETE FROM subscriptions WHERE account_id = ?", (account_id,))
            conn.execute("DELETE FROM thread_ids WHERE account_id = ?", (account_id,))
            conn.execute("DELETE FROM accounts WHERE id = ?", (account_id,))
            collect_blobs(tx)
            tx.changes.append(MailboxesChanged(account_id))

        await self._write(op)

    async def set_pop_policy(
        self, address: str, on_retrieve: PopOnRetrieve, scope: PopScope
    ) -> Account:
        def op(tx: Tx) -> Account:
            conn = tx.conn
            row = conn.execute("SELECT id FROM accounts WHERE address = ?", (address,)).fetchone()
            if row is None:
                raise NotFound(f"no account {address}")
            min_uid = 0
            if scope == PopScope.FROM_NOW:
                inbox = conn.execute(
                    "SELECT uidnext FROM mailboxes WHERE account_id = ? AND name = 'INBOX'",
                    (row[0],),
                ).fetchone()
                min_uid = inbox[0] if inbox else 0
            updated = conn.execute(
                "UPDATE accounts SET pop_on_retrieve = ?, pop_scope = ?, pop_min_uid = ?"
                f" WHERE id = ? RETURNING {_ACCOUNT_COLUMNS}",
                (PopOnRetrieve(on_retrieve).value, PopScope(scope).value, min_uid, row[0]),
            ).fetchone()
            return _account(updated)

        return await self._write(op)

    # --- aliases ---------------------------------------------------------------------
    async def add_alias(self, source: str, targets: Sequence[str]) -> Alias:
        domain = _domain_of(source)
        clean = [t for t in targets if t]
        if not clean:
            raise Conflict("an alias needs at least one target")

        def op(tx: Tx) -> Alias:
            conn = tx.conn
            row = conn.execute("SELECT id FROM domains WHERE name = ?", (domain,)).fetchone()
            if row is None:
                raise NotFound(f"no domain {domain}")
            start = conn.execute(
                "SELECT coalesce(max(position), -1) + 1 FROM aliases WHERE source = ?", (source,)
            ).fetchone()[0]
            for i, target in enumerate(clean):
                conn.execute(
                    "INSERT OR IGNORE INTO aliases (source, target, domain_id, position)"
                    " VALUES (?, ?, ?, ?)",
                    (source, target, row[0], start + i),
                )
            return _alias(conn, source) or Alias(source, ())

        return await self._write(op)

    async def get_alias(self, source: str) -> Alias | None:
        return await self._read(lambda conn: _alias(conn, source))

    async def list_aliases(self) -> list[Alias]:
        def q(conn: sqlite3.Connection) -> list[Alias]:
            grouped: dict[str, list[str]] = {}
            for source, target in conn.execute(
                "SELECT source, target FROM aliases ORDER BY source, position"
            ):
                grouped.setdefault(source, []).append(target)
            return [Alias(s, tuple(t)) for s, t in grouped.items()]

        return await self._read(q)

    async def remove_alias(self, source: str) -> None:
        def op(tx: Tx) -> None:
            cur = tx.conn.execute("DELETE FROM aliases WHERE source = ?", (source,))
            if cur.rowcount == 0:
                raise NotFound(f"no alias {source}")

        await self._write(op)
