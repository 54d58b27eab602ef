"""PostgreSQL: the accounts concern of `PgStore` (stub: to be written)."""

from __future__ import annotations

from collections.abc import Sequence

from pillarbox.model import (
    Account,
    Alias,
    Domain,
    PopOnRetrieve,
    PopScope,
    QuotaUsage,
)
from pillarbox.store.postgres.core import PgCore


class AccountsMixin(PgCore):
    """The accounts methods of the store contract on PostgreSQL."""

    async def add_domain(self, name: str) -> Domain:
        raise NotImplementedError

    async def get_domain(self, name: str) -> Domain | None:
        raise NotImplementedError

    async def list_domains(self) -> list[Domain]:
        raise NotImplementedError

    async def remove_domain(self, name: str) -> None:
        raise NotImplementedError

    async def add_account(self, address: str, password_hash: str) -> Account:
        raise NotImplementedError

    async def get_account(self, address: str) -> Account | None:
        raise NotImplementedError

    async def get_account_by_id(self, account_id: int) -> Account | None:
        raise NotImplementedError

    async def list_accounts(self, domain: str | None = None) -> list[Account]:
        raise NotImplementedError

    async def set_password_hash(self, address: str, password_hash: str) -> None:
        raise NotImplementedError

    async def set_quota(
        self, address: str, quota_bytes: int | None, quota_messages: int | None = None
    ) -> Account:
        raise NotImplementedError

    async def quota_usage(self, account_id: int) -> int:
        raise NotImplementedError

    async def quota(self, account_id: int) -> QuotaUsage:
        raise NotImplementedError

    async def remove_account(self, address: str) -> None:
        raise NotImplementedError

    async def set_pop_policy(
        self, address: str, on_retrieve: PopOnRetrieve, scope: PopScope
    ) -> Account:
        raise NotImplementedError

    async def add_alias(self, source: str, targets: Sequence[str]) -> Alias:
        raise NotImplementedError

    async def get_alias(self, source: str) -> Alias | None:
        raise NotImplementedError

    async def list_aliases(self) -> list[Alias]:
        raise NotImplementedError

    async def remove_alias(self, source: str) -> None:
        raise NotImplementedError
