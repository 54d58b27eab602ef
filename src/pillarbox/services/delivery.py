"""Local delivery: who a recipient is, and how one received message becomes stored copies.

Owns recipient resolution (local domains, accounts, aliases, catch-all, sub-addressing
``user+tag@domain``), the trace headers a delivering MTA adds (RFC 5321 §4.4 Received,
Return-Path, and Delivered-To), parsing the message once with `pillarbox.message.parse`
(in a thread), and handing every local copy and the queue entry for any remote recipients
to the store in one call (`deliver`, `enqueue`, or both at once: `deliver_and_enqueue`).
Front-ends stream the body in with `IncomingMessage.write` and answer 250 only after
`finish` returns, which is after the store's commit: by then every copy's file has been
fsynced and its row committed.

Must not: speak any protocol (errors are `ServiceError`s with an RFC 3463 status; each
front-end picks its own reply codes), import a front-end
or a store backend, or hold a large message in memory while it arrives.

Design: one spool, per-recipient copies, one parse.
  A message for several local mailboxes needs a different ``Delivered-To`` in each copy
  (that is the point of the header: loop detection and "which address got me this").
  The body arrives once, into a spool blob laid out as::

      [Return-Path + Delivered-To of the first target]  Received  [added headers]  message

  The bracketed per-recipient prefix is written only when every recipient is local; the
  spool file then *is* the first target's copy, so the common case (one local
  recipient) costs no copy at all. Each further local target gets its own file: its own
  prefix, then the spool's bytes after the prefix, copied from the local disk (never
  re-read from the network). With remote recipients the spool has no prefix and is
  exactly what the outbound queue sends, so the queue and local copies never disagree.

  The spool is parsed once. The prefix only adds header fields at the top of the
  message, so every other copy's metadata is the spool's with the part offsets
  (`MessageMeta.parts`, `message.parts` JSON) past the prefix shifted by the prefix
  length difference, the size adjusted, and the first lines of the decoded header text
  swapped; ENVELOPE and BODYSTRUCTURE do not depend on these fields. This is checked
  against a fresh parse of each copy in `tests/services/test_delivery.py`. We chose
  copies over one shared blob without Delivered-To because the header is what users and
  filters rely on, and over parsing each copy because parsing is the expensive step
  (a 50 MB message parses in seconds, it copies in tens of milliseconds).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import random
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from pillarbox.message import parse
from pillarbox.model import AppendResult, Mailbox, MessageMeta, QueuedRecipient, QueueOrigin
from pillarbox.rules import addresses
from pillarbox.services.errors import OverQuota, Rejected, ServiceError, TempFailure
from pillarbox.services.inbound_auth import InboundAuth
from pillarbox.store import errors as store_errors
from pillarbox.store.api import BlobHandle, BlobWriter, Store

log = logging.getLogger("pillarbox.delivery")

# Trace ids only need to be unique in the logs, so a PRNG seeded once rather than
# os.urandom, which releases and re-takes the GIL on every call (costly on a busy loop).
_TRACE_IDS = random.Random()
MAX_ALIAS_DEPTH = 8  # alias chains longer than this are a loop or a mistake
KEEP_IN_MEMORY = 1024 * 1024  # spools up to this size are parsed without re-reading
COPY_CHUNK = 1024 * 1024
HEAD_CAP = 2 * 1024 * 1024  # a header filter sees at most this much (the core caps headers)

HeaderFilter = Callable[[bytes], Awaitable[bytes]]
"""Given the message's header block, return header lines to add (or raise Rejected)."""


@dataclass(frozen=True, slots=True)
class LocalTarget:
    """A mailbox owner a recipient resolves to; `delivered_to` keeps a +tag if any."""

    account_id: int
    address: str
    delivered_to: str


@dataclass(frozen=True, slots=True)
class Recipient:
    """An accepted RCPT: the address as given and where it leads."""

    address: str
    local: tuple[LocalTarget, ...] = ()
    remote: tuple[str, ...] = ()
    notify: str | None = None  # RFC 3461 §4.1
    orcpt: str | None = None  # RFC 3461 §4.2


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the SMTP transaction established before the body."""

    sender: str  # "" for the null reverse-path
    recipients: tuple[Recipient, ...]
    helo: str
    client_ip: str
    protocol: str  # RFC 3848 / RFC 6531 §3.7.3 "with" value: ESMTPSA, UTF8SMTPS...
    tls: str | None = None  # cipher description for the Received comment
    ret: str | None = None  # RFC 3461 §4.3
    envid: str | None = None  # RFC 3461 §4.4
    sent_copy_account: int | None = None  # also file a \Seen copy in this account's Sent
    submitted: bool = False  # an authenticated user sent it (queued as SUBMISSION: signed)


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    trace_id: str
    delivered: tuple[AppendResult, ...]
    queue_id: int | None


@dataclass(slots=True)
class StoreDelivery:
    """Implements `store.api.Delivery`: one copy to store (local delivery, the fetcher)."""

    mailbox_id: int
    blob: BlobHandle
    meta: MessageMeta
    flags: frozenset[str] = frozenset()
    internaldate: datetime = field(default_factory=lambda: datetime.now(UTC))


def with_protocol(
    *, extended: bool, tls: bool, authenticated: bool, utf8: bool, lmtp: bool = False
) -> str:
    """The Received "with" keyword: RFC 3848 (ESMTP[S][A], LMTP[S][A]) and RFC 6531 §3.7.3
    (UTF8SMTP, UTF8LMTP)."""
    if lmtp:
        base = "UTF8LMTP" if utf8 else "LMTP"
    else:
        base = "UTF8SMTP" if utf8 else ("ESMTP" if extended else "SMTP")
    return base + ("S" if tls else "") + ("A" if authenticated else "")


def _ip_literal(ip: str) -> str:
    return f"[IPv6:{ip}]" if ":" in ip else f"[{ip}]"


_UNSAFE_HELO = re.compile(r"[^A-Za-z0-9.\-_:\[\]]")


def received_header(
    *,
    hostname: str,
    helo: str,
    client_ip: str,
    protocol: str,
    trace_id: str,
    tls: str | None,
    for_address: str | None,
    when: datetime,
) -> bytes:
    """RFC 5321 §4.4 Time-stamp-line. The HELO name is sanitised (it is client text);
    `for` is given only for a single recipient, so copies never reveal other recipients."""
    helo_text = _UNSAFE_HELO.sub("?", helo)[:255] or "unknown"
    lines = [
        f"Received: from {helo_text} ({_ip_literal(client_ip)})",
        f"\tby {hostname} (Pillarbox) with {protocol} id {trace_id}",
    ]
    if tls:
        lines.append(f"\t({tls.replace('(', '').replace(')', '')})")
    if for_address is not None:
        lines.append(f"\tfor <{for_address}>")
    lines[-1] += ";"
    lines.append(f"\t{format_datetime(when)}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _prefix(sender: str, target: LocalTarget) -> bytes:
    return f"Return-Path: <{sender}>\r\nDelivered-To: {target.delivered_to}\r\n".encode()


def _prefix_text(sender: str, target: LocalTarget) -> str:
    """The same two fields as `parse` renders them in `MessageMeta.headers`."""
    return f"Return-Path: <{sender}>\nDelivered-To: {target.delivered_to}\n"


def _shift_node(node: dict[str, Any], split: int, delta: int) -> None:
    for key in ("h", "b", "e"):
        if node[key] > split:
            node[key] += delta
    for child in node.get("c", ()):
        _shift_node(child, split, delta)
    if "m" in node:
        _shift_node(node["m"], split, delta)


def shift_meta(
    meta: MessageMeta, *, split: int, old_lines: int, new_prefix: str, delta: int
) -> MessageMeta:
    """The metadata of a copy whose first `split` bytes (the `old_lines` first header
    fields) were replaced by a prefix `delta` bytes longer (see module docstring)."""
    doc = json.loads(meta.parts)
    _shift_node(doc["p"], split, delta)
    headers = meta.headers
    for _ in range(old_lines):
        headers = headers.partition("\n")[2]
    return dataclasses.replace(
        meta,
        size=meta.size + delta,
        parts=json.dumps(doc, separators=(",", ":")),
        headers=new_prefix + headers,
    )


def header_block_end(head: bytes | bytearray) -> int | None:
    """Length of the header block including its empty line, or None if not seen yet."""
    if head.startswith(b"\r\n"):
        return 2
    end = head.find(b"\r\n\r\n")
    return None if end < 0 else end + 4


def _concerns_a_mailbox(error: ServiceError) -> bool:
    """RFC 3463 §3.3: X.2.Y codes are the status of one recipient's mailbox (full, gone,
    disabled), so such a failure of a delivery to several mailboxes may spare the rest."""
    return error.status[1:4] == ".2."


class _KeptSpool:
    """Wraps the spool's `BlobWriter` so that `abort` waits for `release`: LMTP's
    per-recipient retry (`IncomingMessage.finish_each`) reads the spool after a failed
    `finish`, which aborts every writer it made."""

    def __init__(self, inner: BlobWriter) -> None:
        self._inner = inner
        self._abort_requested = False
        self.spool: BlobHandle | None = None

    async def write(self, data: bytes) -> None:
        await self._inner.write(data)

    async def finish(self) -> BlobHandle:
        self.spool = await self._inner.finish()
        return self.spool

    async def abort(self) -> None:
        self._abort_requested = True

    async def release(self) -> None:
        """Do the abort that was asked for, if any (a spool a row took is kept)."""
        if self._abort_requested:
            await self._inner.abort()


def _translate(exc: Exception) -> ServiceError:
    """Store errors in service words (front-ends never see store exceptions)."""
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, store_errors.QuotaExceeded):
        return OverQuota()
    if isinstance(exc, store_errors.StoreUnavailable | OSError):
        return TempFailure("Temporary storage failure, try again later", status="4.3.0")
    if isinstance(exc, store_errors.NotFound):
        # An account or mailbox vanished between RCPT and the end of DATA.
        return TempFailure("Recipient changed during delivery, try again", status="4.2.0")
    raise exc


class DeliveryService:
    """Recipient resolution and local delivery; shared by the MX and submission paths."""

    def __init__(self, store: Store, *, hostname: str) -> None:
        self._store = store
        self.hostname = hostname
        # Called after something was queued for other servers: the queue runner sets
        # its wake-up here, so queued mail goes out now rather than at the next poll.
        self.on_enqueue: Callable[[], None] | None = None

    def notify_enqueued(self) -> None:
        if self.on_enqueue is not None:
            self.on_enqueue()

    # --- recipients ----------------------------------------------------------------------
    @staticmethod
    def normalize_domain(domain: str) -> str | None:
        """Canonical form (`rules.addresses`), or None for an address literal or an
        invalid name: we accept no mail for IP literals, they are never local (a relay
        trick)."""
        try:
            return addresses.normalize_domain(domain)
        except addresses.InvalidAddress:
            return None

    async def is_local_domain(self, domain: str) -> bool:
        name = self.normalize_domain(domain)
        return name is not None and await self._store.get_domain(name) is not None

    async def resolve(
        self,
        address: str,
        *,
        relay_allowed: bool,
        notify: str | None = None,
        orcpt: str | None = None,
    ) -> Recipient:
        """Where mail for `address` goes. Rejected: unknown local user (550 5.1.1), or a
        non-local domain when `relay_allowed` is false (550 5.7.1: we never relay for
        unauthenticated clients, whatever the address looks like)."""
        if address.lower() == "postmaster":
            address = await self._postmaster()
        local, _, domain_text = address.rpartition("@")
        domain = self.normalize_domain(domain_text)
        if domain is None or await self._store.get_domain(domain) is None:
            if relay_allowed:
                return Recipient(address, remote=(address,), notify=notify, orcpt=orcpt)
            raise Rejected("Relay access denied", status="5.7.1")
        try:
            local = addresses.normalize_local_part(local)
        except addresses.InvalidAddress:
            raise Rejected("No such user here", status="5.1.1") from None
        locals_, remotes = await self._lookup(local, domain, depth=0, seen=set())
        if not locals_ and not remotes:
            raise Rejected("No such user here", status="5.1.1")
        return Recipient(
            address, local=tuple(locals_), remote=tuple(remotes), notify=notify, orcpt=orcpt
        )

    async def _postmaster(self) -> str:
        """RFC 5321 §4.5.1: <Postmaster> goes to postmaster of our first domain."""
        domains = await self._store.list_domains()
        return f"postmaster@{domains[0].name}" if domains else "postmaster@invalid"

    async def _lookup(
        self, local: str, domain: str, *, depth: int, seen: set[str]
    ) -> tuple[list[LocalTarget], list[str]]:
        store = self._store
        full = f"{local}@{domain}"
        account = await store.get_account(full)
        if account is not None:
            return [LocalTarget(account.id, account.address, account.address)], []
        alias = await store.get_alias(full)
        if alias is not None:
            return await self._expand(alias.targets, depth=depth, seen=seen | {full}, tag=None)
        base, plus, tag = local.partition("+")
        if plus and base and tag:
            # Sub-addressing: user+tag delivers to user (or the user alias), keeping the tag.
            account = await store.get_account(f"{base}@{domain}")
            if account is not None:
                tagged = f"{base}+{tag}@{domain}"
                return [LocalTarget(account.id, account.address, tagged)], []
            alias = await store.get_alias(f"{base}@{domain}")
            if alias is not None:
                return await self._expand(alias.targets, depth=depth, seen=seen | {full}, tag=tag)
        catch_all = await store.get_alias(f"@{domain}")
        if catch_all is not None and depth == 0:
            return await self._expand(catch_all.targets, depth=depth, seen=seen | {full}, tag=None)
        if local == "postmaster":
            return await self._default_postmaster(domain)
        return [], []

    async def _default_postmaster(self, domain: str) -> tuple[list[LocalTarget], list[str]]:
        """RFC 5321 §4.5.1: postmaster@ every local domain MUST be accepted. Without an
        account or alias of that name, the domain's first account receives it (else the
        server's first account), as an operator would expect of a fresh install; an
        explicit `alias add postmaster@domain ...` takes precedence."""
        accounts = await self._store.list_accounts(domain) or await self._store.list_accounts()
        if not accounts:
            return [], []
        first = min(accounts, key=lambda a: a.id)
        return [LocalTarget(first.id, first.address, first.address)], []

    async def _expand(
        self, targets: Sequence[str], *, depth: int, seen: set[str], tag: str | None
    ) -> tuple[list[LocalTarget], list[str]]:
        if depth >= MAX_ALIAS_DEPTH:
            log.warning("alias chain too deep at %s", sorted(seen))
            return [], []
        found: list[LocalTarget] = []
        remotes: list[str] = []
        for target in targets:
            # Targets were stored canonical (`AccountService.add_alias`).
            t_local, _, t_domain = target.rpartition("@")
            if target in seen:
                continue
            if await self._store.get_domain(t_domain) is None:
                remotes.append(target)
                continue
            more, more_remote = await self._lookup(
                t_local, t_domain, depth=depth + 1, seen=seen | {target}
            )
            if tag is not None:
                more = [
                    LocalTarget(t.account_id, t.address, _with_tag(t.delivered_to, tag))
                    for t in more
                ]
            found.extend(more)
            remotes.extend(more_remote)
        return found, remotes

    # --- messages ------------------------------------------------------------------------
    def begin(
        self,
        envelope: Envelope,
        *,
        header_filter: HeaderFilter | None = None,
        inbound: InboundAuth | None = None,
    ) -> IncomingMessage:
        """Start receiving a message for `envelope` (recipients already resolved);
        `inbound`: check it with SPF, DKIM and DMARC before storing (MX mail)."""
        return IncomingMessage(
            self._store,
            self.hostname,
            envelope,
            header_filter,
            inbound,
            on_enqueue=self.notify_enqueued,
        )


def _with_tag(address: str, tag: str) -> str:
    local, _, domain = address.rpartition("@")
    return address if "+" in local else f"{local}+{tag}@{domain}"


class IncomingMessage:
    """One message being received. `write` chunks as they arrive, then `finish` (store
    and return) or `abort`. Errors found while writing (a refused From:, a disk error)
    are kept and raised by `finish`, so the front-end reads the body to its end first."""

    def __init__(
        self,
        store: Store,
        hostname: str,
        envelope: Envelope,
        header_filter: HeaderFilter | None,
        inbound: InboundAuth | None = None,
        *,
        on_enqueue: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._on_enqueue = on_enqueue
        self.envelope = envelope
        self._filter = header_filter
        self._inbound = inbound
        self.trace_id = f"{_TRACE_IDS.getrandbits(64):016X}"
        self.received_at = datetime.now(UTC)
        targets: dict[int, LocalTarget] = {}
        remotes: dict[str, Recipient] = {}
        for rcpt in envelope.recipients:
            for target in rcpt.local:
                targets.setdefault(target.account_id, target)
            for address in rcpt.remote:
                remotes.setdefault(
                    address.lower(), Recipient(address, notify=rcpt.notify, orcpt=rcpt.orcpt)
                )
        self._targets = list(targets.values())
        self._remotes = list(remotes.values())
        # A checked message's copies carry the Authentication-Results field, known only
        # at the end: its spool gets no prefix, and the copies are made from it then.
        first_copy = self._targets and not self._remotes and inbound is None
        self._owner = self._targets[0] if first_copy else None
        self._owner_prefix = _prefix(envelope.sender, self._owner) if self._owner else b""
        single = envelope.recipients[0].address if len(envelope.recipients) == 1 else None
        self._received = received_header(
            hostname=hostname,
            helo=envelope.helo,
            client_ip=envelope.client_ip,
            protocol=envelope.protocol,
            trace_id=self.trace_id,
            tls=envelope.tls,
            for_address=single,
            when=self.received_at,
        )
        self._writer: BlobWriter = store.new_blob()
        self._writers: list[BlobWriter] = [self._writer]
        self._started = False
        self._head = bytearray()
        self._memory: bytearray | None = bytearray()
        self.error: ServiceError | None = None
        self._closed = False
        self._tail = b""  # the last two octets of the content received so far

    @property
    def failed(self) -> bool:
        return self.error is not None

    async def _put(self, data: bytes) -> None:
        if self._memory is not None:
            self._memory += data
            if len(self._memory) > KEEP_IN_MEMORY:
                self._memory = None
        await self._writer.write(data)

    async def _start(self, head: bytes) -> None:
        """Write the prefix, the Received line, the filter's additions and `head`."""
        self._started = True
        added = b""
        if self._filter is not None:
            end = header_block_end(head)
            added = await self._filter(head[:end] if end is not None else head)
        if self._inbound is not None:
            head = self._inbound.strip_forged(head)
        await self._put(self._owner_prefix + self._received + added + head)

    async def write(self, data: bytes) -> None:
        if self.error is not None or self._closed:
            return
        if data:
            self._tail = (self._tail + data)[-2:]
        try:
            if self._started:
                await self._put(data)
            elif self._filter is None and self._inbound is None:
                await self._start(data)
            else:
                self._head += data
                if header_block_end(self._head) is not None or len(self._head) > HEAD_CAP:
                    head, self._head = bytes(self._head), bytearray()
                    await self._start(head)
        except Exception as exc:
            self.error = _translate(exc)
            await self.abort()

    async def abort(self) -> None:
        """Drop everything written (idempotent)."""
        self._closed = True
        self._memory = None
        for writer in self._writers:
            try:
                await writer.abort()
            except Exception:  # cleanup must not hide the original outcome
                log.exception("%s: could not discard a blob", self.trace_id)

    async def finish(self) -> DeliveryResult:
        """Store every copy and queue remote recipients; returns once durable."""
        if self.error is not None:
            raise self.error
        if self._closed:
            raise TempFailure("Transaction aborted")
        if self._tail and self._tail != b"\r\n":
            # BDAT content (RFC 3030 §2) may end in the middle of a line; a stored
            # message always ends with CRLF (RFC 5322 §2.1), so that every reader sees
            # the same octets: POP3 LIST and RETR must agree on the size (RFC 1939 §7).
            await self.write(b"\r\n")
            if self.error is not None:
                raise self.error
        try:
            if not self._started:
                head, self._head = bytes(self._head), bytearray()
                await self._start(head)
                if self.error is not None:
                    raise self.error
            return await self._store_all()
        except Exception as exc:
            error = _translate(exc)
            await self.abort()
            raise error from exc

    async def finish_each(self) -> list[DeliveryResult | ServiceError]:
        """`finish` with one outcome per envelope recipient, in order (LMTP, RFC 2033
        §4.2). Every copy goes to the store in one transaction, as with `finish`; when
        that fails with an error about a mailbox (`_concerns_a_mailbox`: over quota, a
        mailbox gone) and there are several mailboxes, each recipient is then delivered
        on its own from the spool, so that one full mailbox does not fail the others.
        Other errors (a disk failure, a refused message) are every recipient's."""
        count = len(self.envelope.recipients)
        kept = _KeptSpool(self._writer)
        self._writers = [kept if w is self._writer else w for w in self._writers]
        self._writer = kept
        try:
            try:
                return [await self.finish()] * count
            except ServiceError as exc:
                retry = (
                    kept.spool is not None
                    and count > 1
                    and len(self._targets) > 1
                    and not self._remotes
                    and _concerns_a_mailbox(exc)
                )
                if not retry:
                    return [exc] * count
                assert kept.spool is not None
                log.info("%s: %s; delivering to each recipient alone", self.trace_id, exc)
                return await self._deliver_each(kept.spool)
        finally:
            await kept.release()

    async def _deliver_each(self, spool: BlobHandle) -> list[DeliveryResult | ServiceError]:
        outcomes: list[DeliveryResult | ServiceError] = []
        done: dict[int, DeliveryResult] = {}  # account id -> the delivery that served it
        for rcpt in self.envelope.recipients:
            targets = tuple(t for t in rcpt.local if t.account_id not in done)
            if not targets:  # an earlier recipient's delivery reached every mailbox
                outcomes.append(done[rcpt.local[0].account_id])
                continue
            try:
                result = await self._deliver_one(spool, dataclasses.replace(rcpt, local=targets))
            except ServiceError as exc:
                outcomes.append(exc)
                continue
            done.update((t.account_id, result) for t in targets)
            outcomes.append(result)
        return outcomes

    async def _deliver_one(self, spool: BlobHandle, recipient: Recipient) -> DeliveryResult:
        """`recipient`'s copies as a message of its own, made of the spool's bytes after
        the owner prefix: the Received line, added headers and the message, which every
        copy shares. It keeps this message's trace id, time and Received line."""
        envelope = dataclasses.replace(self.envelope, recipients=(recipient,))
        single = IncomingMessage(self._store, "", envelope, None)
        single.trace_id, single.received_at = self.trace_id, self.received_at
        single._received = b""  # already in the spool's bytes
        try:
            reader = await self._store.open_blob(spool.blob_id, len(self._owner_prefix))
            try:
                while chunk := await reader.read(COPY_CHUNK):
                    await single.write(chunk)
            finally:
                await reader.close()
        except Exception as exc:
            await single.abort()
            raise _translate(exc) from exc
        return await single.finish()

    async def _store_all(self) -> DeliveryResult:
        store, env = self._store, self.envelope
        memory, self._memory = self._memory, None
        data = bytes(memory) if memory is not None else None
        del memory

        async def spool_and_meta() -> tuple[BlobHandle, MessageMeta]:
            if data is None:
                synced = await self._writer.finish()
                whole = await self._store.read_blob(synced.blob_id)
                return synced, await asyncio.to_thread(parse, whole)
            # Parse while the file is synced: one waits on the CPU, the other on the disk.
            synced_or_error, parsed = await asyncio.gather(
                self._writer.finish(), asyncio.to_thread(parse, data), return_exceptions=True
            )
            if isinstance(synced_or_error, BaseException):
                raise synced_or_error
            if isinstance(parsed, BaseException):
                raise parsed
            return synced_or_error, parsed

        looked_up: Sequence[Mailbox | None]
        if self._inbound is not None and self._targets:
            queue_spool = await self._writer.finish()
            spool, meta, looked_up = await self._checked_copy(queue_spool, data)
        else:
            # The INBOX lookups go meanwhile too. Everything started here has finished
            # before a failure is raised, so abort() never races the file sync.
            done, found = await asyncio.gather(
                spool_and_meta(),
                asyncio.gather(*(store.get_mailbox(t.account_id, "INBOX") for t in self._targets)),
                return_exceptions=True,
            )
            if isinstance(done, BaseException):
                raise done
            if isinstance(found, BaseException):
                raise found
            spool, meta = done
            looked_up, queue_spool = found, spool
        split = len(self._owner_prefix)
        old_lines = 2 if self._owner is not None else 0
        deliveries: list[StoreDelivery] = []
        spool_used = bool(self._remotes)
        for target, mailbox in zip(self._targets, looked_up, strict=True):
            if mailbox is None:
                raise TempFailure("Mailbox unavailable", status="4.2.0")
            if target is self._owner:
                deliveries.append(
                    StoreDelivery(mailbox.id, spool, meta, internaldate=self.received_at)
                )
                spool_used = spool_used or spool is queue_spool
                continue
            prefix = _prefix(env.sender, target)
            blob = await self._copy(spool, prefix, split)
            copy_meta = shift_meta(
                meta,
                split=split,
                old_lines=old_lines,
                new_prefix=_prefix_text(env.sender, target),
                delta=len(prefix) - split,
            )
            deliveries.append(
                StoreDelivery(mailbox.id, blob, copy_meta, internaldate=self.received_at)
            )
        if env.sent_copy_account is not None:
            sent = await store.get_special_mailbox(env.sent_copy_account, "\\Sent")
            if sent is not None:
                if split == 0:
                    blob, sent_meta = spool, meta
                    spool_used = True
                else:
                    blob = await self._copy(spool, b"", split)
                    sent_meta = shift_meta(
                        meta, split=split, old_lines=old_lines, new_prefix="", delta=-split
                    )
                deliveries.append(
                    StoreDelivery(sent.id, blob, sent_meta, frozenset({"\\Seen"}), self.received_at)
                )
        results, queue_id = await self._commit(deliveries, queue_spool)
        self._closed = True
        if queue_id is not None and self._on_enqueue is not None:
            self._on_enqueue()
        if not spool_used:
            await self._writer.abort()  # every copy has its own file; drop the spool
        log.info(
            "%s delivered from <%s> to %d mailbox(es), %d queued",
            self.trace_id,
            env.sender,
            len(results),
            len(self._remotes),
        )
        return DeliveryResult(self.trace_id, tuple(results), queue_id)

    async def _checked_copy(
        self, spool: BlobHandle, data: bytes | None
    ) -> tuple[BlobHandle, MessageMeta, Sequence[Mailbox | None]]:
        """Check the received message (`InboundAuth`, which raises `Rejected` for a
        DMARC reject), then make the first target's copy: its Return-Path and
        Delivered-To, the Authentication-Results field, and the spool's bytes. That copy
        then plays the part of the spool for every other local target (`_store_all`
        swaps their first two lines, as usual); the spool itself is what the queue
        sends. Returns the copy, its metadata (one parse, of the copy) and the target
        mailboxes: INBOX, or Junk where one exists for a DMARC quarantine."""
        assert self._inbound is not None
        env = self.envelope
        whole = data if data is not None else await self._store.read_blob(spool.blob_id)
        verdict = await self._inbound.check(
            whole, client_ip=env.client_ip, helo=env.helo, sender=env.sender
        )
        owner = self._targets[0]
        self._owner, self._owner_prefix = owner, _prefix(env.sender, owner)
        prefix = self._owner_prefix + verdict.header
        store = self._store

        async def mailbox(target: LocalTarget) -> Mailbox | None:
            if verdict.quarantine:
                junk = await store.get_special_mailbox(target.account_id, "\\Junk")
                if junk is not None:
                    return junk
            return await store.get_mailbox(target.account_id, "INBOX")

        copy, meta, looked_up = await asyncio.gather(
            self._copy(spool, prefix, 0),
            asyncio.to_thread(parse, prefix + whole),
            asyncio.gather(*(mailbox(t) for t in self._targets)),
            return_exceptions=True,
        )
        for outcome in (copy, meta, looked_up):
            if isinstance(outcome, BaseException):
                raise outcome
        assert not isinstance(copy, BaseException)
        assert not isinstance(meta, BaseException)
        assert not isinstance(looked_up, BaseException)
        return copy, meta, looked_up

    async def _commit(
        self, deliveries: list[StoreDelivery], spool: BlobHandle
    ) -> tuple[list[AppendResult], int | None]:
        """Store the local copies and queue the remote recipients in ONE store call, so
        that a message is never delivered to some recipients and silently dropped for
        the others: over quota, nothing is queued either, and the client retries all."""
        store, env = self._store, self.envelope
        if not self._remotes:
            return (await store.deliver(deliveries) if deliveries else []), None
        queued = [QueuedRecipient(r.address, r.notify, r.orcpt) for r in self._remotes]
        origin = QueueOrigin.SUBMISSION if env.submitted else QueueOrigin.FORWARD
        if not deliveries:
            queue_id = await store.enqueue(
                env.sender, queued, spool, dsn_envid=env.envid, dsn_ret=env.ret, origin=origin
            )
            return [], queue_id
        return await store.deliver_and_enqueue(
            deliveries,
            env.sender,
            queued,
            spool,
            dsn_envid=env.envid,
            dsn_ret=env.ret,
            origin=origin,
        )

    async def _copy(self, spool: BlobHandle, prefix: bytes, skip: int) -> BlobHandle:
        """A new durable blob: `prefix` + the spool from byte `skip`, read from the store
        (never again from the network)."""
        writer = self._store.new_blob()
        self._writers.append(writer)
        await writer.write(prefix)
        reader = await self._store.open_blob(spool.blob_id, skip)
        try:
            while chunk := await reader.read(COPY_CHUNK):
                await writer.write(chunk)
        finally:
            await reader.close()
        return await writer.finish()
