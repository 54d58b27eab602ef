"""PostgreSQL: the reading concern of `PgStore` (stub: to be written)."""

from __future__ import annotations

from collections.abc import Sequence

from pillarbox.model import FlagRow, MailboxStatus, MessageInfo, SearchKey
from pillarbox.store.postgres.core import PgCore


class ReadingMixin(PgCore):
    """The reading methods of the store contract on PostgreSQL."""

    async def uids(self, mailbox_id: int) -> list[int]:
        raise NotImplementedError

    async def fetch_flags(self, mailbox_id: int, uids: Sequence[int]) -> list[FlagRow]:
        raise NotImplementedError

    async def fetch_flag_bits(
        self, mailbox_id: int, uids: Sequence[int]
    ) -> tuple[list[tuple[int, int, int]], dict[int, list[str]]]:
        # The raw rows of `fetch_flags`: no FlagRow or frozenset per message.
        raise NotImplementedError

    async def fetch(self, mailbox_id: int, uids: Sequence[int]) -> list[MessageInfo]:
        raise NotImplementedError

    async def fetch_with_bodies(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        max_bytes: int,
        *,
        max_each: int | None = None,
    ) -> list[tuple[MessageInfo, bytes | None]]:
        # `fetch` plus whole message files in one reader job: a FETCH BODY[] of one
        # message is one thread hop instead of two (rows, then bytes).
        raise NotImplementedError

    async def read_message(
        self, mailbox_id: int, uid: int, start: int = 0, length: int | None = None
    ) -> bytes:
        raise NotImplementedError

    async def read_messages(
        self, mailbox_id: int, ranges: Sequence[tuple[int, int, int | None]]
    ) -> list[bytes | None]:
        # One reader job for the whole batch: the blob ids are looked up and the files
        # read in the same thread hop (a FETCH of 50 bodies is one hop, not 100).
        raise NotImplementedError

    async def select_snapshot(self, mailbox_id: int) -> tuple[list[int], MailboxStatus, int | None]:
        # SELECT in one read transaction: the UID list, the counters and the first
        # unseen UID all come from the same snapshot, in one thread hop.
        raise NotImplementedError

    async def search(self, mailbox_id: int, key: SearchKey) -> list[int]:
        raise NotImplementedError

    async def changes_since(self, mailbox_id: int, modseq: int) -> tuple[list[FlagRow], list[int]]:
        raise NotImplementedError

    async def pop_hidden(self, mailbox_id: int) -> set[int]:
        raise NotImplementedError
