"""DKIM signing keys in the PostgreSQL backend.

Owns the ``dkim_keys`` rows: one key per (domain, selector), replaced whole when put
again, so rotating a key under a new selector keeps the old one for as long as its DNS
record is still published (as `store.sqlite.dkim_keys`). Must not: generate keys, sign,
or check what a key's bytes hold (that is `mailauth/` and the services above).
"""

from __future__ import annotations

from datetime import UTC, datetime

from pillarbox.model import DkimKey
from pillarbox.store.postgres.core import Conn, PgCore, PgTx
from pillarbox.store.times import exact_epoch

_COLUMNS = "domain, selector, algorithm, private_key, public_key, created_at"


class DkimKeysMixin(PgCore):
    """The DKIM-key operations of `PgStore`."""

    async def put_dkim_key(self, key: DkimKey) -> None:
        row = (
            key.domain,
            key.selector,
            key.algorithm,
            bytes(key.private_key),
            key.public_key,
            exact_epoch(key.created_at),
        )

        async def op(tx: PgTx) -> None:
            await tx.conn.execute(
                f"INSERT INTO dkim_keys ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
                " ON CONFLICT (domain, selector) DO UPDATE SET algorithm = excluded.algorithm,"
                " private_key = excluded.private_key, public_key = excluded.public_key,"
                " created_at = excluded.created_at",
                *row,
            )

        await self._write(op)

    async def list_dkim_keys(self, domain: str | None = None) -> list[DkimKey]:
        async def q(conn: Conn) -> list[DkimKey]:
            order = " ORDER BY created_at DESC, domain, selector"
            if domain is None:
                rows = await conn.fetch(f"SELECT {_COLUMNS} FROM dkim_keys{order}")
            else:
                rows = await conn.fetch(
                    f"SELECT {_COLUMNS} FROM dkim_keys WHERE domain = $1{order}", domain
                )
            return [
                DkimKey(d, s, alg, bytes(priv), pub, datetime.fromtimestamp(at, UTC))
                for d, s, alg, priv, pub, at in rows
            ]

        return await self._read(q)
