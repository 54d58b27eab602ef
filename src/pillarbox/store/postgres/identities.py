"""PostgreSQL: the identities concern of `PgStore` (stub: to be written)."""

from __future__ import annotations

from pillarbox.model.identities import Identity, NewIdentity
from pillarbox.store.postgres.core import PgCore


class IdentitiesMixin(PgCore):
    """The identities methods of the store contract on PostgreSQL."""

    async def add_identity(self, identity: NewIdentity) -> Identity:
        raise NotImplementedError

    async def list_identities(self, account_id: int) -> list[Identity]:
        raise NotImplementedError

    async def update_identity(self, identity: Identity) -> Identity:
        raise NotImplementedError

    async def remove_identity(self, account_id: int, identity_id: int) -> None:
        raise NotImplementedError
