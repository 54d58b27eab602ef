"""The store contract: what every backend (SQLite, PostgreSQL) provides.

Each method is one transaction; compound operations (deliver to several mailboxes,
move, expunge) are atomic inside the backend. Methods raise `store.errors` exceptions,
never a driver's.

Message bodies are blobs addressed by id, never by path: written through a
`BlobWriter`, made durable by `BlobWriter.finish`, read back through `open_blob` /
`read_blob` (whole, or a byte range: BODY[section], POP3 TOP), and made visible in a
mailbox only by the commit of the row that references them, so an acknowledged message
survives a crash and an interrupted one leaves nothing visible (unreferenced blobs are
collected on open). A backend may keep them in files, in its database or in an object
store; no caller can tell.

Values cross this boundary in canonical form: addresses and domain names as
`rules.addresses` makes them, mailbox names as `rules.mailbox_names` makes them. The
store compares them exactly and does not normalise or validate them again: those rules
live once, above it. The two rules a backend must evaluate inside its own transactions
(a new UIDVALIDITY, the quota check) it takes from `rules.uidvalidity` and
`rules.quota`, so that no two backends disagree.

Changes are published after their commit, in commit order, to the `ChangeBus` the
store is handed (in-process for one process; another implementation carries them
across processes or nodes). Subscribers use the bus, not the store.

Nothing here knows about protocols: sequence numbers, sessions and reply codes live
above, in `services` and the front-ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Protocol, TypeVar, runtime_checkable

from pillarbox.model import (
    Account,
    Alias,
    AppendResult,
    Change,
    CopyResult,
    DkimKey,
    Domain,
    FlagMode,
    FlagRow,
    FlagText,
    Mailbox,
    MailboxStatus,
    MessageInfo,
    MessageMeta,
    MessagePage,
    PopOnRetrieve,
    PopScope,
    QueuedMessage,
    QueuedRecipient,
    QueueOrigin,
    QuotaUsage,
    RecipientOutcome,
    SearchKey,
    StoreFlagsResult,
    ThreadSummary,
)
from pillarbox.model.cluster import LoginState, WebSessionRecord
from pillarbox.model.fetch import (
    FetchedCopy,
    FetchedEntry,
    FetchedRecord,
    FetchFolderState,
    FetchRun,
    FetchSource,
    NewFetchSource,
)
from pillarbox.model.identities import Identity, NewIdentity
from pillarbox.model.sorting import SortRow

T = TypeVar("T")


class BlobHandle(Protocol):
    """A durable blob, not necessarily referenced by any row yet."""

    @property
    def blob_id(self) -> int: ...

    @property
    def size(self) -> int: ...


class BlobWriter(Protocol):
    """Streams a message into a new blob; nothing is visible until `finish` + a row."""

    async def write(self, data: bytes) -> None: ...

    async def finish(self) -> BlobHandle:
        """Make the blob durable (for files: fsync it and its directory)."""
        ...

    async def abort(self) -> None:
        """Drop what was written (idempotent); after `finish`, delete the blob unless a
        row already refers to it."""
        ...


class BlobReader(Protocol):
    """An open blob, read from its start (or the offset it was opened at) to its end.

    Opened before the caller commits to sending anything (POP3 sends +OK only once the
    message is open), it stays readable to the end even if the message is expunged
    meanwhile."""

    @property
    def size(self) -> int:
        """Bytes from the opening offset to the end."""
        ...

    async def read(self, size: int = ...) -> bytes:
        """Up to `size` bytes; b"" at the end."""
        ...

    async def close(self) -> None:
        """Release the blob (idempotent)."""
        ...


class Subscription(Protocol):
    """One subscriber's feed of one account's changes (an async iterator)."""

    def __aiter__(self) -> Subscription: ...

    async def __anext__(self) -> Change: ...

    def pending(self) -> int:
        """Events queued and not yet taken: 0 means the subscriber has seen every
        change published so far (the IMAP mailbox-name cache relies on this)."""
        ...

    async def aclose(self) -> None:
        """Unsubscribe; a waiting `__anext__` ends with StopAsyncIteration."""
        ...


class ChangeBus(Protocol):
    """Fan-out of committed changes to the sessions of each account.

    The store calls `publish` on the event loop after each commit, in commit order.
    Events may repeat what a subscriber already saw after a `Resync`; subscribers apply
    them idempotently. A subscriber that falls behind receives `Resync` instead of the
    lost events."""

    def publish(self, changes: Iterable[Change]) -> None: ...

    def subscribe(self, account_id: int) -> Subscription:
        """Register now (not at first iteration): no change after this call is missed."""
        ...

    def close(self) -> None:
        """End every subscription."""
        ...


@runtime_checkable
class StampingBus(ChangeBus, Protocol):
    """A change bus shared by several worker processes on one SQLite store
    (`[server] workers`): every process's commits must reach every process's sessions
    in the one order the commits happened (a view takes new UIDs only ascending).

    The SQLite writer serialises write transactions of all processes with a lock of
    its own; right after COMMIT and before releasing that lock it calls `stamp` in its
    thread with each committed operation's changes, so stamps ascend in commit order
    across the processes. On the event loop it then calls `publish_stamped` instead of
    `publish`. The bus hands the stamped changes to the other processes and merges
    theirs with the local ones by stamp."""

    def stamp(self, changes: Sequence[Change]) -> int:
        """In the writer thread, under the cross-process write lock, after COMMIT:
        the next number of the one order, with `changes` passed to the other
        processes. Thread-safe; must not block for long (the lock is held)."""
        ...

    def publish_stamped(self, stamp: int, changes: Iterable[Change]) -> None:
        """On the loop: what `publish` does, for changes `stamp` numbered."""
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
    async def set_quota(
        self, address: str, quota_bytes: int | None, quota_messages: int | None = None
    ) -> Account:
        """Set the account's quota in bytes and its limit on messages (0: none; None:
        leave that limit as it is; `rules.quota`). Raises NotFound."""
        ...

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
        """The mailbox of that canonical name (matched exactly)."""
        ...

    async def get_mailbox_by_id(self, mailbox_id: int) -> Mailbox | None: ...
    async def get_special_mailbox(self, account_id: int, special_use: str) -> Mailbox | None: ...
    async def create_mailbox(
        self, account_id: int, name: str, special_use: str | None = None
    ) -> Mailbox:
        """AlreadyExists if the name is taken. The new UIDVALIDITY comes from
        `rules.uidvalidity` (never one used before by any mailbox, RFC 9051 §2.3.1.1)."""
        ...

    async def delete_mailbox(self, account_id: int, name: str) -> None:
        """Delete a mailbox and its messages; Conflict for INBOX."""
        ...

    async def rename_mailbox(self, account_id: int, old: str, new: str) -> None:
        """Rename with its children (RFC 9051 §6.3.6), each with a new UIDVALIDITY;
        renaming INBOX moves its messages to a new mailbox and leaves INBOX empty.
        AlreadyExists if a target name is taken, Conflict for a rename into itself."""
        ...

    async def set_subscribed(self, account_id: int, name: str, subscribed: bool) -> None:
        """Subscriptions are kept by name and may name a mailbox that does not exist."""
        ...

    async def list_subscriptions(self, account_id: int) -> list[str]: ...
    async def mailbox_status(self, mailbox_id: int) -> MailboxStatus: ...
    async def claim_recent(self, mailbox_id: int, up_to: int | None) -> int:
        """RFC 3501 §2.3.2 \\Recent: the mailbox's recent watermark (UIDs above it were
        never taken as recent). With `up_to`, raise it to at least `up_to` in the same
        transaction, so of two sessions claiming at once each UID goes to one; None
        only reads it (EXAMINE must not take \\Recent away, RFC 3501 §6.3.2). Returns
        the watermark before. Raises NotFound for an unknown mailbox."""
        ...

    async def count_recent(self, mailbox_id: int) -> int:
        """How many messages are above the recent watermark (STATUS RECENT)."""
        ...

    async def quota_usage(self, account_id: int) -> int:
        """Total size in bytes of the account's messages."""
        ...

    async def quota(self, account_id: int) -> QuotaUsage:
        """The account's limits and usage (bytes and number of messages, every mailbox,
        \\Deleted ones included), read together. Raises NotFound."""
        ...

    # --- blobs -------------------------------------------------------------------------
    def new_blob(self) -> BlobWriter: ...

    async def open_blob(self, blob_id: int, start: int = 0) -> BlobReader:
        """Open a durable blob for streaming from byte `start`; NotFound once deleted."""
        ...

    async def read_blob(self, blob_id: int, start: int = 0, length: int | None = None) -> bytes:
        """A durable blob's bytes, or a byte range of them; NotFound once deleted."""
        ...

    async def delete_blob(self, blob_id: int) -> None:
        """Delete a blob no row refers to (a delivery that was given up); a blob that a
        row refers to is left alone, and deleting an unknown blob is no error."""
        ...

    # --- messages ----------------------------------------------------------------------

    async def append(
        self,
        mailbox_id: int,
        blob: BlobHandle,
        meta: MessageMeta,
        flags: frozenset[str] = frozenset(),
        internaldate: datetime | None = None,
    ) -> AppendResult:
        """Store one message; QuotaExceeded if `rules.quota` refuses it.

        Every way in (`append`, `deliver`, `replace`) gives the new row a thread id
        (RFC 8474 §5.2) in the same transaction: of the Message-IDs
        `objectids.thread_keys(meta)` names, in order, the first that any message stored
        in the mailbox's account named before decides (its thread); if none did, a new
        thread id that no other thread of the account has. Those Message-IDs are then
        known to the account under the thread, and stay known after the messages go, until
        the account is removed. At most one indexed lookup per message; `meta` carries all
        it needs."""
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

    async def fetch_flag_text(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        *,
        modseq: bool = False,
        changed_since: int | None = None,
    ) -> FlagText:
        """`fetch_flags` of the given existing UIDs as one text built in SQL (see
        `FlagText`: a line per message, with its MODSEQ when `modseq`), for FLAGS fetches
        of many messages: the database spells the flags, Python creates nothing per
        message. `changed_since`: only messages whose MODSEQ is above it. A `range`
        of UIDs is read as one range scan (no list of UIDs is walked). Read-only, one
        transaction."""
        ...

    async def fetch(self, mailbox_id: int, uids: Sequence[int]) -> list[MessageInfo]:
        """Precomputed rows of the given existing UIDs, ascending; one query."""
        ...

    async def sort_rows(
        self, mailbox_id: int, uids: Sequence[int], *, with_references: bool = False
    ) -> list[SortRow]:
        """What SORT and THREAD order by (RFC 5256) for the given existing UIDs,
        ascending: precomputed columns only, one query. `with_references` adds what
        THREAD=REFERENCES needs (see `SortRow`)."""
        ...

    async def fetch_with_bodies(
        self,
        mailbox_id: int,
        uids: Sequence[int],
        max_bytes: int,
        *,
        max_each: int | None = None,
    ) -> list[tuple[MessageInfo, bytes | None]]:
        """`fetch`, each row paired with its whole message, read in the same call:
        messages are read in UID order until their sizes reach `max_bytes` (the first
        always), the rest and any message gone since come back as None. A message larger
        than `max_each` is never read (None): the caller streams it. Read-only."""
        ...

    async def read_message(
        self, mailbox_id: int, uid: int, start: int = 0, length: int | None = None
    ) -> bytes:
        """Raw bytes of the message, or a byte range of them; NotFound if gone."""
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

    async def page_uids(
        self,
        mailbox_id: int,
        limit: int,
        *,
        offset: int = 0,
        before: int | None = None,
        after: int | None = None,
    ) -> MessagePage:
        """One page of a message list without reading every UID (a list view, not
        SELECT): the mailbox's status and up to `limit` UIDs, highest first; those
        below `before`, or the `limit` lowest above `after`, or else skipping the
        `offset` highest. Cost grows with the page (and `offset`), not the mailbox.
        NotFound if the mailbox is gone."""
        ...

    async def thread_page(
        self, mailbox_id: int, limit: int, offset: int = 0
    ) -> tuple[list[ThreadSummary], bool]:
        """The mailbox's conversations (messages grouped by THREADID, RFC 8474 §5.2),
        the one with the highest UID first: up to `limit` of them after skipping
        `offset`, and whether there are more after those. Cost grows with the depth
        of the page, not the mailbox. One read. NotFound if the mailbox is gone."""
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
        """Copy messages (the blob is shared, not copied; the thread id is kept).
        Publishes MessagesAdded."""
        ...

    async def move(
        self, src_mailbox_id: int, uids: Sequence[int], dst_mailbox_id: int
    ) -> CopyResult:
        """Atomic copy + expunge (RFC 6851). Publishes MessagesAdded and MessagesExpunged."""
        ...

    async def replace(
        self,
        mailbox_id: int,
        uid: int,
        dst_mailbox_id: int,
        blob: BlobHandle,
        meta: MessageMeta,
        flags: frozenset[str] = frozenset(),
        internaldate: datetime | None = None,
    ) -> AppendResult:
        """REPLACE (RFC 8508): remove message `uid` of `mailbox_id` whatever its flags and
        store the new one in `dst_mailbox_id`, in one transaction. NotFound (nothing
        changed) if either is gone; QuotaExceeded as `append`, counting the old message
        as removed. Publishes MessagesExpunged and MessagesAdded."""
        ...

    async def expunge(self, mailbox_id: int, uids: Sequence[int] | None = None) -> list[int]:
        """Remove the messages with \\Deleted (only among `uids` if given); returns
        the expunged UIDs and records them with their MODSEQ. Publishes MessagesExpunged."""
        ...

    async def search(self, mailbox_id: int, key: SearchKey) -> list[int]:
        """UIDs matching the key, ascending, in one query. TEXT/BODY use the full-text
        index."""
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
    # One entry per message; each recipient has its own state (`model.queue`). A worker
    # claims due entries for a lease, sends, records each recipient's outcome as soon as
    # the next hop answers (so a restart never sends twice what a peer accepted), then
    # reschedules the entry or removes it once no recipient is left to try. Times are
    # aware datetimes (a naive one is a ValueError) and read back as written.
    async def enqueue(
        self,
        sender: str,
        recipients: Sequence[QueuedRecipient],
        blob: BlobHandle,
        dsn_envid: str | None = None,
        dsn_ret: str | None = None,
        origin: QueueOrigin = QueueOrigin.FORWARD,
    ) -> int:
        """Queue `blob` for `recipients`, due now; returns the entry id. Each recipient
        starts queued at its index in `recipients` (the `state`, `status`, `diagnostic`,
        `remote_mta` and `position` given are ignored). Conflict if there is none."""
        ...

    async def deliver_and_enqueue(
        self,
        deliveries: Sequence[Delivery],
        sender: str,
        recipients: Sequence[QueuedRecipient],
        blob: BlobHandle,
        dsn_envid: str | None = None,
        dsn_ret: str | None = None,
        origin: QueueOrigin = QueueOrigin.FORWARD,
    ) -> tuple[list[AppendResult], int]:
        """`deliver` and `enqueue` in one transaction: a message for local and remote
        recipients is stored for both or for neither (a copy over quota leaves no queue
        entry; no recipient to queue, Conflict, leaves no copy). Publishes what `deliver`
        publishes."""
        ...

    async def list_queue(self) -> list[QueuedMessage]:
        """Every entry, oldest first, with every recipient (any state), its size and
        its claim."""
        ...

    async def get_queued(self, queue_id: int) -> QueuedMessage | None:
        """One entry as `list_queue` gives it; None if there is no such entry."""
        ...

    async def claim_queue(self, now: datetime, limit: int, lease: float) -> list[QueuedMessage]:
        """Up to `limit` entries due at `now` (next_attempt <= now) that nobody holds
        (no claim, or one that ran out by `now`), oldest due first (then oldest entry),
        each now held until `now + lease` seconds (`claimed_until`): no other claim
        returns them until the lease runs out or `reschedule`/`remove_queued` releases
        them. Entries come whole: every recipient
        with its state and position, and the size. A worker that dies leaves its claims
        to expire (PostgreSQL: FOR UPDATE SKIP LOCKED). An entry with no recipient left
        to try is returned too: its worker recorded the outcomes and died before settling
        it (DSNs, removal), which the next worker must do."""
        ...

    async def record_outcomes(self, queue_id: int, outcomes: Sequence[RecipientOutcome]) -> None:
        """Durably set the state of the given recipients (by position): committed to
        disk when this returns. All or nothing: NotFound, and nothing changed, if the
        entry is gone or a position is not one of its recipients."""
        ...

    async def reschedule(
        self,
        queue_id: int,
        next_attempt: datetime,
        last_error: str,
        *,
        warned: bool | None = None,
    ) -> None:
        """After an attempt: count it, set the next one and release the claim;
        `warned` set when a delay DSN went out. NotFound if the entry is gone."""
        ...

    async def retry_queued(self, queue_id: int | None = None) -> int:
        """Make one entry (or every entry) due now (one due earlier keeps its time);
        returns how many entries that touched (0: no such entry). A claim is kept: the
        entry is being tried right now, and releasing it would let a second worker send
        it at the same time."""
        ...

    async def release_claims(self) -> int:
        """Release the claims an earlier run of this server left (a crash, or a stop
        while sending), so that its entries are due again at once instead of when their
        leases run out; returns how many. Called once, before the first claim. A backend
        shared by several nodes releases only this node's claims."""
        ...

    async def remove_queued(self, queue_id: int) -> bool:
        """Drop an entry (done, or deleted by the operator); False if it was gone. Its
        blob goes with it unless a message row refers to it."""
        ...

    # --- DKIM keys --------------------------------------------------------------------
    async def put_dkim_key(self, key: DkimKey) -> None:
        """Store a key; replaces the key of the same domain and selector."""
        ...

    async def list_dkim_keys(self, domain: str | None = None) -> list[DkimKey]:
        """Keys of `domain` (every domain if None), newest first."""
        ...

    # --- trusted image senders (the webmail shows their remote images) ----------------
    # Addresses arrive canonical (services normalise); a sender belongs to an account and
    # goes with it.
    async def add_image_sender(self, account_id: int, address: str) -> None:
        """Trust `address`'s images; nothing changes if it is trusted already. NotFound
        if the account is gone."""
        ...

    async def remove_image_sender(self, account_id: int, address: str) -> None:
        """Trust `address`'s images no more; nothing happens if it was not trusted."""
        ...

    async def is_image_sender(self, account_id: int, address: str) -> bool: ...

    async def list_image_senders(self, account_id: int) -> list[str]:
        """The account's trusted senders, in address order."""
        ...

    # --- fetch sources (the user's accounts at other providers) -------------------------
    # A source belongs to an account and goes with it. Its password arrives encrypted and
    # is stored as given: the key is never in the store. What was fetched is kept per
    # source (POP3 UIDLs, IMAP UIDs with their UIDVALIDITY, and each message's header
    # digest); a record is written in the same transaction as the local copy it stands for
    # (`deliver_fetched`), so a crash neither loses a message nor fetches it twice.
    async def add_fetch_source(self, source: NewFetchSource) -> FetchSource:
        """NotFound if the account is gone."""
        ...

    async def list_fetch_sources(self, account_id: int | None = None) -> list[FetchSource]:
        """The account's sources (every account's if None), by id."""
        ...

    async def get_fetch_source(self, source_id: int) -> FetchSource | None: ...

    async def remove_fetch_source(self, account_id: int, source_id: int) -> None:
        """Remove the source and what it fetched; NotFound unless the account owns it."""
        ...

    async def record_fetch_run(self, source_id: int, run: FetchRun) -> FetchSource:
        """Keep a run's outcome: its time and result; a failure's text and time (kept
        until a run succeeds); the count of consecutive authentication failures (one more
        for an authentication failure, 0 after a success, unchanged by other errors) and
        of consecutive failures of any kind (one more for a failure, 0 after a success).
        NotFound if the source is gone."""
        ...

    async def resume_fetch_source(self, account_id: int, source_id: int) -> FetchSource:
        """Zero both failure counts (the user edited a paused source). NotFound unless
        the account owns the source."""
        ...

    async def update_fetch_source(self, source_id: int, source: NewFetchSource) -> FetchSource:
        """Replace the source's settings with `source`'s (an empty `password_secret`
        keeps the stored one) and zero both failure counts: the user edited it, so a
        paused source runs again. What was fetched is kept (the same remote mailbox under
        a new host name must not be fetched twice). NotFound unless `source.account_id`
        owns the source."""
        ...

    async def claim_fetch_source(
        self, source_id: int, holder: str, until: datetime
    ) -> FetchSource | None:
        """Claim the source for `holder` (a node) until `until`, so that one node runs
        or watches it: the source, or None if another holder's claim has not expired (or
        the source is gone). The same holder may claim again (it extends its claim)."""
        ...

    async def release_fetch_source(self, source_id: int, holder: str) -> None:
        """End `holder`'s claim, if it has one (nothing if the source is gone)."""
        ...

    async def fetched(self, source_id: int, folder: str) -> list[FetchedEntry]:
        """What was fetched from one remote folder ("" for POP3), oldest first."""
        ...

    async def fetch_folders(self, source_id: int) -> list[FetchFolderState]:
        """IMAP: the UIDVALIDITY, last UID fetched and HIGHESTMODSEQ of each remote folder."""
        ...

    async def fetched_copies(
        self, source_id: int, folder: str, uidvalidity: int
    ) -> list[FetchedCopy]:
        """IMAP: the local copies of what was fetched from one folder under `uidvalidity`
        (records without a copy, a duplicate skipped, are left out), by remote UID."""
        ...

    async def set_fetched_flags(
        self, source_id: int, folder: str, uidvalidity: int, flags: Mapping[int, frozenset[str]]
    ) -> None:
        """IMAP: remember the carried flags the source now has for these remote UIDs."""
        ...

    async def deliver_fetched(self, delivery: Delivery, record: FetchedRecord) -> AppendResult:
        """Store one fetched message and its record in ONE transaction: both or neither
        (QuotaExceeded as `append`; NotFound, and nothing stored, if the source is gone;
        AlreadyExists, and nothing stored, if the record is there: another run took it).
        With `record.uid`, the folder's state moves to that UIDVALIDITY and at least that
        UID. The record remembers where the copy went (`fetched_copies`). Publishes what
        `deliver` publishes."""
        ...

    async def mark_fetched(self, records: Sequence[FetchedRecord]) -> None:
        """Record messages without storing them (a copy already here), advancing the
        folder state as `deliver_fetched` does. NotFound if a source is gone."""
        ...

    async def set_fetch_folder(self, source_id: int, state: FetchFolderState) -> None:
        """Set a remote folder's UIDVALIDITY, last UID and HIGHESTMODSEQ (a new
        UIDVALIDITY, a run that passed over messages it would not take, flags carried)."""
        ...

    async def forget_fetched(
        self,
        source_id: int,
        folder: str,
        remote_ids: Sequence[str],
        *,
        keep_uidvalidity: int | None = None,
    ) -> None:
        """Drop records: those of `remote_ids` (messages deleted or gone remotely), and,
        with `keep_uidvalidity`, every record of the folder under another UIDVALIDITY."""
        ...

    # --- identities (the addresses, names and signatures a user writes as) -------------
    async def add_identity(self, identity: NewIdentity) -> Identity:
        """Added after the account's others; AlreadyExists if the account has one for
        that address; NotFound if the account is gone."""
        ...

    async def list_identities(self, account_id: int) -> list[Identity]:
        """The account's identities in the order they were added."""
        ...

    async def update_identity(self, identity: Identity) -> Identity:
        """Set the address, name and signature of `identity.id`; NotFound unless
        `identity.account_id` owns it; AlreadyExists if another of its identities has
        that address."""
        ...

    async def remove_identity(self, account_id: int, identity_id: int) -> None:
        """NotFound unless the account owns the identity."""
        ...

    # --- state the nodes share (POP3 maildrop locks, login throttling, webmail) --------
    # Tables on both backends, so that a client's next connection may reach any worker
    # process or node (SQLite: sqlite_0015; PostgreSQL: pg_0002). Times are
    # seconds since the epoch (`model.cluster`); leases are judged by the node's clock.
    async def lock_maildrop(self, account_id: int, holder: str, until: float) -> bool:
        """Take the account's POP3 maildrop lock for `holder` until `until` (RFC 1939
        §4: exclusive), or extend it when `holder` already has it: True if `holder`
        holds it now, False while another holder's lease has not expired. A lease left
        by a node that died frees itself when it expires."""
        ...

    async def unlock_maildrop(self, account_id: int, holder: str) -> None:
        """End `holder`'s lock of the maildrop; nothing if it does not hold it."""
        ...

    async def update_login_state(
        self, key: str, update: Callable[[LoginState | None], tuple[LoginState | None, T]]
    ) -> T:
        """Replace the login-failure record of `key` (None: there is none) with
        `update(record)[0]` (None deletes it) and return `update(record)[1]`, as one
        atomic step: concurrent updates of one key, from any node, run one after the
        other, so attempts reserve distinct slots. `update` must be a pure function
        (it may run again when the transaction is retried)."""
        ...

    async def add_web_session(self, record: WebSessionRecord) -> None:
        """Store a new webmail session (its id is new: AlreadyExists is a bug). A
        backend may forget the least recently seen sessions beyond a cap of its own."""
        ...

    async def get_web_session(self, id_hash: str) -> WebSessionRecord | None:
        """The session of that id hash, or None; does not judge expiry (the caller's
        policy) and does not count as use."""
        ...

    async def touch_web_session(self, id_hash: str, last_seen: float) -> None:
        """Record a use of the session (nothing if it is gone). Callers write this at
        most about once a minute per session, not on every request."""
        ...

    async def remove_web_session(self, id_hash: str) -> None:
        """End the session (sign-out, expiry); nothing if it is gone."""
        ...

    async def remove_account_web_sessions(self, account_id: int, keep: str) -> list[str]:
        """End every session of the account except the one whose hash is `keep` (its
        password changed); the hashes of those ended."""
        ...
