"""PostgreSQL: the sorting concern of `PgStore` (stub: to be written)."""

from __future__ import annotations

from collections.abc import Sequence

from pillarbox.model.sorting import SortRow
from pillarbox.store.postgres.core import PgCore


class SortingMixin(PgCore):
    """The sorting methods of the store contract on PostgreSQL."""

    async def sort_rows(
        self, mailbox_id: int, uids: Sequence[int], *, with_references: bool = False
    ) -> list[SortRow]:
        raise NotImplementedError
