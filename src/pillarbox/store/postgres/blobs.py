"""PostgreSQL: message bodies as chunked bytea (stub: to be written)."""

from __future__ import annotations

from pillarbox.store.api import BlobReader, BlobWriter
from pillarbox.store.postgres.core import PgCore


class BlobsMixin(PgCore):
    """The blob operations of the store contract on PostgreSQL."""

    def new_blob(self) -> BlobWriter:
        raise NotImplementedError

    async def open_blob(self, blob_id: int, start: int = 0) -> BlobReader:
        raise NotImplementedError

    async def read_blob(self, blob_id: int, start: int = 0, length: int | None = None) -> bytes:
        raise NotImplementedError

    async def delete_blob(self, blob_id: int) -> None:
        raise NotImplementedError
