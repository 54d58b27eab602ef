"""POP3 maildrops: the snapshot a session works on, its lock, and what QUIT commits.

Owns the POP3 view of an account (RFC 1939 §§4-6): the maildrop is the account's INBOX as
it was at login, minus what the account's POP policy hides; message numbers index that
snapshot and never change during the session; DELE only marks; QUIT (UPDATE state)
applies the account's `pop_on_retrieve` policy to the marked messages, and a session that
ends any other way changes nothing.

Policies (`Account.pop_on_retrieve`, set by `AccountService.set_pop_policy`):
- keep       the message stays in INBOX untouched, hidden from later POP3 sessions;
- mark-read  as keep, and it gets \\Seen;
- archive    it moves to the account's \\Archive mailbox (created if missing);
- delete     it gets \\Deleted and exactly those UIDs are expunged (the RFC 1939 meaning).
IMAP sessions of the account see the result through the store's change bus.
`Account.pop_scope` FROM_NOW hides INBOX UIDs below `pop_min_uid` (mail that was there
before POP was enabled).

UIDL (RFC 1939 §7): "<INBOX UIDVALIDITY>.<UID>". IMAP already promises that a
(UIDVALIDITY, UID) pair of a mailbox name is never reused (RFC 9051 §2.3.1.1), so the
value is stable across sessions and restarts and never repeats. Renaming INBOX moves its
messages away and leaves INBOX with fresh UIDs, so nothing old is shown again; if INBOX
ever got a new UIDVALIDITY every value would change and clients would download once more,
which is the safe direction (no mail lost, none silently skipped). A message moved out of
INBOX and back gets a new UID and is new to POP3 again, as it is to IMAP.

Locking: RFC 1939 §4 wants an exclusive maildrop lock; a second login gets
``-ERR [IN-USE]`` (RFC 2449 §8.1.1). The lock is a lease in the store
(`Store.lock_maildrop`): a row every worker process and every node reads (SQLite and
PostgreSQL alike), so a second login in another worker or on another node is refused too. Its holder
names this process and the session; the session renews the lease every `RENEW_EVERY`
seconds for `LEASE` seconds ahead while it is open and ends it when it closes, so a node
that dies holds nobody's maildrop for longer than `LEASE`. A session that finds its lease
taken over (its renewals failed for longer than `LEASE`) commits nothing at QUIT.

Must not do: wire syntax or reply wording (the front-end's), password checks (`auth`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pillarbox.model import Account, FlagMode, PopOnRetrieve, PopScope
from pillarbox.services.errors import Rejected, TempFailure
from pillarbox.store import errors as store_errors
from pillarbox.store.api import BlobReader, Store

log = logging.getLogger("pillarbox.pop")

# Rows fetched per store query when taking the snapshot: bounds memory for huge INBOXes.
_FETCH_BATCH = 500
# The maildrop lease: how far ahead each renewal reaches, and how often an open session
# renews it. A dead node's locks are free again at most LEASE seconds after it stopped.
LEASE = 120.0
RENEW_EVERY = 30.0


class MaildropInUse(TempFailure):
    """Another POP3 session holds this account's maildrop (RFC 2449 §8.1.1 [IN-USE])."""

    def __init__(self) -> None:
        super().__init__("Maildrop is locked by another POP3 session")


class NoSuchMessage(Rejected):
    """The message number is out of range or marked deleted (RFC 1939 §5)."""


class MaildropChanged(Rejected):
    """INBOX was replaced during the session, so its UIDs mean other messages now."""


@dataclass(frozen=True, slots=True)
class MaildropEntry:
    """One message of the snapshot; `number` is its POP3 message number (1-based)."""

    number: int
    uid: int
    size: int
    unique_id: str
    blob_id: int  # read by id: a message expunged meanwhile stays readable while its blob lives


def unique_id(uidvalidity: int, uid: int) -> str:
    """The UIDL value: printable ASCII, at most 70 characters (RFC 1939 §7)."""
    return f"{uidvalidity}.{uid}"


def _unavailable() -> TempFailure:
    return TempFailure("Mail store temporarily unavailable")


class Maildrop:
    """A session's locked snapshot of INBOX (RFC 1939 §4-6). Close it in a `finally`."""

    def __init__(
        self,
        service: PopService,
        account: Account,
        inbox_id: int,
        uidvalidity: int,
        entries: list[MaildropEntry],
        holder: str = "",
    ) -> None:
        self._service = service
        self.account = account
        self.inbox_id = inbox_id
        self.uidvalidity = uidvalidity
        self._entries = entries
        self._deleted: set[int] = set()
        self._closed = False
        self._holder = holder  # this session's name on the maildrop lease
        self._renewal: asyncio.Task[None] | None = None

    def start_renewal(self) -> None:
        """Keep the lease alive while the session is open (cancelled by `close`)."""
        self._renewal = asyncio.get_running_loop().create_task(
            self._renew(), name=f"pop3-lease-{self.account.id}"
        )

    async def _renew(self) -> None:
        service = self._service
        while True:
            await asyncio.sleep(service.renew_every)  # the lease's period, not a condition
            try:
                held = await service.renew(self.account.id, self._holder)
            except store_errors.StoreError as exc:  # the lease outlives a few failures
                log.warning("pop3 %s: lease renewal failed: %s", self.account.address, exc)
                continue
            if not held:
                log.warning("pop3 %s: maildrop lock lost to another session", self.account.address)
                return

    # --- TRANSACTION state: reads and marks, nothing touches the store -----------------

    def stat(self) -> tuple[int, int]:
        """(count, octets) of messages not marked deleted (RFC 1939 §5 STAT)."""
        live = self.listing()
        return len(live), sum(e.size for e in live)

    def listing(self) -> list[MaildropEntry]:
        """Messages not marked deleted, in message-number order (LIST, UIDL)."""
        return [e for e in self._entries if e.number not in self._deleted]

    def entry(self, number: int) -> MaildropEntry:
        """The message `number`, unless it does not exist or is marked deleted."""
        if not 1 <= number <= len(self._entries):
            raise NoSuchMessage(f"No message {number}")
        if number in self._deleted:
            raise NoSuchMessage(f"Message {number} is already deleted")
        return self._entries[number - 1]

    def delete(self, number: int) -> None:
        """Mark for deletion at QUIT (RFC 1939 §5 DELE)."""
        self.entry(number)
        self._deleted.add(number)

    def reset(self) -> None:
        """Unmark everything (RFC 1939 §5 RSET)."""
        self._deleted.clear()

    async def open_message(self, number: int) -> BlobReader:
        """Open message `number` for streaming (RETR, TOP). It is open before the front-end
        answers +OK, so a concurrent IMAP expunge cannot cut it short."""
        entry = self.entry(number)
        try:
            return await self._service.store.open_blob(entry.blob_id)
        except store_errors.NotFound:
            raise NoSuchMessage(f"Message {number} was removed from the server") from None
        except store_errors.StoreUnavailable:
            raise _unavailable() from None

    # --- UPDATE state ---------------------------------------------------------------

    async def commit(self) -> int:
        """Apply the account's on-retrieve policy to the marked messages (RFC 1939 §6).

        Returns how many messages are left in the maildrop. Acts only on UIDs that still
        exist in the same INBOX (UIDVALIDITY unchanged), so an IMAP session that moved or
        expunged some of them meanwhile, or an INBOX rename, never makes us touch other
        messages.
        """
        marked = [self._entries[n - 1].uid for n in sorted(self._deleted)]
        left = len(self._entries) - len(marked)
        if not marked:
            return left
        store = self._service.store
        try:
            # Still ours? If renewals failed long enough for another session to take the
            # maildrop, acting now could remove what that session is about to show.
            if not await self._service.renew(self.account.id, self._holder):
                raise MaildropChanged("The maildrop lock was lost; nothing was removed")
            inbox = await store.get_mailbox_by_id(self.inbox_id)
            if inbox is None or inbox.uidvalidity != self.uidvalidity:
                raise MaildropChanged("INBOX changed during the session; nothing was removed")
            existing = set(await store.uids(self.inbox_id))
            uids = [u for u in marked if u in existing]
            if uids:
                await self._apply(self.account.pop_on_retrieve, uids)
        except store_errors.StoreUnavailable:
            raise _unavailable() from None
        except store_errors.NotFound:
            raise MaildropChanged("INBOX changed during the session; nothing was removed") from None
        self._deleted.clear()
        return left

    async def _apply(self, policy: PopOnRetrieve, uids: Sequence[int]) -> None:
        store = self._service.store
        if policy is PopOnRetrieve.KEEP:
            await store.pop_hide(self.inbox_id, uids)
        elif policy is PopOnRetrieve.MARK_READ:
            await store.set_flags(self.inbox_id, uids, frozenset({"\\Seen"}), FlagMode.ADD)
            await store.pop_hide(self.inbox_id, uids)
        elif policy is PopOnRetrieve.ARCHIVE:
            archive_id = await self._service.archive_mailbox(self.account.id)
            await store.move(self.inbox_id, uids, archive_id)
        else:
            await store.set_flags(self.inbox_id, uids, frozenset({"\\Deleted"}), FlagMode.ADD)
            await store.expunge(self.inbox_id, uids)
        log.info(
            "pop3 %s: %s applied to %d message(s)", self.account.address, policy.value, len(uids)
        )

    async def close(self) -> None:
        """Release the lock (idempotent); unmarked or uncommitted messages stay as they were."""
        if not self._closed:
            self._closed = True
            if self._renewal is not None:
                self._renewal.cancel()
            await self._service.release(self.account.id, self._holder)


class PopService:
    """Opens maildrops and takes their locks (see the module docstring). `node_id` names
    this node in lock holders; `clock` is wall-clock time, as leases are compared
    across nodes."""

    def __init__(
        self,
        store: Store,
        *,
        node_id: str = "",
        clock: Callable[[], float] = time.time,
        lease: float = LEASE,
        renew_every: float = RENEW_EVERY,
    ) -> None:
        self.store = store
        self.clock = clock
        self.lease = lease
        self.renew_every = renew_every
        # The random part keeps holders apart where nodes share a host name, and across
        # restarts (a restarted process must not renew its predecessor's leases).
        self._holder_prefix = f"{node_id or socket.gethostname()}:{secrets.token_hex(4)}"
        self._numbers = itertools.count(1)

    def new_holder(self) -> str:
        """A lock holder name unique to one session of this process."""
        return f"{self._holder_prefix}:{next(self._numbers)}"

    async def renew(self, account_id: int, holder: str) -> bool:
        """Extend `holder`'s lease by `lease` seconds from now; False if it lost it."""
        return await self.store.lock_maildrop(account_id, holder, self.clock() + self.lease)

    async def is_locked(self, account_id: int) -> bool:
        """Does a live session hold the maildrop? (Diagnostics and tests: the answer may
        be stale at once.) Probes with a lease that has already expired, so it never
        keeps anyone out."""
        probe = self.new_holder()
        if not await self.store.lock_maildrop(account_id, probe, self.clock() - 1.0):
            return True
        await self.store.unlock_maildrop(account_id, probe)
        return False

    async def release(self, account_id: int, holder: str) -> None:
        """End `holder`'s lease; if the store is unreachable it expires by itself."""
        try:
            await self.store.unlock_maildrop(account_id, holder)
        except store_errors.StoreError as exc:
            log.warning("pop3 lock of account %d not released (expires): %s", account_id, exc)

    async def open(self, account: Account) -> Maildrop:
        """Lock the account's maildrop and snapshot INBOX; MaildropInUse if locked."""
        holder = self.new_holder()
        try:
            held = await self.renew(account.id, holder)
        except store_errors.StoreUnavailable:
            raise _unavailable() from None
        if not held:
            raise MaildropInUse()
        try:
            drop = await self._snapshot(account, holder)
        except BaseException:
            await self.release(account.id, holder)
            raise
        drop.start_renewal()
        return drop

    async def _snapshot(self, account: Account, holder: str) -> Maildrop:
        try:
            inbox = await self.store.get_mailbox(account.id, "INBOX")
            if inbox is None:
                raise TempFailure("INBOX is missing")
            uids = await self.store.uids(inbox.id)
            if account.pop_scope is PopScope.FROM_NOW:
                uids = [u for u in uids if u >= account.pop_min_uid]
            hidden = await self.store.pop_hidden(inbox.id)
            uids = [u for u in uids if u not in hidden]
            entries: list[MaildropEntry] = []
            for i in range(0, len(uids), _FETCH_BATCH):
                for info in await self.store.fetch(inbox.id, uids[i : i + _FETCH_BATCH]):
                    entries.append(
                        MaildropEntry(
                            number=len(entries) + 1,
                            uid=info.uid,
                            size=info.size,
                            unique_id=unique_id(inbox.uidvalidity, info.uid),
                            blob_id=info.blob_id,
                        )
                    )
        except store_errors.StoreUnavailable:
            raise _unavailable() from None
        return Maildrop(self, account, inbox.id, inbox.uidvalidity, entries, holder)

    async def archive_mailbox(self, account_id: int) -> int:
        """The account's \\Archive mailbox, created when the user deleted it."""
        mailbox = await self.store.get_special_mailbox(account_id, "\\Archive")
        if mailbox is None:
            mailbox = await self.store.get_mailbox(account_id, "Archive")
        if mailbox is None:
            try:
                mailbox = await self.store.create_mailbox(account_id, "Archive", "\\Archive")
            except store_errors.AlreadyExists:
                mailbox = await self.store.get_mailbox(account_id, "Archive")
                if mailbox is None:
                    raise TempFailure("Archive mailbox is unavailable") from None
        return mailbox.id
