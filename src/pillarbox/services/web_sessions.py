"""The webmail's sign-in sessions as the store keeps them, for `web.sessions`.

Front-ends never touch the store themselves, so the session table reaches the webmail
through this thin service: it names the store's operations the way `web.sessions` uses
them and turns a store that cannot be reached into `TempFailure`, which the webmail
answers with its "try again" page. The sessions are rows every worker process and node
reads (both backends), so a browser whose requests land on any worker or node stays
signed in.

Must not: decide when a session ends (idle and lifetime limits are `web.sessions`'s).
"""

from __future__ import annotations

from pillarbox.model import Account
from pillarbox.model.cluster import WebSessionRecord
from pillarbox.services.errors import TempFailure
from pillarbox.store.api import Store
from pillarbox.store.errors import StoreError


def _unavailable(exc: StoreError) -> TempFailure:
    return TempFailure(f"Sessions are temporarily unavailable ({type(exc).__name__})")


class WebSessionTable:
    """The store's web-session operations, with store errors as `TempFailure`."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def account(self, account_id: int) -> Account | None:
        try:
            return await self._store.get_account_by_id(account_id)
        except StoreError as exc:
            raise _unavailable(exc) from None

    async def add(self, record: WebSessionRecord) -> None:
        try:
            await self._store.add_web_session(record)
        except StoreError as exc:
            raise _unavailable(exc) from None

    async def get(self, id_hash: str) -> WebSessionRecord | None:
        try:
            return await self._store.get_web_session(id_hash)
        except StoreError as exc:
            raise _unavailable(exc) from None

    async def touch(self, id_hash: str, last_seen: float) -> None:
        try:
            await self._store.touch_web_session(id_hash, last_seen)
        except StoreError as exc:
            raise _unavailable(exc) from None

    async def remove(self, id_hash: str) -> None:
        try:
            await self._store.remove_web_session(id_hash)
        except StoreError as exc:
            raise _unavailable(exc) from None

    async def remove_others(self, account_id: int, keep: str) -> list[str]:
        """End the account's sessions but the one hashed `keep`; the hashes ended."""
        try:
            return await self._store.remove_account_web_sessions(account_id, keep)
        except StoreError as exc:
            raise _unavailable(exc) from None
