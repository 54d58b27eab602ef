"""Trusted image senders in the PostgreSQL backend.

Owns the ``image_senders`` rows: per account, the sender addresses whose remote images
the webmail shows without asking. Adding one that is there already changes nothing (as
`store.sqlite.image_senders`). Must not: normalise addresses (services give them
canonical) or decide what trust means.
"""

from __future__ import annotations

import time

from pillarbox.store.errors import NotFound
from pillarbox.store.postgres.core import Conn, PgCore, PgTx


class ImageSendersMixin(PgCore):
    """The trusted-image-sender operations of `PgStore`."""

    async def add_image_sender(self, account_id: int, address: str) -> None:
        async def op(tx: PgTx) -> None:
            found = await tx.conn.fetchval("SELECT 1 FROM accounts WHERE id = $1", account_id)
            if found is None:
                raise NotFound(f"no account {account_id}")
            await tx.conn.execute(
                "INSERT INTO image_senders (account_id, address, added_at) VALUES ($1, $2, $3)"
                " ON CONFLICT DO NOTHING",
                account_id,
                address,
                time.time(),
            )

        await self._write(op)

    async def remove_image_sender(self, account_id: int, address: str) -> None:
        async def op(tx: PgTx) -> None:
            await tx.conn.execute(
                "DELETE FROM image_senders WHERE account_id = $1 AND address = $2",
                account_id,
                address,
            )

        await self._write(op)

    async def is_image_sender(self, account_id: int, address: str) -> bool:
        async def q(conn: Conn) -> bool:
            row = await conn.fetchval(
                "SELECT 1 FROM image_senders WHERE account_id = $1 AND address = $2",
                account_id,
                address,
            )
            return row is not None

        return await self._read(q)

    async def list_image_senders(self, account_id: int) -> list[str]:
        async def q(conn: Conn) -> list[str]:
            rows = await conn.fetch(
                "SELECT address FROM image_senders WHERE account_id = $1 ORDER BY address",
                account_id,
            )
            return [str(r[0]) for r in rows]

        return await self._read(q)
