"""The senders whose remote images an account's webmail shows without asking.

A remote image is a read receipt: fetching it tells the sender when and from where the
message was read. So the webmail blocks them, and the reader may allow them once (for
one message: nothing is stored) or always for one sender (stored here). The sender is
the From address, in canonical form (`rules.addresses`), so ``Bob@Example.TEST`` and
``bob@example.test`` are one sender; an address that is not one (a broken From) cannot
be trusted.

Must not: decide how images are shown (the webmail does), or reach another account's
list: every call names the signed-in account.
"""

from __future__ import annotations

from pillarbox.rules.addresses import InvalidAddress, normalize_address
from pillarbox.services.mailbox import call_store
from pillarbox.store.api import Store


def canonical_sender(address: str) -> str | None:
    """`address` in the form the list keeps, or None when it is not an address."""
    try:
        return normalize_address(address)
    except InvalidAddress:
        return None


class ImageSenders:
    """One account's trusted image senders."""

    def __init__(self, store: Store, account_id: int) -> None:
        self.store = store
        self.account_id = account_id

    async def trusts(self, address: str) -> bool:
        sender = canonical_sender(address)
        if sender is None:
            return False
        return await call_store(self.store.is_image_sender(self.account_id, sender))

    async def trust(self, address: str) -> bool:
        """Always show `address`'s images; False when it is not an address."""
        sender = canonical_sender(address)
        if sender is None:
            return False
        await call_store(
            self.store.add_image_sender(self.account_id, sender), not_found="No such account"
        )
        return True

    async def forget(self, address: str) -> None:
        sender = canonical_sender(address)
        if sender is not None:
            await call_store(self.store.remove_image_sender(self.account_id, sender))

    async def all(self) -> list[str]:
        return await call_store(self.store.list_image_senders(self.account_id))
