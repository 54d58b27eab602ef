"""Domains, accounts, aliases and an account's POP3 policy."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PopOnRetrieve(StrEnum):
    """What a POP3 DELE + QUIT does to the server copy (account policy)."""

    KEEP = "keep"  # stays in INBOX, hidden from later POP3 sessions
    MARK_READ = "mark-read"  # stays, gets \Seen, hidden from POP3
    ARCHIVE = "archive"  # moved to the Archive mailbox
    DELETE = "delete"  # really expunged (the default, as RFC 1939 intends)


class PopScope(StrEnum):
    """Which INBOX messages a POP3 session sees."""

    ALL = "all"
    FROM_NOW = "from-now"  # only those that arrived after the policy was set


@dataclass(frozen=True, slots=True)
class Domain:
    id: int
    name: str  # lower-case, IDNA (A-label) form (`rules.addresses.normalize_domain`)


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    address: str  # canonical local@domain (`rules.addresses.normalize_address`)
    domain_id: int
    password_hash: str  # argon2id encoded hash, never a password
    quota_bytes: int = 0  # 0 means no quota
    pop_on_retrieve: PopOnRetrieve = PopOnRetrieve.DELETE
    pop_scope: PopScope = PopScope.ALL
    pop_min_uid: int = 0  # with FROM_NOW: INBOX uids below this are invisible to POP3
    quota_messages: int = 0  # the most messages the account may hold; 0 means no limit


@dataclass(frozen=True, slots=True)
class QuotaUsage:
    """An account's limits and what it uses of them, read together (RFC 9208 GETQUOTA):
    bytes of all its messages and how many there are; a limit of 0 means none."""

    storage_used: int
    storage_limit: int
    messages_used: int
    messages_limit: int


@dataclass(frozen=True, slots=True)
class Alias:
    source: str  # "local@domain" or "@domain" (catch-all), canonical
    targets: tuple[str, ...]
