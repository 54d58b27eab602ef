"""PostgreSQL: the fetch sources concern of `PgStore` (stub: to be written)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from pillarbox.model import AppendResult
from pillarbox.model.fetch import (
    FetchedCopy,
    FetchedEntry,
    FetchedRecord,
    FetchFolderState,
    FetchRun,
    FetchSource,
    NewFetchSource,
)
from pillarbox.store.api import Delivery
from pillarbox.store.postgres.core import PgCore


class FetchSourcesMixin(PgCore):
    """The fetch sources methods of the store contract on PostgreSQL."""

    async def add_fetch_source(self, source: NewFetchSource) -> FetchSource:
        raise NotImplementedError

    async def list_fetch_sources(self, account_id: int | None = None) -> list[FetchSource]:
        raise NotImplementedError

    async def get_fetch_source(self, source_id: int) -> FetchSource | None:
        raise NotImplementedError

    async def remove_fetch_source(self, account_id: int, source_id: int) -> None:
        raise NotImplementedError

    async def record_fetch_run(self, source_id: int, run: FetchRun) -> FetchSource:
        raise NotImplementedError

    async def resume_fetch_source(self, account_id: int, source_id: int) -> FetchSource:
        raise NotImplementedError

    async def update_fetch_source(self, source_id: int, source: NewFetchSource) -> FetchSource:
        raise NotImplementedError

    async def claim_fetch_source(
        self, source_id: int, holder: str, until: datetime
    ) -> FetchSource | None:
        raise NotImplementedError

    async def release_fetch_source(self, source_id: int, holder: str) -> None:
        raise NotImplementedError

    async def fetched(self, source_id: int, folder: str) -> list[FetchedEntry]:
        raise NotImplementedError

    async def fetch_folders(self, source_id: int) -> list[FetchFolderState]:
        raise NotImplementedError

    async def fetched_copies(
        self, source_id: int, folder: str, uidvalidity: int
    ) -> list[FetchedCopy]:
        raise NotImplementedError

    async def set_fetched_flags(
        self, source_id: int, folder: str, uidvalidity: int, flags: Mapping[int, frozenset[str]]
    ) -> None:
        raise NotImplementedError

    async def deliver_fetched(self, delivery: Delivery, record: FetchedRecord) -> AppendResult:
        raise NotImplementedError

    async def mark_fetched(self, records: Sequence[FetchedRecord]) -> None:
        raise NotImplementedError

    async def set_fetch_folder(self, source_id: int, state: FetchFolderState) -> None:
        raise NotImplementedError

    async def forget_fetched(
        self,
        source_id: int,
        folder: str,
        remote_ids: Sequence[str],
        *,
        keep_uidvalidity: int | None = None,
    ) -> None:
        raise NotImplementedError
