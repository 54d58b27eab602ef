"""Fetch sources: a user's accounts at other providers that Pillarbox pulls mail from.

A source is where to connect (protocol, host, port, security), as whom (user name and a
password kept encrypted: `password_secret` is ciphertext, readable only with the
server's key, which is not in the store), where the mail goes (`target_folder`), which
remote folders are read (IMAP), what happens to the remote copy once the local one is
durable (`RemotePolicy`), how often it runs, and how its last run went.

What was fetched is a `FetchedRecord` per remote message: the POP3 UIDL (RFC 1939 §7),
or the IMAP UID under its UIDVALIDITY (RFC 9051 §2.3.1.1), with a digest of the header
block so that a message seen again under a new UIDVALIDITY is recognised.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

PAUSE_AFTER_AUTH_FAILURES = 3


class FetchProtocol(enum.StrEnum):
    POP3 = "pop3"
    IMAP = "imap"


class FetchSecurity(enum.StrEnum):
    TLS = "tls"  # implicit TLS from the first byte (RFC 8314 §3)
    STARTTLS = "starttls"  # plain text upgraded before login, never continued without TLS
    NONE = "none"  # only when the user insists


class RemoteAction(enum.StrEnum):
    KEEP = "keep"
    DELETE = "delete"
    DELETE_AFTER = "delete-after"  # once the local copy is `delete_after_days` days old


@dataclass(frozen=True, slots=True)
class RemotePolicy:
    """What to do with the remote copy after a safe fetch."""

    action: RemoteAction = RemoteAction.KEEP
    days: int = 0  # for DELETE_AFTER

    def __str__(self) -> str:
        if self.action is RemoteAction.DELETE_AFTER:
            return f"delete-after:{self.days}"
        return self.action.value


@dataclass(frozen=True, slots=True)
class NewFetchSource:
    """A source as the user adds it; the store gives it an id."""

    account_id: int
    protocol: FetchProtocol
    host: str
    port: int
    security: FetchSecurity
    username: str
    password_secret: bytes  # encrypted with the server key (services.fetch_sources)
    target_folder: str = "INBOX"
    source_folders: tuple[str, ...] = ()  # IMAP; empty: INBOX
    policy: RemotePolicy = RemotePolicy()
    interval: int = 300  # seconds between runs


@dataclass(frozen=True, slots=True)
class FetchSource:
    id: int
    account_id: int
    protocol: FetchProtocol
    host: str
    port: int
    security: FetchSecurity
    username: str
    password_secret: bytes
    target_folder: str
    source_folders: tuple[str, ...]
    policy: RemotePolicy
    interval: int
    created_at: datetime
    last_run_at: datetime | None = None
    last_result: str = ""  # what the last run did ("3 new"), "" before the first
    last_error: str = ""  # the last failure, kept until a run succeeds
    last_error_at: datetime | None = None
    auth_failures: int = 0  # consecutive authentication failures
    failures: int = 0  # consecutive failed runs of any kind (the scheduler's back-off)

    @property
    def paused(self) -> bool:
        """Three authentication failures in a row: the password is wrong, and trying it
        again only gets the account locked at the provider. Until the user edits the
        source (`pillarbox fetch resume`, or adds it again)."""
        return self.auth_failures >= PAUSE_AFTER_AUTH_FAILURES


@dataclass(frozen=True, slots=True)
class FetchRun:
    """The outcome of one run, recorded on its source."""

    at: datetime
    result: str
    error: str = ""  # "" when the run succeeded
    auth_failure: bool = False


@dataclass(frozen=True, slots=True)
class FetchedRecord:
    """One remote message known to be stored locally (or deliberately skipped as a
    duplicate). `folder` is "" for POP3; `remote_id` the UIDL (or a header hash when the
    server has no UIDL), or the IMAP UID as text, with `uidvalidity` for IMAP."""

    source_id: int
    folder: str
    remote_id: str
    digest: str
    fetched_at: datetime
    uidvalidity: int | None = None
    uid: int | None = None
    flags: frozenset[str] | None = None  # IMAP: the flags carried across, as they were there


@dataclass(frozen=True, slots=True)
class FetchedEntry:
    """A stored `FetchedRecord`, as the next run reads it back."""

    remote_id: str
    digest: str
    fetched_at: datetime
    uidvalidity: int | None


@dataclass(frozen=True, slots=True)
class FetchFolderState:
    """IMAP: where the last run of one remote folder stopped."""

    folder: str
    uidvalidity: int
    last_uid: int
    # RFC 7162 §3.1.2.1: the folder's HIGHESTMODSEQ when flags were last carried across
    # (0: never; the source may not offer CONDSTORE).
    highestmodseq: int = 0


@dataclass(frozen=True, slots=True)
class FetchedCopy:
    """Where the local copy of one fetched IMAP message is (for carrying flags)."""

    remote_uid: int
    mailbox_id: int
    uid: int
    remote_flags: frozenset[str] | None  # the carried flags as the source last had them
