"""PostgreSQL: the messages concern of `PgStore` (stub: to be written)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pillarbox.model import (
    AppendResult,
    CopyResult,
    FlagMode,
    MessageMeta,
    StoreFlagsResult,
)
from pillarbox.store.api import BlobHandle, Delivery
from pillarbox.store.postgres.core import PgCore


class MessagesMixin(PgCore):
    """The messages methods of the store contract on PostgreSQL."""

    async def append(
        self,
        mailbox_id: int,
        blob: BlobHandle,
        meta: MessageMeta,
        flags: frozenset[str] = frozenset(),
        internaldate: datetime | None = None,
    ) -> AppendResult:
        raise NotImplementedError

    async def replace(
        self,
        mailbox_id: int,
        uid: int,
        dst_mailbox_id: int,
        blob: BlobHandle,
        meta: MessageMeta,
        flags: frozenset[str] = frozenset(),
        internaldate: datetime | None = None,
    ) -> AppendResult:
        raise NotImplementedError

    async def deliver(self, deliveries: Sequence[Delivery]) -> list[AppendResult]:
        raise NotImplementedError

    async def set_flags(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        flags: frozenset[str],
        mode: FlagMode,
        unchanged_since: int | None = None,
    ) -> StoreFlagsResult:
        raise NotImplementedError

    async def copy(
        self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int
    ) -> CopyResult:
        raise NotImplementedError

    async def move(
        self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int
    ) -> CopyResult:
        # RFC 6851 §3.3: atomic: both halves are in this one operation's savepoint.
        raise NotImplementedError

    async def expunge(self, mailbox_id: int, uids: Sequence[int] | None = None) -> list[int]:
        raise NotImplementedError

    async def pop_hide(self, mailbox_id: int, uids: Sequence[int]) -> None:
        raise NotImplementedError
