"""PostgreSQL: the image senders concern of `PgStore` (stub: to be written)."""

from __future__ import annotations

from pillarbox.store.postgres.core import PgCore


class ImageSendersMixin(PgCore):
    """The image senders methods of the store contract on PostgreSQL."""

    async def add_image_sender(self, account_id: int, address: str) -> None:
        raise NotImplementedError

    async def remove_image_sender(self, account_id: int, address: str) -> None:
        raise NotImplementedError

    async def is_image_sender(self, account_id: int, address: str) -> bool:
        raise NotImplementedError

    async def list_image_senders(self, account_id: int) -> list[str]:
        raise NotImplementedError
