"""Mailboxes in the SQLite backend: create, delete, rename, list, subscriptions, status.

Owns the ``mailboxes`` and ``subscriptions`` rows and the store-wide UIDVALIDITY counter
(the ``settings`` row ``uidvalidity``, advanced by `rules.uidvalidity`: a new or renamed
mailbox never gets a UIDVALIDITY used before, RFC 9051 §2.3.1.1). `insert_mailbox` and
`drop_mailbox_rows` are shared with account creation and removal.

Must not: validate or normalise mailbox names (canonical names come from
`rules.mailbox_names`, above the store), or touch message files (removed blobs are
collected through `message_rows.collect_blobs`).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any, cast

from pillarbox.model import HIERARCHY_SEPARATOR, Mailbox, MailboxesChanged, MailboxStatus
from pillarbox.rules import uidvalidity as uidvalidity_rules
from pillarbox.store.errors import AlreadyExists, Conflict, NotFound
from pillarbox.store.sqlite.core import SqliteCore
from pillarbox.store.sqlite.message_rows import collect_blobs, move_rows
from pillarbox.store.sqlite.rows import (
    flag_rows,
    mailbox_counters,
)
from pillarbox.store.sqlite.writer import Tx

_MAILBOX_SELECT = (
    "SELECT m.id, m.account_id, m.name, m.uidvalidity, m.uidnext, m.highestmodseq,"
    " m.special_use, EXISTS (SELECT 1 FROM subscriptions AS s"
    " WHERE s.account_id = m.account_id AND s.name = m.name) FROM mailboxes AS m"
)


def _mailbox(row: Sequence[Any]) -> Mailbox:
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


def next_uidvalidity(conn: sqlite3.Connection) -> int:
    """The store-wide counter, advanced by `rules.uidvalidity` (RFC 9051 §2.3.1.1)."""
    row = conn.execute("SELECT value FROM settings WHERE key = 'uidvalidity'").fetchone()
    value = uidvalidity_rules.next_uidvalidity(row[0] if row else 0, time.time())
    conn.execute(
        "INSERT INTO settings (key, value) VALUES ('uidvalidity', ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (value,),
    )
    return value


def insert_mailbox(
    conn: sqlite3.Connection, account_id: int, name: str, special_use: str | None
) -> int:
    # Ids are never reused: a mailbox id is its MAILBOXID (RFC 8474 §4: never given to
    # another mailbox), and SQLite would hand out the largest id again after a DELETE.
    # The settings row ``mailbox_id_high`` remembers the largest id ever given.
    mailbox_id = (
        conn.execute(
            "SELECT max(coalesce((SELECT max(id) FROM mailboxes), 0),"
            " coalesce((SELECT value FROM settings WHERE key = 'mailbox_id_high'), 0))"
        ).fetchone()[0]
        + 1
    )
    conn.execute(
        "INSERT INTO mailboxes (id, account_id, name, uidvalidity, special_use)"
        " VALUES (?, ?, ?, ?, ?)",
        (mailbox_id, account_id, name, next_uidvalidity(conn), special_use),
    )
    conn.execute(
        "INSERT INTO settings (key, value) VALUES ('mailbox_id_high', ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (mailbox_id,),
    )
    return cast(int, mailbox_id)


def drop_mailbox_rows(conn: sqlite3.Connection, mailbox_id: int) -> None:
    # The messages_delete trigger releases blobs, quota and keywords row by row.
    conn.execute("DELETE FROM messages WHERE mailbox_id = ?", (mailbox_id,))
    conn.execute("DELETE FROM expunged WHERE mailbox_id = ?", (mailbox_id,))
    conn.execute("DELETE FROM mailboxes WHERE id = ?", (mailbox_id,))


class MailboxesMixin(SqliteCore):
    """The mailbox operations of `SqliteStore`."""

    async def list_mailboxes(self, account_id: int) -> list[Mailbox]:
        def q(conn: sqlite3.Connection) -> list[Mailbox]:
            rows = conn.execute(
                f"{_MAILBOX_SELECT} WHERE m.account_id = ? ORDER BY m.name != 'INBOX', m.name",
                (account_id,),
            )
            return [_mailbox(r) for r in rows]

        return await self._read(q)

    async def get_mailbox(self, account_id: int, name: str) -> Mailbox | None:
        def q(conn: sqlite3.Connection) -> Mailbox | None:
            row = conn.execute(
                f"{_MAILBOX_SELECT} WHERE m.account_id = ? AND m.name = ?", (account_id, name)
            ).fetchone()
            return _mailbox(row) if row else None

        return await self._read(q)

    async def get_mailbox_by_id(self, mailbox_id: int) -> Mailbox | None:
        def q(conn: sqlite3.Connection) -> Mailbox | None:
            row = conn.execute(f"{_MAILBOX_SELECT} WHERE m.id = ?", (mailbox_id,)).fetchone()
            return _mailbox(row) if row else None

        return await self._read(q)

    async def get_special_mailbox(self, account_id: int, special_use: str) -> Mailbox | None:
        def q(conn: sqlite3.Connection) -> Mailbox | None:
            row = conn.execute(
                f"{_MAILBOX_SELECT} WHERE m.account_id = ? AND lower(m.special_use) = lower(?)"
                " ORDER BY m.id LIMIT 1",
                (account_id, special_use),
            ).fetchone()
            return _mailbox(row) if row else None

        return await self._read(q)

    async def create_mailbox(
        self, account_id: int, name: str, special_use: str | None = None
    ) -> Mailbox:
        def op(tx: Tx) -> Mailbox:
            conn = tx.conn
            if not conn.execute("SELECT 1 FROM accounts WHERE id = ?", (account_id,)).fetchone():
                raise NotFound(f"no account {account_id}")
            # One mailbox per special use (as a JMAP role, RFC 8621 §2): delivery and
            # submission look a use up, and a second \Sent would not be the one they use.
            if (
                special_use is not None
                and conn.execute(
                    "SELECT 1 FROM mailboxes WHERE account_id = ?"
                    " AND lower(special_use) = lower(?)",
                    (account_id, special_use),
                ).fetchone()
            ):
                raise Conflict(f"a mailbox already has the special use {special_use}")
            mailbox_id = insert_mailbox(conn, account_id, name, special_use)
            tx.changes.append(MailboxesChanged(account_id))
            row = conn.execute(f"{_MAILBOX_SELECT} WHERE m.id = ?", (mailbox_id,)).fetchone()
            return _mailbox(row)

        return await self._write(op)

    async def delete_mailbox(self, account_id: int, name: str) -> None:
        if name == "INBOX":
            raise Conflict("INBOX cannot be deleted")

        def op(tx: Tx) -> None:
            row = tx.conn.execute(
                "SELECT id FROM mailboxes WHERE account_id = ? AND name = ?", (account_id, name)
            ).fetchone()
            if row is None:
                raise NotFound(f"no mailbox {name}")
            drop_mailbox_rows(tx.conn, row[0])
            collect_blobs(tx)
            tx.changes.append(MailboxesChanged(account_id))

        await self._write(op)

    async def rename_mailbox(self, account_id: int, old: str, new: str) -> None:
        def op(tx: Tx) -> None:
            conn = tx.conn
            row = conn.execute(
                "SELECT id FROM mailboxes WHERE account_id = ? AND name = ?", (account_id, old)
            ).fetchone()
            if row is None:
                raise NotFound(f"no mailbox {old}")
            if new == old or new == "INBOX":
                raise AlreadyExists(f"mailbox {new} exists")
            if new.startswith(old + HIERARCHY_SEPARATOR):
                raise Conflict("cannot rename a mailbox into itself")
            exists = conn.execute(
                "SELECT 1 FROM mailboxes WHERE account_id = ? AND name = ?", (account_id, new)
            ).fetchone()
            if exists:
                raise AlreadyExists(f"mailbox {new} exists")
            if old == "INBOX":
                # RFC 9051 §6.3.6: INBOX's messages move to a new mailbox; INBOX stays,
                # empty, and its inferiors are not renamed.
                target = insert_mailbox(conn, account_id, new, None)
                uids = [r[0] for r in flag_rows(conn, row[0], None)]
                move_rows(tx, row[0], uids, target)
                tx.changes.append(MailboxesChanged(account_id))
                return
            prefix = old + HIERARCHY_SEPARATOR
            family = [(row[0], old)] + [
                (r[0], r[1])
                for r in conn.execute(
                    "SELECT id, name FROM mailboxes WHERE account_id = ?"
                    " AND substr(name, 1, ?) = ? ORDER BY name",
                    (account_id, len(prefix), prefix),
                )
            ]
            renamed = [(mid, name, new + name[len(old) :]) for mid, name in family]
            for _, _, target_name in renamed[1:]:
                if conn.execute(
                    "SELECT 1 FROM mailboxes WHERE account_id = ? AND name = ?",
                    (account_id, target_name),
                ).fetchone():
                    raise AlreadyExists(f"mailbox {target_name} exists")
            for mid, old_name, new_name in renamed:
                # A renamed mailbox gets a fresh UIDVALIDITY, so no name ever shows a
                # UIDVALIDITY it had before (a client's cache by name stays safe).
                conn.execute(
                    "UPDATE mailboxes SET name = ?, uidvalidity = ? WHERE id = ?",
                    (new_name, next_uidvalidity(conn), mid),
                )
                if conn.execute(
                    "DELETE FROM subscriptions WHERE account_id = ? AND name = ?",
                    (account_id, old_name),
                ).rowcount:
                    conn.execute(
                        "INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?, ?)",
                        (account_id, new_name),
                    )
            tx.changes.append(MailboxesChanged(account_id))

        await self._write(op)

    async def set_subscribed(self, account_id: int, name: str, subscribed: bool) -> None:
        def op(tx: Tx) -> None:
            if subscribed:
                tx.conn.execute(
                    "INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?, ?)",
                    (account_id, name),
                )
            else:
                tx.conn.execute(
                    "DELETE FROM subscriptions WHERE account_id = ? AND name = ?",
                    (account_id, name),
                )
            tx.changes.append(MailboxesChanged(account_id))

        await self._write(op)

    async def list_subscriptions(self, account_id: int) -> list[str]:
        def q(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT name FROM subscriptions WHERE account_id = ?"
                " ORDER BY name != 'INBOX', name",
                (account_id,),
            )
            return [r[0] for r in rows]

        return await self._read(q)

    async def claim_recent(self, mailbox_id: int, up_to: int | None) -> int:
        def current(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT recent_uid FROM mailboxes WHERE id = ?", (mailbox_id,)
            ).fetchone()
            if row is None:
                raise NotFound("mailbox")
            return int(row[0])

        if up_to is None:
            return await self._read(current)

        def op(tx: Tx) -> int:
            before = current(tx.conn)
            if up_to > before:
                tx.conn.execute(
                    "UPDATE mailboxes SET recent_uid = ? WHERE id = ?", (up_to, mailbox_id)
                )
            return before

        # Not synced on its own: a claim lost with the power makes mail recent again.
        return await self._write(op, durable=False)

    async def count_recent(self, mailbox_id: int) -> int:
        def q(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT count(*) FROM messages WHERE mailbox_id = ?"
                " AND uid > (SELECT recent_uid FROM mailboxes WHERE id = ?)",
                (mailbox_id, mailbox_id),
            ).fetchone()
            return int(row[0])

        return await self._read(q)

    async def mailbox_status(self, mailbox_id: int) -> MailboxStatus:
        return await self._read(lambda conn: mailbox_counters(conn, mailbox_id)[0])
