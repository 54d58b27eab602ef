"""Mailbox operations for one account: the service every mail-access front-end calls.

`AccountMailboxes` lists, finds, creates, deletes, renames and subscribes mailboxes,
reports their status, appends (MULTIAPPEND all or nothing) and copies or moves messages
for *one* account. Every call is keyed by the account id fixed at login, and every name
the client sends goes through `normalize_name` (`rules.mailbox_names`) first, so no name
(``..``, ``/x``, ``%``, NUL, very long) can reach another account's mailboxes: the store
is only ever asked about (account_id, canonical name). Store errors become the service
errors below (`call_store`, the one table), which front-ends map to their reply codes.
The selected mailbox's view and operations are in `services.view` and
`services.selected`.

RFCs: 9051 §5.1 (mailbox naming), §6.3.4-6.3.6 (CREATE, DELETE, RENAME rules), §6.3.12
(APPEND), 3502 (MULTIAPPEND), 6851 (MOVE).

Must not: know protocol syntax (no IMAP atoms, tags or response codes here), query the
store per message, or accept a mailbox id from a client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from pillarbox.message.parse import parse
from pillarbox.message.parts import MAX_HEADER_SIZE
from pillarbox.message.sections import largest_header
from pillarbox.model import (
    AppendResult,
    CopyResult,
    FlagMode,
    Mailbox,
    MailboxStatus,
    MessageMeta,
    QuotaUsage,
)
from pillarbox.rules.mailbox_names import (
    BadMailboxName,
    is_inferior,
    normalize_mailbox_name,
    parent_names,
)
from pillarbox.services.errors import LimitReached, OverQuota, Rejected, TempFailure
from pillarbox.store import errors as store_errors
from pillarbox.store.api import BlobHandle, BlobWriter, Store

T = TypeVar("T")


# --- errors: each maps to one IMAP response code in the front-end's table -------------------


class InvalidMailboxName(Rejected):
    """The name is not acceptable as a mailbox name (RFC 9051 §5.1)."""


class NoSuchMailbox(Rejected):
    """No mailbox of that name in this account (IMAP ``[NONEXISTENT]``/``[TRYCREATE]``)."""


class MailboxExists(Rejected):
    """The target name is taken (IMAP ``[ALREADYEXISTS]``)."""


class MailboxNotAllowed(Rejected):
    """The operation is never allowed on this mailbox (IMAP ``[CANNOT]``)."""


# --- names ---------------------------------------------------------------------------------


def normalize_name(name: str) -> str:
    """The canonical form of a client-supplied mailbox name (`rules.mailbox_names`), or
    `InvalidMailboxName`."""
    try:
        return normalize_mailbox_name(name)
    except BadMailboxName as exc:
        raise InvalidMailboxName(str(exc)) from None


# --- store error translation ---------------------------------------------------------------


async def call_store(
    call: Awaitable[T],
    *,
    not_found: str = "No such mailbox",
    exists: str = "Mailbox already exists",
    conflict: str = "Not allowed on this mailbox",
) -> T:
    """Run a store call and turn store errors into service errors (the one table every
    mailbox service uses)."""
    try:
        return await call
    except store_errors.NotFound:
        raise NoSuchMailbox(not_found) from None
    except store_errors.AlreadyExists:
        raise MailboxExists(exists) from None
    except store_errors.Conflict:
        raise MailboxNotAllowed(conflict) from None
    except store_errors.QuotaExceeded:
        raise OverQuota() from None
    except store_errors.LimitExceeded as e:
        full = isinstance(e, store_errors.MailboxKeywordsFull)
        raise LimitReached(str(e), mailbox_full=full) from None
    except store_errors.StoreUnavailable:
        raise TempFailure("Storage temporarily unavailable") from None


# --- account-scoped mailbox operations ------------------------------------------------------


# Names a session keeps resolved at most (a client touches a handful; a hostile one cannot
# grow it without bound).
MAILBOX_CACHE_SIZE = 256


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message a client adds to a mailbox (APPEND): its bytes, flags (already checked
    with `rules.flags.storable_flags`) and internal date (now when None)."""

    data: bytes
    flags: frozenset[str] = frozenset()
    internaldate: datetime | None = None


class AccountMailboxes:
    """Mailbox operations of one logged-in account; the account id never comes from input.

    Name cache: `find` remembers name → `Mailbox` so that a repeated SELECT, APPEND,
    STATUS or COPY/MOVE target costs no store trip. It is only used when the caller
    passes `changes_pending` (a check on the session's change-bus subscription) and that
    says nothing is waiting: every committed CREATE/DELETE/RENAME is published on the bus
    before the call that made it returns, and the subscriber calls `invalidate` when it
    takes a `MailboxesChanged` or `Resync`, so the cache is only trusted when every
    published mailbox change has been seen. A lookup that raced with an invalidation is
    not cached (generation check). Cached entries identify a mailbox (id, name,
    UIDVALIDITY, special use); their counters (UIDNEXT, HIGHESTMODSEQ) may be old, so
    SELECT takes those from its own snapshot.
    """

    def __init__(
        self,
        store: Store,
        account_id: int,
        *,
        changes_pending: Callable[[], bool] | None = None,
    ) -> None:
        self.store = store
        self.account_id = account_id
        self._changes_pending = changes_pending
        self._cache: dict[str, Mailbox] = {}
        self._generation = 0

    def invalidate(self) -> None:
        """Forget every resolved name (a mailbox of the account was created, deleted,
        renamed, or the change feed was lost)."""
        self._cache.clear()
        self._generation += 1

    async def list_all(self) -> list[Mailbox]:
        result = await call_store(self.store.list_mailboxes(self.account_id))
        return [m for m in result if m.account_id == self.account_id]

    async def subscriptions(self) -> list[str]:
        return await call_store(self.store.list_subscriptions(self.account_id))

    async def find(self, name: str) -> Mailbox | None:
        """The mailbox of that name, None if absent or if the name is not acceptable
        (no such mailbox can exist, so hostile names simply find nothing)."""
        try:
            canonical = normalize_name(name)
        except InvalidMailboxName:
            return None
        pending = self._changes_pending
        usable = pending is not None and not pending()
        if usable:
            cached = self._cache.get(canonical)
            if cached is not None:
                return cached
        generation = self._generation
        mailbox = await call_store(self.store.get_mailbox(self.account_id, canonical))
        if mailbox is None or mailbox.account_id != self.account_id:
            return None
        if usable and generation == self._generation:
            if len(self._cache) >= MAILBOX_CACHE_SIZE:
                self._cache.clear()
            self._cache[canonical] = mailbox
        return mailbox

    async def get(self, name: str) -> Mailbox:
        mailbox = await self.find(name)
        if mailbox is None:
            raise NoSuchMailbox("No such mailbox")
        return mailbox

    async def by_id(self, mailbox_id: int) -> Mailbox | None:
        """Re-read a mailbox this session already resolved (never an id from the client)."""
        mailbox = await call_store(self.store.get_mailbox_by_id(mailbox_id))
        if mailbox is None or mailbox.account_id != self.account_id:
            return None
        return mailbox

    async def create(self, name: str, special_use: str | None = None) -> Mailbox:
        """CREATE: parents are created as needed (RFC 9051 §6.3.4)."""
        canonical = normalize_name(name)
        if canonical == "INBOX" or await self.find(canonical) is not None:
            raise MailboxExists("Mailbox already exists")
        await self._ensure_parents(canonical)
        try:
            mailbox = await call_store(
                self.store.create_mailbox(self.account_id, canonical, special_use),
                conflict="Another mailbox has this special use",
            )
        finally:
            self.invalidate()
        return mailbox

    async def _ensure_parents(self, name: str) -> None:
        for parent in parent_names(name):
            if await self.find(parent) is None:
                with contextlib.suppress(MailboxExists):  # created concurrently: fine
                    await self._create_one(parent)

    async def _create_one(self, name: str) -> None:
        try:
            await call_store(self.store.create_mailbox(self.account_id, name))
        finally:
            self.invalidate()

    async def delete(self, name: str) -> None:
        canonical = normalize_name(name)
        if canonical == "INBOX":
            raise MailboxNotAllowed("INBOX cannot be deleted")
        await self.get(canonical)
        try:
            await call_store(
                self.store.delete_mailbox(self.account_id, canonical),
                conflict="This mailbox cannot be deleted",
            )
        finally:
            self.invalidate()

    async def rename(self, old: str, new: str) -> None:
        """RENAME (RFC 9051 §6.3.6): children move along; INBOX is moved into a new mailbox
        and left empty (done by the store)."""
        src = normalize_name(old)
        dst = normalize_name(new)
        await self.get(src)
        if dst == "INBOX" or await self.find(dst) is not None:
            raise MailboxExists("Target mailbox already exists")
        if src != "INBOX" and (dst == src or is_inferior(dst, src)):
            raise MailboxNotAllowed("Cannot rename a mailbox into itself")
        await self._ensure_parents(dst)
        try:
            await call_store(
                self.store.rename_mailbox(self.account_id, src, dst),
                conflict="This mailbox cannot be renamed",
            )
        finally:
            self.invalidate()

    async def subscribe(self, name: str, subscribed: bool) -> None:
        """Subscriptions are kept by name (RFC 9051 §6.3.7 allows a nonexistent name)."""
        canonical = normalize_name(name)
        if subscribed:
            await self.get(canonical)
        await call_store(self.store.set_subscribed(self.account_id, canonical, subscribed))

    async def status(self, mailbox: Mailbox) -> MailboxStatus:
        return await call_store(self.store.mailbox_status(mailbox.id))

    async def quota(self) -> QuotaUsage:
        """The account's limits and usage (RFC 9208 GETQUOTA, GETQUOTAROOT)."""
        return await call_store(self.store.quota(self.account_id))

    async def count_recent(self, mailbox: Mailbox) -> int:
        """Messages no session has taken as \\Recent yet (RFC 3501 §6.3.10 STATUS RECENT)."""
        return await call_store(self.store.count_recent(mailbox.id))

    async def append(self, mailbox: Mailbox, message: NewMessage) -> AppendResult:
        """Parse once (in a thread when large), write the message durably, then make it
        visible (one store transaction)."""
        meta, blob = await self._written(message.data)
        return await call_store(
            self.store.append(mailbox.id, blob, meta, message.flags, message.internaldate)
        )

    async def replace(
        self, mailbox: Mailbox, uid: int, dest: Mailbox, message: NewMessage
    ) -> AppendResult:
        """REPLACE (RFC 8508): store `message` in `dest` and remove message `uid` of
        `mailbox`, whatever its flags, in one store transaction (as `append` otherwise).
        NoSuchMailbox when that message (or either mailbox) is gone: nothing changed."""
        meta, blob = await self._written(message.data)
        return await call_store(
            self.store.replace(
                mailbox.id, uid, dest.id, blob, meta, message.flags, message.internaldate
            ),
            not_found="The message to replace no longer exists",
        )

    async def _written(self, data: bytes) -> tuple[MessageMeta, BlobHandle]:
        """The message parsed once and its bytes written durably, at the same time.

        As delivery does: the parse runs in a worker thread while the file is written
        and synced, so an APPEND waits for the longer of the two, not their sum, and
        the event loop never holds the GIL for a MIME parse (issue 18: the loop stalled
        other sessions for the length of every appended message's parse). A header
        block over `MAX_HEADER_SIZE` is refused after both; its file is discarded."""
        writer = self.store.new_blob()
        try:
            # Both run to their end before either's failure is raised: the writer is
            # never aborted while its sync is still running.
            parsed, blob = await asyncio.gather(
                asyncio.to_thread(parse, data), _write_all(writer, data), return_exceptions=True
            )
            if isinstance(blob, BaseException):
                raise blob
            if isinstance(parsed, BaseException):
                raise parsed
            if largest_header(parsed.parts) > MAX_HEADER_SIZE:
                raise LimitReached(f"A header block is larger than {MAX_HEADER_SIZE} bytes")
        except BaseException:
            await writer.abort()
            raise
        return parsed, blob

    async def append_all(
        self, mailbox: Mailbox, messages: Sequence[NewMessage]
    ) -> list[AppendResult]:
        """APPEND of one or more messages (MULTIAPPEND): all or nothing (RFC 3502 §6.3.11).
        If a later message fails, the ones already stored are removed again before the
        error is raised."""
        done: list[AppendResult] = []
        try:
            for message in messages:
                done.append(await self.append(mailbox, message))
        except BaseException:
            if done:
                await self._remove_appended(mailbox, [r.uid for r in done])
            raise
        return done

    async def _remove_appended(self, mailbox: Mailbox, uids: Sequence[int]) -> None:
        with contextlib.suppress(Exception):  # the original failure is what to report
            await self.store.set_flags(mailbox.id, uids, frozenset({"\\Deleted"}), FlagMode.ADD)
            await self.store.expunge(mailbox.id, uids)

    async def copy(self, src: Mailbox, uids: Sequence[int], dst: Mailbox) -> CopyResult:
        return await call_store(self.store.copy(src.id, uids, dst.id))

    async def move(self, src: Mailbox, uids: Sequence[int], dst: Mailbox) -> CopyResult:
        return await call_store(self.store.move(src.id, uids, dst.id))


async def _write_all(writer: BlobWriter, data: bytes) -> BlobHandle:
    """`data` written through `writer` and synced (the caller aborts it on failure)."""
    await writer.write(data)
    return await writer.finish()
