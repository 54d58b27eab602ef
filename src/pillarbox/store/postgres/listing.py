"""PostgreSQL: the listing concern of `PgStore` (stub: to be written)."""

from __future__ import annotations

from pillarbox.model import MessagePage, ThreadSummary
from pillarbox.store.postgres.core import PgCore


class ListingMixin(PgCore):
    """The listing methods of the store contract on PostgreSQL."""

    async def page_uids(
        self,
        mailbox_id: int,
        limit: int,
        *,
        offset: int = 0,
        before: int | None = None,
        after: int | None = None,
    ) -> MessagePage:
        raise NotImplementedError

    async def thread_page(
        self, mailbox_id: int, limit: int, offset: int = 0
    ) -> tuple[list[ThreadSummary], bool]:
        raise NotImplementedError
