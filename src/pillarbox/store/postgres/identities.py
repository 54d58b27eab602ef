"""Identities in the PostgreSQL backend.

Owns the ``identities`` rows: one per (account, address), listed in the order they were
added (as `store.sqlite.identities`). Must not: decide which addresses an account may
use (that is `services.identities`, through the aliases).
"""

from __future__ import annotations

import asyncpg

from pillarbox.model.identities import Identity, NewIdentity
from pillarbox.store.errors import NotFound
from pillarbox.store.postgres.core import Conn, PgCore, PgTx

_COLUMNS = "id, account_id, address, display_name, signature"


def _identity(row: asyncpg.Record) -> Identity:
    return Identity(int(row[0]), int(row[1]), str(row[2]), str(row[3]), str(row[4]))


class IdentitiesMixin(PgCore):
    """The identity operations of `PgStore`."""

    async def add_identity(self, identity: NewIdentity) -> Identity:
        async def op(tx: PgTx) -> Identity:
            conn = tx.conn
            # FOR NO KEY UPDATE: two identities added at once to one account get
            # distinct positions (the second waits, then sees the first's row).
            found = await conn.fetchval(
                "SELECT 1 FROM accounts WHERE id = $1 FOR NO KEY UPDATE", identity.account_id
            )
            if found is None:
                raise NotFound(f"no account {identity.account_id}")
            row = await conn.fetchrow(
                "INSERT INTO identities (account_id, address, display_name, signature,"
                " position) VALUES ($1, $2, $3, $4, (SELECT coalesce(max(position), 0) + 1"
                f" FROM identities WHERE account_id = $1)) RETURNING {_COLUMNS}",
                identity.account_id,
                identity.address,
                identity.display_name,
                identity.signature,
            )
            assert row is not None  # INSERT ... RETURNING of one row
            return _identity(row)

        return await self._write(op)

    async def list_identities(self, account_id: int) -> list[Identity]:
        async def q(conn: Conn) -> list[Identity]:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM identities WHERE account_id = $1 ORDER BY position, id",
                account_id,
            )
            return [_identity(r) for r in rows]

        return await self._read(q)

    async def update_identity(self, identity: Identity) -> Identity:
        async def op(tx: PgTx) -> Identity:
            row = await tx.conn.fetchrow(
                "UPDATE identities SET address = $1, display_name = $2, signature = $3"
                f" WHERE id = $4 AND account_id = $5 RETURNING {_COLUMNS}",
                identity.address,
                identity.display_name,
                identity.signature,
                identity.id,
                identity.account_id,
            )
            if row is None:
                raise NotFound(f"no identity {identity.id} for account {identity.account_id}")
            return _identity(row)

        return await self._write(op)

    async def remove_identity(self, account_id: int, identity_id: int) -> None:
        async def op(tx: PgTx) -> None:
            gone = await tx.conn.fetchval(
                "DELETE FROM identities WHERE id = $1 AND account_id = $2 RETURNING id",
                identity_id,
                account_id,
            )
            if gone is None:
                raise NotFound(f"no identity {identity_id} for account {account_id}")

        await self._write(op)
