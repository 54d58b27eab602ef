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
``-ERR [IN-USE]`` (RFC 2449 §8.1.1). The lock is an in-process set, which is exact for the
embedded (single-process) backend. Caveat: with several nodes on one PostgreSQL store,
two nodes could each lock the same account; the commit is still safe (it acts only on
UIDs that still exist and checks UIDVALIDITY), but the two sessions may both download a
message. A store-level lease would close that gap.

Must not do: wire syntax or reply wording (the front-end's), password checks (`auth`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar

from pillarbox.model import Account, FlagMode, PopOnRetrieve, PopScope
from pillarbox.services.errors import Rejected, TempFailure
from pillarbox.store import errors as store_errors
from pillarbox.store.api import Store

log = logging.getLogger("pillarbox.pop")

# Rows fetched per store query when taking the snapshot: bounds memory for huge INBOXes.
_FETCH_BATCH = 500
READ_CHUNK = 256 * 1024

T = TypeVar("T")


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
    path: str


def unique_id(uidvalidity: int, uid: int) -> str:
    """The UIDL value: printable ASCII, at most 70 characters (RFC 1939 §7)."""
    return f"{uidvalidity}.{uid}"


class MessageReader:
    """An open message file read in chunks off the event loop.

    The file is opened before the +OK is sent, so a concurrent IMAP expunge cannot cut
    the message short: an unlinked file stays readable through the open descriptor.

    Opening also reads the first `READ_CHUNK` bytes in the same thread hop, and a file
    shorter than that is closed there too, so a typical RETR costs one hop, not four
    (open, read, read to see the end, close). The hops go to this module's own small
    pool (`_file_pool`), never the loop's default executor, where password hashes
    (argon2, ~0.2 s of CPU each) queue during a burst of logins and would make every
    RETR of the already logged-in sessions wait behind them.
    """

    def __init__(self, fh: BinaryIO | None, first: bytes) -> None:
        self._fh = fh  # None once the end of the file has been read (and it is closed)
        self._buffered = first

    @classmethod
    def open_sync(cls, path: str) -> MessageReader:
        """Open `path` and read its first chunk (runs in a worker thread)."""
        fh = open(path, "rb")  # noqa: SIM115 - closed below at EOF, else by close()
        try:
            first = fh.read(READ_CHUNK)
        except BaseException:
            fh.close()
            raise
        if len(first) < READ_CHUNK:
            fh.close()
            return cls(None, first)
        return cls(fh, first)

    async def read(self, size: int = READ_CHUNK) -> bytes:
        """Up to `size` bytes; b"" at the end."""
        if self._buffered:
            data, self._buffered = self._buffered[:size], self._buffered[size:]
            return data
        fh = self._fh
        if fh is None:
            return b""
        data = await _in_file_pool(fh.read, size)
        if not data:
            await self.close()
        return data

    async def close(self) -> None:
        self._buffered = b""
        fh, self._fh = self._fh, None
        if fh is not None:
            await _in_file_pool(fh.close)


_pool: ThreadPoolExecutor | None = None
_POOL_THREADS = 4  # reads from the page cache are short; a few suffice on any machine


def _file_pool() -> ThreadPoolExecutor:
    """The process's POP3 file-reading threads, started on first use."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(_POOL_THREADS, thread_name_prefix="pillarbox-pop-io")
    return _pool


async def _in_file_pool(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_file_pool(), fn, *args)


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
    ) -> None:
        self._service = service
        self.account = account
        self.inbox_id = inbox_id
        self.uidvalidity = uidvalidity
        self._entries = entries
        self._deleted: set[int] = set()
        self._closed = False

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

    async def open_message(self, number: int) -> MessageReader:
        """Open message `number` for streaming (RETR, TOP)."""
        entry = self.entry(number)
        try:
            return await _in_file_pool(MessageReader.open_sync, entry.path)
        except FileNotFoundError:
            raise NoSuchMessage(f"Message {number} was removed from the server") from None

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
            self._service.release(self.account.id)


class PopService:
    """Opens maildrops; owns the per-account lock table (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._locked: set[int] = set()

    def is_locked(self, account_id: int) -> bool:
        return account_id in self._locked

    def release(self, account_id: int) -> None:
        self._locked.discard(account_id)

    async def open(self, account: Account) -> Maildrop:
        """Lock the account's maildrop and snapshot INBOX; MaildropInUse if locked."""
        if account.id in self._locked:
            raise MaildropInUse()
        self._locked.add(account.id)  # taken before any await: no race in one process
        try:
            return await self._snapshot(account)
        except BaseException:
            self._locked.discard(account.id)
            raise

    async def _snapshot(self, account: Account) -> Maildrop:
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
                            path=self.store.message_path(info),
                        )
                    )
        except store_errors.StoreUnavailable:
            raise _unavailable() from None
        return Maildrop(self, account, inbox.id, inbox.uidvalidity, entries)

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
