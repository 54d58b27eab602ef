"""DKIM signing keys in the SQLite backend.

Owns the ``dkim_keys`` rows: one key per (domain, selector), replaced whole when put
again, so rotating a key under a new selector keeps the old one for as long as its DNS
record is still published. Must not: generate keys, sign, or check what a key's bytes
hold (that is `mailauth/` and the services above).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from pillarbox.model import DkimKey
from pillarbox.store.sqlite.core import SqliteCore
from pillarbox.store.sqlite.writer import Tx
from pillarbox.store.times import exact_epoch

_COLUMNS = "domain, selector, algorithm, private_key, public_key, created_at"


class DkimKeysMixin(SqliteCore):
    """The DKIM-key operations of `SqliteStore`."""

    async def put_dkim_key(self, key: DkimKey) -> None:
        row = (
            key.domain,
            key.selector,
            key.algorithm,
            bytes(key.private_key),
            key.public_key,
            exact_epoch(key.created_at),
        )

        def op(tx: Tx) -> None:
            tx.conn.execute(
                f"INSERT INTO dkim_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (domain, selector) DO UPDATE SET algorithm = excluded.algorithm,"
                " private_key = excluded.private_key, public_key = excluded.public_key,"
                " created_at = excluded.created_at",
                row,
            )

        await self._write(op)

    async def list_dkim_keys(self, domain: str | None = None) -> list[DkimKey]:
        def q(conn: sqlite3.Connection) -> list[DkimKey]:
            order = " ORDER BY created_at DESC, domain, selector"
            if domain is None:
                rows = conn.execute(f"SELECT {_COLUMNS} FROM dkim_keys{order}")
            else:
                rows = conn.execute(
                    f"SELECT {_COLUMNS} FROM dkim_keys WHERE domain = ?{order}", (domain,)
                )
            return [
                DkimKey(d, s, alg, bytes(priv), pub, datetime.fromtimestamp(at, UTC))
                for d, s, alg, priv, pub, at in rows
            ]

        return await self._read(q)
