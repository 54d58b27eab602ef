"""Administration of domains, accounts and aliases: the rules the CLI and webmail share.

Validation lives here (address syntax through `rules.addresses`, known domain, password
strength) so that the store stays a dumb persister and every front-end refuses the same
things with the same words. Errors are `AccountError` with a one-line message fit for a terminal.
"""

from __future__ import annotations

from collections.abc import Sequence

from pillarbox.model import Account, Alias, Domain, Mailbox, PopOnRetrieve, PopScope
from pillarbox.rules import addresses
from pillarbox.rules import quota as quota_rules
from pillarbox.services.auth import hash_password_async
from pillarbox.services.errors import AccountError
from pillarbox.store import errors as store_errors
from pillarbox.store.api import Store

MIN_PASSWORD_LENGTH = 8

_COMMON_PASSWORDS = frozenset(
    {
        "password",
        "password1",
        "12345678",
        "123456789",
        "1234567890",
        "qwertyuiop",
        "iloveyou",
        "11111111",
        "00000000",
        "abcdefgh",
        "letmein1",
        "changeme",
        "welcome1",
        "qwerty123",
        "passw0rd",
    }
)


def normalize_domain(name: str) -> str:
    """A domain Pillarbox may host: canonical (`rules.addresses`) and with at least two
    labels (a bare "localhost" or "com" is no mail domain of ours)."""
    try:
        domain = addresses.normalize_domain(name)
    except addresses.InvalidAddress as exc:
        raise AccountError(str(exc)) from None
    if "." not in domain:
        raise AccountError(f"invalid domain name: {name!r}")
    return domain


def split_address(address: str) -> tuple[str, str]:
    """(local, domain) of a valid address, normalised; AccountError otherwise."""
    try:
        local, domain = addresses.split_address(address)
    except addresses.InvalidAddress as exc:
        raise AccountError(str(exc)) from None
    return local, normalize_domain(domain)


def canonical_address(address: str) -> str:
    """`split_address` joined again: the form the store keys accounts by."""
    return "@".join(split_address(address))


def _alias_source(source: str) -> str:
    """An alias source (an address, or "@domain" for a catch-all) in canonical form,
    of a domain we may host."""
    try:
        canonical = addresses.normalize_alias_source(source)
    except addresses.InvalidAddress as exc:
        raise AccountError(str(exc)) from None
    normalize_domain(canonical.rpartition("@")[2])  # the two-label rule of hosted domains
    return canonical


def check_password(password: str) -> None:
    if not password:
        raise AccountError("password is empty")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password is too short (at least {MIN_PASSWORD_LENGTH} characters)")
    if password.lower() in _COMMON_PASSWORDS or len(set(password)) < 3:
        raise AccountError("password is too weak")


class AccountService:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def add_domain(self, name: str) -> Domain:
        domain = normalize_domain(name)
        try:
            return await self._store.add_domain(domain)
        except store_errors.AlreadyExists:
            raise AccountError(f"domain {domain} already exists") from None

    async def list_domains(self) -> list[Domain]:
        return await self._store.list_domains()

    async def remove_domain(self, name: str) -> None:
        domain = normalize_domain(name)
        try:
            await self._store.remove_domain(domain)
        except store_errors.NotFound:
            raise AccountError(f"no such domain: {domain}") from None
        except store_errors.Conflict:
            raise AccountError(f"domain {domain} still has accounts or aliases") from None

    async def _require_domain(self, domain: str) -> None:
        if await self._store.get_domain(domain) is None:
            raise AccountError(f"unknown domain: {domain} (add it with 'domain add')")

    async def add_user(self, address: str, password: str) -> Account:
        local, domain = split_address(address)
        await self._require_domain(domain)
        check_password(password)
        full = f"{local}@{domain}"
        if await self._store.get_account(full) is not None:
            raise AccountError(f"user {full} already exists")
        password_hash = await hash_password_async(password)
        try:
            return await self._store.add_account(full, password_hash)
        except store_errors.AlreadyExists:
            raise AccountError(f"user {full} already exists") from None

    async def list_users(self, domain: str | None = None) -> list[Account]:
        """The accounts (of `domain` only, if given); a domain that is not local is an
        error rather than an empty list, so a typo does not read as "no users"."""
        if domain:
            domain = normalize_domain(domain)
            await self._require_domain(domain)
        return await self._store.list_accounts(domain or None)

    async def get_user(self, address: str) -> Account:
        """The account as it is now (a session's copy may predate a settings change)."""
        full = canonical_address(address)
        account = await self._store.get_account(full)
        if account is None:
            raise AccountError(f"no such user: {full}")
        return account

    async def set_password(self, address: str, password: str) -> None:
        full = canonical_address(address)
        check_password(password)
        password_hash = await hash_password_async(password)
        try:
            await self._store.set_password_hash(full, password_hash)
        except store_errors.NotFound:
            raise AccountError(f"no such user: {full}") from None

    async def remove_user(self, address: str) -> None:
        full = canonical_address(address)
        try:
            await self._store.remove_account(full)
        except store_errors.NotFound:
            raise AccountError(f"no such user: {full}") from None

    async def set_quota(
        self, address: str, quota_bytes: int | None, quota_messages: int | None = None
    ) -> Account:
        """The account's quota in bytes and its limit on messages, 0 for none, None to
        leave that one as it is (`rules.quota`)."""
        full = canonical_address(address)
        try:
            if quota_bytes is not None:
                quota_rules.check_quota_value(quota_bytes)
            if quota_messages is not None:
                quota_rules.check_message_limit_value(quota_messages)
        except ValueError as exc:
            raise AccountError(str(exc)) from None
        try:
            return await self._store.set_quota(full, quota_bytes, quota_messages)
        except store_errors.NotFound:
            raise AccountError(f"no such user: {full}") from None

    async def set_pop_policy(
        self, address: str, on_retrieve: PopOnRetrieve, scope: PopScope
    ) -> Account:
        full = canonical_address(address)
        try:
            return await self._store.set_pop_policy(full, on_retrieve, scope)
        except store_errors.NotFound:
            raise AccountError(f"no such user: {full}") from None

    async def add_alias(self, source: str, targets: Sequence[str]) -> Alias:
        """`source` is an address or '@domain' (catch-all) of a local domain."""
        normalized_source = _alias_source(source)
        await self._require_domain(normalized_source.rpartition("@")[2])
        if not targets:
            raise AccountError("an alias needs at least one target")
        normalized_targets = [canonical_address(t) for t in targets]
        if normalized_source in normalized_targets:
            raise AccountError("an alias cannot point to itself")
        return await self._store.add_alias(normalized_source, normalized_targets)

    async def list_aliases(self) -> list[Alias]:
        return await self._store.list_aliases()

    async def remove_alias(self, source: str) -> None:
        normalized = _alias_source(source)
        try:
            await self._store.remove_alias(normalized)
        except store_errors.NotFound:
            raise AccountError(f"no such alias: {normalized}") from None

    async def list_mailboxes(self, address: str) -> list[Mailbox]:
        full = canonical_address(address)
        account = await self._store.get_account(full)
        if account is None:
            raise AccountError(f"no such user: {full}")
        return await self._store.list_mailboxes(account.id)
