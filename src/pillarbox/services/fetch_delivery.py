"""Local delivery of a fetched message, recorded as fetched in the same transaction.

A message pulled from another provider is stored like one received over SMTP: the
trace fields a delivering MTA adds (``Delivered-To`` for loop detection and a
``Received`` line, RFC 5321 §4.4, naming the source host, its address and the protocol),
one parse (`message.parse`), and the account's quota (`rules.quota`, applied by the
store). The difference is the commit: `Store.deliver_fetched` writes the copy and the
record of the remote message (`FetchedRecord`) in one transaction, so a crash between
them can neither lose the message (the record would hide it) nor fetch it twice (the
copy would be there without a record). The remote copy is deleted only after this
returns, that is after the commit is durable.

Decision: no ``Return-Path`` is added. The envelope sender is not known to a fetch; the
provider that delivered the message first put its own Return-Path at the top, which stays.

Must not: connect anywhere, or hold more than the one message it is given.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import re
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from pillarbox.message import parse
from pillarbox.model import Account, AppendResult, FlagMode
from pillarbox.model.fetch import (
    FetchedEntry,
    FetchedRecord,
    FetchFolderState,
    FetchRun,
    FetchSource,
)
from pillarbox.services.delivery import StoreDelivery, received_header
from pillarbox.services.errors import OverQuota, TempFailure
from pillarbox.services.mailbox import AccountMailboxes, MailboxExists
from pillarbox.store import errors as store_errors
from pillarbox.store.api import Store

log = logging.getLogger("pillarbox.fetch")
_TRACE_IDS = random.Random()
T = TypeVar("T")
_LINE_END = re.compile(rb"\r?\n")


def header_block(data: bytes) -> bytes:
    """The header fields of a message, up to the empty line (all of it if none)."""
    for end in (b"\r\n\r\n", b"\n\n"):
        at = data.find(end)
        if at >= 0:
            return data[: at + len(end)]
    return data


def header_digest(data: bytes) -> str:
    """What recognises a message again when its remote id changed (a new UIDVALIDITY,
    a POP3 server without UIDL): a SHA-256 of the header block (Message-ID, Date,
    Received and every other field), line ends and trailing spaces aside."""
    lines = _LINE_END.split(header_block(data))
    return hashlib.sha256(b"\n".join(line.rstrip() for line in lines)).hexdigest()


def canonical_lines(data: bytes) -> bytes:
    """CRLF line ends throughout, ending in CRLF (RFC 5322 §2.1), as every stored message."""
    data = _LINE_END.sub(b"\r\n", data)
    return data if data.endswith(b"\r\n") else data + b"\r\n"


class SourceGone(TempFailure):
    """The source (or its account) was removed while it ran."""


async def _translated(pending: Awaitable[T]) -> T:
    """Store errors in service words (the fetcher never sees store exceptions)."""
    try:
        return await pending
    except store_errors.NotFound as exc:
        raise SourceGone("the source was removed") from exc
    except store_errors.StoreUnavailable as exc:
        raise TempFailure("temporary storage failure") from exc


class AlreadyFetched(TempFailure):
    """Another run stored this remote message meanwhile; nothing was stored twice."""


@dataclass(frozen=True, slots=True)
class FetchOrigin:
    """Where a message was fetched from, for its Received line."""

    host: str
    address: str  # the IP actually connected
    protocol: str  # "POP3" or "IMAP" (a Received "with" atom, RFC 5321 §4.4)
    tls: str | None  # cipher description, None without TLS


class FetchDelivery:
    """What the fetcher asks of the store, in service words (it never sees the store)."""

    def __init__(self, store: Store, *, hostname: str) -> None:
        self._store = store
        self.hostname = hostname

    async def account_of(self, source: FetchSource) -> Account:
        account = await self._store.get_account_by_id(source.account_id)
        if account is None:
            raise TempFailure("the account of this source is gone")
        return account

    async def fetched(self, source: FetchSource, folder: str) -> list[FetchedEntry]:
        return await _translated(self._store.fetched(source.id, folder))

    async def folders(self, source: FetchSource) -> dict[str, FetchFolderState]:
        states = await _translated(self._store.fetch_folders(source.id))
        return {f.folder: f for f in states}

    async def mark(self, records: list[FetchedRecord]) -> None:
        if records:
            await _translated(self._store.mark_fetched(records))

    async def set_folder(self, source: FetchSource, state: FetchFolderState) -> None:
        await _translated(self._store.set_fetch_folder(source.id, state))

    async def forget(
        self,
        source: FetchSource,
        folder: str,
        remote_ids: list[str],
        *,
        keep_uidvalidity: int | None = None,
    ) -> None:
        if remote_ids or keep_uidvalidity is not None:
            await _translated(
                self._store.forget_fetched(
                    source.id, folder, remote_ids, keep_uidvalidity=keep_uidvalidity
                )
            )

    async def record_run(self, source: FetchSource, run: FetchRun) -> FetchSource | None:
        """The source as recorded; None if it was removed during the run."""
        try:
            return await _translated(self._store.record_fetch_run(source.id, run))
        except SourceGone:
            return None

    async def carry_flags(
        self,
        source: FetchSource,
        folder: str,
        uidvalidity: int,
        changes: Mapping[int, frozenset[str]],
        carried: frozenset[str],
    ) -> int:
        """Apply to the local copies what changed at the source among the `carried`
        flags (remote UID -> its flags now); how many copies changed.

        Decision: only a flag that changed there is changed here, so a message read here
        and flagged there stays read. The flags the source had last are kept per record;
        where they are not known (a record older than this), the source's state wins.
        Each flag change is one `set_flags`, which publishes it to the sessions."""
        copies = {
            c.remote_uid: c
            for c in await _translated(self._store.fetched_copies(source.id, folder, uidvalidity))
        }
        plan: dict[tuple[int, str, FlagMode], list[int]] = {}
        seen: dict[int, frozenset[str]] = {}
        moved = 0
        for remote_uid, flags in changes.items():
            copy = copies.get(remote_uid)
            if copy is None:
                continue
            now = flags & carried
            before = copy.remote_flags if copy.remote_flags is not None else carried - now
            if now == before:
                continue
            moved += 1
            for flag in now - before:
                plan.setdefault((copy.mailbox_id, flag, FlagMode.ADD), []).append(copy.uid)
            for flag in (before - now) & carried:
                plan.setdefault((copy.mailbox_id, flag, FlagMode.REMOVE), []).append(copy.uid)
            seen[remote_uid] = now
        for (mailbox_id, flag, mode), uids in plan.items():
            try:
                await self._store.set_flags(mailbox_id, uids, frozenset({flag}), mode)
            except store_errors.NotFound:
                continue  # the local folder is gone: nothing to carry to
            except store_errors.StoreUnavailable as exc:
                raise TempFailure("temporary storage failure") from exc
        if seen:
            # After the flags: a crash in between carries the same changes again.
            await _translated(self._store.set_fetched_flags(source.id, folder, uidvalidity, seen))
        return moved

    async def local_folder(
        self, account: Account, name: str, special_use: str | None = None
    ) -> str:
        """The local folder a mirrored source folder's mail goes to, made if missing:
        the account's folder of `special_use` if it has one, else `name` (created with
        that special use when no folder has it). Through `AccountMailboxes`, so IMAP
        sessions and the webmail see a new folder at once."""
        mailboxes = AccountMailboxes(self._store, account.id)
        if special_use is not None:
            for mailbox in await mailboxes.list_all():
                if mailbox.special_use == special_use:
                    return mailbox.name
        found = await mailboxes.find(name)
        if found is not None:
            return found.name
        try:
            return (await mailboxes.create(name, special_use)).name
        except MailboxExists:  # made meanwhile by another run or the user: fine
            return name

    async def deliver(
        self,
        source: FetchSource,
        account: Account,
        data: bytes,
        record: FetchedRecord,
        origin: FetchOrigin,
        flags: frozenset[str] = frozenset(),
        folder: str | None = None,
    ) -> AppendResult:
        """Store `data` in `folder` (default: the source's target folder; INBOX if that
        is gone) with its trace fields, and `record` with it; durable when this returns.
        OverQuota, TempFailure."""
        store = self._store
        now = datetime.now(UTC)
        trace_id = f"{_TRACE_IDS.getrandbits(64):016X}"
        prefix = f"Delivered-To: {account.address}\r\n".encode() + received_header(
            hostname=self.hostname,
            helo=origin.host,
            client_ip=origin.address,
            protocol=origin.protocol,
            trace_id=trace_id,
            tls=origin.tls,
            for_address=account.address,
            when=now,
        )
        whole = prefix + canonical_lines(data)
        mailbox = await store.get_mailbox(account.id, folder or source.target_folder)
        if mailbox is None:
            mailbox = await store.get_mailbox(account.id, "INBOX")
        if mailbox is None:
            raise TempFailure("the target folder is gone")
        writer = store.new_blob()
        try:
            await writer.write(whole)
            # Parse while the file is synced; both have ended before a failure is raised,
            # so the abort below never races the sync.
            synced, parsed = await asyncio.gather(
                writer.finish(), asyncio.to_thread(parse, whole), return_exceptions=True
            )
            if isinstance(synced, BaseException):
                raise synced
            if isinstance(parsed, BaseException):
                raise parsed
            blob, meta = synced, parsed
            result = await store.deliver_fetched(
                StoreDelivery(mailbox.id, blob, meta, flags, now), record
            )
        except BaseException as exc:
            await writer.abort()
            if isinstance(exc, store_errors.AlreadyExists):
                raise AlreadyFetched("fetched by another run") from exc
            if isinstance(exc, store_errors.QuotaExceeded):
                raise OverQuota() from exc
            if isinstance(exc, store_errors.NotFound):
                raise SourceGone("the source or its target folder was removed") from exc
            if isinstance(exc, store_errors.StoreUnavailable | OSError):
                raise TempFailure("temporary storage failure") from exc
            raise
        log.info(
            "%s fetched from %s (%s %s) into %s",
            trace_id,
            origin.host,
            origin.protocol,
            record.remote_id,
            account.address,
        )
        return result
