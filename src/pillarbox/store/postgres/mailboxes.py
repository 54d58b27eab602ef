"""PostgreSQL: the mailboxes concern of `PgStore` (stub: to be written)."""

from __future__ import annotations

from pillarbox.model import Mailbox, MailboxStatus
from pillarbox.store.postgres.core import PgCore


class MailboxesMixin(PgCore):
    """The mailboxes methods of the store contract on PostgreSQL."""

    async def list_mailboxes(self, account_id: int) -> list[Mailbox]:
        raise NotImplementedError

    async def get_mailbox(self, account_id: int, name: str) -> Mailbox | None:
        raise NotImplementedError

    async def get_mailbox_by_id(self, mailbox_id: int) -> Mailbox | None:
        raise NotImplementedError

    async def get_special_mailbox(self, account_id: int, special_use: str) -> Mailbox | None:
        raise NotImplementedError

    async def create_mailbox(
        self, account_id: int, name: str, special_use: str | None = None
    ) -> Mailbox:
        raise NotImplementedError

    async def delete_mailbox(self, account_id: int, name: str) -> None:
        raise NotImplementedError

    async def rename_mailbox(self, account_id: int, old: str, new: str) -> None:
        raise NotImplementedError

    async def set_subscribed(self, account_id: int, name: str, subscribed: bool) -> None:
        raise NotImplementedError

    async def list_subscriptions(self, account_id: int) -> list[str]:
        raise NotImplementedError

    async def claim_recent(self, mailbox_id: int, up_to: int | None) -> int:
        raise NotImplementedError

    async def count_recent(self, mailbox_id: int) -> int:
        raise NotImplementedError

    async def mailbox_status(self, mailbox_id: int) -> MailboxStatus:
        raise NotImplementedError
