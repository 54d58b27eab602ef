"""Message submission (RFC 6409): what an authenticated user may send, and as whom.

Owns the sender rules (an account may use as envelope sender and in ``From:`` only its
own address, its sub-addresses ``user+tag@domain`` and the aliases that deliver to it;
anything else is `SenderNotOwned`, 5.7.1), the header fixes RFC 6409 §8 allows a submission
server (``Message-ID`` and ``Date`` when missing), and the split of recipients into
local copies and the outbound queue, which `DeliveryService` carries out. Whether a copy
goes to the sender's Sent mailbox is configuration (``smtp.save_submitted_to_sent``):
most clients save their own copy over IMAP, and a second one would be a duplicate.

Catch-all aliases do not grant sending rights: receiving everything for a domain is not
the same as being allowed to speak for every address in it.

Must not: speak SMTP, check passwords (`services.auth` does), or talk to other servers.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import format_datetime

from pillarbox.message import addresses, get_header
from pillarbox.model import Account
from pillarbox.rules.addresses import InvalidAddress, normalize_address
from pillarbox.services.delivery import DeliveryService, Envelope, IncomingMessage
from pillarbox.services.errors import Rejected
from pillarbox.store.api import Store


class SenderNotOwned(Rejected):
    """The envelope sender or a From: address is not the account's to use (RFC 3463
    5.7.1). A class of its own so that a front-end can answer it apart from other
    refusals with the same status (the table in `server.smtp` gives it 553, not 550)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} not owned by the authenticated user", status="5.7.1")


class SubmissionService:
    def __init__(
        self,
        store: Store,
        delivery: DeliveryService,
        *,
        hostname: str,
        save_to_sent: bool = False,
    ) -> None:
        self._store = store
        self._delivery = delivery
        self.hostname = hostname
        self.save_to_sent = save_to_sent

    async def allowed_senders(self, account: Account) -> frozenset[str]:
        """The account's address and every non-catch-all alias delivering to it, in the
        canonical form they are stored in. Aliases of aliases count too (a chain ends at
        the account)."""
        owned = {account.address}
        aliases = await self._store.list_aliases()
        changed = True
        while changed:
            changed = False
            for alias in aliases:
                source = alias.source
                if source.startswith("@") or source in owned:
                    continue
                if any(t in owned for t in alias.targets):
                    owned.add(source)
                    changed = True
        return frozenset(owned)

    @staticmethod
    def owns(allowed: frozenset[str], address: str) -> bool:
        """Is `address` (or its base without +tag) among `allowed`? Compared in canonical
        form (`rules.addresses`), so case, an IDN or needless quotes change nothing."""
        try:
            address = normalize_address(address)
        except InvalidAddress:
            return False
        if address in allowed:
            return True
        local, _, domain = address.rpartition("@")
        base, plus, _tag = local.partition("+")
        return bool(plus and base) and f"{base}@{domain}" in allowed

    async def check_sender(self, account: Account, sender: str) -> frozenset[str]:
        """Refuse an envelope sender the account does not own; return the owned set
        (kept for the From: check). The null sender is refused: bounces come from the
        server's queue, never from a user."""
        allowed = await self.allowed_senders(account)
        if not sender or not self.owns(allowed, sender):
            raise SenderNotOwned("Sender address")
        return allowed

    def header_filter(self, allowed: frozenset[str]) -> Callable[[bytes], Awaitable[bytes]]:
        """The check run on the submitted header block: every From: address must be
        owned; returns the Message-ID and Date fields to add when missing."""

        async def check(header: bytes) -> bytes:
            return self.fix_header(header, allowed)

        return check

    def fix_header(self, header: bytes, allowed: frozenset[str]) -> bytes:
        from_value = get_header(header, "From")
        if from_value is None:
            raise Rejected("Message has no From header", status="5.6.0")
        senders = addresses(from_value)
        if not senders or not all(self.owns(allowed, addr) for _name, addr in senders):
            raise SenderNotOwned("From header address")
        added: list[str] = []
        if get_header(header, "Message-ID") is None:
            added.append(f"Message-ID: <{secrets.token_hex(16)}@{self.hostname}>\r\n")
        if get_header(header, "Date") is None:
            added.append(f"Date: {format_datetime(datetime.now(UTC))}\r\n")
        return "".join(added).encode("ascii")

    def begin(
        self,
        account: Account,
        allowed: frozenset[str],
        envelope: Envelope,
        *,
        save_copy: bool | None = None,
    ) -> IncomingMessage:
        """Receive a submitted message; local recipients get copies, remote ones are
        queued, and the sender's Sent mailbox gets a \\Seen copy if `save_copy` (None:
        as configured). The webmail passes True: it is the client, and no other client
        will save the copy."""
        envelope = dataclasses.replace(envelope, submitted=True)
        if self.save_to_sent if save_copy is None else save_copy:
            envelope = dataclasses.replace(envelope, sent_copy_account=account.id)
        return self._delivery.begin(envelope, header_filter=self.header_filter(allowed))
