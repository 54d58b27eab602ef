"""Identities in the SQLite backend.

Owns the ``identities`` rows: one per (account, address), listed in the order they were
added. Must not: decide which addresses an account may use (that is
`services.identities`, through the aliases).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from pillarbox.model.identities import Identity, NewIdentity
from pillarbox.store.errors import NotFound
from pillarbox.store.sqlite.core import SqliteCore
from pillarbox.store.sqlite.writer import Tx

_COLUMNS = "id, account_id, address, display_name, signature"


def _identity(row: Sequence[Any]) -> Identity:
    return Identity(int(row[0]), int(row[1]), str(row[2]), str(row[3]), str(row[4]))


class IdentitiesMixin(SqliteCore):
    """The identity operations of `SqliteStore`."""

    async def add_identity(self, identity: NewIdentity) -> Identity:
        def op(tx: Tx) -> Identity:
            conn = tx.conn
            found = conn.execute("SELECT 1 FROM accounts WHERE id = ?", (identity.account_id,))
            if found.fetchone() is None:
                raise NotFound(f"no account {identity.account_id}")
            row = conn.execute(
                "INSERT INTO identities (account_id, address, display_name, signature,"
                " position) VALUES (?, ?, ?, ?, (SELECT COALESCE(MAX(position), 0) + 1"
                f" FROM identities WHERE account_id = ?)) RETURNING {_COLUMNS}",
                (
                    identity.account_id,
                    identity.address,
                    identity.display_name,
                    identity.signature,
                    identity.account_id,
                ),
            ).fetchone()
            return _identity(row)

        return await self._write(op)

    async def list_identities(self, account_id: int) -> list[Identity]:
        def q(conn: sqlite3.Connection) -> list[Identity]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM identities WHERE account_id = ? ORDER BY position, id",
                (account_id,),
            )
            return [_identity(r) for r in rows]

        return await self._read(q)

    async def update_identity(self, identity: Identity) -> Identity:
        def op(tx: Tx) -> Identity:
            row = tx.conn.execute(
                "UPDATE identities SET address = ?, display_name = ?, signature = ?"
                f" WHERE id = ? AND account_id = ? RETURNING {_COLUMNS}",
                (
                    identity.address,
                    identity.display_name,
                    identity.signature,
                    identity.id,
                    identity.account_id,
                ),
            ).fetchone()
            if row is None:
                raise NotFound(f"no identity {identity.id} for account {identity.account_id}")
            return _identity(row)

        return await self._write(op)

    async def remove_identity(self, account_id: int, identity_id: int) -> None:
        def op(tx: Tx) -> None:
            gone = tx.conn.execute(
                "DELETE FROM identities WHERE id = ? AND account_id = ? RETURNING id",
                (identity_id, account_id),
            ).fetchone()
            if gone is None:
                raise NotFound(f"no identity {identity_id} for account {account_id}")

        await self._write(op)
