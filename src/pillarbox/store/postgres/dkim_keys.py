"""PostgreSQL: the dkim keys concern of `PgStore` (stub: to be written)."""

from __future__ import annotations

from pillarbox.model import DkimKey
from pillarbox.store.postgres.core import PgCore


class DkimKeysMixin(PgCore):
    """The dkim keys methods of the store contract on PostgreSQL."""

    async def put_dkim_key(self, key: DkimKey) -> None:
        raise NotImplementedError

    async def list_dkim_keys(self, domain: str | None = None) -> list[DkimKey]:
        raise NotImplementedError
