"""What the folder and message lists show, computed from the rows stored at delivery.

A folder row is a mailbox with its STATUS counts; a message row is read from the
precomputed columns (`MessageInfo`: the ENVELOPE bytes, flags, arrival time, size and
the preview `message.text.preview` made at delivery, the one IMAP PREVIEW returns), so
a page of the list never opens a message file. A page costs two store calls, whatever the
folder's size: the mailbox's counts with the UIDs of that page alone
(`message_lists.page`, not SELECT, which would load every UID) and their rows. "Older"
and "Newer" links name a UID bound (``before=``/``after=``), which costs the same at
any depth; ``page=N`` keeps working by skipping N pages in the index.

Must not: parse message bodies or query the store once per message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pillarbox.message.encoded_words import decode_header_value
from pillarbox.message.envelope_fields import EnvelopeAddress, read_envelope
from pillarbox.message.sections import has_attachments
from pillarbox.model import Mailbox, MessageInfo
from pillarbox.services import message_lists
from pillarbox.services.context import Services

PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class MessageRow:
    uid: int
    sender: str  # display name, else address
    sender_address: str
    subject: str
    arrived: datetime
    preview: str
    seen: bool
    flagged: bool
    answered: bool
    forwarded: bool  # $Forwarded (RFC 5788 registry), as Thunderbird and Apple Mail set it
    attachments: bool
    size: int


@dataclass(frozen=True, slots=True)
class Page:
    mailbox: Mailbox
    rows: list[MessageRow]
    number: int
    pages: int
    messages: int
    unseen: int
    # Keyset links: "Older" is the page below `older_before` (None: this is the last
    # page); "Newer" the page above `newer_after`, or page 1 when that is the next one.
    older_before: int | None = None
    newer_after: int | None = None
    has_newer: bool = False


def address_text(address: EnvelopeAddress) -> str:
    local = (address.mailbox or b"").decode("utf-8", "replace")
    host = (address.host or b"").decode("utf-8", "replace")
    return f"{local}@{host}" if host else local


def message_row(info: MessageInfo) -> MessageRow:
    envelope = read_envelope(info.envelope)
    sender, sender_address = "", ""
    if envelope.from_:
        first = envelope.from_[0]
        sender_address = address_text(first)
        sender = decode_header_value(first.name) if first.name else sender_address
    subject = decode_header_value(envelope.subject) if envelope.subject else ""
    return MessageRow(
        uid=info.uid,
        sender=sender,
        sender_address=sender_address,
        subject=subject,
        arrived=info.internaldate,
        preview=info.preview,
        seen="\\Seen" in info.flags,
        flagged="\\Flagged" in info.flags,
        answered="\\Answered" in info.flags,
        forwarded="$Forwarded" in info.flags,
        attachments=has_attachments(info.parts),
        size=info.size,
    )


async def page(
    services: Services,
    mailbox: Mailbox,
    number: int = 1,
    *,
    before: int | None = None,
    after: int | None = None,
) -> Page:
    """A page of the mailbox, newest first: page `number` (1 is the newest messages),
    or the page just below UID `before` ("Older"), or just above UID `after` ("Newer").
    The UID bounds cost the same at any depth; `number` skips rows in the index."""
    keyset = before is not None or after is not None
    number = max(1, number)
    offset = 0 if keyset else (number - 1) * PAGE_SIZE
    found, infos = await message_lists.page(
        services.store, mailbox, PAGE_SIZE, offset=offset, before=before, after=after
    )
    status = found.status
    pages = max(1, -(-status.messages // PAGE_SIZE))
    if not found.uids and status.messages:
        # Past either end (a stale link, mail expunged meanwhile): the nearest page.
        return await page(services, mailbox, 1 if after is not None else pages)
    rows = [message_row(info) for info in infos]
    shown = found.newer + len(found.uids)
    return Page(
        mailbox,
        rows,
        number=min(found.newer // PAGE_SIZE + 1, pages),
        pages=pages,
        messages=status.messages,
        unseen=status.unseen,
        older_before=found.uids[-1] if found.uids and shown < status.messages else None,
        newer_after=found.uids[0] if found.uids and found.newer > PAGE_SIZE else None,
        has_newer=found.newer > 0,
    )


def query_int(value: str | None) -> int | None:
    """A positive number from a query parameter; None for anything else."""
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 19:
        return None
    number = int(value)
    return number if 0 < number < 2**63 else None  # SQLite's INTEGER; thread ids use it all
