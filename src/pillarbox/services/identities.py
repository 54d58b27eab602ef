"""Identities: the addresses a user writes as, each with a display name and a signature.

Why a service: which addresses an account may write as is the submission rule
(`SubmissionService.allowed_senders`: its own address and every alias that delivers to
it), and the webmail's settings page and its compose page must agree with it and with
each other. An identity whose alias was removed since is kept but no longer offered, so
compose never proposes a From: that submission would refuse. The account's own address
is always offered: with nothing stored for it, as a default identity with id 0 (no name,
no signature), which the settings page turns into a stored one when edited.

Must not: compose messages (the compose page does), or check the From: of a message
(submission does).
"""

from __future__ import annotations

import unicodedata

from pillarbox.model import Account
from pillarbox.model.identities import Identity, NewIdentity
from pillarbox.rules.addresses import InvalidAddress, normalize_address
from pillarbox.services.errors import AccountError
from pillarbox.services.submission import SubmissionService
from pillarbox.store import errors as store_errors
from pillarbox.store.api import Store

MAX_NAME = 200  # characters of a display name
MAX_SIGNATURE = 4000  # characters of a signature
MAX_IDENTITIES = 100  # per account


def clean_name(name: str) -> str:
    """A display name fit for a From: field: one line, no control characters (they
    would break the header or hide part of it), at most `MAX_NAME` characters."""
    text = name.strip()
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text):
        raise AccountError("the name may not hold line breaks or control characters")
    if len(text) > MAX_NAME:
        raise AccountError(f"the name is longer than {MAX_NAME} characters")
    return text


def clean_signature(signature: str) -> str:
    """Plain text with "\\n" line ends, without a "-- " line of its own (compose adds
    the separator, RFC 3676 §4.3) and without trailing blank lines."""
    lines = signature.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[0].rstrip() == "--":
        lines = lines[1:]
    text = "\n".join(line.rstrip() for line in lines).strip("\n")
    if any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in text):
        raise AccountError("the signature may not hold control characters")
    if len(text) > MAX_SIGNATURE:
        raise AccountError(f"the signature is longer than {MAX_SIGNATURE} characters")
    return text


class IdentityService:
    """The identities of accounts (see the module docstring)."""

    def __init__(self, store: Store, submission: SubmissionService) -> None:
        self._store = store
        self._submission = submission

    async def addresses(self, account: Account) -> list[str]:
        """What the account may write as: its own address first, then its aliases."""
        allowed = await self._submission.allowed_senders(account)
        return [account.address, *sorted(allowed - {account.address})]

    async def identities(self, account: Account) -> list[Identity]:
        """The identities compose may offer, the default one first (see module docstring)."""
        allowed = await self._submission.allowed_senders(account)
        stored = [i for i in await self._store.list_identities(account.id) if i.address in allowed]
        if not any(i.address == account.address for i in stored):
            stored.insert(0, Identity(0, account.id, account.address))
        return stored

    async def identity_for(self, account: Account, address: str) -> Identity | None:
        """The identity to write as `address` (its name and signature), or None if the
        account may not write as it."""
        try:
            wanted = normalize_address(address)
        except InvalidAddress:
            return None
        for identity in await self.identities(account):
            if identity.address == wanted:
                return identity
        return None

    async def _address(self, account: Account, address: str) -> str:
        try:
            canonical = normalize_address(address)
        except InvalidAddress:
            raise AccountError(f"not an email address: {address!r}") from None
        if canonical not in await self._submission.allowed_senders(account):
            raise AccountError(
                f"{canonical} is neither your address nor an alias that delivers to you"
            )
        return canonical

    async def save(
        self,
        account: Account,
        identity_id: int,
        address: str,
        display_name: str,
        signature: str,
    ) -> Identity:
        """Add (`identity_id` 0) or change an identity of the account."""
        values = (
            await self._address(account, address),
            clean_name(display_name),
            clean_signature(signature),
        )
        try:
            if identity_id == 0:
                if len(await self._store.list_identities(account.id)) >= MAX_IDENTITIES:
                    raise AccountError(f"at most {MAX_IDENTITIES} identities per account")
                return await self._store.add_identity(NewIdentity(account.id, *values))
            return await self._store.update_identity(Identity(identity_id, account.id, *values))
        except store_errors.AlreadyExists:
            raise AccountError(f"there is already an identity for {values[0]}") from None
        except store_errors.NotFound:
            raise AccountError("no such identity") from None

    async def remove(self, account: Account, identity_id: int) -> None:
        try:
            await self._store.remove_identity(account.id, identity_id)
        except store_errors.NotFound:
            raise AccountError("no such identity") from None
