"""The store contract: what every backend (SQLite, PostgreSQL) provides.

Each method is one transaction; compound operations (deliver to several mailboxes,
move, expunge) are atomic inside the backend. Methods raise `store.errors` exceptions,
never a driver's. Message bodies are blobs: written through a `BlobWriter`, made
durable (fsync, rename, fsync directory) by `BlobWriter.finish`, and made visible only
by the commit of the row that references them, so an acknowledged message survives a
crash and an interrupted one leaves nothing visible (unreferenced files are collected
on open).

Nothing here knows about protocols: sequence numbers, sessions and reply codes live
above, in `services` and the front-ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Protocol

from pillarbox.model import (
    Account,
    Alias,
    AppendResult,
    Change,
    CopyResult,
    Domain,
    FlagMode,
    FlagRow,
    Mailbox,
    MailboxStatus,
    MessageInfo,
    MessageMeta,
    PopOnRetrieve,
    PopScope,
    QueuedMessage,
    QueuedRecipient,
    SearchKey,
    StoreFlagsResult,
)


class BlobHandle(Protocol):
    """A durable message file not yet referenced by any row."""

    @property
    def blob_id(self) -> int: ...

    @property
    def size(self) -> int: ...

    @property
    def path(self) -> str: ...


class BlobWriter(Protocol):
    """Streams a message to a temporary file; nothing is visible until `finish`+append."""

    async def write(self, data: bytes) -> None: ...

    async def finish(self) -> BlobHandle:
        """fsync the file, move it into place, fsync the directory."""
        ...

    async def abort(self) -> None:
        """Remove the temporary file (idempotent)."""
        ...


class Delivery(Protocol):
    """One target of `Store.deliver`: a mailbox and the message's metadata for it."""

    mailbox_id: int
    blob: BlobHandle
    meta: MessageMeta
    flags: frozenset[str]
    internaldate: datetime


class Store(Protocol):
    # --- lifecycle -------------------------------------------------------------------
    async def open(self) -> None:
        """Create or migrate the schema, collect orphan blobs, start the writer."""
        ...

    async def close(self) -> None: ...

    # --- domains, accounts, aliases ----------------------------------------------------
    async def add_domain(self, name: str) -> Domain: ...
    async def get_domain(self, name: str) -> Domain | None: ...
    async def list_domains(self) -> list[Domain]: ...
    async def remove_domain(self, name: str) -> None:
        """Refuses (Conflict) while accounts or aliases of the domain exist."""
        ...

    async def add_account(self, address: str, password_hash: str) -> Account:
        """Create the account and its default mailboxes (model.DEFAULT_MAILBOXES)."""
        ...

    async def get_account(self, address: str) -> Account | None: ...
    async def get_account_by_id(self, account_id: int) -> Account | None: ...
    async def list_accounts(self, domain: str | None = None) -> list[Account]: ...
    async def set_password_hash(self, address: str, password_hash: str) -> None: ...
    async def remove_account(self, address: str) -> None:
        """Delete the account, its mailboxes and messages (blobs collected)."""
        ...

    async def set_pop_policy(
        self, address: str, on_retrieve: PopOnRetrieve, scope: PopScope
    ) -> Account:
        """Set the POP3 policy; FROM_NOW records INBOX's current UIDNEXT as pop_min_uid."""
        ...

    async def add_alias(self, source: str, targets: Sequence[str]) -> Alias:
        """Add targets to an alias (created if new)."""
        ...

    async def get_alias(self, source: str) -> Alias | None: ...
    async def list_aliases(self) -> list[Alias]: ...
    async def remove_alias(self, source: str) -> None: ...

    # --- mailboxes ---------------------------------------------------------------------
    async def list_mailboxes(self, account_id: int) -> list[Mailbox]: ...
    async def get_mailbox(self, account_id: int, name: str) -> Mailbox | None:
        """Names are matched exactly, except INBOX which is case-insensitive."""
        ...

    async def get_mailbox_by_id(self, mailbox_id: int) -> Mailbox | None: ...
    async def get_special_mailbox(self, account_id: int, special_use: str) -> Mailbox | None: ...
    async def create_mailbox(
        self, account_id: int, name: str, special_use: str | None = None
    ) -> Mailbox:
        """New UIDVALIDITY, never one used before by a mailbox of that name (RFC 9051 §2.3.1.1)."""
        ...

    async def delete_mailbox(self, account_id: int, name: str) -> None:
        """Delete a mailbox and its messages; Conflict for INBOX."""
        ...

    async def rename_mailbox(self, account_id: int, old: str, new: str) -> None:
        """Rename with its children (RFC 9051 §6.3.6); renaming INBOX moves its messages
        to a new mailbox and leaves INBOX empty."""
        ...

    async def set_subscribed(self, account_id: int, name: str, subscribed: bool) -> None:
        """Subscriptions are kept by name and may name a mailbox that does not exist."""
        ...

    async def list_subscriptions(self, account_id: int) -> list[str]: ...
    async def mailbox_status(self, mailbox_id: int) -> MailboxStatus: ...
    async def quota_usage(self, account_id: int) -> int:
        """Total size in bytes of the account's messages."""
        ...

    # --- messages ----------------------------------------------------------------------
    def new_blob(self) -> BlobWriter: ...

    async def append(
        self,
        mailbox_id: int,
        blob: BlobHandle,
        meta: MessageMeta,
        flags: frozenset[str] = frozenset(),
        internaldate: datetime | None = None,
    ) -> AppendResult:
        """Store one message; QuotaExceeded if over the account's quota."""
        ...

    async def deliver(self, deliveries: Sequence[Delivery]) -> list[AppendResult]:
        """Append to several mailboxes in one transaction (one SMTP transaction's
        recipients), all or nothing."""
        ...

    async def uids(self, mailbox_id: int) -> list[int]:
        """All UIDs of the mailbox, ascending: a session's view is built from this."""
        ...

    async def fetch_flags(self, mailbox_id: int, uids: Sequence[int]) -> list[FlagRow]:
        """FLAGS and MODSEQ of the given existing UIDs, ascending."""
        ...

    async def fetch_flag_bits(
        self, mailbox_id: int, uids: Sequence[int]
    ) -> tuple[list[tuple[int, int, int]], dict[int, list[str]]]:
        """`fetch_flags` as raw data for formatting many lines: ``(uid, flag_bits,
        modseq)`` of the given existing UIDs, ascending, where bit ``1 << i`` of
        `flag_bits` is ``SYSTEM_FLAGS[i]``; and the keywords of those rows that have any,
        by UID. Read-only, one transaction."""
        ...

    async def fetch(self, mailbox_id: int, uids: Sequence[int]) -> list[MessageInfo]:
        """Precomputed rows of the given existing UIDs, ascending; one query."""
        ...

    async def fetch_with_files(
        self, mailbox_id: int, uids: Sequence[int], max_bytes: int
    ) -> list[tuple[MessageInfo, bytes | None]]:
        """`fetch`, each row paired with its whole message file, read in the same
        transaction: files are read in UID order until their sizes reach `max_bytes`
        (the first always), the rest and any file gone since come back as None.
        Read-only."""
        ...

    async def read_message(
        self, mailbox_id: int, uid: int, start: int = 0, length: int | None = None
    ) -> bytes:
        """Raw bytes of the message file, or a byte range of it."""
        ...

    def message_path(self, info: MessageInfo) -> str:
        """Path of the message file, for front-ends that stream it."""
        ...

    async def read_messages(
        self, mailbox_id: int, ranges: Sequence[tuple[int, int, int | None]]
    ) -> list[bytes | None]:
        """Several byte ranges ``(uid, start, length or None for the rest)`` in one call:
        one result per range, in order, None where the message no longer exists."""
        ...

    async def select_snapshot(self, mailbox_id: int) -> tuple[list[int], MailboxStatus, int | None]:
        """What SELECT needs, read in one transaction: all UIDs ascending, the
        mailbox's status, and the lowest UID without \\Seen (None if all are seen).
        NotFound if the mailbox is gone."""
        ...

    async def set_flags(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        flags: frozenset[str],
        mode: FlagMode,
        unchanged_since: int | None = None,
    ) -> StoreFlagsResult:
        """Change flags; each changed row gets a new MODSEQ. Publishes FlagsChanged."""
        ...

    async def copy(
        self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int
    ) -> CopyResult:
        """Copy messages (the blob is shared, not copied). Publishes MessagesAdded."""
        ...

    async def move(
        self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int
    ) -> CopyResult:
        """Atomic copy + expunge (RFC 6851). Publishes MessagesAdded and MessagesExpunged."""
        ...

    async def expunge(self, mailbox_id: int, uids: Sequence[int] | None = None) -> list[int]:
        """Remove the messages with \\Deleted (only among `uids` if given); returns
        the expunged UIDs and records them with their MODSEQ. Publishes MessagesExpunged."""
        ...

    async def search(self, mailbox_id: int, key: SearchKey) -> list[int]:
        """UIDs matching the key, ascending. TEXT/BODY use the full-text index."""
        ...

    async def changes_since(self, mailbox_id: int, modseq: int) -> tuple[list[FlagRow], list[int]]:
        """Rows changed after `modseq`, and UIDs expunged after it (CONDSTORE/QRESYNC)."""
        ...

    # --- POP3 -------------------------------------------------------------------------
    async def pop_hide(self, mailbox_id: int, uids: Sequence[int]) -> None:
        """Hide messages from later POP3 sessions without touching them for IMAP."""
        ...

    async def pop_hidden(self, mailbox_id: int) -> set[int]: ...

    # --- outbound queue ---------------------------------------------------------------
    async def enqueue(
        self,
        sender: str,
        recipients: Sequence[QueuedRecipient],
        blob: BlobHandle,
        dsn_envid: str | None = None,
        dsn_ret: str | None = None,
    ) -> int: ...

    async def list_queue(self) -> list[QueuedMessage]: ...

    # --- change bus -------------------------------------------------------------------
    def subscribe(self, account_id: int) -> AsyncIterator[Change]:
        """Every change to the account's mailboxes, in commit order, from now on.
        A subscriber that falls behind receives `Resync` instead of the lost events."""
        ...
