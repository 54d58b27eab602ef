"""Mailboxes in the PostgreSQL backend: create, delete, rename, list, subscriptions, status.

Owns the ``mailboxes`` and ``subscriptions`` rows and the store-wide UIDVALIDITY counter
(the ``settings`` row ``uidvalidity``, advanced by `rules.uidvalidity` under that row's
lock, so two nodes creating mailboxes at once never hand out one value twice: a new or
renamed mailbox never gets a UIDVALIDITY used before, RFC 9051 §2.3.1.1). The same
semantics as the SQLite backend's `store.sqlite.mailboxes`, method by method.
`insert_mailbox` and `drop_mailbox_rows` are shared with account creation and removal;
STATUS counts with `reading.mailbox_counters`, as SELECT does.

Mailbox ids come from the identity column, whose sequence never hands an id out twice,
even after a DELETE: a mailbox id is its MAILBOXID (RFC 8474 §4).

Lock order (docs/plans/issue-17-postgres.md §2): mailbox rows in id order, then the
account row, then the ``settings`` row. Creating a mailbox locks its account row (no key
update), which also makes the one-mailbox-per-special-use check safe across nodes.

Must not: validate or normalise mailbox names (canonical names come from
`rules.mailbox_names`, above the store), or delete blobs (a blob whose last reference
went is stamped by the ``messages`` trigger and collected by the janitor).
"""

from __future__ import annotations

import time

import asyncpg

from pillarbox.model import (
    HIERARCHY_SEPARATOR,
    Mailbox,
    MailboxesChanged,
    MailboxStatus,
)
from pillarbox.rules import uidvalidity as uidvalidity_rules
from pillarbox.store.errors import AlreadyExists, Conflict, NotFound
from pillarbox.store.postgres import message_rows
from pillarbox.store.postgres.core import Conn, PgCore, PgTx
from pillarbox.store.postgres.reading import mailbox_counters

_MAILBOX_SELECT = (
    "SELECT m.id, m.account_id, m.name, m.uidvalidity, m.uidnext, m.highestmodseq,"
    " m.special_use, EXISTS (SELECT 1 FROM subscriptions AS s"
    " WHERE s.account_id = m.account_id AND s.name = m.name) FROM mailboxes AS m"
)


def _mailbox(row: asyncpg.Record) -> Mailbox:
    return Mailbox(
        id=row[0],
        account_id=row[1],
        name=row[2],
        uidvalidity=row[3],
        uidnext=row[4],
        highestmodseq=row[5],
        special_use=row[6],
        subscribed=bool(row[7]),
    )


async def next_uidvalidity(conn: Conn) -> int:
    """The store-wide counter, advanced by `rules.uidvalidity` (RFC 9051 §2.3.1.1) under
    its row's lock until the commit: a second node waits, then reads this value."""
    # The row may not exist yet; a concurrent first insert makes this one wait, then
    # do nothing, so the SELECT below always finds a row to lock.
    await conn.execute(
        "INSERT INTO settings (key, value) VALUES ('uidvalidity', 0) ON CONFLICT DO NOTHING"
    )
    last = await conn.fetchval("SELECT value FROM settings WHERE key = 'uidvalidity' FOR UPDATE")
    value = uidvalidity_rules.next_uidvalidity(int(last), time.time())
    await conn.execute("UPDATE settings SET value = $1 WHERE key = 'uidvalidity'", value)
    return value


async def insert_mailbox(conn: Conn, account_id: int, name: str, special_use: str | None) -> int:
    """A new mailbox row with a fresh UIDVALIDITY; its id from the identity column."""
    mailbox_id = await conn.fetchval(
        "INSERT INTO mailboxes (account_id, name, uidvalidity, special_use)"
        " VALUES ($1, $2, $3, $4) RETURNING id",
        account_id,
        name,
        await next_uidvalidity(conn),
        special_use,
    )
    return int(mailbox_id)


async def drop_mailbox_rows(conn: Conn, mailbox_id: int) -> None:
    """Delete a mailbox with its messages and their QRESYNC record. The caller holds the
    mailbox's row lock (then the account's, which the messages_delete trigger updates
    with blob refs, quota and keywords, row by row)."""
    await conn.execute("DELETE FROM messages WHERE mailbox_id = $1", mailbox_id)
    await conn.execute("DELETE FROM expunged WHERE mailbox_id = $1", mailbox_id)
    await conn.execute("DELETE FROM mailboxes WHERE id = $1", mailbox_id)


async def _lock_account(conn: Conn, account_id: int) -> bool:
    """Lock the account row against other mailbox creation (not against deliveries'
    quota updates: FOR NO KEY UPDATE); False if there is no such account."""
    found = await conn.fetchval(
        "SELECT 1 FROM accounts WHERE id = $1 FOR NO KEY UPDATE", account_id
    )
    return found is not None


class MailboxesMixin(PgCore):
    """The mailbox operations of `PgStore`."""

    async def list_mailboxes(self, account_id: int) -> list[Mailbox]:
        async def q(conn: Conn) -> list[Mailbox]:
            rows = await conn.fetch(
                f"{_MAILBOX_SELECT} WHERE m.account_id = $1 ORDER BY m.name <> 'INBOX', m.name",
                account_id,
            )
            return [_mailbox(r) for r in rows]

        return await self._read(q)

    async def get_mailbox(self, account_id: int, name: str) -> Mailbox | None:
        async def q(conn: Conn) -> Mailbox | None:
            row = await conn.fetchrow(
                f"{_MAILBOX_SELECT} WHERE m.account_id = $1 AND m.name = $2", account_id, name
            )
            return _mailbox(row) if row else None

        return await self._read(q)

    async def get_mailbox_by_id(self, mailbox_id: int) -> Mailbox | None:
        async def q(conn: Conn) -> Mailbox | None:
            row = await conn.fetchrow(f"{_MAILBOX_SELECT} WHERE m.id = $1", mailbox_id)
            return _mailbox(row) if row else None

        return await self._read(q)

    async def get_special_mailbox(self, account_id: int, special_use: str) -> Mailbox | None:
        async def q(conn: Conn) -> Mailbox | None:
            row = await conn.fetchrow(
                f"{_MAILBOX_SELECT} WHERE m.account_id = $1 AND lower(m.special_use) = lower($2)"
                " ORDER BY m.id LIMIT 1",
                account_id,
                special_use,
            )
            return _mailbox(row) if row else None

        return await self._read(q)

    async def create_mailbox(
        self, account_id: int, name: str, special_use: str | None = None
    ) -> Mailbox:
        async def op(tx: PgTx) -> Mailbox:
            conn = tx.conn
            if not await _lock_account(conn, account_id):
                raise NotFound(f"no account {account_id}")
            # One mailbox per special use (as a JMAP role, RFC 8621 §2): delivery and
            # submission look a use up, and a second \Sent would not be the one they use.
            if special_use is not None and await conn.fetchval(
                "SELECT 1 FROM mailboxes WHERE account_id = $1 AND lower(special_use) = lower($2)",
                account_id,
                special_use,
            ):
                raise Conflict(f"a mailbox already has the special use {special_use}")
            mailbox_id = await insert_mailbox(conn, account_id, name, special_use)
            tx.changes.append(MailboxesChanged(account_id))
            row = await conn.fetchrow(f"{_MAILBOX_SELECT} WHERE m.id = $1", mailbox_id)
            assert row is not None  # inserted just now
            return _mailbox(row)

        return await self._write(op)

    async def delete_mailbox(self, account_id: int, name: str) -> None:
        if name == "INBOX":
            raise Conflict("INBOX cannot be deleted")

        async def op(tx: PgTx) -> None:
            mailbox_id = await tx.conn.fetchval(
                "SELECT id FROM mailboxes WHERE account_id = $1 AND name = $2 FOR UPDATE",
                account_id,
                name,
            )
            if mailbox_id is None:
                raise NotFound(f"no mailbox {name}")
            await drop_mailbox_rows(tx.conn, int(mailbox_id))
            tx.changes.append(MailboxesChanged(account_id))

        await self._write(op)

    async def rename_mailbox(self, account_id: int, old: str, new: str) -> None:
        async def op(tx: PgTx) -> None:
            conn = tx.conn
            source = await conn.fetchval(
                "SELECT id FROM mailboxes WHERE account_id = $1 AND name = $2", account_id, old
            )
            if source is None:
                raise NotFound(f"no mailbox {old}")
            if new == old or new == "INBOX":
                raise AlreadyExists(f"mailbox {new} exists")
            if new.startswith(old + HIERARCHY_SEPARATOR):
                raise Conflict("cannot rename a mailbox into itself")
            if await conn.fetchval(
                "SELECT 1 FROM mailboxes WHERE account_id = $1 AND name = $2", account_id, new
            ):
                raise AlreadyExists(f"mailbox {new} exists")
            if old == "INBOX":
                # RFC 9051 §6.3.6: INBOX's messages move to a new mailbox; INBOX stays,
                # empty, and its inferiors are not renamed.
                # INBOX, then its account (the order of every message write), then the
                # settings row (the new UIDVALIDITY); the new mailbox is ours already.
                await message_rows.lock(conn, [int(source)])
                target = await insert_mailbox(conn, account_id, new, None)
                locks = await message_rows.lock(conn, [int(source), target])
                await message_rows.move_rows(tx, locks, int(source), None, target)
                tx.changes.append(MailboxesChanged(account_id))
                return
            prefix = old + HIERARCHY_SEPARATOR
            family: list[tuple[int, str]] = [(int(source), old)] + [
                (int(r[0]), r[1])
                for r in await conn.fetch(
                    "SELECT id, name FROM mailboxes WHERE account_id = $1"
                    " AND starts_with(name, $2) ORDER BY name",
                    account_id,
                    prefix,
                )
            ]
            renamed = [(mid, name, new + name[len(old) :]) for mid, name in family]
            taken = await conn.fetchval(
                "SELECT min(name) FROM mailboxes WHERE account_id = $1 AND name = ANY($2::text[])",
                account_id,
                [target_name for _, _, target_name in renamed[1:]],
            )
            if taken is not None:
                raise AlreadyExists(f"mailbox {taken} exists")
            await self._lock_mailboxes(conn, [mid for mid, _, _ in renamed])
            for mid, old_name, new_name in renamed:
                # A renamed mailbox gets a fresh UIDVALIDITY, so no name ever shows a
                # UIDVALIDITY it had before (a client's cache by name stays safe).
                await conn.execute(
                    "UPDATE mailboxes SET name = $1, uidvalidity = $2 WHERE id = $3",
                    new_name,
                    await next_uidvalidity(conn),
                    mid,
                )
                await conn.execute(
                    "WITH gone AS (DELETE FROM subscriptions WHERE account_id = $1"
                    " AND name = $2 RETURNING account_id)"
                    " INSERT INTO subscriptions (account_id, name)"
                    " SELECT account_id, $3 FROM gone ON CONFLICT DO NOTHING",
                    account_id,
                    old_name,
                    new_name,
                )
            tx.changes.append(MailboxesChanged(account_id))

        await self._write(op)

    async def set_subscribed(self, account_id: int, name: str, subscribed: bool) -> None:
        async def op(tx: PgTx) -> None:
            if subscribed:
                await tx.conn.execute(
                    "INSERT INTO subscriptions (account_id, name) VALUES ($1, $2)"
                    " ON CONFLICT DO NOTHING",
                    account_id,
                    name,
                )
            else:
                await tx.conn.execute(
                    "DELETE FROM subscriptions WHERE account_id = $1 AND name = $2",
                    account_id,
                    name,
                )
            tx.changes.append(MailboxesChanged(account_id))

        await self._write(op)

    async def list_subscriptions(self, account_id: int) -> list[str]:
        async def q(conn: Conn) -> list[str]:
            rows = await conn.fetch(
                "SELECT name FROM subscriptions WHERE account_id = $1"
                " ORDER BY name <> 'INBOX', name",
                account_id,
            )
            return [r[0] for r in rows]

        return await self._read(q)

    async def claim_recent(self, mailbox_id: int, up_to: int | None) -> int:
        if up_to is None:

            async def current(conn: Conn) -> int:
                value = await conn.fetchval(
                    "SELECT recent_uid FROM mailboxes WHERE id = $1", mailbox_id
                )
                if value is None:
                    raise NotFound("mailbox")
                return int(value)

            return await self._read(current)
        claimed = up_to

        async def op(tx: PgTx) -> int:
            # The row lock orders two sessions claiming at once: the second
            # reads the first's watermark (FOR UPDATE returns the committed row), so
            # each UID is recent in one session only (RFC 3501 §2.3.2).
            before = await tx.conn.fetchval(
                "SELECT recent_uid FROM mailboxes WHERE id = $1 FOR UPDATE", mailbox_id
            )
            if before is not None and claimed > before:
                # Not waited for on its own (SQLite's durable=False): a claim lost with
                # the power or a failover makes mail recent again, which is harmless.
                await tx.conn.execute("SET LOCAL synchronous_commit TO OFF")
                await tx.conn.execute(
                    "UPDATE mailboxes SET recent_uid = $2 WHERE id = $1", mailbox_id, claimed
                )
            if before is None:
                raise NotFound("mailbox")
            return int(before)

        return await self._write(op)

    async def count_recent(self, mailbox_id: int) -> int:
        async def q(conn: Conn) -> int:
            value = await conn.fetchval(
                "SELECT count(*) FROM messages WHERE mailbox_id = $1"
                " AND uid > (SELECT recent_uid FROM mailboxes WHERE id = $1)",
                mailbox_id,
            )
            return int(value)

        return await self._read(q, snapshot=True)

    async def mailbox_status(self, mailbox_id: int) -> MailboxStatus:
        async def q(conn: Conn) -> MailboxStatus:
            return (await mailbox_counters(conn, mailbox_id))[0]

        return await self._read(q, snapshot=True)
