"""Trusted image senders in the SQLite backend.

Owns the ``image_senders`` rows: per account, the sender addresses whose remote images
the webmail shows without asking. Adding one that is there already changes nothing.
Must not: normalise addresses (services give them canonical) or decide what trust means.
"""

from __future__ import annotations

import sqlite3
import time

from pillarbox.store.errors import NotFound
from pillarbox.store.sqlite.core import SqliteCore
from pillarbox.store.sqlite.writer import Tx


class ImageSendersMixin(SqliteCore):
    """The trusted-image-sender operations of `SqliteStore`."""

    async def add_image_sender(self, account_id: int, address: str) -> None:
        def op(tx: Tx) -> None:
            found = tx.conn.execute("SELECT 1 FROM accounts WHERE id = ?", (account_id,))
            if found.fetchone() is None:
                raise NotFound(f"no account {account_id}")
            tx.conn.execute(
                "INSERT INTO image_senders (account_id, address, added_at) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (account_id, address, time.time()),
            )

        await self._write(op)

    async def remove_image_sender(self, account_id: int, address: str) -> None:
        def op(tx: Tx) -> None:
            tx.conn.execute(
                "DELETE FROM image_senders WHERE account_id = ? AND address = ?",
                (account_id, address),
            )

        await self._write(op)

    async def is_image_sender(self, account_id: int, address: str) -> bool:
        def q(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "SELECT 1 FROM image_senders WHERE account_id = ? AND address = ?",
                (account_id, address),
            ).fetchone()
            return row is not None

        return await self._read(q)

    async def list_image_senders(self, account_id: int) -> list[str]:
        def q(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT address FROM image_senders WHERE account_id = ? ORDER BY address",
                (account_id,),
            )
            return [address for (address,) in rows]

        return await self._read(q)
