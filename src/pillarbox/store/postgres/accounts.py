"""Domains, accounts and aliases in the PostgreSQL backend, with quota and POP3 policy.

Owns the ``domains``, ``accounts`` and ``aliases`` rows: creating an account with its
default mailboxes, removing one with everything it holds, its quota (the limits, set
through `rules.quota`, and the usage the ``messages`` triggers keep in ``used_bytes``
and ``used_messages``) and its POP3 policy. The same semantics as the SQLite backend's
`store.sqlite.accounts`, method by method.

Lock order (docs/plans/issue-17-postgres.md §2): mailbox rows in id order, then the
account row, then the ``settings`` counter row; removing an account takes them in that
order so that it never deadlocks with a delivery into one of its mailboxes.

Must not: normalise or validate addresses and domain names (canonical values come from
`rules.addresses`, above the store; they are compared exactly), or hash passwords.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

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
from pillarbox.store.postgres.core import Conn, PgCore, PgTx
from pillarbox.store.postgres.mailboxes import drop_mailbox_rows, insert_mailbox

_ACCOUNT_COLUMNS = (
    "id, address, domain_id, password_hash, quota_bytes, pop_on_retrieve, pop_scope, pop_min_uid,"
    " quota_messages"
)


def _account(row: asyncpg.Record) -> Account:
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


async def _alias(conn: Conn, source: str) -> Alias | None:
    rows = await conn.fetch(
        "SELECT target FROM aliases WHERE source = $1 ORDER BY position", source
    )
    return Alias(source, tuple(r[0] for r in rows)) if rows else None


def _domain_of(address: str) -> str:
    """The domain of a canonical address or "@domain" (the store does not normalise)."""
    return address.rpartition("@")[2]


class AccountsMixin(PgCore):
    """The domain, account and alias operations of `PgStore`."""

    # --- domains ---------------------------------------------------------------------
    async def add_domain(self, name: str) -> Domain:
        async def op(tx: PgTx) -> Domain:
            domain_id = await tx.conn.fetchval(
                "INSERT INTO domains (name) VALUES ($1) RETURNING id", name
            )
            return Domain(id=int(domain_id), name=name)

        return await self._write(op)

    async def get_domain(self, name: str) -> Domain | None:
        async def q(conn: Conn) -> Domain | None:
            row = await conn.fetchrow("SELECT id, name FROM domains WHERE name = $1", name)
            return Domain(id=row[0], name=row[1]) if row else None

        return await self._read(q)

    async def list_domains(self) -> list[Domain]:
        async def q(conn: Conn) -> list[Domain]:
            rows = await conn.fetch("SELECT id, name FROM domains ORDER BY name")
            return [Domain(id=r[0], name=r[1]) for r in rows]

        return await self._read(q)

    async def remove_domain(self, name: str) -> None:
        async def op(tx: PgTx) -> None:
            # FOR UPDATE: an account or alias added meanwhile (its foreign key takes a
            # KEY SHARE lock on this row) waits, then fails on the missing domain.
            domain_id = await tx.conn.fetchval(
                "SELECT id FROM domains WHERE name = $1 FOR UPDATE", name
            )
            if domain_id is None:
                raise NotFound(f"no domain {name}")
            in_use = await tx.conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM accounts WHERE domain_id = $1)"
                " OR EXISTS (SELECT 1 FROM aliases WHERE domain_id = $1)",
                domain_id,
            )
            if in_use:
                raise Conflict(f"domain {name} still has accounts or aliases")
            await tx.conn.execute("DELETE FROM domains WHERE id = $1", domain_id)

        await self._write(op)

    # --- accounts --------------------------------------------------------------------
    async def add_account(self, address: str, password_hash: str) -> Account:
        domain = _domain_of(address)
        if address.startswith("@"):
            raise Conflict("an account needs a local part")

        async def op(tx: PgTx) -> Account:
            conn = tx.conn
            domain_id = await conn.fetchval("SELECT id FROM domains WHERE name = $1", domain)
            if domain_id is None:
                raise NotFound(f"no domain {domain}")
            account_id = int(
                await conn.fetchval(
                    "INSERT INTO accounts (address, domain_id, password_hash)"
                    " VALUES ($1, $2, $3) RETURNING id",
                    address,
                    domain_id,
                    password_hash,
                )
            )
            for name, special_use in DEFAULT_MAILBOXES:
                await insert_mailbox(conn, account_id, name, special_use)
            await conn.execute(
                "INSERT INTO subscriptions (account_id, name)"
                " SELECT $1, n FROM unnest($2::text[]) AS n ON CONFLICT DO NOTHING",
                account_id,
                [name for name, _ in DEFAULT_MAILBOXES],
            )
            return Account(id=account_id, address=address, domain_id=int(domain_id),
                           password_hash=password_hash)  # fmt: skip

        return await self._write(op)

    async def get_account(self, address: str) -> Account | None:
        async def q(conn: Conn) -> Account | None:
            row = await conn.fetchrow(
                f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE address = $1", address
            )
            return _account(row) if row else None

        return await self._read(q)

    async def get_account_by_id(self, account_id: int) -> Account | None:
        async def q(conn: Conn) -> Account | None:
            row = await conn.fetchrow(
                f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE id = $1", account_id
            )
            return _account(row) if row else None

        return await self._read(q)

    async def list_accounts(self, domain: str | None = None) -> list[Account]:
        wanted = domain

        async def q(conn: Conn) -> list[Account]:
            if wanted is None:
                rows = await conn.fetch(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts ORDER BY address")
            else:
                rows = await conn.fetch(
                    f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE domain_id ="
                    " (SELECT id FROM domains WHERE name = $1) ORDER BY address",
                    wanted,
                )
            return [_account(r) for r in rows]

        return await self._read(q)

    async def set_password_hash(self, address: str, password_hash: str) -> None:
        async def op(tx: PgTx) -> None:
            found = await tx.conn.fetchval(
                "UPDATE accounts SET password_hash = $1 WHERE address = $2 RETURNING id",
                password_hash,
                address,
            )
            if found is None:
                raise NotFound(f"no account {address}")

        await self._write(op)

    async def set_quota(
        self, address: str, quota_bytes: int | None, quota_messages: int | None = None
    ) -> Account:
        if quota_bytes is not None:
            quota_bytes = quota_rules.check_quota_value(quota_bytes)
        if quota_messages is not None:
            quota_messages = quota_rules.check_message_limit_value(quota_messages)

        async def op(tx: PgTx) -> Account:
            # NULL keeps a limit as it is (coalesce), so either may be set alone.
            row = await tx.conn.fetchrow(
                "UPDATE accounts SET quota_bytes = coalesce($1::bigint, quota_bytes),"
                " quota_messages = coalesce($2::bigint, quota_messages) WHERE address = $3"
                f" RETURNING {_ACCOUNT_COLUMNS}",
                quota_bytes,
                quota_messages,
                address,
            )
            if row is None:
                raise NotFound(f"no account {address}")
            return _account(row)

        return await self._write(op)

    async def quota_usage(self, account_id: int) -> int:
        return (await self.quota(account_id)).storage_used

    async def quota(self, account_id: int) -> QuotaUsage:
        async def q(conn: Conn) -> QuotaUsage:
            row = await conn.fetchrow(
                "SELECT used_bytes, quota_bytes, used_messages, quota_messages"
                " FROM accounts WHERE id = $1",
                account_id,
            )
            if row is None:
                raise NotFound(f"no account {account_id}")
            return QuotaUsage(*row)

        return await self._read(q)

    async def remove_account(self, address: str) -> None:
        async def op(tx: PgTx) -> None:
            conn = tx.conn
            account_id = await conn.fetchval("SELECT id FROM accounts WHERE address = $1", address)
            if account_id is None:
                raise NotFound(f"no account {address}")
            listing = "SELECT id FROM mailboxes WHERE account_id = $1"
            mailbox_ids = [int(r[0]) for r in await conn.fetch(listing, account_id)]
            # Mailboxes first, then the account (the triggers' quota updates): the order
            # every delivery takes them in.
            await self._lock_mailboxes(conn, mailbox_ids)
            await conn.execute("SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", account_id)
            # A mailbox created while we waited (create_mailbox holds the account row
            # until its commit) is locked now, out of order: a deadlock there is rare and
            # retried by `_write`.
            late = [int(r[0]) for r in await conn.fetch(listing, account_id)]
            await self._lock_mailboxes(conn, [i for i in late if i not in mailbox_ids])
            mailbox_ids = late
            for mailbox_id in mailbox_ids:
                await drop_mailbox_rows(conn, mailbox_id)
            await conn.execute("DELETE FROM subscriptions WHERE account_id = $1", account_id)
            await conn.execute("DELETE FROM thread_ids WHERE account_id = $1", account_id)
            # identities, image_senders and fetch_sources go with it (ON DELETE CASCADE).
            await conn.execute("DELETE FROM accounts WHERE id = $1", account_id)
            # Blobs whose last reference went are stamped by the trigger and collected
            # by the janitor (a reader on another node may still be streaming one).
            tx.changes.append(MailboxesChanged(int(account_id)))

        await self._write(op)

    async def set_pop_policy(
        self, address: str, on_retrieve: PopOnRetrieve, scope: PopScope
    ) -> Account:
        async def op(tx: PgTx) -> Account:
            conn = tx.conn
            account_id = await conn.fetchval("SELECT id FROM accounts WHERE address = $1", address)
            if account_id is None:
                raise NotFound(f"no account {address}")
            min_uid = 0
            if scope == PopScope.FROM_NOW:
                inbox = await conn.fetchval(
                    "SELECT uidnext FROM mailboxes WHERE account_id = $1 AND name = 'INBOX'",
                    account_id,
                )
                min_uid = int(inbox) if inbox is not None else 0
            updated = await conn.fetchrow(
                "UPDATE accounts SET pop_on_retrieve = $1, pop_scope = $2, pop_min_uid = $3"
                f" WHERE id = $4 RETURNING {_ACCOUNT_COLUMNS}",
                PopOnRetrieve(on_retrieve).value,
                PopScope(scope).value,
                min_uid,
                account_id,
            )
            assert updated is not None  # the row was found above, in this transaction
            return _account(updated)

        return await self._write(op)

    # --- aliases ---------------------------------------------------------------------
    async def add_alias(self, source: str, targets: Sequence[str]) -> Alias:
        domain = _domain_of(source)
        clean = [t for t in targets if t]
        if not clean:
            raise Conflict("an alias needs at least one target")

        async def op(tx: PgTx) -> Alias:
            conn = tx.conn
            domain_id = await conn.fetchval("SELECT id FROM domains WHERE name = $1", domain)
            if domain_id is None:
                raise NotFound(f"no domain {domain}")
            # Targets already there keep their place; new ones go after the last (the
            # order is the alias's expansion order). Positions as SQLite gives them.
            await conn.execute(
                "INSERT INTO aliases (source, target, domain_id, position)"
                " SELECT $1, u.t, $2, (SELECT coalesce(max(position), -1) + 1 FROM aliases"
                " WHERE source = $1) + u.i - 1"
                " FROM unnest($3::text[]) WITH ORDINALITY AS u(t, i)"
                " ON CONFLICT DO NOTHING",
                source,
                domain_id,
                clean,
            )
            return await _alias(conn, source) or Alias(source, ())

        return await self._write(op)

    async def get_alias(self, source: str) -> Alias | None:
        return await self._read(lambda conn: _alias(conn, source))

    async def list_aliases(self) -> list[Alias]:
        async def q(conn: Conn) -> list[Alias]:
            grouped: dict[str, list[str]] = {}
            for source, target in await conn.fetch(
                "SELECT source, target FROM aliases ORDER BY source, position"
            ):
                grouped.setdefault(source, []).append(target)
            return [Alias(s, tuple(t)) for s, t in grouped.items()]

        return await self._read(q)

    async def remove_alias(self, source: str) -> None:
        async def op(tx: PgTx) -> None:
            gone = await tx.conn.fetchval(
                "WITH d AS (DELETE FROM aliases WHERE source = $1 RETURNING 1)"
                " SELECT count(*) FROM d",
                source,
            )
            if not gone:
                raise NotFound(f"no alias {source}")

        await self._write(op)
